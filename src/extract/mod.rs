//! To-dos, decisions and priority pulled out of a note's text.
//!
//! [`extract`] is a pure function: text in, [`Extracted`] out, no clock, no
//! store, no locale. It understands English and German and is deliberately
//! *conservative*: a missed to-do costs the user a line of typing, a false
//! one clutters `/todos`. Every rule below has a row in the table-driven
//! tests.
//!
//! # How a note is read
//!
//! 1. The input is cut to [`MAX_INPUT_BYTES`] (at a char boundary).
//! 2. It is read line by line. A leading bullet (`-`, `*`, `•`, `1.`, `1)`)
//!    and a checkbox (`[ ]`, `[x]`) are recognized.
//! 3. Each line is split into sentences: after `.`, `!`, `?` or `…` followed
//!    by whitespace and a character that is not lowercase (so "bis 31.01.
//!    muss ich…" stays one sentence), and at `;`.
//! 4. Each sentence is matched against a fixed set of cues, each followed by
//!    cheap checks on a small window of text around the match (negation
//!    before it, words that change the meaning after it).
//!
//! # To-dos
//!
//! - **Markers** (the item is the rest of the sentence): `todo:`, `to-do:`,
//!   `to do:` (needs the colon: "To do that, …" is not a task), `TODO buy
//!   milk`, `task:`, `reminder:`, `Aufgabe:`, `Erinnerung:`.
//! - **Checkboxes**: `- [ ] …` is an open to-do; `- [x] …` is done and
//!   ignored.
//! - **Lists**: a heading line `TODO:`, `To-dos:`, `Tasks:`, `Shopping
//!   list:`, `Aufgaben:`, `Einkaufsliste:`, `Einkaufen:` makes every
//!   following line a to-do until a blank line (likewise `Decisions:` /
//!   `Entscheidungen:` for decisions).
//! - **Cues** (the item is the whole sentence): "need to", "have to", "must",
//!   "remember to", "don't forget", a sentence starting with "call …",
//!   "phone …" or "buy …"; German "muss/müssen/…", "nicht vergessen",
//!   "vergiss nicht", "denk dran/daran", "erledigen", "kaufen", "besorgen",
//!   "anrufen".
//! - **Not to-dos**: questions (a sentence ending in `?`); negated cues
//!   ("don't need to", "no need to", "nicht kaufen"); "must"/"have to" used
//!   as a figure of speech — *"I must say the movie was great"*, "must
//!   admit", "must have left", "must be nice" (but "must be done by Friday"
//!   is a task) — and German "muss sagen/zugeben", "muss nicht", and
//!   speculation ending in "sein" ("Das muss schön sein"; "muss fertig sein"
//!   is a task).
//!
//! # Decisions
//!
//! - **Markers**: `decision:`, `decided:`, `Entscheidung:`, `Beschluss:`.
//! - **Cues** (whole sentence): "decided", "agreed", "going with", "will /
//!   let's go with", "settled on"; German "entschieden", "beschlossen",
//!   "geeinigt", "festgelegt", "wir nehmen"/"nehmen wir".
//! - **Not decisions**: questions, negation ("haven't decided yet", "noch
//!   nicht entschieden" — German allows up to four words in between),
//!   "undecided"/"unentschieden" (a draw), "agreed with me", "going with my
//!   sister" (a pronoun or possessive after "going with" reads as company,
//!   not a choice — this also drops "going with my proposal"), "wir nehmen
//!   an, dass" (we assume), "… teil" (take part), "nehmen ab/zu".
//!
//! # Priority
//!
//! One [`Priority`] for the whole note: the strongest [`PriorityReason`]
//! found, with the words that triggered it. Strongest first:
//!
//! - [`Urgent`](PriorityReason::Urgent): "urgent", "asap", "!!", "dringend",
//!   "eilt", "eilig".
//! - [`Deadline`](PriorityReason::Deadline): "deadline", "due …" (not "due
//!   to"), "overdue", "by / before <weekday, tomorrow, tonight, end of week,
//!   a date, 5pm>", German "bis / vor <Freitag, morgen, Ende der Woche, einem
//!   Datum, 17 Uhr>", "Frist", "spätestens", "fällig". "von Montag bis
//!   Freitag" is a range and "Tschüss, bis morgen!" a greeting — neither
//!   counts.
//! - [`Important`](PriorityReason::Important): "important", "high/top
//!   priority", "wichtig", "hohe Priorität".
//! - [`Date`](PriorityReason::Date): an explicit date — `2026-01-31`,
//!   `31.01.`, `31.1.2026`, `31/01`, `Jan 31`, `31 January`, `31. Januar`.
//!   Without a year, one side must have two digits (`3.5.` and `1/2` read as
//!   numbers), and ratings like `7/10` and `24/7` are not dates. Past dates
//!   count too: the function has no clock.
//!
//! Negation turns a cue off: "not urgent", "nicht so wichtig", "non-urgent",
//! "nothing important".
//!
//! # Cost
//!
//! Only the `regex` crate (finite automata: linear in the input, no
//! backtracking) compiled once. Per sentence a fixed number of searches run,
//! and every check around a match looks at a window of at most
//! [`WINDOW`] bytes, so the whole call is linear in the (capped) input.
//! At most [`MAX_ITEMS`] to-dos and decisions are returned, each at most
//! [`MAX_ITEM_CHARS`] characters.
//!
//! # Files
//!
//! `text.rs` cuts a note into lines and sentences, `todo.rs`,
//! `decision.rs` and `priority.rs` hold each kind's patterns and checks, and
//! `items.rs` cleans and caps what is returned. The shared pieces (`re`, the
//! `regex!` macro and the negation patterns) are here.

use std::sync::LazyLock;

use regex::Regex;

/// Input beyond this many bytes is ignored (cut at a char boundary).
pub const MAX_INPUT_BYTES: usize = 16 * 1024;
/// At most this many to-dos and this many decisions are returned.
pub const MAX_ITEMS: usize = 20;
/// Items longer than this (in chars) are cut and end with `…`.
pub const MAX_ITEM_CHARS: usize = 200;
/// Bytes of context examined before and after a cue.
pub const WINDOW: usize = 48;

/// What [`extract`] found in a note.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Extracted {
    /// Open to-dos, in order of appearance, deduplicated.
    pub todos: Vec<String>,
    /// Decisions, in order of appearance, deduplicated.
    pub decisions: Vec<String>,
    /// Set when the note looks time-critical or important.
    pub priority: Option<Priority>,
}

/// Why a note is flagged, and the words that flagged it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Priority {
    pub reason: PriorityReason,
    /// The matched words as written, e.g. "by Friday" or "dringend".
    pub cue: String,
}

/// Ordered strongest first (`Urgent < Deadline < …` in `Ord`), so the
/// minimum of several reasons is the one to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PriorityReason {
    /// "urgent", "asap", "!!", "dringend".
    Urgent,
    /// "deadline", "due", "by Friday", "bis morgen", "Frist", "spätestens".
    Deadline,
    /// "important", "wichtig".
    Important,
    /// An explicit calendar date.
    Date,
}

/// Pulls to-dos, decisions and a priority out of `text`. Never panics;
/// linear in `min(text.len(), MAX_INPUT_BYTES)`.
pub fn extract(text: &str) -> Extracted {
    let text = cap(text, MAX_INPUT_BYTES);
    let mut out = Extracted::default();
    let mut list: Option<Kind> = None;

    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() {
            list = None;
            continue;
        }
        for_each_sentence(line, |s| scan_priority(s, &mut out.priority));

        let (content, checkbox) = strip_marker(line);
        if content.is_empty() {
            continue;
        }
        if let Some(kind) = heading(content) {
            list = Some(kind);
            continue;
        }
        match checkbox {
            Some(Checkbox::Done) => continue,
            Some(Checkbox::Open) => {
                push(&mut out.todos, content);
                continue;
            }
            None => {}
        }
        match list {
            Some(Kind::Todo) => push(&mut out.todos, content),
            Some(Kind::Decision) => push(&mut out.decisions, content),
            None => for_each_sentence(content, |s| {
                let s = strip_marker(s).0;
                if let Some(item) = todo_in(s) {
                    push(&mut out.todos, item);
                }
                if let Some(item) = decision_in(s) {
                    push(&mut out.decisions, item);
                }
            }),
        }
    }
    out.priority = out.priority.map(|p| Priority {
        cue: limit(&collapse(&p.cue)),
        ..p
    });
    out
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Todo,
    Decision,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Checkbox {
    Open,
    Done,
}

// ---- regexes -------------------------------------------------------------

/// Compiles a regex that is part of this module. The patterns are
/// constants checked by every test run, so a failure is a programming error.
fn re(pattern: &str) -> Regex {
    Regex::new(pattern).unwrap_or_else(|e| panic!("extract: bad built-in regex: {e}"))
}

macro_rules! regex {
    ($name:ident = $pattern:expr) => {
        static $name: LazyLock<Regex> = LazyLock::new(|| re($pattern));
    };
}

// Negation just before a cue: up to two words (four for German verb-final
// clauses) between the negation and the cue.
regex!(
    NEG_NEAR = r"(?i)(?:(?:\bnot|n[’']t|\bno|\bnever|\bnothing|\bnicht|\bnichts|\bnie|\bkein(?:e|en|em|er|es)?)\s+(?:[\p{L}\p{N}’']+\s+){0,2}|\bnon-?\s*)$"
);
regex!(
    NEG_FAR = r"(?i)(?:\bnot|n[’']t|\bnever|\bnicht|\bnie|\bkein(?:e|en|em|er|es)?)\s+(?:[\p{L}\p{N}’']+\s+){0,4}$"
);

// The parts, declared after `regex!` so that they can use it.
mod decision;
mod items;
mod priority;
mod text;
mod todo;

use decision::decision_in;
use items::{collapse, limit, push};
use priority::scan_priority;
use text::{cap, for_each_sentence, heading, strip_marker};
use todo::todo_in;

#[cfg(test)]
mod tests;
