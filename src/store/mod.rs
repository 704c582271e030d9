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

mod backup;
mod damaged;
mod digest;
mod feedback;
mod health;
mod items;
mod jobs;
mod llm;
mod notes;
mod queues;
mod recovery;
pub mod schema;
mod vectors;
mod voice;

pub use backup::{BackupRecord, Contents};
pub use damaged::DamagedRecord;
pub use digest::{ChatDigest, SlotKey, SlotRecord, SlotState};
pub use feedback::{Aggregate, Ask, Compaction, FeedbackCounts, FeedbackEvent, Vote};
pub use health::HEALTH_LOG_KEEP;
pub use items::{Item, ItemCounts, ItemKind};
pub use jobs::JobRun;
pub use llm::{LlmCall, Spend, Usage};
pub(crate) use notes::{decode_note, read_note};
pub use notes::{import_chat, indexed_text, is_import_chat, shown_chat, NewNote, Note, Source};
pub use recovery::{free_space, Failure, StoreState};
pub use vectors::{decode_f32s, decode_vector, encode_f32s, encode_vector};
pub use voice::{VoiceJob, VoiceMeta, VoiceState};

use std::fs::{DirBuilder, OpenOptions, Permissions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use redb::{Database, ReadTransaction, ReadableDatabase, ReadableTable, WriteTransaction};

use schema::*;

/// File name of the database inside the data dir.
pub const DB_FILE: &str = "mnemo.redb";
/// redb's page cache (reads and the write buffer share it). redb's default
/// is 1 GiB, which a start over a large store (every note and vector read
/// once to build the indexes) fills and keeps; recall reads only the few
/// notes it shows, so a small cache serves it as well.
const CACHE_BYTES: usize = 128 << 20;
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
    /// The database cannot even be opened: its disk is full (opening
    /// writes: redb's recovery, the schema check).
    #[error("the disk holding {} is full: free some space and start again (nothing was lost)", .0.display())]
    DiskFull(PathBuf),
    /// Closed after an I/O error and not open again yet (see
    /// [`Store::try_recover`]).
    #[error("the database is closed after a storage error and is being reopened")]
    Unavailable,
}

impl StoreError {
    /// True when the failure is a full disk (ENOSPC / EDQUOT).
    pub fn is_disk_full(&self) -> bool {
        let io = match self {
            StoreError::DiskFull(_) => return true,
            StoreError::Io { source, .. } => Some(source),
            StoreError::Db(redb::Error::Io(e)) => Some(e),
            _ => None,
        };
        io.is_some_and(|e| {
            e.kind() == std::io::ErrorKind::StorageFull || e.raw_os_error() == Some(122)
        })
    }

    /// True when the storage failed (an I/O error, a full disk, the
    /// database latched by an earlier I/O error or closed for reopening):
    /// the store is then [`StoreState::Failed`] until a commit works again.
    /// Not for a damaged or foreign file, a value too large, a bug.
    pub fn is_io(&self) -> bool {
        matches!(
            self,
            StoreError::Io { .. }
                | StoreError::DiskFull(_)
                | StoreError::Unavailable
                | StoreError::Db(
                    redb::Error::Io(_) | redb::Error::PreviousIo | redb::Error::DatabaseClosed
                )
        )
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

/// Cheap to clone: clones share the one open database — and its reopening
/// after an I/O error ([`Store::try_recover`]).
#[derive(Clone)]
pub struct Store {
    shared: Arc<Shared>,
    path: PathBuf,
}

struct Shared {
    /// `None` only between closing a failed database and opening it again.
    db: RwLock<Option<Arc<Database>>>,
    health: recovery::Health,
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
        let full = |e: StoreError| match e {
            e if e.is_disk_full() => StoreError::DiskFull(dir.to_path_buf()),
            e => e,
        };
        let db = open_db(&path).map_err(full)?;
        let m = schema::migrate(&db).map_err(full)?;
        if m.from != m.to {
            tracing::info!(
                from = m.from,
                to = m.to,
                notes = m.notes_migrated,
                "migrated database schema"
            );
        }
        Ok(Store {
            shared: Arc::new(Shared {
                db: RwLock::new(Some(Arc::new(db))),
                health: recovery::Health::new(),
            }),
            path,
        })
    }

    /// The open database; [`StoreError::Unavailable`] while it is being
    /// reopened. Callers hold the `Arc` only for the call (a read
    /// transaction does not need it), so a reopen waits for nobody long.
    fn db(&self) -> Result<Arc<Database>, StoreError> {
        self.shared
            .db
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .ok_or(StoreError::Unavailable)
    }

    /// A read transaction: one commit's view, however long it is held.
    pub(crate) fn read(&self) -> Result<ReadTransaction, StoreError> {
        Ok(self.db()?.begin_read()?)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The data dir the database lives in.
    pub fn dir(&self) -> &Path {
        self.path.parent().unwrap_or(Path::new("."))
    }

    /// Asks the kernel to read the whole database file into its page
    /// cache ahead, in the background (`posix_fadvise(WILLNEED)`), when it
    /// fits in half the machine's memory. A start reads every note and every
    /// vector by walking redb's B-trees, page by page in tree order: on a
    /// cold cache (after a reboot) that is scattered reads, while the
    /// kernel's read-ahead of the file is sequential. Best effort: a
    /// failure only loses the head start.
    pub fn read_ahead(&self) {
        let path = self.path.clone();
        let _ = std::thread::Builder::new()
            .name("mnemo-readahead".into())
            .spawn(move || {
                let Ok(f) = std::fs::File::open(&path) else {
                    return;
                };
                let len = f.metadata().map_or(0, |m| m.len());
                // SAFETY: sysconf reads two constants.
                let ram = unsafe {
                    (libc::sysconf(libc::_SC_PHYS_PAGES) as u64)
                        .saturating_mul(libc::sysconf(libc::_SC_PAGESIZE) as u64)
                };
                if len == 0 || len > ram / 2 {
                    return;
                }
                use std::os::fd::AsRawFd;
                // SAFETY: an advice on a file descriptor we own; no memory is passed.
                let rc =
                    unsafe { libc::posix_fadvise(f.as_raw_fd(), 0, 0, libc::POSIX_FADV_WILLNEED) };
                tracing::debug!(bytes = len, rc, "database read-ahead asked");
            });
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
        let run = || -> Result<T, StoreError> {
            let txn = self.db()?.begin_write()?;
            let mut tx = Tx { txn };
            let out = f(&mut tx)?;
            tx.txn.commit()?;
            Ok(out)
        };
        let out = run();
        match &out {
            Ok(_) => self.commit_worked(),
            Err(e) if e.is_io() => self.storage_failed(e),
            Err(_) => {}
        }
        out
    }

    pub fn schema_version(&self) -> Result<u32, StoreError> {
        Ok(self.meta_u64(KEY_VERSION)?.unwrap_or(0) as u32)
    }

    pub fn owner(&self) -> Result<Option<i64>, StoreError> {
        Ok(self.meta_u64(KEY_OWNER)?.map(|v| v as i64))
    }

    /// The day (since the epoch) `user_id` was last refused, if recorded.
    pub fn refused_on(&self, user_id: i64) -> Result<Option<i64>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(REFUSED)?;
        Ok(t.get(user_id)?.map(|g| g.value()))
    }

    fn meta_u64(&self, key: &str) -> Result<Option<u64>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(META)?;
        Ok(t.get(key)?.map(|g| decode_u64(g.value())))
    }

    pub fn chat_lang(&self, chat_id: i64) -> Result<Option<String>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(CHAT_LANG)?;
        Ok(t.get(chat_id)?.map(|g| g.value().to_owned()))
    }
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

    /// Removes the rows of `table` whose value (a time or a day) is before
    /// `before`; returns how many went. Every prune of old markers uses it.
    fn prune_before<K: redb::Key + 'static>(
        &mut self,
        table: redb::TableDefinition<K, i64>,
        before: i64,
    ) -> Result<u64, StoreError> {
        let mut n = 0;
        self.txn.open_table(table)?.retain(|_, at| {
            let keep = at >= before;
            n += u64::from(!keep);
            keep
        })?;
        Ok(n)
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

/// Opens (creating if needed) the database file at `path`, mapping redb's
/// errors to ours. No migration: [`Store::open`] does that once.
fn open_db(path: &Path) -> Result<Database, StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(path)
        .map_err(|e| match e {
            redb::DatabaseError::DatabaseAlreadyOpen => StoreError::InUse {
                holder: holder(dir),
                path: path.to_path_buf(),
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
        })
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
