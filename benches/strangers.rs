//! What strangers cost: 10,000 messages from users who are not allowed.
//!
//! `cargo bench --bench strangers` — a plain timed `main` (no network, no
//! model): each message goes the way the Telegram listener and handler
//! take it (the inbox decision, then [`Core::handle`]) into a real redb
//! store. Printed: wall time, CPU seconds (user + system, getrusage) and
//! how much the database file grew. `BENCH_STRANGERS` sets the count
//! (default 10,000; 200 under `cargo test`).

use std::time::Instant;

use mnemo::config::Config;
use mnemo::core::{Body, Core, Inbound, Origin, Settings};
use mnemo::store::Store;

fn cpu_secs() -> f64 {
    // SAFETY: getrusage only writes the struct it is given.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    let t = |tv: libc::timeval| tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6;
    t(ru.ru_utime) + t(ru.ru_stime)
}

fn update_json(update_id: u64, user: i64, text: &str) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({
        "update_id": update_id,
        "message": {
            "message_id": update_id,
            "date": 1_764_900_000,
            "chat": {"id": user, "type": "private", "first_name": "S"},
            "from": {"id": user, "is_bot": false, "first_name": "S", "language_code": "en"},
            "text": text,
        }
    }))
    .unwrap()
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--test" || a == "--list")
        || !std::env::args().any(|a| a == "--bench");
    let n: u64 = std::env::var("BENCH_STRANGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if smoke { 200 } else { 10_000 });
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::defaults();
    cfg.telegram.allowed_user_ids = vec![1];
    let core = Core::new(
        Store::open(dir.path()).unwrap(),
        Settings::from_config(&cfg),
    )
    .unwrap();
    let db = dir.path().join("mnemo.redb");
    let size = || std::fs::metadata(&db).map_or(0, |m| m.len());
    let (size0, cpu0, t0) = (size(), cpu_secs(), Instant::now());
    for i in 0..n {
        let id = 1_000 + i;
        // 50 strangers take turns; every tenth message asks /recall.
        let user = 10_000 + (i % 50) as i64;
        let text = if i % 10 == 0 {
            "/recall the secret plans".to_owned()
        } else {
            format!("hello {i}")
        };
        let raw = update_json(id, user, &text);
        let update: teloxide::types::Update = serde_json::from_slice(&raw).unwrap();
        if mnemo::channels::telegram::listener::needs_inbox(&core, &update) {
            core.receive_update(id, &raw).unwrap();
        }
        core.handle(Inbound {
            origin: Origin::telegram(id),
            chat_id: user,
            user_id: user,
            user_lang: Some("en".into()),
            message_id: Some(id as i64),
            reply_to: None,
            at: mnemo::core::now_ms(),
            body: Body::Text(text),
        })
        .unwrap();
    }
    let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_secs() - cpu0);
    let grown = size().saturating_sub(size0);
    println!(
        "strangers: {n} messages from 50 strangers: wall {wall:.2} s, CPU {cpu:.2} s ({:.0} µs/message), database +{:.1} KiB ({} B/message), outbox {}",
        cpu / n as f64 * 1e6,
        grown as f64 / 1024.0,
        grown / n.max(1),
        core.store().outbox_len().unwrap(),
    );
}
