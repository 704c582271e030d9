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
//! Then acknowledgements in one chat while another chat asks `/recall`
//! back to back over a large memory (`BENCH_STORM_NOTES`, default 100,000
//! synthetic notes with synthetic vectors, real model for the questions):
//! a recall must not hold the store's writer while it embeds and searches,
//! so the other chat's acks stay at their quiet speed.
//!
//! Then one chat's acks while another floods, under Telegram's real limits
//! (the default config: a burst of 3, then 1 message/s per chat, 30/s
//! overall): the flooder sends 20 notes at once and then 2 a second (twice
//! what its chat may receive), while the measured chat sends one note every
//! 1.5 s (within its own limit). Latency is from queuing the measured
//! chat's update to the fake receiving the sendMessage that quotes it.
//!
//! `cargo bench --bench ack_latency` (N=500; `BENCH_ONLY=storm` or
//! `BENCH_ONLY=flood` for one part alone; `BENCH_FLOOD_SECS`, default 60).
//! Under `cargo test` it runs a short smoke pass of each.

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
        // BENCH_ONLY=storm: the recall storm alone.
        match std::env::var("BENCH_ONLY").as_deref() {
            Ok("storm") => return recall_storm(bench).await,
            Ok("flood") => return flood(bench).await,
            _ => {}
        }
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

        recall_storm(bench).await;
        flood(bench).await;
    });
}

/// The chat that floods.
const FLOODER: i64 = 6161;

async fn flood(bench: bool) {
    let secs: u64 = if bench {
        std::env::var("BENCH_FLOOD_SECS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(60)
    } else {
        3
    };
    let bot = support::InProcBot::start_with(&[OWNER, FLOODER], |cfg| {
        let real = mnemo::config::Config::defaults().telegram;
        cfg.telegram.per_chat_burst = real.per_chat_burst;
        cfg.telegram.per_chat_per_sec = real.per_chat_per_sec;
        cfg.telegram.global_per_sec = real.global_per_sec;
    })
    .await;
    bot.tg.push(tg::text(OWNER, 1, "warm up"));
    bot.tg.push(tg::text(FLOODER, 1, "warm up"));
    bot.tg.wait_sent(OWNER, 1, Duration::from_secs(30)).await;
    bot.tg.wait_sent(FLOODER, 1, Duration::from_secs(30)).await;
    // Let both chats' buckets fill again.
    tokio::time::sleep(Duration::from_secs(4)).await;

    let start = Instant::now();
    let end = start + Duration::from_secs(secs);
    let flooder = async {
        let mut id = 100;
        for _ in 0..20 {
            bot.tg.push(tg::text(
                FLOODER,
                id,
                &format!("flood note {id}: buy more tea"),
            ));
            id += 1;
        }
        while Instant::now() < end {
            tokio::time::sleep(Duration::from_millis(500)).await;
            bot.tg.push(tg::text(
                FLOODER,
                id,
                &format!("flood note {id}: buy more tea"),
            ));
            id += 1;
        }
        (id - 100) as usize
    };
    let measured = async {
        // A's burst lands first.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut pushed = Vec::new();
        let mut id = 100;
        while Instant::now() < end {
            pushed.push((id, Instant::now()));
            bot.tg.push(tg::text(
                OWNER,
                id,
                &format!("quiet note {id}: call the bank"),
            ));
            id += 1;
            tokio::time::sleep(Duration::from_millis(1500)).await;
        }
        pushed
    };
    let (flooded, pushed) = tokio::join!(flooder, measured);
    // Every measured note's acknowledgement, however long it takes.
    let acked = |m: i64| {
        bot.tg.calls("sendMessage").into_iter().find(|c| {
            c.params["chat_id"].as_i64() == Some(OWNER)
                && c.params["reply_parameters"]["message_id"].as_i64() == Some(m)
                && c.message_id.is_some()
        })
    };
    let deadline = Instant::now() + Duration::from_secs(secs * 3 + 60);
    let mut lat = Vec::with_capacity(pushed.len());
    for (m, t0) in &pushed {
        let call = loop {
            if let Some(c) = acked(*m) {
                break c;
            }
            assert!(Instant::now() < deadline, "note {m} was never acknowledged");
            tokio::time::sleep(Duration::from_millis(5)).await;
        };
        lat.push(call.at.saturating_duration_since(*t0));
    }
    let a_sent = bot.tg.sent_to(FLOODER).len() - 1;
    report("ack_latency while another chat floods", lat);
    println!(
        "flood: {flooded} notes from the flooder in {secs}s, {a_sent} of them acknowledged by the time the last quiet ack arrived"
    );
    bot.stop().await.unwrap();
}

/// The chat that asks back to back.
const ASKER: i64 = 5151;

async fn recall_storm(bench: bool) {
    #[derive(serde::Deserialize)]
    struct Set {
        notes: Vec<serde_json::Value>,
        questions: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_str(include_str!("../tests/data/recall_eval.json")).unwrap();
    let field = |v: &[serde_json::Value], k: &str| -> Vec<String> {
        v.iter()
            .map(|x| x[k].as_str().unwrap().to_owned())
            .collect()
    };
    let (texts, questions) = (field(&set.notes, "text"), field(&set.questions, "question"));
    let size: usize = if bench {
        std::env::var("BENCH_STORM_NOTES")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(100_000)
    } else {
        2_000
    };
    let n = if bench { 200 } else { 5 };
    // The asker's memory: `size` notes with synthetic vectors.
    let dir = tempfile::tempdir().unwrap();
    let mut rng = support::synth::Rng(0x9E37_79B9_7F4A_7C15);
    {
        let store = mnemo::store::Store::open(dir.path()).unwrap();
        let core = mnemo::core::Core::new(
            store,
            mnemo::core::Settings::from_config(&mnemo::config::Config::defaults()),
        )
        .unwrap();
        let msgs = support::synth::messages(size, &[ASKER], &texts, &mut rng);
        core.import(&msgs, 5000, |_, _| {}).unwrap();
    }
    support::synth::mark_model(dir.path(), &mut rng);
    let t = Instant::now();
    let bot = support::InProcBot::start_semantic_in(dir, &[OWNER, ASKER]).await;
    println!(
        "recall storm: {size} notes open in {:.1}s",
        t.elapsed().as_secs_f64()
    );
    // Warm up both paths (connections, the query path's first model call).
    bot.tg.push(tg::text(OWNER, 1, "warm up the note path"));
    bot.tg
        .push(tg::text(ASKER, 1, "/recall warm up the question path"));
    bot.tg.wait_sent(OWNER, 1, Duration::from_secs(60)).await;
    bot.tg.wait_sent(ASKER, 1, Duration::from_secs(60)).await;

    let acks = |from: usize, label: &'static str| {
        let bot = &bot;
        let texts = &texts;
        async move {
            let mut lat = Vec::with_capacity(n);
            for i in 0..n {
                let want = bot.tg.sent_to(OWNER).len() + 1;
                let t0 = Instant::now();
                // Distinct notes (the eval set's), so none is a repeat.
                let text = &texts[(from + i) % texts.len()];
                bot.tg.push(tg::text(OWNER, 10 + (from + i) as i64, text));
                while bot.tg.sent_to(OWNER).len() < want {
                    tokio::time::sleep(Duration::from_micros(200)).await;
                }
                lat.push(t0.elapsed());
            }
            report(label, lat);
        }
    };
    acks(0, "ack_latency quiet").await;
    // The storm: the asker sends the next question as soon as an answer came,
    // until the acks are measured.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let storm = async {
        let mut asked = 0usize;
        let mut id = 1000;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let want = bot.tg.sent_to(ASKER).len() + 1;
            id += 1;
            let q = &questions[id as usize % questions.len()];
            bot.tg.push(tg::text(ASKER, id, &format!("/recall {q}")));
            bot.tg.wait_sent(ASKER, want, Duration::from_secs(60)).await;
            asked += 1;
        }
        asked
    };
    let measured = async {
        // Let the storm get going first.
        tokio::time::sleep(Duration::from_millis(300)).await;
        acks(n, "ack_latency during recall storm").await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
    };
    let t = Instant::now();
    let (asked, ()) = tokio::join!(storm, measured);
    println!(
        "recall storm: {asked} recalls answered in {:.1}s ({:.1}/s) while the acks ran",
        t.elapsed().as_secs_f64(),
        asked as f64 / t.elapsed().as_secs_f64()
    );
    bot.stop().await.unwrap();
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
