//! The flat vector index: note embeddings in memory as half floats,
//! searched exactly by brute force — while a memory is small (below
//! `recall.ann_threshold`), and as the input a graph is built or checked
//! from. Once there is a graph ([`super::ann`]) the graph holds the only
//! copy and this index is dropped.
//!
//! Derived data: the vectors themselves are stored in redb (`vectors`, f32);
//! this is their in-memory copy. Brute force over 384-d unit vectors is one
//! dot product each (~1 ms per 10k on one core), exact, and the reference
//! the ANN is tested against.

use std::collections::HashMap;

use super::dot::{dot_f16_f32, f16};

#[derive(Default)]
pub struct VectorIndex {
    dim: usize,
    ids: Vec<u64>,
    chats: Vec<i64>,
    data: Vec<f16>,
    pos: HashMap<u64, usize>,
}

impl VectorIndex {
    pub fn new(dim: usize) -> VectorIndex {
        VectorIndex {
            dim,
            ..Default::default()
        }
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Adds or replaces note `id`'s vector. Vectors of the wrong dimension
    /// or with non-finite values are refused (false).
    pub fn insert(&mut self, id: u64, chat: i64, v: &[f32]) -> bool {
        if v.len() != self.dim || v.iter().any(|x| !x.is_finite()) {
            return false;
        }
        self.insert_f16(id, chat, &super::dot::to_f16(v))
    }

    /// [`VectorIndex::insert`] of a vector already in half floats.
    pub fn insert_f16(&mut self, id: u64, chat: i64, v: &[f16]) -> bool {
        if v.len() != self.dim || v.iter().any(|x| !x.is_finite()) {
            return false;
        }
        if let Some(&p) = self.pos.get(&id) {
            self.chats[p] = chat;
            self.data[p * self.dim..(p + 1) * self.dim].copy_from_slice(v);
            return true;
        }
        self.pos.insert(id, self.ids.len());
        self.ids.push(id);
        self.chats.push(chat);
        self.data.extend_from_slice(v);
        true
    }

    pub fn remove(&mut self, id: u64) {
        let Some(p) = self.pos.remove(&id) else {
            return;
        };
        let last = self.ids.len() - 1;
        if p != last {
            self.ids.swap(p, last);
            self.chats.swap(p, last);
            let (a, b) = self.data.split_at_mut(last * self.dim);
            a[p * self.dim..(p + 1) * self.dim].copy_from_slice(&b[..self.dim]);
            self.pos.insert(self.ids[p], p);
        }
        self.ids.pop();
        self.chats.pop();
        self.data.truncate(last * self.dim);
    }

    pub fn get(&self, id: u64) -> Option<&[f16]> {
        self.pos
            .get(&id)
            .map(|&p| &self.data[p * self.dim..(p + 1) * self.dim])
    }

    pub fn chat_of(&self, id: u64) -> Option<i64> {
        self.pos.get(&id).map(|&p| self.chats[p])
    }

    /// Every (id, chat, vector), in internal order.
    pub fn iter(&self) -> impl Iterator<Item = (u64, i64, &[f16])> + '_ {
        self.ids
            .iter()
            .zip(&self.chats)
            .zip(self.data.chunks_exact(self.dim.max(1)))
            .map(|((&id, &c), v)| (id, c, v))
    }

    /// Exact top `k` by cosine (vectors are unit length), optionally in one
    /// chat. Ties: higher id first.
    pub fn search_exact(
        &self,
        q: &[f32],
        chat: impl Into<super::Chats>,
        k: usize,
    ) -> Vec<(u64, f32)> {
        let chat: super::Chats = chat.into();
        if q.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(u64, f32)> = self
            .iter()
            .filter(|(_, c, _)| chat.admits(*c))
            .map(|(id, _, v)| (id, dot_f16_f32(v, q)))
            .collect();
        top(&mut scored, k);
        scored
    }

    /// Heap bytes (capacities; the map estimated).
    pub fn heap_bytes(&self) -> usize {
        self.ids.capacity() * 8
            + self.chats.capacity() * 8
            + self.data.capacity() * 2
            + self.pos.capacity() * (8 + 8 + 1)
    }
}

/// Keeps the best `k` of `scored`, highest first; ties: higher id first.
pub(crate) fn top(scored: &mut Vec<(u64, f32)>, k: usize) {
    let by = |a: &(u64, f32), b: &(u64, f32)| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0));
    if k == 0 {
        scored.clear();
        return;
    }
    if scored.len() > k {
        scored.select_nth_unstable_by(k - 1, by);
        scored.truncate(k);
    }
    scored.sort_by(by);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unit(v: &[f32]) -> Vec<f32> {
        let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter().map(|x| x / n).collect()
    }

    #[test]
    fn insert_replace_remove_and_search() {
        let mut idx = VectorIndex::new(3);
        assert!(idx.insert(1, 10, &unit(&[1.0, 0.0, 0.0])));
        assert!(idx.insert(2, 10, &unit(&[0.9, 0.1, 0.0])));
        assert!(idx.insert(3, 20, &unit(&[0.0, 1.0, 0.0])));
        assert!(!idx.insert(4, 10, &[1.0, 0.0]), "wrong dimension refused");
        assert!(!idx.insert(5, 10, &[f32::NAN, 0.0, 0.0]), "NaN refused");
        let q = unit(&[1.0, 0.05, 0.0]);
        let hits = idx.search_exact(&q, Some(10), 5);
        assert_eq!(hits.iter().map(|h| h.0).collect::<Vec<_>>(), vec![1, 2]);
        idx.remove(1);
        assert_eq!(idx.search_exact(&q, None, 1)[0].0, 2);
        assert_eq!(
            idx.get(3).unwrap(),
            super::super::dot::to_f16(&unit(&[0.0, 1.0, 0.0])).as_slice()
        );
        idx.insert(3, 20, &unit(&[1.0, 0.0, 0.0]));
        assert_eq!(idx.search_exact(&q, None, 1)[0].0, 3, "replaced in place");
        assert_eq!(idx.len(), 2);
    }
}
