//! What button presses leave behind: votes on recall hits, the questions
//! they answered, and the nonces of single-use presses.
//!
//! Votes are written to an append-only log ([`Tx::append_feedback`]) in the
//! press's own transaction, so recording a vote is one small insert. The log
//! is folded into one [`Aggregate`] per note by [`Tx::compact_feedback`],
//! which reads, folds and deletes the log entries *in one transaction*: a
//! crash before its commit leaves the log untouched and the aggregates as
//! they were, and a crash after leaves the folded result — there is no state
//! in between, and folding is idempotent per user, so compaction may run any
//! time. Ranking reads [`Store::feedback_state`]: aggregates with the log
//! tail folded on top, which equals what compaction would produce.

use std::collections::HashMap;

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::{Store, StoreError, Tx};

/// A user's verdict on one memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Vote {
    Helpful,
    NotHelpful,
    Outdated,
}

impl Vote {
    pub fn as_str(self) -> &'static str {
        match self {
            Vote::Helpful => "helpful",
            Vote::NotHelpful => "not_helpful",
            Vote::Outdated => "outdated",
        }
    }
}

/// One vote, as logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedbackEvent {
    pub note_id: u64,
    pub chat_id: i64,
    pub user_id: i64,
    pub vote: Vote,
    /// Unix ms.
    pub at: i64,
    /// The question the hit answered ("" when unknown).
    #[serde(default)]
    pub query: String,
    /// The question's embedding, when a model was loaded.
    #[serde(default, with = "vec_b64", skip_serializing_if = "Option::is_none")]
    pub qvec: Option<Vec<f32>>,
    /// The model `qvec` was computed by ("" for votes logged before this
    /// was recorded — all of them by the one model mnemo had then).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qspace: String,
}

/// The compacted votes of one note: at most one per user (the latest).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Aggregate {
    pub votes: Vec<FeedbackEvent>,
}

impl Aggregate {
    /// Folds one vote in: it replaces the same user's earlier vote, so a
    /// repeated or changed vote never counts twice.
    pub fn apply(&mut self, ev: FeedbackEvent) {
        match self.votes.iter_mut().find(|v| v.user_id == ev.user_id) {
            Some(v) => *v = ev,
            None => self.votes.push(ev),
        }
    }
}

/// A recall question whose hits carry vote buttons.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Ask {
    pub chat_id: i64,
    pub user_id: i64,
    pub query: String,
    /// Unix ms.
    pub at: i64,
    #[serde(default, with = "vec_b64", skip_serializing_if = "Option::is_none")]
    pub qvec: Option<Vec<f32>>,
    /// The model `qvec` was computed by (see [`FeedbackEvent::qspace`]).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub qspace: String,
}

/// What a compaction did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Compaction {
    /// Log entries folded and removed.
    pub folded: u64,
    /// Of those, entries for notes deleted since (dropped).
    pub dropped: u64,
}

/// Vote counts for stats.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedbackCounts {
    pub helpful: u64,
    pub not_helpful: u64,
    pub outdated: u64,
    /// Votes in the log, not yet compacted.
    pub log: u64,
}

impl FeedbackCounts {
    /// Counts the votes of `state` (as [`Store::feedback_state`] returns it).
    pub fn of(state: &HashMap<u64, Aggregate>, log: u64) -> FeedbackCounts {
        let mut c = FeedbackCounts {
            log,
            ..Default::default()
        };
        for v in state.values().flat_map(|a| &a.votes) {
            match v.vote {
                Vote::Helpful => c.helpful += 1,
                Vote::NotHelpful => c.not_helpful += 1,
                Vote::Outdated => c.outdated += 1,
            }
        }
        c
    }
}

fn decode<T: for<'de> Deserialize<'de>>(
    what: &str,
    id: u64,
    bytes: &[u8],
) -> Result<T, StoreError> {
    serde_json::from_slice(bytes)
        .map_err(|e| StoreError::Corrupt(format!("{what} {id} is unreadable: {e}")))
}

impl Tx {
    /// Stores a recall question; returns its id.
    pub fn put_ask(&mut self, ask: &Ask) -> Result<u64, StoreError> {
        let id = self.next_seq(KEY_NEXT_ASK)?;
        self.txn.open_table(ASKS)?.insert(
            id,
            serde_json::to_vec(ask).expect("asks serialise").as_slice(),
        )?;
        Ok(id)
    }

    pub fn ask(&self, id: u64) -> Result<Option<Ask>, StoreError> {
        let t = self.txn.open_table(ASKS)?;
        let g = t.get(id)?;
        g.map(|g| decode("ask", id, g.value())).transpose()
    }

    /// Records the nonce of a single-use press. False when it was used
    /// before: the press is a replay and must change nothing.
    pub fn use_nonce(&mut self, nonce: u64, issued_at: i64) -> Result<bool, StoreError> {
        let mut t = self.txn.open_table(USED_NONCES)?;
        if t.get(nonce)?.is_some() {
            return Ok(false);
        }
        t.insert(nonce, issued_at)?;
        Ok(true)
    }

    /// Appends a vote to the log; returns its sequence number.
    pub fn append_feedback(&mut self, ev: &FeedbackEvent) -> Result<u64, StoreError> {
        let seq = self.next_seq(KEY_NEXT_FEEDBACK)?;
        self.txn.open_table(FEEDBACK_LOG)?.insert(
            seq,
            serde_json::to_vec(ev)
                .expect("feedback serialises")
                .as_slice(),
        )?;
        Ok(seq)
    }

    /// Folds the whole log into the per-note aggregates and empties it, in
    /// this transaction. Votes for notes that no longer exist are dropped.
    pub fn compact_feedback(&mut self) -> Result<Compaction, StoreError> {
        let log: Vec<(u64, FeedbackEvent)> = {
            let t = self.txn.open_table(FEEDBACK_LOG)?;
            let mut v = Vec::new();
            for row in t.iter()? {
                let (k, val) = row?;
                v.push((k.value(), decode("feedback entry", k.value(), val.value())?));
            }
            v
        };
        let mut c = Compaction::default();
        let mut touched: HashMap<u64, Aggregate> = HashMap::new();
        {
            let notes = self.txn.open_table(NOTES)?;
            let aggs = self.txn.open_table(FEEDBACK)?;
            for (seq, ev) in &log {
                c.folded += 1;
                if notes.get(ev.note_id)?.is_none() {
                    c.dropped += 1;
                    tracing::debug!(seq, note = ev.note_id, "vote for a deleted note dropped");
                    continue;
                }
                let agg = match touched.entry(ev.note_id) {
                    std::collections::hash_map::Entry::Occupied(o) => o.into_mut(),
                    std::collections::hash_map::Entry::Vacant(v) => {
                        let cur = aggs
                            .get(ev.note_id)?
                            .map(|g| decode("feedback", ev.note_id, g.value()))
                            .transpose()?;
                        v.insert(cur.unwrap_or_default())
                    }
                };
                agg.apply(ev.clone());
            }
        }
        let mut aggs = self.txn.open_table(FEEDBACK)?;
        for (id, agg) in &touched {
            aggs.insert(
                *id,
                serde_json::to_vec(agg)
                    .expect("feedback serialises")
                    .as_slice(),
            )?;
        }
        drop(aggs);
        let mut t = self.txn.open_table(FEEDBACK_LOG)?;
        for (seq, _) in &log {
            t.remove(*seq)?;
        }
        Ok(c)
    }

    /// Forgets used nonces and asks issued before `before_secs` (unix s):
    /// buttons that old are rejected as expired anyway.
    pub fn prune_buttons(&mut self, before_secs: i64) -> Result<u64, StoreError> {
        let mut n = self.prune_before(USED_NONCES, before_secs)?;
        let mut old = Vec::new();
        {
            let t = self.txn.open_table(ASKS)?;
            for row in t.iter()? {
                let (k, v) = row?;
                let ask: Ask = decode("ask", k.value(), v.value())?;
                if ask.at < before_secs.saturating_mul(1000) {
                    old.push(k.value());
                }
            }
        }
        let mut t = self.txn.open_table(ASKS)?;
        for id in old {
            t.remove(id)?;
            n += 1;
        }
        Ok(n)
    }

    /// Drops the aggregate of a deleted note (its log entries are dropped
    /// at the next compaction).
    pub(super) fn delete_feedback(&mut self, note_id: u64) -> Result<(), StoreError> {
        self.txn.open_table(FEEDBACK)?.remove(note_id)?;
        Ok(())
    }
}

impl Store {
    /// Every note's votes: the aggregates with the log folded on top, in log
    /// order (exactly what [`Tx::compact_feedback`] would store).
    pub fn feedback_state(&self) -> Result<HashMap<u64, Aggregate>, StoreError> {
        let r = self.read()?;
        let mut out: HashMap<u64, Aggregate> = HashMap::new();
        for row in r.open_table(FEEDBACK)?.iter()? {
            let (k, v) = row?;
            out.insert(k.value(), decode("feedback", k.value(), v.value())?);
        }
        let notes = r.open_table(NOTES)?;
        for row in r.open_table(FEEDBACK_LOG)?.iter()? {
            let (k, v) = row?;
            let ev: FeedbackEvent = decode("feedback entry", k.value(), v.value())?;
            if notes.get(ev.note_id)?.is_some() {
                out.entry(ev.note_id).or_default().apply(ev);
            }
        }
        Ok(out)
    }

    pub fn feedback_log_len(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(FEEDBACK_LOG)?.len()?)
    }

    pub fn feedback_counts(&self) -> Result<FeedbackCounts, StoreError> {
        Ok(FeedbackCounts::of(
            &self.feedback_state()?,
            self.feedback_log_len()?,
        ))
    }

    /// The raw aggregates table (tests compare it with a fold of the log).
    pub fn feedback_aggregates(&self) -> Result<HashMap<u64, Aggregate>, StoreError> {
        let r = self.read()?;
        let mut out = HashMap::new();
        for row in r.open_table(FEEDBACK)?.iter()? {
            let (k, v) = row?;
            out.insert(k.value(), decode("feedback", k.value(), v.value())?);
        }
        Ok(out)
    }
}

/// `Option<Vec<f32>>` as base64 of little-endian f32s: a quarter of the JSON
/// number form's size.
mod vec_b64 {
    use base64::engine::general_purpose::STANDARD_NO_PAD;
    use base64::Engine as _;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Vec<f32>>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(v) => s.serialize_some(&STANDARD_NO_PAD.encode(super::super::encode_f32s(v))),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<f32>>, D::Error> {
        let Some(s) = Option::<String>::deserialize(d)? else {
            return Ok(None);
        };
        let bytes = STANDARD_NO_PAD
            .decode(s)
            .map_err(serde::de::Error::custom)?;
        if bytes.len() % 4 != 0 {
            return Err(serde::de::Error::custom(
                "vector length is not a multiple of 4",
            ));
        }
        Ok(Some(super::super::decode_f32s(&bytes)))
    }
}
