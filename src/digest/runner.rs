//! The loop that sends scheduled digests.
//!
//! Each wake-up is one [`pass`] at the [`Clock`]'s time: for every live
//! chat mnemo may serve whose digests are on, and every schedule, the slots
//! since the ledger's newest row for it (or since digests began for the
//! chat) are planned with [`slots::plan`]: the newest is built and queued
//! (late if it is a catch-up), older ones are recorded as missed. Then the
//! loop sleeps until the next slot, but never more than [`MAX_SLEEP`]
//! between clock reads: a suspended laptop, an NTP step or a changed /tz
//! is noticed within that. The ledger, not this loop, decides what was
//! sent, so a pass may run any number of times at any moment.
//!
//! Tests drive [`pass`] with a clock of their own to run days of schedule
//! in seconds.

use std::sync::Weak;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{build, period_notes, slots, Period};
use crate::app::Shutdown;
use crate::core::{now_ms, Core, CoreError};
use crate::store::{SlotKey, SlotRecord, SlotState};

/// Longest sleep between two clock reads.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);
/// Missed slots recorded per schedule and pass (the newest).
const MISSED_CAP: usize = 24;

/// Where the time comes from (tests bring their own).
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> DateTime<Utc>;
}

/// The wall clock.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pass {
    /// Digests queued for sending.
    pub queued: usize,
    /// Of those, catch-ups after downtime.
    pub late: usize,
    /// Slots with nothing new.
    pub skipped: usize,
    /// Slots recorded as missed.
    pub missed: usize,
    /// The next slot of any schedule of any chat.
    pub next: Option<DateTime<Utc>>,
}

/// Plans and queues every digest due at `now` (blocking: store reads and
/// commits, and the LLM summary when one is configured).
pub fn pass(core: &Core, now: DateTime<Utc>) -> Result<Pass, CoreError> {
    let mut out = Pass::default();
    let Some(sched) = core.schedules().cloned() else {
        return Ok(out);
    };
    if sched.crons.is_empty() {
        return Ok(out);
    }
    let store = core.store();
    // The next slot in the default zone, so a chat that appears between
    // two passes is looked at in time for its first slot.
    out.next = sched
        .crons
        .iter()
        .filter_map(|(_, c)| c.next_after(sched.tz, now))
        .min();
    let admin = core.admin_target()?.map(|(chat, _)| chat);
    for chat in store.live_chats()? {
        if !core.digest_chat_allowed(chat)? {
            continue;
        }
        let cd = core.ensure_chat_digest(chat, now.timestamp_millis())?;
        if !cd.enabled {
            continue;
        }
        let tz = core.chat_tz(Some(&cd));
        for (period, cron) in &sched.crons {
            let name = period.schedule();
            let (newest, covered) = store.ledger_marks(chat, name)?;
            let begun = DateTime::<Utc>::from_timestamp_millis(cd.since).unwrap_or(now);
            let after = newest
                .and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
                .map_or(begun, |t| t.max(begun));
            let mut due = cron.slots_back(tz, after, now, MISSED_CAP + 1);
            if *period == Period::Hour {
                due.retain(|t| sched.active_hours.contains(tz, *t));
            }
            let plan = slots::plan(&due, now, period.catch_up_window(), MISSED_CAP);
            let key = |t: DateTime<Utc>| SlotKey {
                chat_id: chat,
                schedule: name.to_owned(),
                slot: t.timestamp(),
            };
            if !plan.missed.is_empty() {
                let rows: Vec<_> = plan
                    .missed
                    .iter()
                    .map(|t| {
                        let mut r = SlotRecord::new(SlotState::Missed, now_ms());
                        r.reason = Some("mnemo was not running at the time".into());
                        (key(*t), r)
                    })
                    .collect();
                let n = core.record_slots(&rows)?;
                if n > 0 {
                    tracing::info!(
                        chat_id = chat,
                        schedule = name,
                        missed = n,
                        "digest slots passed while mnemo was down"
                    );
                }
                out.missed += n;
            }
            if let Some((slot, late)) = plan.send {
                let to = slot.timestamp_millis();
                let reach = if covered > 0 {
                    period.reach()
                } else {
                    period.length()
                };
                let from = to - reach.num_milliseconds();
                let notes = period_notes(store, chat, covered, from, to)?;
                let mut d = build(store, chat, *period, (from, to), &notes)?;
                if *period == Period::Day && Some(chat) == admin {
                    d.health = Some(crate::health::not_ok(store));
                }
                if !d.is_empty() {
                    let lang = core.chat_lang_or_default(chat)?;
                    core.summarize(&mut d, &lang);
                }
                if core.queue_digest(&key(slot), &d, late, tz)? {
                    if d.is_empty() {
                        out.skipped += 1;
                    } else {
                        tracing::info!(
                            chat_id = chat,
                            schedule = name,
                            notes = d.note_ids.len(),
                            late,
                            "digest queued"
                        );
                        out.queued += 1;
                        out.late += usize::from(late);
                    }
                }
            }
            let next = cron.next_after(tz, now);
            out.next = match (out.next, next) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
    }
    Ok(out)
}

/// Runs passes until `shutdown`: at each slot, and at least every
/// [`MAX_SLEEP`]. Holds the core weakly, so it never keeps the store open.
pub async fn run(core: Weak<Core>, clock: impl Clock, shutdown: Shutdown) {
    let clock = std::sync::Arc::new(clock);
    loop {
        if shutdown.is_triggered() {
            break;
        }
        let Some(c) = core.upgrade() else { break };
        let now = clock.now();
        let done = tokio::task::spawn_blocking(move || pass(&c, now)).await;
        let wait = match done {
            Ok(Ok(p)) => p
                .next
                .and_then(|t| (t - clock.now()).to_std().ok())
                .map_or(MAX_SLEEP, |d| d.min(MAX_SLEEP)),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "digest pass failed; trying again shortly");
                MAX_SLEEP
            }
            Err(e) => {
                tracing::error!(error = %e, "digest pass panicked");
                MAX_SLEEP
            }
        };
        // Wake a hair after the slot, so the slot is in the past.
        let wait = wait + Duration::from_millis(5);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.triggered() => break,
        }
    }
    tracing::debug!("digest loop stopped");
}
