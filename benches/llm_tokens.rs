//! The LLM input budget: tiktoken's load time and memory, and the cost of
//! ranking and cutting a period's notes to fit.
//!
//! `cargo bench --bench llm_tokens` — a plain timed `main` (no network, no
//! model): the o200k encoding is loaded once (time and VmRSS growth from
//! /proc/self/status), then [`mnemo::llm::budget`] runs over a day of 200
//! notes and a week of 2,000 (synthetic, 20-60 words each, some flagged),
//! with the default budget (6,000 input tokens, 800 per answer, 3 passes);
//! the median of `BENCH_RUNS` (default 5) runs is printed, with the raw
//! counting speed. Under `cargo test` it runs one small pass as a smoke test.

use std::time::{Duration, Instant};

use mnemo::llm::{budget, tokens, Request, SourceNote};

/// A /proc/self/status field in MB.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

const WORDS: &[&str] = &[
    "call",
    "Anna",
    "about",
    "the",
    "flat",
    "deposit",
    "on",
    "Friday",
    "dentist",
    "moved",
    "to",
    "Tuesday",
    "decided",
    "we",
    "take",
    "train",
    "not",
    "car",
    "buy",
    "oat",
    "milk",
    "bread",
    "coffee",
    "idea",
    "for",
    "talk",
    "lost",
    "suitcase",
    "in",
    "Lisbon",
    "meeting",
    "slides",
    "need",
    "new",
    "numbers",
    "Termin",
    "beim",
    "Zahnarzt",
    "verschoben",
];

fn notes(n: usize) -> Vec<SourceNote> {
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    (0..n)
        .map(|i| {
            let len = 20 + (next() % 41) as usize;
            let text: Vec<&str> = (0..len)
                .map(|_| WORDS[(next() % WORDS.len() as u64) as usize])
                .collect();
            SourceNote {
                id: i as u64 + 1,
                at_ms: 1_779_000_000_000 + i as i64 * 60_000,
                text: text.join(" "),
                priority: i % 23 == 0,
                decision: i % 17 == 0,
                todo: i % 7 == 0,
                score: (next() % 5) as i32 - 2,
            }
        })
        .collect()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let runs: usize = if bench {
        std::env::var("BENCH_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(5)
    } else {
        1
    };
    let rss0 = status_mb("VmRSS");
    let t0 = Instant::now();
    tokens("warm up");
    let load = t0.elapsed();
    let rss1 = status_mb("VmRSS");
    println!(
        "o200k load: {:.0} ms, VmRSS {rss0:.1} → {rss1:.1} MB (+{:.1} MB)",
        load.as_secs_f64() * 1e3,
        rss1 - rss0
    );
    let sizes: &[(usize, &str)] = if bench {
        &[(200, "day"), (2000, "week")]
    } else {
        &[(50, "day")]
    };
    for &(n, period) in sizes {
        let req = Request {
            chat_id: 1,
            period: period.into(),
            from_ms: 1_779_000_000_000,
            to_ms: 1_779_000_000_000 + n as i64 * 60_000,
            lang: "en".into(),
            notes: notes(n),
        };
        let all: String = req
            .notes
            .iter()
            .map(|n| n.text.as_str())
            .collect::<Vec<_>>()
            .join("\n");
        let mut count = Vec::new();
        let mut cut = Vec::new();
        let mut b = None;
        let mut total = 0;
        for _ in 0..runs {
            let t = Instant::now();
            total = tokens(&all);
            count.push(t.elapsed());
            let t = Instant::now();
            b = budget(&req, 3, 6000, 800);
            cut.push(t.elapsed());
        }
        let b = b.expect("some notes fit");
        let count = median(count);
        println!(
            "{period} of {n} notes ({total} tokens, {:.0} KB): counting {:.1} ms ({:.1} M tokens/s); \
             rank and cut {:.1} ms → {} notes in, {} left out, draft {} tokens",
            all.len() as f64 / 1024.0,
            count.as_secs_f64() * 1e3,
            total as f64 / count.as_secs_f64() / 1e6,
            median(cut).as_secs_f64() * 1e3,
            b.ids.len(),
            b.left_out,
            b.draft_tokens
        );
    }
    println!("VmHWM {:.1} MB", status_mb("VmHWM"));
}
