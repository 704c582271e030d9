//! Every user-facing string, from Fluent files in `locales/`.
//!
//! The core never builds sentences: it emits [`Line`]s (a message key and its
//! arguments) and a language code. A channel adapter turns them into text with
//! [`I18n::render`], choosing how arguments are escaped for its output format
//! (HTML for Telegram, nothing for the console). Locale files are embedded so
//! the binary is self-contained; `tests/locales.rs` checks that every locale has
//! every key and that every key the code uses exists.

use std::collections::HashMap;
use std::fmt::Write as _;

use fluent_bundle::concurrent::FluentBundle;
use fluent_bundle::{FluentArgs, FluentResource, FluentValue};
use serde::{Deserialize, Serialize};
use unic_langid::LanguageIdentifier;

/// Shipped locales, in the order `/lang` lists them. The first is the fallback.
pub const LOCALES: &[&str] = &["en", "de"];

/// The Fluent sources, embedded. `tests/locales.rs` reads the same files.
pub const SOURCES: &[(&str, &str)] = &[
    ("en", include_str!("../locales/en/mnemo.ftl")),
    ("de", include_str!("../locales/de/mnemo.ftl")),
];

pub fn is_supported(lang: &str) -> bool {
    LOCALES.contains(&lang)
}

/// Picks a shipped locale for a Telegram `language_code` such as `de-AT`.
pub fn negotiate(code: Option<&str>, fallback: &str) -> String {
    code.and_then(|c| c.split(['-', '_']).next())
        .map(|c| c.to_ascii_lowercase())
        .filter(|c| is_supported(c))
        .unwrap_or_else(|| fallback.to_owned())
}

/// One argument of a message. User content is always `Text`, so renderers know
/// what to escape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Arg {
    Num(i64),
    Text(String),
    /// Another message of the same locale, rendered in place (e.g. a kind name).
    Key {
        key: String,
    },
}

/// A message key with its arguments: one line (or paragraph) of a reply.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Line {
    pub key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub args: Vec<(String, Arg)>,
}

impl Line {
    pub fn new(key: &str) -> Line {
        Line {
            key: key.to_owned(),
            args: Vec::new(),
        }
    }

    pub fn text(mut self, name: &str, value: impl Into<String>) -> Line {
        self.args.push((name.to_owned(), Arg::Text(value.into())));
        self
    }

    pub fn key(mut self, name: &str, key: &str) -> Line {
        self.args.push((
            name.to_owned(),
            Arg::Key {
                key: key.to_owned(),
            },
        ));
        self
    }

    pub fn num(mut self, name: &str, value: impl TryInto<i64>) -> Line {
        self.args.push((
            name.to_owned(),
            Arg::Num(value.try_into().unwrap_or(i64::MAX)),
        ));
        self
    }
}

/// The loaded bundles, one per locale. Cheap to share behind an `Arc`.
pub struct I18n {
    bundles: HashMap<&'static str, FluentBundle<FluentResource>>,
}

impl I18n {
    /// Parses the embedded locales. A syntax error in a shipped file is a bug,
    /// caught by the test suite, so this panics rather than limping on.
    pub fn new() -> I18n {
        let bundles = SOURCES
            .iter()
            .map(|(lang, src)| {
                let res = FluentResource::try_new((*src).to_owned())
                    .unwrap_or_else(|(_, e)| panic!("locales/{lang}/mnemo.ftl: {e:?}"));
                let id: LanguageIdentifier = lang.parse().expect("valid language id");
                let mut bundle = FluentBundle::new_concurrent(vec![id]);
                // No Unicode isolation marks: they show up as junk in terminals and logs.
                bundle.set_use_isolating(false);
                bundle.add_resource(res).expect("no duplicate keys");
                (*lang, bundle)
            })
            .collect();
        I18n { bundles }
    }

    /// Renders `line` in `lang` (falling back to English, then to the key),
    /// passing every text argument through `escape` first.
    pub fn render(&self, lang: &str, line: &Line, escape: &dyn Fn(&str) -> String) -> String {
        let bundle = self
            .bundles
            .get(lang)
            .or_else(|| self.bundles.get(LOCALES[0]));
        let Some((bundle, msg)) = bundle
            .and_then(|b| b.get_message(&line.key).map(|m| (b, m)))
            .or_else(|| {
                let en = self.bundles.get(LOCALES[0])?;
                en.get_message(&line.key).map(|m| (en, m))
            })
        else {
            tracing::error!(key = %line.key, "missing locale key");
            return line.key.clone();
        };
        let Some(pattern) = msg.value() else {
            return line.key.clone();
        };
        let mut args = FluentArgs::new();
        for (name, value) in &line.args {
            match value {
                Arg::Num(n) => args.set(name.as_str(), FluentValue::from(*n)),
                Arg::Text(s) => args.set(name.as_str(), FluentValue::from(escape(s))),
                Arg::Key { key } => args.set(
                    name.as_str(),
                    FluentValue::from(self.render(lang, &Line::new(key), escape)),
                ),
            }
        }
        let mut errors = Vec::new();
        let out = bundle.format_pattern(pattern, Some(&args), &mut errors);
        if !errors.is_empty() {
            tracing::error!(key = %line.key, ?errors, "locale formatting error");
        }
        out.into_owned()
    }

    /// Renders lines joined by newlines.
    pub fn render_all(
        &self,
        lang: &str,
        lines: &[Line],
        escape: &dyn Fn(&str) -> String,
    ) -> String {
        let mut out = String::new();
        for (i, line) in lines.iter().enumerate() {
            if i > 0 {
                out.push('\n');
            }
            let _ = write!(out, "{}", self.render(lang, line, escape));
        }
        out
    }

    /// Renders `line` as plain text (terminal, button labels, callback
    /// answers): rendered as HTML with escaped arguments, then the markup
    /// stripped and entities decoded — so user text comes out verbatim.
    pub fn render_plain(&self, lang: &str, line: &Line) -> String {
        html_to_plain(&self.render(lang, line, &escape_html))
    }

    /// [`I18n::render_plain`] for several lines joined by newlines.
    pub fn render_all_plain(&self, lang: &str, lines: &[Line]) -> String {
        html_to_plain(&self.render_all(lang, lines, &escape_html))
    }

    /// Whether `lang` has a message `key` (used by the locale tests).
    pub fn has(&self, lang: &str, key: &str) -> bool {
        self.bundles.get(lang).is_some_and(|b| b.has_message(key))
    }
}

impl Default for I18n {
    fn default() -> Self {
        I18n::new()
    }
}

/// Escapes text for Telegram's HTML parse mode (`&`, `<`, `>` are all it needs).
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            c => out.push(c),
        }
    }
    out
}

/// Turns the small HTML subset used in locale files (`<b>`, `<i>`, `<code>`)
/// into plain text for the console: tags dropped, entities decoded. Arguments
/// must have been escaped with [`escape_html`] before, so user text survives
/// byte for byte.
pub fn html_to_plain(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find(['<', '&']) {
        out.push_str(&rest[..i]);
        rest = &rest[i..];
        if rest.starts_with('<') {
            match rest.find('>') {
                Some(end) => rest = &rest[end + 1..],
                None => {
                    out.push_str(rest);
                    rest = "";
                }
            }
        } else {
            let (ent, ch) = [
                ("&amp;", '&'),
                ("&lt;", '<'),
                ("&gt;", '>'),
                ("&quot;", '"'),
            ]
            .into_iter()
            .find(|(e, _)| rest.starts_with(e))
            .unwrap_or(("&", '&'));
            out.push(ch);
            rest = &rest[ent.len()..];
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_with_args_and_falls_back() {
        let i18n = I18n::new();
        let line = Line::new("note-saved").num("id", 42);
        let en = i18n.render("en", &line, &escape_html);
        let de = i18n.render("de", &line, &escape_html);
        assert!(en.contains("42") && de.contains("42"));
        assert_ne!(en, de);
        // Unknown language falls back to English.
        assert_eq!(i18n.render("xx", &line, &escape_html), en);
    }

    #[test]
    fn user_text_round_trips_through_html_and_plain() {
        let i18n = I18n::new();
        let nasty = "a <b>not bold</b> & <script> &amp; 🎉";
        let line = Line::new("note-line")
            .num("id", 1)
            .text("date", "2026-01-01")
            .text("text", nasty);
        let html = i18n.render("en", &line, &escape_html);
        assert!(!html.contains("<script>"));
        let plain = html_to_plain(&html);
        assert!(plain.contains(nasty), "{plain}");
    }

    #[test]
    fn negotiates_language_codes() {
        assert_eq!(negotiate(Some("de-AT"), "en"), "de");
        assert_eq!(negotiate(Some("fr"), "en"), "en");
        assert_eq!(negotiate(None, "de"), "de");
    }
}
