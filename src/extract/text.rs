//! Line and sentence structure: the input cap, bullets and checkboxes, list
//! headings, sentence splitting, and the windows of text around a cue.

use std::sync::LazyLock;

use regex::Regex;

use super::{re, Checkbox, Kind, WINDOW};

// Line structure.
regex!(MARKER = r"^(?:[-*•·+–]\s+|\d{1,3}[.)]\s+)?(?:\[\s*(?P<done>[xX✓✔])?\s*\]\s*)?");
regex!(
    HEADING = r"(?i)^(?:(?P<todo>todos?|to-dos?|to\s+dos?|tasks|aufgaben|shopping\s+list|einkaufsliste|einkaufen|todo\s+list[e]?)|(?P<decision>decisions|entscheidungen|beschlüsse))\s*:?$"
);

/// Cuts `text` to at most `max` bytes at a char boundary.
pub(super) fn cap(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The text after a leading bullet and checkbox, and the checkbox state.
pub(super) fn strip_marker(line: &str) -> (&str, Option<Checkbox>) {
    match MARKER.captures(line) {
        Some(c) => {
            let whole = c.get(0).map_or(0, |m| m.end());
            let checkbox = if whole > 0 && line[..whole].contains('[') {
                Some(if c.name("done").is_some() {
                    Checkbox::Done
                } else {
                    Checkbox::Open
                })
            } else {
                None
            };
            (line[whole..].trim(), checkbox)
        }
        None => (line.trim(), None),
    }
}

/// A line that starts a to-do or decision list.
pub(super) fn heading(content: &str) -> Option<Kind> {
    let c = HEADING.captures(content)?;
    if c.name("todo").is_some() {
        Some(Kind::Todo)
    } else {
        Some(Kind::Decision)
    }
}

/// Calls `f` for each sentence of `line` (see the module docs).
pub(super) fn for_each_sentence(line: &str, mut f: impl FnMut(&str)) {
    let mut start = 0;
    let mut chars = line.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c == ';' {
            emit(&line[start..i], &mut f);
            start = i + c.len_utf8();
            continue;
        }
        if !matches!(c, '.' | '!' | '?' | '…') {
            continue;
        }
        let mut end = i + c.len_utf8();
        while let Some(&(j, d)) = chars.peek() {
            if !matches!(d, '.' | '!' | '?' | '…') {
                break;
            }
            end = j + d.len_utf8();
            chars.next();
        }
        // Split only before whitespace followed by a non-lowercase start,
        // and not after an abbreviation or a number ("Dr. Smith", "3. Mai").
        let rest = &line[end..];
        if rest.starts_with(char::is_whitespace)
            && !(c == '.' && end == i + 1 && keeps_sentence(before(line, i)))
        {
            let next = rest.trim_start().chars().next();
            if next.is_none_or(|n| !n.is_lowercase()) {
                emit(&line[start..end], &mut f);
                start = end;
            }
        }
    }
    emit(&line[start..], &mut f);
}

/// Words after which a single `.` does not end a sentence.
const ABBREVIATIONS: [&str; 40] = [
    "dr", "mr", "mrs", "ms", "prof", "st", "vs", "etc", "ca", "approx", "no", "nr", "str", "bzw",
    "usw", "inkl", "evtl", "ggf", "z.b", "u.a", "d.h", "jan", "feb", "mar", "apr", "jun", "jul",
    "aug", "sep", "sept", "oct", "okt", "nov", "dec", "dez", "mo", "di", "mi", "do", "fr",
];

/// Whether the word just before a `.` (the end of `head`) is an
/// abbreviation, a single letter (an initial) or a number (an ordinal or a
/// date, as in "3. Mai" or "am 31.01. Mittag").
fn keeps_sentence(head: &str) -> bool {
    let word = head.rsplit(char::is_whitespace).next().unwrap_or("");
    let word = word.trim_start_matches(|c: char| !c.is_alphanumeric());
    if word.is_empty() {
        return false;
    }
    if word.chars().count() == 1 || word.chars().all(|c| c.is_ascii_digit() || c == '.') {
        return true;
    }
    ABBREVIATIONS.iter().any(|a| a.eq_ignore_ascii_case(word))
}

fn emit(s: &str, f: &mut impl FnMut(&str)) {
    let s = s.trim();
    if !s.is_empty() {
        f(s);
    }
}

/// Up to [`WINDOW`] bytes of `s` before byte `at`.
pub(super) fn before(s: &str, at: usize) -> &str {
    let mut i = at.saturating_sub(WINDOW);
    while !s.is_char_boundary(i) {
        i += 1;
    }
    &s[i..at]
}

/// Up to [`WINDOW`] bytes of `s` from byte `at`.
pub(super) fn after(s: &str, at: usize) -> &str {
    let mut j = (at + WINDOW).min(s.len());
    while !s.is_char_boundary(j) {
        j -= 1;
    }
    &s[at..j]
}

pub(super) fn is_question(s: &str) -> bool {
    s.trim_end().ends_with('?')
}
