//! The relevance floor on an eval set (shared by tests/recall_eval.rs and
//! tests/conversation_eval.rs): how many answerable questions keep their
//! answer above the floor, and how many unanswerable ones are answered
//! "nothing found".

use mnemo::core::Hit;
use mnemo::memory::recall::Weights;

/// Hits of one question looked at for the floor (the first 5, as /recall
/// shows them).
pub const SHOWN: usize = 5;
/// Hits asked for, so calibration can see the spread of the candidates.
pub const ASKED: usize = 50;

/// One question's hits: (relevance as mnemo computes it, lexical share,
/// cosine, is a target), best first.
pub struct Probe {
    pub answerable: bool,
    /// An unanswerable question about something the set does talk about,
    /// asking a detail it never gives ("what is the landlord's name?" where
    /// the landlord is mentioned, never named): set `"subkind":
    /// "near_miss"`. Reported apart from questions on absent topics.
    pub near_miss: bool,
    pub hits: Vec<(f32, f32, f32, bool)>,
    /// Each hit's `relevant` as mnemo decided it.
    pub relevant: Vec<bool>,
    /// Each hit's fused score and parts, for [`dump`].
    pub detail: Vec<serde_json::Value>,
}

impl Probe {
    pub fn new(
        hits: &[Hit],
        w: &Weights,
        answerable: bool,
        is_target: impl Fn(&Hit) -> bool,
    ) -> Probe {
        Probe {
            answerable,
            near_miss: false,
            hits: hits
                .iter()
                .map(|h| {
                    let wl = if h.note.author.is_some() {
                        w.turn_lexical
                    } else {
                        w.lexical
                    };
                    (
                        h.parts.relevance + h.parts.feedback,
                        h.parts.lexical / wl.max(1e-6),
                        h.parts.cosine,
                        is_target(h),
                    )
                })
                .collect(),
            relevant: hits.iter().map(|h| h.relevant).collect(),
            detail: hits
                .iter()
                .map(|h| serde_json::json!({"score": h.score, "parts": h.parts, "turn": h.note.author.is_some(), "text": h.note.indexed_text()}))
                .collect(),
        }
    }

    /// Marks an unanswerable question as a near miss ([`Probe::near_miss`])
    /// when its set says so. Every unanswerable question must say which
    /// kind it is (`"absent"` or `"near_miss"`), and no answerable one: a
    /// typo must not move a question into the other share.
    pub fn with_subkind(mut self, subkind: Option<&str>) -> Probe {
        match (self.answerable, subkind) {
            (true, None) | (false, Some("absent")) => {}
            (false, Some("near_miss")) => self.near_miss = true,
            (answerable, s) => panic!("subkind {s:?} on a question answerable={answerable}"),
        }
        self
    }
}

/// With `relevant(p, i)` telling whether hit `i` of question `p` is shown
/// as relevant: (share of answerable questions with a target among the
/// first [`SHOWN`] hits whose first such target is relevant — "kept", goal
/// ≥ 0.97; share of unanswerable questions with none of them relevant —
/// "nothing found", goal ≥ 0.8).
pub fn shares_with(probes: &[Probe], relevant: &dyn Fn(&Probe, usize) -> bool) -> (f64, f64) {
    let (mut hit5, mut kept, mut none, mut nothing) = (0, 0, 0, 0);
    for p in probes {
        let top = p.hits.len().min(SHOWN);
        if p.answerable {
            if let Some(i) = (0..top).find(|&i| p.hits[i].3) {
                hit5 += 1;
                if relevant(p, i) {
                    kept += 1;
                }
            }
        } else {
            none += 1;
            if !(0..top).any(|i| relevant(p, i)) {
                nothing += 1;
            }
        }
    }
    (
        kept as f64 / f64::from(hit5.max(1)),
        nothing as f64 / f64::from(none.max(1)),
    )
}

/// [`shares_with`] mnemo's rule on the relevance `rel` gives each hit: a
/// question is answered when one of its first [`SHOWN`] hits reaches
/// `floor`; then a hit is relevant from `beside` on.
pub fn shares_by(
    probes: &[Probe],
    floor: f32,
    beside: f32,
    rel: &dyn Fn(&Probe, usize) -> f32,
) -> (f64, f64) {
    shares_with(probes, &|p, i| {
        let top = p.hits.len().min(SHOWN);
        (0..top).any(|j| rel(p, j) >= floor) && rel(p, i) >= beside.min(floor)
    })
}

/// [`shares_with`] the `relevant` mnemo gave each hit.
pub fn shares(probes: &[Probe]) -> (f64, f64) {
    shares_with(probes, &|p, i| p.relevant[i])
}

/// The kinds of the answerable questions (those with targets), sorted.
pub fn kinds<'a>(qs: impl Iterator<Item = (&'a str, &'a Vec<String>)>) -> Vec<&'a str> {
    let mut kinds: Vec<&str> = qs.filter(|q| !q.1.is_empty()).map(|q| q.0).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// One printed line for mnemo's own decisions at the floors of `w`
/// (`reranked`: a cross-encoder was attached), with the matches shown per
/// answered question (of the first [`SHOWN`]).
pub fn line(probes: &[Probe], w: &Weights, reranked: bool) -> String {
    let (kept, nothing) = shares(probes);
    let n = probes.iter().filter(|p| !p.answerable).count();
    let (absent, near) = split_nothing(probes);
    let split = if near.1 > 0 {
        format!(
            " (topic absent {:.3} of {}, near miss {:.3} of {})",
            absent.0, absent.1, near.0, near.1
        )
    } else {
        String::new()
    };
    let shown: Vec<usize> = probes
        .iter()
        .map(|p| p.relevant.iter().take(SHOWN).filter(|r| **r).count())
        .filter(|&c| c > 0)
        .collect();
    let per = shown.iter().sum::<usize>() as f64 / shown.len().max(1) as f64;
    format!(
        "floor {:.3} (beside {:.3}{}): answer kept (of hit@5) {kept:.3}   unanswerable ({n}) → nothing found {nothing:.3}{split}   matches shown per answered question {per:.2}",
        w.floor,
        w.beside_floor,
        if reranked && w.rerank > 0.0 {
            format!(
                "; turns + {}·(cross-encoder − {}), beside {:.3}",
                w.rerank, w.rerank_offset, w.rerank_beside
            )
        } else {
            String::new()
        },
    )
}

/// "Nothing found" by kind of unanswerable question: (share, count) for
/// questions on an absent topic, then for near misses.
pub fn split_nothing(probes: &[Probe]) -> ((f64, usize), (f64, usize)) {
    let part = |near: bool| {
        let ps: Vec<&Probe> = probes
            .iter()
            .filter(|p| !p.answerable && p.near_miss == near)
            .collect();
        let nothing = ps
            .iter()
            .filter(|p| !p.relevant.iter().take(SHOWN).any(|r| *r))
            .count();
        (nothing as f64 / ps.len().max(1) as f64, ps.len())
    };
    (part(false), part(true))
}

/// Writes both halves' probes as JSON to `MNEMO_EVAL_DUMP` when it is set
/// (for calibrating outside the test).
pub fn dump(a: &[Probe], b: &[Probe]) {
    let Ok(path) = std::env::var("MNEMO_EVAL_DUMP") else {
        return;
    };
    let half = |ps: &[Probe]| {
        ps.iter()
            .map(|p| serde_json::json!({"answerable": p.answerable, "near_miss": p.near_miss, "hits": p.hits, "detail": p.detail}))
            .collect::<Vec<_>>()
    };
    let v = serde_json::json!({"A": half(a), "B": half(b)});
    std::fs::write(path, v.to_string()).unwrap();
}

/// Calibration (`MNEMO_EVAL_GRID=floor`): relevance formulas and floors
/// chosen on half A, each printed with half B. `abs`: α·lexical share +
/// (1 − α)·cosine; `z`: α·lexical share + (1 − α)·(cosine − mean) / sd over
/// the question's [`ASKED`] candidates (both one cut per hit); then mnemo's
/// own relevance by floor and beside floor. A setting is chosen by: answers
/// kept on A ≥ 0.97 first, then "nothing found" on A, then kept on A, then
/// the higher beside floor (fewer hits shown).
pub fn sweep(a: &[Probe], b: &[Probe]) {
    let stats = |p: &Probe| {
        let n = p.hits.len().max(1) as f32;
        let mean = p.hits.iter().map(|h| h.2).sum::<f32>() / n;
        let var = p.hits.iter().map(|h| (h.2 - mean).powi(2)).sum::<f32>() / n;
        (mean, var.sqrt().max(1e-3))
    };
    let key = |(ka, na): (f64, f64)| {
        if ka >= 0.97 {
            2.0 + na + ka / 10.0
        } else {
            ka + na - 1.0
        }
    };
    let row = |name: String, (ka, na): (f64, f64), (kb, nb): (f64, f64)| {
        format!("{name}: A kept {ka:.3} nothing {na:.3} | B kept {kb:.3} nothing {nb:.3}")
    };
    let mut rows = Vec::new();
    for ai in 0..=10 {
        let alpha = ai as f32 / 10.0;
        let abs = move |p: &Probe, i: usize| alpha * p.hits[i].1 + (1.0 - alpha) * p.hits[i].2;
        let z = move |p: &Probe, i: usize| {
            let (m, sd) = stats(p);
            alpha * p.hits[i].1 + (1.0 - alpha) * (p.hits[i].2 - m) / sd
        };
        for fi in 0..=60 {
            for (name, f, rel) in [
                (
                    "abs",
                    fi as f32 * 0.0125,
                    &abs as &dyn Fn(&Probe, usize) -> f32,
                ),
                ("z", fi as f32 * 0.075, &z),
            ] {
                let (sa, sb) = (shares_by(a, f, f, rel), shares_by(b, f, f, rel));
                rows.push((
                    key(sa),
                    row(format!("{name} α {alpha:.1} floor {f:.4}"), sa, sb),
                ));
            }
        }
    }
    rows.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (_, r) in rows.iter().take(6) {
        println!("  {r}");
    }
    // mnemo's own relevance (`recall.relevance_floor`, `recall.beside_floor`),
    // one beside floor for every hit here — for turns the cross-encoder
    // scored mnemo uses `rerank_beside` (the line above this sweep).
    let own = |p: &Probe, i: usize| p.hits[i].0;
    let mut rows = Vec::new();
    for fi in -20..=40 {
        let f = fi as f32 * 0.005;
        let mut best: Option<(f64, String)> = None;
        for di in 0..=16 {
            let beside = f - di as f32 * 0.005;
            let (sa, sb) = (shares_by(a, f, beside, &own), shares_by(b, f, beside, &own));
            let k = key(sa) - f64::from(di) * 1e-6;
            let r = row(format!("mnemo floor {f:.3} beside {beside:.3}"), sa, sb);
            rows.push((k, r.clone()));
            if best.as_ref().is_none_or(|b| k > b.0) {
                best = Some((k, r));
            }
        }
        println!("  {}", best.expect("a row").1);
    }
    rows.sort_by(|x, y| y.0.total_cmp(&x.0));
    println!("  chosen on A: {}", rows[0].1);
}
