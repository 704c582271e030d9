//! One alert state machine per check — pure: a reading and the time in, the
//! new state and what to tell out. Persisted by the caller (redb), so a
//! restart continues where the last run stopped: a condition already
//! reported is not reported again.
//!
//! ```text
//!            bad                 held for_secs (or at once: `immediate`)
//!   Ok ───────────▶ Pending ─────────────────────────▶ Firing ──▶ alert
//!    ▲                 │ ok                              │ ok      (repeat every
//!    │                 ▼                                 ▼          repeat_secs unless
//!    └──────────────── Ok        Resolving ◀─────────────┘          acked/snoozed)
//!    ▲                               │ ok for recover_secs
//!    └───────────────────────────────┘──▶ recovery ("lasted 14 min")
//! ```
//!
//! A check that changes between good and bad `flap_changes` times within
//! `flap_window_secs` is **flapping**: reported once, then silent (no
//! alerts, no recoveries) until it held one side for a whole window. A
//! critical reading on a firing warning escalates (one alert); a warning
//! after a critical is not news (the critical muted it).

use serde::{Deserialize, Serialize};

use super::Level;

/// The thresholds of `[health]` the machine needs, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    pub for_ms: i64,
    pub recover_ms: i64,
    pub repeat_ms: i64,
    pub group_ms: i64,
    pub flap_window_ms: i64,
    pub flap_changes: usize,
}

impl Rules {
    pub fn from_config(h: &crate::config::Health) -> Rules {
        let ms = |s: u64| (s as i64).saturating_mul(1000);
        Rules {
            for_ms: ms(h.for_secs),
            recover_ms: ms(h.recover_secs),
            repeat_ms: ms(h.repeat_secs),
            group_ms: ms(h.group_secs),
            flap_window_ms: ms(h.flap_window_secs),
            flap_changes: h.flap_changes.max(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Ok,
    Pending,
    Firing,
    Resolving,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Ok => "ok",
            Phase::Pending => "pending",
            Phase::Firing => "firing",
            Phase::Resolving => "resolving",
        }
    }
}

/// One check's alert state (what is persisted). Times are unix ms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct State {
    pub phase: Phase,
    /// The level being reported (warn or critical) while not `Ok`.
    pub level: Level,
    /// When the current phase began.
    pub since: i64,
    /// When the condition began (the first bad reading of this episode).
    pub bad_since: i64,
    /// When an alert about this episode was last sent (0: never).
    pub alerted_at: i64,
    /// Acknowledged: no repeats until it recovers.
    pub acked: bool,
    /// No repeats before this time (🔕 snooze).
    pub snoozed_until: i64,
    /// Times the reading changed between good and bad, newest last.
    pub flips: Vec<i64>,
    /// Reported as flapping; silent until it settles.
    pub flapping: bool,
    /// Whether the last reading was bad (for counting flips).
    pub last_bad: bool,
}

impl State {
    pub fn new(now: i64) -> State {
        State {
            phase: Phase::Ok,
            level: Level::Ok,
            since: now,
            bad_since: 0,
            alerted_at: 0,
            acked: false,
            snoozed_until: 0,
            flips: Vec::new(),
            flapping: false,
            last_bad: false,
        }
    }

    /// Muted by 🔕 or ✅: no repeats (a recovery is still told).
    pub fn muted(&self, now: i64) -> bool {
        self.acked || now < self.snoozed_until
    }
}

/// What a step says should be told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Event {
    /// The condition held long enough: an alert.
    Firing,
    /// A firing warning became critical.
    Escalated,
    /// Still firing after `repeat_secs`, not muted.
    Repeat,
    /// Good again for `recover_secs`; `lasted` ms since it began.
    Recovered,
    /// Changing too often: reported once, then silent until it settles.
    Flapping,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Firing => "firing",
            Event::Escalated => "escalated",
            Event::Repeat => "repeat",
            Event::Recovered => "recovered",
            Event::Flapping => "flapping",
        }
    }
}

/// Advances `s` by one reading at `now`. `immediate` fires without waiting
/// `for_secs` (a write that failed for lack of space).
pub fn step(s: &mut State, level: Level, immediate: bool, now: i64, r: &Rules) -> Option<Event> {
    let bad = level != Level::Ok;
    if bad != s.last_bad {
        s.flips.push(now);
        s.last_bad = bad;
    }
    s.flips.retain(|t| now - t < r.flap_window_ms);
    if s.flips.len() >= r.flap_changes && !s.flapping {
        s.flapping = true;
        if bad {
            s.enter_bad(level, now);
            s.phase = Phase::Firing;
        } else {
            s.phase = Phase::Ok;
        }
        s.alerted_at = now;
        return Some(Event::Flapping);
    }
    if s.flapping {
        if !s.flips.is_empty() {
            // Still changing: keep the state, say nothing.
            if bad {
                s.level = s.level.max(level);
            }
            return None;
        }
        // Settled for a whole window: report where it settled, once.
        s.flapping = false;
        return if bad {
            s.phase = Phase::Firing;
            s.level = level;
            s.alerted_at = now;
            Some(Event::Firing)
        } else {
            // The flapping notice was told: so is where it settled.
            s.recover(now)
        };
    }
    match (s.phase, bad) {
        (Phase::Ok, false) => None,
        (Phase::Ok, true) => {
            s.enter_bad(level, now);
            s.phase = Phase::Pending;
            if immediate || r.for_ms == 0 {
                return s.fire(now);
            }
            None
        }
        (Phase::Pending, false) => {
            s.reset(now);
            None
        }
        (Phase::Pending, true) => {
            s.level = s.level.max(level);
            if immediate || now - s.bad_since >= r.for_ms {
                return s.fire(now);
            }
            None
        }
        (Phase::Firing, true) => {
            if level > s.level {
                s.level = level;
                s.alerted_at = now;
                return Some(Event::Escalated);
            }
            // A critical mutes its warning: a lower reading changes nothing.
            if !s.muted(now) && now - s.alerted_at >= r.repeat_ms {
                s.alerted_at = now;
                return Some(Event::Repeat);
            }
            None
        }
        (Phase::Firing, false) => {
            s.phase = Phase::Resolving;
            s.since = now;
            if r.recover_ms == 0 {
                return s.recover(now);
            }
            None
        }
        (Phase::Resolving, false) => {
            if now - s.since >= r.recover_ms {
                return s.recover(now);
            }
            None
        }
        (Phase::Resolving, true) => {
            s.phase = Phase::Firing;
            s.since = now;
            if level > s.level {
                s.level = level;
                s.alerted_at = now;
                return Some(Event::Escalated);
            }
            None
        }
    }
}

impl State {
    fn enter_bad(&mut self, level: Level, now: i64) {
        if self.phase == Phase::Ok {
            self.bad_since = now;
            self.acked = false;
            self.snoozed_until = 0;
        }
        self.level = level;
        self.since = now;
    }

    fn fire(&mut self, now: i64) -> Option<Event> {
        self.phase = Phase::Firing;
        self.since = now;
        self.alerted_at = now;
        Some(Event::Firing)
    }

    fn recover(&mut self, now: i64) -> Option<Event> {
        let told = self.alerted_at > 0;
        self.reset(now);
        told.then_some(Event::Recovered)
    }

    fn reset(&mut self, now: i64) {
        let (flips, last_bad, bad_since) = (
            std::mem::take(&mut self.flips),
            self.last_bad,
            self.bad_since,
        );
        *self = State::new(now);
        self.flips = flips;
        self.last_bad = last_bad;
        // Kept so a recovery can say how long the episode lasted.
        self.bad_since = bad_since;
    }

    /// Whether this pending check should go out with an alert firing now
    /// for a condition that began at `first` (grouping: checks turning bad
    /// within `group_ms` of each other arrive as one message).
    pub fn joins_group(&self, first: i64, r: &Rules) -> bool {
        self.phase == Phase::Pending && (self.bad_since - first).abs() <= r.group_ms
    }

    /// Fires a pending check early, as part of a group.
    pub fn fire_with_group(&mut self, now: i64) -> Option<Event> {
        self.fire(now)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn rules() -> Rules {
        Rules {
            for_ms: 120 * S,
            recover_ms: 120 * S,
            repeat_ms: 4 * 3600 * S,
            group_ms: 30 * S,
            flap_window_ms: 900 * S,
            flap_changes: 6,
        }
    }

    /// Feeds one reading per minute from `t0`; returns (minute, event).
    fn run(s: &mut State, t0: i64, levels: &[Level]) -> Vec<(usize, Event)> {
        let r = rules();
        levels
            .iter()
            .enumerate()
            .filter_map(|(i, l)| step(s, *l, false, t0 + i as i64 * 60 * S, &r).map(|e| (i, e)))
            .collect()
    }

    use Level::{Critical as C, Ok as O, Warn as W};

    #[test]
    fn a_condition_fires_after_for_secs_and_recovers_after_recover_secs() {
        let mut s = State::new(0);
        let ev = run(&mut s, 0, &[O, W, W, W, W, O, O, O, O]);
        // Bad from minute 1; held 120 s at minute 3; good from 5, 120 s at 7.
        assert_eq!(ev, vec![(3, Event::Firing), (7, Event::Recovered)]);
        assert_eq!(s.phase, Phase::Ok);
        assert_eq!(s.bad_since, 60 * S, "the recovery can say when it began");
    }

    #[test]
    fn a_short_blip_says_nothing() {
        let mut s = State::new(0);
        assert!(run(&mut s, 0, &[O, W, O, O, W, O]).is_empty());
        assert_eq!(s.phase, Phase::Ok);
    }

    #[test]
    fn immediate_fires_at_once() {
        let mut s = State::new(0);
        assert_eq!(step(&mut s, C, true, 5, &rules()), Some(Event::Firing));
    }

    #[test]
    fn repeats_every_repeat_secs_unless_acknowledged_or_snoozed() {
        let r = rules();
        let mut s = State::new(0);
        let mut events = vec![];
        for min in 0..=(9 * 60) {
            if let Some(e) = step(&mut s, W, false, min * 60 * S, &r) {
                events.push((min, e));
            }
        }
        assert_eq!(
            events,
            vec![
                (2, Event::Firing),
                (2 + 240, Event::Repeat),
                (2 + 480, Event::Repeat)
            ]
        );
        s.acked = true;
        for min in 541..2000 {
            assert_eq!(step(&mut s, W, false, min * 60 * S, &r), None);
        }
        // A snooze ends; an acknowledgement lasts until it recovers.
        let mut s = State::new(0);
        step(&mut s, W, true, 0, &r);
        s.snoozed_until = 3600 * S * 5;
        assert_eq!(step(&mut s, W, false, 4 * 3600 * S + 1, &r), None);
        assert_eq!(
            step(&mut s, W, false, 5 * 3600 * S, &r),
            Some(Event::Repeat)
        );
    }

    #[test]
    fn critical_escalates_once_and_mutes_its_warning() {
        let mut s = State::new(0);
        let ev = run(&mut s, 0, &[W, W, W, C, C, W, W, C]);
        assert_eq!(ev, vec![(2, Event::Firing), (3, Event::Escalated)]);
        assert_eq!(s.level, C);
    }

    #[test]
    fn flapping_is_told_once_then_silent_until_it_settles() {
        let mut s = State::new(0);
        // Bad and good every minute for half an hour, then good for 20 min.
        let mut levels: Vec<Level> = (0..30).map(|i| if i % 2 == 0 { W } else { O }).collect();
        levels.extend(std::iter::repeat_n(O, 20));
        let ev = run(&mut s, 0, &levels);
        assert_eq!(
            ev.iter().map(|(_, e)| *e).collect::<Vec<_>>(),
            vec![Event::Flapping, Event::Recovered],
            "{ev:?}"
        );
        assert!(!s.flapping);
        assert_eq!(s.phase, Phase::Ok);
    }

    #[test]
    fn a_recovery_is_told_only_for_what_was_alerted() {
        let mut s = State::new(0);
        s.phase = Phase::Resolving;
        s.since = 0;
        assert_eq!(step(&mut s, O, false, 200 * S, &rules()), None);
    }

    #[test]
    fn grouping_takes_pending_checks_that_began_close_together() {
        let r = rules();
        let mut a = State::new(0);
        let mut b = State::new(0);
        step(&mut a, W, false, 0, &r);
        step(&mut b, W, false, 20 * S, &r);
        assert!(b.joins_group(a.bad_since, &r));
        let mut c = State::new(0);
        step(&mut c, W, false, 60 * S, &r);
        assert!(!c.joins_group(a.bad_since, &r));
    }
}
