//! Decisions: markers, cues, and the checks that tell a choice from company,
//! agreement with a person, or an assumption.

use std::sync::LazyLock;

use regex::Regex;

use super::text::{after, before, is_question};
use super::{re, NEG_FAR, NEG_NEAR};

// Decisions.
regex!(
    DECISION_MARKER =
        r"(?i)^(?:decision|decided|entscheidung|beschluss|beschlossen)\s*[:–-]\s*(?P<rest>.*)$"
);
regex!(
    DECISION_CUE = r"(?i)(?P<decided>\bdecided\b)|(?P<agreed>\bagreed\b)|(?P<going>\bgoing\s+with\b)|(?P<gowith>\b(?:will|[’']ll|let[’']?s|gonna|shall)\s+go\s+with\b)|(?P<settled>\bsettled\s+on\b)|(?P<de>\b(?:entschieden|beschlossen|geeinigt|festgelegt)\b)|(?P<nehmen>\b(?:wir\s+nehmen|nehmen\s+wir)\b)"
);
regex!(DECIDED_AFTER = r"(?i)^\s*(?:yet|whether|if)\b");
regex!(AGREED_AFTER = r"(?i)^\s*with\s+(?:me|you|him|her|them|us|that|this|it|everything)\b");
regex!(
    GOING_AFTER = r"(?i)^\s*(?:me|you|him|her|them|us|my|his|their|our|friends?|family|the\s+(?:kids|family|flow))\b"
);
regex!(NEHMEN_AFTER = r"(?i)^\s*(?:an\s*(?:,|dass\b)|teil\b|ab\b|zu\b|nicht\b|kein\w*)");
regex!(TEIL_AT_END = r"(?i)\bteil\W*$");

/// The decision in one sentence, if any.
pub(super) fn decision_in(s: &str) -> Option<&str> {
    if let Some(c) = DECISION_MARKER.captures(s) {
        let rest = c.name("rest").map_or("", |m| m.as_str());
        return (!rest.trim().is_empty()).then_some(rest);
    }
    if is_question(s) || s.split_whitespace().nth(2).is_none() {
        return None;
    }
    for c in DECISION_CUE.captures_iter(s) {
        let Some(m) = c.get(0) else { continue };
        let (pre, post) = (before(s, m.start()), after(s, m.end()));
        let ok = if c.name("decided").is_some() {
            !NEG_NEAR.is_match(pre) && !DECIDED_AFTER.is_match(post)
        } else if c.name("agreed").is_some() {
            !NEG_NEAR.is_match(pre) && !AGREED_AFTER.is_match(post)
        } else if c.name("going").is_some() {
            !NEG_NEAR.is_match(pre) && !GOING_AFTER.is_match(post)
        } else if c.name("de").is_some() {
            !NEG_FAR.is_match(pre)
        } else if c.name("nehmen").is_some() {
            !NEHMEN_AFTER.is_match(post) && !TEIL_AT_END.is_match(before(s, s.len()))
        } else {
            // will go with, settled on
            !NEG_NEAR.is_match(pre)
        };
        if ok {
            return Some(s);
        }
    }
    None
}
