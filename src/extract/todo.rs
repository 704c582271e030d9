//! To-dos: markers, cues, and the checks that tell a task from a figure of
//! speech.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{after, before, is_question};
use super::{re, NEG_NEAR};

// To-dos.
regex!(
    TODO_MARKER =
        r"(?i)^(?:todo|to-do|to\s+do|task|reminder|aufgabe|erinnerung)\s*[:–-]\s*(?P<rest>.*)$"
);
regex!(TODO_BARE = r"(?i)^(?:todo|to-do)\s+(?P<rest>.+)$");
regex!(
    TODO_CUE = r"(?i)(?P<need>\bneeds?\s+to\b)|(?P<have>\b(?:have|has)\s+to\b)|(?P<must>\bmust\s)|(?P<remember>\bremember\s+to\b)|(?P<forget>\b(?:don[’']?t|do\s+not)\s+forget\b)|(?P<muss>\bm(?:uss|uß|usst|üssen|üsst|üsste|üssten)\s)|(?P<reminder>\b(?:nicht\s+vergessen|vergiss\s+nicht|vergesst\s+nicht|denk(?:e|t)?\s+(?:dran|daran))\b)|(?P<verb>\b(?:erledigen|kaufen|besorgen|anrufen)\b)"
);
regex!(IMPERATIVE = r"(?i)^(?:please\s+|pls\s+|bitte\s+)?(?:call|phone|buy)\s+\S");
regex!(CALL_IT = r"(?i)^(?:please\s+|pls\s+)?call\s+(?:it|me\s+crazy)\b");
regex!(MUST_FIGURE = r"(?i)^\s*(?:say|admit|confess|agree|have\b|[’']ve\b|not\b|never\b|be\b)");
regex!(
    MUST_BE_TASK = r"(?i)^\s*be\s+(?:done|finished|fixed|sent|paid|submitted|ready|completed|renewed|signed|booked|filed|returned|cancell?ed)\b"
);
regex!(HAVE_FIGURE = r"(?i)^\s*(?:(?:say|admit|confess|agree|laugh|wonder)\b|see\W*$)");
regex!(REMEMBER_AFTER = r"(?i)^\s*this\s+day\b");
regex!(MUSS_FIGURE = r"(?i)^\s*(?:[\p{L}]+\s+){0,2}?(?:sagen|zugeben|gestehen)\b|\bnicht\b");
regex!(SPECULATIVE_SEIN = r"(?i)(?:^|\s)(?P<w>\p{L}+)\s+(?:gewesen\s+)?sein\W*$");

/// The to-do in one sentence, if any.
pub(super) fn todo_in(s: &str) -> Option<&str> {
    if let Some(c) = TODO_MARKER.captures(s).or_else(|| TODO_BARE.captures(s)) {
        let rest = c.name("rest").map_or("", |m| m.as_str());
        return (!rest.trim().is_empty()).then_some(rest);
    }
    if is_question(s) || s.split_whitespace().nth(1).is_none() {
        return None;
    }
    if IMPERATIVE.is_match(s) && !CALL_IT.is_match(s) {
        return Some(s);
    }
    let tail = before(s, s.len());
    for c in TODO_CUE.captures_iter(s) {
        let Some(m) = c.get(0) else { continue };
        let (pre, post) = (before(s, m.start()), after(s, m.end()));
        let ok = if c.name("need").is_some() || c.name("verb").is_some() {
            !NEG_NEAR.is_match(pre)
        } else if c.name("must").is_some() {
            !NEG_NEAR.is_match(pre) && (!MUST_FIGURE.is_match(post) || MUST_BE_TASK.is_match(post))
        } else if c.name("have").is_some() {
            !NEG_NEAR.is_match(pre) && !HAVE_FIGURE.is_match(post)
        } else if c.name("muss").is_some() {
            !MUSS_FIGURE.is_match(post) && !speculative(tail)
        } else if c.name("remember").is_some() {
            !REMEMBER_AFTER.is_match(post)
        } else {
            // don't forget, nicht vergessen, denk dran
            true
        };
        if ok {
            return Some(s);
        }
    }
    None
}

/// "Das muss schön sein": a clause ending in "sein" after "muss" is a
/// guess, unless the word before says something gets done.
fn speculative(tail: &str) -> bool {
    const TASKLIKE: [&str; 9] = [
        "fertig",
        "erledigt",
        "bezahlt",
        "bereit",
        "da",
        "abgeschickt",
        "eingereicht",
        "unterschrieben",
        "gebucht",
    ];
    match SPECULATIVE_SEIN.captures(tail) {
        Some(c) => {
            let w = c.name("w").map_or("", |m| m.as_str()).to_lowercase();
            !TASKLIKE.contains(&w.as_str())
        }
        None => false,
    }
}
