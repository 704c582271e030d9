//! Core note ingest: one durable commit per note, and batched commits.
//!
//! Real redb files in a temp dir, the real core (access check, validation,
//! store, lexical index update). `cargo bench --bench ingest`.

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BatchSize, BenchmarkId, Criterion, Throughput};
use mnemo::config::Config;
use mnemo::core::{Body, Core, Inbound, Origin, Settings};
use mnemo::store::Store;

fn note(i: u64) -> Inbound {
    Inbound {
        origin: Origin::telegram(i),
        chat_id: 42,
        user_id: 42,
        user_lang: None,
        message_id: Some(i as i64),
        reply_to: None,
        at: 1_700_000_000_000 + i as i64,
        body: Body::Text(format!(
            "note {i}: call Anna about the flat viewing on Friday, bring the documents #{}",
            i % 97
        )),
    }
}

fn core() -> (tempfile::TempDir, Core) {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::defaults();
    cfg.telegram.allowed_user_ids = vec![42];
    let core = Core::new(
        Store::open(dir.path()).unwrap(),
        Settings::from_config(&cfg),
    )
    .unwrap();
    (dir, core)
}

fn ingest(c: &mut Criterion) {
    let mut g = c.benchmark_group("ingest");
    g.measurement_time(Duration::from_secs(8));

    let (_d, single) = core();
    let mut i = 0u64;
    g.throughput(Throughput::Elements(1));
    g.bench_function("one_commit_per_note", |b| {
        b.iter(|| {
            i += 1;
            single.handle(note(i)).unwrap()
        })
    });

    for batch in [100u64, 1000] {
        let (_d, core) = core();
        let mut next = 1_000_000u64;
        g.throughput(Throughput::Elements(batch));
        g.bench_with_input(BenchmarkId::new("batched", batch), &batch, |b, &n| {
            b.iter_batched(
                || {
                    let evs: Vec<Inbound> = (next..next + n).map(note).collect();
                    next += n;
                    evs
                },
                |evs| core.handle_batch(&evs).unwrap(),
                BatchSize::LargeInput,
            )
        });
    }
    g.finish();
}

criterion_group!(benches, ingest);
criterion_main!(benches);
