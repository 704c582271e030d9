//! The embedding model an eval set runs with (shared by tests/recall_eval.rs
//! and tests/conversation_eval.rs): `MNEMO_EVAL_EMBED` names one of
//! `[models] embed`'s models (`minilm`, `e5-small`); without it, the default.

use std::time::Instant;

use mnemo::config::Config;
use mnemo::core::Core;
use mnemo::models::{embed_spec, ModelSet};

/// The models dir with the model `MNEMO_EVAL_EMBED` selects.
pub fn models(cfg: &Config) -> ModelSet {
    let key = std::env::var("MNEMO_EVAL_EMBED").unwrap_or_else(|_| cfg.models.embed.clone());
    let spec = embed_spec(&key).unwrap_or_else(|e| panic!("MNEMO_EVAL_EMBED: {e:#}"));
    ModelSet::new(cfg.models_dir().unwrap()).with_embed(spec)
}

/// The defaults with `models.embed` the eval's model: settings made from it
/// carry that model's relevance floor.
pub fn config() -> Config {
    let mut c = Config::defaults();
    if let Ok(key) = std::env::var("MNEMO_EVAL_EMBED") {
        c.models.embed = key;
    }
    c
}

/// Whether the eval runs with the default model, whose levels the
/// assertions hold (another model's figures are printed, not asserted).
pub fn is_default(models: &ModelSet) -> bool {
    models.embed.key == Config::defaults().models.embed
}

/// Embeds every queued note as the worker does (takes of `core::TAKE`,
/// calls of `core::BATCH`, one session) and prints the rate.
pub fn embed_all(core: &Core, models: &ModelSet) {
    let t = Instant::now();
    let n = core.embed_all_pending(|_, _| {}).unwrap();
    let s = t.elapsed().as_secs_f64();
    println!(
        "model {} ({}): {n} texts embedded in {s:.1} s, {:.1} texts/s (1 session)",
        models.embed.key,
        models.embed.id,
        n as f64 / s
    );
}

/// The cross-encoder, when the eval's model is calibrated with it (its
/// weights give it a part) and `MNEMO_EVAL_RERANK` is not `0`.
pub fn reranker(models: &ModelSet) -> Option<std::sync::Arc<mnemo::memory::rerank::Reranker>> {
    let off = std::env::var("MNEMO_EVAL_RERANK").is_ok_and(|v| v == "0");
    (models.embed.rerank.is_some() && !off).then(|| {
        mnemo::memory::rerank::Reranker::shared(models, 2)
            .unwrap_or_else(|e| panic!("{e:#} (make test fetches the models)"))
    })
}
