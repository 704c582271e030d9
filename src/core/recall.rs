//! Recall: hybrid search over the derived indexes (lexical BM25, vectors,
//! recency), then feedback moves the ranked candidates before they are cut
//! to k ([`super::press`]).

use std::collections::HashMap;

use super::{now_ms, Core, CoreError, Hit};
use crate::memory::embed::Role;
use crate::memory::recall::{self, Candidate, Weights};
use crate::memory::Chats;
use crate::store::Note;

/// Candidates taken from each side before fusion.
const CANDIDATES: usize = 50;

impl Core {
    /// Hybrid recall (lexical + vector + recency); `chat` restricts to one
    /// chat and the history imported from an export with that chat id (the
    /// owner's CLI; Telegram's `/recall` searches its own chat only).
    /// Without a model it is lexical with recency.
    pub fn recall(&self, query: &str, chat: Option<i64>, k: usize) -> Result<Vec<Hit>, CoreError> {
        self.recall_weighted(query, chat, k, &self.settings.weights)
    }

    /// [`Core::recall`] with explicit fusion weights (evaluation: lexical
    /// only is `vector = 0`, vector only is `lexical = 0`).
    pub fn recall_weighted(
        &self,
        query: &str,
        chat: Option<i64>,
        k: usize,
        weights: &Weights,
    ) -> Result<Vec<Hit>, CoreError> {
        let chats = chat.map_or(Chats::ALL, Chats::with_import);
        Ok(self.recall_full(query, chats, k, weights)?.0)
    }

    /// The hits and the query's embedding (kept with vote buttons, so a vote
    /// knows which questions are similar).
    pub(super) fn recall_full(
        &self,
        query: &str,
        chat: Chats,
        k: usize,
        weights: &Weights,
    ) -> Result<(Vec<Hit>, Option<Vec<f32>>), CoreError> {
        self.recall_with(query, None, chat, k, weights)
    }

    /// [`Core::recall_full`] with the question's embedding when it is known
    /// already (a "more" press: the question was embedded when asked).
    pub(super) fn recall_with(
        &self,
        query: &str,
        known: Option<Vec<f32>>,
        chat: Chats,
        k: usize,
        weights: &Weights,
    ) -> Result<(Vec<Hit>, Option<Vec<f32>>), CoreError> {
        let k = k.clamp(1, self.settings.recall_max_k);
        let qv = match &self.embedder {
            _ if known.is_some() => known,
            Some(e) if !query.trim().is_empty() => Some(
                e.embed(Role::Query, &[query])
                    .map_err(|err| CoreError::Embed(format!("{err:#}")))?
                    .remove(0),
            ),
            _ => None,
        };
        let span = self.date_span(query, chat, weights)?;
        let found = self.indexes.search(
            query,
            qv.as_deref(),
            chat,
            CANDIDATES.max(k),
            weights,
            span.as_ref(),
        );
        let asks_when = crate::memory::when::asks_when(query);
        let mut notes = HashMap::new();
        let mut cands = Vec::new();
        for m in found.matches {
            // The indexes are derived: a note deleted since is simply skipped.
            let Some(note) = self.store.note(m.id)? else {
                continue;
            };
            cands.push(Candidate {
                id: m.id,
                bm25: m.bm25,
                lexical: m.bm25 / found.query_weight,
                cosine: m.cosine,
                vector: m.vector,
                created_at: note.created_at,
                asks: note.text.trim_end().ends_with('?'),
                sitting: m.sitting,
                by_named: m.by_named,
                turn: m.turn,
                dated_only: m.dated_only,
                timed: asks_when && crate::memory::when::mentions_time(&note.text),
                in_span: span
                    .as_ref()
                    .filter(|s| s.contains(note.created_at))
                    .and(found.span_notes),
            });
            notes.insert(m.id, note);
        }
        // Rank every candidate, then let feedback move them before cutting to k.
        let mut ranked = recall::fuse(&cands, now_ms(), weights, cands.len());
        let outdated = self.apply_feedback(&mut ranked, query, qv.as_deref());
        ranked.truncate(k.max(recall::ANSWER_TOP));
        self.rerank(query, &mut ranked, &notes, weights)?;
        let relevant = recall::relevant(
            ranked
                .iter()
                .map(|(_, _, p)| (p.relevance + p.feedback, p.rerank.is_some())),
            weights,
        );
        let hits = ranked
            .into_iter()
            .zip(relevant)
            .take(k)
            .filter_map(|((id, score, parts), relevant)| {
                notes.remove(&id).map(|note| Hit {
                    note,
                    score,
                    relevant,
                    parts,
                    outdated: outdated.contains(&id),
                })
            })
            .collect();
        Ok((hits, qv))
    }

    /// Asks the cross-encoder how well each conversation turn among the
    /// first [`recall::ANSWER_TOP`] hits answers `query` and adds its part
    /// to their relevance ([`Weights::rerank`]). Without its model, with
    /// weight 0, or when it fails (logged), the turns keep their plain
    /// relevance.
    fn rerank(
        &self,
        query: &str,
        ranked: &mut [(u64, f32, recall::Parts)],
        notes: &HashMap<u64, Note>,
        weights: &Weights,
    ) -> Result<(), CoreError> {
        let Some(rr) = self.reranker.as_ref().filter(|_| weights.rerank > 0.0) else {
            return Ok(());
        };
        let n = ranked.len().min(recall::ANSWER_TOP);
        let mut turns: Vec<&mut (u64, f32, recall::Parts)> = ranked[..n]
            .iter_mut()
            .filter(|(id, _, _)| notes.get(id).is_some_and(|n| n.author.is_some()))
            .collect();
        if turns.is_empty() || query.trim().is_empty() || !rr.available() {
            return Ok(());
        }
        let texts = match turns
            .iter()
            .map(|(id, _, _)| self.rerank_text(&notes[id]))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(t) => t,
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the turns around a hit; plain relevance");
                return Ok(());
            }
        };
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        match rr.score(query, &refs) {
            Ok(logits) => {
                for ((_, _, p), l) in turns.iter_mut().zip(logits) {
                    p.rerank = Some(l);
                    p.relevance += weights.rerank * (l - weights.rerank_offset);
                }
            }
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "reranker failed; plain relevance");
            }
        }
        Ok(())
    }

    /// What the cross-encoder reads for a turn of a conversation: "Author:
    /// text" lines of the turn and of the turns just before and after it
    /// in the same sitting (an answer is often a reply to a question) — as
    /// [`crate::memory::window`] counts sittings: time moves forward, by at
    /// most `SITTING_GAP_MS` a turn.
    fn rerank_text(&self, n: &Note) -> Result<String, crate::store::StoreError> {
        let gap = 0..=crate::memory::window::SITTING_GAP_MS;
        let before = self.store.notes_before(n.chat_id, n.id, 1)?;
        let after = self.store.notes_after(n.chat_id, n.id, 1)?;
        Ok(before
            .iter()
            .filter(|o| o.author.is_some() && gap.contains(&(n.created_at - o.created_at)))
            .chain([n])
            .chain(
                after
                    .iter()
                    .filter(|o| o.author.is_some() && gap.contains(&(o.created_at - n.created_at))),
            )
            .map(|o| o.indexed_text().into_owned())
            .collect::<Vec<_>>()
            .join("\n"))
    }

    /// The time `query` names, if any, in the zone of the (first) chat
    /// searched: its /tz, else `digest.timezone`. A time given from an
    /// event ("two weeks after her operation") is found from the event's
    /// date: the date it names ("3 days after Christmas 2024"), else that
    /// of the message that best matches its words, if that one is relevant
    /// (no window at all rather than one around an unrelated message),
    /// searched with the question's own `weights` (an evaluation's ablation
    /// finds the event the way it finds the answer).
    fn date_span(
        &self,
        query: &str,
        chat: Chats,
        weights: &Weights,
    ) -> Result<Option<crate::memory::when::Span>, CoreError> {
        use crate::memory::when;
        let first = chat.ids().and_then(|c| c.first().copied());
        let d = match first {
            Some(c) => self.store.chat_digest(c)?,
            None => None,
        };
        let tz = self.chat_tz(d.as_ref());
        let Some(a) = when::anchored(query) else {
            return Ok(when::parse(query, now_ms(), tz));
        };
        let event = &query[a.event.clone()];
        if let Some(named) = when::parse(event, now_ms(), tz) {
            return Ok(Some(a.span(named.from)));
        }
        // The event's words are a strict part of the question: this
        // recursion ends.
        let (hits, _) = self.recall_with(event, None, chat, 1, weights)?;
        Ok(hits
            .first()
            .filter(|h| h.relevant)
            .map(|h| a.span(h.note.created_at)))
    }
}
