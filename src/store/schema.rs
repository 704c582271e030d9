//! Table definitions, the schema version and migrations.
//!
//! The version lives in `META["schema_version"]` as a little-endian `u32`.
//! [`migrate`] runs inside the open path, in one write transaction per step,
//! so a crash mid-migration leaves the previous version intact.
//!
//! History:
//! - v1: `notes_v1` (`u64 -> JSON {chat, user, msg, text, ts}` with `ts` in
//!   seconds), no secondary indexes.
//! - v2: `notes` with [`super::Note`] records (milliseconds, source, edits),
//!   plus the `chat_notes` and `msg_note` indexes and the Telegram tables.
//! - v3: `vectors` (sentence embeddings) and `embed_queue`; migrating
//!   queues every existing note for embedding.
//! - v4: inline buttons and what they act on: `items` (to-dos and decisions
//!   extracted from notes, with `chat_items`/`note_items` indexes),
//!   `used_nonces` (single-use presses), `asks` (the question a recall
//!   answered), `feedback_log` (append-only votes) and `feedback` (per-note
//!   aggregates the log is compacted into); migrating extracts the items of
//!   every existing note.
//! - v5: `voice_jobs` (voice notes between receipt and transcript); notes
//!   may carry `voice` metadata (new field, defaulted).
//! - v6: every stored vector names its space and dimension
//!   ([`super::encode_vector`]); migrating tags each bare vector with the
//!   space in `META["vector_model"]` (or queues every note for embedding
//!   when there is none).
//! - v7: imported chats live in chat spaces of their own
//!   ([`super::import_chat`]); migrating moves every imported note (its
//!   record, chat and message index entries, items) out of the chat whose
//!   id the export had — which was also a Telegram private chat's id.

use redb::{ReadableTable, TableDefinition, TableHandle, WriteTransaction};
use serde::Deserialize;

use super::{Note, Source, StoreError};

pub const CURRENT_VERSION: u32 = 7;

/// Small typed settings: schema version, counters, owner, last update id.
pub const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");
/// note id → JSON [`Note`].
pub const NOTES: TableDefinition<u64, &[u8]> = TableDefinition::new("notes");
/// (chat id, note id) → (): notes of one chat in id (= time) order.
pub const CHAT_NOTES: TableDefinition<(i64, u64), ()> = TableDefinition::new("chat_notes");
/// (chat id, message id) → note id, for the user's message and mnemo's ack.
pub const MSG_NOTE: TableDefinition<(i64, i64), u64> = TableDefinition::new("msg_note");
/// Telegram update id → unix ms when processed. Dedup of re-delivered updates.
pub const PROCESSED: TableDefinition<u64, i64> = TableDefinition::new("processed_updates");
/// Telegram update id → raw update JSON, received but not yet processed.
pub const INBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("inbox");
/// Sequence → JSON [`super::OutboxItem`]: replies committed but not yet sent.
pub const OUTBOX: TableDefinition<u64, &[u8]> = TableDefinition::new("outbox");
/// Chat id → reply language chosen with /lang.
pub const CHAT_LANG: TableDefinition<i64, &str> = TableDefinition::new("chat_lang");
/// User id → day number (unix days) of the last refusal sent to that stranger.
pub const REFUSED: TableDefinition<i64, i64> = TableDefinition::new("refused");

/// Note id → embedding, tagged with its space and dimension
/// ([`super::encode_vector`]). Vectors of a space other than
/// `META["vector_model"]` (the current one) are never loaded.
pub const VECTORS: TableDefinition<u64, &[u8]> = TableDefinition::new("vectors");
/// Note id → enqueue sequence: notes whose embedding is missing or stale.
/// The worker removes an entry only if its sequence is unchanged, so an edit
/// during embedding is embedded again.
pub const EMBED_QUEUE: TableDefinition<u64, u64> = TableDefinition::new("embed_queue");

/// Item id → JSON [`super::Item`]: a to-do or decision found in a note.
pub const ITEMS: TableDefinition<u64, &[u8]> = TableDefinition::new("items");
/// (chat id, item id) → (): a chat's items in id (= time) order.
pub const CHAT_ITEMS: TableDefinition<(i64, u64), ()> = TableDefinition::new("chat_items");
/// (note id, item id) → (): the items of one note (edits, deletes).
pub const NOTE_ITEMS: TableDefinition<(u64, u64), ()> = TableDefinition::new("note_items");
/// Nonce of an accepted single-use button press → its issue time (unix s).
/// Entries older than the button lifetime are pruned: such presses expire.
pub const USED_NONCES: TableDefinition<u64, i64> = TableDefinition::new("used_nonces");
/// Ask id → JSON [`super::Ask`]: a recall question whose hits carry vote
/// buttons (the vote needs the question to know what "similar" means).
pub const ASKS: TableDefinition<u64, &[u8]> = TableDefinition::new("asks");
/// Sequence → JSON [`super::FeedbackEvent`]: votes not yet compacted.
pub const FEEDBACK_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("feedback_log");
/// Note id → JSON [`super::Aggregate`]: compacted votes, one per user.
pub const FEEDBACK: TableDefinition<u64, &[u8]> = TableDefinition::new("feedback");

/// Job id → JSON [`super::VoiceJob`]: voice notes not yet transcribed.
pub const VOICE_JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("voice_jobs");
/// Job name → its last run (JSON `JobRun`). Added without a version bump:
/// `create_tables` makes it in older files, and older binaries ignore it.
pub const JOB_RUNS: TableDefinition<&str, &[u8]> = TableDefinition::new("job_runs");
/// Note id → the older note it repeats: a note found to be a near-duplicate
/// after it was acknowledged is kept (its acknowledgement and ↩ still point
/// at it) but hidden: out of the chat index, the counts and every search.
/// Added without a version bump, like `job_runs`.
pub const DUPLICATES: TableDefinition<u64, u64> = TableDefinition::new("duplicates");
/// (chat id, schedule name, slot unix s) → JSON [`super::SlotRecord`]: the
/// digest ledger, what became of each scheduled slot. Added without a
/// version bump, like `job_runs`.
pub const DIGEST_LEDGER: TableDefinition<(i64, &str, i64), &[u8]> =
    TableDefinition::new("digest_ledger");
/// Chat id → JSON [`super::ChatDigest`]: time zone and on/off of a chat's
/// digests. Added without a version bump.
pub const DIGEST_CHATS: TableDefinition<i64, &[u8]> = TableDefinition::new("digest_chats");

/// (unix ms, sequence) → JSON [`super::LlmCall`]: every answered LLM call
/// with its tokens and cost, for the daily limit and `/stats`. Added without
/// a version bump, like `job_runs`.
pub const LLM_CALLS: TableDefinition<(i64, u64), &[u8]> = TableDefinition::new("llm_calls");
/// `"last"` / `"last_verified"` → JSON [`super::BackupRecord`]: the newest
/// backup written and the newest that verified (health checks read their
/// age; retention never removes the last verified one). Added without a
/// version bump, like `job_runs`.
pub const BACKUPS: TableDefinition<&str, &[u8]> = TableDefinition::new("backups");
/// Check name → JSON `health::CheckRecord`: each health check's alert
/// state (so a restart does not alert again for a condition already
/// reported) and its last readings. Added without a version bump.
pub const HEALTH_CHECKS: TableDefinition<&str, &[u8]> = TableDefinition::new("health_checks");
/// Sequence → JSON `health::Transition`: the alert log `/alerts` shows,
/// pruned to the newest [`super::HEALTH_LOG_KEEP`]. Added without a version bump.
pub const HEALTH_LOG: TableDefinition<u64, &[u8]> = TableDefinition::new("health_log");

/// The v1 notes table, kept only to migrate from.
pub const NOTES_V1: TableDefinition<u64, &[u8]> = TableDefinition::new("notes_v1");

pub const KEY_VERSION: &str = "schema_version";
pub const KEY_NEXT_NOTE: &str = "next_note_id";
pub const KEY_NEXT_OUTBOX: &str = "next_outbox_seq";
pub const KEY_OWNER: &str = "owner_user_id";
pub const KEY_LAST_UPDATE: &str = "last_update_id";
pub const KEY_EMBED_SEQ: &str = "embed_seq";
pub const KEY_VECTOR_MODEL: &str = "vector_model";
pub const KEY_NEXT_ITEM: &str = "next_item_id";
pub const KEY_NEXT_ASK: &str = "next_ask_id";
pub const KEY_NEXT_FEEDBACK: &str = "next_feedback_seq";
pub const KEY_NEXT_VOICE: &str = "next_voice_job";
pub const KEY_NEXT_LLM_CALL: &str = "next_llm_call";
pub const KEY_NEXT_HEALTH_LOG: &str = "next_health_log";
/// The time of the health check's last probe commit.
pub const KEY_HEALTH_PROBE: &str = "health_probe";
/// Scratch value of a recovering store's room probe (removed at once).
pub const KEY_ROOM_PROBE: &str = "room_probe";

/// A `META` value as a little-endian `u64` (shorter values are zero-extended).
pub fn decode_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    let n = b.len().min(8);
    a[..n].copy_from_slice(&b[..n]);
    u64::from_le_bytes(a)
}

pub fn get_u64(txn: &WriteTransaction, key: &str) -> Result<Option<u64>, StoreError> {
    let meta = txn.open_table(META)?;
    let v = meta.get(key)?.map(|g| decode_u64(g.value()));
    Ok(v)
}

pub fn put_u64(txn: &WriteTransaction, key: &str, v: u64) -> Result<(), StoreError> {
    txn.open_table(META)?
        .insert(key, v.to_le_bytes().as_slice())?;
    Ok(())
}

/// Creates every table (so later read transactions never see a missing
/// table) and brings an older file up to [`CURRENT_VERSION`].
pub fn migrate(db: &redb::Database) -> Result<Migration, StoreError> {
    let txn = db.begin_write()?;
    let found = get_u64(&txn, KEY_VERSION)?.map(|v| v as u32);
    // Never open `notes_v1` to look: opening a table in a write transaction creates it.
    let has_v1 = txn.list_tables()?.any(|t| t.name() == NOTES_V1.name());
    let is_new = found.is_none() && !has_v1;
    let from = match found {
        Some(v) => v,
        None if is_new => CURRENT_VERSION,
        // A v1 file predates the version record.
        None => 1,
    };
    if from > CURRENT_VERSION {
        return Err(StoreError::TooNew {
            found: from,
            supported: CURRENT_VERSION,
        });
    }
    create_tables(&txn)?;
    let mut migrated = 0;
    if from == 1 {
        migrated = migrate_v1_to_v2(&txn)?;
    }
    if from <= 2 && from != CURRENT_VERSION {
        queue_all_for_embedding(&txn)?;
    }
    if from <= 3 && from != CURRENT_VERSION {
        extract_all_items(&txn)?;
    }
    if (3..=5).contains(&from) {
        tag_vectors(&txn)?;
    }
    if from < 7 {
        move_imports(&txn)?;
    }
    put_u64(&txn, KEY_VERSION, CURRENT_VERSION as u64)?;
    txn.commit()?;
    Ok(Migration {
        from,
        to: CURRENT_VERSION,
        notes_migrated: migrated,
    })
}

/// What [`migrate`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Migration {
    pub from: u32,
    pub to: u32,
    pub notes_migrated: u64,
}

fn create_tables(txn: &WriteTransaction) -> Result<(), StoreError> {
    txn.open_table(META)?;
    txn.open_table(NOTES)?;
    txn.open_table(CHAT_NOTES)?;
    txn.open_table(MSG_NOTE)?;
    txn.open_table(PROCESSED)?;
    txn.open_table(INBOX)?;
    txn.open_table(OUTBOX)?;
    txn.open_table(CHAT_LANG)?;
    txn.open_table(REFUSED)?;
    txn.open_table(VECTORS)?;
    txn.open_table(EMBED_QUEUE)?;
    txn.open_table(ITEMS)?;
    txn.open_table(CHAT_ITEMS)?;
    txn.open_table(NOTE_ITEMS)?;
    txn.open_table(USED_NONCES)?;
    txn.open_table(ASKS)?;
    txn.open_table(FEEDBACK_LOG)?;
    txn.open_table(FEEDBACK)?;
    txn.open_table(VOICE_JOBS)?;
    txn.open_table(JOB_RUNS)?;
    txn.open_table(DUPLICATES)?;
    txn.open_table(DIGEST_LEDGER)?;
    txn.open_table(DIGEST_CHATS)?;
    txn.open_table(LLM_CALLS)?;
    txn.open_table(BACKUPS)?;
    txn.open_table(HEALTH_CHECKS)?;
    txn.open_table(HEALTH_LOG)?;
    Ok(())
}

/// v3 → v4: the to-dos and decisions of every stored note.
fn extract_all_items(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let notes: Vec<Note> = {
        let t = txn.open_table(NOTES)?;
        let mut v = Vec::new();
        for row in t.iter()? {
            let (k, val) = row?;
            v.push(super::decode_note(k.value(), val.value())?);
        }
        v
    };
    let mut n = 0;
    for note in &notes {
        n += super::items::put_items_txn(txn, note)?;
    }
    Ok(n)
}

/// v6 → v7: every imported note moves to its chat's import space. A
/// message index entry moves only when it points at that note (a Telegram
/// message of the same number in the same chat keeps its own); damaged
/// notes stay where they are (`mnemo repair`). Returns the notes moved.
fn move_imports(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let notes: Vec<Note> = {
        let t = txn.open_table(NOTES)?;
        let mut v = Vec::new();
        for row in t.iter()? {
            let (k, val) = row?;
            if let Some(n) = super::read_note(k.value(), val.value()) {
                if n.source == Source::Import && !super::is_import_chat(n.chat_id) {
                    v.push(n);
                }
            }
        }
        v
    };
    let moved: std::collections::HashSet<u64> = notes.iter().map(|n| n.id).collect();
    let mut notes_t = txn.open_table(NOTES)?;
    let mut chat_notes = txn.open_table(CHAT_NOTES)?;
    let mut msg_note = txn.open_table(MSG_NOTE)?;
    let mut items = txn.open_table(ITEMS)?;
    let mut chat_items = txn.open_table(CHAT_ITEMS)?;
    let note_items = txn.open_table(NOTE_ITEMS)?;
    for mut n in notes.iter().cloned() {
        let (old, id) = (n.chat_id, n.id);
        let new = super::import_chat(old);
        n.chat_id = new;
        notes_t.insert(
            id,
            serde_json::to_vec(&n).expect("notes serialise").as_slice(),
        )?;
        // Hidden repeats are not in the chat index: they stay out of it.
        if chat_notes.remove((old, id))?.is_some() {
            chat_notes.insert((new, id), ())?;
        }
        if let Some(m) = n.message_id {
            let here = msg_note.get((old, m))?.map(|g| g.value());
            if let Some(target) = here.filter(|v| moved.contains(v)) {
                msg_note.remove((old, m))?;
                msg_note.insert((new, m), target)?;
            }
        }
        let ids: Vec<u64> = {
            let mut v = Vec::new();
            for row in note_items.range((id, 0)..=(id, u64::MAX))? {
                v.push(row?.0.value().1);
            }
            v
        };
        for item_id in ids {
            let Some(mut item) = items
                .get(item_id)?
                .and_then(|g| serde_json::from_slice::<super::Item>(g.value()).ok())
            else {
                continue;
            };
            chat_items.remove((item.chat_id, item_id))?;
            item.chat_id = new;
            chat_items.insert((new, item_id), ())?;
            items.insert(
                item_id,
                serde_json::to_vec(&item)
                    .expect("items serialise")
                    .as_slice(),
            )?;
        }
    }
    Ok(notes.len() as u64)
}

/// v5 → v6: bare f32 vectors get their space and dimension.
fn tag_vectors(txn: &WriteTransaction) -> Result<(), StoreError> {
    let space = txn
        .open_table(META)?
        .get(KEY_VECTOR_MODEL)?
        .map(|g| String::from_utf8_lossy(g.value()).into_owned());
    let Some(space) = space else {
        queue_all_for_embedding(txn)?;
        return Ok(());
    };
    let mut t = txn.open_table(VECTORS)?;
    let mut bare = Vec::new();
    for row in t.iter()? {
        let (k, v) = row?;
        bare.push((k.value(), super::decode_f32s(v.value())));
    }
    for (id, v) in bare {
        t.insert(id, super::encode_vector(&space, &v).as_slice())?;
    }
    Ok(())
}

/// Drops every vector and queues every note for embedding (v2 → v3, and a
/// change of embedding model).
pub fn queue_all_for_embedding(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut seq = get_u64(txn, KEY_EMBED_SEQ)?.unwrap_or(1);
    let mut n = 0;
    {
        let notes = txn.open_table(NOTES)?;
        let mut q = txn.open_table(EMBED_QUEUE)?;
        txn.open_table(VECTORS)?.retain(|_, _| false)?;
        for row in notes.iter()? {
            let (k, _) = row?;
            q.insert(k.value(), seq)?;
            seq += 1;
            n += 1;
        }
    }
    put_u64(txn, KEY_EMBED_SEQ, seq)?;
    Ok(n)
}

#[derive(Deserialize)]
struct NoteV1 {
    chat: i64,
    user: i64,
    msg: Option<i64>,
    text: String,
    /// Unix seconds.
    ts: i64,
}

fn migrate_v1_to_v2(txn: &WriteTransaction) -> Result<u64, StoreError> {
    let mut count = 0;
    let mut max_id = 0;
    {
        let old = txn.open_table(NOTES_V1)?;
        let mut notes = txn.open_table(NOTES)?;
        let mut chat_notes = txn.open_table(CHAT_NOTES)?;
        let mut msg_note = txn.open_table(MSG_NOTE)?;
        for row in old.iter()? {
            let (k, v) = row?;
            let id = k.value();
            let n: NoteV1 = serde_json::from_slice(v.value())
                .map_err(|e| StoreError::Corrupt(format!("v1 note {id}: {e}")))?;
            let note = Note {
                id,
                chat_id: n.chat,
                user_id: n.user,
                message_id: n.msg,
                text: n.text,
                created_at: n.ts * 1000,
                edited_at: None,
                source: if n.msg.is_some() {
                    Source::Telegram
                } else {
                    Source::Console
                },
                author: None,
                voice: None,
            };
            notes.insert(
                id,
                serde_json::to_vec(&note).expect("serialisable").as_slice(),
            )?;
            chat_notes.insert((note.chat_id, id), ())?;
            if let Some(m) = note.message_id {
                msg_note.insert((note.chat_id, m), id)?;
            }
            max_id = max_id.max(id);
            count += 1;
        }
    }
    txn.delete_table(NOTES_V1)?;
    let next = get_u64(txn, KEY_NEXT_NOTE)?.unwrap_or(1).max(max_id + 1);
    put_u64(txn, KEY_NEXT_NOTE, next)?;
    Ok(count)
}

/// One v1 note: (id, chat, user, message id, text, unix seconds).
pub type V1Note<'a> = (u64, i64, i64, Option<i64>, &'a str, i64);

/// The notes of the committed fixture `tests/data/schema_v1.redb`, written by
/// `src/bin/write-v1-fixture.rs`; `tests/migration.rs` checks the migrated
/// fixture against them.
#[doc(hidden)]
pub const V1_FIXTURE_NOTES: &[V1Note<'static>] = &[
    (
        1,
        42,
        42,
        Some(100),
        "dentist on Tuesday at 10",
        1_735_725_600,
    ),
    (
        2,
        42,
        42,
        Some(101),
        "call Anna about the flat",
        1_735_812_000,
    ),
    (7, 0, 0, None, "console note about bread", 1_735_898_400),
];

/// Writes a v1 database, exactly as version 1 laid it out. Used to make the
/// committed fixture `tests/data/schema_v1.redb` (with [`V1_FIXTURE_NOTES`]).
#[doc(hidden)]
pub fn write_v1_fixture(path: &std::path::Path, notes: &[V1Note]) -> Result<(), StoreError> {
    let db = redb::Database::create(path)?;
    let txn = db.begin_write()?;
    {
        let mut t = txn.open_table(NOTES_V1)?;
        for (id, chat, user, msg, text, ts) in notes {
            let v =
                serde_json::json!({"chat": chat, "user": user, "msg": msg, "text": text, "ts": ts});
            t.insert(*id, serde_json::to_vec(&v).expect("json").as_slice())?;
        }
    }
    txn.commit()?;
    Ok(())
}
