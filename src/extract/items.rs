//! Items as returned: whitespace collapsed, trailing punctuation removed,
//! length and count capped, duplicates dropped.

use super::{MAX_ITEMS, MAX_ITEM_CHARS};

/// `s` with whitespace runs collapsed to one space, stopping once it is
/// longer than [`MAX_ITEM_CHARS`] (so the cost is bounded by that, not by
/// `s`).
pub(super) fn collapse(s: &str) -> String {
    let mut out = String::new();
    let mut chars = 0;
    for word in s.split_whitespace() {
        if chars > MAX_ITEM_CHARS {
            break;
        }
        if !out.is_empty() {
            out.push(' ');
            chars += 1;
        }
        for ch in word.chars().take(MAX_ITEM_CHARS + 1) {
            out.push(ch);
            chars += 1;
        }
    }
    out
}

/// At most [`MAX_ITEM_CHARS`] chars; longer text is cut and ends with `…`.
pub(super) fn limit(s: &str) -> String {
    match s.char_indices().nth(MAX_ITEM_CHARS) {
        None => s.to_string(),
        Some(_) => {
            let cut = s
                .char_indices()
                .nth(MAX_ITEM_CHARS - 1)
                .map_or(s.len(), |(i, _)| i);
            format!("{}…", s[..cut].trim_end())
        }
    }
}

/// An item as stored: whitespace collapsed, trailing `.,;:` and spaces
/// removed, at most [`MAX_ITEM_CHARS`] chars; `None` when nothing is left.
fn clean(s: &str) -> Option<String> {
    let collapsed = collapse(s);
    let trimmed = collapsed
        .trim_end_matches(|c: char| c.is_whitespace() || matches!(c, '.' | ',' | ';' | ':'));
    (!trimmed.is_empty()).then(|| limit(trimmed))
}

pub(super) fn push(items: &mut Vec<String>, raw: &str) {
    if items.len() >= MAX_ITEMS {
        return;
    }
    if let Some(item) = clean(raw) {
        if !items.contains(&item) {
            items.push(item);
        }
    }
}
