//! Turning a [`Reply`] into Telegram messages: HTML text split into chunks
//! that each fit Telegram's 4096-character limit.
//!
//! Locale strings carry a little HTML (`<b>`, `<i>`, `<code>`) and arguments
//! are escaped by [`escape_html`], so the text is well-formed. [`split_html`]
//! cuts it — preferably after a newline, else after a space, else anywhere
//! between characters, never inside a tag or an entity — and closes the tags
//! open at a cut, reopening them at the start of the next chunk. Lengths are
//! counted in UTF-16 code units of the raw HTML, which is never less than what
//! Telegram counts after parsing.

use crate::core::Reply;
use crate::i18n::{escape_html, I18n};

/// Telegram's limit for one message's text.
pub const MAX_MESSAGE: usize = 4096;

/// The chunks to send for `reply`, in order.
pub fn render(i18n: &I18n, reply: &Reply) -> Vec<String> {
    let html = i18n.render_all(&reply.lang, &reply.lines, &escape_html);
    split_html(&html, MAX_MESSAGE)
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind<'a> {
    Open(&'a str),
    Close,
    Char(char),
    Entity,
}

#[derive(Clone, Copy, Debug)]
struct Atom<'a> {
    text: &'a str,
    kind: Kind<'a>,
}

impl Atom<'_> {
    fn units(&self) -> usize {
        self.text.encode_utf16().count()
    }
}

fn atomize(s: &str) -> Vec<Atom<'_>> {
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        let rest = &s[i..];
        let c = rest.chars().next().expect("non-empty");
        let len = match c {
            '<' => rest.find('>').map(|e| e + 1),
            '&' => rest
                .char_indices()
                .take(12)
                .find(|(_, ch)| *ch == ';')
                .map(|(e, _)| e + 1),
            _ => None,
        }
        .unwrap_or(c.len_utf8());
        let text = &rest[..len];
        let kind = if len > 1 && c == '<' {
            if text.starts_with("</") {
                Kind::Close
            } else {
                let name_end = text[1..]
                    .find(|ch: char| ch == '>' || ch.is_whitespace())
                    .map_or(text.len(), |e| e + 1);
                Kind::Open(&text[1..name_end])
            }
        } else if len > 1 && c == '&' {
            Kind::Entity
        } else {
            Kind::Char(c)
        };
        out.push(Atom { text, kind });
        i += len;
    }
    out
}

/// Applies tags in `atoms` to a stack of open tags (each open tag's full text).
fn advance<'a>(stack: &mut Vec<(&'a str, &'a str)>, atoms: &[Atom<'a>]) {
    for a in atoms {
        match a.kind {
            Kind::Open(name) => stack.push((name, a.text)),
            Kind::Close => {
                stack.pop();
            }
            _ => {}
        }
    }
}

fn closing_units(stack: &[(&str, &str)]) -> usize {
    stack.iter().map(|(name, _)| name.len() + 3).sum()
}

fn emit(out: &mut Vec<String>, prefix: &[(&str, &str)], body: &[Atom], end: &[(&str, &str)]) {
    let mut s = String::new();
    for (_, open) in prefix {
        s.push_str(open);
    }
    for a in body {
        s.push_str(a.text);
    }
    for (name, _) in end.iter().rev() {
        s.push_str("</");
        s.push_str(name);
        s.push('>');
    }
    out.push(s);
}

/// Where to cut `body`: after its last newline, else its last whitespace,
/// else at its end. Always > 0 for a non-empty body.
fn best_cut(body: &[Atom]) -> usize {
    let after = |pred: &dyn Fn(char) -> bool| {
        body.iter()
            .rposition(|a| matches!(a.kind, Kind::Char(c) if pred(c)))
            .map(|p| p + 1)
    };
    after(&|c| c == '\n')
        .or_else(|| after(&char::is_whitespace))
        .unwrap_or(body.len())
}

/// Splits well-formed Telegram HTML into chunks of at most `limit` UTF-16
/// units, each balanced on its own. `limit` must leave room for a few tags.
pub fn split_html(s: &str, limit: usize) -> Vec<String> {
    assert!(limit >= 64, "limit too small to hold tags");
    let atoms = atomize(s);
    let mut out = Vec::new();
    let mut prefix: Vec<(&str, &str)> = Vec::new();
    let mut prefix_units = 0;
    let mut body: Vec<Atom> = Vec::new();
    let mut body_units = 0;
    // Tags open after prefix + body, kept up to date as atoms are added.
    let mut open_now: Vec<(&str, &str)> = Vec::new();
    let mut i = 0;
    while i < atoms.len() {
        let a = atoms[i];
        let mut after = open_now.clone();
        advance(&mut after, std::slice::from_ref(&a));
        if body.is_empty() || prefix_units + body_units + a.units() + closing_units(&after) <= limit
        {
            body_units += a.units();
            body.push(a);
            open_now = after;
            i += 1;
            continue;
        }
        let cut = best_cut(&body);
        let mut at_cut = prefix.clone();
        advance(&mut at_cut, &body[..cut]);
        emit(&mut out, &prefix, &body[..cut], &at_cut);
        prefix = at_cut;
        prefix_units = prefix
            .iter()
            .map(|(_, open)| open.encode_utf16().count())
            .sum();
        body.drain(..cut);
        body_units = body.iter().map(Atom::units).sum();
        open_now = prefix.clone();
        advance(&mut open_now, &body);
    }
    if !body.is_empty() {
        let mut end = prefix.clone();
        advance(&mut end, &body);
        emit(&mut out, &prefix, &body, &end);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::html_to_plain;
    use proptest::prelude::*;

    fn units(s: &str) -> usize {
        s.encode_utf16().count()
    }

    fn balanced(s: &str) -> bool {
        let mut stack = Vec::new();
        for a in atomize(s) {
            match a.kind {
                Kind::Open(n) => stack.push(n),
                Kind::Close => {
                    let name = &a.text[2..a.text.len() - 1];
                    if stack.pop() != Some(name) {
                        return false;
                    }
                }
                _ => {}
            }
        }
        stack.is_empty()
    }

    #[test]
    fn short_text_is_one_chunk() {
        assert_eq!(split_html("<b>#1</b> hi", 4096), vec!["<b>#1</b> hi"]);
    }

    #[test]
    fn cuts_after_newlines_and_reopens_tags() {
        let line = format!("<b>{}</b>\n", "x".repeat(50));
        let chunks = split_html(&line.repeat(3), 120);
        assert_eq!(chunks.len(), 2);
        assert!(chunks.iter().all(|c| balanced(c) && units(c) <= 120));
        // A bold run longer than the limit is cut inside and re-bolded.
        let long = format!("<b>{}</b>", "y".repeat(300));
        let chunks = split_html(&long, 100);
        assert!(chunks
            .iter()
            .all(|c| c.starts_with("<b>") && c.ends_with("</b>") && units(c) <= 100));
    }

    #[test]
    fn entities_and_surrogates_stay_whole() {
        let s = format!("{}&amp;{}", "😀".repeat(40), "é".repeat(40));
        for c in split_html(&s, 64) {
            assert!(units(&c) <= 64);
            assert!(!c.ends_with('&') && !c.starts_with("amp;"));
        }
    }

    fn html_like() -> impl Strategy<Value = String> {
        // Escaped user text (any chars, including <>&, emoji, newlines)
        // mixed with the tags the locales use.
        let piece = prop_oneof![
            any::<String>().prop_map(|s| escape_html(&s)),
            "[a-z ]{0,40}".prop_map(|s| format!("<b>{s}</b>")),
            "[a-zäöü😀 \n]{0,200}".prop_map(|s| format!("<i>{}</i>", escape_html(&s))),
            Just("\n".to_string()),
            "[a-z]{0,20}".prop_map(|s| format!("<b>x <code>{s}</code> y</b>")),
        ];
        proptest::collection::vec(piece, 0..60).prop_map(|v| v.concat())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]
        #[test]
        fn every_chunk_fits_is_balanced_and_nothing_is_lost(s in html_like(), limit in 64usize..600) {
            let chunks = split_html(&s, limit);
            for c in &chunks {
                prop_assert!(units(c) <= limit, "chunk of {} > {}", units(c), limit);
                prop_assert!(balanced(c), "unbalanced: {c:?}");
                prop_assert!(!c.is_empty());
            }
            let rejoined: String = chunks.iter().map(|c| html_to_plain(c)).collect();
            prop_assert_eq!(rejoined, html_to_plain(&s));
        }

        #[test]
        fn telegram_limit_holds_for_huge_notes(n in 4000usize..20000) {
            let text = escape_html(&"a<&>😀 ".repeat(n / 6));
            let s = format!("<b>#1</b> <i>2026-01-01</i> {text}");
            for c in split_html(&s, MAX_MESSAGE) {
                prop_assert!(units(&c) <= MAX_MESSAGE);
            }
        }
    }
}
