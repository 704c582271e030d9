//! Retrieval quality on imported conversations: tests/data/conversation_eval.json
//! holds three long two-person chats (English and German, many sessions over
//! months, written for this project) and questions about them, each with the
//! turns that answer it. The chats go through the real import path
//! (`Core::import`, authors and dates kept) and the real MiniLM model; every
//! question is asked within its chat, as `mnemo recall --chat` does.
//!
//! Printed (`cargo test --test conversation_eval -- --nocapture`) and recorded
//! in docs/BENCHMARKS.md: hit@1/5/10 (a target turn among the first k) and
//! evidence recall@10 (the share of all target turns among the first 10), for
//! lexical only, vector only and hybrid, and hybrid per kind of question. The
//! test fails if hybrid hit@10 drops below the level reached when it was
//! written.

use std::collections::HashMap;

use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::import::ImportedMessage;
use mnemo::memory::embed::Embedder;
use mnemo::memory::recall::Weights;
use mnemo::store::Store;
use serde::Deserialize;

#[path = "support/eval_embed.rs"]
mod eval_embed;
#[path = "support/floor.rs"]
mod floor;
use floor::Probe;

/// Hybrid hit@10 must stay at or above this (0.851 measured 2026-12-05, see
/// docs/BENCHMARKS.md).
const MIN_HYBRID_HIT10: f64 = 0.84;
/// Each half (A tunes, B is held out) at or above these (A 0.507 / 0.836,
/// B 0.515 / 0.866 hit@1 / hit@10 measured 2026-12-05).
const MIN_HALF_HIT10: f64 = 0.83;
const MIN_HALF_HIT1: f64 = 0.50;
/// At the default relevance floors, with the cross-encoder, per half: share
/// of answerable questions (target in the first 5) whose target is shown as
/// relevant, share of the 36 unanswerable ones answered "nothing found", and
/// of those on topics the chat never touches (A 0.873 / 0.694 / 0.880 of 25,
/// B 0.879 / 0.556 / 0.708 of 24 measured 2026-12-05; near misses, details
/// the chat never gives about things it talks about, 0.273 / 0.250).
/// Goal 0.97 / 0.8: not met. The first 12 unanswerable questions a half gave
/// 0.917 / 0.833; the 48 added since showed that was fitted to them. About a
/// question of slack each.
const MIN_FLOOR_KEPT: f64 = 0.85;
const MIN_FLOOR_NOTHING: f64 = 0.5;
const MIN_FLOOR_ABSENT: f64 = 0.65;
/// The same without the cross-encoder (`MNEMO_EVAL_RERANK=0`: A 0.794 /
/// 0.500 / 0.680, B 0.794 / 0.389 / 0.542).
const MIN_PLAIN_KEPT: f64 = 0.77;
const MIN_PLAIN_NOTHING: f64 = 0.35;
const MIN_PLAIN_ABSENT: f64 = 0.5;

#[derive(Deserialize)]
struct Set {
    turns: Vec<Turn>,
    questions: Vec<Question>,
}

#[derive(Deserialize)]
struct Turn {
    id: String,
    chat_id: i64,
    date: String,
    author: String,
    text: String,
}

#[derive(Deserialize)]
struct Question {
    id: String,
    chat_id: i64,
    question: String,
    targets: Vec<String>,
    kind: String,
    /// For an unanswerable question: `"absent"` (a topic the set never
    /// touches) or `"near_miss"` (a detail it never gives about something
    /// it does talk about).
    #[serde(default)]
    subkind: Option<String>,
}

/// The core with every chat imported and embedded, and note id → turn id.
fn load() -> (tempfile::TempDir, Core, Set, HashMap<u64, String>) {
    let set: Set =
        serde_json::from_str(include_str!("data/conversation_eval.json")).expect("valid set");
    let cfg = Config::defaults();
    let models = eval_embed::models(&cfg);
    let embedder = Embedder::shared(&models, 1)
        .unwrap_or_else(|e| panic!("{e:#} (make test fetches the models)"));
    let dir = tempfile::tempdir().unwrap();
    let core = Core::with_embedder(
        Store::open(dir.path()).unwrap(),
        Settings::from_config(&cfg),
        Some(embedder),
    )
    .unwrap()
    .with_reranker(eval_embed::reranker(&models));
    let speakers: Vec<&str> = set.turns.iter().map(|t| t.author.as_str()).collect();
    let msgs: Vec<ImportedMessage> = set
        .turns
        .iter()
        .enumerate()
        .map(|(i, t)| ImportedMessage {
            chat_id: t.chat_id,
            message_id: i as i64 + 1,
            author: Some(t.author.clone()),
            user_id: speakers.iter().position(|s| *s == t.author).unwrap() as i64 + 1,
            date: chrono::DateTime::parse_from_rfc3339(&t.date)
                .unwrap()
                .timestamp_millis(),
            text: t.text.clone(),
        })
        .collect();
    let sum = core.import(&msgs, 500, |_, _| {}).unwrap();
    assert_eq!(sum.imported as usize, set.turns.len());
    eval_embed::embed_all(&core, &models);
    assert_eq!(
        core.store().vector_count().unwrap() as usize,
        set.turns.len()
    );
    // A fresh store numbers the imported notes in import order.
    let mut ids = HashMap::new();
    for (i, t) in set.turns.iter().enumerate() {
        let id = i as u64 + 1;
        let note = core.store().note(id).unwrap().expect("imported turn");
        assert_eq!(
            // Stored in the export's own chat space, shown as its id.
            (mnemo::store::shown_chat(note.chat_id), note.text.as_str()),
            (t.chat_id, t.text.as_str())
        );
        ids.insert(id, t.id.clone());
    }
    (dir, core, set, ids)
}

#[derive(Default)]
struct Score {
    hit: [usize; 3],
    /// Sum over questions of the share of their targets in the first 10.
    evidence10: f64,
    n: usize,
}

impl Score {
    fn line(&self) -> String {
        let p = |x: usize| x as f64 / self.n.max(1) as f64;
        format!(
            "n={:3}  hit@1 {:.3}  hit@5 {:.3}  hit@10 {:.3}  evidence@10 {:.3}",
            self.n,
            p(self.hit[0]),
            p(self.hit[1]),
            p(self.hit[2]),
            self.evidence10 / self.n.max(1) as f64
        )
    }

    fn hit1(&self) -> f64 {
        self.hit[0] as f64 / self.n.max(1) as f64
    }

    fn hit10(&self) -> f64 {
        self.hit[2] as f64 / self.n.max(1) as f64
    }
}

fn evaluate(
    core: &Core,
    set: &Set,
    ids: &HashMap<u64, String>,
    w: &Weights,
    filter: &dyn Fn(&Question) -> bool,
) -> Score {
    let mut s = Score::default();
    let answerable = set.questions.iter().filter(|q| !q.targets.is_empty());
    for q in answerable.filter(|q| filter(q)) {
        let hits = core
            .recall_weighted(&q.question, Some(q.chat_id), 10, w)
            .unwrap();
        let found: Vec<&str> = hits.iter().map(|h| ids[&h.note.id].as_str()).collect();
        let rank = found.iter().position(|f| q.targets.iter().any(|t| t == f));
        s.n += 1;
        for (i, k) in [1, 5, 10].into_iter().enumerate() {
            if rank.is_some_and(|r| r < k) {
                s.hit[i] += 1;
            }
        }
        let covered = q
            .targets
            .iter()
            .filter(|t| found.contains(&t.as_str()))
            .count();
        s.evidence10 += covered as f64 / q.targets.len().max(1) as f64;
    }
    s
}

/// Cross-validation: every combination of weights on half A, best first by
/// hit@10 + hit@1, each with its figures on half B (`MNEMO_EVAL_GRID=1`:
/// fusion weights, window and speaker; `=bm25`: BM25's k1 × b; `=turns`:
/// the window's sides, the vector window and the question penalty;
/// `=sitting`: the sitting share; `=when`: what naming a time adds for a
/// question that asks when; `=floor`: no grid, only the floor sweep).
fn grid(core: &Core, set: &Set, ids: &HashMap<u64, String>, base: Weights) {
    let mode = std::env::var("MNEMO_EVAL_GRID").unwrap_or_default();
    let mut combos = Vec::new();
    for lexical in [0.5, 0.6, 0.7, 0.8, 0.9] {
        let w = Weights {
            turn_lexical: lexical,
            turn_vector: 1.0 - lexical,
            ..base
        };
        match mode.as_str() {
            "bm25" if (0.7..=0.8).contains(&lexical) => {
                for k1 in [0.6, 0.9, 1.2, 1.6, 2.0] {
                    for b in [0.0, 0.2, 0.4, 0.6, 0.8] {
                        combos.push(Weights {
                            bm25: mnemo::memory::lexical::Bm25 { k1, b },
                            ..w
                        });
                    }
                }
            }
            "turns" if (0.7..=0.8).contains(&lexical) => {
                for (window, window_after) in [(0.25, 0.1), (0.25, 0.25)] {
                    for vector_window in [0.0, 0.15, 0.3, 0.45] {
                        for question in [0.0, 0.05, 0.1, 0.15, 0.2] {
                            combos.push(Weights {
                                window,
                                window_after,
                                vector_window,
                                question,
                                ..w
                            });
                        }
                    }
                }
            }
            "sitting" if (0.6..=0.8).contains(&lexical) => {
                for sitting in [0.3, 0.4, 0.5, 0.6] {
                    for vector_window in [0.0, 0.3] {
                        for question in [0.05, 0.1, 0.15] {
                            combos.push(Weights {
                                sitting,
                                sitting_turns: 15,
                                vector_window,
                                window_after: 0.1,
                                question,
                                ..w
                            });
                        }
                    }
                }
            }
            "when" if lexical == 0.7 => {
                for when in [0.0, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4] {
                    combos.push(Weights { when, ..w });
                }
            }
            "bm25" | "turns" | "sitting" | "when" | "floor" => {}
            _ => {
                for window in [0.0, 0.15, 0.25, 0.5] {
                    for speaker in [0.0, 0.1, 0.2, 0.3] {
                        combos.push(Weights {
                            window,
                            window_after: window,
                            speaker,
                            ..w
                        });
                    }
                }
            }
        }
    }
    let mut rows = Vec::new();
    for w in combos {
        let a = evaluate(core, set, ids, &w, &|q| half(q) == 'A');
        let b = evaluate(core, set, ids, &w, &|q| half(q) == 'B');
        let key = a.hit10() + a.hit1();
        rows.push((
            key,
            format!(
                "lex {} win {}/{} vwin {} sit {}/{} ask {} spk {} when {} k1 {} b {}\n  A {}\n  B {}",
                w.turn_lexical,
                w.window,
                w.window_after,
                w.vector_window,
                w.sitting,
                w.sitting_turns,
                w.question,
                w.speaker,
                w.when,
                w.bm25.k1,
                w.bm25.b,
                a.line(),
                b.line()
            ),
        ));
    }
    rows.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (_, r) in rows.iter().take(8) {
        println!("{r}");
    }
    if let Some((_, worst)) = rows.last() {
        println!("worst of {} on A:\n{worst}", rows.len());
    }
}

/// The questions of half `h` whose target is not first, with the first
/// hits and the targets (`MNEMO_EVAL_MISSES=A`: looking at misses of the
/// tuning half only).
fn misses(core: &Core, set: &Set, ids: &HashMap<u64, String>, w: &Weights, h: char) {
    let text: HashMap<&str, (&str, &str)> = set
        .turns
        .iter()
        .map(|t| (t.id.as_str(), (t.author.as_str(), t.text.as_str())))
        .collect();
    for q in set
        .questions
        .iter()
        .filter(|q| half(q) == h && !q.targets.is_empty())
    {
        let hits = core
            .recall_weighted(&q.question, Some(q.chat_id), 50, w)
            .unwrap();
        let found: Vec<&str> = hits.iter().map(|h| ids[&h.note.id].as_str()).collect();
        let rank = found.iter().position(|f| q.targets.iter().any(|t| t == f));
        if rank == Some(0) {
            continue;
        }
        println!("MISS {} [{}] rank {:?}: {}", q.id, q.kind, rank, q.question);
        for hit in hits.iter().take(3) {
            let (a, t) = text[ids[&hit.note.id].as_str()];
            let p = hit.parts;
            println!(
                "   hit {} lex {:.2} vec {:.2} spk {:.2} | {a}: {t}",
                ids[&hit.note.id], p.lexical, p.vector, p.speaker
            );
        }
        for t in &q.targets {
            let (a, x) = text[t.as_str()];
            let at = found.iter().position(|f| f == t);
            let p = at.map(|i| hits[i].parts).unwrap_or_default();
            println!(
                "   target {t} at {at:?} lex {:.2} vec {:.2} | {a}: {x}",
                p.lexical, p.vector
            );
        }
    }
}

/// Every question of half `h` (answerable or not) asked as `/recall` does,
/// for the relevance floor.
fn probes(core: &Core, set: &Set, ids: &HashMap<u64, String>, w: &Weights, h: char) -> Vec<Probe> {
    set.questions
        .iter()
        .filter(|q| half(q) == h)
        .map(|q| {
            let hits = core
                .recall_weighted(&q.question, Some(q.chat_id), floor::ASKED, w)
                .unwrap();
            Probe::new(&hits, w, !q.targets.is_empty(), |hit| {
                q.targets.contains(&ids[&hit.note.id])
            })
            .with_subkind(q.subkind.as_deref())
        })
        .collect()
}

/// Half A (tuning) or B (held out): questions alternate by their number.
fn half(q: &Question) -> char {
    let n: u32 =
        q.id.trim_start_matches(|c: char| !c.is_ascii_digit())
            .parse()
            .unwrap_or(0);
    if n % 2 == 0 {
        'A'
    } else {
        'B'
    }
}

/// Weights from `MNEMO_EVAL_WEIGHTS="turn_lexical,turn_vector,recency,window,speaker"`
/// (window: both sides),
/// `MNEMO_EVAL_BM25="k1,b"`, `MNEMO_EVAL_TURNS="window_after,vector_window,question"`
/// and `MNEMO_EVAL_WHEN="0.1"` (experiments), else the defaults.
fn weights() -> Weights {
    let mut w = Settings::from_config(&eval_embed::config()).weights;
    if let Ok(v) = std::env::var("MNEMO_EVAL_BM25") {
        let x: Vec<f32> = v.split(',').map(|p| p.trim().parse().unwrap()).collect();
        (w.bm25.k1, w.bm25.b) = (x[0], x[1]);
    }
    if let Ok(v) = std::env::var("MNEMO_EVAL_WEIGHTS") {
        let x: Vec<f32> = v.split(',').map(|p| p.trim().parse().unwrap()).collect();
        (
            w.turn_lexical,
            w.turn_vector,
            w.recency,
            w.window,
            w.speaker,
        ) = (x[0], x[1], x[2], x[3], x[4]);
        w.window_after = w.window;
    }
    if let Ok(v) = std::env::var("MNEMO_EVAL_WHEN") {
        w.when = v.trim().parse().unwrap();
    }
    if let Ok(v) = std::env::var("MNEMO_EVAL_TURNS") {
        let x: Vec<f32> = v.split(',').map(|p| p.trim().parse().unwrap()).collect();
        (w.window_after, w.vector_window, w.question) = (x[0], x[1], x[2]);
    }
    w
}

#[test]
fn recall_quality_on_imported_conversations() {
    let (_d, core, set, ids) = load();
    let base = weights();
    if std::env::var("MNEMO_EVAL_GRID").is_ok() {
        grid(&core, &set, &ids, base);
    }
    let mut halves = Vec::new();
    for h in ['A', 'B'] {
        let s = evaluate(&core, &set, &ids, &base, &|q| half(q) == h);
        println!("half {h}   {}", s.line());
        let p = probes(&core, &set, &ids, &base, h);
        println!("  {}", floor::line(&p, &base, core.has_reranker()));
        halves.push((s, floor::shares(&p), floor::split_nothing(&p).0 .0));
    }
    if std::env::var("MNEMO_EVAL_GRID").is_ok() {
        let a = probes(&core, &set, &ids, &base, 'A');
        let b = probes(&core, &set, &ids, &base, 'B');
        floor::sweep(&a, &b);
        floor::dump(&a, &b);
    }
    if let Ok(h) = std::env::var("MNEMO_EVAL_MISSES") {
        misses(&core, &set, &ids, &base, h.chars().next().unwrap_or('A'));
    }
    let modes = base.ablations();
    println!(
        "{} turns, {} questions ({} unanswerable)",
        set.turns.len(),
        set.questions.len(),
        set.questions
            .iter()
            .filter(|q| q.targets.is_empty())
            .count()
    );
    let mut hybrid10 = 0.0;
    for (name, w) in &modes {
        let s = evaluate(&core, &set, &ids, w, &|_| true);
        println!("{name:8} {}", s.line());
        if *name == "hybrid" {
            hybrid10 = s.hit10();
        }
    }
    let kinds = floor::kinds(set.questions.iter().map(|q| (q.kind.as_str(), &q.targets)));
    for kind in kinds {
        let s = evaluate(&core, &set, &ids, &base, &|q| q.kind == kind);
        println!("  hybrid {kind:11} {}", s.line());
    }
    let mut chats: Vec<i64> = set.questions.iter().map(|q| q.chat_id).collect();
    chats.sort_unstable();
    chats.dedup();
    for chat in chats {
        let s = evaluate(&core, &set, &ids, &base, &|q| q.chat_id == chat);
        println!("  hybrid chat {chat:<6} {}", s.line());
    }
    if !eval_embed::is_default(&eval_embed::models(&Config::defaults())) {
        println!("(the levels asserted are the default model's: not asserted for this one)");
        return;
    }
    let (min_kept, min_nothing, min_absent) = if core.has_reranker() {
        (MIN_FLOOR_KEPT, MIN_FLOOR_NOTHING, MIN_FLOOR_ABSENT)
    } else {
        (MIN_PLAIN_KEPT, MIN_PLAIN_NOTHING, MIN_PLAIN_ABSENT)
    };
    for (i, (s, (kept, nothing), absent)) in halves.iter().enumerate() {
        assert!(
            s.hit10() >= MIN_HALF_HIT10 && s.hit1() >= MIN_HALF_HIT1,
            "half {i}: {}",
            s.line()
        );
        assert!(
            *kept >= min_kept && *nothing >= min_nothing && *absent >= min_absent,
            "half {i}: relevance floor kept {kept:.3}, nothing found {nothing:.3}, on absent topics {absent:.3}"
        );
    }
    assert!(
        hybrid10 >= MIN_HYBRID_HIT10,
        "hybrid hit@10 {hybrid10:.3} fell below {MIN_HYBRID_HIT10}"
    );
}
