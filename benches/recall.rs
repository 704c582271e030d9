//! Recall latency and memory at scale, and embedding throughput.
//!
//! `cargo bench --bench recall` — for each size N (env `BENCH_SIZES`,
//! default `10000,100000`): N synthetic notes are imported into a real redb
//! store, given clustered synthetic 384-d vectors (embedding N real notes is
//! what `mnemo import` measures; see docs/BENCHMARKS.md), the core is opened
//! with the real model (building or loading the ANN graph above
//! `recall.ann_threshold`), and 200 real questions are asked through the full
//! hybrid path: query embedding + BM25 + vector search + fusion. Prints
//! p50/p99 latency, start-up time (open; and the serving start: the first
//! answer, by words, and the vectors in, loaded in the background),
//! resident memory (anonymous and file-backed) with the indexes' heap by
//! component, the parts of a start alone, and the saved graph's recall@10
//! against exact search by beam width. `BENCH_ANN=0` forces exact vector
//! search; `BENCH_EMBED=0` skips the embedding-throughput preamble;
//! `BENCH_KEEP=<dir>` keeps each size's store in `<dir>/<N>` and a later
//! run reuses it (measuring the start in a process that built nothing). Under
//! `cargo test` it runs a tiny smoke pass.

use std::time::{Duration, Instant};

#[path = "../tests/support/synth.rs"]
mod synth;

use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::memory::embed::{Embedder, Role};
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

/// What recall adds for a question over imported conversations: one
/// cross-encoder call on its first 5 hits, each a turn with the turns
/// before and after it (as `Core::rerank_text` builds them), for the
/// conversation set's questions, by intra-op threads.
fn rerank_latency(models: &ModelSet) {
    let set: serde_json::Value =
        serde_json::from_str(include_str!("../tests/data/conversation_eval.json")).unwrap();
    let turns = set["turns"].as_array().unwrap();
    let line = |i: usize| {
        mnemo::store::indexed_text(
            turns[i]["author"].as_str(),
            turns[i]["text"].as_str().unwrap(),
        )
        .into_owned()
    };
    let passage = |i: usize| {
        let (lo, hi) = (i.saturating_sub(1), (i + 1).min(turns.len() - 1));
        (lo..=hi).map(line).collect::<Vec<_>>().join("\n")
    };
    let questions: Vec<&str> = set["questions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["question"].as_str().unwrap())
        .collect();
    println!(
        "cross-encoder per question (5 turns with their neighbours, {} questions):",
        questions.len()
    );
    for threads in [1, 2] {
        let r =
            mnemo::memory::rerank::Reranker::load(models, threads).expect("models (make models)");
        let mut times = Vec::new();
        for (k, q) in questions.iter().enumerate() {
            let texts: Vec<String> = (0..5)
                .map(|j| passage((k * 37 + j * 101) % turns.len()))
                .collect();
            let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
            let t = Instant::now();
            let out = r.score(q, &refs).unwrap();
            times.push(t.elapsed());
            assert_eq!(out.len(), 5);
        }
        times.sort();
        println!(
            "  {threads} thread(s): p50 {:.1} ms, p99 {:.1} ms",
            pct(&times, 0.5),
            pct(&times, 0.99)
        );
    }
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

    if bench && std::env::var("BENCH_EMBED").map_or(true, |v| v != "0") {
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
            e.embed_chunks(Role::Passage, &batch[..32], 8).unwrap();
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
                    let out = e.embed_chunks(Role::Passage, input, bs).unwrap();
                    assert_eq!(out.len(), input.len());
                    let rate = input.len() as f64 / t.elapsed().as_secs_f64();
                    println!("  round {round}, {n} session(s) x {intra} thread(s), {name}, batches of {bs}: {rate:.0} notes/s");
                }
            }
        }
        drop(embedders);
    }
    if bench && std::env::var("BENCH_RERANK").map_or(true, |v| v != "0") {
        rerank_latency(&models);
    }
    let embedder = Embedder::shared(&models, 1).expect("models (make models)");
    let ann = std::env::var("BENCH_ANN").map(|v| v != "0").unwrap_or(true);
    for n in sizes {
        // `BENCH_KEEP=<dir>`: the store of each size is kept in <dir>/<N>
        // and reused by the next run (which then measures only the start
        // and what follows it, in a process that built nothing).
        let tmp = tempfile::tempdir().unwrap();
        let kept =
            std::env::var_os("BENCH_KEEP").map(|d| std::path::PathBuf::from(d).join(n.to_string()));
        let dir = kept.clone().unwrap_or_else(|| tmp.path().to_owned());
        let reuse = dir.join("bench-ready").exists();
        let mut rng = synth::Rng(0x9E37_79B9_7F4A_7C15);
        let settings = {
            let mut s = Settings::from_config(&cfg);
            if !ann {
                s.ann_threshold = usize::MAX;
            }
            s
        };
        let (mut import_s, mut open_s) = (f64::NAN, f64::NAN);
        if !reuse {
            let msgs = synth::messages(n, &[1, 2, 3], &texts, &mut rng);
            let t = Instant::now();
            {
                let core = Core::new(Store::open(&dir).unwrap(), settings.clone()).unwrap();
                core.import(&msgs, 1000, |_, _| {}).unwrap();
            }
            import_s = t.elapsed().as_secs_f64();
            // Synthetic clustered vectors for every note, stored under the
            // real model's id so that opening the core does not re-embed them.
            synth::mark_model(&dir, &mut rng);
            let t = Instant::now();
            let core = Core::with_embedder(
                Store::open(&dir).unwrap(),
                settings.clone(),
                Some(embedder.clone()),
            )
            .unwrap();
            open_s = t.elapsed().as_secs_f64();
            core.persist();
            drop(core);
            if kept.is_some() {
                std::fs::write(dir.join("bench-ready"), b"").unwrap();
            }
        }
        // Give back what the first core (and the import) freed, so the idle
        // figure below is the reopened core's, not the allocator's leftovers.
        // SAFETY: malloc_trim only releases free heap pages.
        unsafe {
            libc::malloc_trim(0);
        }
        // The serving start: vectors and graph in the background, the first
        // question answered by words as soon as the lexical index is in.
        let t = Instant::now();
        let core = Core::with_embedder(
            Store::open(&dir).unwrap(),
            Settings {
                vectors_in_background: true,
                ..settings.clone()
            },
            Some(embedder.clone()),
        )
        .unwrap();
        let reopen_s = t.elapsed().as_secs_f64();
        let first = core.recall(&questions[0], None, 10).unwrap();
        let first_answer_s = t.elapsed().as_secs_f64();
        let loading_at_first = core.vectors_loading();
        assert!(!first.is_empty());
        core.wait_vectors();
        let ready_s = t.elapsed().as_secs_f64();
        // SAFETY: as above.
        unsafe {
            libc::malloc_trim(0);
        }
        let (rss_idle, anon, file) = (status("VmRSS:"), status("RssAnon:"), status("RssFile:"));
        let fp = core.index_footprint();
        let mut lat = Vec::new();
        for q in questions.iter().cycle().take(if bench { 400 } else { 20 }) {
            let t = Instant::now();
            let hits = core.recall(q, None, 10).unwrap();
            lat.push(t.elapsed());
            assert!(!hits.is_empty());
        }
        lat.sort();
        let mb = |b: usize| b >> 20;
        let graph_on = ann && n >= Settings::from_config(&cfg).ann_threshold;
        println!(
            "N={n:>8}: import {:.0} notes/s (no embedding) | open {:.1}s | serving start: lexical in {:.1}s, first answer {:.1}s{}, vectors in {:.1}s (ANN {}) | recall p50 {:.1} ms p99 {:.1} ms | RSS {} MB idle ({} anonymous, {} file-backed), peak {} MB | heap: lexical {} MB, vectors {} MB, graph links {} MB, graph vectors on heap {} MB, graph mapped {} MB",
            n as f64 / import_s,
            open_s,
            reopen_s,
            first_answer_s,
            if loading_at_first { " (by words; vectors loading)" } else { "" },
            ready_s,
            if graph_on { "on" } else { "off" },
            pct(&lat, 0.5),
            pct(&lat, 0.99),
            rss_idle,
            anon,
            file,
            status("VmHWM:"),
            mb(fp.lexical),
            mb(fp.vectors),
            mb(fp.graph),
            mb(fp.graph_vectors),
            mb(fp.graph_mapped),
        );
        drop(core);
        // The lexical side of a start alone, and the part of it that is
        // reading and decoding the notes.
        let store = Store::open(&dir).unwrap();
        let t = Instant::now();
        let lex = mnemo::memory::lexical::LexicalIndex::rebuild(&store).unwrap();
        let lex_s = t.elapsed().as_secs_f64();
        drop(lex);
        let t = Instant::now();
        store.for_each_memory(|_| {}).unwrap();
        println!(
            "  start, parts alone: lexical index {lex_s:.2}s (of it notes read and decoded {:.2}s)",
            t.elapsed().as_secs_f64()
        );
        drop(store);
        if graph_on {
            ann_recall(&dir, &embedder, &questions, &mut rng, bench);
        }
    }
}

/// The vector parts of a start alone (the core runs the lexical side and
/// the vectors side by side), then recall@10 of the graph the core saved against
/// exact search over the same vectors: the eval questions (real embeddings,
/// far from every synthetic vector: the hard case) and noisy copies of
/// stored vectors, over all chats and within one, by beam width.
fn ann_recall(
    dir: &std::path::Path,
    embedder: &Embedder,
    questions: &[String],
    rng: &mut synth::Rng,
    bench: bool,
) {
    use mnemo::memory::ann::{self, Ann};
    use mnemo::memory::vector::VectorIndex;
    use mnemo::memory::Chats;
    let space = mnemo::core::vector_space_of(mnemo::models::EMBED_MODEL_ID);
    let store = Store::open(dir).unwrap();
    let t = Instant::now();
    let mut idx = VectorIndex::new(384);
    store
        .for_each_vector(&space, 384, |id, chat, v| {
            idx.insert(id, chat, &v);
        })
        .unwrap();
    let read_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let (mut graph, how) = Ann::load_or_build(&ann::dir_in(dir), &idx, &space);
    println!(
        "  start, parts alone: stored vectors read {read_s:.1}s, graph {how:?} in {:.1}s (see the log for checksum / catch-up)",
        t.elapsed().as_secs_f64()
    );
    let qn = if bench { 200 } else { 20 };
    let texts: Vec<&str> = questions.iter().take(qn).map(String::as_str).collect();
    let asked = embedder.embed(Role::Query, &texts).unwrap();
    let near: Vec<Vec<f32>> = idx
        .iter()
        .step_by((idx.len() / qn).max(1))
        .take(qn)
        .map(|(_, _, v)| synth::unit(v.iter().map(|x| x.to_f32() + 0.05 * rng.f()).collect()))
        .collect();
    // A graph saved before its weak points were repaired (points no link
    // reaches; fewer than 4 in-links or 16 links: the marks of
    // `Segment::relink_short`) is measured as it is and relinked.
    for pass in 0..2 {
        if pass == 1 {
            if graph.orphans() + graph.thin(4) + graph.short(16) == 0 {
                break;
            }
            let t = Instant::now();
            graph.relink();
            println!("  relinked in {:.1}s", t.elapsed().as_secs_f64());
        }
        println!(
            "  graph: ground-layer points with 0 / < 4 / < 16 in-links: {} / {} / {}; with < 4 / < 16 links: {} / {}",
            graph.orphans(),
            graph.thin(4),
            graph.thin(16),
            graph.short(4),
            graph.short(16),
        );
        ann_rows(&graph, &idx, &near, &asked);
    }
    // The repeat check's nearest note in one chat: what `Indexes::nearest`
    // does (exact up to `EXACT_MAX` points, else through the graph), and an
    // exact scan of the graph's points for comparison.
    let t = Instant::now();
    for q in near.iter().take(20) {
        graph.search(q, 1, Chats::with_import(1));
    }
    let nearest = t.elapsed().as_secs_f64() * 1e3 / 20.0;
    let t = Instant::now();
    for q in near.iter().take(20) {
        graph.search_exact(q, Chats::with_import(1), 1);
    }
    println!(
        "  nearest in one chat (repeat check): {nearest:.1} ms; exact scan: {:.1} ms",
        t.elapsed().as_secs_f64() * 1e3 / 20.0
    );
}

/// ANN recall@10 of `graph` against exact search over `idx`, by beam, for
/// both query sets, over all chats and within one.
fn ann_rows(
    graph: &mnemo::memory::ann::Ann,
    idx: &mnemo::memory::vector::VectorIndex,
    near: &[Vec<f32>],
    asked: &[Vec<f32>],
) {
    use mnemo::memory::Chats;
    for (name, qs) in [("near stored vectors", near), ("questions", asked)] {
        for chat in [None, Some(1)] {
            // The synthetic notes are imported: chat 1's notes are in its
            // import space, which `Chats::with_import` covers.
            let chats = chat.map_or(Chats::ALL, Chats::with_import);
            let exact: Vec<Vec<(u64, f32)>> =
                qs.iter().map(|q| idx.search_exact(q, chats, 10)).collect();
            let mut row = String::new();
            for ef in [64, 96, 128, 192, 256, 384] {
                let t = Instant::now();
                let approx: Vec<Vec<(u64, f32)>> = qs
                    .iter()
                    .map(|q| graph.search_ef(q, 10, ef, chats))
                    .collect();
                let ms = t.elapsed().as_secs_f64() * 1e3 / qs.len() as f64;
                let (recall, lost) = synth::recall_of(&exact, &approx);
                row += &format!(" | ef {ef}: {recall:.4} ({ms:.2} ms, {lost} lost)");
            }
            println!(
                "  ANN recall@10, {name}, {}{row}",
                if chat.is_some() {
                    "one chat"
                } else {
                    "all chats"
                },
            );
        }
    }
}
