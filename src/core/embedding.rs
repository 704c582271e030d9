//! Embeddings in the core: draining the durable queue into vectors (one
//! commit per take), dropping near-duplicate notes as they are embedded,
//! rebuilding every derived index, and what text a note is embedded as
//! ([`embed_text`], named by [`vector_space`]).
//!
//! The model runs outside the writer lock; only the commit and the index
//! update after it hold it, so a note is never kept waiting for a backlog.

use std::time::Duration;

use super::{Core, CoreError};
use crate::memory::embed::{Embedder, Role};
use crate::memory::indexes::IndexOp;
use crate::models::EMBED_DIM;
use crate::store::{Note, Source};

/// Notes per model call. Small: the queue is taken [`TAKE`] notes at a time
/// and sorted by length first, so a call of 8 similar-length texts pads
/// almost nothing; measured faster than 16 or 32 on 1 and 2 threads
/// (docs/BENCHMARKS.md).
pub const BATCH: usize = 8;
/// Queued notes taken (and length-sorted) per commit.
pub const TAKE: usize = 256;
/// Largest embedding backlog a recall waits for (larger ones — an import in
/// progress — are left to the worker).
const CATCH_UP_MAX: u64 = 256;
/// A note stored longer ago than this is never hidden as a repeat when it
/// is (re-)embedded.
const LATE_REPEAT_WINDOW_MS: i64 = 3_600_000;

impl Core {
    /// Read your writes: a question asked right after a note should see the
    /// note's embedding, so a small backlog is embedded before answering —
    /// one take of what is queued now, never "until empty" (notes arriving
    /// meanwhile in other chats would keep the question waiting).
    pub(super) fn catch_up(&self) -> Result<(), CoreError> {
        let queued = self.store.embed_queue_len()?;
        if self.embedder.is_some() && queued > 0 && queued <= CATCH_UP_MAX {
            if let Err(e) = self.embed_pending(queued as usize) {
                tracing::warn!(error = %e, "could not embed recent notes before recall");
            }
        }
        Ok(())
    }

    /// A new note's `text` embedded before it is acknowledged (exactly as
    /// the worker would embed it), and the stored note of the same chat it
    /// repeats (cosine ≥ `duplicate_threshold`), if any. `None` when no
    /// model session was free within `Settings::repeat_check` (or that is
    /// zero): the embed worker then embeds and checks it later.
    pub(super) fn repeat_of(
        &self,
        chat_id: i64,
        at: i64,
        text: &str,
    ) -> Option<(Vec<f32>, Option<u64>)> {
        let e = self.embedder.as_ref()?;
        // While the vectors load nothing can be compared: the worker checks
        // once they are in.
        if self.settings.repeat_check.is_zero() || self.indexes.vectors_loading() {
            return None;
        }
        let probe = embed_text(
            &Note {
                id: 0,
                chat_id,
                user_id: 0,
                message_id: None,
                text: text.to_owned(),
                created_at: at,
                edited_at: None,
                source: Source::Telegram,
                author: None,
                voice: None,
            },
            &[],
        );
        // A note compared with notes: both sides are passages.
        match e.embed_within(Role::Passage, &[probe.as_str()], self.settings.repeat_check)? {
            Ok(mut v) => {
                let v = v.pop().filter(|v| v.len() == EMBED_DIM)?;
                let repeats = (self.settings.duplicate_threshold <= 1.0)
                    .then(|| self.indexes.nearest(&v, chat_id))
                    .flatten()
                    .filter(|(_, c)| *c >= self.settings.duplicate_threshold)
                    .map(|(id, _)| id);
                Some((v, repeats))
            }
            Err(err) => {
                tracing::warn!(error = %format!("{err:#}"), "cannot look for a repeat; the embed worker will");
                None
            }
        }
    }

    /// Wakes the embed worker.
    pub fn wake_worker(&self) {
        let (m, cv) = &self.work;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }

    /// Blocks until there may be new work, or `timeout`.
    pub fn wait_for_work(&self, timeout: Duration) {
        let (m, cv) = &self.work;
        let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
        if !*g {
            g = cv
                .wait_timeout(g, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *g = false;
    }

    /// Embeds up to `max` queued notes in one model call and stores their
    /// vectors in one commit. Returns how many queue entries were taken (0
    /// when the queue is empty or there is no model).
    pub fn embed_pending(&self, max: usize) -> Result<usize, CoreError> {
        let Some(e) = &self.embedder else {
            return Ok(0);
        };
        // New vectors wait until the stored ones are in: a repeat must be
        // compared with all of them (the queue is durable; the worker
        // looks again within seconds).
        if self.indexes.vectors_loading() {
            return Ok(0);
        }
        let batch = self.store.embed_queue(max)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let space = vector_space(e);
        let mut texts = Vec::with_capacity(batch.len());
        for (id, _, n) in &batch {
            // Only notes with an author (imported chats) can be turns of a
            // conversation; a note typed to mnemo stands alone.
            let before = match n.author {
                Some(_) => self.store.notes_before(n.chat_id, *id, CONTEXT_TURNS)?,
                None => Vec::new(),
            };
            texts.push(embed_text(n, &before));
        }
        // Model calls of similar lengths: padding to the longest text of a call
        // is wasted work, so texts are sorted by length before chunking.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
        let out = e
            .embed_chunks(Role::Passage, &sorted, BATCH)
            .map_err(|err| CoreError::Embed(format!("{err:#}")))?;
        let mut vecs: Vec<Vec<f32>> = vec![Vec::new(); texts.len()];
        for (&i, v) in order.iter().zip(out) {
            vecs[i] = v;
        }
        let dups = self.duplicates(&batch, &vecs);
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut ops = Vec::new();
        let applied = self.store.write(|tx| {
            let mut applied = Vec::new();
            for (i, (((id, seq, _), v), dup)) in batch.iter().zip(&vecs).zip(&dups).enumerate() {
                if let Some((orig, cos)) = dup {
                    // Acknowledged already (the repeat was not recognised in
                    // the acknowledgement's budget): hidden, not deleted, and
                    // nothing more is said — its ack and ↩ still name it.
                    if tx.mark_duplicate(*id, *orig, *seq)? {
                        tracing::info!(
                            note = id,
                            same_as = orig,
                            cosine = cos,
                            "near-duplicate note hidden"
                        );
                        ops.push(IndexOp::Remove(*id));
                        continue;
                    }
                }
                if tx.is_duplicate(*id)? {
                    // A hidden repeat re-queued by a reset: it stays unsearchable.
                    tx.skip_embed(*id, *seq)?;
                } else if v.len() != EMBED_DIM || v.iter().any(|x| !x.is_finite()) {
                    tracing::error!(
                        note = id,
                        "model returned an unusable vector; note stays lexical-only"
                    );
                    tx.skip_embed(*id, *seq)?;
                } else if tx.put_vector(*id, *seq, &space, v)? {
                    applied.push(i);
                }
            }
            Ok(applied)
        })?;
        for i in applied {
            let (id, _, note) = &batch[i];
            ops.push(IndexOp::Vector(
                *id,
                note.chat_id,
                std::mem::take(&mut vecs[i]),
            ));
        }
        self.indexes.apply(ops);
        Ok(batch.len())
    }

    /// Near-duplicates the acknowledgement did not catch: for each new note
    /// of a take (not an import, not an edit, stored within the last
    /// [`LATE_REPEAT_WINDOW_MS`] — a re-embedding after a model change or
    /// `reindex` never hides old notes), the older note of the same chat —
    /// indexed, or earlier in the take — whose vector is at least
    /// `duplicate_threshold` close, if any. Such a note is hidden.
    fn duplicates(&self, batch: &[(u64, u64, Note)], vecs: &[Vec<f32>]) -> Vec<Option<(u64, f32)>> {
        let now = super::now_ms();
        batch
            .iter()
            .zip(vecs)
            .enumerate()
            .map(|(i, ((id, _, note), v))| {
                if note.source == Source::Import
                    || note.edited_at.is_some()
                    || self.settings.duplicate_threshold > 1.0
                    || now - note.created_at > LATE_REPEAT_WINDOW_MS
                {
                    return None;
                }
                let earlier_in_batch = batch[..i]
                    .iter()
                    .zip(&vecs[..i])
                    .filter(|((oid, _, o), _)| o.chat_id == note.chat_id && oid < id)
                    .map(|((oid, _, _), ov)| (*oid, crate::memory::dot::dot(v, ov)));
                self.indexes
                    .nearest(v, note.chat_id)
                    .filter(|(oid, _)| oid < id)
                    .into_iter()
                    .chain(earlier_in_batch)
                    .filter(|(_, c)| *c >= self.settings.duplicate_threshold)
                    .max_by(|a, b| a.1.total_cmp(&b.1))
            })
            .collect()
    }

    /// Saves the ANN graph if it changed, without merging segments (call
    /// on the way out: quick; a graph not saved is caught up or rebuilt at
    /// the next start).
    pub fn persist(&self) {
        self.indexes.persist(self.store.dir(), false);
    }

    /// Saves the ANN graph if it changed and merges its newest segments
    /// when due (the scheduled save; searches and writes go on meanwhile).
    pub fn persist_merging(&self) {
        self.indexes.persist(self.store.dir(), true);
    }

    /// Drains the whole queue now (CLI commands, reindex), reporting progress
    /// as (done, total).
    pub fn embed_all_pending(&self, mut progress: impl FnMut(u64, u64)) -> Result<u64, CoreError> {
        if self.embedder.is_none() {
            return Ok(0);
        }
        self.indexes.wait_vectors();
        let total = self.store.embed_queue_len()?;
        let mut done = 0;
        loop {
            // Larger takes let the length sort cut padding; one commit per take.
            let n = self.embed_pending(TAKE)? as u64;
            if n == 0 {
                break;
            }
            done += n;
            // One commit per take: what this line counts survives a crash.
            tracing::debug!(done, total, "embedded take committed");
            progress(done.min(total), total);
        }
        Ok(done)
    }

    /// Rebuilds every derived index from the store: lexical from the notes,
    /// vectors by re-embedding every note (progress as (done, total)).
    pub fn reindex(&self, progress: impl FnMut(u64, u64)) -> Result<u64, CoreError> {
        {
            let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            self.indexes.rebuild_lexical(&self.store)?;
            if let Some(e) = &self.embedder {
                self.store.write(|tx| tx.reset_vectors(&vector_space(e)))?;
                self.indexes.clear_vectors();
            }
        }
        self.embed_all_pending(progress)
    }
}

/// How [`embed_text`] lays a note out; part of [`vector_space`], so a
/// change re-embeds every note instead of mixing layouts.
const EMBED_LAYOUT: &str = "date-dmy-author-ctx2x8";

/// The identity of the stored vectors: the model and the text layout.
pub fn vector_space(e: &Embedder) -> String {
    vector_space_of(e.model_id())
}

/// [`vector_space`] for a model id.
pub fn vector_space_of(model_id: &str) -> String {
    format!("{model_id}#{EMBED_LAYOUT}")
}

/// Turns before a message that [`embed_text`] may add as its context.
const CONTEXT_TURNS: usize = 2;
/// A context turn is at most this much older than the message (one sitting
/// of a conversation; a gap ends the context).
const CONTEXT_WINDOW_MS: i64 = 30 * 60_000;
/// Words kept of each context turn: its last ones, where a question's
/// subject usually is ("… did you go to the Coldplay concert?").
const CONTEXT_WORDS: usize = 8;

/// What is embedded for a note: its date, its author when known, then its
/// text (the date helps questions about time, dense retrieval most of all;
/// the author, questions about who said what in imported chats). The date is
/// written `25 Nov 2026`: four tokens instead of six for `2026-11-25`, and a
/// month *name* is what questions say ("in November") — measured better on
/// the eval set (hybrid hit@10 0.743 → 0.757) and ~20% less model work.
///
/// In a dialogue, a message often means little alone ("Nope, Thursdays"):
/// `before` (the chat's previous notes, newest first) adds up to
/// [`CONTEXT_TURNS`] of them, oldest first, cut to their last
/// [`CONTEXT_WORDS`] words, in parentheses after the text — when they are
/// within [`CONTEXT_WINDOW_MS`] of each other and the message, and someone
/// else speaks among them (a monologue of notes gets no context). Measured
/// on tests/data/conversation_eval.json: hybrid hit@1 0.392 → 0.433, hit@10
/// 0.731 → 0.772, evidence@10 0.588 → 0.650 (docs/BENCHMARKS.md). Context goes after the
/// text, not before it: in front it outweighed the message's own words
/// (hit@1 0.392 → 0.366).
pub fn embed_text(n: &Note, before: &[Note]) -> String {
    let date = chrono::DateTime::from_timestamp_millis(n.created_at)
        .map(|d| d.format("%-d %b %Y").to_string());
    let own = match (date, n.author.as_deref().map(str::trim)) {
        (Some(d), Some(a)) if !a.is_empty() => format!("{d}, {a}: {}", n.text),
        (Some(d), _) => format!("{d}: {}", n.text),
        (None, _) => n.indexed_text().into_owned(),
    };
    let Some(author) = n.author.as_deref() else {
        return own;
    };
    let mut turns = Vec::new();
    let mut after = n.created_at;
    for b in before.iter().take(CONTEXT_TURNS) {
        // Ids are arrival order, not always date order (an older export
        // imported after a newer one): a later message is no context.
        let gap = after - b.created_at;
        if b.chat_id != n.chat_id || !(0..=CONTEXT_WINDOW_MS).contains(&gap) {
            break;
        }
        after = b.created_at;
        turns.push(b);
    }
    if !turns.iter().any(|b| b.author.as_deref() != Some(author)) {
        return own;
    }
    let context: Vec<String> = turns
        .iter()
        .rev()
        .map(|b| {
            let words: Vec<&str> = b.text.split_whitespace().collect();
            let tail = &words[words.len().saturating_sub(CONTEXT_WORDS)..];
            format!(
                "{}: {}",
                b.author.as_deref().unwrap_or("").trim(),
                tail.join(" ")
            )
        })
        .collect();
    format!("{own}\n({})", context.join(" / "))
}

#[cfg(test)]
mod embed_text_tests {
    use super::*;

    /// 25 Nov 2026 12:00 UTC, plus `min` minutes.
    fn turn(id: u64, min: i64, author: Option<&str>, text: &str) -> Note {
        Note {
            id,
            chat_id: 7,
            user_id: 1,
            message_id: Some(id as i64),
            text: text.into(),
            created_at: 1_795_608_000_000 + min * 60_000,
            edited_at: None,
            source: Source::Import,
            author: author.map(Into::into),
            voice: None,
        }
    }

    #[test]
    fn a_reply_in_a_dialogue_carries_the_turns_it_answers() {
        let q = turn(
            1,
            0,
            Some("Jana"),
            "Ich hab mich gestern bei der VHS für einen Spanischkurs angemeldet",
        );
        let d = turn(2, 1, Some("Malte"), "Schön. Dienstags?");
        let a = turn(3, 2, Some("Jana"), "Donnerstags");
        assert_eq!(
            embed_text(&a, &[d.clone(), q.clone()]),
            "25 Nov 2026, Jana: Donnerstags\n\
             (Jana: gestern bei der VHS für einen Spanischkurs angemeldet / Malte: Schön. Dienstags?)",
            "oldest first, each cut to its last 8 words"
        );
        assert!(embed_text(&q, &[])
            .ends_with("Jana: Ich hab mich gestern bei der VHS für einen Spanischkurs angemeldet"));
    }

    #[test]
    fn no_context_across_a_pause_in_a_monologue_or_for_notes_without_author() {
        let a = turn(3, 100, Some("Jana"), "Donnerstags");
        let own = "25 Nov 2026, Jana: Donnerstags";
        // The previous turn is 40 minutes older: another sitting.
        assert_eq!(
            embed_text(&a, &[turn(2, 60, Some("Malte"), "Dienstags?")]),
            own
        );
        // A pause between the two earlier turns ends the context there.
        assert_eq!(
            embed_text(
                &a,
                &[
                    turn(2, 95, Some("Malte"), "Dienstags?"),
                    turn(1, 0, Some("Jana"), "old")
                ]
            ),
            format!("{own}\n(Malte: Dienstags?)")
        );
        // A later message (an older export imported after a newer one) is
        // no context.
        assert_eq!(
            embed_text(&a, &[turn(2, 101, Some("Malte"), "Dienstags?")]),
            own
        );
        // Only the same author: a run of notes, not a conversation.
        assert_eq!(
            embed_text(&a, &[turn(2, 99, Some("Jana"), "Spanischkurs")]),
            own
        );
        // Notes typed to mnemo have no author and stand alone.
        let mut mine = turn(3, 100, None, "Donnerstags");
        mine.source = Source::Telegram;
        assert_eq!(
            embed_text(&mine, &[turn(2, 99, Some("Malte"), "Dienstags?")]),
            "25 Nov 2026: Donnerstags"
        );
    }
}
