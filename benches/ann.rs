//! The HNSW graph alone: build time and recall@10 against exact search, by
//! build parameters and beam width, on synthetic clustered vectors.
//!
//! `cargo bench --bench ann` — `BENCH_ANN_N` points (default 100000) in
//! `BENCH_ANN_CLUSTERS` clusters (default N / 2000: the 1M set of
//! benches/recall.rs has clusters of 2,000, and their size is what makes
//! its top 10s near-ties), each point its cluster's centre plus uniform
//! noise in every dimension (`BENCH_ANN_NOISE`, default 0.09 as there), in
//! one chat. `BENCH_ANN_PARAMS="16:64,16:200"` lists the graphs to build
//! (links per point : ef at build time; default mnemo's). 200 queries are
//! noisy copies of stored points (0.05 noise). Under `cargo test` it runs a
//! tiny smoke pass.

use std::time::Instant;

#[path = "../tests/support/synth.rs"]
#[allow(dead_code)]
mod synth;

use mnemo::memory::ann::{self, Ann, Params};
use mnemo::memory::vector::VectorIndex;
use mnemo::memory::Chats;

fn env<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n: usize = if bench {
        env("BENCH_ANN_N", 100_000)
    } else {
        3_000
    };
    let clusters: usize = env("BENCH_ANN_CLUSTERS", (n / 2000).max(1));
    let noise: f32 = env("BENCH_ANN_NOISE", 0.09);
    let params: Vec<Params> = std::env::var("BENCH_ANN_PARAMS")
        .ok()
        .map(|s| {
            s.split(',')
                .filter_map(|p| {
                    // m:ef_construction, or m:ef_construction:keep (keep pruned)
                    let mut it = p.split(':');
                    Some(Params {
                        m: it.next()?.trim().parse().ok()?,
                        ef_construction: it.next()?.trim().parse().ok()?,
                        keep_pruned: it.next().map(str::trim) == Some("keep"),
                    })
                })
                .collect()
        })
        .unwrap_or_else(|| vec![ann::PARAMS]);
    let mut rng = synth::Rng(0x9E37_79B9_7F4A_7C15);
    let dim = 384;
    let centres: Vec<Vec<f32>> = (0..clusters)
        .map(|_| synth::unit((0..dim).map(|_| rng.f()).collect()))
        .collect();
    let mut idx = VectorIndex::new(dim);
    for i in 0..n {
        let c = &centres[(i * 7919) % clusters];
        let v = synth::unit(c.iter().map(|x| x + noise * rng.f()).collect());
        idx.insert(i as u64, 1, &v);
    }
    let qn = if bench { 200 } else { 20 };
    let queries: Vec<Vec<f32>> = idx
        .iter()
        .step_by((n / qn).max(1))
        .take(qn)
        .map(|(_, _, v)| synth::unit(v.iter().map(|x| x.to_f32() + 0.05 * rng.f()).collect()))
        .collect();
    let exact: Vec<Vec<(u64, f32)>> = queries
        .iter()
        .map(|q| idx.search_exact(q, Chats::ALL, 10))
        .collect();
    println!("{n} points in {clusters} clusters (noise {noise}), {qn} queries near stored points");
    let tmp = tempfile::tempdir().unwrap();
    for p in params {
        let t = Instant::now();
        let mut built = Ann::build_with(&idx, "bench", p);
        let build_s = t.elapsed().as_secs_f64();
        let links_mb = built.graph_bytes().0 .0 >> 20;
        // The same graph as a start finds it: saved, then read back mapped.
        let dir = tmp
            .path()
            .join(format!("{}-{}-{}", p.m, p.ef_construction, p.keep_pruned));
        built.save(&dir).unwrap();
        let t = Instant::now();
        let (loaded, how) = Ann::load_or_build(&dir, &idx, "bench");
        let load_s = t.elapsed().as_secs_f64();
        assert_eq!(how, ann::Origin::Loaded { added: 0 });
        for (graph, what) in [(&built, "as built"), (&loaded, "saved and reloaded")] {
            let mut row = String::new();
            let mut widest = 0.0;
            for ef in [64, 128, 256, 512] {
                let t = Instant::now();
                let approx: Vec<Vec<(u64, f32)>> = queries
                    .iter()
                    .map(|q| graph.search_ef(q, 10, ef, Chats::ALL))
                    .collect();
                let ms = t.elapsed().as_secs_f64() * 1e3 / qn as f64;
                let lost;
                (widest, lost) = synth::recall_of(&exact, &approx);
                // Queries that found none of their true top 10: the search
                // ended in another cluster, not short of candidates.
                row += &format!(" | ef {ef}: {widest:.3} ({ms:.2} ms, {lost} lost)");
            }
            println!(
                "  M {} ef_construction {}{}: built in {build_s:.1}s, loaded in {load_s:.2}s, links {links_mb} MB, ground points with < 4 / < 16 links {} / {}, < 4 / < 16 in-links {} / {}, {what}{row}",
                p.m, p.ef_construction,
                if p.keep_pruned { " keep pruned" } else { "" },
                graph.short(4),
                graph.short(16),
                graph.thin(4),
                graph.thin(16),
            );
            if !bench {
                assert!(
                    widest >= 0.95,
                    "a small graph is near exact at ef 512: {row}"
                );
            }
        }
    }
}
