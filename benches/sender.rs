//! The outbox sender's own cost, apart from the network: what choosing the
//! next send and reading new outbox entries cost on the async thread as the
//! backlog grows.
//!
//! `cargo bench --bench sender` — a plain timed `main`:
//! - the schedule ([`Queues`]): a send's pick + settle with one chat's
//!   backlog of 10 / 10,000 / 100,000 replies (plus one other chat), and
//!   with 1 / 100 / 1,000 chats holding replies (a pick looks at the chats,
//!   not at their replies), and a pick that finds all of n chats waiting
//!   on their buckets (the worst case: every chat looked at);
//! - the outbox read: the sender's incremental read (`outbox_after` the
//!   last entry read: the new ones only) against reading the whole outbox,
//!   on a real redb file holding 10,000 entries.
//!
//! Under `cargo test` it runs a small smoke pass.

use std::time::{Duration, Instant};

use mnemo::channels::telegram::queue::{Pick, Queues, RateLimiter, Step};
use mnemo::config::Config;
use mnemo::core::{Core, Outcome, Reply, Settings};
use mnemo::i18n::Line;
use mnemo::store::Store;

fn reply(chat: i64, n: u64) -> Reply {
    Reply {
        chat_id: chat,
        reply_to: Some(n as i64),
        lang: "en".into(),
        lines: vec![Line::new("note-saved").text("id", n.to_string())],
        note_id: Some(n),
        chunks_sent: 0,
        buttons: Vec::new(),
        digest: None,
        low_priority: false,
    }
}

/// No limit gets in the way: what is measured is the bookkeeping.
fn unlimited() -> RateLimiter {
    RateLimiter::new(1_000_000_000, 1e12, 1e12)
}

/// Nanoseconds per send (pick + head clone + settle) over `sends` sends,
/// with `backlog` replies queued in chat 1 and one in each of `chats - 1`
/// others (each chat gets a new reply as one goes).
fn schedule(backlog: u64, chats: i64, sends: u64) -> f64 {
    let mut q = Queues::new(unlimited());
    let mut seq = 0;
    for _ in 0..backlog {
        seq += 1;
        q.push(seq, reply(1, seq));
    }
    for c in 2..=chats {
        seq += 1;
        q.push(seq, reply(c, seq));
    }
    let t = Instant::now();
    for _ in 0..sends {
        let now = tokio::time::Instant::now();
        let Pick::Send(chat) = q.pick(now) else {
            panic!("nothing to send");
        };
        let head = q.head(chat).unwrap().clone();
        std::hint::black_box(&head);
        q.settle(chat, Step::Finished, now);
        // Keep the shape: the chat gets a new reply at the end of its queue.
        seq += 1;
        q.push(seq, reply(chat, seq));
    }
    t.elapsed().as_nanos() as f64 / sends as f64
}

/// Nanoseconds per pick when each of `chats` chats has a reply queued but
/// an empty bucket: the worst case, every chat looked at, nothing sent.
fn all_waiting(chats: i64, picks: u64) -> f64 {
    let mut q = Queues::new(RateLimiter::new(1, 1e-6, 1e12));
    let now = tokio::time::Instant::now();
    for c in 1..=chats {
        q.push(c as u64, reply(c, c as u64));
        q.push(c as u64 + 1_000_000, reply(c, c as u64));
    }
    // Each chat's one token goes on its first reply.
    for _ in 0..chats {
        let Pick::Send(chat) = q.pick(now) else {
            panic!("a full bucket must send");
        };
        q.settle(chat, Step::Finished, now);
    }
    let t = Instant::now();
    for _ in 0..picks {
        assert!(matches!(q.pick(now), Pick::Wait(Some(_))));
    }
    t.elapsed().as_nanos() as f64 / picks as f64
}

fn per_call(f: impl Fn() -> usize, runs: u32) -> (Duration, usize) {
    let mut n = 0;
    let t = Instant::now();
    for _ in 0..runs {
        n = f();
    }
    (t.elapsed() / runs, n)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let sends = if bench { 200_000 } else { 1_000 };
    println!("schedule: ns per send (pick + settle), one chat's backlog, 2 chats");
    for backlog in [10u64, 10_000, 100_000] {
        let backlog = if bench { backlog } else { backlog.min(1_000) };
        println!(
            "  backlog {backlog:>7}: {:>8.0} ns",
            schedule(backlog, 2, sends)
        );
    }
    println!("schedule: ns per send, one reply queued in each of n chats");
    for chats in [1i64, 100, 1_000] {
        println!("  chats {chats:>5}: {:>8.0} ns", schedule(1, chats, sends));
    }

    println!("schedule: ns per pick that finds every chat waiting on its bucket");
    for chats in [1i64, 100, 1_000] {
        println!(
            "  chats {chats:>5}: {:>8.0} ns",
            all_waiting(chats, sends / 10)
        );
    }

    let entries = if bench { 10_000 } else { 500 };
    let dir = tempfile::tempdir().unwrap();
    let core = Core::new(
        Store::open(dir.path()).unwrap(),
        Settings::from_config(&Config::defaults()),
    )
    .unwrap();
    core.store()
        .write(|tx| {
            for n in 0..entries {
                let o = Outcome::Reply(reply(1 + (n % 2) as i64, n));
                tx.push_outbox(&serde_json::to_vec(&o).unwrap())?;
            }
            Ok(())
        })
        .unwrap();
    let all = core.outbox(usize::MAX).unwrap();
    let last = all.last().unwrap().0;
    let runs = if bench { 50 } else { 3 };
    let (whole, n) = per_call(|| core.outbox(usize::MAX).unwrap().len(), runs);
    println!("outbox of {entries}: the whole outbox read and decoded: {whole:?} ({n} entries)");
    let (page, n) = per_call(|| core.outbox_after(None, 512).unwrap().len(), runs);
    println!("outbox of {entries}: the first page of 512: {page:?} ({n} entries)");
    let (tail, n) = per_call(
        || core.outbox_after(Some(last - 1), 512).unwrap().len(),
        runs * 20,
    );
    println!(
        "outbox of {entries}: the new entries only (1 after the cursor): {tail:?} ({n} entries)"
    );
    let (none, n) = per_call(
        || core.outbox_after(Some(last), 512).unwrap().len(),
        runs * 20,
    );
    println!("outbox of {entries}: nothing new after the cursor: {none:?} ({n} entries)");
}
