//! Recall latency and memory at scale, and embedding throughput.
//!
//! `cargo bench --bench recall` — for each size N (env `BENCH_SIZES`,
//! default `10000,100000`): N synthetic notes are imported into a real redb
//! store, given clustered synthetic 384-d vectors (embedding N real notes is
//! what `mnemo import` measures; see docs/BENCHMARKS.md), the core is opened
//! with the real model (building or loading the ANN graph above
//! `recall.ann_threshold`), and 200 real questions are asked through the full
//! hybrid path: query embedding + BM25 + vector search + fusion. Prints
//! p50/p99 latency, start-up time and resident memory. `BENCH_ANN=0` forces
//! exact vector search. Under `cargo test` it runs a tiny smoke pass.

use std::time::{Duration, Instant};

#[path = "../tests/support/synth.rs"]
mod synth;

use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::memory::embed::Embedder;
use mnemo::models::ModelSet;
use mnemo::store::Store;

fn status(key: &str) -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
        / 1024
}

fn pct(v: &[Duration], p: f64) -> f64 {
    v[((v.len() as f64 * p) as usize).min(v.len() - 1)].as_secs_f64() * 1e3
}

#[derive(serde::Deserialize)]
struct Set {
    notes: Vec<serde_json::Value>,
    questions: Vec<serde_json::Value>,
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sizes: Vec<usize> = if bench {
        std::env::var("BENCH_SIZES")
            .unwrap_or_else(|_| "10000,100000".into())
            .split(',')
            .filter_map(|s| s.trim().parse().ok())
            .collect()
    } else {
        vec![2_000]
    };
    let set: Set = serde_json::from_str(include_str!("../tests/data/recall_eval.json")).unwrap();
    let texts: Vec<String> = set
        .notes
        .iter()
        .map(|n| n["text"].as_str().unwrap().to_owned())
        .collect();
    let questions: Vec<String> = set
        .questions
        .iter()
        .map(|q| q["question"].as_str().unwrap().to_owned())
        .collect();
    let cfg = Config::defaults();
    let models = ModelSet::new(cfg.models_dir().unwrap());

    if bench {
        println!("embedding throughput (512 real notes, tokenisation included):");
        let batch: Vec<&str> = texts.iter().cycle().take(512).map(String::as_str).collect();
        let mut sorted = batch.clone();
        sorted.sort_by_key(|t| t.len());
        // As production embeds them: the note's date in front (4 tokens).
        let dated_owned: Vec<String> = sorted.iter().map(|t| format!("25 Nov 2026: {t}")).collect();
        let dated: Vec<&str> = dated_owned.iter().map(String::as_str).collect();
        // Shapes: one single-threaded session (the bot's worker), one session
        // with two spinning intra-op threads (before), two single-threaded
        // sessions sharing the calls (`Embedder::load(_, 2)`, bulk work).
        let shapes = [(1, 1), (1, 2), (2, 1)];
        let embedders: Vec<Embedder> = shapes
            .iter()
            .map(|&(n, intra)| Embedder::load_with(&models, n, intra).unwrap())
            .collect();
        for e in &embedders {
            e.embed_chunks(&batch[..32], 8).unwrap();
        }
        // Interleaved rounds: this machine's speed drifts; compare within a round.
        for round in 0..3 {
            for (&(n, intra), e) in shapes.iter().zip(&embedders) {
                for (name, input, bs) in [
                    ("arrival order", &batch, mnemo::core::BATCH),
                    ("length-sorted", &sorted, 32),
                    ("length-sorted", &sorted, 16),
                    ("length-sorted", &sorted, 8),
                    ("length-sorted, dated", &dated, 8),
                ] {
                    let t = Instant::now();
                    let out = e.embed_chunks(input, bs).unwrap();
                    assert_eq!(out.len(), input.len());
                    let rate = input.len() as f64 / t.elapsed().as_secs_f64();
                    println!("  round {round}, {n} session(s) x {intra} thread(s), {name}, batches of {bs}: {rate:.0} notes/s");
                }
            }
        }
        drop(embedders);
    }
    let embedder = Embedder::shared(&models, 1).expect("models (make models)");
    let ann = std::env::var("BENCH_ANN").map(|v| v != "0").unwrap_or(true);
    for n in sizes {
        let dir = tempfile::tempdir().unwrap();
        let mut rng = synth::Rng(0x9E37_79B9_7F4A_7C15);
        let msgs = synth::messages(n, &[1, 2, 3], &texts, &mut rng);
        let settings = {
            let mut s = Settings::from_config(&cfg);
            if !ann {
                s.ann_threshold = usize::MAX;
            }
            s
        };
        let t = Instant::now();
        {
            let core = Core::new(Store::open(dir.path()).unwrap(), settings.clone()).unwrap();
            core.import(&msgs, 1000, |_, _| {}).unwrap();
        }
        let import_s = t.elapsed().as_secs_f64();
        // Synthetic clustered vectors for every note, stored under the real
        // model's id so that opening the core does not re-embed them.
        synth::mark_model(dir.path(), &mut rng);
        let t = Instant::now();
        let core = Core::with_embedder(
            Store::open(dir.path()).unwrap(),
            settings.clone(),
            Some(embedder.clone()),
        )
        .unwrap();
        let open_s = t.elapsed().as_secs_f64();
        core.persist();
        let t = Instant::now();
        drop(core);
        // Give back what the first core (and the import) freed, so the idle
        // figure below is the reopened core's, not the allocator's leftovers.
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe {
            libc::malloc_trim(0);
        }
        let core = Core::with_embedder(
            Store::open(dir.path()).unwrap(),
            settings,
            Some(embedder.clone()),
        )
        .unwrap();
        let reopen_s = t.elapsed().as_secs_f64();
        let rss_idle = status("VmRSS:");
        let mut lat = Vec::new();
        for q in questions.iter().cycle().take(if bench { 400 } else { 20 }) {
            let t = Instant::now();
            let hits = core.recall(q, None, 10).unwrap();
            lat.push(t.elapsed());
            assert!(!hits.is_empty());
        }
        lat.sort();
        println!(
            "N={n:>8}: import {:.0} notes/s (no embedding) | open {:.1}s, reopen {:.1}s (ANN {}) | recall p50 {:.1} ms p99 {:.1} ms | RSS {} MB idle, peak {} MB",
            n as f64 / import_s,
            open_s,
            reopen_s,
            if ann && n >= Settings::from_config(&cfg).ann_threshold { "on" } else { "off" },
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            rss_idle,
            status("VmHWM:")
        );
    }
}
