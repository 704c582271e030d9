//! Dates in questions: "in March 2025", "on 17 May 2025", "late October
//! 2025", "January and February 2026", "last May", "two weeks ago",
//! "yesterday", "im Januar 2025", "vor drei Tagen", "am Neujahrstag 2026".
//!
//! [`parse`] finds the first date phrase of a question and turns it into a
//! [`Span`] of instants in the chat's time zone, resolved against `now`
//! (a month without a year is its latest occurrence that has begun; "last
//! May" in May is the May before). Recall then prefers notes written in the
//! span ([`super::recall::Weights::date`]) and also looks among them, not
//! only among the notes the words and the meaning found (see
//! `Indexes::search`); the phrase is left out of the lexical query, where
//! "2025" would only match notes that happen to mention the year.
//!
//! [`anchored`] finds a time given from an event instead ("two weeks after
//! her operation", "drei Tage vor der Reise"): the caller finds the event
//! among the chat's messages (its date is that message's) and [`Anchored::span`]
//! turns it into the window asked about.
//!
//! What it does not do: times of day, and numeric dates other than
//! `2025-05-17` and `17.05.2025` (`05/06/2025` is ambiguous between
//! countries).
//!
//! A hand-written scan over the question's words: linear in the question's
//! length, no backtracking (the two numeric forms use the `regex` crate).

use std::ops::Range;
use std::sync::LazyLock;

use chrono::{Datelike, Days, Months, NaiveDate, NaiveTime, TimeZone, Weekday};
use chrono_tz::Tz;
use regex::Regex;

/// A stretch of time a question asks about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Span {
    /// First instant, ms since the epoch (inclusive).
    pub from: i64,
    /// End, ms since the epoch (exclusive).
    pub to: i64,
    /// Where the phrase is in the question (bytes).
    pub phrase: Range<usize>,
}

impl Span {
    pub fn contains(&self, at: i64) -> bool {
        (self.from..self.to).contains(&at)
    }

    /// The question without the date phrase (for the lexical side).
    pub fn strip(&self, question: &str) -> String {
        let mut s = String::with_capacity(question.len());
        s.push_str(&question[..self.phrase.start]);
        s.push(' ');
        s.push_str(&question[self.phrase.end..]);
        s
    }
}

/// Days `[first, end)`.
type DayRange = (NaiveDate, NaiveDate);

/// The first date phrase in `question`, as a span in `tz`, relative dates
/// resolved against `now` (ms since the epoch).
pub fn parse(question: &str, now: i64, tz: Tz) -> Option<Span> {
    let today = tz.timestamp_millis_opt(now).single()?.date_naive();
    let (days, phrase) = numeric(question).or_else(|| {
        let words = words(question);
        (0..words.len()).find_map(|i| {
            let (d, n) = at(&words, i, today)?;
            Some((d, words[i].start..words[i + n - 1].end))
        })
    })?;
    let ms = |d: NaiveDate| {
        let local = d.and_time(NaiveTime::MIN);
        tz.from_local_datetime(&local)
            .earliest()
            // Midnight skipped by a clock change: the hour after it.
            .or_else(|| {
                tz.from_local_datetime(&(local + chrono::Duration::hours(1)))
                    .earliest()
            })
            .map(|t| t.timestamp_millis())
    };
    Some(Span {
        from: ms(days.0)?,
        to: ms(days.1)?,
        phrase,
    })
}

/// A time given from an event: "two weeks after her operation", "a month
/// before the move", "3 days after Christmas 2024", "zwei Wochen nach der
/// Operation".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchored {
    /// Where the event's words are in the question ("her operation"): up
    /// to the end of the clause.
    pub event: Range<usize>,
    /// Days from the event to the time asked about (before: negative).
    pub days: i64,
    /// Half the window around that day, in days (people round: "two weeks"
    /// is 10 to 18 days).
    pub slack: i64,
    /// "two weeks after": left out of the lexical query (the event's words
    /// stay; the answer often names it).
    pub phrase: Range<usize>,
}

impl Anchored {
    /// The window asked about, the event having happened at `event_at`
    /// (ms since the epoch).
    pub fn span(&self, event_at: i64) -> Span {
        const DAY: i64 = 86_400_000;
        let at = event_at + self.days * DAY;
        Span {
            from: at - self.slack * DAY,
            to: at + (self.slack + 1) * DAY,
            phrase: self.phrase.clone(),
        }
    }
}

/// The first "N units before/after <event>" of `question`.
pub fn anchored(question: &str) -> Option<Anchored> {
    let ws = words(question);
    let w = |i: usize| ws.get(i).map_or("", |x| x.w.as_str());
    (0..ws.len()).find_map(|i| {
        // "a couple of weeks after": two.
        let (n, u) = match (w(i), w(i + 1)) {
            ("couple", "of") => (2, i + 2),
            _ => (count(w(i))?, i + 1),
        };
        let (per, slack) = match w(u) {
            "day" | "days" | "tag" | "tage" | "tagen" => (1, 1),
            "week" | "weeks" | "woche" | "wochen" => (7, 4),
            "month" | "months" | "monat" | "monate" | "monaten" => (30, 15),
            "year" | "years" | "jahr" | "jahre" | "jahren" => (365, 183),
            _ => return None,
        };
        let sign = match w(u + 1) {
            "after" | "nach" => 1,
            "before" | "vor" => -1,
            _ => return None,
        };
        let first = ws.get(u + 2)?;
        if !question[ws[u + 1].end..first.start].trim().is_empty() {
            return None;
        }
        // The event runs to the end of the clause.
        let end = question[first.start..]
            .find(['?', '!', '.', ',', ';', '\n'])
            .map_or(question.len(), |k| first.start + k);
        let event = first.start..question[..end].trim_end().len();
        Some(Anchored {
            event,
            days: sign * i64::from(n) * per,
            slack,
            phrase: ws[i].start..ws[u + 1].end,
        })
    })
}

/// Whether `question` asks for a time: "when…", "what date / day / time…",
/// "on which day…", "how long ago…", "wann…", "an welchem Tag…", "um wie
/// viel Uhr…". Its answer is a message that names one (see
/// [`mentions_time`]); recall prefers those ([`super::recall::Weights::when`]).
pub fn asks_when(question: &str) -> bool {
    let ws = words(question);
    let w = |i: usize| ws.get(i).map_or("", |w| w.w.as_str());
    // A unit of time as a word of its own ("what time…", not "what
    // time-saving…").
    let unit = |i: usize| {
        ws.get(i).is_some_and(|x| {
            matches!(
                x.w.as_str(),
                "date"
                    | "day"
                    | "time"
                    | "month"
                    | "year"
                    | "week"
                    | "datum"
                    | "tag"
                    | "monat"
                    | "jahr"
            ) && !question[x.end..].starts_with('-')
        })
    };
    // "On which day…", "At what time…", "In welchem Monat…", "Um wie viel Uhr…".
    let lead = usize::from(matches!(
        w(0),
        "on" | "at" | "in" | "by" | "an" | "am" | "um"
    ));
    match (w(lead), w(lead + 1), w(lead + 2)) {
        ("when" | "wann", ..) => true,
        ("what" | "which" | "welchem" | "welcher" | "welches" | "welche", ..) => unit(lead + 1),
        ("how", "long", "ago") | ("seit" | "bis", "wann", _) => true,
        ("wie", "viel" | "viele", "uhr") => true,
        _ => false,
    }
}

/// Whether a message names a time: a month or weekday, a day of the month
/// ("the 14th", "22nd"), a year, a time of day ("7:15", "3pm", "8 Uhr"), or
/// a day relative to it ("tomorrow", "last week", "gestern"). "May" counts
/// only beside a day, a year or a cue ("in May"), being a verb too.
pub fn mentions_time(text: &str) -> bool {
    if CLOCK.is_match(text) {
        return true;
    }
    let ws = words(text);
    let w = |i: usize| ws.get(i).map_or("", |w| w.w.as_str());
    // A word beside "may" that makes it the month ("in May", "May 10th").
    let beside_date = |j: Option<usize>| {
        j.is_some_and(|j| {
            let x = w(j);
            year(x).is_some() || day_of_month(x).is_some() || cue(x) || determiner(x)
        })
    };
    (0..ws.len()).any(|i| {
        let s = w(i);
        match s {
            "may" | "mar" | "jan" => beside_date(i.checked_sub(1)) || beside_date(Some(i + 1)),
            _ if month(s).is_some() || weekday(s).is_some() || year(s).is_some() => true,
            "today" | "tonight" | "tomorrow" | "yesterday" | "weekend" | "heute" | "gestern"
            | "morgen" | "übermorgen" | "vorgestern" | "wochenende" => true,
            "week" | "month" | "year" | "woche" | "monat" | "jahr" => {
                matches!(
                    w(i.wrapping_sub(1)),
                    "next" | "last" | "this" | "nächste" | "letzte" | "diese"
                )
            }
            // An ordinal ("14th"), or a bare day after "the" / "on" / "am" / "den".
            _ => {
                day_of_month(s).is_some()
                    && (s.ends_with(|c: char| c.is_ascii_alphabetic())
                        || matches!(w(i.wrapping_sub(1)), "the" | "am" | "den" | "on"))
            }
        }
    })
}

/// A time of day: "7:15", "3pm", "3 pm", "8 Uhr".
static CLOCK: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?i)\b(?:[01]?\d|2[0-3]):[0-5]\d\b|\b(?:1[0-2]|0?[1-9]) ?(?:am|pm|a\.m\.|p\.m\.)(?:\W|$)|\b(?:[01]?\d|2[0-3]) ?uhr\b",
    )
    .expect("valid")
});

struct Word {
    /// Lower-cased.
    w: String,
    start: usize,
    end: usize,
}

/// Runs of letters and digits (apostrophes inside a word are kept, so
/// "year's" is one word).
fn words(s: &str) -> Vec<Word> {
    let mut out = Vec::new();
    let mut start = None;
    let is_word = |c: char| c.is_alphanumeric() || c == '\'' || c == '’';
    for (i, c) in s.char_indices().chain(std::iter::once((s.len(), ' '))) {
        match (start, is_word(c)) {
            (None, true) => start = Some(i),
            (Some(b), false) => {
                let w = s[b..i]
                    .trim_matches(|c| c == '\'' || c == '’')
                    .replace('’', "'")
                    .to_lowercase();
                if !w.is_empty() {
                    out.push(Word {
                        w,
                        start: b,
                        end: i,
                    });
                }
                start = None;
            }
            _ => {}
        }
    }
    out
}

static ISO: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{4})-(\d{1,2})-(\d{1,2})\b").expect("valid"));
static DOTTED: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\b(\d{1,2})\.(\d{1,2})\.(\d{4})\b").expect("valid"));

/// `2025-05-17` or `17.05.2025`: that day.
fn numeric(s: &str) -> Option<(DayRange, Range<usize>)> {
    let day = |y: &str, m: &str, d: &str| {
        NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?)
    };
    if let Some(c) = ISO.captures(s) {
        if let Some(d) = day(&c[1], &c[2], &c[3]) {
            return Some((one_day(d)?, c.get(0)?.range()));
        }
    }
    let c = DOTTED.captures(s)?;
    let d = day(&c[3], &c[2], &c[1])?;
    Some((one_day(d)?, c.get(0)?.range()))
}

fn one_day(d: NaiveDate) -> Option<DayRange> {
    Some((d, d.succ_opt()?))
}

fn month(w: &str) -> Option<u32> {
    Some(match w {
        "january" | "jan" | "januar" | "jänner" => 1,
        "february" | "feb" | "februar" => 2,
        "march" | "mar" | "märz" | "maerz" => 3,
        "april" | "apr" => 4,
        "may" | "mai" => 5,
        "june" | "jun" | "juni" => 6,
        "july" | "jul" | "juli" => 7,
        "august" | "aug" => 8,
        "september" | "sep" | "sept" => 9,
        "october" | "oct" | "oktober" | "okt" => 10,
        "november" | "nov" => 11,
        "december" | "dec" | "dezember" | "dez" => 12,
        _ => return None,
    })
}

fn weekday(w: &str) -> Option<Weekday> {
    Some(match w {
        "monday" | "montag" => Weekday::Mon,
        "tuesday" | "dienstag" => Weekday::Tue,
        "wednesday" | "mittwoch" => Weekday::Wed,
        "thursday" | "donnerstag" => Weekday::Thu,
        "friday" | "freitag" => Weekday::Fri,
        "saturday" | "samstag" | "sonnabend" => Weekday::Sat,
        "sunday" | "sonntag" => Weekday::Sun,
        _ => return None,
    })
}

/// A small count: a digit or a word ("a week ago", "vor drei Tagen").
fn count(w: &str) -> Option<u32> {
    if let Ok(n) = w.parse::<u32>() {
        return (1..=400).contains(&n).then_some(n);
    }
    Some(match w {
        "a" | "an" | "one" | "ein" | "eine" | "einem" | "einer" | "einen" => 1,
        "two" | "zwei" | "couple" => 2,
        "three" | "drei" | "few" => 3,
        "four" | "vier" => 4,
        "five" | "fünf" => 5,
        "six" | "sechs" => 6,
        "seven" | "sieben" => 7,
        "eight" | "acht" => 8,
        "nine" | "neun" => 9,
        "ten" | "zehn" => 10,
        "eleven" | "elf" => 11,
        "twelve" | "zwölf" => 12,
        _ => return None,
    })
}

/// A day of the month: `17`, `17th`, `1st`, `22.` (the dot is not a word
/// character, so "22." arrives as "22").
fn day_of_month(w: &str) -> Option<u32> {
    let digits = w.trim_end_matches(|c: char| c.is_ascii_alphabetic());
    let suffix = &w[digits.len()..];
    if !matches!(suffix, "" | "st" | "nd" | "rd" | "th") || digits.len() > 2 {
        return None;
    }
    digits.parse().ok().filter(|d| (1..=31).contains(d))
}

fn year(w: &str) -> Option<i32> {
    (w.len() == 4)
        .then(|| w.parse().ok())
        .flatten()
        .filter(|y| (1900..=2200).contains(y))
}

/// Words that say "the month/year named next is meant" when no day or year
/// makes it plain ("may" is a verb too).
fn cue(w: &str) -> bool {
    matches!(
        w,
        "in" | "im"
            | "during"
            | "last"
            | "this"
            | "since"
            | "of"
            | "letzten"
            | "letzter"
            | "diesen"
            | "seit"
            | "early"
            | "mid"
            | "late"
            | "anfang"
            | "mitte"
            | "ende"
            | "before"
            | "vor"
            | "until"
            | "bis"
    )
}

fn determiner(w: &str) -> bool {
    matches!(
        w,
        "the"
            | "a"
            | "an"
            | "my"
            | "our"
            | "der"
            | "die"
            | "das"
            | "den"
            | "dem"
            | "des"
            | "meine"
            | "meinen"
            | "unsere"
            | "unseren"
    )
}

fn last_day(y: i32, m: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, 1)?
        .checked_add_months(Months::new(1))?
        .pred_opt()
}

/// A month `[first, end)`, or its early (1–10), middle (11–20) or late
/// (21–end) part.
fn month_days(y: i32, m: u32, part: Part) -> Option<DayRange> {
    let first = NaiveDate::from_ymd_opt(y, m, 1)?;
    let next = first.checked_add_months(Months::new(1))?;
    Some(match part {
        Part::All => (first, next),
        Part::Early => (first, NaiveDate::from_ymd_opt(y, m, 11)?),
        Part::Mid => (
            NaiveDate::from_ymd_opt(y, m, 11)?,
            NaiveDate::from_ymd_opt(y, m, 21)?,
        ),
        Part::Late => (NaiveDate::from_ymd_opt(y, m, 21)?, next),
    })
}

#[derive(Clone, Copy, PartialEq)]
enum Part {
    All,
    Early,
    Mid,
    Late,
}

/// The latest year in which month `m` has begun by `today` (`strictly`:
/// not the current month — "last May" in May is a year ago).
fn latest_year(m: u32, today: NaiveDate, strictly: bool) -> i32 {
    if m < today.month() || (m == today.month() && !strictly) {
        today.year()
    } else {
        today.year() - 1
    }
}

/// The date phrase starting at word `i`: its days and its length in words.
fn at(ws: &[Word], i: usize, today: NaiveDate) -> Option<(DayRange, usize)> {
    relative(ws, i, today)
        .or_else(|| holiday(ws, i))
        .or_else(|| calendar(ws, i, today))
        .or_else(|| whole_year(ws, i))
}

/// "in 2023", "im Jahr 2023", "during 2023".
fn whole_year(ws: &[Word], i: usize) -> Option<(DayRange, usize)> {
    let w = |k: usize| ws.get(i + k).map(|x| x.w.as_str()).unwrap_or("");
    if !matches!(w(0), "in" | "im" | "during" | "of" | "seit" | "since") {
        return None;
    }
    let skip = usize::from(matches!(w(1), "jahr" | "year"));
    let y = year(w(1 + skip))?;
    let days = (
        NaiveDate::from_ymd_opt(y, 1, 1)?,
        NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
    );
    Some((days, 2 + skip))
}

/// "today", "yesterday", "last week", "this month", "3 days ago", "vor
/// zwei Wochen", "last Monday", "letzten Freitag".
fn relative(ws: &[Word], i: usize, today: NaiveDate) -> Option<(DayRange, usize)> {
    let w = |k: usize| ws.get(i + k).map(|x| x.w.as_str()).unwrap_or("");
    let back = |n: u64| today.checked_sub_days(Days::new(n));
    match w(0) {
        "today" | "heute" => return Some((one_day(today)?, 1)),
        "yesterday" | "gestern" => return Some((one_day(back(1)?)?, 1)),
        "vorgestern" => return Some((one_day(back(2)?)?, 1)),
        _ => {}
    }
    if (w(0), w(1), w(2), w(3)) == ("the", "day", "before", "yesterday") {
        return Some((one_day(back(2)?)?, 4));
    }
    let monday = back(u64::from(today.weekday().num_days_from_monday()))?;
    let last = matches!(
        w(0),
        "last"
            | "past"
            | "previous"
            | "letzte"
            | "letzten"
            | "letztes"
            | "letzter"
            | "vorige"
            | "vorigen"
            | "voriges"
            | "vergangene"
            | "vergangenen"
            | "vergangenes"
    );
    let this = matches!(w(0), "this" | "diese" | "diesen" | "dieses");
    if last || this {
        let span = match w(1) {
            "week" | "woche" if last => Some((monday.checked_sub_days(Days::new(7))?, monday)),
            "week" | "woche" => Some((monday, monday.checked_add_days(Days::new(7))?)),
            "month" | "monat" => {
                let first = today.with_day(1)?;
                if last {
                    Some((first.checked_sub_months(Months::new(1))?, first))
                } else {
                    Some((first, first.checked_add_months(Months::new(1))?))
                }
            }
            "year" | "jahr" => {
                let y = today.year() - i32::from(last);
                Some((
                    NaiveDate::from_ymd_opt(y, 1, 1)?,
                    NaiveDate::from_ymd_opt(y + 1, 1, 1)?,
                ))
            }
            "weekend" | "wochenende" => {
                // The Saturday and Sunday before this week (last) or of it.
                let sat = monday.checked_sub_days(Days::new(2))?;
                let sat = if last {
                    sat
                } else {
                    sat.checked_add_days(Days::new(7))?
                };
                Some((sat, sat.checked_add_days(Days::new(2))?))
            }
            d => weekday(d).and_then(|wd| {
                // The latest such day before today.
                let mut k =
                    (7 + today.weekday().num_days_from_monday() - wd.num_days_from_monday()) % 7;
                if k == 0 {
                    k = 7;
                }
                one_day(back(u64::from(k))?)
            }),
        };
        if let Some(s) = span {
            return Some((s, 2));
        }
    }
    // "on Monday", "am Montag": the latest such day up to today.
    if matches!(w(0), "on" | "am") {
        if let Some(wd) = weekday(w(1)) {
            let k = (7 + today.weekday().num_days_from_monday() - wd.num_days_from_monday()) % 7;
            return Some((one_day(back(u64::from(k))?)?, 2));
        }
    }
    // "N days/weeks/months/years ago".
    if let Some(n) = count(w(0)) {
        let (unit, ago) = (w(1), w(2));
        if ago == "ago" {
            return ago_span(unit, n, today).map(|s| (s, 3));
        }
        // "a couple of weeks ago"
        if (w(1), w(3)) == ("of", "ago") && w(0) == "couple" {
            return ago_span(w(2), 2, today).map(|s| (s, 4));
        }
    }
    // "vor N Tagen/Wochen/Monaten/Jahren"
    if w(0) == "vor" {
        if let Some(n) = count(w(1)) {
            return ago_span(w(2), n, today).map(|s| (s, 3));
        }
    }
    None
}

/// About `n` units before `today`: that day for days; for longer units a
/// window around the point, as wide as the unit (people round).
fn ago_span(unit: &str, n: u32, today: NaiveDate) -> Option<DayRange> {
    let around = |centre: NaiveDate, half: u64| {
        Some((
            centre.checked_sub_days(Days::new(half))?,
            centre.checked_add_days(Days::new(half + 1))?,
        ))
    };
    match unit {
        "day" | "days" | "tag" | "tagen" => one_day(today.checked_sub_days(Days::new(n.into()))?),
        "week" | "weeks" | "woche" | "wochen" => {
            around(today.checked_sub_days(Days::new(7 * u64::from(n)))?, 4)
        }
        "month" | "months" | "monat" | "monaten" => {
            around(today.checked_sub_months(Months::new(n))?, 15)
        }
        "year" | "years" | "jahr" | "jahren" => {
            around(today.checked_sub_months(Months::new(12 * n))?, 183)
        }
        _ => None,
    }
}

/// New Year's Eve/Day, Christmas, and "the last day/evening/night of 2025".
fn holiday(ws: &[Word], i: usize) -> Option<(DayRange, usize)> {
    let w = |k: usize| ws.get(i + k).map(|x| x.w.as_str()).unwrap_or("");
    let with_year = |n: usize, m: u32, d: u32, days: u64, year_shift: i32| {
        let y = year(w(n))?;
        let first = NaiveDate::from_ymd_opt(y + year_shift, m, d)?;
        Some(((first, first.checked_add_days(Days::new(days))?), n + 1))
    };
    match (w(0), w(1), w(2)) {
        ("new", "year's", "eve") | ("new", "years", "eve") => with_year(3, 12, 31, 1, 0),
        ("new", "year's", "day") | ("new", "years", "day") => with_year(3, 1, 1, 1, 0),
        ("silvester", _, _) | ("silvesterabend", _, _) => with_year(1, 12, 31, 1, 0),
        ("neujahr", _, _) | ("neujahrstag", _, _) => with_year(1, 1, 1, 1, 0),
        ("christmas", "eve", _) | ("heiligabend", _, _) => {
            let n = if w(0) == "christmas" { 2 } else { 1 };
            with_year(n, 12, 24, 1, 0)
        }
        ("christmas", _, _) | ("weihnachten", _, _) => with_year(1, 12, 24, 3, 0),
        ("last", "day" | "evening" | "night", "of") => with_year(3, 12, 31, 1, 0),
        ("first", "day", "of") => with_year(3, 1, 1, 1, 0),
        _ => None,
    }
}

/// Calendar dates: "17 May 2025", "May 17, 2025", "the 17th of May",
/// "22. September 2025", "March 2025", "early October 2025", "Anfang
/// Oktober", "January and February 2026", "in May", "last May".
fn calendar(ws: &[Word], i: usize, today: NaiveDate) -> Option<(DayRange, usize)> {
    let w = |k: usize| ws.get(i + k).map(|x| x.w.as_str()).unwrap_or("");
    let mut k = 0;
    // An optional part of the month.
    let part = match (w(0), w(1), w(2)) {
        ("early" | "anfang", _, _) => {
            k = 1;
            Part::Early
        }
        ("beginning" | "start", "of", _) => {
            k = 2;
            Part::Early
        }
        ("mid" | "mitte", _, _) => {
            k = 1;
            Part::Mid
        }
        ("middle", "of", _) => {
            k = 2;
            Part::Mid
        }
        ("late" | "ende", _, _) => {
            k = 1;
            Part::Late
        }
        ("end", "of", _) => {
            k = 2;
            Part::Late
        }
        _ => Part::All,
    };
    // "the 17th of May", "17 May", "22. September".
    let mut day = None;
    if part == Part::All {
        let j = usize::from(w(0) == "the");
        if let Some(d) = day_of_month(w(j)) {
            let of = usize::from(w(j + 1) == "of");
            if month(w(j + 1 + of)).is_some() {
                day = Some(d);
                k = j + 1 + of;
            }
        }
    }
    let m = month(w(k))?;
    let mut n = k + 1;
    // "May 17", "May 17th,".
    if day.is_none() && part == Part::All {
        if let Some(d) = day_of_month(w(n)) {
            if year(w(n)).is_none() {
                day = Some(d);
                n += 1;
            }
        }
    }
    // "January and February", "März bis Mai".
    let mut m2 = None;
    if day.is_none()
        && matches!(
            w(n),
            "and" | "und" | "or" | "oder" | "to" | "through" | "bis" | "till"
        )
    {
        if let Some(m_) = month(w(n + 1)).filter(|&x| x >= m) {
            m2 = Some(m_);
            n += 2;
        }
    }
    let y = year(w(n));
    if y.is_some() {
        n += 1;
    }
    // Is it a date at all? A day, a year, a part or a cue before it says so.
    let before = i.checked_sub(1).map(|p| ws[p].w.as_str()).unwrap_or("");
    if day.is_none() && y.is_none() && part == Part::All && !cue(before) {
        return None;
    }
    // "the February 2025 dentist appointment": the time of the thing, not
    // when the note about it was written (that may be weeks before).
    if k == 0 && day.is_none() && determiner(before) {
        return None;
    }
    let strictly = matches!(before, "last" | "letzten" | "letzter" | "vorigen");
    let y = y.unwrap_or_else(|| latest_year(m, today, strictly));
    let days = match (day, m2) {
        (Some(d), _) => one_day(NaiveDate::from_ymd_opt(y, m, d)?)?,
        (None, Some(m2)) => (
            NaiveDate::from_ymd_opt(y, m, 1)?,
            last_day(y, m2)?.succ_opt()?,
        ),
        (None, None) => month_days(y, m, part)?,
    };
    Some((days, n))
}

/// Every note's date, for finding the notes of a [`Span`]: entries
/// `(date, note id, chat)` in a sorted run plus a small unsorted tail of
/// recent inserts, merged into the run when it grows past [`TAIL`]. 24
/// bytes a note (24 MB at a million), and inserts out of date order (an
/// old export imported into a full store) cost O(n / TAIL) each, not O(n).
#[derive(Default)]
pub struct Dates {
    run: Vec<(i64, u64, i64)>,
    tail: Vec<(i64, u64, i64)>,
}

/// Inserts kept unsorted before they are merged into the run.
const TAIL: usize = 4096;

impl Dates {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.run.len() + self.tail.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Adds note `id`; a note added again (an edit: its date does not
    /// change) stays once.
    pub fn insert(&mut self, id: u64, chat: i64, at: i64) {
        let e = (at, id, chat);
        if self.run.binary_search(&e).is_ok() || self.tail.contains(&e) {
            return;
        }
        self.tail.push(e);
        if self.tail.len() >= TAIL {
            self.merge();
        }
    }

    /// Takes the notes in `gone` out (one pass over everything).
    pub fn remove(&mut self, gone: &std::collections::HashSet<u64>) {
        if !gone.is_empty() {
            self.run.retain(|e| !gone.contains(&e.1));
            self.tail.retain(|e| !gone.contains(&e.1));
        }
    }

    /// Adds a note without looking for it first: for loading every note
    /// once, followed by one [`Dates::merge`].
    pub fn load(&mut self, id: u64, chat: i64, at: i64) {
        self.tail.push((at, id, chat));
    }

    /// Sorts the tail into the run (call once after [`Dates::load`]s).
    pub fn merge(&mut self) {
        if self.tail.is_empty() {
            return;
        }
        self.tail.sort_unstable();
        let run = std::mem::take(&mut self.run);
        let mut out = Vec::with_capacity(run.len() + self.tail.len());
        let (mut a, mut b) = (run.into_iter().peekable(), self.tail.drain(..).peekable());
        loop {
            let next = match (a.peek(), b.peek()) {
                (Some(x), Some(y)) if x <= y => a.next(),
                (Some(_), Some(_)) | (None, Some(_)) => b.next(),
                (Some(_), None) => a.next(),
                (None, None) => break,
            };
            out.extend(next);
        }
        out.dedup_by_key(|e| e.1);
        self.run = out;
    }

    /// The notes of the chats `chats` admits written in `span`, or `None`
    /// when there are more than `limit` (the span is too wide to search
    /// one by one).
    pub fn within(&self, span: &Span, chats: super::Chats, limit: usize) -> Option<Vec<u64>> {
        let lo = self.run.partition_point(|e| e.0 < span.from);
        let hi = self.run.partition_point(|e| e.0 < span.to);
        let mut out = Vec::new();
        for e in self.run[lo..hi].iter().chain(&self.tail) {
            if span.contains(e.0) && chats.admits(e.2) {
                if out.len() == limit {
                    return None;
                }
                out.push(e.1);
            }
        }
        Some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Friday 5 December 2026, noon UTC.
    const NOW: i64 = 1_796_472_000_000;

    fn days(q: &str) -> Option<(String, String, String)> {
        let s = parse(q, NOW, Tz::UTC)?;
        let d = |ms: i64| {
            chrono::DateTime::from_timestamp_millis(ms)
                .unwrap()
                .format("%Y-%m-%d")
                .to_string()
        };
        Some((d(s.from), d(s.to), q[s.phrase].to_string()))
    }

    fn is(q: &str, from: &str, to: &str, phrase: &str) {
        assert_eq!(
            days(q),
            Some((from.into(), to.into(), phrase.into())),
            "{q}"
        );
    }

    #[test]
    fn times_given_from_an_event() {
        let a = |q: &str| {
            let x = anchored(q)?;
            Some((
                q[x.phrase].to_owned(),
                q[x.event].to_owned(),
                x.days,
                x.slack,
            ))
        };
        let is = |q: &str, phrase: &str, event: &str, days: i64, slack: i64| {
            assert_eq!(
                a(q),
                Some((phrase.into(), event.into(), days, slack)),
                "{q}"
            );
        };
        is(
            "How was Mum getting on two weeks after her operation?",
            "two weeks after",
            "her operation",
            14,
            4,
        );
        is(
            "what did we buy a month before the move, and where",
            "a month before",
            "the move",
            -30,
            15,
        );
        is(
            "3 days after Christmas 2024",
            "3 days after",
            "Christmas 2024",
            3,
            1,
        );
        is(
            "Was hat sie zwei Wochen nach der Operation gesagt?",
            "zwei Wochen nach",
            // To the end of the clause: German's last verb comes along.
            "der Operation gesagt",
            14,
            4,
        );
        is(
            "a couple of weeks before the trip",
            "couple of weeks before",
            "the trip",
            -14,
            4,
        );
        // Not anchored: ago, no event, no unit.
        for q in [
            "two weeks ago",
            "vor zwei Wochen",
            "what happened two weeks after?",
            "two things after lunch",
            "two weeks after, what changed?",
            "When did Owen go back to playing five-a-side after his injury?",
        ] {
            assert_eq!(a(q), None, "{q}");
        }
        // The window: the event's instant shifted, widened by the slack.
        let x = anchored("two weeks after the op").unwrap();
        let s = x.span(NOW);
        assert_eq!(
            (s.from, s.to),
            (NOW + 10 * 86_400_000, NOW + 19 * 86_400_000)
        );
        assert!(s.contains(NOW + 14 * 86_400_000) && !s.contains(NOW));
        let x = anchored("a month before the move").unwrap();
        assert!(x.span(NOW).contains(NOW - 30 * 86_400_000));
    }

    #[test]
    fn questions_that_ask_when() {
        for q in [
            "When did Owen stop using crutches?",
            "what date was the concert originally on?",
            "On what day did Priya hear about the job?",
            "On which day did Owen hurt his ankle?",
            "At what time was the train?",
            "Which year did they move?",
            "How long ago was the wedding?",
            "Wann ist Janas Tennisspiel?",
            "An welchem Tag kam das Paket?",
            "Um wie viel Uhr fährt der Zug?",
            "Seit wann wohnt Malte in Köln?",
        ] {
            assert!(asks_when(q), "{q}");
        }
        for q in [
            "What did Priya think of the chess club?",
            "Which band did Owen buy tickets for?",
            "Who won the match on Sunday?",
            "What time-saving trick did she use?",
            "Was hat Malte gesagt?",
            "",
        ] {
            assert!(!asks_when(q), "{q}");
        }
    }

    #[test]
    fn messages_that_name_a_time() {
        for t in [
            "22nd of March, a Friday",
            "The 14th. In person, in Bristol",
            "Yeah, booked the 7:15 from Piccadilly. Brutal",
            "Thinking the middle of May",
            "they've moved it to May 10th",
            "Off the crutches since Tuesday",
            "Leaving drinks on the 24th, you coming?",
            "See you tomorrow!",
            "meet at 3pm?",
            "Treffen um 8 Uhr",
            "Wir fahren im Juli",
            "am Mittwoch geht es los",
            "that was back in 2023",
            "let's do it next week",
        ] {
            assert!(mentions_time(t), "{t}");
        }
        for t in [
            "I may come along",
            "Biscuit is officially mine!!",
            "I have 2 cats and 3 dogs",
            "The job?!?!",
            "Good night",
            "That weekly meeting is boring",
            "",
        ] {
            assert!(!mentions_time(t), "{t}");
        }
    }

    #[test]
    fn now_is_the_day_the_tests_think() {
        let d = chrono::DateTime::from_timestamp_millis(NOW).unwrap();
        assert_eq!(d.format("%Y-%m-%d %a").to_string(), "2026-12-05 Sat");
    }

    #[test]
    fn calendar_dates() {
        is(
            "What did I note about the car in March 2025?",
            "2025-03-01",
            "2025-04-01",
            "March 2025",
        );
        is(
            "What happened at work on 22 September 2025?",
            "2025-09-22",
            "2025-09-23",
            "22 September 2025",
        );
        is(
            "What happened on 17 May 2025?",
            "2025-05-17",
            "2025-05-18",
            "17 May 2025",
        );
        is(
            "what about May 17th, 2025",
            "2025-05-17",
            "2025-05-18",
            "May 17th, 2025",
        );
        is(
            "on the 3rd of June 2024",
            "2024-06-03",
            "2024-06-04",
            "the 3rd of June 2024",
        );
        is(
            "What race result did I log in early October 2025?",
            "2025-10-01",
            "2025-10-11",
            "early October 2025",
        );
        is(
            "the radiator in late October 2025",
            "2025-10-21",
            "2025-11-01",
            "late October 2025",
        );
        is(
            "at the end of February 2024",
            "2024-02-21",
            "2024-03-01",
            "end of February 2024",
        );
        is(
            "Which books did I finish in January and February 2026?",
            "2026-01-01",
            "2026-03-01",
            "January and February 2026",
        );
        is(
            "Was habe ich im Januar 2025 zur Heizung notiert?",
            "2025-01-01",
            "2025-02-01",
            "Januar 2025",
        );
        is(
            "Was hat Frau Weber am 22. September 2025 gesagt?",
            "2025-09-22",
            "2025-09-23",
            "22. September 2025",
        );
        is(
            "Was war Anfang März 2026?",
            "2026-03-01",
            "2026-03-11",
            "Anfang März 2026",
        );
        is(
            "what did I write on 2025-05-17",
            "2025-05-17",
            "2025-05-18",
            "2025-05-17",
        );
        is(
            "Termin am 17.05.2025?",
            "2025-05-17",
            "2025-05-18",
            "17.05.2025",
        );
        is(
            "What did we plan in 2023?",
            "2023-01-01",
            "2024-01-01",
            "in 2023",
        );
        is(
            "Was war im Jahr 2024?",
            "2024-01-01",
            "2025-01-01",
            "im Jahr 2024",
        );
    }

    #[test]
    fn holidays() {
        is(
            "What were my plans for the last evening of 2025?",
            "2025-12-31",
            "2026-01-01",
            "last evening of 2025",
        );
        is(
            "Was habe ich mir am Neujahrstag 2026 vorgenommen?",
            "2026-01-01",
            "2026-01-02",
            "Neujahrstag 2026",
        );
        is(
            "new year's eve 2024",
            "2024-12-31",
            "2025-01-01",
            "new year's eve 2024",
        );
        is(
            "Christmas 2025 plans",
            "2025-12-24",
            "2025-12-27",
            "Christmas 2025",
        );
    }

    #[test]
    fn relative_dates_resolve_against_now() {
        // Today is Saturday 5 December 2026.
        is(
            "what did I say yesterday",
            "2026-12-04",
            "2026-12-05",
            "yesterday",
        );
        is("Was war gestern?", "2026-12-04", "2026-12-05", "gestern");
        is(
            "notes from last week",
            "2026-11-23",
            "2026-11-30",
            "last week",
        );
        is("this week", "2026-11-30", "2026-12-07", "this week");
        is(
            "what did I buy last month",
            "2026-11-01",
            "2026-12-01",
            "last month",
        );
        is("letztes Jahr", "2025-01-01", "2026-01-01", "letztes Jahr");
        is(
            "three days ago",
            "2026-12-02",
            "2026-12-03",
            "three days ago",
        );
        is("two weeks ago", "2026-11-17", "2026-11-26", "two weeks ago");
        is(
            "vor zwei Wochen",
            "2026-11-17",
            "2026-11-26",
            "vor zwei Wochen",
        );
        is("a month ago", "2026-10-21", "2026-11-21", "a month ago");
        is("last Monday", "2026-11-30", "2026-12-01", "last Monday");
        is(
            "letzten Samstag",
            "2026-11-28",
            "2026-11-29",
            "letzten Samstag",
        );
        is("on Friday", "2026-12-04", "2026-12-05", "on Friday");
        // A month without a year: its latest occurrence that has begun.
        is("what happened last May", "2026-05-01", "2026-06-01", "May");
        is("in December", "2026-12-01", "2027-01-01", "December");
        is("last December", "2025-12-01", "2026-01-01", "December");
        is("im Mai", "2026-05-01", "2026-06-01", "Mai");
    }

    #[test]
    fn words_that_are_not_dates() {
        for q in [
            "May I ask what the plumber said?",
            "what did Mark say about the march",
            "which dec board did we pick",
            "what is 2025 in binary",
            // The time of the thing asked about, not of the note.
            "When is the March 2026 dentist check now?",
            "What's the final time for the February 2025 dentist appointment?",
            "who won 3 to 2",
            "on the weekend plan",
            "",
        ] {
            assert_eq!(days(q), None, "{q}");
        }
    }

    #[test]
    fn spans_are_in_the_chats_zone_and_the_phrase_is_stripped() {
        let tz: Tz = "Europe/Berlin".parse().unwrap();
        let s = parse("What happened on 17 May 2025?", NOW, tz).unwrap();
        // Midnight in Berlin (summer time) is 22:00 UTC the day before.
        assert_eq!(s.from, 1_747_432_800_000);
        assert_eq!(s.to - s.from, 86_400_000);
        assert!(s.contains(s.from) && !s.contains(s.to));
        assert_eq!(
            s.strip("What happened on 17 May 2025?").trim(),
            "What happened on  ?".trim()
        );
        // A day with a clock change is 23 or 25 hours long.
        let s = parse("on 30 March 2025", NOW, tz).unwrap();
        assert_eq!(s.to - s.from, 23 * 3_600_000);
    }

    #[test]
    fn nothing_overflows_at_the_edges() {
        for q in [
            "in 2200",
            "31 December 2200",
            "vor 400 Jahren",
            "400 months ago",
            "February 30 2025",
        ] {
            let _ = parse(q, NOW, Tz::UTC);
            let _ = parse(q, i64::MAX, Tz::UTC);
            let _ = parse(q, i64::MIN, Tz::UTC);
        }
    }

    #[test]
    fn dates_find_a_spans_notes_in_any_insert_order() {
        let mut d = Dates::new();
        let day = 86_400_000;
        // Out of date order, more than one tail's worth, one edit repeated.
        for i in (0..10_000u64).rev() {
            d.insert(i, (i % 2) as i64, i as i64 * day);
        }
        d.insert(5, 1, 5 * day);
        assert_eq!(d.len(), 10_000);
        let span = Span {
            from: 3 * day,
            to: 7 * day,
            phrase: 0..0,
        };
        let mut all = d.within(&span, crate::memory::Chats::ALL, 100).unwrap();
        all.sort_unstable();
        assert_eq!(all, vec![3, 4, 5, 6]);
        let mut odd = d.within(&span, crate::memory::Chats::one(1), 100).unwrap();
        odd.sort_unstable();
        assert_eq!(odd, vec![3, 5]);
        assert_eq!(
            d.within(&span, crate::memory::Chats::ALL, 3),
            None,
            "too many"
        );
        d.remove(&[4u64, 6].into_iter().collect());
        let mut left = d.within(&span, crate::memory::Chats::ALL, 100).unwrap();
        left.sort_unstable();
        assert_eq!(left, vec![3, 5]);
    }
}
