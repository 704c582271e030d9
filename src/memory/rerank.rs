//! Cross-encoder relevance: how well a stored text answers a question,
//! read by a model that sees both at once (ms-marco-MiniLM-L-12-v2, int8,
//! [`crate::models::RERANKER`]).
//!
//! The embedding model compares a question and a note as two separate
//! vectors, so a short generic turn ("How much?") sits as close to "how much
//! did Owen pay for the piano?" as the answer would, and whether anything
//! answers at all is hard to tell from cosines. A cross-encoder reads the
//! pair token by token and gives one logit: high when the text answers the
//! question, low when it only shares its frame. Recall asks it about the
//! conversation turns among its first hits only (a model call per pair) and
//! adds its weighted logit to their relevance, which the relevance floor
//! cuts ([`super::recall::Weights::rerank`]).
//!
//! Pair → BERT tokens `[CLS] question [SEP] text [SEP]` (the longer side
//! cut first when the pair is longer than [`MAX_TOKENS`]) → `logits` [1, 1], one
//! model call per pair ([`Reranker::score`] says why).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail};
use ort::session::Session;
use tokenizers::{Tokenizer, TruncationParams, TruncationStrategy};

use crate::models::ModelSet;

/// Longest pair in tokens: a question and a turn with its neighbours fit.
pub const MAX_TOKENS: usize = 256;

/// The cross-encoder, loaded now ([`Reranker::load`]) or at its first use
/// ([`Reranker::lazy`]: a store without conversations never pays for it).
pub struct Reranker {
    models: ModelSet,
    threads: usize,
    model: OnceLock<Result<Model, String>>,
}

struct Model {
    /// One session: recall asks one question's pairs at a time.
    session: Mutex<Session>,
    tokenizer: Tokenizer,
}

static SHARED: OnceLock<Mutex<HashMap<std::path::PathBuf, Arc<Reranker>>>> = OnceLock::new();

impl Reranker {
    /// Loads the cross-encoder of `models` (checking its files' hashes
    /// first) into one session of `threads` intra-op threads: recall asks
    /// it one question's pairs at a time, so a call is latency, not
    /// throughput.
    pub fn load(models: &ModelSet, threads: usize) -> anyhow::Result<Reranker> {
        let r = Reranker::lazy(models, threads);
        r.model()?;
        Ok(r)
    }

    /// A reranker that checks and loads its files at the first
    /// [`Reranker::available`] or [`Reranker::score`] (a failure is logged
    /// once, then remembered: it is not retried until a restart).
    pub fn lazy(models: &ModelSet, threads: usize) -> Reranker {
        Reranker {
            models: models.clone(),
            threads,
            model: OnceLock::new(),
        }
    }

    /// Whether the model is (or now gets) loaded.
    pub fn available(&self) -> bool {
        self.model().is_ok()
    }

    fn model(&self) -> anyhow::Result<&Model> {
        self.model
            .get_or_init(|| {
                Model::load(&self.models, self.threads).map_err(|e| {
                    let e = format!("{e:#}");
                    tracing::warn!(error = %e, "no reranker, so a plainer relevance floor");
                    e
                })
            })
            .as_ref()
            .map_err(|e| anyhow!("{e}"))
    }

    /// One reranker per models dir per process, loaded now.
    pub fn shared(models: &ModelSet, threads: usize) -> anyhow::Result<Arc<Reranker>> {
        let map = SHARED.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = map.get(&models.dir) {
            return Ok(r.clone());
        }
        let r = Arc::new(Reranker::load(models, threads)?);
        map.insert(models.dir.clone(), r.clone());
        Ok(r)
    }

    /// The model's logit for each (`query`, text) pair: how well the text
    /// answers the question (above 0: likely; MS MARCO's scale).
    ///
    /// One model call per pair: the model quantizes its activations per
    /// call (dynamic int8, one scale over the whole input), so in a batch a
    /// pair's logit would move with its batch mates (by 0.2 in a test) —
    /// and a floor needs the same pair to score the same every time.
    pub fn score(&self, query: &str, texts: &[&str]) -> anyhow::Result<Vec<f32>> {
        let model = self.model()?;
        let mut session = model.session.lock().unwrap_or_else(|p| p.into_inner());
        texts
            .iter()
            .map(|t| model.score_one(&mut session, query, t))
            .collect()
    }
}

impl Model {
    fn load(models: &ModelSet, threads: usize) -> anyhow::Result<Model> {
        models.verify_reranker()?;
        let env = super::embed::environment(models)?;
        let session = super::embed::session(env, &models.reranker_model(), threads.max(1))
            .map_err(|e| anyhow!("cannot load the reranking model: {e}"))?;
        let mut tokenizer = Tokenizer::from_file(models.reranker_tokenizer())
            .map_err(|e| anyhow!("reranker tokenizer: {e}"))?;
        // The packaged tokenizer pads every input to 512 tokens; a pair is
        // scored alone, so it needs none.
        tokenizer.with_padding(None);
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                // Cut the longer side first: a long question must not fail
                // the pair (`OnlySecond` refuses one that leaves no room).
                strategy: TruncationStrategy::LongestFirst,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("reranker tokenizer truncation: {e}"))?;
        Ok(Model {
            session: Mutex::new(session),
            tokenizer,
        })
    }

    fn score_one(&self, session: &mut Session, query: &str, text: &str) -> anyhow::Result<f32> {
        let enc = self
            .tokenizer
            .encode((query, text), true)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        super::embed::run_bert(session, &[enc], |outputs, _, _| {
            let (oshape, data) = outputs["logits"].try_extract_tensor::<f32>()?;
            match (&oshape[..], data) {
                ([1, 1], [x]) if x.is_finite() => Ok(*x),
                _ => bail!("unexpected reranker output {:?}", &oshape[..]),
            }
        })
    }
}
