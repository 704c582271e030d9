//! Synthetic stores for benches: many notes without running the model on
//! each (embedding N real notes is what `mnemo import` measures), with
//! clustered unit vectors stored under the real model's vector space so
//! that opening a core with the model does not re-embed them.

use std::path::Path;

use mnemo::import::ImportedMessage;
use mnemo::store::Store;

/// xorshift64: fixed seed, same store every run.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// Uniform in -0.5..0.5.
    pub fn f(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// `n` messages spread over `chats`: every third one a real note of the
/// eval set (`texts`), the others 4–23 random words drawn from those notes.
pub fn messages(n: usize, chats: &[i64], texts: &[String], rng: &mut Rng) -> Vec<ImportedMessage> {
    let words: Vec<&str> = texts.iter().flat_map(|t| t.split_whitespace()).collect();
    (0..n)
        .map(|i| {
            let text = if i % 3 == 0 {
                texts[i % texts.len()].clone()
            } else {
                let k = 4 + (rng.next() % 20) as usize;
                (0..k)
                    .map(|_| words[(rng.next() % words.len() as u64) as usize])
                    .collect::<Vec<_>>()
                    .join(" ")
            };
            ImportedMessage {
                chat_id: chats[i % chats.len()],
                message_id: i as i64 + 1,
                author: None,
                user_id: 1,
                date: 1_609_459_200_000 + i as i64 * 60_000,
                text,
            }
        })
        .collect()
}

/// Gives every note of the store a synthetic vector (500 clusters) under the
/// real model's vector space, emptying the embedding queue.
pub fn mark_model(dir: &Path, rng: &mut Rng) {
    let centres: Vec<Vec<f32>> = (0..500)
        .map(|_| unit((0..384).map(|_| rng.f()).collect()))
        .collect();
    let space = mnemo::core::vector_space_of(mnemo::models::EMBED_MODEL_ID);
    let store = Store::open(dir).unwrap();
    store.write(|tx| tx.reset_vectors(&space)).unwrap();
    loop {
        let q = store.embed_queue(5000).unwrap();
        if q.is_empty() {
            break;
        }
        store
            .write(|tx| {
                for (id, seq, _) in &q {
                    let c = &centres[(*id as usize * 7919) % centres.len()];
                    let v = unit(c.iter().map(|x| x + 0.09 * rng.f()).collect());
                    tx.put_vector(*id, *seq, &space, &v)?;
                }
                Ok(())
            })
            .unwrap();
    }
}

/// Recall of `approx` against `exact` (one list of (id, score) per query):
/// the share of the exact hits found, and how many queries found none of
/// theirs (a search that ended in the wrong part of the graph).
pub fn recall_of(exact: &[Vec<(u64, f32)>], approx: &[Vec<(u64, f32)>]) -> (f64, usize) {
    let (mut found, mut total, mut lost) = (0, 0, 0);
    for (e, a) in exact.iter().zip(approx) {
        let f = e.iter().filter(|x| a.iter().any(|y| y.0 == x.0)).count();
        found += f;
        total += e.len();
        lost += usize::from(f == 0);
    }
    (found as f64 / total.max(1) as f64, lost)
}
