//! A digest as locale lines: header, the LLM summary (or why there is
//! none), then priorities, decisions, open to-dos, voice notes, themes, the
//! other notes and counts. Each section shows at most [`SECTION_MAX`]
//! entries and counts the rest; an empty section is left out. Times are in
//! the chat's zone.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{Digest, Entry, Summary, SECTION_MAX};
use crate::core::snippet;
use crate::i18n::Line;

/// Longest preview of a note in a digest.
const ENTRY_CHARS: usize = 160;
/// Longest LLM summary shown (Telegram's message holds 4096).
const SUMMARY_CHARS: usize = 2500;

/// `2026-12-04 20:00` in `tz`.
pub fn local(ms: i64, tz: Tz) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .map(|t| t.with_timezone(&tz).format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

/// The digest's lines. `late` marks a catch-up sent after its slot.
pub fn lines(d: &Digest, tz: Tz, late: bool) -> Vec<Line> {
    let s = &d.sections;
    let mut out = vec![Line::new("digest-header")
        .key("period", &format!("digest-period-{}", d.period.as_str()))
        .text("from", local(d.from, tz))
        .text("to", local(d.to, tz))
        .key("late", if late { "digest-late" } else { "flag-none" })];
    match &d.summary {
        Some(Summary::Text { text }) => {
            out.push(Line::new("digest-summary").text("text", snippet_keep_lines(text)))
        }
        Some(Summary::Unavailable { .. }) => out.push(Line::new("digest-llm-unavailable")),
        Some(Summary::LimitReached) => out.push(Line::new("digest-llm-limit")),
        None => {}
    }
    section(&mut out, "digest-priorities", &s.priorities);
    section(&mut out, "digest-decisions", &s.decisions);
    if !s.todos.is_empty() {
        out.push(Line::new("digest-todos").num("count", s.todos.len()));
        for (i, t) in s.todos.iter().take(SECTION_MAX).enumerate() {
            out.push(
                Line::new("digest-todo")
                    .num("n", i + 1)
                    .num("id", t.note_id)
                    .text("text", snippet(&t.text, ENTRY_CHARS)),
            );
        }
        more(&mut out, s.todos.len());
    }
    section(&mut out, "digest-voice", &s.voice);
    if !s.themes.is_empty() {
        out.push(Line::new("digest-themes"));
        for t in &s.themes {
            out.push(
                Line::new("digest-theme")
                    .num("id", t.note_id)
                    .num("count", t.notes)
                    .text("text", snippet(&t.text, ENTRY_CHARS)),
            );
        }
    }
    section(&mut out, "digest-other", &s.other);
    out.push(
        Line::new("digest-counts")
            .num("notes", s.counts.notes)
            .num("voice", s.counts.voice)
            .num("todos", s.counts.todos_open_total)
            .num("decisions", s.counts.decisions),
    );
    match d.health {
        Some(0) => out.push(Line::new("digest-health-ok")),
        Some(n) => out.push(Line::new("digest-health-bad").num("count", n)),
        None => {}
    }
    out
}

/// The to-dos that get a ✅ button: (number shown, item id).
pub fn todo_buttons(d: &Digest) -> Vec<(usize, u64)> {
    d.sections
        .todos
        .iter()
        .take(SECTION_MAX)
        .enumerate()
        .map(|(i, t)| (i + 1, t.item_id))
        .collect()
}

fn section(out: &mut Vec<Line>, key: &str, entries: &[Entry]) {
    if entries.is_empty() {
        return;
    }
    out.push(Line::new(key).num("count", entries.len()));
    for e in entries.iter().take(SECTION_MAX) {
        out.push(
            Line::new("digest-entry")
                .num("id", e.note_id)
                .text("text", snippet(&e.text, ENTRY_CHARS)),
        );
    }
    more(out, entries.len());
}

fn more(out: &mut Vec<Line>, n: usize) {
    if n > SECTION_MAX {
        out.push(Line::new("digest-more").num("count", n - SECTION_MAX));
    }
}

/// An LLM summary cut to [`SUMMARY_CHARS`], keeping its line breaks.
fn snippet_keep_lines(text: &str) -> String {
    let t = text.trim();
    if t.chars().count() <= SUMMARY_CHARS {
        return t.to_owned();
    }
    let cut: String = t.chars().take(SUMMARY_CHARS - 1).collect();
    format!("{}…", cut.trim_end())
}
