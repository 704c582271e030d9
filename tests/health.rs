//! mnemo watching itself, through the real binary and the fake Bot API: a
//! data disk that fills up (a real size-limited tmpfs) alerts the owner once
//! and recovers once, also across a restart; the alert's buttons; `/health`
//! only for the admin; flapping told once; `/readyz` and `/metrics` over
//! real HTTP; systemd's notify protocol against a fake `NOTIFY_SOCKET`; a voice
//! note failing for a missing speech model is a critical alert.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use support::disk::{fill_to, unfill, SmallDisk};
use support::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use support::{run_mnemo, ServeProcess};

const OWNER: i64 = 4242;
const OTHER: i64 = 5151;
const T: Duration = Duration::from_secs(30);

/// Fast health rules for tests: a pass a second, 2 s to alert and to recover.
fn fast(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
    let mut v = vec![
        ("MNEMO_HEALTH__INTERVAL_SECS", "1"),
        ("MNEMO_HEALTH__FOR_SECS", "2"),
        ("MNEMO_HEALTH__RECOVER_SECS", "2"),
        ("MNEMO_HEALTH__GROUP_SECS", "0"),
        ("MNEMO_HEALTH__DISK_FREE_WARN_MB", "24"),
        ("MNEMO_HEALTH__DISK_FREE_CRITICAL_MB", "2"),
        ("MNEMO_HEALTH__DISK_FREE_WARN_PERCENT", "0"),
        ("MNEMO_HEALTH__DISK_FREE_CRITICAL_PERCENT", "0"),
        // Telegram answers at once here; other checks must stay quiet.
        ("MNEMO_JOBS__BACKUP", ""),
    ];
    v.extend_from_slice(extra);
    v
}

fn alerts_about(tg: &FakeTelegram, chat: i64, what: &str) -> Vec<(i64, String)> {
    tg.sent_messages(chat)
        .into_iter()
        .filter(|(_, t)| t.starts_with("🩺") && t.contains(what))
        .collect()
}

async fn wait_alert(tg: &FakeTelegram, chat: i64, what: &str, n: usize) -> Vec<(i64, String)> {
    let deadline = Instant::now() + T;
    loop {
        let a = alerts_about(tg, chat, what);
        if a.len() >= n {
            return a;
        }
        assert!(
            Instant::now() < deadline,
            "no alert {what:?} (#{n}); sent: {:?}",
            tg.sent_messages(chat)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn serve(dir: &Path, tg: &FakeTelegram, env: &[(&str, &str)]) -> ServeProcess {
    let allowed = format!("{OWNER},{OTHER}");
    ServeProcess::spawn_env(dir, &tg.url(), &allowed, TOKEN, env)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_filling_disk_alerts_once_recovers_once_and_a_restart_does_not_repeat_it() {
    let Some(disk) = SmallDisk::mount(64) else {
        return;
    };
    let dir = disk.dir.join("data");
    let tg = FakeTelegram::start().await;
    let env = fast(&[]);
    let mut p = serve(&dir, &tg, &env);
    tg.wait_for("polling", T, |c| c.iter().any(|c| c.method == "GetUpdates"))
        .await;
    // Crossing the warning threshold: one alert after for_secs, naming
    // the check and the free space.
    fill_to(&disk.dir, 12);
    let first = wait_alert(&tg, OWNER, "Data disk", 1).await;
    assert!(first[0].1.contains("MB free"), "{first:?}");
    // Its buttons: snooze, acknowledge, details — signed, for the owner.
    let buttons = tg.buttons(first[0].0);
    let labels: Vec<&str> = buttons.iter().flatten().map(|(l, _)| l.as_str()).collect();
    assert!(
        labels.iter().any(|l| l.contains("🔕")) && labels.iter().any(|l| l.contains("🔍")),
        "{labels:?}"
    );
    let details = buttons
        .iter()
        .flatten()
        .find(|(l, _)| l.contains("🔍"))
        .unwrap()
        .1
        .clone();
    let before = tg.sent_messages(OWNER).len();
    let qid = tg.press(OWNER, first[0].0, &details);
    tg.wait_answer(&qid, T).await;
    let shown = tg.wait_sent(OWNER, before + 1, T).await;
    assert!(shown.last().unwrap().contains("Last readings"), "{shown:?}");
    // Someone else pressing the owner's button: refused (signed for the owner).
    let qid = tg.press(OTHER, first[0].0, &details);
    let ans = tg.wait_answer(&qid, T).await;
    assert!(!ans.contains("Details"), "{ans}");

    // A restart while it fires: the condition was told, it is not again.
    p.term();
    p.wait_exit(T).await;
    let polls = tg.calls("GetUpdates").len();
    let mut p = serve(&dir, &tg, &env);
    tg.wait_for("second polling", T, |c| {
        c.iter().filter(|c| c.method == "GetUpdates").count() > polls
    })
    .await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    assert_eq!(alerts_about(&tg, OWNER, "Data disk").len(), 1);

    // /health: the owner sees every check; another allowlisted user who is
    // not the admin gets nothing at all.
    tg.push(tg::text(OTHER, 900, "/health"));
    tg.push(tg::text(OWNER, 901, "/health"));
    let got = tg.wait_sent(OWNER, before + 2, T).await;
    let health = got.last().unwrap();
    assert!(
        health.contains("Data disk") && health.contains("alerting") && health.contains("Database"),
        "{health}"
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(tg.sent_to(OTHER).is_empty(), "{:?}", tg.sent_to(OTHER));

    // Space comes back: one recovery, saying how long it lasted.
    unfill(&disk.dir);
    let rec = wait_alert(&tg, OWNER, "recovered", 1).await;
    assert!(
        rec[0].1.contains("Data disk") && rec[0].1.contains("lasted"),
        "{rec:?}"
    );
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(alerts_about(&tg, OWNER, "recovered").len(), 1);
    assert_eq!(
        alerts_about(&tg, OWNER, "Data disk").len(),
        2,
        "alert + recovery"
    );

    // /alerts lists both transitions.
    let n = tg.sent_messages(OWNER).len();
    tg.push(tg::text(OWNER, 902, "/alerts"));
    let got = tg.wait_sent(OWNER, n + 1, T).await;
    let log = got.last().unwrap();
    assert!(log.contains("alert") && log.contains("recovered"), "{log}");
    p.term();
    p.wait_exit(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flapping_check_is_told_once() {
    let Some(disk) = SmallDisk::mount(64) else {
        return;
    };
    let dir = disk.dir.join("data");
    let tg = FakeTelegram::start().await;
    let env = fast(&[
        ("MNEMO_HEALTH__FLAP_CHANGES", "4"),
        ("MNEMO_HEALTH__FLAP_WINDOW_SECS", "60"),
        ("MNEMO_HEALTH__FOR_SECS", "30"),
    ]);
    let mut p = serve(&dir, &tg, &env);
    tg.wait_for("polling", T, |c| c.iter().any(|c| c.method == "GetUpdates"))
        .await;
    // Bad, good, bad, good, bad: never long enough to alert, often enough
    // to be flapping.
    for _ in 0..3 {
        fill_to(&disk.dir, 12);
        tokio::time::sleep(Duration::from_millis(2500)).await;
        unfill(&disk.dir);
        tokio::time::sleep(Duration::from_millis(2500)).await;
    }
    let flap = wait_alert(&tg, OWNER, "keeps changing", 1).await;
    assert!(flap[0].1.contains("Data disk"), "{flap:?}");
    assert_eq!(
        alerts_about(&tg, OWNER, "Data disk").len(),
        1,
        "only the flapping notice: {:?}",
        tg.sent_messages(OWNER)
    );
    p.term();
    p.wait_exit(T).await;
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn get(url: &str) -> (u16, String) {
    let r = reqwest::get(url).await.unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_follows_telegram_and_metrics_parse_as_prometheus_text() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let tg = FakeTelegram::start().await;
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let env = fast(&[
        ("MNEMO_HEALTH__TELEGRAM_STALE_SECS", "3"),
        (
            "MNEMO_HTTP__LISTEN",
            Box::leak(listen.clone().into_boxed_str()),
        ),
    ]);
    let mut p = serve(&dir, &tg, &env);
    let base = format!("http://{listen}");
    // Alive, then ready once Telegram answered.
    let deadline = Instant::now() + T;
    loop {
        if let Ok(r) = reqwest::get(format!("{base}/readyz")).await {
            if r.status() == 200 {
                break;
            }
        }
        assert!(Instant::now() < deadline, "never ready: {}", p.log_text());
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200);
    // A note and a recall, so the counters have something to count.
    tg.push(tg::text(OWNER, 1, "the boiler service is on friday"));
    tg.wait_sent(OWNER, 1, T).await;
    tg.push(tg::text(OWNER, 2, "/recall boiler"));
    tg.wait_sent(OWNER, 2, T).await;
    let (code, body) = get(&format!("{base}/metrics")).await;
    assert_eq!(code, 200);
    let lines: Vec<String> = body.lines().map(str::to_owned).collect();
    let scrape = prometheus_parse::Scrape::parse(lines.into_iter().map(Ok)).expect("parses");
    let value = |name: &str, label: Option<(&str, &str)>| -> Option<f64> {
        scrape
            .samples
            .iter()
            .find(|s| s.metric == name && label.is_none_or(|(k, v)| s.labels.get(k) == Some(v)))
            .map(|s| match &s.value {
                prometheus_parse::Value::Counter(v)
                | prometheus_parse::Value::Gauge(v)
                | prometheus_parse::Value::Untyped(v) => *v,
                prometheus_parse::Value::Histogram(h) => {
                    h.iter().map(|b| b.count).fold(0.0, f64::max)
                }
                prometheus_parse::Value::Summary(_) => f64::NAN,
            })
    };
    assert_eq!(
        value("mnemo_notes_ingested_total", Some(("source", "telegram"))),
        Some(1.0),
        "{body}"
    );
    assert!(
        value("mnemo_recall_duration_seconds", None).is_some_and(|v| v >= 1.0),
        "{body}"
    );
    assert!(
        value(
            "mnemo_telegram_calls_total",
            Some(("method", "SendMessage"))
        )
        .is_some_and(|v| v >= 2.0),
        "{body}"
    );
    assert!(value("mnemo_process_resident_memory_bytes", None).is_some_and(|v| v > 1e6));
    assert_eq!(value("mnemo_notes", None), Some(1.0), "{body}");
    for name in [
        "mnemo_embed_queue_depth",
        "mnemo_transcription_queue_depth",
        "mnemo_backup_age_seconds",
        "mnemo_llm_tokens_today",
    ] {
        assert!(value(name, None).is_some(), "{name} missing: {body}");
    }

    // Telegram down (a proxy answering 502): not ready, saying why.
    tg.set_down(true);
    let deadline = Instant::now() + T;
    let why = loop {
        let (code, body) = get(&format!("{base}/readyz")).await;
        if code == 503 {
            break body;
        }
        assert!(
            Instant::now() < deadline,
            "still ready while Telegram is down"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(why.contains("telegram"), "{why}");
    assert_eq!(get(&format!("{base}/healthz")).await.0, 200, "still alive");
    // teloxide waits 10 s on a 5xx before it returns the error: the
    // failed calls show up in the metrics after that.
    let deadline = Instant::now() + T;
    loop {
        let (_, body) = get(&format!("{base}/metrics")).await;
        if body
            .lines()
            .any(|l| l.starts_with("mnemo_telegram_calls_total") && l.contains("outcome=\"5xx\""))
        {
            break;
        }
        assert!(Instant::now() < deadline, "no 5xx counted: {body}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Back: ready again.
    tg.set_down(false);
    let deadline = Instant::now() + T;
    while get(&format!("{base}/readyz")).await.0 != 200 {
        assert!(Instant::now() < deadline, "not ready again");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    p.term();
    p.wait_exit(T).await;
}

#[tokio::test]
async fn a_remote_listen_address_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let out = support::mnemo(&tmp.path().join("data"))
        .args(["doctor"])
        .env("MNEMO_HTTP__LISTEN", "0.0.0.0:9464")
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("not a loopback address"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_hears_ready_watchdog_and_stopping() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let sock_path = tmp.path().join("notify.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let tg = FakeTelegram::start().await;
    let env = fast(&[
        (
            "NOTIFY_SOCKET",
            Box::leak(sock_path.display().to_string().into_boxed_str()),
        ),
        ("WATCHDOG_USEC", "4000000"),
    ]);
    let mut p = serve(&dir, &tg, &env);
    let mut got: Vec<String> = Vec::new();
    let mut buf = [0u8; 512];
    let deadline = Instant::now() + T;
    while got.iter().filter(|m| m.contains("WATCHDOG=1")).count() < 3 {
        assert!(Instant::now() < deadline, "heard only {got:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
    }
    let ready = got.iter().position(|m| m.contains("READY=1"));
    assert!(ready.is_some(), "{got:?}");
    // READY once polling runs: Telegram was reached before it.
    assert!(!tg.calls("GetMe").is_empty());
    p.term();
    let deadline = Instant::now() + T;
    loop {
        assert!(Instant::now() < deadline, "no STOPPING=1: {got:?}");
        if let Ok(n) = sock.recv(&mut buf) {
            let m = String::from_utf8_lossy(&buf[..n]).into_owned();
            if m.contains("STOPPING=1") {
                break;
            }
        }
    }
    p.wait_exit(T).await;
    // `mnemo jobs` lists the health job with its interval.
    let (code, out, _) = run_mnemo(&dir, &["jobs", "--json"]).await;
    assert_eq!(code, 0);
    assert!(out.contains("\"health\""), "{out}");
}

/// Without the speech model a voice note cannot be transcribed: it is kept
/// (for a later re-transcription), and the transcription check turns
/// critical — an alert naming the missing model — at its next passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_voice_note_failing_for_a_missing_speech_model_is_a_critical_alert() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let no_models = tmp.path().join("no-models");
    std::fs::create_dir_all(&no_models).unwrap();
    let no_models: &'static str =
        Box::leak(no_models.to_string_lossy().into_owned().into_boxed_str());
    let tg = FakeTelegram::start().await;
    let env = fast(&[("MNEMO_MODELS__DIR", no_models)]);
    let mut p = serve(&dir, &tg, &env);
    tg.wait_for("polling", T, |c| c.iter().any(|c| c.method == "GetUpdates"))
        .await;
    // No voice note yet: nothing about transcription.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(alerts_about(&tg, OWNER, "voice notes failed").is_empty());

    let ogg = support::speech::voice_note("Call the plumber on Tuesday.");
    tg.add_file("v1", ogg.clone());
    tg.push(tg::voice(OWNER, 1, "v1", 2, ogg.len() as u64));
    let alert = wait_alert(&tg, OWNER, "voice notes failed", 1).await;
    assert!(alert[0].1.contains("speech model is missing"), "{alert:?}");
    // Told once while it lasts.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert_eq!(alerts_about(&tg, OWNER, "voice notes failed").len(), 1);
    // The sender was told, and that the audio is kept for a retry.
    let told = tg.sent_to(OWNER);
    assert!(
        told.iter()
            .any(|t| t.contains("speech model is not available") && t.contains("kept safe")),
        "{told:?}"
    );
    p.term();
    p.wait_exit(T).await;
}
