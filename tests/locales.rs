//! Every locale has every key, and every key the code uses exists.

use std::collections::BTreeSet;

use mnemo::i18n::{I18n, LOCALES, SOURCES};

fn keys(src: &str) -> BTreeSet<String> {
    src.lines()
        .filter(|l| l.chars().next().is_some_and(|c| c.is_ascii_lowercase()))
        .filter_map(|l| {
            l.split_once(" =")
                .or_else(|| l.split_once('='))
                .map(|(k, _)| k.trim().to_owned())
        })
        .collect()
}

#[test]
fn all_locales_have_the_same_keys() {
    let en = keys(SOURCES[0].1);
    assert!(en.len() > 30, "parsed {} keys", en.len());
    for (lang, src) in SOURCES {
        let k = keys(src);
        let missing: Vec<_> = en.difference(&k).collect();
        let extra: Vec<_> = k.difference(&en).collect();
        assert!(
            missing.is_empty() && extra.is_empty(),
            "{lang}: missing {missing:?}, extra {extra:?}"
        );
    }
    assert_eq!(SOURCES.len(), LOCALES.len());
}

/// Scans src/ for string literals used as locale keys: `Line::new("…")`,
/// `.key(_, "…")`, `("cmd", "cmd-…")` menu entries and `"kind-…"`/`"source-…"`
/// prefixes combined with every value they can take.
#[test]
fn every_key_used_in_code_exists_in_every_locale() {
    let i18n = I18n::new();
    let mut used = BTreeSet::new();
    let mut stack = vec![std::path::PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src"
    ))];
    let re = regex::Regex::new(r#"(?:Line::new\(|=> )"([a-z][a-z0-9-]+)""#).unwrap();
    let menu = regex::Regex::new(r#"\("[a-z]+", "(cmd-[a-z]+)"\)"#).unwrap();
    while let Some(p) = stack.pop() {
        if p.is_dir() {
            stack.extend(std::fs::read_dir(&p).unwrap().map(|e| e.unwrap().path()));
        } else if p.extension().is_some_and(|e| e == "rs") {
            let src = std::fs::read_to_string(&p).unwrap();
            for c in re.captures_iter(&src).chain(menu.captures_iter(&src)) {
                let k = c[1].to_owned();
                // `=> "sticker"` style values are kinds, checked below.
                if k.contains('-') || i18n.has("en", &k) {
                    used.insert(k);
                }
            }
        }
    }
    for kind in [
        "sticker", "photo", "video", "document", "audio", "voice", "location", "contact", "poll",
        "other",
    ] {
        used.insert(format!("kind-{kind}"));
    }
    for source in ["telegram", "console", "import"] {
        used.insert(format!("source-{source}"));
    }
    assert!(used.len() > 30, "found only {} keys: {used:?}", used.len());
    for lang in LOCALES {
        let missing: Vec<_> = used.iter().filter(|k| !i18n.has(lang, k)).collect();
        assert!(missing.is_empty(), "{lang} lacks {missing:?}");
    }
}
