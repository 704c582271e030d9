//! The store's side of a backup: a consistent copy of every table, what a
//! copy contains, and the record of the last backup.
//!
//! Copying `mnemo.redb` with `cp` while the bot writes is unsafe: the copy
//! may mix pages of two commits. A redb *read transaction* instead sees one
//! commit, whole, for as long as it lives, and does not block writers (they
//! go on committing new pages beside it). [`Store::snapshot_to`] opens one
//! read transaction and copies every row of every table into a fresh
//! database file, commits it once, and runs redb's integrity check on the
//! copy. Whatever was committed before the read began is in the copy; what
//! was committed after is not; nothing is half in.
//!
//! [`Contents`] says what a database holds in a form a manifest can carry
//! and a restore can compare: counts (notes, vote records, to-dos, rows per
//! table) and a sha256 over the notes' stored bytes in id order. The same
//! function computes it from the snapshot's read transaction and from a
//! restored store, so "restored = backed up" is one equality.

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use redb::{
    Database, Key, MultimapTableHandle, ReadTransaction, ReadableTable, ReadableTableMetadata,
    TableDefinition, TableHandle, Value, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::schema::*;
use super::{Store, StoreError, Tx};

/// One backup as the store remembers it (`mnemo backup`, the daily job).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    /// When the backup was written, unix ms.
    pub at: i64,
    /// The archive.
    pub path: String,
    pub bytes: u64,
    /// sha256 of the archive file, hex.
    pub sha256: String,
    pub notes: u64,
    /// Whether a full restore into a temporary dir matched the manifest.
    pub verified: bool,
    /// Why it did not verify.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// What a database holds: compared between a snapshot and its restore.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contents {
    /// Rows of the notes table (hidden repeats included: they are data too).
    pub notes: u64,
    /// Vote records: log entries not yet compacted plus the per-user votes
    /// of every aggregate.
    pub votes: u64,
    /// To-do items, open and done.
    pub todos: u64,
    /// sha256 over every note row (id, length, stored bytes) in id order.
    pub notes_sha256: String,
    /// Rows of every table, by name.
    pub tables: BTreeMap<String, u64>,
}

/// Key of the newest backup written.
const LAST: &str = "last";
/// Key of the newest backup that verified.
const LAST_VERIFIED: &str = "last_verified";

/// Calls `$f!(TABLE)` for every table of the schema. A table added to
/// [`create_tables`](super::schema) must be added here too, or snapshots
/// refuse to run (see the check in [`copy_all`]).
macro_rules! for_each_table {
    ($m:ident) => {
        $m!(META);
        $m!(NOTES);
        $m!(CHAT_NOTES);
        $m!(MSG_NOTE);
        $m!(PROCESSED);
        $m!(INBOX);
        $m!(OUTBOX);
        $m!(CHAT_LANG);
        $m!(REFUSED);
        $m!(VECTORS);
        $m!(EMBED_QUEUE);
        $m!(ITEMS);
        $m!(CHAT_ITEMS);
        $m!(NOTE_ITEMS);
        $m!(USED_NONCES);
        $m!(ASKS);
        $m!(FEEDBACK_LOG);
        $m!(FEEDBACK);
        $m!(VOICE_JOBS);
        $m!(JOB_RUNS);
        $m!(DUPLICATES);
        $m!(BACKUPS);
        $m!(HEALTH_CHECKS);
        $m!(HEALTH_LOG);
        $m!(DIGEST_LEDGER);
        $m!(DIGEST_CHATS);
        $m!(LLM_CALLS);
    };
}

impl Store {
    /// Copies every table, as of one commit, into a new database at `dest`
    /// (created 0600; must not exist), checks the copy's integrity, and
    /// returns what it holds. `progress(rows done, rows total)`. Writers
    /// are not blocked while it runs.
    pub fn snapshot_to(
        &self,
        dest: &Path,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<Contents, StoreError> {
        let r = self.read()?;
        let contents = contents_of(&r)?;
        let total = contents.tables.values().sum();
        OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(dest)
            .map_err(|e| super::io_err(format!("cannot create {}", dest.display()), e))?;
        let mut db = Database::create(dest)?;
        let w = db.begin_write()?;
        copy_all(&r, &w, total, &mut progress)?;
        w.commit()?;
        drop(r);
        match db.check_integrity() {
            Ok(true) => {}
            Ok(false) => {
                return Err(StoreError::Corrupt(
                    "the snapshot needed repair right after it was written".into(),
                ))
            }
            Err(e) => return Err(StoreError::Corrupt(format!("snapshot: {e}"))),
        }
        progress(total, total);
        Ok(contents)
    }

    /// What this database holds (see [`Contents`]), as of now.
    pub fn contents(&self) -> Result<Contents, StoreError> {
        contents_of(&self.read()?)
    }

    /// The newest backup written (verified or not), if any.
    pub fn last_backup(&self) -> Result<Option<BackupRecord>, StoreError> {
        self.backup_record(LAST)
    }

    /// The newest backup that verified, if any.
    pub fn last_verified_backup(&self) -> Result<Option<BackupRecord>, StoreError> {
        self.backup_record(LAST_VERIFIED)
    }

    fn backup_record(&self, key: &str) -> Result<Option<BackupRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(BACKUPS)?;
        let rec = t.get(key)?.and_then(|g| {
            serde_json::from_slice(g.value())
                .map_err(|e| tracing::warn!(error = %e, "unreadable backup record"))
                .ok()
        });
        Ok(rec)
    }
}

impl Tx {
    /// Records a backup: always as the last one, and as the last verified
    /// one when it verified.
    pub fn record_backup(&mut self, rec: &BackupRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(rec).expect("backup records serialise");
        let mut t = self.txn.open_table(BACKUPS)?;
        t.insert(LAST, bytes.as_slice())?;
        if rec.verified {
            t.insert(LAST_VERIFIED, bytes.as_slice())?;
        }
        Ok(())
    }
}

/// Copies every schema table from `r` into `w`, and refuses when `r` has a
/// table this build does not know (an incomplete backup would pass for a
/// whole one).
fn copy_all(
    r: &ReadTransaction,
    w: &WriteTransaction,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), StoreError> {
    let mut known = Vec::new();
    let mut done = 0;
    macro_rules! copy {
        ($t:ident) => {
            known.push($t.name().to_owned());
            copy_table(r, w, $t, &mut done, total, progress)?;
        };
    }
    for_each_table!(copy);
    let unknown: Vec<String> = r
        .list_tables()?
        .map(|h| h.name().to_owned())
        .chain(r.list_multimap_tables()?.map(|h| h.name().to_owned()))
        .filter(|n| !known.contains(n))
        .collect();
    if !unknown.is_empty() {
        return Err(StoreError::Corrupt(format!(
            "the database has tables this mnemo cannot back up: {}",
            unknown.join(", ")
        )));
    }
    Ok(())
}

fn copy_table<K: Key + 'static, V: Value + 'static>(
    r: &ReadTransaction,
    w: &WriteTransaction,
    def: TableDefinition<K, V>,
    done: &mut u64,
    total: u64,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<(), StoreError> {
    let src = r.open_table(def)?;
    let mut dst = w.open_table(def)?;
    for row in src.iter()? {
        let (k, v) = row?;
        dst.insert(k.value(), v.value())?;
        *done += 1;
        if *done % 4096 == 0 {
            progress(*done, total);
        }
    }
    Ok(())
}

/// [`Contents`] of the commit `r` sees.
fn contents_of(r: &ReadTransaction) -> Result<Contents, StoreError> {
    let mut c = Contents::default();
    macro_rules! count {
        ($t:ident) => {
            c.tables
                .insert($t.name().to_owned(), r.open_table($t)?.len()?);
        };
    }
    for_each_table!(count);
    let mut h = Sha256::new();
    for row in r.open_table(NOTES)?.iter()? {
        let (k, v) = row?;
        let bytes = v.value();
        h.update(k.value().to_le_bytes());
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
        c.notes += 1;
    }
    c.notes_sha256 = hex::encode(h.finalize());
    #[derive(Deserialize)]
    struct Kind {
        kind: super::ItemKind,
    }
    for row in r.open_table(ITEMS)?.iter()? {
        let (k, v) = row?;
        let item: Kind = serde_json::from_slice(v.value())
            .map_err(|e| StoreError::Corrupt(format!("item {} is unreadable: {e}", k.value())))?;
        c.todos += u64::from(item.kind == super::ItemKind::Todo);
    }
    c.votes = r.open_table(FEEDBACK_LOG)?.len()?;
    for row in r.open_table(FEEDBACK)?.iter()? {
        let (k, v) = row?;
        let agg: super::Aggregate = serde_json::from_slice(v.value()).map_err(|e| {
            StoreError::Corrupt(format!("votes of note {} are unreadable: {e}", k.value()))
        })?;
        c.votes += agg.votes.len() as u64;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewNote, Source};

    fn note(text: &str) -> NewNote {
        NewNote {
            chat_id: 1,
            user_id: 7,
            message_id: None,
            text: text.into(),
            created_at: 1,
            source: Source::Console,
            author: None,
        }
    }

    #[test]
    fn a_snapshot_holds_every_row_and_the_same_contents() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(&tmp.path().join("data")).unwrap();
        store
            .write(|tx| {
                for i in 0..50 {
                    tx.insert_note(note(&format!("note {i}: buy milk")))?;
                }
                tx.set_chat_lang(1, "de")
            })
            .unwrap();
        let before = store.contents().unwrap();
        assert_eq!(before.notes, 50);
        std::fs::create_dir(tmp.path().join("snap")).unwrap();
        let dest = tmp.path().join("snap").join(crate::store::DB_FILE);
        let got = store.snapshot_to(&dest, |_, _| {}).unwrap();
        assert_eq!(got, before);
        // Writes after the snapshot are not in it.
        store.write(|tx| tx.insert_note(note("later"))).unwrap();
        let copy = Store::open(&tmp.path().join("snap")).unwrap();
        assert_eq!(copy.contents().unwrap(), before);
        assert_eq!(copy.chat_lang(1).unwrap().as_deref(), Some("de"));
        // A snapshot never overwrites a file.
        drop(copy);
        assert!(store.snapshot_to(&dest, |_, _| {}).is_err());
    }

    #[test]
    fn every_table_of_the_schema_is_copied() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        let r = store.read().unwrap();
        let mut names: Vec<String> = r.list_tables().unwrap().map(|h| h.name().into()).collect();
        names.sort();
        let mut copied: Vec<String> = store.contents().unwrap().tables.into_keys().collect();
        copied.sort();
        assert_eq!(names, copied, "a table is missing from for_each_table!");
    }

    #[test]
    fn backup_records_keep_the_last_verified_one() {
        let tmp = tempfile::tempdir().unwrap();
        let store = Store::open(tmp.path()).unwrap();
        assert_eq!(store.last_backup().unwrap(), None);
        let ok = BackupRecord {
            at: 1,
            path: "/b/1".into(),
            bytes: 10,
            sha256: "aa".into(),
            notes: 3,
            verified: true,
            error: None,
        };
        let bad = BackupRecord {
            at: 2,
            path: "/b/2".into(),
            verified: false,
            error: Some("truncated".into()),
            ..ok.clone()
        };
        store.write(|tx| tx.record_backup(&ok)).unwrap();
        store.write(|tx| tx.record_backup(&bad)).unwrap();
        assert_eq!(store.last_backup().unwrap(), Some(bad));
        assert_eq!(store.last_verified_backup().unwrap(), Some(ok));
    }
}
