//! Sentence embeddings on ONNX Runtime, in process: the model `[models]
//! embed` selects ([`crate::models::EmbedSpec`]) — all-MiniLM-L6-v2
//! (matrix products in 8-bit blocks, [`crate::models::MINILM`], the
//! default) or multilingual-e5-small (4-bit blocks,
//! [`crate::models::E5_SMALL`]).
//!
//! Text → the model's prefix for its [`Role`] (e5: "query: " for a question,
//! "passage: " for a stored text; MiniLM: none) → tokens (BatchLongest
//! padding, truncation at the model's limit) → `last_hidden_state` [batch,
//! seq, 384] → mean over the attention mask → L2-normalised. Cosine
//! similarity is then a dot product.
//!
//! ONNX Runtime is loaded from the shared library that `mnemo models fetch`
//! extracted; ort allows one environment per process, so it lives in a
//! process-wide `OnceLock`, and embedders are shared per models dir and
//! model ([`Embedder::shared`]) no matter how many cores a test process builds.
//!
//! An embedder given `n` threads holds `n` independent single-threaded
//! sessions rather than one session with `n` intra-op threads: a model call
//! of 8 short notes is too small to split well, and a multi-threaded session
//! waits at every operator for its slowest thread (on a shared VM, for the
//! host to schedule it). [`Embedder::embed_chunks`] hands whole calls to the
//! sessions instead; docs/BENCHMARKS.md has the figures.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, ensure, Context};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::models::{EmbedSpec, ModelSet, EMBED_DIM};

/// What a text is to the model: e5 was trained to embed the two sides of a
/// search differently ([`EmbedSpec::query_prefix`], [`EmbedSpec::passage_prefix`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// A question (`/recall`).
    Query,
    /// A stored text ([`crate::core::embed_text`]), or a new note compared
    /// with the stored ones (the repeat check: note against notes).
    Passage,
}

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
/// Embedders by models dir and [`EmbedSpec::key`].
type SharedMap = HashMap<(std::path::PathBuf, &'static str), Arc<Embedder>>;
static SHARED: OnceLock<Mutex<SharedMap>> = OnceLock::new();

/// One model call's vectors and the position of its chunk.
type Call = (usize, Vec<Vec<f32>>);

pub struct Embedder {
    /// Never empty. Calls take the first idle session.
    sessions: Vec<Mutex<Session>>,
    tokenizer: Tokenizer,
    spec: &'static EmbedSpec,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &self.spec.id)
            .finish()
    }
}

pub(super) fn environment(models: &ModelSet) -> anyhow::Result<&'static Environment> {
    let env = ENV.get_or_init(|| {
        let lib = std::fs::canonicalize(models.ort_lib())
            .map_err(|e| format!("{}: {e}", models.ort_lib().display()))?;
        ort::init_from(&lib)
            .map_err(|e| e.to_string())?
            .with_name("mnemo")
            .with_telemetry(false)
            .build()
            .map_err(|e| e.to_string())
    });
    env.as_ref()
        .map_err(|e| anyhow!("cannot load ONNX Runtime: {e}; run `mnemo models fetch`"))
}

pub(super) fn session(
    env: &Environment,
    model: &std::path::Path,
    threads: usize,
) -> ort::Result<Session> {
    Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        // Spinning workers help a multi-threaded session on an otherwise idle
        // machine, and only burn a core under contention, so single-threaded
        // sessions (all that [`Embedder::load`] builds) never spin.
        .with_intra_op_spinning(threads > 1)?
        .commit_from_file(model)
}

impl Embedder {
    /// Loads `models`' embedding model (checking the files' hashes first) into
    /// `threads` single-threaded sessions.
    pub fn load(models: &ModelSet, threads: usize) -> anyhow::Result<Embedder> {
        Embedder::load_with(models, threads, 1)
    }

    /// `sessions` sessions of `intra` threads each (benchmarks compare shapes).
    pub fn load_with(models: &ModelSet, sessions: usize, intra: usize) -> anyhow::Result<Embedder> {
        models.verify()?;
        let env = environment(models)?;
        let sessions = (0..sessions.max(1))
            .map(|_| session(env, &models.embed_model(), intra.max(1)).map(Mutex::new))
            .collect::<ort::Result<Vec<_>>>()
            .context("cannot load the embedding model")?;
        let mut tokenizer =
            Tokenizer::from_file(models.tokenizer()).map_err(|e| anyhow!("tokenizer: {e}"))?;
        let spec = models.embed;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            pad_id: spec.pad.0,
            pad_token: spec.pad.1.to_owned(),
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: spec.max_tokens,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
        Ok(Embedder {
            sessions,
            tokenizer,
            spec,
        })
    }

    /// One embedder per models dir and model per process.
    pub fn shared(models: &ModelSet, threads: usize) -> anyhow::Result<Arc<Embedder>> {
        let map = SHARED.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        let key = (models.dir.clone(), models.embed.key);
        if let Some(e) = map.get(&key) {
            return Ok(e.clone());
        }
        let e = Arc::new(Embedder::load(models, threads)?);
        map.insert(key, e.clone());
        Ok(e)
    }

    /// The embedding space's id ([`EmbedSpec::id`]), stored with every vector.
    pub fn model_id(&self) -> &'static str {
        self.spec.id
    }

    /// The model this embedder runs.
    pub fn spec(&self) -> &'static EmbedSpec {
        self.spec
    }

    pub fn dim(&self) -> usize {
        EMBED_DIM
    }

    /// How many model calls can run at once.
    pub fn sessions(&self) -> usize {
        self.sessions.len()
    }

    /// Embeds `texts` as `role` in model calls of `chunk`, spread over the
    /// sessions; vectors come back in the order of `texts`. Callers sort by
    /// length first: a call pads every text to its longest.
    pub fn embed_chunks(
        &self,
        role: Role,
        texts: &[&str],
        chunk: usize,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let chunks: Vec<&[&str]> = texts.chunks(chunk.max(1)).collect();
        let workers = self.sessions.len().min(chunks.len());
        let out = if workers <= 1 {
            // A session is locked per call, not per take: a question's
            // `embed` waits for one call of a backlog, not for all of them.
            let mut out = Vec::with_capacity(texts.len());
            for c in chunks {
                out.extend(self.embed_on(&mut self.idle_session(), role, c)?);
            }
            out
        } else {
            self.embed_spread(role, &chunks, workers)?
        };
        // Callers zip the vectors with their texts: one missing would shift
        // every later vector onto the wrong note.
        ensure!(
            out.len() == texts.len(),
            "{} vectors for {} texts",
            out.len(),
            texts.len()
        );
        Ok(out)
    }

    /// `chunks` over the first `workers` sessions, vectors in chunk order.
    /// Each worker takes the next chunk until none is left, so a slow call
    /// does not hold the others back, and locks its session per call.
    fn embed_spread(
        &self,
        role: Role,
        chunks: &[&[&str]],
        workers: usize,
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        let next = std::sync::atomic::AtomicUsize::new(0);
        let done: Vec<anyhow::Result<Vec<Call>>> = std::thread::scope(|s| {
            let handles: Vec<_> = self.sessions[..workers]
                .iter()
                .map(|session| {
                    let next = &next;
                    s.spawn(move || {
                        let mut mine = Vec::new();
                        loop {
                            let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            let Some(c) = chunks.get(i) else { break };
                            let mut session = session.lock().unwrap_or_else(|p| p.into_inner());
                            mine.push((i, self.embed_on(&mut session, role, c)?));
                        }
                        Ok(mine)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|_| Err(anyhow!("embedding thread panicked")))
                })
                .collect()
        });
        let mut results: Vec<Option<Vec<Vec<f32>>>> = vec![None; chunks.len()];
        for part in done {
            for (i, vs) in part? {
                results[i] = Some(vs);
            }
        }
        Ok(results.into_iter().flatten().flatten().collect())
    }

    /// Embeds `texts` as `role` in one model call, on the first idle
    /// session; each vector is unit length.
    pub fn embed(&self, role: Role, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        self.embed_on(&mut self.idle_session(), role, texts)
    }

    /// [`Embedder::embed`] if a session frees up within `budget`; `None`
    /// when every session stayed busy (a bulk take of the embed worker):
    /// for callers on the acknowledgement path, which must not wait long.
    pub fn embed_within(
        &self,
        role: Role,
        texts: &[&str],
        budget: std::time::Duration,
    ) -> Option<anyhow::Result<Vec<Vec<f32>>>> {
        let deadline = std::time::Instant::now() + budget;
        loop {
            let idle = self.sessions.iter().find_map(|s| match s.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            });
            if let Some(mut g) = idle {
                return Some(self.embed_on(&mut g, role, texts));
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }

    /// The first session nobody is using, else waits for the first one.
    fn idle_session(&self) -> std::sync::MutexGuard<'_, Session> {
        self.sessions
            .iter()
            .find_map(|s| match s.try_lock() {
                Ok(g) => Some(g),
                Err(std::sync::TryLockError::Poisoned(p)) => Some(p.into_inner()),
                Err(std::sync::TryLockError::WouldBlock) => None,
            })
            .unwrap_or_else(|| self.sessions[0].lock().unwrap_or_else(|p| p.into_inner()))
    }

    fn embed_on(
        &self,
        session: &mut Session,
        role: Role,
        texts: &[&str],
    ) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = match role {
            Role::Query => self.spec.query_prefix,
            Role::Passage => self.spec.passage_prefix,
        };
        let inputs: Vec<String> = texts.iter().map(|t| format!("{prefix}{t}")).collect();
        let enc = self
            .tokenizer
            .encode_batch(inputs, true)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        run_bert(session, &enc, |outputs, mask, [batch, seq]| {
            let (oshape, data) = outputs["last_hidden_state"].try_extract_tensor::<f32>()?;
            if oshape.len() != 3
                || oshape[0] as usize != batch
                || oshape[1] as usize != seq
                || oshape[2] as usize != EMBED_DIM
            {
                bail!("unexpected model output shape {:?}", &oshape[..]);
            }
            let mut out = Vec::with_capacity(batch);
            for b in 0..batch {
                let mut v = vec![0f32; EMBED_DIM];
                let mut n = 0f32;
                for t in 0..seq {
                    if mask[b * seq + t] == 0 {
                        continue;
                    }
                    n += 1.0;
                    let row = &data[(b * seq + t) * EMBED_DIM..(b * seq + t + 1) * EMBED_DIM];
                    for (a, x) in v.iter_mut().zip(row) {
                        *a += x;
                    }
                }
                let n = n.max(1.0);
                v.iter_mut().for_each(|a| *a /= n);
                normalize(&mut v)?;
                out.push(v);
            }
            Ok(out)
        })
    }
}

/// Runs a BERT-shaped model (inputs `input_ids`, `attention_mask`,
/// `token_type_ids`) on `enc`, encodings of one length (padded, or a single
/// one), and hands `read` its outputs, the attention mask and the shape
/// [batch, seq]: the embedder and the cross-encoder
/// ([`super::rerank`]) feed their models alike.
pub(super) fn run_bert<T>(
    session: &mut Session,
    enc: &[tokenizers::Encoding],
    read: impl FnOnce(&ort::session::SessionOutputs<'_>, &[i64], [usize; 2]) -> anyhow::Result<T>,
) -> anyhow::Result<T> {
    let batch = enc.len();
    let seq = enc.first().map_or(0, |e| e.len());
    let mut ids = Vec::with_capacity(batch * seq);
    let mut mask = Vec::with_capacity(batch * seq);
    let mut types = Vec::with_capacity(batch * seq);
    for e in enc {
        ids.extend(e.get_ids().iter().map(|&x| i64::from(x)));
        mask.extend(e.get_attention_mask().iter().map(|&x| i64::from(x)));
        types.extend(e.get_type_ids().iter().map(|&x| i64::from(x)));
    }
    let shape = [batch, seq];
    let outputs = session.run(ort::inputs![
        "input_ids" => Tensor::from_array((shape, ids))?,
        "attention_mask" => Tensor::from_array((shape, mask.clone()))?,
        "token_type_ids" => Tensor::from_array((shape, types))?,
    ])?;
    read(&outputs, &mask, shape)
}

/// Scales `v` to unit length; rejects NaN/inf and all-zero vectors.
pub fn normalize(v: &mut [f32]) -> anyhow::Result<()> {
    if v.iter().any(|x| !x.is_finite()) {
        bail!("embedding has non-finite values");
    }
    let norm = v.iter().map(|a| a * a).sum::<f32>().sqrt();
    if norm < 1e-12 {
        bail!("embedding is all zeros");
    }
    v.iter_mut().for_each(|a| *a /= norm);
    Ok(())
}
