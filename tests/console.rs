//! The console channel through the real binary with piped stdin, and the CLI
//! commands that read what it stored.

mod support;

use std::process::Stdio;

use tokio::io::AsyncWriteExt;

async fn chat(dir: &std::path::Path, input: &[u8]) -> (i32, String, String) {
    let mut child = support::mnemo(dir)
        .arg("chat")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input).await.unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test]
async fn piped_notes_are_stored_and_answered_line_by_line() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let input = "Dentist appointment moved to Friday 3pm\n\nbuy <milk> & eggs\n/recent 5\n/recall dentist\n/forget 2\n/stats\n/nope\n";
    let (code, out, err) = chat(&dir, input.as_bytes()).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "✅ Saved as #1.");
    assert_eq!(
        lines[1], "✅ Saved as #2.",
        "blank lines are skipped: {out}"
    );
    assert!(
        out.contains("buy <milk> & eggs"),
        "plain text, unescaped: {out}"
    );
    assert!(
        out.contains("Best matches") && out.contains("Dentist appointment"),
        "{out}"
    );
    assert!(out.contains("Note #2 forgotten"), "{out}");
    assert!(out.contains("Notes in total: 1"), "{out}");
    assert!(out.contains("Unknown command /nope"), "{out}");

    let (code, out, _) = support::run_mnemo(
        &dir,
        &["recall", "friday", "dentist", "--json", "--chat", "0"],
    )
    .await;
    assert_eq!(code, 0);
    let hits: serde_json::Value = serde_json::from_str(&out).unwrap();
    let h = &hits[0];
    assert_eq!(h["id"], 1);
    assert_eq!(h["chat_id"], 0);
    assert_eq!(h["source"], "console");
    assert!(h["score"].as_f64().unwrap() > 0.0);
    assert!(h["message_id"].is_null());
    assert!(chrono::DateTime::parse_from_rfc3339(h["created_at"].as_str().unwrap()).is_ok());

    let (_, out, _) =
        support::run_mnemo(&dir, &["recall", "dentist", "--json", "--chat", "77"]).await;
    assert_eq!(out.trim(), "[]", "another chat has no hits");

    let (code, out, err) = support::run_mnemo(&dir, &["stats", "--json"]).await;
    assert_eq!(code, 0, "stdout: {out}\nstderr: {err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v["memories"], 1);
}

#[tokio::test]
async fn oversize_empty_and_invalid_utf8_input_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let mut input = "y".repeat(5000).into_bytes();
    input.extend_from_slice(b"\n   \t \n");
    input.extend_from_slice(b"caf\xe9 latin-1 bytes\n");
    let (code, out, err) = chat(&dir, &input).await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("5000") && lines[0].contains("4096"),
        "{out}"
    );
    assert!(
        lines[1].contains("Saved as #1"),
        "lossy UTF-8 is still kept: {out}"
    );
    let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
    assert!(out.contains("\"memories\": 1"), "{out}");
}

#[tokio::test]
async fn data_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    chat(&dir, b"hello\n").await;
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("mnemo.redb")), 0o600);
}

#[tokio::test]
async fn doctor_reports_reasons_and_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    // Before any database: no health checks to run.
    let (code, out, _) = support::run_mnemo(&dir, &["doctor"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(!out.contains("health."), "{out}");
    // No token: console only — a warning, not unhealthy. The health checks
    // run here (no bot running), those needing the process are skipped.
    assert_eq!(support::run_mnemo(&dir, &["stats"]).await.0, 0);
    let (code, out, _) = support::run_mnemo(&dir, &["doctor"]).await;
    assert_eq!(code, 0, "{out}");
    assert!(
        out.contains("warn  telegram_token") && out.contains("TELEGRAM_BOT_TOKEN is not set"),
        "{out}"
    );
    assert!(out.contains("skip  health.telegram"), "{out}");
    assert!(out.contains("ok    health.database"), "{out}");
    // With a token-shaped token: healthy.
    let out = support::mnemo(&dir)
        .args(["doctor", "--json"])
        .env("TELEGRAM_BOT_TOKEN", support::fake_telegram::TOKEN)
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["healthy"], true);
    assert_eq!(v["health_from"], "local");
    let disk = v["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["name"] == "health.disk")
        .unwrap();
    assert!(
        disk["detail"].as_str().unwrap().contains("MB free"),
        "{disk}"
    );
    // Missing model files: unhealthy, naming the command that fixes it.
    let out = support::mnemo(&dir)
        .args(["doctor"])
        .env("TELEGRAM_BOT_TOKEN", support::fake_telegram::TOKEN)
        .env("MNEMO_MODELS__DIR", tmp.path().join("no-models"))
        .output()
        .await
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("FAIL  models") && text.contains("mnemo models fetch"),
        "{text}"
    );
    assert!(
        text.contains("speech_model") && text.contains("voice notes cannot be transcribed"),
        "{text}"
    );
    // A broken config file is a failed check, not a crash.
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "[telegram\napi_url = 1").unwrap();
    let (code, out, _) =
        support::run_mnemo(&dir, &["--config", bad.to_str().unwrap(), "doctor"]).await;
    assert_eq!(code, 1);
    assert!(out.contains("config"), "{out}");
    // A damaged database is reported, not overwritten.
    let dir2 = tmp.path().join("data2");
    std::fs::create_dir_all(&dir2).unwrap();
    std::fs::write(dir2.join("mnemo.redb"), vec![0x5Au8; 8192]).unwrap();
    let (code, out, _) = support::run_mnemo(&dir2, &["doctor"]).await;
    assert_eq!(code, 1);
    assert!(out.contains("FAIL  database"), "{out}");
    let (code, _, err) = support::run_mnemo(&dir2, &["stats"]).await;
    assert_eq!(code, 1);
    assert!(err.contains("error:"), "{err}");
    assert_eq!(
        std::fs::read(dir2.join("mnemo.redb")).unwrap(),
        vec![0x5Au8; 8192]
    );
}

#[tokio::test]
async fn a_question_right_after_a_note_finds_it_by_meaning() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let (code, out, err) = chat(
        &dir,
        "tooth appointment moved to Friday 3pm\nbuy milk\n/recall when is the dentist?\n"
            .as_bytes(),
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let answer: Vec<&str> = out
        .lines()
        .skip_while(|l| !l.starts_with("Best matches"))
        .collect();
    assert!(
        answer
            .get(1)
            .is_some_and(|l| l.contains("tooth appointment")),
        "{out}"
    );
}
