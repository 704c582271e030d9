//! Opening a database written by an older schema migrates it in place.
//!
//! `tests/data/schema_v1.redb` was written once by `write_v1_fixture` from
//! `V1_FIXTURE_NOTES` and is committed, so the format it holds is frozen even
//! if the writer changes. To regenerate it (only when the notes change):
//!
//! ```text
//! cargo run --bin write-v1-fixture -- tests/data/schema_v1.redb
//! ```

use mnemo::config::Config;
use mnemo::core::{Core, Settings};
use mnemo::store::schema::{CURRENT_VERSION, V1_FIXTURE_NOTES};
use mnemo::store::{Source, Store, DB_FILE};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/schema_v1.redb");

#[test]
fn a_v1_database_is_migrated_and_usable() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(FIXTURE, dir.path().join(DB_FILE)).unwrap();
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    assert_eq!(store.count_notes().unwrap(), 3);
    let n = store.note(1).unwrap().unwrap();
    assert_eq!(n.text, "dentist on Tuesday at 10");
    assert_eq!(
        n.created_at, 1_735_725_600_000,
        "seconds became milliseconds"
    );
    assert_eq!(n.source, Source::Telegram);
    assert_eq!(store.note(7).unwrap().unwrap().source, Source::Console);
    // The committed file holds exactly the notes its writer is given.
    assert_eq!(store.count_notes().unwrap(), V1_FIXTURE_NOTES.len() as u64);
    for &(id, chat, user, msg, text, ts) in V1_FIXTURE_NOTES {
        let n = store.note(id).unwrap().unwrap();
        assert_eq!(
            (n.chat_id, n.user_id, n.message_id, n.text.as_str()),
            (chat, user, msg, text),
            "note {id}"
        );
        assert_eq!(n.created_at, ts * 1000, "note {id}");
    }
    // Secondary indexes were built.
    assert_eq!(
        store
            .recent(42, 10)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect::<Vec<_>>(),
        vec![2, 1]
    );
    // New notes continue after the highest old id, and recall sees old notes.
    let core = Core::new(store, Settings::from_config(&Config::defaults())).unwrap();
    let id = core
        .store()
        .write(|tx| {
            tx.insert_note(mnemo::store::NewNote {
                chat_id: 42,
                user_id: 42,
                message_id: None,
                text: "new".into(),
                created_at: 0,
                source: Source::Console,
                author: None,
            })
        })
        .unwrap()
        .id;
    assert_eq!(id, 8);
    assert_eq!(core.recall("dentist", Some(42), 5).unwrap()[0].note.id, 1);
    drop(core);
    // Re-opening is a no-op.
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.count_notes().unwrap(), 4);
}

#[test]
fn a_database_from_a_newer_mnemo_is_refused_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DB_FILE);
    {
        let db = redb::Database::create(&path).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(mnemo::store::schema::META)
            .unwrap()
            .insert("schema_version", 99u64.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let err = Store::open(dir.path()).err().expect("must refuse");
    assert!(err.to_string().contains("newer"), "{err}");
    // Nothing was migrated or created: the version record is as it was and
    // no table of ours appeared.
    use redb::ReadableDatabase;
    let db = redb::Database::open(&path).unwrap();
    let r = db.begin_read().unwrap();
    let v = r
        .open_table(mnemo::store::schema::META)
        .unwrap()
        .get("schema_version")
        .unwrap()
        .unwrap()
        .value()
        .to_vec();
    assert_eq!(v, 99u64.to_le_bytes());
    assert_eq!(r.list_tables().unwrap().count(), 1);
}

/// v5 stored bare f32 vectors; v6 tags each with its space and dimension.
#[test]
fn v5_vectors_are_tagged_with_the_space_they_were_computed_in() {
    use mnemo::store::schema::{META, VECTORS};
    let dir = tempfile::tempdir().unwrap();
    let space = mnemo::core::vector_space_of(mnemo::models::EMBED_MODEL_ID);
    let v: Vec<f32> = (0..384).map(|i| (i as f32 / 384.0) - 0.5).collect();
    {
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                tx.insert_note(mnemo::store::NewNote {
                    chat_id: 1,
                    user_id: 1,
                    message_id: None,
                    text: "a note embedded by v5".into(),
                    created_at: 1,
                    source: Source::Console,
                    author: None,
                })?;
                tx.reset_vectors(&space)?;
                Ok(())
            })
            .unwrap();
    }
    // Rewrite the file as v5 left it: a bare vector, version 5.
    {
        let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(VECTORS)
            .unwrap()
            .insert(1, mnemo::store::encode_f32s(&v).as_slice())
            .unwrap();
        txn.open_table(mnemo::store::schema::EMBED_QUEUE)
            .unwrap()
            .remove(1)
            .unwrap();
        txn.open_table(META)
            .unwrap()
            .insert("schema_version", 5u64.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    let mut seen = Vec::new();
    let stale = store
        .for_each_vector(&space, 384, |id, chat, got| seen.push((id, chat, got)))
        .unwrap();
    assert!(stale.is_empty());
    assert_eq!(seen, vec![(1, 1, v.clone())]);
    // Read as another space, the same vector is stale, not loaded.
    let stale = store
        .for_each_vector("other-model#x", 384, |_, _, _| panic!("mixed spaces"))
        .unwrap();
    assert_eq!(stale, vec![1]);
}

/// v6 → v7: an imported note stored (as v6 did) under the export's chat id —
/// which is also a Telegram private chat's id — moves to the import space;
/// the Telegram note of that chat, even with the same message number, stays.
#[test]
fn v6_imports_move_to_their_own_chat_space() {
    use mnemo::store::{import_chat, NewNote, Source};
    let dir = tempfile::tempdir().unwrap();
    let (imported, live) = {
        let store = Store::open(dir.path()).unwrap();
        let note = |source, text: &str| NewNote {
            chat_id: 888,
            user_id: 888,
            message_id: Some(10),
            text: text.into(),
            created_at: 1,
            source,
            author: Some("Jonas".into()),
        };
        let imported = store
            .write(|tx| tx.insert_note(note(Source::Import, "todo: bring the old photos")))
            .unwrap();
        // What v6 did: the import was linked under the export's chat id.
        let live = store
            .write(|tx| tx.insert_note(note(Source::Telegram, "my own note")))
            .unwrap();
        store
            .write(|tx| tx.link_message(888, 10, imported.id))
            .unwrap();
        (imported.id, live.id)
    };
    // The file as v6 left it: version 6, the imported note in chat 888.
    {
        let db = redb::Database::open(dir.path().join(DB_FILE)).unwrap();
        let txn = db.begin_write().unwrap();
        txn.open_table(mnemo::store::schema::META)
            .unwrap()
            .insert("schema_version", 6u64.to_le_bytes().as_slice())
            .unwrap();
        txn.commit().unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.schema_version().unwrap(), CURRENT_VERSION);
    let space = import_chat(888);
    assert_eq!(store.note(imported).unwrap().unwrap().chat_id, space);
    assert_eq!(store.note(live).unwrap().unwrap().chat_id, 888);
    assert_eq!(
        store
            .recent(888, 10)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect::<Vec<_>>(),
        vec![live]
    );
    assert_eq!(
        store
            .recent(space, 10)
            .unwrap()
            .iter()
            .map(|n| n.id)
            .collect::<Vec<_>>(),
        vec![imported]
    );
    assert_eq!(
        store.write(|tx| tx.note_by_message(space, 10)).unwrap(),
        Some(imported)
    );
    // The to-do moved with its note: chat 888's list no longer shows it.
    use mnemo::store::ItemKind;
    assert!(store
        .items(888, ItemKind::Todo, false, 10)
        .unwrap()
        .is_empty());
    assert_eq!(
        store.items(space, ItemKind::Todo, false, 10).unwrap().len(),
        1
    );
}
