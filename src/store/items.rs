//! To-dos and decisions pulled out of notes by [`crate::extract`], stored so
//! they can be listed (`/todos`, `/decisions`) and ticked off (✅).
//!
//! Items are derived from note text but *stored*, not recomputed: a to-do's
//! done mark is user state that must survive restarts. The store keeps them
//! in step with their note inside the same transaction — [`Tx::insert_note`]
//! adds them, [`Tx::edit_note`] re-extracts (an unchanged to-do keeps its
//! done mark), [`Tx::delete_note`] removes them.

use redb::{ReadableTable, WriteTransaction};
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::{Note, Store, StoreError, Tx};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ItemKind {
    Todo,
    Decision,
}

/// One to-do or decision. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Item {
    pub id: u64,
    pub chat_id: i64,
    pub note_id: u64,
    pub kind: ItemKind,
    pub text: String,
    /// The note's time.
    pub created_at: i64,
    /// When a to-do was ticked off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub done_at: Option<i64>,
}

/// Counts for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ItemCounts {
    pub todos_open: u64,
    pub todos_done: u64,
    pub decisions: u64,
}

/// Extracts and stores the items of `note`; returns how many. Used by
/// [`Tx::insert_note`] and by the v3 → v4 migration.
pub(super) fn put_items_txn(txn: &WriteTransaction, note: &Note) -> Result<u64, StoreError> {
    put_items_keeping(txn, note, &[])
}

/// Like [`put_items_txn`]; a to-do whose text appears in `done` keeps that
/// done time.
fn put_items_keeping(
    txn: &WriteTransaction,
    note: &Note,
    done: &[(String, i64)],
) -> Result<u64, StoreError> {
    let found = crate::extract::extract(&note.text);
    let all = found
        .todos
        .into_iter()
        .map(|t| (ItemKind::Todo, t))
        .chain(found.decisions.into_iter().map(|d| (ItemKind::Decision, d)));
    let mut next = get_u64(txn, KEY_NEXT_ITEM)?.unwrap_or(1);
    let mut n = 0;
    {
        let mut items = txn.open_table(ITEMS)?;
        let mut chat_items = txn.open_table(CHAT_ITEMS)?;
        let mut note_items = txn.open_table(NOTE_ITEMS)?;
        for (kind, text) in all {
            let done_at = match kind {
                ItemKind::Todo => done.iter().find(|(t, _)| *t == text).map(|(_, at)| *at),
                ItemKind::Decision => None,
            };
            let item = Item {
                id: next,
                chat_id: note.chat_id,
                note_id: note.id,
                kind,
                text,
                created_at: note.created_at,
                done_at,
            };
            items.insert(
                next,
                serde_json::to_vec(&item)
                    .expect("items serialise")
                    .as_slice(),
            )?;
            chat_items.insert((note.chat_id, next), ())?;
            note_items.insert((note.id, next), ())?;
            next += 1;
            n += 1;
        }
    }
    put_u64(txn, KEY_NEXT_ITEM, next)?;
    Ok(n)
}

/// Removes the items of note `note_id`, returning them.
fn remove_items_txn(txn: &WriteTransaction, note_id: u64) -> Result<Vec<Item>, StoreError> {
    let ids: Vec<u64> = {
        let t = txn.open_table(NOTE_ITEMS)?;
        let mut ids = Vec::new();
        for row in t.range((note_id, 0)..=(note_id, u64::MAX))? {
            ids.push(row?.0.value().1);
        }
        ids
    };
    let mut removed = Vec::with_capacity(ids.len());
    let mut items = txn.open_table(ITEMS)?;
    let mut chat_items = txn.open_table(CHAT_ITEMS)?;
    let mut note_items = txn.open_table(NOTE_ITEMS)?;
    for id in ids {
        note_items.remove((note_id, id))?;
        if let Some(g) = items.remove(id)? {
            // A damaged item leaves its chat index entry, which readers skip.
            if let Some(item) = read_item(id, g.value()) {
                chat_items.remove((item.chat_id, id))?;
                removed.push(item);
            }
        }
    }
    Ok(removed)
}

/// A stored item, or `None` when damaged ([`super::damaged`]).
fn read_item(id: u64, bytes: &[u8]) -> Option<Item> {
    super::damaged::quarantine("items", id, serde_json::from_slice(bytes))
}

impl Tx {
    /// Re-extracts the items of an edited note. A to-do with the same text as
    /// before keeps its done mark; removed ones disappear.
    pub(super) fn replace_items(&mut self, note: &Note) -> Result<(), StoreError> {
        let old = remove_items_txn(&self.txn, note.id)?;
        let done: Vec<(String, i64)> = old
            .into_iter()
            .filter_map(|i| Some((i.text, i.done_at?)))
            .collect();
        put_items_keeping(&self.txn, note, &done)?;
        Ok(())
    }

    pub(super) fn delete_items(&mut self, note_id: u64) -> Result<(), StoreError> {
        remove_items_txn(&self.txn, note_id).map(drop)
    }

    pub fn item(&self, id: u64) -> Result<Option<Item>, StoreError> {
        let t = self.txn.open_table(ITEMS)?;
        let g = t.get(id)?;
        Ok(g.and_then(|g| read_item(id, g.value())))
    }

    /// Ticks a to-do off. Returns the item as it was before (so the caller
    /// can tell "done now" from "was done already"), `None` if it is gone.
    pub fn set_item_done(&mut self, id: u64, at: i64) -> Result<Option<Item>, StoreError> {
        let Some(item) = self.item(id)? else {
            return Ok(None);
        };
        if item.done_at.is_none() {
            let done = Item {
                done_at: Some(at),
                ..item.clone()
            };
            self.txn.open_table(ITEMS)?.insert(
                id,
                serde_json::to_vec(&done)
                    .expect("items serialise")
                    .as_slice(),
            )?;
        }
        Ok(Some(item))
    }
}

impl Store {
    /// A chat's items of one kind, newest first; `open_only` skips done to-dos.
    pub fn items(
        &self,
        chat_id: i64,
        kind: ItemKind,
        open_only: bool,
        limit: usize,
    ) -> Result<Vec<Item>, StoreError> {
        let r = self.read()?;
        let idx = r.open_table(CHAT_ITEMS)?;
        let items = r.open_table(ITEMS)?;
        let mut out = Vec::new();
        for row in idx.range((chat_id, 0)..=(chat_id, u64::MAX))?.rev() {
            if out.len() >= limit {
                break;
            }
            let id = row?.0.value().1;
            let Some(item) = items.get(id)?.and_then(|g| read_item(id, g.value())) else {
                continue;
            };
            if item.kind == kind && !(open_only && item.done_at.is_some()) {
                out.push(item);
            }
        }
        Ok(out)
    }

    pub fn count_items(&self) -> Result<ItemCounts, StoreError> {
        let r = self.read()?;
        let items = r.open_table(ITEMS)?;
        let mut c = ItemCounts::default();
        for row in items.iter()? {
            let (k, v) = row?;
            let Some(item) = read_item(k.value(), v.value()) else {
                continue;
            };
            match (item.kind, item.done_at) {
                (ItemKind::Todo, None) => c.todos_open += 1,
                (ItemKind::Todo, Some(_)) => c.todos_done += 1,
                (ItemKind::Decision, _) => c.decisions += 1,
            }
        }
        Ok(c)
    }
}
