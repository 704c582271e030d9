//! The single source of truth: one redb file in the data dir.
//!
//! Everything mnemo knows lives here — notes, the Telegram inbox and outbox,
//! processed update ids, per-chat settings, the owner — and every derived
//! structure (today the lexical index) is rebuilt from it.
//!
//! Writes go through [`Store::write`], which hands a [`Tx`] to a closure and
//! commits once: the core puts a note, its processed marker and its reply in
//! the same transaction, which is what makes "acknowledged ⇒ durable" and
//! "re-delivered ⇒ not stored twice" hold after a crash at any point.
//!
//! The file is created with mode 0600 inside a 0700 directory. redb takes an
//! exclusive lock on it; a second process gets [`StoreError::InUse`].

mod feedback;
mod items;
mod jobs;
pub mod schema;
mod voice;

pub use feedback::{Aggregate, Ask, Compaction, FeedbackCounts, FeedbackEvent, Vote};
pub use items::{Item, ItemCounts, ItemKind};
pub use jobs::JobRun;
pub use voice::{VoiceJob, VoiceMeta, VoiceState};

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::ops::Bound;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, WriteTransaction};
use serde::{Deserialize, Serialize};

use schema::*;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "mnemo.redb";
/// Written by `mnemo serve` so that other commands can name the holder.
pub const PID_FILE: &str = "serve.pid";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the database {path} is in use by another mnemo process{holder}; stop it first (only one process may open the database)")]
    InUse { path: PathBuf, holder: String },
    #[error("the database was written by a newer mnemo (schema v{found}, this build knows up to v{supported}); upgrade mnemo")]
    TooNew { found: u32, supported: u32 },
    #[error(
        "the database is damaged: {0}. Restore {DB_FILE} from a backup; mnemo did not modify it"
    )]
    Corrupt(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        source: std::io::Error,
    },
    #[error("database error: {0}")]
    Db(#[from] redb::Error),
}

impl StoreError {
    /// True when the failure is a full disk (ENOSPC / EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::Io { source, .. } => Some(source),
            StoreError::Db(redb::Error::Io(e)) => Some(e),
            _ => None,
        };
        io.is_some_and(|e| {
            e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(122)
        })
    }
}

macro_rules! from_redb {
    ($($t:ty),*) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self { StoreError::Db(e.into()) }
        }
    )*};
}
from_redb!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

/// Where a note came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Telegram,
    Console,
    Import,
    Voice,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Telegram => "telegram",
            Source::Console => "console",
            Source::Import => "import",
            Source::Voice => "voice",
        }
    }
}

/// One memory. Times are unix milliseconds (UTC).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Note {
    pub id: u64,
    pub chat_id: i64,
    pub user_id: i64,
    pub message_id: Option<i64>,
    pub text: String,
    pub created_at: i64,
    #[serde(default)]
    pub edited_at: Option<i64>,
    pub source: Source,
    /// Display name of the author, when known (imports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// For voice notes: the audio and how it was transcribed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<VoiceMeta>,
}

/// A note about to be stored; the id is assigned by [`Tx::insert_note`].
#[derive(Debug, Clone)]
pub struct NewNote {
    pub chat_id: i64,
    pub user_id: i64,
    pub message_id: Option<i64>,
    pub text: String,
    pub created_at: i64,
    pub source: Source,
    pub author: Option<String>,
}

pub struct Store {
    db: Database,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) `dir/mnemo.redb` and migrates it to the
    /// current schema.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| io_err(format!("cannot create data dir {}", dir.display()), e))?;
        let path = dir.join(DB_FILE);
        // Create the file ourselves so that it is 0600 from its first byte.
        let f = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| io_err(format!("cannot open {}", path.display()), e))?;
        f.set_permissions(Permissions::from_mode(0o600))
            .map_err(|e| io_err(format!("cannot set mode 0600 on {}", path.display()), e))?;
        drop(f);
        let db = Database::create(&path).map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                holder: holder(dir),
                path: path.clone(),
            },
            redb::DatabaseError::Storage(redb::StorageError::Corrupted(msg)) => {
                StoreError::Corrupt(msg)
            }
            redb::DatabaseError::Storage(redb::StorageError::Io(e))
                if e.kind() == std::io::ErrorKind::InvalidData =>
            {
                StoreError::Corrupt(e.to_string())
            }
            other => other.into(),
        })?;
        let m = schema::migrate(&db)?;
        if m.from != m.to {
            tracing::info!(
                from = m.from,
                to = m.to,
                notes = m.notes_migrated,
                "migrated database schema"
            );
        }
        Ok(Store { db, path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data dir the database lives in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Size of the database file in bytes.
    pub fn file_size(&self) -> u64 {
        std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0)
    }

    /// Runs `f` in one write transaction and commits it durably.
    /// If `f` fails nothing is written.
    pub fn write<T>(
        &self,
        f: impl FnOnce(&mut Tx) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let txn = self.db.begin_write()?;
        let mut tx = Tx { txn };
        let out = f(&mut tx)?;
        tx.txn.commit()?;
        Ok(out)
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self.meta_u64(KEY_VERSION)?.unwrap_or(0) as u32)
    }

    pub fn owner(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.meta_u64(KEY_OWNER)?.map(|v| v as i64))
    }

    fn meta_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(key)?.map(|g| decode_u64(g.value())))
    }

    pub fn note(&self, id: u64) -> Result<Option<Note>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(NOTES)?;
        t.get(id)?.map(|g| decode_note(id, g.value())).transpose()
    }

    /// The newest `n` notes of a chat, newest first.
    pub fn recent(&self, chat_id: i64, n: usize) -> Result<Vec<Note>, StoreError> {
        self.newest_in_chat(chat_id, Bound::Included((chat_id, u64::MAX)), n)
    }

    /// Up to `n` notes of `chat_id` just before note `id` (ids are arrival
    /// order), newest first: the turns a message in a conversation answers.
    pub fn notes_before(&self, chat_id: i64, id: u64, n: usize) -> Result<Vec<Note>, StoreError> {
        self.newest_in_chat(chat_id, Bound::Excluded((chat_id, id)), n)
    }

    /// Up to `n` notes of `chat_id` up to `end` in the chat index, newest
    /// first (one read transaction).
    fn newest_in_chat(
        &self,
        chat_id: i64,
        end: Bound<(i64, u64)>,
        n: usize,
    ) -> Result<Vec<Note>, StoreError> {
        let r = self.db.begin_read()?;
        let idx = r.open_table(CHAT_NOTES)?;
        let notes = r.open_table(NOTES)?;
        let mut out = Vec::with_capacity(n);
        for row in idx
            .range((Bound::Included((chat_id, 0)), end))?
            .rev()
            .take(n)
        {
            let id = row?.0.value().1;
            if let Some(g) = notes.get(id)? {
                out.push(decode_note(id, g.value())?);
            }
        }
        Ok(out)
    }

    pub fn count_notes(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(NOTES)?.len()?)
    }

    pub fn count_chat_notes(&self, chat_id: i64) -> Result<u64, StoreError> {
        let r = self.db.begin_read()?;
        let idx = r.open_table(CHAT_NOTES)?;
        let mut n = 0;
        for row in idx.range((chat_id, 0)..=(chat_id, u64::MAX))? {
            row?;
            n += 1;
        }
        Ok(n)
    }

    /// Number of distinct chats with at least one note.
    pub fn count_chats(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read()?;
        let idx = r.open_table(CHAT_NOTES)?;
        let mut n = 0;
        let mut last = None;
        for row in idx.iter()? {
            let (k, _) = row?;
            let chat = k.value().0;
            if last != Some(chat) {
                n += 1;
                last = Some(chat);
            }
        }
        Ok(n)
    }

    /// Calls `f` for every note in id order (for rebuilding derived indexes).
    pub fn for_each_note(&self, mut f: impl FnMut(Note)) -> Result<(), StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(NOTES)?;
        for row in t.iter()? {
            let (k, v) = row?;
            f(decode_note(k.value(), v.value())?);
        }
        Ok(())
    }

    pub fn chat_lang(&self, chat_id: i64) -> Result<Option<String>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(CHAT_LANG)?;
        Ok(t.get(chat_id)?.map(|g| g.value().to_owned()))
    }

    /// Up to `limit` queued replies, oldest first.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.dump(OUTBOX, limit)
    }

    /// Updates received from Telegram but not yet processed, oldest first.
    pub fn inbox(&self, limit: usize) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        self.dump(INBOX, limit)
    }

    fn dump(
        &self,
        table: redb::TableDefinition<u64, &[u8]>,
        limit: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(table)?;
        let mut out = Vec::new();
        for row in t.iter()?.take(limit) {
            let (k, v) = row?;
            out.push((k.value(), v.value().to_vec()));
        }
        Ok(out)
    }

    pub fn outbox_len(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(OUTBOX)?.len()?)
    }

    pub fn last_update_id(&self) -> Result<Option<u64>, StoreError> {
        self.meta_u64(KEY_LAST_UPDATE)
    }

    /// The embedding space the stored vectors belong to.
    pub fn vector_model(&self) -> Result<Option<String>, StoreError> {
        let r = self.db.begin_read()?;
        let t = r.open_table(META)?;
        Ok(t.get(KEY_VECTOR_MODEL)?
            .map(|g| String::from_utf8_lossy(g.value()).into_owned()))
    }

    /// Up to `limit` queued notes: (note id, queue sequence, note).
    pub fn embed_queue(&self, limit: usize) -> Result<Vec<(u64, u64, Note)>, StoreError> {
        let r = self.db.begin_read()?;
        let q = r.open_table(EMBED_QUEUE)?;
        let notes = r.open_table(NOTES)?;
        let mut out = Vec::new();
        for row in q.iter()? {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            let id = k.value();
            if let Some(g) = notes.get(id)? {
                out.push((id, v.value(), decode_note(id, g.value())?));
            }
        }
        Ok(out)
    }

    pub fn embed_queue_len(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(EMBED_QUEUE)?.len()?)
    }

    pub fn vector_count(&self) -> Result<u64, StoreError> {
        let r = self.db.begin_read()?;
        Ok(r.open_table(VECTORS)?.len()?)
    }

    /// Calls `f(note id, chat id, vector)` for every stored vector of
    /// embedding space `space`. Returns the notes whose stored vector is of
    /// another space, another dimension than `dim`, or unreadable: they need
    /// embedding again ([`Tx::requeue_embed`]).
    pub fn for_each_vector(
        &self,
        space: &str,
        dim: usize,
        mut f: impl FnMut(u64, i64, Vec<f32>),
    ) -> Result<Vec<u64>, StoreError> {
        let r = self.db.begin_read()?;
        let vt = r.open_table(VECTORS)?;
        let notes = r.open_table(NOTES)?;
        let mut stale = Vec::new();
        for row in vt.iter()? {
            let (k, v) = row?;
            let id = k.value();
            let Some(n) = notes.get(id)? else { continue };
            match decode_vector(v.value()) {
                Some((s, v)) if s == space && v.len() == dim => {
                    f(id, decode_note(id, n.value())?.chat_id, v)
                }
                _ => stale.push(id),
            }
        }
        Ok(stale)
    }
}

/// What the lexical index reads for a note: its text, after its author's
/// name when it has one (imported chats: "what did Ana say about…").
pub fn indexed_text<'a>(author: Option<&str>, text: &'a str) -> std::borrow::Cow<'a, str> {
    match author {
        Some(a) if !a.trim().is_empty() => format!("{}: {text}", a.trim()).into(),
        _ => text.into(),
    }
}

impl Note {
    /// [`indexed_text`] of this note.
    pub fn indexed_text(&self) -> std::borrow::Cow<'_, str> {
        indexed_text(self.author.as_deref(), &self.text)
    }
}

/// Little-endian f32s, nothing else (question vectors inside JSON records).
pub fn encode_f32s(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn decode_f32s(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Layout version of a stored vector (the first byte of each `vectors` value).
const VECTOR_FORMAT: u8 = 1;

/// A note's stored embedding, self-describing: format byte (1), the length
/// of the space name (u8), the space name (model id and text layout, see
/// `core::vector_space`), the dimension (u16 LE), then the f32 LE values.
/// A vector never leaves the store without the space it was computed in.
pub fn encode_vector(space: &str, v: &[f32]) -> Vec<u8> {
    let name = &space.as_bytes()[..space.len().min(255)];
    let mut b = Vec::with_capacity(4 + name.len() + 4 * v.len());
    b.push(VECTOR_FORMAT);
    b.push(name.len() as u8);
    b.extend_from_slice(name);
    b.extend_from_slice(&(v.len().min(u16::MAX as usize) as u16).to_le_bytes());
    b.extend(v.iter().flat_map(|x| x.to_le_bytes()));
    b
}

/// (space, vector) of a stored embedding; `None` when the bytes are not a
/// well-formed vector of this layout.
pub fn decode_vector(b: &[u8]) -> Option<(&str, Vec<f32>)> {
    let (&format, rest) = b.split_first()?;
    let (&len, rest) = rest.split_first()?;
    if format != VECTOR_FORMAT || rest.len() < len as usize + 2 {
        return None;
    }
    let (name, rest) = rest.split_at(len as usize);
    let (dim, data) = rest.split_at(2);
    let dim = u16::from_le_bytes([dim[0], dim[1]]) as usize;
    if data.len() != dim * 4 {
        return None;
    }
    Some((std::str::from_utf8(name).ok()?, decode_f32s(data)))
}

/// A write transaction with typed operations. Obtained from [`Store::write`].
pub struct Tx {
    txn: WriteTransaction,
}

impl Tx {
    fn next_seq(&mut self, key: &str) -> Result<u64, StoreError> {
        let id = get_u64(&self.txn, key)?.unwrap_or(1);
        put_u64(&self.txn, key, id + 1)?;
        Ok(id)
    }

    pub fn insert_note(&mut self, n: NewNote) -> Result<Note, StoreError> {
        let id = self.next_seq(KEY_NEXT_NOTE)?;
        let note = Note {
            id,
            chat_id: n.chat_id,
            user_id: n.user_id,
            message_id: n.message_id,
            text: n.text,
            created_at: n.created_at,
            edited_at: None,
            source: n.source,
            author: n.author,
            voice: None,
        };
        self.put_note(&note)?;
        self.txn
            .open_table(CHAT_NOTES)?
            .insert((note.chat_id, id), ())?;
        if let Some(m) = note.message_id {
            self.link_message(note.chat_id, m, id)?;
        }
        self.enqueue_embed(id)?;
        items::put_items_txn(&self.txn, &note)?;
        Ok(note)
    }

    /// Queues note `id` for (re-)embedding.
    pub fn enqueue_embed(&mut self, id: u64) -> Result<(), StoreError> {
        let seq = self.next_seq(KEY_EMBED_SEQ)?;
        self.txn.open_table(EMBED_QUEUE)?.insert(id, seq)?;
        Ok(())
    }

    /// Stores the embedding of note `id` in space `space`, computed for
    /// queue entry `seq`, if that entry is still current (the note was not
    /// edited or deleted meanwhile). Returns whether it was stored.
    pub fn put_vector(
        &mut self,
        id: u64,
        seq: u64,
        space: &str,
        v: &[f32],
    ) -> Result<bool, StoreError> {
        let mut q = self.txn.open_table(EMBED_QUEUE)?;
        if q.get(id)?.map(|g| g.value()) != Some(seq) {
            return Ok(false);
        }
        q.remove(id)?;
        drop(q);
        if self.txn.open_table(NOTES)?.get(id)?.is_none() {
            return Ok(false);
        }
        self.txn
            .open_table(VECTORS)?
            .insert(id, encode_vector(space, v).as_slice())?;
        Ok(true)
    }

    /// Drops the stored vectors of `ids` and queues those notes for
    /// embedding again (vectors of another space, or damaged).
    pub fn requeue_embed(&mut self, ids: &[u64]) -> Result<(), StoreError> {
        for &id in ids {
            self.txn.open_table(VECTORS)?.remove(id)?;
            if self.txn.open_table(NOTES)?.get(id)?.is_some() {
                self.enqueue_embed(id)?;
            }
        }
        Ok(())
    }

    /// Drops the queue entry of a note that cannot be embedded (so it does not
    /// block the queue); the note stays searchable lexically.
    pub fn skip_embed(&mut self, id: u64, seq: u64) -> Result<(), StoreError> {
        let mut q = self.txn.open_table(EMBED_QUEUE)?;
        if q.get(id)?.map(|g| g.value()) == Some(seq) {
            q.remove(id)?;
        }
        Ok(())
    }

    /// Switches the embedding space: drops all vectors and queues all notes.
    pub fn reset_vectors(&mut self, model_id: &str) -> Result<u64, StoreError> {
        let n = schema::queue_all_for_embedding(&self.txn)?;
        self.txn
            .open_table(META)?
            .insert(KEY_VECTOR_MODEL, model_id.as_bytes())?;
        Ok(n)
    }

    fn put_note(&mut self, note: &Note) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(note).expect("notes serialise");
        self.txn
            .open_table(NOTES)?
            .insert(note.id, bytes.as_slice())?;
        Ok(())
    }

    pub fn note(&self, id: u64) -> Result<Option<Note>, StoreError> {
        let t = self.txn.open_table(NOTES)?;
        let g = t.get(id)?;
        g.map(|g| decode_note(id, g.value())).transpose()
    }

    /// The note that message `message_id` in `chat_id` belongs to: the user's
    /// own message or mnemo's acknowledgement of it.
    pub fn note_by_message(
        &self,
        chat_id: i64,
        message_id: i64,
    ) -> Result<Option<u64>, StoreError> {
        Ok(self
            .txn
            .open_table(MSG_NOTE)?
            .get((chat_id, message_id))?
            .map(|g| g.value()))
    }

    pub fn link_message(
        &mut self,
        chat_id: i64,
        message_id: i64,
        note_id: u64,
    ) -> Result<(), StoreError> {
        self.txn
            .open_table(MSG_NOTE)?
            .insert((chat_id, message_id), note_id)?;
        Ok(())
    }

    /// Attaches voice metadata to a note (right after [`Tx::insert_note`]).
    pub fn set_note_voice(&mut self, id: u64, voice: Option<VoiceMeta>) -> Result<(), StoreError> {
        let Some(mut note) = self.note(id)? else {
            return Ok(());
        };
        note.voice = voice;
        self.put_note(&note)
    }

    /// Replaces a note's text; `None` when the note does not exist.
    pub fn edit_note(
        &mut self,
        id: u64,
        text: String,
        at: i64,
    ) -> Result<Option<Note>, StoreError> {
        let Some(mut note) = self.note(id)? else {
            return Ok(None);
        };
        note.text = text;
        note.edited_at = Some(at);
        self.put_note(&note)?;
        self.txn.open_table(VECTORS)?.remove(id)?;
        self.enqueue_embed(id)?;
        self.replace_items(&note)?;
        Ok(Some(note))
    }

    /// Deletes a note of `chat_id` with every index entry that points at it.
    pub fn delete_note(&mut self, chat_id: i64, id: u64) -> Result<Option<Note>, StoreError> {
        let Some(note) = self.note(id)? else {
            return Ok(None);
        };
        if note.chat_id != chat_id {
            return Ok(None);
        }
        self.txn.open_table(NOTES)?.remove(id)?;
        self.txn.open_table(CHAT_NOTES)?.remove((chat_id, id))?;
        self.txn.open_table(VECTORS)?.remove(id)?;
        self.txn.open_table(EMBED_QUEUE)?.remove(id)?;
        self.txn
            .open_table(MSG_NOTE)?
            .retain_in((chat_id, i64::MIN)..=(chat_id, i64::MAX), |_, v| v != id)?;
        self.delete_items(id)?;
        self.delete_feedback(id)?;
        Ok(Some(note))
    }

    pub fn is_processed(&self, update_id: u64) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(PROCESSED)?.get(update_id)?.is_some())
    }

    /// Marks a Telegram update as processed and drops it from the inbox.
    pub fn mark_processed(&mut self, update_id: u64, at: i64) -> Result<(), StoreError> {
        self.txn.open_table(PROCESSED)?.insert(update_id, at)?;
        self.txn.open_table(INBOX)?.remove(update_id)?;
        Ok(())
    }

    /// Forgets processed markers older than `before` (unix ms). Telegram keeps
    /// unconfirmed updates for 24 hours, so a week of markers is plenty.
    pub fn prune_processed(&mut self, before: i64) -> Result<u64, StoreError> {
        let mut n = 0;
        self.txn.open_table(PROCESSED)?.retain(|_, at| {
            let keep = at >= before;
            n += u64::from(!keep);
            keep
        })?;
        Ok(n)
    }

    /// Records a received update before it is handed to the handlers.
    /// Returns false when it was processed already (a re-delivery).
    pub fn inbox_put(&mut self, update_id: u64, raw: &[u8]) -> Result<bool, StoreError> {
        if self.is_processed(update_id)? {
            return Ok(false);
        }
        self.txn.open_table(INBOX)?.insert(update_id, raw)?;
        let last = get_u64(&self.txn, KEY_LAST_UPDATE)?.unwrap_or(0);
        if update_id >= last {
            put_u64(&self.txn, KEY_LAST_UPDATE, update_id)?;
        }
        Ok(true)
    }

    pub fn push_outbox(&mut self, item: &[u8]) -> Result<u64, StoreError> {
        let seq = self.next_seq(KEY_NEXT_OUTBOX)?;
        self.txn.open_table(OUTBOX)?.insert(seq, item)?;
        Ok(seq)
    }

    pub fn replace_outbox(&mut self, seq: u64, item: &[u8]) -> Result<(), StoreError> {
        let mut t = self.txn.open_table(OUTBOX)?;
        if t.get(seq)?.is_some() {
            t.insert(seq, item)?;
        }
        Ok(())
    }

    pub fn remove_outbox(&mut self, seq: u64) -> Result<(), StoreError> {
        self.txn.open_table(OUTBOX)?.remove(seq)?;
        Ok(())
    }

    pub fn chat_lang(&self, chat_id: i64) -> Result<Option<String>, StoreError> {
        Ok(self
            .txn
            .open_table(CHAT_LANG)?
            .get(chat_id)?
            .map(|g| g.value().to_owned()))
    }

    pub fn set_chat_lang(&mut self, chat_id: i64, lang: &str) -> Result<(), StoreError> {
        self.txn.open_table(CHAT_LANG)?.insert(chat_id, lang)?;
        Ok(())
    }

    pub fn owner(&self) -> Result<Option<i64>, StoreError> {
        Ok(get_u64(&self.txn, KEY_OWNER)?.map(|v| v as i64))
    }

    pub fn set_owner(&mut self, user_id: i64) -> Result<(), StoreError> {
        put_u64(&self.txn, KEY_OWNER, user_id as u64)
    }

    /// Records a refusal for `user_id` on `day`; false if one was sent that day.
    pub fn note_refusal(&mut self, user_id: i64, day: i64) -> Result<bool, StoreError> {
        let mut t = self.txn.open_table(REFUSED)?;
        if t.get(user_id)?.is_some_and(|g| g.value() == day) {
            return Ok(false);
        }
        t.insert(user_id, day)?;
        Ok(true)
    }
}

pub(crate) fn decode_note(id: u64, bytes: &[u8]) -> Result<Note, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("note {id} is unreadable: {e}")))
}

fn io_err(context: String, source: std::io::Error) -> StoreError {
    StoreError::Io { context, source }
}

fn holder(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(PID_FILE))
        .ok()
        .and_then(|s| s.trim().parse::<u32>().ok())
        .map(|pid| format!(" (mnemo serve, pid {pid})"))
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_vector_names_its_space_and_damage_is_detected() {
        let v = [0.25f32, -1.0, 3.5];
        let b = encode_vector("minilm#date-dmy", &v);
        assert_eq!(decode_vector(&b), Some(("minilm#date-dmy", v.to_vec())));
        assert_eq!(decode_vector(&encode_vector("", &[])), Some(("", vec![])));
        // Every truncation, a bare f32 vector (the v5 layout) and a wrong
        // format byte are refused, never misread.
        for n in 0..b.len() {
            assert_eq!(decode_vector(&b[..n]), None, "truncated to {n}");
        }
        assert_eq!(decode_vector(&encode_f32s(&[0.1; 384])), None);
        let mut wrong = b.clone();
        wrong[0] = 2;
        assert_eq!(decode_vector(&wrong), None);
        let mut longer = b;
        longer.push(0);
        assert_eq!(decode_vector(&longer), None);
    }

    fn new_note(chat: i64, msg: Option<i64>, text: &str) -> NewNote {
        NewNote {
            chat_id: chat,
            user_id: 7,
            message_id: msg,
            text: text.into(),
            created_at: 1,
            source: Source::Telegram,
            author: None,
        }
    }

    #[test]
    fn notes_round_trip_and_indexes_follow() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = store
            .write(|tx| {
                let a = tx.insert_note(new_note(1, Some(10), "alpha"))?;
                let b = tx.insert_note(new_note(1, Some(11), "beta"))?;
                tx.insert_note(new_note(2, None, "other chat"))?;
                tx.link_message(1, 99, a.id)?;
                Ok((a, b))
            })
            .unwrap();
        assert_eq!(
            store
                .recent(1, 10)
                .unwrap()
                .iter()
                .map(|n| n.id)
                .collect::<Vec<_>>(),
            vec![b.id, a.id]
        );
        assert_eq!(store.count_chats().unwrap(), 2);
        // Deleting from the wrong chat does nothing; from the right chat removes links.
        store
            .write(|tx| {
                assert!(tx.delete_note(2, a.id)?.is_none());
                assert!(tx.delete_note(1, a.id)?.is_some());
                assert_eq!(tx.note_by_message(1, 99)?, None);
                assert_eq!(tx.note_by_message(1, 10)?, None);
                assert_eq!(tx.note_by_message(1, 11)?, Some(b.id));
                Ok(())
            })
            .unwrap();
        assert_eq!(store.count_notes().unwrap(), 2);
    }

    #[test]
    fn failed_closure_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let r: Result<(), _> = store.write(|tx| {
            tx.insert_note(new_note(1, None, "x"))?;
            Err(StoreError::Corrupt("boom".into()))
        });
        assert!(r.is_err());
        assert_eq!(store.count_notes().unwrap(), 0);
    }

    #[test]
    fn file_is_private_and_second_open_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("data");
        let store = Store::open(&dir).unwrap();
        let mode = std::fs::metadata(store.path())
            .unwrap()
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600);
        let dmode = std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
        assert_eq!(dmode, 0o700);
        std::fs::write(dir.join(PID_FILE), "4242").unwrap();
        let err = Store::open(&dir).err().expect("second open must fail");
        assert!(matches!(err, StoreError::InUse { .. }), "{err}");
        assert!(err.to_string().contains("pid 4242"), "{err}");
    }

    #[test]
    fn garbage_file_is_reported_as_damaged_and_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let garbage = vec![0xA5u8; 64 * 1024];
        std::fs::write(dir.path().join(DB_FILE), &garbage).unwrap();
        let err = Store::open(dir.path())
            .err()
            .expect("garbage must not open");
        assert!(
            err.to_string().contains("damaged") || err.to_string().contains("database error"),
            "{err}"
        );
        assert_eq!(std::fs::read(dir.path().join(DB_FILE)).unwrap(), garbage);
    }

    #[test]
    fn inbox_and_processed_dedup() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.write(|tx| tx.inbox_put(5, b"{}")).unwrap());
        assert_eq!(store.inbox(10).unwrap().len(), 1);
        store.write(|tx| tx.mark_processed(5, 100)).unwrap();
        assert!(store.inbox(10).unwrap().is_empty());
        assert!(!store.write(|tx| tx.inbox_put(5, b"{}")).unwrap());
        assert_eq!(store.last_update_id().unwrap(), Some(5));
        assert_eq!(store.write(|tx| tx.prune_processed(101)).unwrap(), 1);
    }
}
