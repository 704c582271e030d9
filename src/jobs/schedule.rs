//! When a job runs: a cron expression in UTC or a fixed period.
//!
//! Cron expressions are read by `croner` as `tokio-cron-scheduler` reads
//! them: 6 fields with seconds first (`0 17 * * * *`), or the classic 5
//! fields (seconds taken as 0). They are evaluated in **UTC** on purpose:
//! tokio-cron-scheduler's time-zone jobs keep the UTC offset they were
//! created with after a DST change, so anything that must follow local time
//! (digests) computes its local slots itself and is ticked from UTC.
//! `every 30s` / `every 5m` / `every 2h` is a fixed period from the start.

use std::time::Duration;

use chrono::{DateTime, Utc};
use croner::parser::{CronParser, Seconds};
use croner::Cron;

#[derive(Debug, Clone)]
pub enum Schedule {
    /// A cron expression (UTC), normalised to 6 fields.
    Cron { expr: String, cron: Box<Cron> },
    /// A fixed period.
    Every(Duration),
}

impl Schedule {
    /// Parses a schedule; `Ok(None)` for `""` (the job is off).
    pub fn parse(s: &str) -> anyhow::Result<Option<Schedule>> {
        let s = s.trim();
        if s.is_empty() {
            return Ok(None);
        }
        if let Some(p) = s.strip_prefix("every ") {
            return Ok(Some(Schedule::Every(parse_period(p.trim())?)));
        }
        let fields = s.split_whitespace().count();
        let expr = match fields {
            5 => format!("0 {s}"),
            6 => s.to_owned(),
            _ => {
                anyhow::bail!("{s:?} is not a cron expression of 5 or 6 fields (or \"every 30s\")")
            }
        };
        let cron = CronParser::builder()
            .seconds(Seconds::Required)
            .build()
            .parse(&expr)
            .map_err(|e| anyhow::anyhow!("{s:?} is not a valid cron expression: {e}"))?;
        Ok(Some(Schedule::Cron {
            expr,
            cron: Box::new(cron),
        }))
    }

    /// The next run strictly after `after`. For a period, `after` is taken
    /// as the last run (or the start).
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self {
            Schedule::Cron { cron, .. } => cron.find_next_occurrence(&after, false).ok(),
            Schedule::Every(d) => chrono::Duration::from_std(*d).ok().map(|d| after + d),
        }
    }

    /// As written in config terms (cron normalised to 6 fields).
    pub fn describe(&self) -> String {
        match self {
            Schedule::Cron { expr, .. } => expr.clone(),
            Schedule::Every(d) => format!("every {}s", d.as_secs()),
        }
    }
}

fn parse_period(p: &str) -> anyhow::Result<Duration> {
    let split = p.find(|c: char| !c.is_ascii_digit()).unwrap_or(p.len());
    let (n, unit) = p.split_at(split);
    let n: u64 = n
        .parse()
        .map_err(|_| anyhow::anyhow!("{p:?} is not a period such as 30s, 5m or 2h"))?;
    let secs = match unit.trim() {
        "s" | "" => n,
        "m" => n * 60,
        "h" => n * 3600,
        _ => anyhow::bail!("{p:?} is not a period such as 30s, 5m or 2h"),
    };
    if secs == 0 {
        anyhow::bail!("{p:?}: a period of 0 seconds never ends");
    }
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 29, h, m, s).unwrap()
    }

    #[test]
    fn five_and_six_fields_and_periods() {
        let six = Schedule::parse("0 17 * * * *").unwrap().unwrap();
        assert_eq!(six.next_after(at(10, 0, 0)), Some(at(10, 17, 0)));
        assert_eq!(six.next_after(at(10, 17, 0)), Some(at(11, 17, 0)));
        let five = Schedule::parse("*/10 * * * *").unwrap().unwrap();
        assert_eq!(five.describe(), "0 */10 * * * *");
        assert_eq!(five.next_after(at(10, 3, 5)), Some(at(10, 10, 0)));
        let secs = Schedule::parse("*/10 * * * * *").unwrap().unwrap();
        assert_eq!(secs.next_after(at(10, 0, 1)), Some(at(10, 0, 10)));
        let every = Schedule::parse("every 5m").unwrap().unwrap();
        assert_eq!(every.next_after(at(10, 0, 0)), Some(at(10, 5, 0)));
        assert_eq!(every.describe(), "every 300s");
        assert!(Schedule::parse("").unwrap().is_none());
        assert!(Schedule::parse("  ").unwrap().is_none());
    }

    #[test]
    fn nonsense_is_an_error_that_quotes_it() {
        for bad in [
            "* * *",
            "61 * * * * *",
            "every",
            "every 0s",
            "every 5d",
            "sometimes",
        ] {
            let e = Schedule::parse(bad).unwrap_err().to_string();
            assert!(e.contains(bad.trim_start_matches("every ")), "{bad}: {e}");
        }
    }
}
