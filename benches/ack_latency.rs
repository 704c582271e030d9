//! End-to-end acknowledgement latency through the real Telegram stack:
//! a text update is queued on the fake Bot API (127.0.0.1), long-polled by
//! the real teloxide client, stored by the core, and answered by the outbox
//! sender; latency is from queuing the update to the fake receiving the
//! sendMessage. Prints p50/p90/p99/max.
//!
//! Then the same for button presses: a `callback_query` for a 👍 under a
//! recall hit, from queuing the update to the fake receiving the
//! answerCallbackQuery (verify, vote logged in one commit, answer).
//!
//! `cargo bench --bench ack_latency` (N=500). Under `cargo test` it runs a
//! 10-note smoke pass.

#[path = "../tests/support/mod.rs"]
mod support;

use std::time::{Duration, Instant};

use support::fake_telegram as tg;

const OWNER: i64 = 4242;

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let n = if bench { 500 } else { 10 };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async move {
        let bot = support::InProcBot::start(&[OWNER]).await;
        // Warm up (first sends open connections).
        for i in 0..5 {
            bot.tg.push(tg::text(OWNER, i, "warm up"));
        }
        bot.tg.wait_sent(OWNER, 5, Duration::from_secs(30)).await;
        let mut lat = Vec::with_capacity(n);
        for i in 0..n {
            let want = 6 + i;
            let t0 = Instant::now();
            bot.tg.push(tg::text(
                OWNER,
                100 + i as i64,
                &format!("note {i}: remember to water the plants"),
            ));
            loop {
                if bot.tg.sent_to(OWNER).len() >= want {
                    break;
                }
                tokio::time::sleep(Duration::from_micros(200)).await;
            }
            lat.push(t0.elapsed());
        }
        report("ack_latency", lat);

        bot.tg.push(tg::text(OWNER, 10_000, "/recall water plants"));
        bot.tg
            .wait_sent(OWNER, 6 + n, Duration::from_secs(30))
            .await;
        let (rid, _) = bot.tg.sent_messages(OWNER).pop().unwrap();
        let data = bot.tg.buttons(rid)[0][0].1.clone();
        let mut lat = Vec::with_capacity(n);
        for _ in 0..n {
            let t0 = Instant::now();
            let qid = bot.tg.press(OWNER, rid, &data);
            bot.tg.wait_answer(&qid, Duration::from_secs(30)).await;
            lat.push(t0.elapsed());
        }
        report("press_answer_latency", lat);

        // A 4 s voice note: update queued → transcript reply received
        // (download, decode, whisper tiny.en on 1 thread, commit, send).
        let ogg = support::speech::voice_note(
            "Remember to buy oat milk and call the plumber on Tuesday.",
        );
        bot.tg.add_file("bench-voice", ogg.clone());
        let runs = if bench { 10 } else { 1 };
        let mut lat = Vec::with_capacity(runs);
        for i in 0..runs {
            let before = bot.tg.sent_to(OWNER).len();
            let t0 = Instant::now();
            bot.tg.push(tg::voice(
                OWNER,
                20_000 + i as i64,
                "bench-voice",
                4,
                ogg.len() as u64,
            ));
            loop {
                if bot.tg.sent_to(OWNER).len() > before {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            lat.push(t0.elapsed());
        }
        report("voice_reply_latency", lat);
        bot.stop().await.unwrap();
    });
}

fn report(what: &str, mut lat: Vec<Duration>) {
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)];
    println!(
        "{what} n={} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        lat.len(),
        pct(0.50).as_secs_f64() * 1e3,
        pct(0.90).as_secs_f64() * 1e3,
        pct(0.99).as_secs_f64() * 1e3,
        lat[lat.len() - 1].as_secs_f64() * 1e3
    );
}
