//! Retrieval quality on tests/data/recall_eval.json (362 notes, 202
//! questions with answers and 60 without, English and German, written for
//! this project) with the real MiniLM model: hit@1/5/10 for lexical only,
//! vector only and hybrid, and the relevance floor (answers kept, "nothing
//! found" for the unanswerable questions, apart for those on absent topics
//! and near misses).
//!
//! The figures are printed (`cargo test --test recall_eval -- --nocapture`)
//! and recorded in docs/BENCHMARKS.md; the test fails if hybrid hit@10 drops
//! below the level reached when it was written.

use std::collections::HashMap;

use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::memory::embed::Embedder;
use mnemo::memory::recall::Weights;
use mnemo::store::{NewNote, Source, Store};
use serde::Deserialize;

#[path = "support/eval_embed.rs"]
mod eval_embed;
#[path = "support/floor.rs"]
mod floor;
use floor::Probe;

/// Hybrid hit@10 must stay at or above this (0.807 measured 2026-12-05 with
/// dates in questions; see docs/BENCHMARKS.md).
const MIN_HYBRID_HIT10: f64 = 0.79;
/// At the default relevance floors, both halves: share of answerable
/// questions (with a target in the first 5) whose target is shown as
/// relevant (0.979 measured 2026-12-05), and share of unanswerable ones
/// answered "nothing found": all 60 (0.500) and the 40 on topics the notes
/// never touch (0.725; near misses, details the notes never give about
/// things they mention, 0.050). The goal is 0.97 / 0.8; the first 20
/// unanswerable questions, all on absent topics, gave 0.800 — the 40 added
/// since showed that was fitted to them. A question of slack each.
const MIN_FLOOR_KEPT: f64 = 0.96;
const MIN_FLOOR_NOTHING: f64 = 0.48;
const MIN_FLOOR_ABSENT: f64 = 0.70;

#[derive(Deserialize)]
struct Set {
    notes: Vec<NoteRow>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct NoteRow {
    id: String,
    chat_id: i64,
    date: String,
    text: String,
}

#[derive(Deserialize)]
struct Question {
    question: String,
    targets: Vec<String>,
    kind: String,
    lang: String,
    /// For an unanswerable question: `"absent"` (a topic the notes never
    /// touch) or `"near_miss"` (a detail they never give about something
    /// they do mention).
    #[serde(default)]
    subkind: Option<String>,
}

fn load() -> (tempfile::TempDir, Core, Set, HashMap<u64, String>) {
    let set: Set = serde_json::from_str(include_str!("data/recall_eval.json")).unwrap();
    let cfg = Config::defaults();
    let models = eval_embed::models(&cfg);
    let embedder = Embedder::shared(&models, 1)
        .unwrap_or_else(|e| panic!("{e:#} (make test fetches the models)"));
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let mut ids = HashMap::new();
    store
        .write(|tx| {
            for n in &set.notes {
                let at = chrono::DateTime::parse_from_rfc3339(&n.date)
                    .unwrap()
                    .timestamp_millis();
                let note = tx.insert_note(NewNote {
                    chat_id: n.chat_id,
                    user_id: 1,
                    message_id: None,
                    text: n.text.clone(),
                    created_at: at,
                    source: Source::Import,
                    author: None,
                })?;
                ids.insert(note.id, n.id.clone());
            }
            Ok(())
        })
        .unwrap();
    let core = Core::with_embedder(store, Settings::from_config(&cfg), Some(embedder))
        .unwrap()
        .with_reranker(eval_embed::reranker(&models));
    eval_embed::embed_all(&core, &models);
    assert_eq!(
        core.store().vector_count().unwrap() as usize,
        set.notes.len()
    );
    (dir, core, set, ids)
}

struct Score {
    at: [usize; 3],
    n: usize,
}

fn evaluate(
    core: &Core,
    set: &Set,
    ids: &HashMap<u64, String>,
    w: &Weights,
    filter: &dyn Fn(&Question) -> bool,
) -> Score {
    let mut s = Score { at: [0; 3], n: 0 };
    let answerable = set.questions.iter().filter(|q| !q.targets.is_empty());
    for q in answerable.filter(|q| filter(q)) {
        let hits = core.recall_weighted(&q.question, None, 10, w).unwrap();
        let rank = hits
            .iter()
            .position(|h| q.targets.contains(&ids[&h.note.id]));
        s.n += 1;
        for (i, k) in [1, 5, 10].into_iter().enumerate() {
            if rank.is_some_and(|r| r < k) {
                s.at[i] += 1;
            }
        }
    }
    s
}

fn pct(x: usize, n: usize) -> f64 {
    x as f64 / n.max(1) as f64
}

#[test]
fn hybrid_recall_quality_on_the_project_set() {
    let (_d, core, set, ids) = load();
    let mut base = Settings::from_config(&eval_embed::config()).weights;
    // Experiments: `MNEMO_EVAL_BM25="k1,b"`, `MNEMO_EVAL_WHEN="0.1"`.
    if let Ok(v) = std::env::var("MNEMO_EVAL_BM25") {
        let x: Vec<f32> = v.split(',').map(|p| p.trim().parse().unwrap()).collect();
        (base.bm25.k1, base.bm25.b) = (x[0], x[1]);
    }
    if let Ok(v) = std::env::var("MNEMO_EVAL_WHEN") {
        base.when = v.trim().parse().unwrap();
    }
    let modes = base.ablations();
    let mut hybrid10 = 0.0;
    println!(
        "mode     hit@1  hit@5  hit@10   (n = {})",
        set.questions
            .iter()
            .filter(|q| !q.targets.is_empty())
            .count()
    );
    for (name, w) in &modes {
        let s = evaluate(&core, &set, &ids, w, &|_| true);
        println!(
            "{name:8} {:.3}  {:.3}  {:.3}",
            pct(s.at[0], s.n),
            pct(s.at[1], s.n),
            pct(s.at[2], s.n)
        );
        if *name == "hybrid" {
            hybrid10 = pct(s.at[2], s.n);
        }
    }
    let kinds = floor::kinds(set.questions.iter().map(|q| (q.kind.as_str(), &q.targets)));
    for kind in kinds {
        let s = evaluate(&core, &set, &ids, &base, &|q| q.kind == kind);
        println!(
            "  hybrid {kind:14} n={:3} hit@1 {:.3} hit@10 {:.3}",
            s.n,
            pct(s.at[0], s.n),
            pct(s.at[2], s.n)
        );
    }
    for lang in ["en", "de"] {
        let s = evaluate(&core, &set, &ids, &base, &|q| q.lang == lang);
        println!(
            "  hybrid lang={lang} n={:3} hit@1 {:.3} hit@10 {:.3}",
            s.n,
            pct(s.at[0], s.n),
            pct(s.at[2], s.n)
        );
    }
    // The relevance floor: every question (answerable or not) as /recall
    // asks it; questions alternate between halves A and B.
    let halves: Vec<Vec<Probe>> = [0, 1]
        .into_iter()
        .map(|h| {
            set.questions
                .iter()
                .enumerate()
                .filter(|(i, _)| i % 2 == h)
                .map(|(_, q)| {
                    let hits = core
                        .recall_weighted(&q.question, None, floor::ASKED, &base)
                        .unwrap();
                    Probe::new(&hits, &base, !q.targets.is_empty(), |hit| {
                        q.targets.contains(&ids[&hit.note.id])
                    })
                    .with_subkind(q.subkind.as_deref())
                })
                .collect()
        })
        .collect();
    for (i, (h, p)) in ["A", "B"].iter().zip(&halves).enumerate() {
        let half = |q: &Question| {
            set.questions
                .iter()
                .position(|x| std::ptr::eq(x, q))
                .is_some_and(|j| j % 2 == i)
        };
        let s = evaluate(&core, &set, &ids, &base, &half);
        println!(
            "half {h} hybrid n={:3} hit@1 {:.3} hit@5 {:.3} hit@10 {:.3}",
            s.n,
            pct(s.at[0], s.n),
            pct(s.at[1], s.n),
            pct(s.at[2], s.n)
        );
        println!("half {h} {}", floor::line(p, &base, core.has_reranker()));
    }
    if std::env::var("MNEMO_EVAL_GRID").is_ok() {
        floor::sweep(&halves[0], &halves[1]);
        floor::dump(&halves[0], &halves[1]);
    }
    let all: Vec<Probe> = halves.into_iter().flatten().collect();
    let (kept, nothing) = floor::shares(&all);
    let (absent, _) = floor::split_nothing(&all);
    if !eval_embed::is_default(&eval_embed::models(&Config::defaults())) {
        println!("(the levels asserted are the default model's: not asserted for this one)");
        return;
    }
    assert!(
        kept >= MIN_FLOOR_KEPT && nothing >= MIN_FLOOR_NOTHING && absent.0 >= MIN_FLOOR_ABSENT,
        "relevance floor: kept {kept:.3} (min {MIN_FLOOR_KEPT}), nothing found {nothing:.3} (min {MIN_FLOOR_NOTHING}), on absent topics {:.3} (min {MIN_FLOOR_ABSENT})",
        absent.0
    );
    assert!(
        hybrid10 >= MIN_HYBRID_HIT10,
        "hybrid hit@10 {hybrid10:.3} fell below {MIN_HYBRID_HIT10}"
    );
}
