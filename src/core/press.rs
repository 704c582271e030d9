//! Inline buttons: issuing them on replies, acting on presses, and letting
//! the votes they record change ranking.
//!
//! A button's callback data is signed ([`crate::buttons`]) for the chat and
//! user it was issued to. A press is verified before anything else; a
//! single-use press (undo, done) records its nonce in the same transaction
//! as its effect, so a replay changes nothing. Votes (👍 👎 ⌛) are
//! idempotent instead: a user's later vote on a memory replaces the earlier.
//!
//! Vote buttons of one recall share their nonce, which names the stored
//! question ([`crate::store::Ask`]): "helpful" then means "helpful for
//! questions like this one", judged at ranking time by the cosine between
//! the two questions' embeddings (or their shared terms without a model).

use std::collections::HashSet;

use super::{Changes, Core, Cx, Outcome};
use crate::buttons::{Action, Payload, Reject};
use crate::i18n::Line;
use crate::memory::dot::dot;
use crate::memory::lexical::analyze_query;
use crate::memory::recall::Parts;
use crate::store::{Ask, FeedbackEvent, StoreError, Tx, Vote};

/// The log is compacted into aggregates once it holds this many votes.
pub(super) const COMPACT_EVERY: u64 = 64;

/// Cosine between two questions at which a vote starts to count, and the
/// width of the ramp to full weight: paraphrases score 0.7–0.95 on MiniLM,
/// unrelated questions below 0.4.
const SIMILAR_FROM: f32 = 0.5;
const SIMILAR_RAMP: f32 = 0.4;

impl Core {
    /// A signed button for this event's chat and user, or `None` when
    /// buttons are off (no keyring) or the event's origin cannot show them
    /// (the console). `nonce` fixes the nonce (votes name their question);
    /// otherwise it is random.
    pub(super) fn button(
        &self,
        cx: &Cx,
        action: Action,
        target: u64,
        nonce: Option<u64>,
        label: Line,
    ) -> Option<crate::core::Button> {
        if !self.buttons_on(cx) {
            return None;
        }
        self.sign_button(cx.ev.chat_id, cx.ev.user_id, action, target, nonce, label)
    }

    /// A button signed for `chat` and `user` (the pipeline's replies, which
    /// have no event to hang it on, use this directly). `None` without a
    /// keyring.
    pub(super) fn sign_button(
        &self,
        chat: i64,
        user: i64,
        action: Action,
        target: u64,
        nonce: Option<u64>,
        label: Line,
    ) -> Option<crate::core::Button> {
        let keys = self.keys.as_ref()?;
        let now = super::now_ms() / 1000;
        let payload = match nonce {
            Some(nonce) => Payload {
                action,
                target,
                issued_at: now,
                nonce,
            },
            None => match Payload::new(action, target, now) {
                Ok(p) => p,
                Err(e) => {
                    tracing::error!(error = %e, "no randomness for a button nonce; reply sent without it");
                    return None;
                }
            },
        };
        Some(crate::core::Button {
            label,
            data: keys.sign(&payload, chat, user),
        })
    }

    /// Whether vote buttons can be issued here (stores an [`Ask`] first).
    pub(super) fn buttons_on(&self, cx: &Cx) -> bool {
        self.keys.is_some() && cx.ev.origin.buttons
    }

    /// Records the question of a recall whose hits get vote buttons.
    pub(super) fn put_ask(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        query: &str,
        qvec: Option<Vec<f32>>,
    ) -> Result<u64, StoreError> {
        tx.put_ask(&Ask {
            chat_id: cx.ev.chat_id,
            user_id: cx.ev.user_id,
            query: query.to_owned(),
            at: super::now_ms(),
            qspace: match (&qvec, &self.embedder) {
                (Some(_), Some(e)) => e.model_id().to_owned(),
                _ => String::new(),
            },
            qvec,
        })
    }

    /// Acts on a press. Always returns exactly one [`Outcome::Answer`].
    pub(super) fn press(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        data: &str,
        ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (chat, user) = (cx.ev.chat_id, cx.ev.user_id);
        let Some(keys) = &self.keys else {
            return Ok(vec![cx.answer(Line::new("press-invalid"), false)]);
        };
        let now_ms = super::now_ms();
        let p = match keys.verify(
            data,
            chat,
            user,
            now_ms / 1000,
            self.settings.button_max_age_secs,
        ) {
            Ok(p) => p,
            Err(r) => {
                // Never log the data itself: it is attacker-controlled.
                tracing::warn!(reason = r.code(), chat, user, "button press rejected");
                let key = match r {
                    Reject::Expired => "press-expired",
                    _ => "press-invalid",
                };
                return Ok(vec![cx.answer(Line::new(key), false)]);
            }
        };
        if p.single_use() && !tx.use_nonce(p.nonce, p.issued_at)? {
            tracing::warn!(action = ?p.action, chat, user, "replayed single-use button refused");
            return Ok(vec![cx.answer(Line::new("press-used"), false)]);
        }
        let answer = match p.action {
            Action::Helpful | Action::NotHelpful | Action::Outdated => {
                let vote = match p.action {
                    Action::Helpful => Vote::Helpful,
                    Action::NotHelpful => Vote::NotHelpful,
                    _ => Vote::Outdated,
                };
                match tx.note(p.target)?.filter(|n| n.chat_id == chat) {
                    None => cx.answer(Line::new("press-gone"), false),
                    Some(n) => {
                        let ask = tx.ask(p.nonce)?.filter(|a| a.chat_id == chat);
                        let (query, qvec, qspace) =
                            ask.map(|a| (a.query, a.qvec, a.qspace)).unwrap_or_default();
                        let ev = FeedbackEvent {
                            note_id: n.id,
                            chat_id: chat,
                            user_id: user,
                            vote,
                            at: now_ms,
                            query,
                            qvec,
                            qspace,
                        };
                        tx.append_feedback(&ev)?;
                        ch.vote(ev);
                        let key = match vote {
                            Vote::Helpful => "press-helpful",
                            Vote::NotHelpful => "press-not-helpful",
                            Vote::Outdated => "press-outdated",
                        };
                        cx.answer(Line::new(key).num("id", n.id), true)
                    }
                }
            }
            Action::Undo => match tx.delete_note(chat, p.target)? {
                Some(n) => {
                    ch.forget(&n);
                    cx.answer(Line::new("press-undone").num("id", n.id), true)
                }
                None => cx.answer(Line::new("press-gone"), false),
            },
            Action::Done => match tx.item(p.target)?.filter(|i| i.chat_id == chat) {
                None => cx.answer(Line::new("press-gone"), false),
                Some(_) => match tx.set_item_done(p.target, now_ms)? {
                    Some(before) if before.done_at.is_none() => cx.answer(
                        Line::new("press-done").text("text", super::snippet(&before.text, 120)),
                        true,
                    ),
                    Some(_) => cx.answer(Line::new("press-done-already"), true),
                    None => cx.answer(Line::new("press-gone"), false),
                },
            },
            Action::Retranscribe => {
                let answer = self.retranscribe(tx, cx, p.target)?;
                ch.voice_ready();
                answer
            }
            Action::More => return self.more(tx, cx, p.target),
            Action::HealthSnooze | Action::HealthAck | Action::HealthDetails => {
                return self.health_press(tx, cx, p.action, p.target, ch)
            }
        };
        Ok(vec![answer])
    }

    /// "more" under a recall answer: the question (`ask`) is searched
    /// again — with its stored embedding, no model call — and the hits the
    /// answer left out (below the relevance floor) are sent as a reply.
    fn more(&self, tx: &mut Tx, cx: &Cx, ask: u64) -> Result<Vec<Outcome>, StoreError> {
        let chat = cx.ev.chat_id;
        let Some(a) = tx.ask(ask)?.filter(|a| a.chat_id == chat) else {
            return Ok(vec![cx.answer(Line::new("press-gone"), false)]);
        };
        let same_model = self
            .embedder
            .as_ref()
            .is_some_and(|e| e.model_id() == a.qspace);
        let qvec = a.qvec.filter(|_| same_model);
        let k = self.settings.recall_default_k;
        let hits = match self.recall_with(
            &a.query,
            qvec,
            crate::memory::Chats::one(chat),
            k,
            &self.settings.weights,
        ) {
            Ok((hits, _)) => hits,
            Err(super::CoreError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "recall for \"more\" failed");
                return Ok(vec![cx.answer(Line::new("recall-failed"), false)]);
            }
        };
        let (shown, rest) = super::commands::split_relevant(&hits);
        if rest.is_empty() {
            return Ok(vec![cx.answer(Line::new("press-more-none"), false)]);
        }
        let mut lines =
            vec![Line::new("recall-more-header").text("query", super::snippet(&a.query, 100))];
        lines.extend(
            rest.iter()
                .enumerate()
                .map(|(i, h)| self.hit_line(shown.len() + i + 1, h)),
        );
        Ok(vec![
            cx.answer(Line::new("press-more").num("count", rest.len()), true),
            cx.reply(lines),
        ])
    }

    /// Moves ranked candidates by their votes and re-sorts them. Returns the
    /// ids marked outdated.
    ///
    /// For each vote: 👍 adds and 👎 subtracts `feedback_weight × r`, where
    /// `r ∈ [0, 1]` is how similar this question is to the one voted on;
    /// ⌛ multiplies the score by `outdated_factor` whatever the question.
    pub(super) fn apply_feedback(
        &self,
        ranked: &mut [(u64, f32, Parts)],
        query: &str,
        qv: Option<&[f32]>,
    ) -> HashSet<u64> {
        let fb = self.indexes.feedback();
        let mut outdated = HashSet::new();
        if fb.is_empty() {
            return outdated;
        }
        let qterms: HashSet<String> = analyze_query(query).into_iter().collect();
        let qv = qv.zip(self.embedder.as_ref().map(|e| e.model_id()));
        for (id, score, parts) in ranked.iter_mut() {
            let Some(agg) = fb.get(id) else { continue };
            let mut delta = 0.0;
            let mut old = false;
            for v in &agg.votes {
                match v.vote {
                    Vote::Outdated => old = true,
                    Vote::Helpful | Vote::NotHelpful => {
                        let r = relevance(qv, &qterms, v);
                        let sign = if v.vote == Vote::Helpful { 1.0 } else { -1.0 };
                        delta += sign * self.settings.feedback_weight * r;
                    }
                }
            }
            let before = *score;
            *score += delta;
            if old {
                *score *= self.settings.outdated_factor;
                outdated.insert(*id);
            }
            parts.feedback = *score - before;
        }
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
        outdated
    }

    /// Compacts the vote log once it is long enough (after a vote).
    pub(super) fn maybe_compact_feedback(&self) {
        match self.store.feedback_log_len() {
            Ok(n) if n >= COMPACT_EVERY => {
                if let Err(e) = self.compact_feedback() {
                    tracing::warn!(error = %e, "feedback compaction failed; the log is kept and tried again later");
                }
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "cannot read the feedback log length"),
        }
    }

    /// Folds the vote log into per-memory aggregates (one transaction).
    pub fn compact_feedback(&self) -> Result<crate::store::Compaction, super::CoreError> {
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let c = self.store.write(|tx| tx.compact_feedback())?;
        if c.folded > 0 {
            tracing::debug!(
                folded = c.folded,
                dropped = c.dropped,
                "feedback log compacted"
            );
        }
        Ok(c)
    }

    /// The latest votes in a chat, newest first.
    pub(super) fn recent_feedback(&self, chat: i64, n: usize) -> Vec<FeedbackEvent> {
        let fb = self.indexes.feedback();
        let mut all: Vec<FeedbackEvent> = fb
            .values()
            .flat_map(|a| a.votes.iter())
            .filter(|v| v.chat_id == chat)
            .cloned()
            .collect();
        all.sort_by(|a, b| b.at.cmp(&a.at).then(b.note_id.cmp(&a.note_id)));
        all.truncate(n);
        all
    }

    /// Vote counts from the in-memory state ranking uses (no store scan).
    pub(super) fn feedback_counts(&self) -> Result<crate::store::FeedbackCounts, StoreError> {
        let log = self.store.feedback_log_len()?;
        let fb = self.indexes.feedback();
        Ok(crate::store::FeedbackCounts::of(&fb, log))
    }

    /// Whether someone marked note `id` outdated.
    pub(super) fn is_outdated(&self, id: u64) -> bool {
        let fb = self.indexes.feedback();
        fb.get(&id)
            .is_some_and(|a| a.votes.iter().any(|v| v.vote == Vote::Outdated))
    }
}

/// How much a vote cast for another question applies to this one, 0..=1:
/// by the cosine of the two questions when both were embedded by the same
/// model (`qv` is this question's vector and model), else by shared terms.
fn relevance(qv: Option<(&[f32], &str)>, qterms: &HashSet<String>, v: &FeedbackEvent) -> f32 {
    if let (Some((a, space)), Some(b)) = (qv, v.qvec.as_deref()) {
        if a.len() == b.len() && (v.qspace.is_empty() || v.qspace == space) {
            return ((dot(a, b) - SIMILAR_FROM) / SIMILAR_RAMP).clamp(0.0, 1.0);
        }
    }
    let theirs: HashSet<String> = analyze_query(&v.query).into_iter().collect();
    let union = qterms.union(&theirs).count();
    if union == 0 {
        return 0.0;
    }
    qterms.intersection(&theirs).count() as f32 / union as f32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(query: &str, qvec: Option<Vec<f32>>) -> FeedbackEvent {
        FeedbackEvent {
            note_id: 1,
            chat_id: 1,
            user_id: 1,
            vote: Vote::Helpful,
            at: 0,
            query: query.into(),
            qvec,
            qspace: String::new(),
        }
    }

    #[test]
    fn relevance_by_embedding_ramps_from_similar_to_identical() {
        let q = vec![1.0, 0.0];
        assert_eq!(
            relevance(
                Some((&q, "m")),
                &HashSet::new(),
                &ev("", Some(vec![1.0, 0.0]))
            ),
            1.0
        );
        assert_eq!(
            relevance(
                Some((&q, "m")),
                &HashSet::new(),
                &ev("", Some(vec![0.0, 1.0]))
            ),
            0.0
        );
        let mid = relevance(
            Some((&q, "m")),
            &HashSet::new(),
            &ev("", Some(vec![0.7, 0.714])),
        );
        assert!(mid > 0.4 && mid < 0.6, "{mid}");
        // Recorded by the same model: the cosine counts.
        let mut same = ev("", Some(vec![1.0, 0.0]));
        same.qspace = "m".into();
        assert_eq!(relevance(Some((&q, "m")), &HashSet::new(), &same), 1.0);
    }

    #[test]
    fn a_question_embedded_by_another_model_is_compared_by_its_words() {
        let q: HashSet<String> = analyze_query("dentist appointment").into_iter().collect();
        let mut other = ev("bike repair", Some(vec![1.0, 0.0]));
        other.qspace = "another-model/2".into();
        assert_eq!(relevance(Some((&[1.0, 0.0], "m")), &q, &other), 0.0);
        other.query = "dentist appointment".into();
        assert_eq!(relevance(Some((&[1.0, 0.0], "m")), &q, &other), 1.0);
    }

    #[test]
    fn relevance_without_embeddings_is_term_overlap() {
        let q: HashSet<String> = analyze_query("when is the dentist appointment")
            .into_iter()
            .collect();
        assert_eq!(
            relevance(None, &q, &ev("when is the dentist appointment", None)),
            1.0
        );
        assert_eq!(relevance(None, &q, &ev("bike repair shop", None)), 0.0);
        let part = relevance(None, &q, &ev("dentist phone number", None));
        assert!(part > 0.0 && part < 1.0, "{part}");
        assert_eq!(relevance(None, &q, &ev("", None)), 0.0);
    }
}
