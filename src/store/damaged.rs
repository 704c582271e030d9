//! Damaged records: values whose bytes no longer decode although redb's
//! checksums pass (bits flipped in memory before a write, a bug in an older
//! build). One such record must not keep mnemo from starting.
//!
//! A damaged record is **quarantined** where it lies: readers skip it as if
//! it were absent ([`quarantine`]), each one logged once per process at WARN
//! with its table and key (never its bytes), so indexes build from the rest
//! and every other note is served. It is kept, not deleted: [`Store::damaged`]
//! lists them (`mnemo doctor`, `mnemo stats --json` `"damaged"`),
//! [`Store::damaged_raw`] hands out their bytes (`mnemo repair --export`)
//! and only [`Store::remove_damaged`] (`mnemo repair --remove`) deletes them,
//! in one transaction, with every index entry that points at them.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};

use redb::{ReadableTable, TableDefinition};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::schema::*;
use super::{Aggregate, Ask, FeedbackEvent, Item, Note, Store, StoreError, VoiceJob};

/// One record that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DamagedRecord {
    /// The redb table it is in (`notes`, `items`, …).
    pub table: &'static str,
    /// Its key, as text (ids are numbers).
    pub key: String,
    /// Why it does not decode (serde's message: a position, no content).
    pub error: String,
    /// Length of the stored value.
    pub bytes: usize,
}

/// The decoded value, or `None` for a damaged record — logged once per
/// process (table and key only) and skipped by the caller as if absent.
pub(crate) fn quarantine<T>(
    table: &'static str,
    key: u64,
    r: Result<T, serde_json::Error>,
) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            static SEEN: OnceLock<Mutex<HashSet<(&'static str, u64)>>> = OnceLock::new();
            let first = SEEN
                .get_or_init(Default::default)
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert((table, key));
            if first {
                tracing::warn!(
                    table,
                    key,
                    error = %e,
                    "damaged record skipped (kept in the database; `mnemo repair` lists, exports or removes it)"
                );
            }
            None
        }
    }
}

/// The per-record tables whose values are JSON of a known type, each with
/// the check that decodes one value.
type Check = fn(&[u8]) -> Result<(), serde_json::Error>;

fn decodes<T: DeserializeOwned>(b: &[u8]) -> Result<(), serde_json::Error> {
    serde_json::from_slice::<T>(b).map(drop)
}

type Checked = (
    &'static str,
    TableDefinition<'static, u64, &'static [u8]>,
    Check,
);

const CHECKED: [Checked; 6] = [
    ("notes", NOTES, decodes::<Note>),
    ("items", ITEMS, decodes::<Item>),
    ("voice_jobs", VOICE_JOBS, decodes::<VoiceJob>),
    ("asks", ASKS, decodes::<Ask>),
    ("feedback_log", FEEDBACK_LOG, decodes::<FeedbackEvent>),
    ("feedback", FEEDBACK, decodes::<Aggregate>),
];

fn scan<T>(
    table: &impl ReadableTable<u64, &'static [u8]>,
    name: &'static str,
    check: Check,
    mut f: impl FnMut(DamagedRecord, &[u8]) -> T,
) -> Result<Vec<T>, StoreError> {
    let mut out = Vec::new();
    for row in table.iter()? {
        let (k, v) = row?;
        if let Err(e) = check(v.value()) {
            let rec = DamagedRecord {
                table: name,
                key: k.value().to_string(),
                error: e.to_string(),
                bytes: v.value().len(),
            };
            out.push(f(rec, v.value()));
        }
    }
    Ok(out)
}

impl Store {
    /// Every damaged record, table by table in key order.
    pub fn damaged(&self) -> Result<Vec<DamagedRecord>, StoreError> {
        Ok(self
            .damaged_raw()?
            .into_iter()
            .map(|(rec, _)| rec)
            .collect())
    }

    /// Every damaged record with its stored bytes (for an export).
    pub fn damaged_raw(&self) -> Result<Vec<(DamagedRecord, Vec<u8>)>, StoreError> {
        let r = self.read()?;
        let mut out = Vec::new();
        for (name, def, check) in CHECKED {
            let t = r.open_table(def)?;
            out.extend(scan(&t, name, check, |rec, b| (rec, b.to_vec()))?);
        }
        Ok(out)
    }

    /// Deletes every damaged record in one transaction, with the index
    /// entries that point at it (a note's chat and message index, vector,
    /// queue entry, items, votes, hidden-repeat marks; an item's chat and
    /// note index). Returns what was removed.
    pub fn remove_damaged(&self) -> Result<Vec<DamagedRecord>, StoreError> {
        self.write(|tx| {
            let txn = &tx.txn;
            let mut removed = Vec::new();
            for (name, def, check) in CHECKED {
                let found = {
                    let t = txn.open_table(def)?;
                    scan(&t, name, check, |rec, _| rec)?
                };
                for rec in found {
                    let id: u64 = rec.key.parse().expect("u64 keys");
                    txn.open_table(def)?.remove(id)?;
                    if name == "notes" {
                        txn.open_table(CHAT_NOTES)?.retain(|k, _| k.1 != id)?;
                        txn.open_table(MSG_NOTE)?.retain(|_, v| v != id)?;
                        txn.open_table(VECTORS)?.remove(id)?;
                        txn.open_table(EMBED_QUEUE)?.remove(id)?;
                        txn.open_table(FEEDBACK)?.remove(id)?;
                        txn.open_table(DUPLICATES)?
                            .retain(|k, v| k != id && v != id)?;
                        let items: Vec<u64> = {
                            let ni = txn.open_table(NOTE_ITEMS)?;
                            let mut v = Vec::new();
                            for row in ni.range((id, 0)..=(id, u64::MAX))? {
                                v.push(row?.0.value().1);
                            }
                            v
                        };
                        for item in items {
                            drop_item(txn, item)?;
                        }
                    } else if name == "items" {
                        // Its index entries (the value is gone already).
                        drop_item(txn, id)?;
                    }
                    removed.push(rec);
                }
            }
            Ok(removed)
        })
    }
}

/// Removes item `id` and its index entries (its chat is not needed: the
/// chat index is searched by item id).
fn drop_item(txn: &redb::WriteTransaction, id: u64) -> Result<(), StoreError> {
    txn.open_table(ITEMS)?.remove(id)?;
    txn.open_table(CHAT_ITEMS)?.retain(|k, _| k.1 != id)?;
    txn.open_table(NOTE_ITEMS)?.retain(|k, _| k.1 != id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewNote, Source};

    #[test]
    fn a_damaged_note_is_skipped_listed_and_removed_with_its_indexes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        store
            .write(|tx| {
                for i in 1..=3 {
                    tx.insert_note(NewNote {
                        chat_id: 7,
                        user_id: 7,
                        message_id: Some(i),
                        text: format!("todo: buy item {i}"),
                        created_at: i,
                        source: Source::Console,
                        author: None,
                    })?;
                }
                Ok(())
            })
            .unwrap();
        store
            .write(|tx| {
                tx.txn
                    .open_table(NOTES)?
                    .insert(2, b"{\"id\": 2, \xff".as_slice())?;
                Ok(())
            })
            .unwrap();
        let mut seen = Vec::new();
        store.for_each_memory(|n| seen.push(n.id)).unwrap();
        assert_eq!(seen, vec![1, 3]);
        assert_eq!(store.note(2).unwrap(), None);
        assert_eq!(store.recent(7, 10).unwrap().len(), 2);
        let d = store.damaged().unwrap();
        assert_eq!((d.len(), d[0].table, d[0].key.as_str()), (1, "notes", "2"));
        assert_eq!(store.damaged_raw().unwrap()[0].1, b"{\"id\": 2, \xff");
        let items_before = store.count_items().unwrap().todos_open;
        let removed = store.remove_damaged().unwrap();
        assert_eq!(removed.len(), 1);
        assert!(store.damaged().unwrap().is_empty());
        assert_eq!(store.count_chat_notes(7).unwrap(), 2);
        assert_eq!(store.count_items().unwrap().todos_open, items_before - 1);
        assert_eq!(store.write(|tx| tx.note_by_message(7, 2)).unwrap(), None);
    }
}
