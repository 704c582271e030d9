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
    pub hits: Vec<(f32, f32, f32, bool)>,
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
        }
    }
}

/// At `floor`, with `rel` giving each of the first [`SHOWN`] hits its
/// relevance: (share of answerable questions with a target among them whose
/// first such target is above the floor — "kept", goal ≥ 0.97; share of
/// unanswerable questions with none above it — "nothing found", goal ≥ 0.8).
pub fn shares_by(probes: &[Probe], floor: f32, rel: &dyn Fn(&Probe, usize) -> f32) -> (f64, f64) {
    let (mut hit5, mut kept, mut none, mut nothing) = (0, 0, 0, 0);
    for p in probes {
        let top = p.hits.len().min(SHOWN);
        if p.answerable {
            if let Some(i) = (0..top).find(|&i| p.hits[i].3) {
                hit5 += 1;
                if rel(p, i) >= floor {
                    kept += 1;
                }
            }
        } else {
            none += 1;
            if (0..top).all(|i| rel(p, i) < floor) {
                nothing += 1;
            }
        }
    }
    (
        kept as f64 / f64::from(hit5.max(1)),
        nothing as f64 / f64::from(none.max(1)),
    )
}

/// [`shares_by`] mnemo's own relevance.
pub fn shares(probes: &[Probe], floor: f32) -> (f64, f64) {
    shares_by(probes, floor, &|p, i| p.hits[i].0)
}

/// The kinds of the answerable questions (those with targets), sorted.
pub fn kinds<'a>(qs: impl Iterator<Item = (&'a str, &'a Vec<String>)>) -> Vec<&'a str> {
    let mut kinds: Vec<&str> = qs.filter(|q| !q.1.is_empty()).map(|q| q.0).collect();
    kinds.sort_unstable();
    kinds.dedup();
    kinds
}

/// One printed line for `floor`.
pub fn line(probes: &[Probe], floor: f32) -> String {
    let (kept, nothing) = shares(probes, floor);
    let n = probes.iter().filter(|p| !p.answerable).count();
    format!(
        "floor {floor:.3}: answer kept (of hit@5) {kept:.3}   unanswerable ({n}) → nothing found {nothing:.3}"
    )
}

/// Writes both halves' probes as JSON to `MNEMO_EVAL_DUMP` when it is set
/// (for calibrating outside the test).
pub fn dump(a: &[Probe], b: &[Probe]) {
    let Ok(path) = std::env::var("MNEMO_EVAL_DUMP") else {
        return;
    };
    let half = |ps: &[Probe]| {
        ps.iter()
            .map(|p| serde_json::json!({"answerable": p.answerable, "hits": p.hits}))
            .collect::<Vec<_>>()
    };
    let v = serde_json::json!({"A": half(a), "B": half(b)});
    std::fs::write(path, v.to_string()).unwrap();
}

/// Calibration (`MNEMO_EVAL_GRID=1`): relevance formulas and floors chosen on
/// half A, each printed with half B. `abs`: α·lexical share + (1 − α)·cosine;
/// `z`: α·lexical share + (1 − α)·(cosine − mean) / sd over the question's
/// [`ASKED`] candidates.
pub fn sweep(a: &[Probe], b: &[Probe]) {
    let stats = |p: &Probe| {
        let n = p.hits.len().max(1) as f32;
        let mean = p.hits.iter().map(|h| h.2).sum::<f32>() / n;
        let var = p.hits.iter().map(|h| (h.2 - mean).powi(2)).sum::<f32>() / n;
        (mean, var.sqrt().max(1e-3))
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
                let (ka, na) = shares_by(a, f, rel);
                let (kb, nb) = shares_by(b, f, rel);
                let key = if ka >= 0.97 { 1.0 + na } else { ka + na - 1.0 };
                rows.push((key, format!("{name} α {alpha:.1} floor {f:.4}: A kept {ka:.3} nothing {na:.3} | B kept {kb:.3} nothing {nb:.3}")));
            }
        }
    }
    rows.sort_by(|x, y| y.0.total_cmp(&x.0));
    for (_, r) in rows.iter().take(12) {
        println!("  {r}");
    }
    // mnemo's own relevance at a range of floors (`recall.relevance_floor`).
    for fi in 0..=16 {
        let f = fi as f32 * 0.01;
        let ((ka, na), (kb, nb)) = (shares(a, f), shares(b, f));
        println!(
            "  mnemo floor {f:.2}: A kept {ka:.3} nothing {na:.3} | B kept {kb:.3} nothing {nb:.3}"
        );
    }
}
