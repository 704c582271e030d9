//! `mnemo import` on Telegram Desktop exports, through the real binary.

mod support;

use serde_json::{json, Value};

fn export() -> Value {
    json!({
        "about": "Here is the data you requested.",
        "chats": {"about": "This page lists all chats.", "list": [
            {"name": "Saved Messages", "type": "saved_messages", "id": 777,
             "messages": [
                {"id": 1, "type": "message", "date": "2024-03-01T09:00:00", "date_unixtime": "1709283600",
                 "from": "Ana", "from_id": "user777", "text": "Dentist appointment moved to Friday 3pm"},
                {"id": 2, "type": "service", "date": "2024-03-01T09:05:00", "action": "pin_message"},
                {"id": 3, "type": "message", "date": "2024-03-02T10:00:00", "date_unixtime": "1709373600",
                 "from": "Ana", "from_id": "user777",
                 "text": ["Wifi password hint: ", {"type": "bold", "text": "grandma's street"}, " + 42"]},
                {"id": 4, "type": "message", "date": "2024-03-03T10:00:00", "from": "Ana", "from_id": "user777",
                 "photo": "photos/1.jpg", "text": ""}
             ]},
            {"name": "Jonas", "type": "personal_chat", "id": 888,
             "messages": [
                {"id": 10, "type": "message", "date": "2024-04-01T18:00:00", "date_unixtime": "1711994400",
                 "from": "Jonas", "from_id": "user888", "text": "/recall this is not a command here"}
             ]}
        ]}
    })
}

#[tokio::test]
async fn import_is_complete_idempotent_and_searchable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let file = tmp.path().join("result.json");
    std::fs::write(&file, serde_json::to_vec_pretty(&export()).unwrap()).unwrap();

    let (code, out, err) =
        support::run_mnemo(&dir, &["import", file.to_str().unwrap(), "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            s["chats"].as_u64(),
            s["imported"].as_u64(),
            s["skipped"].as_u64(),
            s["duplicates"].as_u64()
        ),
        (Some(2), Some(3), Some(2), Some(0)),
        "{out}"
    );
    assert_eq!(s["embedded"], 3, "{out}");

    // Again: nothing stored twice.
    let (code, out, _) =
        support::run_mnemo(&dir, &["import", file.to_str().unwrap(), "--json"]).await;
    assert_eq!(code, 0);
    let s: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (s["imported"].as_u64(), s["duplicates"].as_u64()),
        (Some(0), Some(3)),
        "{out}"
    );

    // Found by meaning, with chat, message id, author date preserved.
    let (_, out, _) = support::run_mnemo(
        &dir,
        &[
            "recall", "when", "is", "the", "tooth", "doctor?", "--json", "--chat", "777",
        ],
    )
    .await;
    let hits: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        hits[0]["text"], "Dentist appointment moved to Friday 3pm",
        "{out}"
    );
    assert_eq!(hits[0]["message_id"], 1);
    assert_eq!(hits[0]["author"], "Ana", "{out}");
    assert_eq!(hits[0]["source"], "import");
    assert_eq!(hits[0]["created_at"], "2024-03-01T09:00:00.000Z");
    let (_, out, _) = support::run_mnemo(&dir, &["recall", "wifi", "--json"]).await;
    assert!(
        out.contains("Wifi password hint: grandma's street + 42"),
        "entities flattened: {out}"
    );
    let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (
            st["memories"].as_u64(),
            st["embedded"].as_u64(),
            st["pending"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{out}"
    );

    // Rebuilding every derived index from the database gives the same answers.
    let (code, out, err) = support::run_mnemo(&dir, &["reindex", "--json"]).await;
    assert_eq!(code, 0, "{err}");
    let r: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        (r["notes"].as_u64(), r["embedded"].as_u64()),
        (Some(3), Some(3)),
        "{out}"
    );
    let (_, out, _) = support::run_mnemo(
        &dir,
        &["recall", "tooth", "doctor", "--json", "--chat", "777"],
    )
    .await;
    assert!(out.contains("Dentist appointment"), "{out}");
    // The plain --explain names every part of the score; a question that
    // asks when gets the part for a note that names a time.
    let (code, out, err) = support::run_mnemo(
        &dir,
        &["recall", "when", "is", "the", "dentist?", "--explain"],
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let at = lines
        .iter()
        .position(|l| l.contains("Dentist appointment"))
        .unwrap_or_else(|| panic!("{out}"));
    let first = lines[at..(at + 3).min(lines.len())].join("\n");
    assert!(
        first.contains("bm25") && first.contains("sitting") && first.contains("relevance"),
        "{out}"
    );
    assert!(first.contains("names a time 0.050"), "{out}");

    // Scripted evaluation: one query per line in, one JSON array per line out,
    // with --explain giving each component.
    use tokio::io::AsyncWriteExt;
    let mut child = support::mnemo(&dir)
        .args(["recall", "--stdin", "--json", "--explain", "--k", "2"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin
        .write_all(b"dentist\n\nrouter password\n")
        .await
        .unwrap();
    drop(stdin);
    let out = child.wait_with_output().await.unwrap();
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    assert!(lines[0][0]["text"].as_str().unwrap().starts_with("Dentist"));
    assert!(lines[0][0]["explain"]["bm25"].as_f64().unwrap() > 0.0);
    assert_eq!(lines[1], json!([]));
    assert!(
        lines[2][0]["text"].as_str().unwrap().starts_with("Wifi"),
        "{:?}",
        lines[2]
    );
}

#[tokio::test]
async fn a_malformed_export_is_rejected_with_its_position_and_imports_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("data");
    let file = tmp.path().join("broken.json");
    let mut text = serde_json::to_string_pretty(&export()).unwrap();
    text.truncate(text.len() / 2);
    std::fs::write(&file, &text).unwrap();
    let (code, _, err) = support::run_mnemo(&dir, &["import", file.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(
        err.contains("line") && err.contains("column") && err.contains("nothing was imported"),
        "{err}"
    );
    let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
    let st: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(st["memories"], 0);
    // Not an export at all.
    std::fs::write(&file, b"{\"hello\": \"world\"}").unwrap();
    let (code, _, err) = support::run_mnemo(&dir, &["import", file.to_str().unwrap()]).await;
    assert_eq!(code, 1);
    assert!(err.contains("not a Telegram export"), "{err}");
}
