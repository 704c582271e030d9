//! Faults tried on purpose (docs/RELIABILITY.md, "Faults tried"): the real
//! binary against damaged files and records, killed mid-work. Each case says
//! what was lost (never anything acknowledged) and what was duplicated
//! (nothing).

mod support;

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
                        text: format!("note number {i} about the garden"),
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
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
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
        let line: Value = json(std::fs::read_to_string(&export).unwrap().lines().next().unwrap());
        assert_eq!((line["table"].as_str(), line["key"].as_str()), (Some("notes"), Some("3")));
        assert!(!line["hex"].as_str().unwrap().is_empty());
        let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
        assert_eq!(json(&out)["damaged"], 1, "export changes nothing");
        // --remove deletes it.
        let (code, out, err) = support::run_mnemo(&dir, &["repair", "--remove", "--json"]).await;
        assert_eq!(code, 0, "{err}");
        assert_eq!(json(&out)["removed"], 1, "{out}");
        let (_, out, _) = support::run_mnemo(&dir, &["stats", "--json"]).await;
        let st = json(&out);
        assert_eq!((st["damaged"].as_u64(), st["memories"].as_u64()), (Some(0), Some(4)), "{out}");
    }
}
