//! The App as `mnemo serve` runs it: background jobs with their records,
//! `mnemo jobs` with and without a running bot, and a stop that does not wait
//! for a queue to drain.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use support::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use support::{run_mnemo, ServeProcess};

const OWNER: i64 = 4242;
const T: Duration = Duration::from_secs(20);

/// `mnemo jobs --json`, by name.
async fn jobs(dir: &std::path::Path) -> HashMap<String, serde_json::Value> {
    let (code, out, err) = run_mnemo(dir, &["jobs", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let v: Vec<serde_json::Value> = serde_json::from_str(&out).expect("a JSON array");
    v.into_iter()
        .map(|j| (j["name"].as_str().unwrap().to_owned(), j))
        .collect()
}

fn time(v: &serde_json::Value) -> chrono::DateTime<chrono::FixedOffset> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}")))
        .unwrap_or_else(|e| panic!("{v} is not RFC 3339: {e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_are_listed_with_last_and_next_runs_offline_and_while_serving() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Never run: every job is listed, with a next run and no last one.
    let js = jobs(&dir).await;
    let mut names: Vec<&str> = js.keys().map(String::as_str).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "audio-retention",
            "backup",
            "graph-save",
            "health",
            "prune",
            "voice-retry"
        ]
    );
    assert_eq!(js["health"]["schedule"], "every 60s");
    let now = chrono::Utc::now();
    for (name, j) in &js {
        assert!(j["last_run"].is_null(), "{name}: {j}");
        assert!(j["last_outcome"].is_null(), "{name}: {j}");
        assert!(time(&j["next_run"]) > now, "{name}: {j}");
        assert!(j["schedule"].is_string(), "{name}: {j}");
    }
    assert_eq!(js["prune"]["schedule"], "0 17 * * * *");

    let tg = FakeTelegram::start().await;
    let mut p = ServeProcess::spawn_env(
        &dir,
        &tg.url(),
        &OWNER.to_string(),
        TOKEN,
        &[
            ("MNEMO_JOBS__PRUNE", "every 1s"),
            ("MNEMO_JOBS__GRAPH_SAVE", ""),
        ],
    );
    tg.push(tg::text(OWNER, 1, "a note so that the bot is up"));
    tg.wait_sent(OWNER, 1, T).await;
    // The bot holds the database: the answer comes over the control socket,
    // and shows the ticking job's runs growing.
    let deadline = Instant::now() + T;
    let js = loop {
        let js = jobs(&dir).await;
        if js["prune"]["runs"].as_u64().unwrap_or(0) >= 3 {
            break js;
        }
        assert!(Instant::now() < deadline, "prune never ran 3 times: {js:?}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let prune = &js["prune"];
    assert_eq!(prune["last_outcome"], "ok", "{prune}");
    assert_eq!(prune["schedule"], "every 1s");
    assert!(
        time(&prune["next_run"]) >= time(&prune["last_run"]),
        "{prune}"
    );
    // Startup upkeep ran once; a job turned off has no next run.
    assert_eq!(js["audio-retention"]["runs"], 1, "{js:?}");
    assert!(js["graph-save"]["next_run"].is_null(), "{js:?}");
    assert_eq!(js["graph-save"]["schedule"], "off");
    p.term();
    assert!(p.wait_exit(T).await.success());
    // The records outlive the process.
    let after = jobs(&dir).await;
    assert!(after["prune"]["runs"].as_u64().unwrap() >= 3, "{after:?}");
    assert!(!dir.join("control.sock").exists(), "socket removed on exit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_with_a_hundred_replies_queued_exits_at_once_and_the_rest_follow_after_restart() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Telegram's real per-chat limit: a burst of 3, then one a second. The
    // notes look alike; the duplicate check is off so each is its own note.
    let strict = [
        ("MNEMO_TELEGRAM__PER_CHAT_PER_SEC", "1"),
        ("MNEMO_TELEGRAM__PER_CHAT_BURST", "3"),
        ("MNEMO_NOTES__DUPLICATE_THRESHOLD", "2"),
    ];
    let mut p = ServeProcess::spawn_env(&dir, &tg.url(), &OWNER.to_string(), TOKEN, &strict);
    const N: i64 = 100;
    for i in 1..=N {
        tg.push(tg::text(OWNER, i, &format!("flood note {i}")));
    }
    tg.wait_sent(OWNER, 4, T).await;
    let t0 = Instant::now();
    p.term();
    let status = p.wait_exit(Duration::from_secs(10)).await;
    let took = t0.elapsed();
    assert!(status.success(), "{status:?}\n{}", p.log_text());
    assert!(took < Duration::from_secs(5), "SIGTERM took {took:?}");
    let sent_before = tg.sent_to(OWNER).len();
    println!("SIGTERM with {N} notes' replies queued: exit 0 after {took:?}, {sent_before} sent");
    assert!(
        sent_before < N as usize,
        "the queue was not drained: {sent_before}"
    );

    // Nothing was lost: after a restart every note is acknowledged, once.
    let mut p = ServeProcess::spawn_env(
        &dir,
        &tg.url(),
        &OWNER.to_string(),
        TOKEN,
        &[("MNEMO_NOTES__DUPLICATE_THRESHOLD", "2")],
    );
    let sent = tg
        .wait_sent(OWNER, N as usize, Duration::from_secs(60))
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.term();
    assert!(p.wait_exit(T).await.success());
    let sent = if tg.sent_to(OWNER).len() > sent.len() {
        tg.sent_to(OWNER)
    } else {
        sent
    };
    for i in 1..=N {
        let ack = format!("#{i}");
        let n = sent
            .iter()
            .filter(|m| {
                m.split(|c: char| !c.is_ascii_alphanumeric() && c != '#')
                    .any(|w| w == ack)
            })
            .count();
        assert_eq!(n, 1, "note {i} acknowledged {n} times: {sent:?}");
    }
    assert_eq!(sent.len(), N as usize, "{sent:?}");
    let (_, out, _) = run_mnemo(&dir, &["stats", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["memories"], N);
    assert_eq!(v["outbox"], 0);
}
