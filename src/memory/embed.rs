//! Sentence embeddings: all-MiniLM-L6-v2 (matrix products in 8-bit blocks,
//! see [`crate::models::EMBED_MODEL`]) on ONNX Runtime, in process.
//!
//! Text → WordPiece tokens (BatchLongest padding, truncation at 256) →
//! `last_hidden_state` [batch, seq, 384] → mean over the attention mask →
//! L2-normalised. Cosine similarity is then a dot product.
//!
//! ONNX Runtime is loaded from the shared library that `mnemo models fetch`
//! extracted; ort allows one environment per process, so it lives in a
//! process-wide `OnceLock`, and embedders are shared per models dir
//! ([`Embedder::shared`]) — one session (~240 MB) no matter how many cores a
//! test process builds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context};
use ort::environment::Environment;
use ort::session::builder::GraphOptimizationLevel;
use ort::session::Session;
use ort::value::Tensor;
use tokenizers::{PaddingParams, PaddingStrategy, Tokenizer, TruncationParams};

use crate::models::{ModelSet, EMBED_DIM, EMBED_MODEL_ID};

/// Longest input in tokens; longer notes are cut (the model saw 256 in training).
const MAX_TOKENS: usize = 256;

static ENV: OnceLock<Result<Environment, String>> = OnceLock::new();
static SHARED: OnceLock<Mutex<HashMap<std::path::PathBuf, Arc<Embedder>>>> = OnceLock::new();

pub struct Embedder {
    session: Mutex<Session>,
    tokenizer: Tokenizer,
}

impl std::fmt::Debug for Embedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedder")
            .field("model", &EMBED_MODEL_ID)
            .finish()
    }
}

fn environment(models: &ModelSet) -> anyhow::Result<&'static Environment> {
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

fn session(env: &Environment, model: &std::path::Path, threads: usize) -> ort::Result<Session> {
    Session::builder(env)?
        .with_optimization_level(GraphOptimizationLevel::Level3)?
        .with_intra_threads(threads)?
        .with_inter_threads(1)?
        // Spinning workers help a multi-threaded session on an otherwise idle
        // machine (bulk import), and only burn a core under contention, so a
        // single-threaded session (the bot's default) never spins.
        .with_intra_op_spinning(threads > 1)?
        .commit_from_file(model)
}

impl Embedder {
    /// Loads the model from `models` (checking the files' hashes first).
    pub fn load(models: &ModelSet, threads: usize) -> anyhow::Result<Embedder> {
        models.verify()?;
        let env = environment(models)?;
        let session = session(env, &models.embed_model(), threads.max(1))
            .context("cannot load the embedding model")?;
        let mut tokenizer =
            Tokenizer::from_file(models.tokenizer()).map_err(|e| anyhow!("tokenizer: {e}"))?;
        tokenizer.with_padding(Some(PaddingParams {
            strategy: PaddingStrategy::BatchLongest,
            ..Default::default()
        }));
        tokenizer
            .with_truncation(Some(TruncationParams {
                max_length: MAX_TOKENS,
                ..Default::default()
            }))
            .map_err(|e| anyhow!("tokenizer truncation: {e}"))?;
        Ok(Embedder {
            session: Mutex::new(session),
            tokenizer,
        })
    }

    /// One embedder per models dir per process.
    pub fn shared(models: &ModelSet, threads: usize) -> anyhow::Result<Arc<Embedder>> {
        let map = SHARED.get_or_init(Default::default);
        let mut map = map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = map.get(&models.dir) {
            return Ok(e.clone());
        }
        let e = Arc::new(Embedder::load(models, threads)?);
        map.insert(models.dir.clone(), e.clone());
        Ok(e)
    }

    pub fn model_id(&self) -> &'static str {
        EMBED_MODEL_ID
    }

    pub fn dim(&self) -> usize {
        EMBED_DIM
    }

    /// Embeds `texts` in one batch; each vector is unit length.
    pub fn embed(&self, texts: &[&str]) -> anyhow::Result<Vec<Vec<f32>>> {
        if texts.is_empty() {
            return Ok(Vec::new());
        }
        let enc = self
            .tokenizer
            .encode_batch(texts.to_vec(), true)
            .map_err(|e| anyhow!("tokenize: {e}"))?;
        let batch = enc.len();
        let seq = enc.first().map_or(0, |e| e.len());
        let mut ids = Vec::with_capacity(batch * seq);
        let mut mask = Vec::with_capacity(batch * seq);
        let mut types = Vec::with_capacity(batch * seq);
        for e in &enc {
            ids.extend(e.get_ids().iter().map(|&x| i64::from(x)));
            mask.extend(e.get_attention_mask().iter().map(|&x| i64::from(x)));
            types.extend(e.get_type_ids().iter().map(|&x| i64::from(x)));
        }
        let shape = [batch, seq];
        let mut session = self.session.lock().unwrap_or_else(|p| p.into_inner());
        let outputs = session.run(ort::inputs![
            "input_ids" => Tensor::from_array((shape, ids))?,
            "attention_mask" => Tensor::from_array((shape, mask.clone()))?,
            "token_type_ids" => Tensor::from_array((shape, types))?,
        ])?;
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
    }
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
