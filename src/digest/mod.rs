//! Digests: what a chat captured in a period, sent on a schedule in the
//! chat's local time, delivered at most once per slot.
//!
//! - [`slots`] turns cron expressions in local time into real instants (the
//!   DST rules live there) and decides catch-up after downtime.
//! - This file builds a digest's content from the store ([`build`]): the
//!   period's new notes, its priorities (❗), decisions, open to-dos, voice
//!   notes, main themes (clusters of the notes' embeddings, each named by
//!   its most central note) and counts. No model call, no network: the
//!   extractive digest is the default and the fallback of the LLM summary.
//! - [`render`] turns a digest into locale lines (and the to-dos' ✅ rows).
//! - [`runner`] is the loop that wakes at each slot (or every 30 s at
//!   most), plans, builds and queues digests through the core's outbox,
//!   and records each slot in the ledger ([`crate::store::SlotRecord`]).
//!
//! A period with nothing new sends nothing: "new" is a note with an id
//! above the highest note covered by an earlier digest of the same
//! schedule for that chat.

pub mod render;
pub mod report;
pub mod runner;
pub mod slots;
pub mod summary;

use chrono_tz::Tz;
use serde::Serialize;

use crate::config::Config;
use crate::extract;
use crate::store::{ItemKind, Note, Source, Store, StoreError};
pub use slots::{ActiveHours, LocalCron};

/// The length of time a digest covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Hour,
    Day,
    Week,
}

impl Period {
    /// `hour`, `day`, `week` (the CLI's `--period` and `/digest day`).
    pub fn parse(s: &str) -> Option<Period> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hour" | "hourly" | "stunde" => Some(Period::Hour),
            "" | "day" | "daily" | "today" | "tag" | "heute" => Some(Period::Day),
            "week" | "weekly" | "woche" => Some(Period::Week),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Period::Hour => "hour",
            Period::Day => "day",
            Period::Week => "week",
        }
    }

    /// The schedule that sends digests of this period.
    pub fn schedule(self) -> &'static str {
        match self {
            Period::Hour => "hourly",
            Period::Day => "daily",
            Period::Week => "weekly",
        }
    }

    pub fn length(self) -> chrono::Duration {
        match self {
            Period::Hour => chrono::Duration::hours(1),
            Period::Day => chrono::Duration::days(1),
            Period::Week => chrono::Duration::days(7),
        }
    }

    /// How late a missed slot may still be sent after downtime.
    pub fn catch_up_window(self) -> chrono::Duration {
        match self {
            Period::Hour => chrono::Duration::hours(2),
            Period::Day => chrono::Duration::hours(12),
            Period::Week => chrono::Duration::days(3),
        }
    }

    /// How far back a digest reaches for notes no earlier digest covered
    /// (after downtime, a digest says what happened since the last one, up
    /// to this).
    pub fn reach(self) -> chrono::Duration {
        match self {
            Period::Hour => chrono::Duration::days(1),
            Period::Day => chrono::Duration::days(7),
            Period::Week => chrono::Duration::days(28),
        }
    }
}

/// The schedules from `[digest]`.
#[derive(Debug, Clone)]
pub struct Schedules {
    pub tz: Tz,
    /// (period, its cron) for every schedule that is on.
    pub crons: Vec<(Period, LocalCron)>,
    pub active_hours: ActiveHours,
}

impl Schedules {
    pub fn from_config(cfg: &Config) -> anyhow::Result<Schedules> {
        let d = &cfg.digest;
        let mut crons = Vec::new();
        for (p, s, key) in [
            (Period::Hour, &d.hourly, "hourly"),
            (Period::Day, &d.daily, "daily"),
            (Period::Week, &d.weekly, "weekly"),
        ] {
            let c = LocalCron::parse(s).map_err(|e| anyhow::anyhow!("digest.{key}: {e}"))?;
            if let Some(c) = c {
                crons.push((p, c));
            }
        }
        Ok(Schedules {
            tz: parse_tz(&d.timezone).map_err(|e| anyhow::anyhow!("digest.timezone: {e}"))?,
            crons,
            active_hours: ActiveHours::parse(&d.active_hours)
                .map_err(|e| anyhow::anyhow!("digest.active_hours: {e}"))?,
        })
    }

    pub fn cron(&self, p: Period) -> Option<&LocalCron> {
        self.crons.iter().find(|(q, _)| *q == p).map(|(_, c)| c)
    }
}

/// An IANA zone name; `""` is the machine's zone (UTC when it has none that
/// chrono-tz knows).
pub fn parse_tz(name: &str) -> anyhow::Result<Tz> {
    let name = name.trim();
    if name.is_empty() {
        return Ok(machine_tz());
    }
    name.parse::<Tz>()
        .map_err(|_| anyhow::anyhow!("{name:?} is not an IANA time zone such as Europe/Berlin"))
}

/// The machine's time zone, UTC when unknown.
pub fn machine_tz() -> Tz {
    iana_time_zone::get_timezone()
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(Tz::UTC)
}

/// Most entries shown per section; the rest are counted.
pub const SECTION_MAX: usize = 5;
/// Themes shown.
const THEMES_MAX: usize = 3;
/// Notes looked at for themes (the newest): clustering is quadratic.
const THEME_NOTES_MAX: usize = 600;
/// Cosine similarity at which two notes share a theme (MiniLM: notes on one
/// topic score 0.45–0.7, unrelated ones below 0.3).
const THEME_SIMILARITY: f32 = 0.45;
/// Most notes a digest reads.
pub const NOTES_MAX: usize = 5000;

/// One note in a section.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    pub note_id: u64,
    /// unix ms.
    pub at: i64,
    pub text: String,
}

/// An open to-do (its ✅ button ticks it off).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TodoEntry {
    pub item_id: u64,
    pub note_id: u64,
    pub text: String,
}

/// A main theme: notes close in meaning, named by the most central one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Theme {
    pub note_id: u64,
    pub text: String,
    pub notes: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Counts {
    pub notes: usize,
    pub voice: usize,
    pub priorities: usize,
    pub decisions: usize,
    /// Open to-dos from the period's notes.
    pub todos: usize,
    /// Open to-dos of the chat, all periods.
    pub todos_open_total: usize,
}

/// A digest's sections: full lists (rendering cuts them to
/// [`SECTION_MAX`]).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Sections {
    pub priorities: Vec<Entry>,
    pub decisions: Vec<Entry>,
    pub todos: Vec<TodoEntry>,
    pub voice: Vec<Entry>,
    pub themes: Vec<Theme>,
    /// The period's notes in none of the sections above (nor naming a
    /// theme), oldest first.
    pub other: Vec<Entry>,
    pub counts: Counts,
}

/// What became of the LLM summary, when one was asked for.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Summary {
    /// The LLM's summary (cites notes as `#id`).
    Text { text: String },
    /// Every provider failed: the digest says so.
    Unavailable { reason: String },
    /// The daily spend limit was reached.
    LimitReached,
}

/// One digest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Digest {
    pub chat_id: i64,
    pub period: Period,
    /// The covered range, unix ms: (from, to].
    pub from: i64,
    pub to: i64,
    pub sections: Sections,
    /// The notes it covers, oldest first (ids).
    pub note_ids: Vec<u64>,
    /// "extractive" or "llm:<provider>/<model>".
    pub source: String,
    pub summary: Option<Summary>,
    pub tokens: Tokens,
    pub cost_usd: Option<f64>,
    /// The daily digest of the admin chat carries mnemo's own health (the
    /// "all good" line instead of a separate message): checks not ok.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub health: Option<usize>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

impl Digest {
    /// Nothing new: such a digest is not sent.
    pub fn is_empty(&self) -> bool {
        self.note_ids.is_empty()
    }

    /// The highest note id covered (0 for none).
    pub fn upto_note(&self) -> u64 {
        self.note_ids.iter().copied().max().unwrap_or(0)
    }
}

/// The notes of `chat_id` a digest covers: ids above `after_note`, created
/// in `(from, to]`, not imported (an import is not something captured in
/// the period), oldest first, at most [`NOTES_MAX`] (the newest).
pub fn period_notes(
    store: &Store,
    chat_id: i64,
    after_note: u64,
    from: i64,
    to: i64,
) -> Result<Vec<Note>, StoreError> {
    let mut notes = store.notes_since(chat_id, after_note, from, NOTES_MAX)?;
    notes.retain(|n| n.created_at > from && n.created_at <= to && n.source != Source::Import);
    Ok(notes)
}

/// Builds the extractive digest of `notes` (from [`period_notes`]).
pub fn build(
    store: &Store,
    chat_id: i64,
    period: Period,
    (from, to): (i64, i64),
    notes: &[Note],
) -> Result<Digest, StoreError> {
    let mut s = Sections::default();
    let ids: std::collections::HashSet<u64> = notes.iter().map(|n| n.id).collect();
    for n in notes {
        let entry = || Entry {
            note_id: n.id,
            at: n.created_at,
            text: n.text.clone(),
        };
        if extract::extract(&n.text).priority.is_some() {
            s.priorities.push(entry());
        }
        if n.source == Source::Voice || n.voice.is_some() {
            s.voice.push(entry());
        }
    }
    // Items are stored (done marks are user state): read them, keep the
    // period's. Newest first from the store; shown oldest first.
    let open = store.items(chat_id, ItemKind::Todo, true, usize::MAX)?;
    s.counts.todos_open_total = open.len();
    s.todos = open
        .into_iter()
        .filter(|i| ids.contains(&i.note_id))
        .map(|i| TodoEntry {
            item_id: i.id,
            note_id: i.note_id,
            text: i.text,
        })
        .collect();
    s.todos.reverse();
    let mut decisions: Vec<Entry> = store
        .items(chat_id, ItemKind::Decision, false, usize::MAX)?
        .into_iter()
        .filter(|i| ids.contains(&i.note_id))
        .map(|i| Entry {
            note_id: i.note_id,
            at: i.created_at,
            text: i.text,
        })
        .collect();
    decisions.reverse();
    s.decisions = decisions;
    s.themes = themes(store, notes)?;
    let shown: std::collections::HashSet<u64> = s
        .priorities
        .iter()
        .chain(&s.decisions)
        .chain(&s.voice)
        .map(|e| e.note_id)
        .chain(s.todos.iter().map(|t| t.note_id))
        .chain(s.themes.iter().map(|t| t.note_id))
        .collect();
    s.other = notes
        .iter()
        .filter(|n| !shown.contains(&n.id))
        .map(|n| Entry {
            note_id: n.id,
            at: n.created_at,
            text: n.text.clone(),
        })
        .collect();
    s.counts.notes = notes.len();
    s.counts.voice = s.voice.len();
    s.counts.priorities = s.priorities.len();
    s.counts.decisions = s.decisions.len();
    s.counts.todos = s.todos.len();
    Ok(Digest {
        chat_id,
        period,
        from,
        to,
        sections: s,
        note_ids: notes.iter().map(|n| n.id).collect(),
        source: "extractive".into(),
        summary: None,
        tokens: Tokens::default(),
        cost_usd: None,
        health: None,
    })
}

/// The main themes of `notes`: greedy clustering of their embeddings.
/// Repeatedly the most central remaining note (highest summed similarity to
/// the rest) founds a theme, and every remaining note at least
/// [`THEME_SIMILARITY`] close to it joins. Themes of one note are not
/// themes. Notes without a vector (not embedded yet, no model) are left
/// out; with fewer than 3 vectors there are no themes.
fn themes(store: &Store, notes: &[Note]) -> Result<Vec<Theme>, StoreError> {
    let newest: Vec<u64> = notes
        .iter()
        .rev()
        .take(THEME_NOTES_MAX)
        .map(|n| n.id)
        .collect();
    let vecs = store.vectors_of(&newest)?;
    if vecs.len() < 3 {
        return Ok(Vec::new());
    }
    let n = vecs.len();
    let mut sim = vec![0f32; n * n];
    for i in 0..n {
        for j in i..n {
            let d = crate::memory::dot::dot(&vecs[i].1, &vecs[j].1);
            sim[i * n + j] = d;
            sim[j * n + i] = d;
        }
    }
    let mut left: Vec<usize> = (0..n).collect();
    let mut out = Vec::new();
    while left.len() >= 2 && out.len() < THEMES_MAX {
        let centre = *left
            .iter()
            .max_by(|&&a, &&b| {
                let ca: f32 = left.iter().map(|&j| sim[a * n + j]).sum();
                let cb: f32 = left.iter().map(|&j| sim[b * n + j]).sum();
                ca.total_cmp(&cb).then(b.cmp(&a))
            })
            .expect("left is not empty");
        let members: Vec<usize> = left
            .iter()
            .copied()
            .filter(|&j| j == centre || sim[centre * n + j] >= THEME_SIMILARITY)
            .collect();
        left.retain(|j| !members.contains(j));
        if members.len() < 2 {
            continue;
        }
        let id = vecs[centre].0;
        let text = notes
            .iter()
            .find(|x| x.id == id)
            .map(|x| x.text.clone())
            .unwrap_or_default();
        out.push(Theme {
            note_id: id,
            text,
            notes: members.len(),
        });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewNote;

    fn add(store: &Store, chat: i64, text: &str, at: i64, source: Source) -> u64 {
        store
            .write(|tx| {
                tx.insert_note(NewNote {
                    chat_id: chat,
                    user_id: chat,
                    message_id: None,
                    text: text.into(),
                    created_at: at,
                    source,
                    author: None,
                })
            })
            .unwrap()
            .id
    }

    #[test]
    fn sections_come_from_the_period_only() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let day = 86_400_000;
        let old = add(&store, 1, "TODO: renew the passport", 10, Source::Telegram);
        add(
            &store,
            1,
            "urgent: call the bank before friday",
            day + 1,
            Source::Telegram,
        );
        add(
            &store,
            1,
            "We decided to move the launch to March",
            day + 2,
            Source::Telegram,
        );
        add(&store, 1, "todo: buy milk", day + 3, Source::Voice);
        add(&store, 1, "old chat export line", day + 4, Source::Import);
        add(
            &store,
            2,
            "todo: other chat's task",
            day + 5,
            Source::Telegram,
        );
        let notes = period_notes(&store, 1, 0, day, 2 * day).unwrap();
        assert_eq!(notes.len(), 3, "{notes:?}");
        let d = build(&store, 1, Period::Day, (day, 2 * day), &notes).unwrap();
        assert_eq!(d.sections.priorities.len(), 1);
        assert!(d.sections.priorities[0].text.contains("bank"));
        assert_eq!(d.sections.decisions.len(), 1);
        assert_eq!(d.sections.todos.len(), 1);
        assert!(d.sections.todos[0].text.contains("milk"));
        assert_eq!(d.sections.voice.len(), 1);
        assert_eq!(d.sections.counts.todos_open_total, 2);
        assert_eq!(d.sections.counts.notes, 3);
        assert!(d.sections.other.is_empty(), "every note is in a section");
        assert!(d.themes_are_empty_without_vectors());
        assert!(!d.note_ids.contains(&old));
        // After this digest covered them, nothing is new.
        let again = period_notes(&store, 1, d.upto_note(), day, 2 * day).unwrap();
        assert!(again.is_empty());
    }

    impl Digest {
        fn themes_are_empty_without_vectors(&self) -> bool {
            self.sections.themes.is_empty()
        }
    }

    #[test]
    fn periods_parse() {
        assert_eq!(Period::parse("week"), Some(Period::Week));
        assert_eq!(Period::parse(""), Some(Period::Day));
        assert_eq!(Period::parse("Woche"), Some(Period::Week));
        assert_eq!(Period::parse("year"), None);
        assert!(parse_tz("Europe/Berlin").is_ok());
        assert!(parse_tz("Mars/Olympus").is_err());
    }
}
