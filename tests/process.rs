//! The real `mnemo` binary as a child process: crashes, signals, a bad token,
//! pairing, the single-process database, and what it logs.

mod support;

use std::time::{Duration, Instant};

use support::fake_telegram::{self as tg, FakeTelegram, Script, TOKEN};
use support::{run_mnemo, ServeProcess};

const OWNER: i64 = 4242;
const T: Duration = Duration::from_secs(15);

fn memories(stats_json: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_str(stats_json).expect("stats --json is JSON");
    v["memories"].as_u64().expect("memories")
}

async fn wait_polls(tg: &FakeTelegram, after: usize, n: usize) {
    tg.wait_for("getUpdates calls", T, |calls| {
        calls
            .iter()
            .filter(|c| c.method.eq_ignore_ascii_case("getUpdates"))
            .count()
            >= after + n
    })
    .await;
}

fn polls(tg: &FakeTelegram) -> usize {
    tg.calls("getUpdates").len()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_after_storing_before_the_offset_was_confirmed_processes_once() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Confirmations get lost: every getUpdates re-delivers the update.
    tg.ignore_confirmations(true);
    let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
    tg.push(tg::text(OWNER, 10, "remember the milk"));
    tg.wait_sent(OWNER, 1, T).await;
    // Killed once the ack is off the outbox: a kill between Telegram taking
    // the message and that commit sends it again on restart (at-least-once
    // replies, see `send.rs`), which is not what this test is about.
    p.wait_log(T, |l| l.contains("reply delivered")).await;
    p.kill9();
    p.wait_exit(T).await;

    let before = polls(&tg);
    let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
    // The re-delivered update reaches the new process (at least twice).
    wait_polls(&tg, before, 2).await;
    tg.ignore_confirmations(false);
    tg.push(tg::text(OWNER, 11, "second note"));
    let sent = tg.wait_sent(OWNER, 2, T).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.term();
    assert!(p.wait_exit(T).await.success());

    assert!(
        p.log_text()
            .contains("re-delivered update was processed already"),
        "the dedup path ran:\n{}",
        p.log_text()
    );
    let sent_all = tg.sent_to(OWNER);
    assert_eq!(sent_all.len(), 2, "exactly one ack per note: {sent_all:?}");
    assert!(sent[0].contains("#1") && sent[1].contains("#2"), "{sent:?}");
    let (code, out, err) = run_mnemo(&dir, &["stats", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(memories(&out), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_between_storing_and_replying_replies_once_after_restart() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    tg.script("sendMessage", Script::Hang);
    let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
    tg.push(tg::text(OWNER, 10, "never lose me"));
    // The ack is on its way (so the note is committed), then the process dies.
    tg.wait_for("the hanging sendMessage", T, |calls| {
        calls
            .iter()
            .any(|c| c.method.eq_ignore_ascii_case("sendMessage"))
    })
    .await;
    p.kill9();
    p.wait_exit(T).await;
    tg.clear_scripts();

    let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
    let sent = tg.wait_sent(OWNER, 1, T).await;
    assert!(sent[0].contains("#1"), "{sent:?}");
    tg.push(tg::text(OWNER, 11, "and me"));
    tg.wait_sent(OWNER, 2, T).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    p.term();
    assert!(p.wait_exit(T).await.success());
    let sent = tg.sent_to(OWNER);
    assert_eq!(sent.len(), 2, "{sent:?}");
    assert!(sent[1].contains("#2"), "{sent:?}");
    let (_, out, _) = run_mnemo(&dir, &["stats", "--json"]).await;
    assert_eq!(memories(&out), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_and_sigint_stop_cleanly_within_five_seconds() {
    for sig in ["TERM", "INT"] {
        let tg = FakeTelegram::start().await;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
        // Mid long-poll: the fake holds getUpdates for 2 s.
        wait_polls(&tg, 0, 1).await;
        tg.push(tg::text(OWNER, 1, "in flight"));
        tg.wait_sent(OWNER, 1, T).await;
        let t0 = Instant::now();
        let pid = p.child.id().unwrap();
        std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(pid.to_string())
            .status()
            .unwrap();
        let status = p.wait_exit(Duration::from_secs(5)).await;
        assert!(
            status.success(),
            "SIG{sig}: exit {status:?}\n{}",
            p.log_text()
        );
        assert!(t0.elapsed() < Duration::from_secs(5));
        assert!(!dir.join("serve.pid").exists(), "pid file removed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rejected_token_exits_non_zero_naming_the_token() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let t0 = Instant::now();
    let mut p = ServeProcess::spawn_logging(
        &dir,
        &tg.url(),
        "",
        "999:wrong-token-wrong-token-wrong",
        "trace",
    );
    let status = p.wait_exit(Duration::from_secs(15)).await;
    assert!(!status.success());
    assert!(t0.elapsed() < Duration::from_secs(15));
    let log = p.log_text();
    assert!(log.contains("TELEGRAM_BOT_TOKEN"), "{log}");
    assert!(
        !log.contains("wrong-token"),
        "the token is never logged: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_never_appears_in_logs() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Everything, every crate: the Bot API URLs contain the token, so any
    // line that prints a request URL would show up here.
    let mut p = ServeProcess::spawn_logging(&dir, &tg.url(), &OWNER.to_string(), TOKEN, "trace");
    tg.push(tg::text(OWNER, 1, "hello"));
    tg.wait_sent(OWNER, 1, T).await;
    p.term();
    p.wait_exit(T).await;
    let log = p.log_text();
    // The filter took: trace lines, and the HTTP client's connection lines.
    let host = tg.url().trim_start_matches("http://").to_owned();
    assert!(log.contains("TRACE") && log.contains(&host), "{log}");
    let secret = TOKEN.split(':').nth(1).unwrap();
    assert!(!log.contains(secret), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_user_with_the_pairing_code_becomes_the_owner() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut p = ServeProcess::spawn(&dir, &tg.url(), "", TOKEN);
    let line = p.wait_log(T, |l| l.contains("/start ")).await;
    let code = support::pairing_code(&line);

    let (alice, mallory) = (1001, 2002);
    tg.push(tg::text(mallory, 1, "/start WRONGCODE1"));
    tg.push(tg::text(
        alice,
        1,
        &format!("/start {}", code.to_lowercase()),
    ));
    tg.push(tg::text(alice, 2, "first owned note"));
    // Chats are handled concurrently: the right code from a second user is
    // sent once the first one is paired (it would win the race otherwise).
    tg.wait_sent(alice, 1, T).await;
    tg.push(tg::text(mallory, 2, &format!("/start {code}")));
    let sent = tg.wait_sent(alice, 2, T).await;
    assert!(sent[0].contains("Paired"), "{sent:?}");
    assert!(sent[1].contains("#1"), "{sent:?}");
    // A clean stop finishes the handlers and drains the outbox.
    p.term();
    assert!(p.wait_exit(T).await.success());
    let refused = tg.sent_to(mallory);
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("2002"));

    // Ownership persists: after a restart no code is offered and alice is served.
    let mut p = ServeProcess::spawn(&dir, &tg.url(), "", TOKEN);
    tg.push(tg::text(alice, 3, "still mine"));
    tg.wait_sent(alice, 3, T).await;
    assert!(!p.log_text().contains("/start "), "{}", p.log_text());
    p.term();
    p.wait_exit(T).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_commands_say_clearly_that_serve_holds_the_database() {
    let tg = FakeTelegram::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut p = ServeProcess::spawn(&dir, &tg.url(), &OWNER.to_string(), TOKEN);
    wait_polls(&tg, 0, 1).await;
    let pid = p.child.id().unwrap();
    let (code, _, err) = run_mnemo(&dir, &["stats"]).await;
    assert_ne!(code, 0);
    assert!(
        err.contains("in use") && err.contains(&format!("pid {pid}")),
        "{err}"
    );
    // doctor treats a running server as healthy for the database check.
    let (_, out, _) = run_mnemo(&dir, &["doctor", "--json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let db = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "database")
        .unwrap();
    assert_eq!(db["status"], "ok", "{out}");
    p.term();
    p.wait_exit(T).await;
}

/// `mnemo <args>` with stderr piped (so not a terminal), without `RUST_LOG`
/// and without the models: (exit code, stderr).
async fn one_shot(tmp: &std::path::Path, dir: &str, args: &[&str]) -> (i32, String) {
    let out = support::mnemo(&tmp.join(dir))
        .env_remove("RUST_LOG")
        .env("MNEMO_MODELS__DIR", tmp.join("no-models"))
        .args(args)
        .output()
        .await
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.code().unwrap_or(-1), err)
}

#[tokio::test]
async fn a_one_shot_command_logs_warnings_only_and_without_colour_codes() {
    let tmp = tempfile::tempdir().unwrap();
    // A fresh data dir: the button key is created (an info line), and the
    // missing models are warned about.
    let (code, err) = one_shot(tmp.path(), "a", &["stats"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("WARN") && err.contains("semantic recall is off"),
        "the warning is logged: {err}"
    );
    assert!(!err.contains("\x1b["), "no colour codes in a pipe: {err:?}");
    assert!(
        !err.contains("INFO") && !err.contains("callback signing key"),
        "no info lines by default: {err}"
    );

    // -v: mnemo's own info lines too, still without colour.
    let (code, err) = one_shot(tmp.path(), "b", &["stats", "-v"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        err.contains("INFO") && err.contains("created a new callback signing key"),
        "-v shows mnemo's info lines: {err}"
    );
    assert!(!err.contains("\x1b["), "no colour codes in a pipe: {err:?}");
}
