//! The prompts, the input budget and the check of an answer's citations.
//!
//! Tokens are counted with tiktoken's o200k encoding, loaded once per
//! process ([`tokens`]). Providers other than OpenAI count a little
//! differently; the budget is an estimate and the actual counts come back in
//! each answer's `usage`.
//!
//! The budget holds for every request of a summary, not only the first: the
//! notes get what is left of `max_input_tokens` after the longest request
//! template (with three passes the refine request also carries the draft and
//! the critique, each at most `max_output_tokens`).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::sync::LazyLock;

use regex::Regex;

use super::{Request, SourceNote};

/// Tokens of `text` in the o200k encoding (loaded on first use).
pub fn tokens(text: &str) -> usize {
    tiktoken_rs::o200k_base_singleton()
        .encode_ordinary(text)
        .len()
}

/// Per-message framing the chat formats add (OpenAI's rule of thumb).
const PER_MESSAGE: usize = 4;
const PER_REQUEST: usize = 3;

/// One request to a provider: a system prompt and one user message.
#[derive(Debug, Clone)]
pub struct Prompt {
    pub system: String,
    pub user: String,
}

impl Prompt {
    /// The estimated input tokens of this request.
    pub fn tokens(&self) -> usize {
        tokens(&self.system) + tokens(&self.user) + 2 * PER_MESSAGE + PER_REQUEST
    }
}

/// Which request of a summary.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pass {
    Draft,
    Critique,
    Refine,
    /// A refine again, after the answer failed the citation check.
    Repair,
}

impl Pass {
    pub fn name(self) -> &'static str {
        match self {
            Pass::Draft => "draft",
            Pass::Critique => "critique",
            Pass::Refine => "refine",
            Pass::Repair => "repair",
        }
    }
}

/// The notes chosen for the prompt and what the prompts share.
#[derive(Debug, Clone)]
pub struct Material {
    /// The notes block, chronological.
    pub notes: String,
    /// Ids of the notes in the block: the only ids an answer may cite.
    pub ids: BTreeSet<u64>,
    pub left_out: usize,
    system: String,
    header: String,
}

fn language(lang: &str) -> &'static str {
    match lang {
        "de" => "German",
        _ => "English",
    }
}

fn period_words(period: &str) -> (&'static str, usize) {
    match period {
        "hour" => ("hourly", 80),
        "week" => ("weekly", 350),
        _ => ("daily", 200),
    }
}

fn fmt_ms(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

fn summary_system(req: &Request, max_output: usize) -> String {
    let (adj, words) = period_words(&req.period);
    // Words must fit the answer cap (German runs ~1.7 tokens a word).
    let words = words.min(max_output * 10 / 17).max(20);
    format!(
        "You write the {adj} summary of one person's own notes, for their digest. \
         Use only what the notes say: no advice, no guesses, nothing from outside them. \
         After every statement cite the notes it comes from by id, like (#12) or (#12, #15); \
         cite only ids from the list. \
         Plain text only: no Markdown, no headings; short lines, each starting with \"- \". \
         First what is urgent (priority), what was decided and what is still to do, \
         then the main themes. \
         Write in {lang}, at most about {words} words. Answer with the summary alone.",
        lang = language(&req.lang),
    )
}

const CRITIQUE_SYSTEM: &str = "You check a draft summary of a person's notes against those notes. \
     List, briefly, every statement the notes do not support, every citation that points at the \
     wrong note or at an id that is not in the list, and anything important that is missing \
     (priorities, decisions, open to-dos). If there is nothing to fix, answer exactly: OK";

/// Starts the critique request's system prompt.
pub const CRITIQUE_MARK: &str = "You check a draft summary";

/// Marks the refine request ("Review of the draft:") and the repair request
/// ("cannot be used:"); tests recognise the passes by them.
pub const REVIEW_MARK: &str = "Review of the draft:";
pub const REPAIR_MARK: &str = "cannot be used:";

fn header(req: &Request, given: usize, left_out: usize) -> String {
    let mut h = format!(
        "Notes from {} to {} (UTC), {} of them",
        fmt_ms(req.from_ms),
        fmt_ms(req.to_ms),
        given
    );
    if left_out > 0 {
        let _ = write!(
            h,
            "; {left_out} more notes of this period were left out for length: \
             do not guess about them"
        );
    }
    h.push_str(".\n\n");
    h
}

fn note_block(n: &SourceNote, text: &str) -> String {
    let mut tags = Vec::new();
    if n.priority {
        tags.push("priority");
    }
    if n.decision {
        tags.push("decision");
    }
    if n.todo {
        tags.push("to-do");
    }
    let tags = if tags.is_empty() {
        String::new()
    } else {
        format!(" [{}]", tags.join(", "))
    };
    format!("#{} ({}){tags}\n{}\n\n", n.id, fmt_ms(n.at_ms), text.trim())
}

/// Rank: priorities, decisions, to-dos, then feedback score, then the newest.
pub fn rank(notes: &[SourceNote]) -> Vec<&SourceNote> {
    let tier = |n: &SourceNote| {
        if n.priority {
            0
        } else if n.decision {
            1
        } else if n.todo {
            2
        } else {
            3
        }
    };
    let mut v: Vec<&SourceNote> = notes.iter().collect();
    v.sort_by(|a, b| {
        tier(a)
            .cmp(&tier(b))
            .then(b.score.cmp(&a.score))
            .then(b.at_ms.cmp(&a.at_ms))
            .then(b.id.cmp(&a.id))
    });
    v
}

/// Cuts `text` to at most `max` tokens (at a character boundary, with "…").
pub fn clip(text: &str, max: usize) -> String {
    let n = tokens(text);
    if n <= max {
        return text.to_owned();
    }
    let chars: Vec<char> = text.chars().collect();
    let mut keep = chars.len() * max / n.max(1);
    loop {
        let s: String = chars[..keep].iter().collect::<String>() + "…";
        if tokens(&s) <= max || keep == 0 {
            return s;
        }
        keep = keep * 9 / 10;
    }
}

/// Chooses the notes that fit `max_input` and builds the shared material.
pub fn material(
    req: &Request,
    passes: u8,
    max_input: usize,
    max_output: usize,
) -> Option<Material> {
    let system = summary_system(req, max_output);
    // The largest request without notes: the header with the longest
    // left-out clause, the longest instructions, and with three passes the
    // draft and critique (or the rejected answer) it carries.
    let probe = header(req, 999_999, 999_999);
    let empty = Material {
        notes: String::new(),
        ids: BTreeSet::new(),
        left_out: 0,
        system: system.clone(),
        header: probe,
    };
    let fixed = [Pass::Draft, Pass::Critique, Pass::Refine, Pass::Repair]
        .into_iter()
        .filter(|p| passes == 3 || *p == Pass::Draft)
        .map(|p| empty.prompt(p, "", "", &[]).tokens())
        .max()
        .unwrap_or(0);
    let carried = if passes == 3 { 2 * max_output } else { 0 };
    // 5% slack: the answers are capped in the provider's tokens, not ours.
    let room = (max_input * 95 / 100).checked_sub(fixed + carried + 100)?;
    let per_note = (room / 4).max(64);
    let mut chosen: Vec<(&SourceNote, String)> = Vec::new();
    let mut used = 0;
    for n in rank(&req.notes) {
        let block = note_block(n, &clip(&n.text, per_note));
        let t = tokens(&block);
        if used + t <= room {
            used += t;
            chosen.push((n, block));
        }
    }
    if chosen.is_empty() {
        return None;
    }
    chosen.sort_by_key(|(n, _)| (n.at_ms, n.id));
    let left_out = req.notes.len() - chosen.len();
    Some(Material {
        ids: chosen.iter().map(|(n, _)| n.id).collect(),
        notes: chosen.into_iter().map(|(_, b)| b).collect(),
        left_out,
        header: header(req, req.notes.len() - left_out, left_out),
        system,
    })
}

impl Material {
    /// The request of `pass`. `draft` is the draft (critique, refine) or the
    /// rejected answer (repair); `critique` the review (refine);
    /// `problems` what the automatic check found.
    pub fn prompt(&self, pass: Pass, draft: &str, critique: &str, problems: &[String]) -> Prompt {
        let notes = format!("{}{}", self.header, self.notes);
        let checks = if problems.is_empty() {
            String::new()
        } else {
            format!("\n\nAutomatic check: {}.", problems.join("; "))
        };
        match pass {
            Pass::Draft => Prompt {
                system: self.system.clone(),
                user: format!("{notes}Write the summary."),
            },
            Pass::Critique => Prompt {
                system: CRITIQUE_SYSTEM.to_owned(),
                user: format!("{notes}Draft:\n{draft}{checks}"),
            },
            Pass::Refine => Prompt {
                system: self.system.clone(),
                user: format!(
                    "{notes}Draft:\n{draft}\n\n{REVIEW_MARK}\n{critique}{checks}\n\n\
                     Write the final summary: fix what the review found, keep only what the \
                     notes support, and cite the notes of every statement."
                ),
            },
            Pass::Repair => Prompt {
                system: self.system.clone(),
                user: format!(
                    "{notes}Your summary:\n{draft}\n\nIt {REPAIR_MARK} {}. \
                     Write it again, citing only ids of the notes above.",
                    problems.join("; ")
                ),
            },
        }
    }
}

static CITE: LazyLock<Regex> = LazyLock::new(|| Regex::new(r"#(\d{1,19})\b").expect("regex"));

/// The ids an answer cites (`#12`).
pub fn citations(text: &str) -> BTreeSet<u64> {
    CITE.captures_iter(text)
        .filter_map(|c| c[1].parse().ok())
        .collect()
}

/// Why an answer cannot be used, said so that the model can fix it.
pub fn check(text: &str, ids: &BTreeSet<u64>) -> Result<(), String> {
    if text.trim().is_empty() {
        return Err("the answer is empty".into());
    }
    let cited = citations(text);
    // At most ten, so that the problem stays short in the next prompt.
    let unknown: Vec<String> = cited
        .iter()
        .filter(|id| !ids.contains(id))
        .take(10)
        .map(|id| format!("#{id}"))
        .collect();
    if !unknown.is_empty() {
        return Err(format!(
            "it cites {}, which {} not one of the notes",
            unknown.join(", "),
            if unknown.len() == 1 { "is" } else { "are" }
        ));
    }
    if cited.is_empty() {
        return Err("it cites no note: every statement needs the id of its note".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(id: u64, at: i64, text: &str) -> SourceNote {
        SourceNote {
            id,
            at_ms: at,
            text: text.into(),
            priority: false,
            decision: false,
            todo: false,
            score: 0,
        }
    }

    fn req(notes: Vec<SourceNote>) -> Request {
        Request {
            chat_id: 1,
            period: "day".into(),
            from_ms: 0,
            to_ms: 86_400_000,
            lang: "de".into(),
            notes,
        }
    }

    #[test]
    fn ranking_puts_flags_then_score_then_recency_first() {
        let mut v = vec![note(1, 10, "a"), note(2, 20, "b"), note(3, 5, "c")];
        v.push(SourceNote {
            todo: true,
            ..note(4, 1, "d")
        });
        v.push(SourceNote {
            priority: true,
            ..note(5, 1, "e")
        });
        v.push(SourceNote {
            decision: true,
            ..note(6, 1, "f")
        });
        v[2].score = 3;
        let ids: Vec<u64> = rank(&v).iter().map(|n| n.id).collect();
        assert_eq!(ids, vec![5, 6, 4, 3, 2, 1]);
    }

    #[test]
    fn citations_are_checked_against_the_given_ids() {
        let ids: BTreeSet<u64> = [3, 12].into();
        assert_eq!(citations("- a (#12, #3) b #7x #99"), [3, 12, 99].into());
        assert!(check("- dentist (#12)", &ids).is_ok());
        assert!(check("  ", &ids).unwrap_err().contains("empty"));
        assert!(check("- no cite", &ids)
            .unwrap_err()
            .contains("cites no note"));
        let e = check("- x (#12) (#99)", &ids).unwrap_err();
        assert!(e.contains("#99") && !e.contains("#12"), "{e}");
    }

    #[test]
    fn every_request_fits_and_the_cut_is_said() {
        let long = "word ".repeat(300);
        let mut notes: Vec<SourceNote> = (1..=60).map(|i| note(i, i as i64, &long)).collect();
        notes[59].priority = true;
        let r = req(notes);
        let m = material(&r, 3, 3000, 400).unwrap();
        assert!(m.left_out > 0 && m.left_out < 60, "{}", m.left_out);
        assert!(m.ids.contains(&60), "the priority note comes first");
        assert!(m.header.contains(&format!("{} more notes", m.left_out)));
        let draft = "x ".repeat(400);
        let draft = clip(&draft, 400);
        for p in [Pass::Draft, Pass::Critique, Pass::Refine, Pass::Repair] {
            let t = m.prompt(p, &draft, &draft, &["a problem".into()]).tokens();
            assert!(t <= 3000, "{p:?}: {t}");
        }
        assert!(m.system.contains("German"));
        // Too small a budget for even one note: nothing to send.
        assert!(material(&r, 3, 500, 400).is_none());
    }

    #[test]
    fn a_huge_note_is_clipped_not_dropped() {
        let r = req(vec![note(1, 1, &"lorem ipsum ".repeat(5000))]);
        let m = material(&r, 1, 2000, 300).unwrap();
        assert_eq!((m.left_out, m.ids.len()), (0, 1));
        assert!(m.prompt(Pass::Draft, "", "", &[]).tokens() <= 2000);
        assert!(m.notes.contains('…'));
    }
}
