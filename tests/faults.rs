//! Faults tried on purpose (docs/RELIABILITY.md, "Faults tried"): the real
//! binary against damaged files and records, killed mid-work. Each case says
//! what was lost (never anything acknowledged) and what was duplicated
//! (nothing).

mod support;

/// Runs `mnemo <args>` with more environment: (exit code, stdout, stderr).
async fn run_env(
    dir: &std::path::Path,
    args: &[&str],
    env: &[(&str, &str)],
) -> (i32, String, String) {
    let out = support::mnemo(dir)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .await
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Damaged records and damaged files: flipped bytes in redb and in each
/// derived file.
mod damaged {
    use std::path::Path;

    use mnemo::store::{NewNote, Source, Store};
    use redb::ReadableTable;
    use serde_json::Value;

    use super::support;

    const NOTES: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("notes");

    /// Five console notes (chat 0) through the store API, then note 3's stored
    /// value replaced by bytes that are no note (redb's own checksums are
    /// fine: the file is a valid database, one record is not).
    fn store_with_a_damaged_note(dir: &Path) {
        let store = Store::open(dir).unwrap();
        store
            .write(|tx| {
                for i in 1..=5 {
                    tx.insert_note(NewNote {
                        chat_id: 0,
                        user_id: 0,
                        message_id: Some(i),
                        // Only note 5 is about the garden: recall has one
                        // clear answer, above the relevance floor.
                        text: format!(
                            "note number {i} about the {}",
                            if i == 5 { "garden" } else { "bicycle" }
                        ),
                        created_at: 1_700_000_000_000 + i,
                        source: Source::Console,
                        author: None,
                    })?;
                }
                Ok(())
            })
            .unwrap();
        drop(store);
        damage_note(dir, 3);
    }

    pub(super) fn damage_note(dir: &Path, id: u64) {
        let db = redb::Database::open(dir.join(mnemo::store::DB_FILE)).unwrap();
        let w = db.begin_write().unwrap();
        {
            let mut t = w.open_table(NOTES).unwrap();
            let mut bytes = t.get(id).unwrap().unwrap().value().to_vec();
            // Flip bits in the middle of the JSON: it no longer decodes.
            let mid = bytes.len() / 2;
            for b in &mut bytes[mid - 3..mid + 3] {
                *b ^= 0xA5;
            }
            bytes[0] ^= 0xFF;
            t.insert(id, bytes.as_slice()).unwrap();
        }
        w.commit().unwrap();
    }

    fn json(out: &str) -> Value {
        serde_json::from_str(out).unwrap_or_else(|e| panic!("{e}: {out}"))
    }

    /// Lost: the damaged note's text (its bytes are kept, exportable);
    /// every other note is served. Duplicated: nothing.
    #[tokio::test]
    async fn a_damaged_note_does_not_stop_the_start() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        store_with_a_damaged_note(&dir);

        let (code, out, err) = support::run_mnemo(&dir, &["stats", "--json"]).await;
        assert_eq!(code, 0, "stats starts: {err}");
        let st = json(&out);
        assert_eq!(st["damaged"], 1, "{out}");
        assert_eq!(st["memories"], 5, "{out}");
        assert_eq!(
            err.matches("damaged record").count(),
            1,
            "reported once: {err}"
        );
        assert!(
            !err.contains("garden"),
            "the log names ids, never contents: {err}"
        );

        // The console starts and recalls the readable notes.
        use tokio::io::AsyncWriteExt;
        let mut child = support::mnemo(&dir)
            .arg("chat")
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"/recall garden\n").await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(text.contains("note number 5"), "{text}");

        // doctor lists it.
        let (_, out, _) = support::run_mnemo(&dir, &["doctor", "--json"]).await;
        let d = json(&out);
        assert_eq!(d["damaged"][0]["table"], "notes", "{out}");
        assert_eq!(d["damaged"][0]["key"], "3", "{out}");

        // repair lists by default and changes nothing.
        let (code, out, err) = support::run_mnemo(&dir, &["repair", "--json"]).await;
        assert_eq!(code, 0, "{err}");
        let r = json(&out);
        assert_eq!(r["damaged"].as_array().unwrap().len(), 1, "{out}");
        assert_eq!(r["removed"], 0, "{out}");
        // --export writes the raw bytes, 0600.
        let export = tmp.path().join("damaged.jsonl");
        let (code, _, err) = support::run_mnemo(
            &dir,
            &["repair", "--export", export.to_str().unwrap(), "--json"],
        )
        .await;
        assert_eq!(code, 0, "{err}");
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&export).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let line: Value = json(
            std::fs::read_to_string(&export)
                .unwrap()
                .lines()
                .next()
                .unwrap(),
        );
        assert_eq!(
            (line["table"].as_str(), line["key"].as_str()),
            (Some("notes"), Some("3"))
        );
        assert!(!line["hex"].as_str().unwrap().is_empty());
        let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
        assert_eq!(json(&out)["damaged"], 1, "export changes nothing");
        // --remove deletes it.
        let (code, out, err) = support::run_mnemo(&dir, &["repair", "--remove", "--json"]).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(&out)["removed"], 1, "{out}");
        let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
        let st = json(&out);
        assert_eq!(
            (st["damaged"].as_u64(), st["memories"].as_u64()),
            (Some(0), Some(4)),
            "{out}"
        );
    }
}

/// Flipped bytes in files: in redb's own structures (redb notices: a clear
/// error, the file untouched) and in each derived file (rebuilt).
mod files {
    use std::path::Path;

    use serde_json::{json, Value};

    use super::support;

    fn sha(path: &Path) -> String {
        mnemo::models::sha256_file(path).unwrap()
    }

    fn flip(path: &Path, at: u64) {
        use std::io::{Read, Seek, SeekFrom, Write};
        let mut f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(path)
            .unwrap();
        let len = f.metadata().unwrap().len();
        let at = at.min(len - 1);
        let mut b = [0u8; 8];
        f.seek(SeekFrom::Start(at)).unwrap();
        let n = f.read(&mut b).unwrap();
        for x in &mut b[..n] {
            *x ^= 0x5A;
        }
        f.seek(SeekFrom::Start(at)).unwrap();
        f.write_all(&b[..n]).unwrap();
    }

    /// redb's header (magic number, god byte) flipped. Lost: nothing — the
    /// open fails before anything is written, the file is byte for byte what
    /// it was (restore it from a backup); duplicated: nothing.
    #[tokio::test]
    async fn a_flipped_redb_header_is_a_clear_error_and_the_file_is_untouched() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        mnemo::store::Store::open(&dir).unwrap();
        let db = dir.join(mnemo::store::DB_FILE);
        flip(&db, 0);
        let before = sha(&db);
        for cmd in [&["stats", "--json"][..], &["recall", "x"], &["repair"]] {
            let (code, _, err) = support::run_mnemo(&dir, cmd).await;
            assert_ne!(code, 0, "{cmd:?}");
            assert!(
                err.contains("damaged") && err.contains("did not modify"),
                "{cmd:?}: {err}"
            );
            assert_eq!(sha(&db), before, "{cmd:?} left the file as it was");
        }
    }

    fn export(n: usize) -> Value {
        let topics = ["garden", "bicycle", "passport", "dentist", "piano"];
        let messages: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": i + 1, "type": "message", "date": "2024-03-01T09:00:00",
                       "date_unixtime": (1_709_283_600 + i as i64 * 60).to_string(),
                       "from": "Ana", "from_id": "user777",
                       "text": format!("note {i} about the {}", topics[i % topics.len()])})
            })
            .collect();
        json!({"name": "Saved Messages", "type": "saved_messages", "id": 777, "messages": messages})
    }

    /// Each file in `ann/` (a segment's vectors and links, the manifest)
    /// damaged in turn. Lost: nothing — the graph is derived from the
    /// vectors in redb and rebuilt from them (no model run); recall answers
    /// as before. Duplicated: nothing (the rebuilt graph has one point per
    /// note).
    #[tokio::test]
    async fn each_damaged_derived_file_is_rebuilt() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let file = tmp.path().join("result.json");
        std::fs::write(&file, serde_json::to_vec(&export(40)).unwrap()).unwrap();
        let env = [("MNEMO_RECALL__ANN_THRESHOLD", "10")];
        let run = |args: &'static [&'static str]| super::run_env(&dir, args, &env);
        let (code, _, err) =
            super::run_env(&dir, &["import", file.to_str().unwrap(), "--json"], &env).await;
        assert_eq!(code, 0, "{err}");
        let (code, first, err) = run(&["recall", "bicycle", "--json", "--chat", "777"]).await;
        assert_eq!(code, 0, "{err}");
        assert!(err.contains("Loaded"), "the saved graph is used: {err}");
        let ann = dir.join("ann");
        // Each rebuild saves a segment under a new name: found again each time.
        let segment = || {
            std::fs::read_dir(&ann)
                .unwrap()
                .map(|e| e.unwrap().path())
                .find(|p| p.extension().is_some_and(|e| e == "ann"))
                .expect("one segment file")
        };
        for name in ["segment vectors", "segment links", "manifest.json"] {
            let path = match name {
                "manifest.json" => ann.join(name),
                _ => segment(),
            };
            let len = std::fs::metadata(&path).unwrap().len();
            // 40 points: vectors 30 kB from byte 32, the links after them.
            flip(
                &path,
                if name == "segment links" {
                    len - 64
                } else {
                    len / 2
                },
            );
            let (code, out, err) = run(&["recall", "bicycle", "--json", "--chat", "777"]).await;
            assert_eq!(code, 0, "{name}: {err}");
            assert!(err.contains("Rebuilt"), "{name} damaged → rebuilt: {err}");
            let ids = |s: &str| -> Vec<u64> {
                serde_json::from_str::<Value>(s)
                    .unwrap()
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|h| h["id"].as_u64().unwrap())
                    .collect()
            };
            assert_eq!(ids(&out), ids(&first), "{name}: same answers");
            let (_, st, _) = run(&["stats", "--json"]).await;
            let st: Value = serde_json::from_str(&st).unwrap();
            assert_eq!(
                (
                    st["memories"].as_u64(),
                    st["embedded"].as_u64(),
                    st["damaged"].as_u64()
                ),
                (Some(40), Some(40), Some(0)),
                "{name}"
            );
        }
    }
}

/// `mnemo import` against hostile and huge input, and killed mid-import.
mod import {

    use serde_json::{json, Value};

    use super::support;

    fn export(n: usize, text: impl Fn(usize) -> String) -> Value {
        let messages: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": i + 1, "type": "message", "date": "2024-03-01T09:00:00",
                       "date_unixtime": (1_709_283_600 + i as i64).to_string(),
                       "from": "Jonas", "from_id": "user888", "text": text(i)})
            })
            .collect();
        json!({"name": "Jonas", "type": "personal_chat", "id": 888, "messages": messages})
    }

    async fn memories(dir: &std::path::Path) -> u64 {
        let (code, out, err) = support::run_mnemo(dir, &["stats", "--json"]).await;
        assert_eq!(code, 0, "{err}");
        serde_json::from_str::<Value>(&out).unwrap()["memories"]
            .as_u64()
            .unwrap()
    }

    /// A date near i64::MAX in the middle of the file. Lost: nothing was
    /// stored (refused whole, as any malformed export); duplicated: nothing.
    #[tokio::test]
    async fn an_out_of_range_date_names_the_message_and_writes_nothing() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let mut e = export(50, |i| format!("message {i}"));
        e["messages"][30]["date_unixtime"] = json!("9223372036854775807");
        let file = tmp.path().join("result.json");
        std::fs::write(&file, serde_json::to_vec(&e).unwrap()).unwrap();
        let (code, _, err) =
            support::run_mnemo(&dir, &["import", file.to_str().unwrap(), "--no-embed"]).await;
        assert_eq!(code, 1, "{err}");
        assert!(
            err.contains("message #30 (id 31)")
                && err.contains("out of range")
                && err.contains("nothing was imported"),
            "{err}"
        );
        assert_eq!(memories(&dir).await, 0);
    }

    /// A 50,000-character message with `notes.max_chars` 4096: stored as
    /// linked parts, every character kept, counted in the summary; a re-run
    /// stores nothing twice.
    #[tokio::test]
    async fn a_long_message_becomes_linked_parts() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let long = "lorem ipsum dolor ".repeat(50_000 / 18);
        let e = export(3, |i| {
            if i == 1 {
                long.clone()
            } else {
                format!("short {i}")
            }
        });
        let file = tmp.path().join("result.json");
        std::fs::write(&file, serde_json::to_vec(&e).unwrap()).unwrap();
        let args = ["import", file.to_str().unwrap(), "--no-embed", "--json"];
        let (code, out, err) = support::run_mnemo(&dir, &args).await;
        assert_eq!(code, 0, "{err}");
        let s: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (s["imported"].as_u64(), s["split"].as_u64()),
            (Some(3), Some(1)),
            "{out}"
        );
        let parts = s["parts"].as_u64().unwrap();
        assert!(parts >= 13, "{out}");
        assert_eq!(memories(&dir).await, 2 + parts);
        let (_, out, _) = support::run_mnemo(&dir, &args).await;
        let s: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            (s["imported"].as_u64(), s["duplicates"].as_u64()),
            (Some(0), Some(3)),
            "{out}"
        );
        assert_eq!(memories(&dir).await, 2 + parts, "nothing twice");
        let (_, out, _) = support::run_mnemo(
            &dir,
            &[
                "recall", "lorem", "ipsum", "--chat", "888", "--json", "--k", "50",
            ],
        )
        .await;
        let hits: Value = serde_json::from_str(&out).unwrap();
        let hits = hits.as_array().unwrap();
        assert!(!hits.is_empty(), "{out}");
        assert!(
            hits.iter().all(|h| h["chat_id"] == 888),
            "the export's id: {out}"
        );
        let parts_found: Vec<&Value> = hits
            .iter()
            .filter(|h| h["text"].as_str().unwrap().contains("lorem"))
            .collect();
        assert!(!parts_found.is_empty() && parts_found.iter().all(|h| h["message_id"] == 2));
        assert!(hits
            .iter()
            .all(|h| h["text"].as_str().unwrap().chars().count() <= 4096));
    }

    /// `/dev/zero`, a sparse 5 GiB file and a pipe over the cap: refused
    /// quickly, without reading them whole. Lost/duplicated: nothing.
    #[tokio::test]
    async fn inputs_over_the_size_cap_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let (code, _, err) = support::run_mnemo(&dir, &["import", "/dev/zero", "--no-embed"]).await;
        assert_eq!(code, 1, "{err}");
        assert!(err.contains("nothing was imported"), "{err}");
        let sparse = tmp.path().join("huge.json");
        std::fs::File::create(&sparse)
            .unwrap()
            .set_len(5 << 30)
            .unwrap();
        for cmd in [
            vec!["import", sparse.to_str().unwrap()],
            vec!["transcribe", sparse.to_str().unwrap()],
            vec!["transcribe", "/dev/zero"],
        ] {
            let (code, _, err) = support::run_mnemo(&dir, &cmd).await;
            assert_eq!(code, 1, "{cmd:?}: {err}");
            assert!(err.contains("max_bytes"), "{cmd:?}: {err}");
        }
        // A pipe is read only up to the cap.
        use tokio::io::AsyncWriteExt;
        let mut child = support::mnemo(&dir)
            .args(["import", "/dev/stdin", "--no-embed"])
            .env("MNEMO_NOTES__IMPORT_MAX_BYTES", "2000")
            .stdin(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        let body = serde_json::to_vec(&export(100, |i| format!("m {i}"))).unwrap();
        let _ = stdin.write_all(&body).await;
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{err}");
        assert!(err.contains("more than 2000 bytes"), "{err}");
        // Under the cap, a pipe imports.
        let mut child = support::mnemo(&dir)
            .args(["import", "/dev/stdin", "--no-embed", "--json"])
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(&body).await.unwrap();
        drop(stdin);
        let out = child.wait_with_output().await.unwrap();
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(s["imported"], 100);
    }

    /// `kill -9` of the real binary while it imports 20,000 messages (at
    /// several points), then the same import again. Lost: nothing (each
    /// batch is one commit; the re-run stores what the killed run did not);
    /// duplicated: nothing (dedup on chat and message id).
    #[tokio::test]
    async fn killed_mid_import_then_rerun_stores_each_message_once() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let n = 20_000;
        let e = export(n, |i| {
            format!("message number {i} about something or other")
        });
        let file = tmp.path().join("result.json");
        std::fs::write(&file, serde_json::to_vec(&e).unwrap()).unwrap();
        let args = [
            "import",
            file.to_str().unwrap(),
            "--no-embed",
            "--batch",
            "500",
            "--json",
        ];
        // Killed right after a batch's commit was logged, early, midway and
        // late in the file (each re-run counts from the file's start, the
        // duplicates included): every message a committed batch held is
        // there.
        for at in [1_000, 8_000, 15_000] {
            let mut cmd = support::mnemo(&dir);
            cmd.args(args);
            let done =
                support::kill_on_log(cmd, "import batch committed", |done, _| done >= at).await;
            let m = memories(&dir).await;
            eprintln!("killed after {done} messages reported committed: memories {m}");
            assert!(m >= done, "{done} committed, {m} stored");
            // Batches fall at the same places in the file on every run.
            assert_eq!(m % 500, 0, "whole batches only: {m}");
        }
        let (code, out, err) = support::run_mnemo(&dir, &args).await;
        assert_eq!(code, 0, "{err}");
        let s: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            s["imported"].as_u64().unwrap() + s["duplicates"].as_u64().unwrap(),
            n as u64,
            "{out}"
        );
        assert_eq!(memories(&dir).await, n as u64, "each message once");
    }
}

/// Imports live in a chat space of their own.
mod import_space {
    use std::time::Duration;

    use mnemo::import::ImportedMessage;

    use super::support::{fake_telegram as tg, InProcBot};

    const JONAS: i64 = 888;
    const T: Duration = Duration::from_secs(15);

    /// The owner imported their chat with Jonas (export id 888 = Jonas' user
    /// id = Jonas' private chat with the bot). Jonas, allowlisted, neither
    /// recalls nor forgets it; the CLI finds it by the export id.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_allowlisted_user_cannot_reach_an_import_of_their_chat() {
        let bot = InProcBot::start(&[JONAS]).await;
        let sum = bot
            .core
            .import(
                &[ImportedMessage {
                    chat_id: JONAS,
                    message_id: 1,
                    author: Some("Owner".into()),
                    user_id: 1,
                    date: 1_700_000_000_000,
                    text: "the safe code is 4711".into(),
                }],
                10,
                |_, _| {},
            )
            .unwrap();
        assert_eq!(sum.imported, 1);
        bot.tg.push(tg::text(JONAS, 5, "/recall safe code"));
        let sent = bot.tg.wait_sent(JONAS, 1, T).await;
        assert!(!sent[0].contains("4711"), "{sent:?}");
        bot.tg.push(tg::text(JONAS, 6, "/forget 1"));
        let sent = bot.tg.wait_sent(JONAS, 2, T).await;
        assert!(sent[1].contains("no note #1"), "{sent:?}");
        assert_eq!(bot.core.store().count_notes().unwrap(), 1, "still there");
        // The library and CLI address it by the export's chat id.
        let hits = bot.core.recall("safe code", Some(JONAS), 5).unwrap();
        assert_eq!(hits.len(), 1);
        assert_eq!(mnemo::store::shown_chat(hits[0].note.chat_id), JONAS);
        assert_ne!(hits[0].note.chat_id, JONAS);
        bot.stop().await.unwrap();
    }
}

/// `kill -9` while the model embeds a backlog and the graph is built and
/// saved.
mod embedding {
    use serde_json::{json, Value};

    use super::support;

    /// 1,500 imported notes queued for embedding (`--no-embed`), then
    /// `mnemo recall` (which embeds the backlog first, builds the graph past
    /// `ann_threshold` 200 and saves it on exit) killed with SIGKILL at
    /// three points, each seen in its debug log. Lost: nothing — every note
    /// is either embedded or still queued after each kill (embedded +
    /// pending = memories), at least what was reported embedded is, and a
    /// graph save cut short is caught up; duplicated: nothing — one vector
    /// per note, one graph point per vector.
    #[tokio::test]
    async fn killed_while_embedding_and_saving_the_graph() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let n = 1500;
        let topics = ["garden", "bicycle", "passport", "dentist", "piano", "tax"];
        let messages: Vec<Value> = (0..n)
            .map(|i| {
                json!({"id": i + 1, "type": "message", "date": "2024-03-01T09:00:00",
                       "from": "Ana", "from_id": "user1",
                       "text": format!("{} note {i}: remember the {} thing", topics[i % 6], topics[(i / 6) % 6])})
            })
            .collect();
        let file = tmp.path().join("result.json");
        std::fs::write(
            &file,
            serde_json::to_vec(&json!({"id": 1, "messages": messages})).unwrap(),
        )
        .unwrap();
        let (code, _, err) =
            support::run_mnemo(&dir, &["import", file.to_str().unwrap(), "--no-embed"]).await;
        assert_eq!(code, 0, "{err}");
        let env = [("MNEMO_RECALL__ANN_THRESHOLD", "200")];
        let stats = || async {
            let (_, out, _) = super::run_env(&dir, &["stats", "--json"], &env).await;
            serde_json::from_str::<Value>(&out).unwrap()
        };
        // Killed right after a take's commit was logged (the first take,
        // then one midway through what is left), then as the graph's save
        // on the way out begins (1,500 points: ~0.09 s here, so the kill lands
        // in it). What was reported embedded stays embedded.
        let take = "embedded take committed";
        let mut before = 0;
        for (msg, stop) in [
            (
                take,
                &(|d: u64, _: u64| d >= 256) as &dyn Fn(u64, u64) -> bool,
            ),
            (take, &|d, t| d >= t / 2),
            ("ANN graph save started", &|_, _| true),
        ] {
            let mut cmd = support::mnemo(&dir);
            cmd.args(["recall", "bicycle", "--json"]).envs(env);
            let done = support::kill_on_log(cmd, msg, stop).await;
            let s = stats().await;
            eprintln!("killed at {msg:?} ({done} more reported embedded): {s}");
            let (m, e, p) = (
                s["memories"].as_u64().unwrap(),
                s["embedded"].as_u64().unwrap(),
                s["pending"].as_u64().unwrap(),
            );
            assert_eq!(m, n as u64);
            assert_eq!(e + p, m, "every note embedded or queued");
            assert!(
                e >= before + done,
                "{before} + {done} reported, {e} embedded"
            );
            before = e;
        }
        let (code, _, err) = super::run_env(&dir, &["recall", "bicycle", "--json"], &env).await;
        assert_eq!(code, 0, "{err}");
        let s = stats().await;
        assert_eq!(
            (
                s["embedded"].as_u64(),
                s["pending"].as_u64(),
                s["index_size"].as_u64()
            ),
            (Some(n as u64), Some(0), Some(n as u64)),
            "{s}"
        );
    }
}

/// A damaged or missing cross-encoder file: recall over an imported chat
/// still answers, with the plain relevance.
mod reranker {
    use serde_json::{json, Value};

    use super::support;

    /// A models dir whose files are the real ones (linked) but for the
    /// reranker's model: bytes flipped in it, then the file gone. `mnemo
    /// recall --chat` over an imported chat exits 0 with its hits, none
    /// scored by the cross-encoder, and a warning naming `mnemo models
    /// fetch`; with the real file the same recall scores them. Lost:
    /// nothing (the chat's 6 messages stay); duplicated: nothing.
    #[tokio::test]
    async fn a_damaged_or_missing_model_leaves_recall_with_its_plain_relevance() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let models = tmp.path().join("models");
        std::fs::create_dir(&models).unwrap();
        let real = support::models_dir();
        let name = mnemo::models::RERANKER.model.name;
        for e in std::fs::read_dir(&real).unwrap() {
            let e = e.unwrap();
            if e.file_name() != name && e.path().is_file() {
                std::os::unix::fs::symlink(e.path(), models.join(e.file_name())).unwrap();
            }
        }
        let mut bytes = std::fs::read(real.join(name)).unwrap();
        let mid = bytes.len() / 2;
        bytes[mid..mid + 64].iter_mut().for_each(|b| *b ^= 0x5a);
        std::fs::write(models.join(name), &bytes).unwrap();

        let lines = [
            ("Priya", "Did you buy it in the end?"),
            ("Owen", "Yes! Second-hand piano, 450 pounds"),
            ("Priya", "Bargain"),
            ("Owen", "The garage wants 780 for the clutch"),
            ("Priya", "Ouch"),
            ("Owen", "Tell me about it"),
        ];
        let messages: Vec<Value> = lines
            .iter()
            .enumerate()
            .map(|(i, (a, t))| {
                json!({"id": i + 1, "type": "message",
                       "date": format!("2024-03-01T09:0{i}:00"),
                       "from": a, "from_id": format!("user{}", a.len()), "text": t})
            })
            .collect();
        let file = tmp.path().join("result.json");
        std::fs::write(
            &file,
            serde_json::to_vec(&json!({"id": 7, "messages": messages})).unwrap(),
        )
        .unwrap();
        let (code, _, err) = support::run_mnemo(&dir, &["import", file.to_str().unwrap()]).await;
        assert_eq!(code, 0, "{err}");

        let recall = |models: std::path::PathBuf| {
            let dir = dir.clone();
            async move {
                let m = models.to_str().unwrap().to_owned();
                let (code, out, err) = super::run_env(
                    &dir,
                    &[
                        "recall",
                        "How much was the piano?",
                        "--chat",
                        "7",
                        "--json",
                        "--explain",
                    ],
                    &[("MNEMO_MODELS__DIR", m.as_str())],
                )
                .await;
                assert_eq!(code, 0, "{err}");
                let hits: Vec<Value> = serde_json::from_str(&out).unwrap();
                (hits, err)
            }
        };
        let scored = |hits: &[Value]| {
            hits.iter()
                .filter(|h| h["explain"]["rerank"].is_number())
                .count()
        };
        // Flipped bytes: the checksum refuses the file.
        let (hits, err) = recall(models.clone()).await;
        assert_eq!(hits.len(), 5, "{hits:?}");
        assert_eq!(hits[0]["message_id"], 2, "{hits:?}");
        assert_eq!(scored(&hits), 0);
        assert!(
            err.contains("wrong checksum") && err.contains("mnemo models fetch"),
            "{err}"
        );
        // The file gone.
        std::fs::remove_file(models.join(name)).unwrap();
        let (hits, err) = recall(models.clone()).await;
        assert_eq!((hits.len(), scored(&hits)), (5, 0));
        assert!(
            err.contains("is missing") && err.contains("mnemo models fetch"),
            "{err}"
        );
        // The real models: the turns are scored.
        let (hits, _) = recall(real).await;
        assert_eq!(scored(&hits), 5, "{hits:?}");
        assert_eq!(hits[0]["message_id"], 2);
        let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
        let s: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(s["memories"], 6, "{s}");
    }
}

/// A data disk that fills up while notes arrive: the real binary on a real
/// size-limited tmpfs, the fake Bot API recording which offsets were
/// confirmed.
mod disk {
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use super::support::disk::{fill_to, unfill, SmallDisk};
    use super::support::fake_telegram::{self as tg, FakeTelegram, TOKEN};
    use super::support::{run_mnemo, ServeProcess};

    const OWNER: i64 = 4242;
    const T: Duration = Duration::from_secs(60);

    /// Health passes every second (their probe commits hit the full disk
    /// too); no free-space thresholds, so the refused writes are the only
    /// thing to tell; every note its own (no repeat check).
    const ENV: [(&str, &str); 8] = [
        ("MNEMO_NOTES__DUPLICATE_THRESHOLD", "2"),
        ("MNEMO_HEALTH__INTERVAL_SECS", "1"),
        ("MNEMO_HEALTH__DISK_FREE_WARN_MB", "0"),
        ("MNEMO_HEALTH__DISK_FREE_CRITICAL_MB", "0"),
        ("MNEMO_HEALTH__DISK_FREE_WARN_PERCENT", "0"),
        ("MNEMO_HEALTH__DISK_FREE_CRITICAL_PERCENT", "0"),
        ("MNEMO_JOBS__BACKUP", ""),
        ("MNEMO_JOBS__GRAPH_SAVE", "every 2s"),
    ];

    fn serve(dir: &std::path::Path, tg: &FakeTelegram) -> ServeProcess {
        ServeProcess::spawn_env(dir, &tg.url(), &OWNER.to_string(), TOKEN, &ENV)
    }

    /// A note of about 2,000 characters, distinct from every other.
    fn note(i: i64) -> String {
        let words: String = (0..300).map(|w| format!("w{}x{} ", i, w)).collect();
        format!("disk note {i}: {words}")
    }

    /// How many messages acknowledge note `#id`.
    fn acks(sent: &[String], id: usize) -> usize {
        let tag = format!("#{id}");
        sent.iter()
            .filter(|m| m.contains("Saved as"))
            .filter(|m| {
                m.split(|c: char| !c.is_ascii_alphanumeric() && c != '#')
                    .any(|w| w == tag)
            })
            .count()
    }

    fn saved(tg: &FakeTelegram) -> usize {
        tg.sent_to(OWNER)
            .iter()
            .filter(|m| m.contains("Saved as"))
            .count()
    }

    fn alerts(tg: &FakeTelegram) -> Vec<String> {
        tg.sent_to(OWNER)
            .into_iter()
            .filter(|m| m.starts_with("🩺"))
            .collect()
    }

    /// The highest offset any getUpdates confirmed.
    fn confirmed(tg: &FakeTelegram) -> i64 {
        tg.calls("GetUpdates")
            .iter()
            .filter_map(|c| c.params["offset"].as_i64())
            .max()
            .unwrap_or(0)
    }

    /// Starts serving on a 48 MB tmpfs, stores three notes, fills the disk
    /// to the last byte and sends notes one at a time until the store
    /// refuses one (the owner is alerted). Returns the process, the number
    /// of notes sent and the update id of the first note not acknowledged.
    async fn until_refused(
        disk: &SmallDisk,
        dir: &std::path::Path,
        tg: &FakeTelegram,
    ) -> (ServeProcess, i64, i64) {
        let p = serve(dir, tg);
        tg.wait_for("polling", T, |c| c.iter().any(|c| c.method == "GetUpdates"))
            .await;
        let mut ids = Vec::new();
        for i in 1..=3 {
            ids.push(tg.push(tg::text(OWNER, i, &note(i))));
        }
        tg.wait_sent(OWNER, 3, T).await;
        fill_to(&disk.dir, 0);
        let mut i = 3;
        loop {
            i += 1;
            assert!(i < 400, "the store never refused a note:\n{}", p.log_text());
            let before = saved(tg);
            ids.push(tg.push(tg::text(OWNER, i, &note(i))));
            let deadline = Instant::now() + Duration::from_secs(10);
            while saved(tg) == before && alerts(tg).is_empty() {
                assert!(
                    Instant::now() < deadline,
                    "note {i}: neither stored nor refused:\n{}",
                    p.log_text()
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            if !alerts(tg).is_empty() {
                break;
            }
        }
        let first_unacked = ids[saved(tg)];
        (p, i, first_unacked)
    }

    /// Notes arrive while the disk fills to the last byte, and more while it
    /// is full; then space is freed. Lost: nothing — no update whose inbox
    /// write failed is confirmed (every getUpdates offset ≤ the first
    /// unacknowledged update + 1, the one update that may have reached the
    /// inbox before its handling was refused), polling pauses (no getUpdates
    /// at all while full), and once space is back it resumes by itself and
    /// every note is stored and acknowledged. Duplicated: nothing — each
    /// note acknowledged once. The owner is alerted once (directly) and told
    /// of the recovery once (through the outbox).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_pauses_polling_and_resumes_by_itself_with_every_note_once() {
        let Some(disk) = SmallDisk::mount(48) else {
            return;
        };
        let dir = disk.dir.join("data");
        let tg = FakeTelegram::start().await;
        let (mut p, sent, first_unacked) = until_refused(&disk, &dir, &tg).await;
        let stored_before = saved(&tg);
        // More notes while the disk is full.
        for i in sent + 1..=sent + 3 {
            tg.push(tg::text(OWNER, i, &note(i)));
        }
        let total = sent + 3;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let polls = tg.calls("GetUpdates").len();
        tokio::time::sleep(Duration::from_secs(4)).await;
        assert_eq!(
            tg.calls("GetUpdates").len(),
            polls,
            "polling goes on while the disk is full:\n{}",
            p.log_text()
        );
        assert!(tg.pending_updates() >= 3, "{}", tg.pending_updates());
        assert!(
            confirmed(&tg) <= first_unacked + 1,
            "offset {} confirmed past update {first_unacked}",
            confirmed(&tg)
        );
        assert_eq!(saved(&tg), stored_before, "nothing stored while full");
        let a = alerts(&tg);
        assert_eq!(a.len(), 1, "{a:?}");
        assert!(
            a[0].contains("Data disk") && a[0].contains("refused"),
            "{a:?}"
        );

        // Space comes back: by itself, every note once.
        let t0 = Instant::now();
        unfill(&disk.dir);
        let deadline = Instant::now() + T;
        while saved(&tg) < total as usize {
            assert!(
                Instant::now() < deadline,
                "{} of {total} acknowledged:\n{}",
                saved(&tg),
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let resumed = t0.elapsed();
        let deadline = Instant::now() + T;
        while alerts(&tg).len() < 2 {
            assert!(Instant::now() < deadline, "no recovery: {:?}", alerts(&tg));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let told = t0.elapsed();
        tokio::time::sleep(Duration::from_secs(4)).await;
        let a = alerts(&tg);
        assert_eq!(a.len(), 2, "one alert, one recovery: {a:?}");
        assert!(a[1].contains("recovered"), "{a:?}");
        let sent_msgs = tg.sent_to(OWNER);
        for id in 1..=total as usize {
            assert_eq!(acks(&sent_msgs, id), 1, "note #{id}: {sent_msgs:?}");
        }
        assert_eq!(saved(&tg), total as usize);
        assert_eq!(tg.pending_updates(), 0);
        // The user is told directly at most once (the one note whose
        // handling was refused after it reached the inbox).
        let refused = sent_msgs.iter().filter(|m| m.starts_with("⚠️")).count();
        assert!(refused <= 1, "{sent_msgs:?}");
        println!(
            "full disk: {sent} notes sent until one was refused ({refused} told 'not saved yet'); space freed → all {total} acknowledged after {resumed:?}, recovery told after {told:?}"
        );
        p.term();
        assert!(p.wait_exit(T).await.success(), "{}", p.log_text());
        let (_, out, _) = run_mnemo(&dir, &["stats", "--json"]).await;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["memories"], total, "{v}");
        assert_eq!(v["outbox"], 0, "{v}");
    }

    /// The inbox write itself refused: a 3 MB message (over the note limit,
    /// so it gets a clear "not saved" reply once handled) arriving on a full
    /// disk with nothing else writing, so the first refused commit is its
    /// inbox copy. Held: never confirmed — not by a later poll (there is
    /// none while full), not by the stop. SIGTERM, space freed, restart:
    /// Telegram delivers it again and it is answered once; the note sent
    /// while full is stored once. Lost, duplicated: nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn an_update_whose_inbox_write_is_refused_is_never_confirmed() {
        let Some(disk) = SmallDisk::mount(48) else {
            return;
        };
        let dir = disk.dir.join("data");
        let tg = FakeTelegram::start().await;
        let quiet = [
            ("MNEMO_HEALTH__INTERVAL_SECS", "3600"),
            ("MNEMO_JOBS__GRAPH_SAVE", ""),
            ("MNEMO_NOTES__DUPLICATE_THRESHOLD", "2"),
        ];
        let spawn = || ServeProcess::spawn_env(&dir, &tg.url(), &OWNER.to_string(), TOKEN, &quiet);
        let mut p = spawn();
        tg.wait_for("polling", T, |c| c.iter().any(|c| c.method == "GetUpdates"))
            .await;
        tg.push(tg::text(OWNER, 1, &note(1)));
        tg.wait_sent(OWNER, 1, T).await;
        fill_to(&disk.dir, 0);
        let big = tg.push(tg::text(OWNER, 2, &"y".repeat(3 << 20)));
        let deadline = Instant::now() + T;
        while alerts(&tg).is_empty() {
            assert!(Instant::now() < deadline, "no alert:\n{}", p.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tg.push(tg::text(OWNER, 3, &note(3)));
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(
            confirmed(&tg) <= big,
            "held update {big} confirmed: {}",
            confirmed(&tg)
        );
        assert_eq!(tg.pending_updates(), 2);
        // Held by the listener, not refused in a handler (which would have
        // told the user "could not save that").
        assert!(
            !tg.sent_to(OWNER)
                .iter()
                .any(|m| m.contains("could not save")),
            "{:?}",
            tg.sent_to(OWNER)
        );
        p.term();
        assert!(p.wait_exit(T).await.success(), "{}", p.log_text());
        assert!(
            confirmed(&tg) <= big,
            "held update {big} confirmed by the stop: {}",
            confirmed(&tg)
        );
        assert_eq!(tg.pending_updates(), 2);

        unfill(&disk.dir);
        let mut p = spawn();
        let deadline = Instant::now() + T;
        let too_long = |tg: &FakeTelegram| {
            tg.sent_to(OWNER)
                .iter()
                .filter(|m| m.contains("Not saved"))
                .count()
        };
        while saved(&tg) < 2 || too_long(&tg) < 1 {
            assert!(
                Instant::now() < deadline,
                "{:?}\n{}",
                tg.sent_to(OWNER),
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(too_long(&tg), 1, "{:?}", tg.sent_to(OWNER));
        let sent_msgs = tg.sent_to(OWNER);
        for id in 1..=2 {
            assert_eq!(acks(&sent_msgs, id), 1, "note #{id}: {sent_msgs:?}");
        }
        assert_eq!(tg.pending_updates(), 0);
        p.term();
        assert!(p.wait_exit(T).await.success());
        let (_, out, _) = run_mnemo(&dir, &["stats", "--json"]).await;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["memories"], 2, "{v}");
    }

    /// SIGTERM while the disk is full and updates are held: the process
    /// exits (time printed; BENCHMARKS) without confirming any of them;
    /// restarted with space, every note is there and acknowledged once.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sigterm_while_the_disk_is_full_exits_and_a_restart_loses_nothing() {
        let Some(disk) = SmallDisk::mount(48) else {
            return;
        };
        let dir = disk.dir.join("data");
        let tg = FakeTelegram::start().await;
        let (mut p, sent, first_unacked) = until_refused(&disk, &dir, &tg).await;
        for i in sent + 1..=sent + 2 {
            tg.push(tg::text(OWNER, i, &note(i)));
        }
        let total = sent + 2;
        tokio::time::sleep(Duration::from_secs(1)).await;
        let t0 = Instant::now();
        p.term();
        let status = p.wait_exit(Duration::from_secs(60)).await;
        let took = t0.elapsed();
        println!("SIGTERM with the disk full: exit {status:?} after {took:?}");
        assert!(status.success(), "{status:?}\n{}", p.log_text());
        assert!(
            confirmed(&tg) <= first_unacked + 1,
            "offset {} confirmed past update {first_unacked} on the way out",
            confirmed(&tg)
        );

        unfill(&disk.dir);
        let mut p = serve(&dir, &tg);
        let deadline = Instant::now() + T;
        while saved(&tg) < total as usize {
            assert!(
                Instant::now() < deadline,
                "{} of {total} acknowledged after the restart:\n{}",
                saved(&tg),
                p.log_text()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
        let sent_msgs = tg.sent_to(OWNER);
        for id in 1..=total as usize {
            assert_eq!(acks(&sent_msgs, id), 1, "note #{id}: {sent_msgs:?}");
        }
        p.term();
        assert!(p.wait_exit(T).await.success());
        let (_, out, _) = run_mnemo(&dir, &["stats", "--json"]).await;
        let v: Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["memories"], total, "{v}");
        assert_eq!(v["outbox"], 0, "{v}");
    }
}
