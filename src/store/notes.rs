//! Notes: the [`Note`] record, reading notes and the chat index, and the
//! writes that keep a note's indexes, items, vector and feedback in step
//! with it.

use std::ops::Bound;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::{items, Store, StoreError, Tx, VoiceMeta};

/// Notes in a row older than a period's start after which
/// [`Store::notes_since`] stops looking further back.
const SINCE_SLACK: usize = 64;

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

/// The bit that moves an imported chat into a chat space of its own. A
/// Telegram chat id has at most 52 significant bits, so flipping bit 62
/// gives a value no Telegram chat (and not the console, 0) can have: bits 62
/// and 63 differ only for import spaces. Its own inverse.
const IMPORT_BIT: i64 = 1 << 62;

/// The chat space an export's chat `export_id` is stored in: only the
/// owner's CLI (`mnemo recall --chat <export id>`) searches it; no Telegram
/// user, even one whose private chat has that id, can read, recall or
/// `/forget` it.
pub fn import_chat(export_id: i64) -> i64 {
    if is_import_chat(export_id) {
        export_id
    } else {
        export_id ^ IMPORT_BIT
    }
}

/// Whether a stored chat id is an import space ([`import_chat`]).
pub fn is_import_chat(chat: i64) -> bool {
    (chat >> 62) & 1 != (chat >> 63) & 1
}

/// The chat id shown for a stored chat id: the export's id for an import
/// space, the chat itself otherwise.
pub fn shown_chat(chat: i64) -> i64 {
    if is_import_chat(chat) {
        chat ^ IMPORT_BIT
    } else {
        chat
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

/// A range of the chat index: (chat id, note id) bounds.
type ChatRange = (Bound<(i64, u64)>, Bound<(i64, u64)>);

impl Store {
    pub fn note(&self, id: u64) -> Result<Option<Note>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(NOTES)?;
        Ok(t.get(id)?.and_then(|g| read_note(id, g.value())))
    }

    /// The newest `n` notes of a chat, newest first.
    pub fn recent(&self, chat_id: i64, n: usize) -> Result<Vec<Note>, StoreError> {
        let all = (
            Bound::Included((chat_id, 0)),
            Bound::Included((chat_id, u64::MAX)),
        );
        self.in_chat(all, true, n)
    }

    /// Up to `n` notes of `chat_id` just before note `id` (ids are arrival
    /// order), newest first: the turns a message in a conversation answers.
    pub fn notes_before(&self, chat_id: i64, id: u64, n: usize) -> Result<Vec<Note>, StoreError> {
        let before = (
            Bound::Included((chat_id, 0)),
            Bound::Excluded((chat_id, id)),
        );
        self.in_chat(before, true, n)
    }

    /// Up to `n` notes of `chat_id` just after note `id`, oldest first: the
    /// replies to a message in a conversation.
    pub fn notes_after(&self, chat_id: i64, id: u64, n: usize) -> Result<Vec<Note>, StoreError> {
        let after = (
            Bound::Excluded((chat_id, id)),
            Bound::Included((chat_id, u64::MAX)),
        );
        self.in_chat(after, false, n)
    }

    /// Up to `n` notes in `range` of the chat index, newest first or oldest
    /// first (one read transaction).
    fn in_chat(
        &self,
        range: ChatRange,
        newest_first: bool,
        n: usize,
    ) -> Result<Vec<Note>, StoreError> {
        let r = self.read()?;
        let idx = r.open_table(CHAT_NOTES)?;
        let notes = r.open_table(NOTES)?;
        let rows = idx.range(range)?;
        let rows: Box<dyn Iterator<Item = _>> = if newest_first {
            Box::new(rows.rev())
        } else {
            Box::new(rows)
        };
        let mut out = Vec::with_capacity(n);
        for row in rows.take(n) {
            let id = row?.0.value().1;
            if let Some(n) = notes.get(id)?.and_then(|g| read_note(id, g.value())) {
                out.push(n);
            }
        }
        Ok(out)
    }

    /// Memories: every note but the hidden repeats ([`Tx::mark_duplicate`]).
    pub fn count_notes(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        let all = r.open_table(NOTES)?.len()?;
        Ok(all.saturating_sub(r.open_table(DUPLICATES)?.len()?))
    }

    /// Notes hidden as repeats of an older one: (note, original).
    pub fn duplicates(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DUPLICATES)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            out.push((k.value(), v.value()));
        }
        Ok(out)
    }

    pub fn count_chat_notes(&self, chat_id: i64) -> Result<u64, StoreError> {
        let r = self.read()?;
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
        let r = self.read()?;
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

    /// Chats someone talks to mnemo in: every chat (but the console's, 0)
    /// whose newest note was not imported. Digests go to these.
    pub fn live_chats(&self) -> Result<Vec<i64>, StoreError> {
        let r = self.read()?;
        let idx = r.open_table(CHAT_NOTES)?;
        let notes = r.open_table(NOTES)?;
        let mut out = Vec::new();
        let mut from = i64::MIN;
        loop {
            let Some(first) = idx.range((from, 0)..)?.next() else {
                break;
            };
            let chat = first?.0.value().0;
            let newest = idx
                .range((chat, 0)..=(chat, u64::MAX))?
                .next_back()
                .transpose()?
                .map(|(k, _)| k.value().1);
            if let Some(id) = newest {
                let live = match notes.get(id)?.and_then(|g| read_note(id, g.value())) {
                    Some(n) => n.source != Source::Import,
                    None => false,
                };
                if live && chat != 0 {
                    out.push(chat);
                }
            }
            match chat.checked_add(1) {
                Some(c) => from = c,
                None => break,
            }
        }
        Ok(out)
    }

    /// The notes of `chat_id` with an id above `after_id` created after
    /// `from` (unix ms), oldest first, at most the newest `limit`: a
    /// digest's period. Walks back from the newest note and stops at
    /// `after_id`, or once [`SINCE_SLACK`] notes in a row were older than
    /// `from` (ids are arrival order, and arrival is nearly time order).
    pub fn notes_since(
        &self,
        chat_id: i64,
        after_id: u64,
        from: i64,
        limit: usize,
    ) -> Result<Vec<Note>, StoreError> {
        let r = self.read()?;
        let idx = r.open_table(CHAT_NOTES)?;
        let notes = r.open_table(NOTES)?;
        let mut out = Vec::new();
        let mut older = 0;
        let start = after_id.saturating_add(1);
        for row in idx.range((chat_id, start)..=(chat_id, u64::MAX))?.rev() {
            let id = row?.0.value().1;
            let Some(n) = notes.get(id)?.and_then(|g| read_note(id, g.value())) else {
                continue;
            };
            if n.created_at <= from {
                older += 1;
                if older >= SINCE_SLACK {
                    break;
                }
                continue;
            }
            older = 0;
            out.push(n);
            if out.len() >= limit {
                break;
            }
        }
        out.reverse();
        Ok(out)
    }

    /// Calls `f` for every note in id order that is not a hidden repeat
    /// (for rebuilding derived indexes).
    pub fn for_each_memory(&self, mut f: impl FnMut(Note)) -> Result<(), StoreError> {
        let hidden: std::collections::HashSet<u64> =
            self.duplicates()?.into_iter().map(|(id, _)| id).collect();
        self.for_each_note(|n| {
            if !hidden.contains(&n.id) {
                f(n)
            }
        })
    }

    /// Calls `f` for every note in id order, hidden repeats included;
    /// damaged ones are skipped ([`super::damaged`]).
    pub fn for_each_note(&self, mut f: impl FnMut(Note)) -> Result<(), StoreError> {
        let r = self.read()?;
        let t = r.open_table(NOTES)?;
        for row in t.iter()? {
            let (k, v) = row?;
            if let Some(n) = read_note(k.value(), v.value()) {
                f(n);
            }
        }
        Ok(())
    }
}

impl Tx {
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
        Ok(g.and_then(|g| read_note(id, g.value())))
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
        // An edited repeat is a note of its own again.
        if self.txn.open_table(DUPLICATES)?.remove(id)?.is_some() {
            self.txn
                .open_table(CHAT_NOTES)?
                .insert((note.chat_id, id), ())?;
        }
        Ok(Some(note))
    }

    /// Whether note `id` is hidden as a repeat.
    pub fn is_duplicate(&self, id: u64) -> Result<bool, StoreError> {
        Ok(self.txn.open_table(DUPLICATES)?.get(id)?.is_some())
    }

    /// Hides note `id`, judged by its queue entry `seq`, as a repeat of
    /// `original`: kept (its acknowledgement and ↩ still point at it, and
    /// forgetting it works), but out of the chat index, the counts, to-dos
    /// and every search. `false` when either note is gone, or when `seq` is
    /// no longer the note's queue entry (it was edited since it was judged:
    /// the new text is embedded and judged again).
    pub fn mark_duplicate(&mut self, id: u64, original: u64, seq: u64) -> Result<bool, StoreError> {
        if self.embed_seq(id)? != Some(seq) {
            return Ok(false);
        }
        let (Some(note), Some(_)) = (self.note(id)?, self.note(original)?) else {
            return Ok(false);
        };
        self.txn.open_table(DUPLICATES)?.insert(id, original)?;
        self.txn
            .open_table(CHAT_NOTES)?
            .remove((note.chat_id, id))?;
        self.txn.open_table(VECTORS)?.remove(id)?;
        self.txn.open_table(EMBED_QUEUE)?.remove(id)?;
        self.delete_items(id)?;
        Ok(true)
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
        // Hidden repeats go with their original: forgetting a note forgets
        // every copy of it.
        self.txn.open_table(DUPLICATES)?.remove(id)?;
        let copies: Vec<u64> = {
            let t = self.txn.open_table(DUPLICATES)?;
            let mut v = Vec::new();
            for row in t.iter()? {
                let (k, o) = row?;
                if o.value() == id {
                    v.push(k.value());
                }
            }
            v
        };
        for c in copies {
            self.delete_note(chat_id, c)?;
        }
        Ok(Some(note))
    }
}

/// A stored note, or `None` when its bytes do not decode: a damaged record,
/// quarantined (logged once, kept, skipped as if absent).
pub(crate) fn read_note(id: u64, bytes: &[u8]) -> Option<Note> {
    super::damaged::quarantine("notes", id, serde_json::from_slice(bytes))
}

pub(crate) fn decode_note(id: u64, bytes: &[u8]) -> Result<Note, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("note {id} is unreadable: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn import_spaces_never_meet_telegram_chats() {
        for id in [0, 1, 4242, -1, -100_1234567890, (1 << 52) - 1, -(1 << 52)] {
            let c = import_chat(id);
            assert!(is_import_chat(c) && !is_import_chat(id), "{id}");
            assert_ne!(c, id);
            assert_eq!(shown_chat(c), id);
            assert_eq!(shown_chat(id), id);
            assert_eq!(import_chat(c), c, "idempotent");
            assert!(c.unsigned_abs() >= 1 << 61, "far from any Telegram id: {c}");
        }
    }

    fn note(tx: &mut Tx, text: &str, msg: i64) -> Result<Note, StoreError> {
        tx.insert_note(NewNote {
            chat_id: 7,
            user_id: 7,
            message_id: Some(msg),
            text: text.into(),
            created_at: 0,
            source: Source::Telegram,
            author: None,
        })
    }

    #[test]
    fn a_hidden_repeat_is_kept_but_counted_listed_and_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (a, b) = store
            .write(|tx| Ok((note(tx, "buy milk", 1)?, note(tx, "Buy milk!", 2)?)))
            .unwrap();
        let seq = |id: u64| {
            store
                .embed_queue(10)
                .unwrap()
                .into_iter()
                .find(|q| q.0 == id)
                .unwrap()
                .1
        };
        let s = seq(b.id);
        assert!(
            !store
                .write(|tx| tx.mark_duplicate(b.id, a.id, s + 1))
                .unwrap(),
            "a stale judgement"
        );
        assert!(store.write(|tx| tx.mark_duplicate(b.id, a.id, s)).unwrap());
        assert_eq!(store.count_notes().unwrap(), 1);
        assert_eq!(store.count_chat_notes(7).unwrap(), 1);
        let ids = |v: Vec<Note>| v.into_iter().map(|n| n.id).collect::<Vec<_>>();
        assert_eq!(ids(store.recent(7, 10).unwrap()), vec![a.id]);
        let mut seen = Vec::new();
        store.for_each_memory(|n| seen.push(n.id)).unwrap();
        assert_eq!(seen, vec![a.id]);
        // Still there: its acknowledgement's message still names it.
        assert!(store.note(b.id).unwrap().is_some());
        assert_eq!(store.duplicates().unwrap(), vec![(b.id, a.id)]);
        // Edited, it is a note of its own again.
        store
            .write(|tx| tx.edit_note(b.id, "buy oat milk".into(), 5).map(|_| ()))
            .unwrap();
        assert_eq!(store.count_notes().unwrap(), 2);
        assert_eq!(ids(store.recent(7, 10).unwrap()), vec![b.id, a.id]);
        // Marked again, then the original is forgotten: the copy goes too.
        let s = seq(b.id);
        assert!(store.write(|tx| tx.mark_duplicate(b.id, a.id, s)).unwrap());
        store
            .write(|tx| tx.delete_note(7, a.id).map(|_| ()))
            .unwrap();
        assert!(store.note(b.id).unwrap().is_none());
        assert!(store.duplicates().unwrap().is_empty());
        assert_eq!(store.count_notes().unwrap(), 0);
        // A repeat of a note that is gone is not marked.
        let c = store.write(|tx| note(tx, "x", 3)).unwrap();
        let s = seq(c.id);
        assert!(!store.write(|tx| tx.mark_duplicate(c.id, a.id, s)).unwrap());
    }
}
