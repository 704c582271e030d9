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

/// Fusion weights, from config.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Weights {
    pub lexical: f32,
    pub vector: f32,
    pub recency: f32,
    pub recency_half_life_days: f32,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            lexical: 0.45,
            vector: 0.55,
            recency: 0.05,
            recency_half_life_days: 180.0,
        }
    }
}

impl Weights {
    /// The three rankings an evaluation compares: lexical only, vector
    /// only (both without recency) and these weights.
    pub fn ablations(self) -> [(&'static str, Weights); 3] {
        let only = |lexical, vector| Weights {
            lexical,
            vector,
            recency: 0.0,
            ..self
        };
        [
            ("lexical", only(self.lexical, 0.0)),
            ("vector", only(0.0, self.vector)),
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
}

#[derive(Debug, Clone, Copy)]
pub struct Candidate {
    pub id: u64,
    pub bm25: f32,
    /// `bm25` normalised to [0, 1] (share of the query matched).
    pub lexical: f32,
    pub cosine: Option<f32>,
    pub created_at: i64,
}

/// Ranks candidates; returns the best `k` as (id, score, parts).
pub fn fuse(cands: &[Candidate], now: i64, w: &Weights, k: usize) -> Vec<(u64, f32, Parts)> {
    let (vmin, vmax) = min_max(cands.iter().filter_map(|c| c.cosine));
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
            let lex = c.lexical.clamp(0.0, 1.0);
            let vec = c.cosine.map_or(0.0, |v| norm(v, vmin, vmax));
            let age = (now - c.created_at).max(0) as f64;
            let rec = 0.5f64.powf(age / half_life_ms) as f32;
            let parts = Parts {
                lexical: w.lexical * lex,
                vector: w.vector * vec,
                recency: w.recency * rec,
                bm25: c.bm25,
                cosine: c.cosine.unwrap_or(0.0),
                feedback: 0.0,
            };
            (c.id, parts.lexical + parts.vector + parts.recency, parts)
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
            created_at: 0,
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
        };
        let new = Candidate {
            id: 2,
            bm25: 3.0,
            lexical: 0.3,
            cosine: Some(0.6),
            created_at: 700 * day,
        };
        let r = fuse(&[old, new], 700 * day, &w, 2);
        assert_eq!(r[0].0, 2);
        let strong_old = Candidate {
            id: 1,
            bm25: 9.0,
            lexical: 0.9,
            cosine: Some(0.9),
            created_at: 0,
        };
        let r = fuse(&[strong_old, new], 700 * day, &w, 2);
        assert_eq!(r[0].0, 1, "relevance beats recency");
    }
}
