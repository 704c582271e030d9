//! When a digest is due: cron expressions read in a chat's **local** time,
//! turned into real instants ("slots") with the DST rules of Vixie cron,
//! and the catch-up rule after downtime.
//!
//! tokio-cron-scheduler keeps a time-zone job's UTC offset fixed at
//! creation (so after a DST change it runs an hour off), so slots are
//! computed here: `croner` walks the expression over the *naive* local
//! calendar (as if it were UTC), and each naive time is mapped to the
//! instants it names in the zone:
//!
//! - a time that exists once is one slot;
//! - a time in a **skipped** hour (spring forward) runs once, right after
//!   the change, for a *fixed-time* expression (`30 2 * * *`), and not at
//!   all for a *wildcard* one (`0 * * * *`: the next hour comes anyway);
//! - a time in a **repeated** hour (fall back) runs once, at its first
//!   occurrence, for a fixed-time expression, and at both for a wildcard
//!   one (each is a real hour of its own).
//!
//! An expression is *wildcard* when its second, minute or hour field starts
//! with `*` (Vixie cron's test), *fixed-time* otherwise.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, TimeZone, Timelike, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds};
use croner::Cron;

/// How far (in local hours) a DST change can move a time; naive times are
/// searched this much beyond the range asked for.
const DST_MARGIN_HOURS: i64 = 3;
/// Most naive times looked at when walking back over downtime.
const WALK_CAP: usize = 2000;

/// A cron expression read in local time.
#[derive(Debug, Clone)]
pub struct LocalCron {
    /// Normalised to 6 fields (seconds first).
    expr: String,
    cron: Cron,
    fixed: bool,
}

impl LocalCron {
    /// Parses 5 fields (seconds taken as 0) or 6 (seconds first), as
    /// `croner` reads them; `Ok(None)` for `""` (off).
    pub fn parse(s: &str) -> anyhow::Result<Option<LocalCron>> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let fields: Vec<&str> = s.split_whitespace().collect();
        let expr = match fields.len() {
            5 => format!("0 {s}"),
            6 => fields.join(" "),
            _ => anyhow::bail!("{s:?} is not a cron expression of 5 or 6 fields"),
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&expr)
            .map_err(|e| anyhow::anyhow!("{s:?} is not a valid cron expression: {e}"))?;
        let f: Vec<&str> = expr.split_whitespace().collect();
        let fixed = !f[..3].iter().any(|x| x.starts_with('*'));
        Ok(Some(LocalCron { expr, cron, fixed }))
    }

    /// The expression, normalised to 6 fields.
    pub fn expr(&self) -> &str {
        &self.expr
    }

    /// Fixed-time (see the module docs), as opposed to wildcard.
    pub fn is_fixed(&self) -> bool {
        self.fixed
    }

    /// The instants naive local time `n` names in `tz`, by the DST rules.
    fn instants(&self, tz: Tz, n: NaiveDateTime) -> Vec<DateTime<Utc>> {
        match tz.from_local_datetime(&n) {
            LocalResult::Single(t) => vec![t.with_timezone(&Utc)],
            LocalResult::Ambiguous(a, b) => {
                let (a, b) = (a.with_timezone(&Utc), b.with_timezone(&Utc));
                if self.fixed {
                    vec![a.min(b)]
                } else {
                    vec![a.min(b), a.max(b)]
                }
            }
            LocalResult::None if self.fixed => after_gap(tz, n).into_iter().collect(),
            LocalResult::None => Vec::new(),
        }
    }

    /// The first slot strictly after `t`.
    pub fn next_after(&self, tz: Tz, t: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = t.with_timezone(&tz).naive_local();
        let start = naive_as_utc(local - Duration::hours(DST_MARGIN_HOURS));
        let mut best: Option<DateTime<Utc>> = None;
        for n in self.cron.clone().iter_after(start).take(WALK_CAP) {
            let n = n.naive_utc();
            if let Some(b) = best {
                // Past anything a DST change could still put before `best`.
                if n > b.with_timezone(&tz).naive_local() + Duration::hours(DST_MARGIN_HOURS) {
                    break;
                }
            }
            for i in self.instants(tz, n) {
                if i > t && best.is_none_or(|b| i < b) {
                    best = Some(i);
                }
            }
        }
        best
    }

    /// Slots in `(after, upto]`, newest first: at most `cap`, and only as
    /// far back as [`WALK_CAP`] naive times reach.
    pub fn slots_back(
        &self,
        tz: Tz,
        after: DateTime<Utc>,
        upto: DateTime<Utc>,
        cap: usize,
    ) -> Vec<DateTime<Utc>> {
        if upto <= after {
            return Vec::new();
        }
        let hi = upto.with_timezone(&tz).naive_local() + Duration::hours(DST_MARGIN_HOURS);
        let lo = after.with_timezone(&tz).naive_local() - Duration::hours(DST_MARGIN_HOURS);
        let mut out = Vec::new();
        // `iter_before` is exclusive: start a second past the top.
        for n in self
            .cron
            .clone()
            .iter_before(naive_as_utc(hi + Duration::seconds(1)))
            .take(WALK_CAP)
        {
            let n = n.naive_utc();
            if n < lo {
                break;
            }
            out.extend(
                self.instants(tz, n)
                    .into_iter()
                    .filter(|i| *i > after && *i <= upto),
            );
            // Enough, and nothing a DST change could still slot in above.
            if out.len() >= cap + 4 {
                break;
            }
        }
        out.sort_unstable_by(|a, b| b.cmp(a));
        out.dedup();
        out.truncate(cap);
        out
    }
}

/// Naive local time `n` read as if it were UTC (croner walks that calendar).
fn naive_as_utc(n: NaiveDateTime) -> DateTime<Utc> {
    Utc.from_utc_datetime(&n)
}

/// The first real instant after the gap that swallowed `n`: its minute,
/// then minute by minute until the local time exists.
fn after_gap(tz: Tz, n: NaiveDateTime) -> Option<DateTime<Utc>> {
    let mut m = n.with_second(0)?.with_nanosecond(0)?;
    for _ in 0..(DST_MARGIN_HOURS * 60) {
        m += Duration::minutes(1);
        match tz.from_local_datetime(&m) {
            LocalResult::Single(t) => return Some(t.with_timezone(&Utc)),
            LocalResult::Ambiguous(a, b) => return Some(a.min(b).with_timezone(&Utc)),
            LocalResult::None => {}
        }
    }
    None
}

/// The local-time window (`"08:00-22:00"`) hourly summaries are sent in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    /// Minutes after midnight, start inclusive, end exclusive. A window
    /// with `end <= start` wraps midnight (`"22:00-06:00"`).
    start: u32,
    end: u32,
}

impl ActiveHours {
    pub fn parse(s: &str) -> anyhow::Result<ActiveHours> {
        let bad = || anyhow::anyhow!("{s:?} is not a time window such as \"08:00-22:00\"");
        let (a, b) = s.trim().split_once('-').ok_or_else(bad)?;
        let min = |t: &str| -> anyhow::Result<u32> {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            if h > 24 || m > 59 || (h == 24 && m > 0) {
                return Err(bad());
            }
            Ok(h * 60 + m)
        };
        Ok(ActiveHours {
            start: min(a)?,
            end: min(b)?,
        })
    }

    /// Whether instant `t` falls in the window, in `tz`.
    pub fn contains(&self, tz: Tz, t: DateTime<Utc>) -> bool {
        let l = t.with_timezone(&tz);
        let m = l.hour() * 60 + l.minute();
        if self.start < self.end {
            (self.start..self.end).contains(&m)
        } else {
            m >= self.start || m < self.end
        }
    }
}

/// What to do about one schedule of one chat now.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    /// The slot to send now, and whether it is a late catch-up.
    pub send: Option<(DateTime<Utc>, bool)>,
    /// Slots that passed unsent, to record as missed (the newest ones).
    pub missed: Vec<DateTime<Utc>>,
}

/// Sent within this of its slot, a digest is on time (not "late").
pub const ON_TIME: Duration = Duration::minutes(5);

/// Decides a schedule's due slots at `now`, given the newest slot already in
/// the ledger (or the moment digests began for the chat): the newest slot
/// since then is sent — late if more than [`ON_TIME`] ago, and only within
/// `window`; every older one, and a newest one beyond the window, is missed
/// (at most `missed_cap` recorded). After downtime that is **one** catch-up,
/// never a burst.
pub fn plan(
    slots: &[DateTime<Utc>],
    now: DateTime<Utc>,
    window: Duration,
    missed_cap: usize,
) -> Plan {
    let Some((&newest, older)) = slots.split_first() else {
        return Plan::default();
    };
    let age = now - newest;
    let mut missed = older.to_vec();
    let send = if age <= window {
        Some((newest, age > ON_TIME))
    } else {
        missed.insert(0, newest);
        None
    };
    missed.truncate(missed_cap);
    Plan { send, missed }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BERLIN: Tz = chrono_tz::Europe::Berlin;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).unwrap()
    }

    fn cron(s: &str) -> LocalCron {
        LocalCron::parse(s).unwrap().unwrap()
    }

    /// Every slot in (a, b], oldest first.
    fn all(c: &LocalCron, a: DateTime<Utc>, b: DateTime<Utc>) -> Vec<DateTime<Utc>> {
        let mut v = c.slots_back(BERLIN, a, b, 10_000);
        v.reverse();
        v
    }

    #[test]
    fn fixed_and_wildcard() {
        assert!(cron("0 20 * * *").is_fixed());
        assert!(cron("30 2 * * *").is_fixed());
        assert!(!cron("0 * * * *").is_fixed());
        assert!(!cron("*/10 * * * * *").is_fixed());
        assert_eq!(cron("0 18 * * SUN").expr(), "0 0 18 * * SUN");
        assert!(LocalCron::parse("").unwrap().is_none());
        assert!(LocalCron::parse("* *").is_err());
        assert!(LocalCron::parse("0 25 * * *").is_err());
    }

    #[test]
    fn daily_follows_local_time_across_both_changes() {
        let c = cron("0 20 * * *");
        // 20:00 CET is 19:00Z; after 2026-03-29 20:00 CEST is 18:00Z.
        assert_eq!(
            all(&c, utc(2026, 3, 27, 0, 0), utc(2026, 3, 31, 0, 0)),
            vec![
                utc(2026, 3, 27, 19, 0),
                utc(2026, 3, 28, 19, 0),
                utc(2026, 3, 29, 18, 0),
                utc(2026, 3, 30, 18, 0)
            ]
        );
        assert_eq!(
            all(&c, utc(2026, 10, 24, 0, 0), utc(2026, 10, 26, 0, 0)),
            vec![utc(2026, 10, 24, 18, 0), utc(2026, 10, 25, 19, 0)]
        );
        assert_eq!(
            c.next_after(BERLIN, utc(2026, 3, 29, 17, 0)),
            Some(utc(2026, 3, 29, 18, 0))
        );
    }

    #[test]
    fn a_slot_in_the_skipped_hour_runs_once_right_after_the_change() {
        // 2026-03-29: 02:00 CET jumps to 03:00 CEST (01:00Z).
        let c = cron("30 2 * * *");
        assert_eq!(
            all(&c, utc(2026, 3, 28, 0, 0), utc(2026, 3, 30, 12, 0)),
            vec![
                utc(2026, 3, 28, 1, 30), // 02:30 CET
                utc(2026, 3, 29, 1, 0),  // 03:00 CEST, right after the gap
                utc(2026, 3, 30, 0, 30), // 02:30 CEST
            ]
        );
        assert_eq!(
            c.next_after(BERLIN, utc(2026, 3, 28, 12, 0)),
            Some(utc(2026, 3, 29, 1, 0))
        );
        // Several times in the gap still make one run.
        let every_quarter = cron("*/15 2 * * *");
        assert!(!every_quarter.is_fixed());
        let fixed_quarters = cron("0,15,30,45 2 * * *");
        assert_eq!(
            all(
                &fixed_quarters,
                utc(2026, 3, 29, 0, 0),
                utc(2026, 3, 29, 3, 0)
            ),
            vec![utc(2026, 3, 29, 1, 0)]
        );
        // A wildcard schedule simply has no slots in the missing hour.
        let hourly = cron("0 * * * *");
        assert_eq!(
            all(&hourly, utc(2026, 3, 29, 0, 30), utc(2026, 3, 29, 2, 30)),
            vec![utc(2026, 3, 29, 1, 0), utc(2026, 3, 29, 2, 0)] // 03:00, 04:00 CEST
        );
    }

    #[test]
    fn a_slot_in_the_repeated_hour_runs_once() {
        // 2026-10-25: 03:00 CEST goes back to 02:00 CET (01:00Z).
        let c = cron("30 2 * * *");
        assert_eq!(
            all(&c, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 12, 0)),
            vec![utc(2026, 10, 25, 0, 30)] // the first 02:30 (CEST)
        );
        assert_eq!(
            c.next_after(BERLIN, utc(2026, 10, 25, 0, 30)),
            Some(utc(2026, 10, 26, 1, 30))
        );
        // Hourly (wildcard): both real 02:00s are hours of their own.
        let hourly = cron("0 * * * *");
        assert_eq!(
            all(&hourly, utc(2026, 10, 24, 23, 30), utc(2026, 10, 25, 2, 30)),
            vec![
                utc(2026, 10, 25, 0, 0), // 02:00 CEST
                utc(2026, 10, 25, 1, 0), // 02:00 CET
                utc(2026, 10, 25, 2, 0), // 03:00 CET
            ]
        );
        assert_eq!(
            hourly.next_after(BERLIN, utc(2026, 10, 25, 0, 0)),
            Some(utc(2026, 10, 25, 1, 0))
        );
    }

    #[test]
    fn catch_up_is_one_late_digest_within_the_window() {
        let c = cron("0 20 * * *");
        let now = utc(2026, 6, 10, 23, 0); // 01:00 CEST on the 11th
        let slots = c.slots_back(BERLIN, utc(2026, 6, 7, 12, 0), now, 50);
        assert_eq!(slots.len(), 4); // 20:00 CEST (18:00Z) on the 7th to the 10th
        let p = plan(&slots, now, Duration::hours(12), 50);
        assert_eq!(p.send, Some((utc(2026, 6, 10, 18, 0), true)));
        assert_eq!(
            p.missed,
            vec![
                utc(2026, 6, 9, 18, 0),
                utc(2026, 6, 8, 18, 0),
                utc(2026, 6, 7, 18, 0)
            ]
        );
        // Beyond the window: nothing sent, all missed.
        let later = utc(2026, 6, 11, 12, 0);
        let slots = c.slots_back(BERLIN, utc(2026, 6, 9, 12, 0), later, 50);
        let p = plan(&slots, later, Duration::hours(12), 50);
        assert_eq!(p.send, None);
        assert_eq!(
            p.missed,
            vec![utc(2026, 6, 10, 18, 0), utc(2026, 6, 9, 18, 0)]
        );
        // On time.
        let p = plan(
            &[utc(2026, 6, 10, 18, 0)],
            utc(2026, 6, 10, 18, 0),
            Duration::hours(12),
            5,
        );
        assert_eq!(p.send, Some((utc(2026, 6, 10, 18, 0), false)));
        assert!(p.missed.is_empty());
        assert_eq!(plan(&[], later, Duration::hours(1), 5), Plan::default());
    }

    #[test]
    fn a_long_downtime_of_a_seconds_schedule_stays_bounded() {
        let c = cron("*/10 * * * * *");
        let now = utc(2026, 6, 10, 12, 0);
        let slots = c.slots_back(BERLIN, now - Duration::days(30), now, 20);
        assert_eq!(slots.len(), 20);
        assert_eq!(slots[0], now);
        assert_eq!(slots[19], now - Duration::seconds(190));
    }

    #[test]
    fn active_hours() {
        let h = ActiveHours::parse("08:00-22:00").unwrap();
        assert!(h.contains(BERLIN, utc(2026, 6, 10, 6, 0))); // 08:00 CEST
        assert!(!h.contains(BERLIN, utc(2026, 6, 10, 5, 59)));
        assert!(!h.contains(BERLIN, utc(2026, 6, 10, 20, 0))); // 22:00 CEST
        let night = ActiveHours::parse("22:00-06:00").unwrap();
        assert!(night.contains(BERLIN, utc(2026, 6, 10, 21, 0)));
        assert!(!night.contains(BERLIN, utc(2026, 6, 10, 12, 0)));
        for bad in ["8-22", "08:00", "25:00-01:00", "a:b-c:d"] {
            assert!(ActiveHours::parse(bad).is_err(), "{bad}");
        }
    }
}
