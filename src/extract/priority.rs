//! Priority: urgency, deadlines, importance and explicit dates, the
//! strongest reason found winning.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{after, before};
use super::{re, Priority, PriorityReason, NEG_NEAR};

/// Month names and abbreviations, English and German.
const MONTH: &str = r"(?:jan(?:uary|uar)?|feb(?:ruary|ruar)?|mar(?:ch)?|märz|mär|mrz|apr(?:il)?|may|mai|jun[ei]?|jul[yi]?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|okt(?:ober)?|nov(?:ember)?|dec(?:ember)?|dez(?:ember)?)";
const DAY: &str = r"(?:0?[1-9]|[12][0-9]|3[01])";
const WEEKDAY: &str = r"(?:mon(?:day)?|tue(?:s(?:day)?)?|wed(?:nesday)?|thu(?:rs(?:day)?)?|fri(?:day)?|sat(?:urday)?|sun(?:day)?|montag|dienstag|mittwoch|donnerstag|freitag|samstag|sonnabend|sonntag)";

// Priority.
regex!(URGENT = r"(?i)\b(?:urgent(?:ly)?|asap|dringend|dringlich|eilt|eilig)\b|\ba\.s\.a\.p\b|!!");
regex!(NOT_AFTER = r"(?i)^\s*(?:nicht|not)\b");
regex!(IMPORTANT = r"(?i)\b(?:important|wichtig|(?:high|top)\s+priority|hohe\s+priorit[äa]t)\b");
regex!(
    DEADLINE_WORD =
        r"(?i)\b(?:deadlines?|overdue|spätestens)\b|frist(?:en)?\b|\b(?:über)?fällig\w*|\bdue\b"
);
regex!(DUE_NOT = r"(?i)^\s*(?:to|diligence|course|process|respect|care)\b");
static BY: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b(?P<word>by|before|bis|vor)\s+(?:(?:this|next|the|end\s+of(?:\s+the)?|zum|zur|spätestens|kommenden?|nächsten?|diesen?|ende\s+der)\s+){{0,2}}(?:(?:{WEEKDAY}|tomorrow|tonight|today|noon|midnight|eod|eow|cob|week|month|morgen|übermorgen|heute\s+abend|mittag|ende|woche|monatsende|wochenende|\d{{1,2}}(?::\d{{2}})?\s*(?:am|pm|uhr))\b|\d{{4}}-\d{{2}}-\d{{2}}|{DAY}\.\s*(?:\d{{1,2}}\.|{MONTH}\b)|\d{{1,2}}/\d{{1,2}}|{MONTH}\.?\s+{DAY}\b)"
    ))
});
regex!(RANGE_BEFORE = r"(?i)\b(?:von|vom|ab|from)\s+\S+\s+$");
regex!(
    GREETING = r"(?i)^\W*(?:(?:tsch[üu]ss?|ciao|bye|gute\s+nacht|ok(?:ay)?|alles\s+klar|danke|super|dann|also|na\s+dann)\W+)*bis\s+(?:morgen|bald|später|dann|\p{L}+tag)\W*$"
);
regex!(DATE_ISO = r"\b(?:19|20)\d{2}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])\b");
regex!(
    DATE_DOT = r"\b(?P<d>0?[1-9]|[12]\d|3[01])\.(?P<m>0?[1-9]|1[0-2])\.(?P<y>(?:19|20)?\d{2}\b)?"
);
regex!(DATE_SLASH = r"\b(?P<a>\d{1,2})/(?P<b>\d{1,2})(?P<y>/(?:\d{4}|\d{2}))?\b");
static DATE_NAMED: LazyLock<Regex> = LazyLock::new(|| {
    re(&format!(
        r"(?i)\b{MONTH}\.?\s+{DAY}(?:st|nd|rd|th)?\b|\b{DAY}(?:st|nd|rd|th|\.)?\s*(?:of\s+)?{MONTH}\b"
    ))
});

/// Updates `best` with the strongest reason in sentence `s` that is stronger
/// than what `best` already holds.
pub(super) fn scan_priority(s: &str, best: &mut Option<Priority>) {
    let reasons = [
        PriorityReason::Urgent,
        PriorityReason::Deadline,
        PriorityReason::Important,
        PriorityReason::Date,
    ];
    for reason in reasons {
        if best.as_ref().is_some_and(|b| b.reason <= reason) {
            return;
        }
        let found = match reason {
            PriorityReason::Urgent => first_unnegated(&URGENT, s),
            PriorityReason::Important => first_unnegated(&IMPORTANT, s),
            PriorityReason::Deadline => deadline(s),
            PriorityReason::Date => date(s),
        };
        if let Some(cue) = found {
            *best = Some(Priority {
                reason,
                cue: cue.to_string(),
            });
            return;
        }
    }
}

/// The first match of `re` in `s` not negated before ("not urgent") or
/// after ("es eilt nicht").
fn first_unnegated<'a>(re: &Regex, s: &'a str) -> Option<&'a str> {
    re.find_iter(s)
        .find(|m| {
            !NEG_NEAR.is_match(before(s, m.start())) && !NOT_AFTER.is_match(after(s, m.end()))
        })
        .map(|m| m.as_str())
}

fn deadline(s: &str) -> Option<&str> {
    let word = DEADLINE_WORD.find_iter(s).find(|m| {
        let due_to = m.as_str().eq_ignore_ascii_case("due") && DUE_NOT.is_match(after(s, m.end()));
        !due_to && !NEG_NEAR.is_match(before(s, m.start()))
    });
    if let Some(m) = word {
        return Some(m.as_str());
    }
    if GREETING.is_match(s) {
        return None;
    }
    BY.captures_iter(s)
        .filter_map(|c| {
            let m = c.get(0)?;
            let bis = c
                .name("word")
                .is_some_and(|w| w.as_str().eq_ignore_ascii_case("bis"));
            let range = bis && RANGE_BEFORE.is_match(before(s, m.start()));
            (!range).then_some(m.as_str())
        })
        .next()
}

fn date(s: &str) -> Option<&str> {
    if let Some(m) = DATE_ISO.find(s) {
        return Some(m.as_str());
    }
    let dot = DATE_DOT.captures_iter(s).find_map(|c| {
        let m = c.get(0)?;
        let two_digits = c.name("d")?.len() == 2 || c.name("m")?.len() == 2;
        let followed_by_digit = s[m.end()..].starts_with(|ch: char| ch.is_ascii_digit());
        ((two_digits || c.name("y").is_some()) && !followed_by_digit).then_some(m.as_str())
    });
    if dot.is_some() {
        return dot;
    }
    let slash = DATE_SLASH.captures_iter(s).find_map(|c| {
        let m = c.get(0)?;
        let (a, b) = (c.name("a")?.as_str(), c.name("b")?.as_str());
        let (x, y): (u32, u32) = (a.parse().ok()?, b.parse().ok()?);
        let plausible = (1..=31).contains(&x) && (1..=31).contains(&y) && (x <= 12 || y <= 12);
        let two_digits = a.len() == 2 || b.len() == 2 || c.name("y").is_some();
        let rating = (y == 10 && x <= 10) || (x, y) == (24, 7);
        (plausible && two_digits && !rating).then_some(m.as_str())
    });
    if slash.is_some() {
        return slash;
    }
    DATE_NAMED.find(s).map(|m| m.as_str())
}
