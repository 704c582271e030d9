//! Building a digest: a day of 200 notes and a week of 2,000 (extractive:
//! reading the period, the items, the vectors, clustering the themes).
//!
//! `cargo bench --bench digest` — a plain timed `main`: a store with the
//! notes of one chat (one in five a to-do, decision or priority) and a
//! synthetic vector for each (500 clusters, as the other benches), then
//! `period_notes` + `build` for the day and for the week; the median of
//! `BENCH_RUNS` (default 7) runs is printed. Under `cargo test` it runs one
//! small pass as a smoke test.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use mnemo::digest::{build, period_notes, Period};
use mnemo::store::{NewNote, Source, Store};
use support::synth::{mark_model, Rng};

const CHAT: i64 = 4242;
const TOPICS: &[&str] = &[
    "the garden fence and the paint for it",
    "the quarterly report for the board",
    "train tickets to Hamburg for the conference",
    "the dentist appointment and the insurance forms",
    "Anna's birthday present and the party",
    "the server migration and the backup plan",
];

fn text(i: usize) -> String {
    let topic = TOPICS[i % TOPICS.len()];
    match i % 5 {
        0 => format!("todo: sort out {topic} (item {i})"),
        1 => format!("We decided to go ahead with {topic}, version {i}"),
        2 => format!("urgent: {topic} needs an answer by friday ({i})"),
        _ => format!("Some thoughts on {topic}: nothing final yet, note {i}"),
    }
}

/// A store whose chat got `n` notes spread over `span` before `end`.
fn store_with(dir: &std::path::Path, n: usize, span: i64, end: i64) {
    let store = Store::open(dir).unwrap();
    store
        .write(|tx| {
            for i in 0..n {
                tx.insert_note(NewNote {
                    chat_id: CHAT,
                    user_id: CHAT,
                    message_id: Some(i as i64 + 1),
                    text: text(i),
                    created_at: end - span + (span / n as i64) * i as i64 + 1,
                    source: Source::Telegram,
                    author: None,
                })?;
            }
            Ok(())
        })
        .unwrap();
    drop(store);
    mark_model(dir, &mut Rng(0x9E37_79B9_7F4A_7C15));
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let smoke = std::env::args().all(|a| a != "--bench");
    let runs: usize = if smoke {
        1
    } else {
        std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|r| r.parse().ok())
            .unwrap_or(7)
    };
    let end = 1_796_000_000_000;
    let cases: &[(&str, Period, usize)] = if smoke {
        &[("day", Period::Day, 20)]
    } else {
        &[("day", Period::Day, 200), ("week", Period::Week, 2000)]
    };
    for &(name, period, n) in cases {
        let dir = tempfile::tempdir().unwrap();
        let span = period.length().num_milliseconds();
        store_with(dir.path(), n, span, end);
        let store = Store::open(dir.path()).unwrap();
        let mut times = Vec::new();
        let mut themes = 0;
        for _ in 0..runs {
            let t0 = Instant::now();
            let notes = period_notes(&store, CHAT, 0, end - span, end).unwrap();
            let d = build(&store, CHAT, period, (end - span, end), &notes).unwrap();
            times.push(t0.elapsed());
            assert_eq!(d.note_ids.len(), n);
            themes = d.sections.themes.len();
        }
        println!(
            "digest {name}: {n} notes, {themes} themes, build median {:.1} ms over {runs} runs",
            median(times).as_secs_f64() * 1000.0
        );
    }
}
