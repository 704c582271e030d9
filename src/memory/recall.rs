//! Hybrid ranking: lexical BM25 and vector cosine, fused linearly, with a
//! small recency term.
//!
//! Both candidate lists are merged; every candidate gets both raw scores
//! (BM25 0 when it did not match; cosine from its stored vector). The lexical
//! side is the share of the query matched (BM25 over the query's total idf,
//! see `LexicalIndex::query_weight`), the vector side is min-max normalised
//! over the candidates, and `score = w_lex·lex + w_vec·vec + w_rec·recency`
//! with `recency = 0.5^(age / half_life)`. Linear fusion of normalised scores beat
//! reciprocal rank fusion on short chat messages once BM25 was tuned (see
//! shared/RECIPES.md); the weights live in config (`[recall]`). Ties: higher
//! note id (newer) first — deterministic.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::lexical::Bm25;

/// Fusion weights, from config.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
#[serde(default)]
pub struct Weights {
    pub lexical: f32,
    pub vector: f32,
    pub recency: f32,
    pub recency_half_life_days: f32,
    /// `lexical` and `vector` for turns of imported conversations (notes
    /// with an author): their words are few and their window counts on the
    /// lexical side, so the tuned balance differs from notes to self.
    pub turn_lexical: f32,
    pub turn_vector: f32,
    /// Weight of a conversation turn's window (its neighbours' words) in
    /// BM25F, relative to its own words (see [`super::window`]): the turns
    /// before it; 0 = no window.
    pub window: f32,
    /// The same for the turns after it.
    pub window_after: f32,
    /// A turn's vector side also counts its neighbours': its cosine plus
    /// this times the best neighbour's cosine over its distance; 0 = off.
    pub vector_window: f32,
    /// Added to a turn in proportion to the share of the question's words
    /// (by idf) found in its stretch of the sitting, up to
    /// `sitting_turns` turns on each side: the topic, where the answer is.
    pub sitting: f32,
    pub sitting_turns: usize,
    /// Taken from a turn that asks (ends with "?"): in a dialogue the answer
    /// is the reply, which the question's words reach through its window.
    pub question: f32,
    /// Added to a turn by a person the question names.
    pub speaker: f32,
    /// Added to a note written in the time the question names ("in March
    /// 2025", "last week"; see [`super::when`]).
    pub date: f32,
    /// Added to a note that names a time ("on the 14th", "since Tuesday")
    /// when the question asks for one ("when…", "what date…"; see
    /// [`super::when::asks_when`], [`super::when::mentions_time`]).
    pub when: f32,
    /// A question is answered when one of its first [`ANSWER_TOP`] hits
    /// has a [`Parts::relevance`] (plus feedback) of at least this; when
    /// none has, chat says nothing matching was found.
    pub floor: f32,
    /// Beside such an answer, a hit is relevant (shown first in chat) when
    /// its relevance reaches this lower floor: the second-best answer of
    /// an answered question stands out less than the best one, and a
    /// single cut at `floor` lost it (docs/BENCHMARKS.md). At most `floor`.
    pub beside_floor: f32,
    /// A conversation turn among the first [`ANSWER_TOP`] hits gets the
    /// cross-encoder's logit for it ([`super::rerank`]) less
    /// `rerank_offset`, times this, added to its [`Parts::relevance`]: the
    /// bi-encoder's cosines tell an answer from a turn that only shares the
    /// question's frame worst on short chat turns. 0: not asked.
    pub rerank: f32,
    pub rerank_offset: f32,
    /// `beside_floor` for a turn scored so.
    pub rerank_beside: f32,
    /// BM25's `k1` and `b` (lexical side and turn windows).
    pub bm25: Bm25,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            lexical: 0.45,
            vector: 0.55,
            recency: 0.05,
            recency_half_life_days: 180.0,
            turn_lexical: 0.7,
            turn_vector: 0.3,
            window: 0.25,
            window_after: 0.1,
            vector_window: 0.3,
            sitting: 0.4,
            sitting_turns: 15,
            question: 0.05,
            speaker: 0.1,
            date: 0.8,
            when: 0.05,
            floor: 0.0,
            beside_floor: 0.0,
            rerank: 0.0,
            rerank_offset: 0.0,
            rerank_beside: 0.0,
            bm25: Bm25::default(),
        }
        .calibrated(&crate::models::MINILM, true)
    }
}

impl Weights {
    /// These weights with what is calibrated per embedding model: its
    /// relevance floors and its use of the cross-encoder (`rerank` false,
    /// or a model without one: not asked).
    pub fn calibrated(self, spec: &crate::models::EmbedSpec, rerank: bool) -> Weights {
        let r = spec.rerank;
        Weights {
            floor: spec.relevance_floor,
            beside_floor: spec.beside_floor,
            rerank: r.filter(|_| rerank).map_or(0.0, |r| r.weight),
            rerank_offset: r.map_or(0.0, |r| r.offset),
            rerank_beside: r.map_or(0.0, |r| r.beside),
            ..self
        }
    }

    /// The three rankings an evaluation compares: lexical only, vector
    /// only (both without recency, speaker, date and question terms) and
    /// these weights.
    pub fn ablations(self) -> [(&'static str, Weights); 3] {
        let only = |on_lex: bool| Weights {
            lexical: if on_lex { self.lexical } else { 0.0 },
            vector: if on_lex { 0.0 } else { self.vector },
            turn_lexical: if on_lex { self.turn_lexical } else { 0.0 },
            turn_vector: if on_lex { 0.0 } else { self.turn_vector },
            recency: 0.0,
            speaker: 0.0,
            date: 0.0,
            when: 0.0,
            question: 0.0,
            rerank: 0.0,
            // The sitting's share of the question is a lexical signal.
            sitting: if on_lex { self.sitting } else { 0.0 },
            ..self
        };
        [
            ("lexical", only(true)),
            ("vector", only(false)),
            ("hybrid", self),
        ]
    }
}

/// Each part of a fused score, already weighted (for `--explain`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Parts {
    pub lexical: f32,
    pub vector: f32,
    pub recency: f32,
    /// Raw BM25 and cosine before normalisation.
    pub bm25: f32,
    pub cosine: f32,
    /// What feedback (votes from inline buttons) added or took away.
    pub feedback: f32,
    /// What the speaker boost added (a turn by the person the question names).
    pub speaker: f32,
    /// What the date boost added (a note written in the time the question names).
    pub date: f32,
    /// What naming a time added, for a question that asks when ([`Weights::when`]).
    pub when: f32,
    /// What a turn that asks lost ([`Weights::question`]).
    pub question: f32,
    /// What the sitting's share of the question added ([`Weights::sitting`]).
    pub sitting: f32,
    /// The cross-encoder's logit for the hit, when it was asked
    /// ([`Weights::rerank`]); `rerank · (logit − rerank_offset)` is part of
    /// `relevance`.
    pub rerank: Option<f32>,
    /// How well the note answers the question, for the relevance floor:
    /// `RELEVANCE_LEXICAL · lexical share + (1 − RELEVANCE_LEXICAL) · (cosine
    /// − the mean cosine of the candidates)`. Not the fused score: its
    /// min-max vector side gives the best candidate full weight however
    /// unrelated it is, while a note that stands out from the candidates is
    /// what an answerable question has (calibrated on tests/data, see
    /// docs/BENCHMARKS.md). Without a model: the lexical share.
    pub relevance: f32,
}

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub id: u64,
    pub bm25: f32,
    /// `bm25` normalised to [0, 1] (share of the query matched).
    pub lexical: f32,
    pub cosine: Option<f32>,
    /// The vector side's raw score: `cosine`, for a turn with its
    /// neighbours' ([`Weights::vector_window`]).
    pub vector: Option<f32>,
    pub created_at: i64,
    /// A turn that asks (ends with "?").
    pub asks: bool,
    /// The share of the question's words in the turn's stretch of its sitting.
    pub sitting: f32,
    /// A turn by a person the question names.
    pub by_named: bool,
    /// A turn of an imported conversation (weighted by `turn_*`).
    pub turn: bool,
    /// Written in the time the question names: `Some(notes written in
    /// it)`, `usize::MAX` when more than were counted.
    pub in_span: Option<usize>,
    /// Found only among the notes of the named time (not by words or
    /// meaning over all notes): left out of the candidates' mean cosine,
    /// which such a pool of weak matches would pull down.
    pub dated_only: bool,
    /// The question asks when, and this note names a time.
    pub timed: bool,
}

/// How many of a question's best hits [`Weights::floor`] looks at: as
/// many as `/recall` shows by default.
pub const ANSWER_TOP: usize = 5;

/// Which of `ranked` (best first, as (relevance + feedback, scored by the
/// cross-encoder)) are relevant: none unless one of the first
/// [`ANSWER_TOP`] reaches `w.floor`; then every one that reaches
/// `w.beside_floor` (`w.rerank_beside` for one the cross-encoder scored).
pub fn relevant(ranked: impl IntoIterator<Item = (f32, bool)> + Clone, w: &Weights) -> Vec<bool> {
    let answered = ranked
        .clone()
        .into_iter()
        .take(ANSWER_TOP)
        .any(|(r, _)| r >= w.floor);
    ranked
        .into_iter()
        .map(|(r, reranked)| {
            let beside = if reranked {
                w.rerank_beside
            } else {
                w.beside_floor
            };
            answered && r >= beside.min(w.floor)
        })
        .collect()
}

/// The lexical share's part in [`Parts::relevance`].
pub const RELEVANCE_LEXICAL: f32 = 0.1;

/// What a note of the time a question names adds to its
/// [`Parts::relevance`] when that time holds at most [`DATE_FEW`] notes
/// (less, in proportion, when it holds more): a note of the named day is
/// likely an answer, one of a year's notes is not.
pub const RELEVANCE_DATE: f32 = 0.25;
pub const DATE_FEW: f32 = 10.0;

/// Ranks candidates; returns the best `k` as (id, score, parts).
pub fn fuse(cands: &[Candidate], now: i64, w: &Weights, k: usize) -> Vec<(u64, f32, Parts)> {
    let (vmin, vmax) = min_max(cands.iter().filter_map(|c| c.vector.or(c.cosine)));
    let with_vec = cands.iter().filter(|c| c.cosine.is_some()).count();
    let (sum, n) = cands
        .iter()
        .filter(|c| !c.dated_only)
        .filter_map(|c| c.cosine)
        .fold((0.0, 0), |(s, n), v| (s + v, n + 1));
    let vmean = sum / n.max(1) as f32;
    let norm = |x: f32, lo: f32, hi: f32| {
        if hi - lo > 1e-9 {
            (x - lo) / (hi - lo)
        } else if hi > 0.0 {
            1.0
        } else {
            0.0
        }
    };
    let half_life_ms = (w.recency_half_life_days.max(0.01) * 86_400_000.0) as f64;
    let mut out: Vec<(u64, f32, Parts)> = cands
        .iter()
        .map(|c| {
            let (wl, wv) = if c.turn {
                (w.turn_lexical, w.turn_vector)
            } else {
                (w.lexical, w.vector)
            };
            let lex = c.lexical.clamp(0.0, 1.0);
            let vec = c.vector.or(c.cosine).map_or(0.0, |v| norm(v, vmin, vmax));
            let age = (now - c.created_at).max(0) as f64;
            let rec = 0.5f64.powf(age / half_life_ms) as f32;
            let parts = Parts {
                lexical: wl * lex,
                vector: wv * vec,
                recency: w.recency * rec,
                bm25: c.bm25,
                cosine: c.cosine.unwrap_or(0.0),
                feedback: 0.0,
                speaker: if c.by_named { w.speaker } else { 0.0 },
                date: if c.in_span.is_some() { w.date } else { 0.0 },
                when: if c.timed { w.when } else { 0.0 },
                question: if c.turn && c.asks { -w.question } else { 0.0 },
                sitting: if c.turn { w.sitting * c.sitting } else { 0.0 },
                rerank: None,
                relevance: 0.0,
            };
            // Without vectors (no model) the lexical share is all there is.
            let relevance = if with_vec == 0 {
                lex
            } else {
                RELEVANCE_LEXICAL * lex
                    + (1.0 - RELEVANCE_LEXICAL) * c.cosine.map_or(0.0, |v| v - vmean)
            };
            // One of a few notes of the named time is likely an answer; one
            // of hundreds (a year) no more than any other note.
            let few = c
                .in_span
                .map_or(0.0, |n| (DATE_FEW / n.max(1) as f32).min(1.0));
            let relevance = relevance + RELEVANCE_DATE * few;
            let parts = Parts { relevance, ..parts };
            (
                c.id,
                parts.lexical
                    + parts.vector
                    + parts.recency
                    + parts.speaker
                    + parts.date
                    + parts.when
                    + parts.question
                    + parts.sitting,
                parts,
            )
        })
        .collect();
    out.sort_by(|a, b| b.1.total_cmp(&a.1).then(b.0.cmp(&a.0)));
    out.truncate(k);
    out
}

fn min_max(it: impl Iterator<Item = f32>) -> (f32, f32) {
    it.fold((f32::INFINITY, f32::NEG_INFINITY), |(lo, hi), x| {
        (lo.min(x), hi.max(x))
    })
}

/// Merges lexical hits and vector hits into one candidate set (by id).
pub fn merge(lex: &[(u64, f32)], vec: &[(u64, f32)]) -> BTreeMap<u64, (f32, Option<f32>)> {
    let mut m: BTreeMap<u64, (f32, Option<f32>)> = BTreeMap::new();
    for &(id, s) in lex {
        m.entry(id).or_insert((0.0, None)).0 = s;
    }
    for &(id, s) in vec {
        m.entry(id).or_insert((0.0, None)).1 = Some(s);
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(id: u64, bm25: f32, cos: Option<f32>) -> Candidate {
        Candidate {
            id,
            bm25,
            lexical: bm25 / 10.0,
            cosine: cos,
            vector: None,
            created_at: 0,
            asks: false,
            sitting: 0.0,
            by_named: false,
            turn: false,
            in_span: None,
            dated_only: false,
            timed: false,
        }
    }

    #[test]
    fn both_signals_count_and_ties_are_deterministic() {
        let w = Weights {
            recency: 0.0,
            ..Weights::default()
        };
        // 1: lexical only; 2: vector only; 3: both moderately.
        let cands = [
            c(1, 5.0, Some(0.1)),
            c(2, 0.0, Some(0.8)),
            c(3, 4.0, Some(0.7)),
        ];
        let r = fuse(&cands, 0, &w, 3);
        assert_eq!(r[0].0, 3, "{r:?}");
        // Identical candidates: newer id first.
        let r = fuse(&[c(7, 1.0, Some(0.5)), c(9, 1.0, Some(0.5))], 0, &w, 2);
        assert_eq!((r[0].0, r[1].0), (9, 7));
    }

    #[test]
    fn recency_breaks_near_ties_only() {
        let w = Weights::default();
        let day = 86_400_000;
        let old = Candidate {
            id: 1,
            bm25: 3.0,
            lexical: 0.3,
            cosine: Some(0.6),
            created_at: 0,
            ..c(0, 0.0, None)
        };
        let new = Candidate {
            id: 2,
            bm25: 3.0,
            lexical: 0.3,
            cosine: Some(0.6),
            created_at: 700 * day,
            ..c(0, 0.0, None)
        };
        let r = fuse(&[old, new], 700 * day, &w, 2);
        assert_eq!(r[0].0, 2);
        let strong_old = Candidate {
            id: 1,
            bm25: 9.0,
            lexical: 0.9,
            cosine: Some(0.9),
            created_at: 0,
            ..c(0, 0.0, None)
        };
        let r = fuse(&[strong_old, new], 700 * day, &w, 2);
        assert_eq!(r[0].0, 1, "relevance beats recency");
    }

    #[test]
    fn a_question_is_answered_by_its_best_hits_and_then_shows_those_beside() {
        let w = Weights {
            floor: 0.1,
            beside_floor: 0.05,
            ..Weights::default()
        };
        let plain = |r: &[f32]| r.iter().map(|&x| (x, false)).collect::<Vec<_>>();
        // Answered (0.12 reaches the floor): 0.06 is shown beside it, 0.04 not.
        assert_eq!(
            relevant(plain(&[0.12, 0.04, 0.06]), &w),
            [true, false, true]
        );
        // The best need not come first (fusion ranks by more than relevance).
        assert_eq!(relevant(plain(&[0.06, 0.11]), &w), [true, true]);
        // Not answered: nothing reaches the floor, so nothing is relevant,
        // not even what would stand beside an answer.
        assert_eq!(relevant(plain(&[0.09, 0.08]), &w), [false, false]);
        // Only the first ANSWER_TOP hits can answer a question.
        let mut late = vec![0.0; ANSWER_TOP];
        late.push(0.5);
        assert!(relevant(plain(&late), &w).iter().all(|r| !r));
        // A beside floor above the floor counts as the floor.
        let high = Weights {
            beside_floor: 0.2,
            ..w
        };
        assert_eq!(
            relevant(plain(&[0.15, 0.1, 0.09]), &high),
            [true, true, false]
        );
        assert!(relevant(Vec::new(), &w).is_empty());
        // A hit the cross-encoder scored stands beside an answer from its
        // own floor.
        let rr = Weights {
            rerank_beside: -0.05,
            ..w
        };
        assert_eq!(
            relevant([(0.12, true), (-0.01, true), (0.04, false)], &rr),
            [true, true, false]
        );
        assert_eq!(relevant([(0.09, true), (-0.01, true)], &rr), [false, false]);
    }

    #[test]
    fn relevance_is_how_far_a_note_stands_out_and_turns_have_their_weights() {
        let w = Weights::default();
        // One note close to the question among unrelated ones: it alone
        // passes the floor; a flat field of weak matches passes none.
        let peak = [
            c(1, 0.0, Some(0.62)),
            c(2, 0.0, Some(0.2)),
            c(3, 0.0, Some(0.22)),
            c(4, 0.0, Some(0.18)),
        ];
        let r = fuse(&peak, 0, &w, 4);
        let shown = relevant(r.iter().map(|h| (h.2.relevance, false)), &w);
        assert_eq!(shown, [true, false, false, false]);
        assert_eq!(r[0].0, 1);
        let flat = [
            c(1, 0.0, Some(0.3)),
            c(2, 0.0, Some(0.28)),
            c(3, 0.0, Some(0.29)),
        ];
        let r = fuse(&flat, 0, &w, 3);
        assert!(!relevant(r.iter().map(|h| (h.2.relevance, false)), &w).contains(&true));
        // Without a model the share of the question matched decides.
        let lexical = [c(1, 5.0, None), c(2, 0.5, None)];
        let r = fuse(&lexical, 0, &w, 2);
        assert_eq!((r[0].2.relevance, r[1].2.relevance), (0.5, 0.05));
        // A turn is weighted by `turn_*`, and by its speaker when named.
        let turn = Candidate {
            turn: true,
            by_named: true,
            ..c(1, 10.0, Some(0.0))
        };
        let r = fuse(&[turn], 0, &Weights { recency: 0.0, ..w }, 1);
        assert!(
            (r[0].1 - (w.turn_lexical + w.speaker)).abs() < 1e-6,
            "{r:?}"
        );
        // A turn that asks loses `question`; its sitting's share of the
        // question adds `sitting` in proportion; neither counts for notes.
        let asking = Candidate {
            asks: true,
            sitting: 0.5,
            ..turn
        };
        let r = fuse(&[asking], 0, &Weights { recency: 0.0, ..w }, 1);
        let want = w.turn_lexical + w.speaker - w.question + 0.5 * w.sitting;
        assert!((r[0].1 - want).abs() < 1e-6, "{r:?}");
        let note = Candidate {
            turn: false,
            by_named: false,
            ..asking
        };
        let r = fuse(&[note], 0, &Weights { recency: 0.0, ..w }, 1);
        assert!((r[0].1 - w.lexical).abs() < 1e-6, "{r:?}");
    }
}
