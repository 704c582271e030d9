//! What the digests remember: each chat's digest settings (time zone, on or
//! off) and the **ledger** — one row per (chat, schedule, slot) saying what
//! became of that slot.
//!
//! The ledger is how a scheduled digest is delivered at most once. A slot's
//! row is written in the same commit as the digest's outbox entry
//! ([`SlotState::Planned`]); the sender marks it [`SlotState::Sending`] in a
//! commit of its own *before* the message goes on the wire, and
//! [`SlotState::Sent`] with Telegram's message id in the commit that removes
//! the outbox entry. A sender that finds a row already `Sending` does not
//! know whether Telegram got the message (a timeout, or `kill -9` between
//! the two commits): Telegram has no idempotency key, so the slot becomes
//! [`SlotState::Uncertain`] — visible in `mnemo schedule list` — and is not
//! sent again. A slot with a row is never planned again, whatever its state.
//!
//! "New" in a digest means "not in an earlier digest of that schedule":
//! every row that may have reached the chat carries the highest note id it
//! covered ([`SlotRecord::upto_note`]), and the next digest starts after it.

use redb::ReadableTable;
use serde::{Deserialize, Serialize};

use super::schema::{DIGEST_CHATS, DIGEST_LEDGER};
use super::{Store, StoreError, Tx};

/// What became of one slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SlotState {
    /// Built and queued in the outbox.
    Planned,
    /// The sender is sending it (recorded before the request).
    Sending,
    /// Telegram accepted it; `message_ids` prove it.
    Sent,
    /// Telegram refused it for good (`reason`).
    Failed,
    /// Nothing new in the period: nothing was sent.
    Skipped,
    /// The slot passed while mnemo was down (or beyond the catch-up
    /// window): nothing was sent.
    Missed,
    /// A send whose outcome is unknown (timed out, or the process died
    /// mid-send). Never retried: it may have arrived.
    Uncertain,
}

impl SlotState {
    pub fn as_str(self) -> &'static str {
        match self {
            SlotState::Planned => "planned",
            SlotState::Sending => "sending",
            SlotState::Sent => "sent",
            SlotState::Failed => "failed",
            SlotState::Skipped => "skipped",
            SlotState::Missed => "missed",
            SlotState::Uncertain => "uncertain",
        }
    }

    /// The digest of this slot may have reached the chat (or still will):
    /// the notes it covered are not new any more.
    pub fn covers(self) -> bool {
        matches!(
            self,
            SlotState::Planned | SlotState::Sending | SlotState::Sent | SlotState::Uncertain
        )
    }
}

/// One ledger row. Times are unix milliseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SlotRecord {
    pub state: SlotState,
    /// When the state last changed.
    pub at: i64,
    /// Sent after its slot, as the one catch-up after downtime.
    #[serde(default)]
    pub late: bool,
    /// Telegram's ids of the sent message (one per chunk).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub message_ids: Vec<i64>,
    /// "extractive" or "llm:<provider>/<model>".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Why it failed, was skipped or is uncertain.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Notes in the digest.
    #[serde(default)]
    pub notes: u64,
    /// The highest note id the digest covered (0: none).
    #[serde(default)]
    pub upto_note: u64,
}

impl SlotRecord {
    /// A row in `state` with nothing else known.
    pub fn new(state: SlotState, at: i64) -> SlotRecord {
        SlotRecord {
            state,
            at,
            late: false,
            message_ids: Vec::new(),
            source: None,
            reason: None,
            notes: 0,
            upto_note: 0,
        }
    }
}

/// A ledger key: which chat, which schedule, which slot (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotKey {
    pub chat_id: i64,
    pub schedule: String,
    pub slot: i64,
}

/// A chat's digest settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatDigest {
    /// IANA time zone set with /tz; `None` uses `digest.timezone`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tz: Option<String>,
    /// `/schedule off` turns every scheduled digest of the chat off.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// When digests began for this chat (unix ms): slots before it are
    /// neither sent nor counted as missed.
    pub since: i64,
}

fn yes() -> bool {
    true
}

fn decode<T: serde::de::DeserializeOwned>(b: &[u8]) -> Option<T> {
    serde_json::from_slice(b).ok()
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("digest records serialise")
}

/// A ledger row as key and record; `None` (logged) when it does not decode.
fn ledger_row(
    (chat_id, schedule, slot): (i64, &str, i64),
    v: &[u8],
) -> Option<(SlotKey, SlotRecord)> {
    let Some(rec) = decode::<SlotRecord>(v) else {
        tracing::warn!(chat_id, schedule, slot, "unreadable digest ledger row");
        return None;
    };
    let key = SlotKey {
        chat_id,
        schedule: schedule.to_owned(),
        slot,
    };
    Some((key, rec))
}

impl Store {
    /// A chat's digest settings, if it has any yet.
    pub fn chat_digest(&self, chat_id: i64) -> Result<Option<ChatDigest>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DIGEST_CHATS)?;
        Ok(t.get(chat_id)?.and_then(|g| decode(g.value())))
    }

    /// The ledger rows of one chat and schedule, oldest slot first (all
    /// chats and schedules when `chat` is `None`); at most `limit` of the
    /// newest.
    pub fn ledger(
        &self,
        chat: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DIGEST_LEDGER)?;
        let mut out = Vec::new();
        let rows: Box<dyn DoubleEndedIterator<Item = _>> = match chat {
            Some((c, s)) => Box::new(t.range((c, s, i64::MIN)..=(c, s, i64::MAX))?),
            None => Box::new(t.iter()?),
        };
        for row in rows.rev() {
            if out.len() >= limit {
                break;
            }
            let (k, v) = row?;
            out.extend(ledger_row(k.value(), v.value()));
        }
        out.reverse();
        Ok(out)
    }

    /// Every ledger row of chat `chat_id`, newest first, at most `limit`.
    pub fn chat_ledger(
        &self,
        chat_id: i64,
        limit: usize,
    ) -> Result<Vec<(SlotKey, SlotRecord)>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DIGEST_LEDGER)?;
        let mut out = Vec::new();
        for row in t.range((chat_id, "", i64::MIN)..(chat_id + 1, "", i64::MIN))? {
            let (k, v) = row?;
            out.extend(ledger_row(k.value(), v.value()));
        }
        out.sort_by_key(|(k, r)| std::cmp::Reverse((r.at, k.slot)));
        out.truncate(limit);
        Ok(out)
    }

    /// The newest slot (unix s) with a row for (chat, schedule), and the
    /// highest note id covered by a digest of that schedule.
    pub fn ledger_marks(
        &self,
        chat_id: i64,
        schedule: &str,
    ) -> Result<(Option<i64>, u64), StoreError> {
        let r = self.read()?;
        let t = r.open_table(DIGEST_LEDGER)?;
        let mut newest = None;
        let mut covered = 0;
        for row in t
            .range((chat_id, schedule, i64::MIN)..=(chat_id, schedule, i64::MAX))?
            .rev()
        {
            let (k, v) = row?;
            newest.get_or_insert(k.value().2);
            if let Some(rec) = decode::<SlotRecord>(v.value()) {
                if rec.state.covers() {
                    covered = rec.upto_note;
                    break;
                }
            }
        }
        Ok((newest, covered))
    }

    /// The slot row, if any.
    pub fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(DIGEST_LEDGER)?;
        Ok(t.get((key.chat_id, key.schedule.as_str(), key.slot))?
            .and_then(|g| decode(g.value())))
    }
}

impl Tx {
    pub fn chat_digest(&self, chat_id: i64) -> Result<Option<ChatDigest>, StoreError> {
        let t = self.txn.open_table(DIGEST_CHATS)?;
        let v = t.get(chat_id)?.and_then(|g| decode(g.value()));
        Ok(v)
    }

    pub fn put_chat_digest(&mut self, chat_id: i64, d: &ChatDigest) -> Result<(), StoreError> {
        self.txn
            .open_table(DIGEST_CHATS)?
            .insert(chat_id, encode(d).as_slice())?;
        Ok(())
    }

    pub fn slot(&self, key: &SlotKey) -> Result<Option<SlotRecord>, StoreError> {
        let t = self.txn.open_table(DIGEST_LEDGER)?;
        let v = t
            .get((key.chat_id, key.schedule.as_str(), key.slot))?
            .and_then(|g| decode(g.value()));
        Ok(v)
    }

    /// Writes a slot's row (a new one, or its next state).
    pub fn put_slot(&mut self, key: &SlotKey, rec: &SlotRecord) -> Result<(), StoreError> {
        self.txn.open_table(DIGEST_LEDGER)?.insert(
            (key.chat_id, key.schedule.as_str(), key.slot),
            encode(rec).as_slice(),
        )?;
        Ok(())
    }

    /// Writes a new slot row; false (and nothing written) when the slot has
    /// one already: a slot is planned once.
    pub fn add_slot(&mut self, key: &SlotKey, rec: &SlotRecord) -> Result<bool, StoreError> {
        if self.slot(key)?.is_some() {
            return Ok(false);
        }
        self.put_slot(key, rec)?;
        Ok(true)
    }

    /// Forgets ledger rows older than `before_ms` (by slot time), keeping
    /// for each (chat, schedule) its newest row that covered notes (the
    /// "new since" mark) and its newest row (the catch-up mark).
    pub fn prune_ledger(&mut self, before_ms: i64) -> Result<u64, StoreError> {
        let before = before_ms.div_euclid(1000);
        let mut keep = std::collections::HashSet::new();
        let mut last: Option<(i64, String)> = None;
        let mut covering_found = false;
        {
            let t = self.txn.open_table(DIGEST_LEDGER)?;
            for row in t.iter()?.rev() {
                let (k, v) = row?;
                let (chat, sched, slot) = k.value();
                let group = (chat, sched.to_owned());
                if last.as_ref() != Some(&group) {
                    keep.insert((chat, sched.to_owned(), slot));
                    last = Some(group);
                    covering_found = false;
                }
                if !covering_found
                    && decode::<SlotRecord>(v.value()).is_some_and(|r| r.state.covers())
                {
                    keep.insert((chat, sched.to_owned(), slot));
                    covering_found = true;
                }
            }
        }
        let mut n = 0;
        self.txn
            .open_table(DIGEST_LEDGER)?
            .retain(|(chat, sched, slot), _| {
                let k = slot >= before || keep.contains(&(chat, sched.to_owned(), slot));
                n += u64::from(!k);
                k
            })?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(chat: i64, s: &str, slot: i64) -> SlotKey {
        SlotKey {
            chat_id: chat,
            schedule: s.into(),
            slot,
        }
    }

    #[test]
    fn a_slot_is_added_once_and_marks_follow_the_covering_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.ledger_marks(7, "daily").unwrap(), (None, 0));
        let mut sent = SlotRecord::new(SlotState::Sent, 1);
        sent.upto_note = 40;
        let fresh = store
            .write(|tx| {
                let a = tx.add_slot(&key(7, "daily", 100), &sent)?;
                let b = tx.add_slot(
                    &key(7, "daily", 100),
                    &SlotRecord::new(SlotState::Planned, 2),
                )?;
                tx.add_slot(
                    &key(7, "daily", 200),
                    &SlotRecord::new(SlotState::Skipped, 3),
                )?;
                tx.add_slot(
                    &key(7, "weekly", 300),
                    &SlotRecord::new(SlotState::Missed, 3),
                )?;
                tx.add_slot(
                    &key(8, "daily", 400),
                    &SlotRecord::new(SlotState::Missed, 3),
                )?;
                Ok((a, b))
            })
            .unwrap();
        assert_eq!(fresh, (true, false));
        assert_eq!(store.slot(&key(7, "daily", 100)).unwrap(), Some(sent));
        // The newest slot is the skipped one; notes are covered up to 40.
        assert_eq!(store.ledger_marks(7, "daily").unwrap(), (Some(200), 40));
        assert_eq!(store.ledger_marks(7, "weekly").unwrap(), (Some(300), 0));
        assert_eq!(store.ledger(Some((7, "daily")), 10).unwrap().len(), 2);
        assert_eq!(store.ledger(None, 10).unwrap().len(), 4);
        assert_eq!(store.chat_ledger(7, 10).unwrap().len(), 3);
        // Pruning keeps each schedule's newest row and its covering mark.
        let gone = store.write(|tx| tx.prune_ledger(1_000_000)).unwrap();
        assert_eq!(gone, 0);
        store
            .write(|tx| {
                tx.add_slot(
                    &key(7, "daily", 500),
                    &SlotRecord::new(SlotState::Skipped, 4),
                )
                .map(|_| ())
            })
            .unwrap();
        assert_eq!(store.write(|tx| tx.prune_ledger(1_000_000)).unwrap(), 1);
        assert_eq!(store.ledger_marks(7, "daily").unwrap(), (Some(500), 40));
    }

    #[test]
    fn chat_settings_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.chat_digest(5).unwrap(), None);
        let d = ChatDigest {
            tz: Some("Europe/Berlin".into()),
            enabled: false,
            since: 9,
        };
        store.write(|tx| tx.put_chat_digest(5, &d)).unwrap();
        assert_eq!(store.chat_digest(5).unwrap(), Some(d));
    }
}
