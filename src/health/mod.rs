//! mnemo watching itself: checks, alerts pushed into the admin chat,
//! metrics, readiness, the systemd watchdog.
//!
//! Every `health.interval_secs` the `health` job runs a **pass**
//! ([`Monitor::pass`]): each check gives a [`Reading`] (ok / warn /
//! critical with a one-line reason, a locale [`Line`]); each check's alert
//! state machine ([`machine`]) advances; the new states, the log of what
//! changed and — when something is to be told — one alert message for the
//! admin chat are committed together (`Core::health_commit`), and the
//! outbox sender delivers the message like any reply (durable,
//! rate-limited). Because the states are in redb, a restart does not alert
//! again for a condition already reported.
//!
//! Where alerts go: `telegram.admin_chat_id`, else the owner's private chat
//! (the owner is the paired user, or the first allowlisted id). Alerts are
//! only queued while the Telegram channel runs: the console is not
//! "unhealthy", and `mnemo chat` has nobody to tell.
//!
//! The checks ([`checks`]) read the store, the data disk, the model files
//! and what the process saw ([`signals`]: Telegram calls, voice failures,
//! refused writes). `mnemo doctor` runs the same checks from outside the
//! process ([`Monitor::readings`] without a core), and marks those that
//! need the running bot as such. [`metrics`] is the Prometheus registry,
//! [`http`] the optional `/healthz`, `/readyz`, `/metrics` listener and
//! [`notify`] systemd's notify protocol.

mod checks;
pub mod http;
pub mod machine;
pub mod metrics;
pub mod notify;
pub mod signals;

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::config::Config;
use crate::core::Core;
use crate::i18n::Line;
use crate::store::Store;
use machine::{Event, Rules, State};
pub use signals::signals;

/// How bad a reading is. Ordered: a higher level mutes a lower one.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, Default,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    #[default]
    Ok = 0,
    Warn = 1,
    Critical = 2,
}

impl Level {
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Critical => "critical",
        }
    }

    /// The locale key of its icon.
    pub fn icon_key(self) -> &'static str {
        match self {
            Level::Ok => "health-icon-ok",
            Level::Warn => "health-icon-warn",
            Level::Critical => "health-icon-critical",
        }
    }
}

/// Every check. The discriminant is the target of the alert buttons: never
/// renumber, only append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum CheckId {
    Disk = 1,
    Database = 2,
    Index = 3,
    Models = 4,
    Telegram = 5,
    Queues = 6,
    Transcription = 7,
    Memory = 8,
    Backup = 9,
    Digests = 10,
}

impl CheckId {
    pub const ALL: [CheckId; 10] = [
        CheckId::Disk,
        CheckId::Database,
        CheckId::Index,
        CheckId::Models,
        CheckId::Telegram,
        CheckId::Queues,
        CheckId::Transcription,
        CheckId::Memory,
        CheckId::Backup,
        CheckId::Digests,
    ];

    pub fn name(self) -> &'static str {
        match self {
            CheckId::Disk => "disk",
            CheckId::Database => "database",
            CheckId::Index => "index",
            CheckId::Models => "models",
            CheckId::Telegram => "telegram",
            CheckId::Queues => "queues",
            CheckId::Transcription => "transcription",
            CheckId::Memory => "memory",
            CheckId::Backup => "backup",
            CheckId::Digests => "digests",
        }
    }

    /// The locale key of its name as people read it.
    pub fn label_key(self) -> &'static str {
        match self {
            CheckId::Disk => "health-check-disk",
            CheckId::Database => "health-check-database",
            CheckId::Index => "health-check-index",
            CheckId::Models => "health-check-models",
            CheckId::Telegram => "health-check-telegram",
            CheckId::Queues => "health-check-queues",
            CheckId::Transcription => "health-check-transcription",
            CheckId::Memory => "health-check-memory",
            CheckId::Backup => "health-check-backup",
            CheckId::Digests => "health-check-digests",
        }
    }

    pub fn from_name(s: &str) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| c.name() == s)
    }

    pub fn from_u64(v: u64) -> Option<CheckId> {
        CheckId::ALL.into_iter().find(|c| *c as u64 == v)
    }

    /// Needs the running process (what it saw, its memory, its indexes):
    /// `mnemo doctor` outside `serve` cannot tell.
    pub fn needs_process(self) -> bool {
        matches!(
            self,
            CheckId::Index | CheckId::Telegram | CheckId::Transcription | CheckId::Memory
        )
    }
}

/// One check's result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    pub check: CheckId,
    pub level: Level,
    /// One line: why (locale key and arguments).
    pub reason: Line,
    /// When it was taken, unix ms.
    pub at: i64,
    /// False when the check does not apply here (the console has no
    /// Telegram; doctor outside `serve` cannot see the process; the backup
    /// job is off): it then never alerts.
    #[serde(default = "yes")]
    pub applies: bool,
    /// Alert at once, without waiting `for_secs` (a write refused for lack
    /// of space).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub immediate: bool,
}

fn yes() -> bool {
    true
}

impl Reading {
    fn new(check: CheckId, level: Level, reason: Line, at: i64) -> Reading {
        Reading {
            check,
            level,
            reason,
            at,
            applies: true,
            immediate: false,
        }
    }

    fn not_here(check: CheckId, reason: Line, at: i64) -> Reading {
        Reading {
            applies: false,
            ..Reading::new(check, Level::Ok, reason, at)
        }
    }
}

/// Readings a check record keeps for 🔍 Details.
const KEEP_READINGS: usize = 5;

/// What is stored per check: its alert state and last readings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckRecord {
    pub state: State,
    pub last: VecDeque<Reading>,
}

impl CheckRecord {
    pub fn decode(bytes: &[u8]) -> Option<CheckRecord> {
        serde_json::from_slice(bytes)
            .map_err(|e| tracing::warn!(error = %e, "unreadable health record; starting it afresh"))
            .ok()
    }

    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("health records serialise")
    }

    pub fn latest(&self) -> Option<&Reading> {
        self.last.back()
    }
}

/// One entry of the alert log (`/alerts`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub at: i64,
    pub check: CheckId,
    pub event: Event,
    pub level: Level,
    pub reason: Line,
    /// For a recovery: how long the condition lasted, ms.
    #[serde(default)]
    pub lasted_ms: i64,
}

impl Transition {
    pub fn decode(bytes: &[u8]) -> Option<Transition> {
        serde_json::from_slice(bytes).ok()
    }
}

/// The message a pass wants sent: its transitions, to `chat`, with buttons
/// signed for `user`.
#[derive(Debug, Clone)]
pub struct Alert {
    pub chat: i64,
    pub user: i64,
    pub items: Vec<Transition>,
}

/// What one pass did.
#[derive(Debug, Clone, Serialize)]
pub struct PassReport {
    pub readings: Vec<Reading>,
    pub events: Vec<(CheckId, Event)>,
    /// Whether an alert message was queued.
    pub alerted: bool,
}

/// The health monitor of one App.
pub struct Monitor {
    cfg: crate::config::Health,
    rules: Rules,
    data_dir: PathBuf,
    models: crate::models::ModelSet,
    /// The backup job is on (the backup check applies).
    backups_on: bool,
    cache: Mutex<checks::Cache>,
}

impl Monitor {
    pub fn new(cfg: &Config) -> anyhow::Result<Monitor> {
        Ok(Monitor {
            cfg: cfg.health.clone(),
            rules: Rules::from_config(&cfg.health),
            data_dir: cfg.data_dir()?,
            models: cfg.model_set()?,
            backups_on: !cfg.jobs.backup.trim().is_empty(),
            cache: Mutex::new(checks::Cache::default()),
        })
    }

    pub fn config(&self) -> &crate::config::Health {
        &self.cfg
    }

    /// Every check's reading now. Without `core` (doctor outside `serve`)
    /// the checks that need the running process say so instead.
    pub fn readings(&self, core: Option<&Core>, store: &Store, now: i64) -> Vec<Reading> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let cx = checks::Cx {
            cfg: &self.cfg,
            data_dir: &self.data_dir,
            models: &self.models,
            backups_on: self.backups_on,
            store,
            core,
            now,
        };
        CheckId::ALL
            .into_iter()
            .map(|id| {
                let r = checks::run(id, &cx, &mut cache);
                metrics::check_level(id.name(), r.level);
                r
            })
            .collect()
    }

    /// One pass: readings, state machines, one commit (states, log, alert).
    pub fn pass(&self, core: &Core, now: i64) -> anyhow::Result<PassReport> {
        let store = core.store();
        let readings = self.readings(Some(core), store, now);
        let mut records: Vec<(CheckId, CheckRecord)> = {
            let stored = store.health_records()?;
            readings
                .iter()
                .map(|r| {
                    let rec = stored
                        .iter()
                        .find(|(n, _)| n == r.check.name())
                        .and_then(|(_, b)| CheckRecord::decode(b))
                        .unwrap_or_else(|| CheckRecord {
                            state: State::new(now),
                            last: VecDeque::new(),
                        });
                    (r.check, rec)
                })
                .collect()
        };
        let mut events: Vec<(CheckId, Event)> = Vec::new();
        for ((id, rec), r) in records.iter_mut().zip(&readings) {
            rec.last.push_back(r.clone());
            while rec.last.len() > KEEP_READINGS {
                rec.last.pop_front();
            }
            if !r.applies {
                continue;
            }
            if let Some(e) = machine::step(&mut rec.state, r.level, r.immediate, now, &self.rules) {
                events.push((*id, e));
            }
        }
        // Grouping: checks that turned bad close to one firing now go with it.
        let firsts: Vec<i64> = events
            .iter()
            .filter(|(_, e)| *e == Event::Firing)
            .filter_map(|(id, _)| records.iter().find(|(i, _)| i == id))
            .map(|(_, r)| r.state.bad_since)
            .collect();
        for (id, rec) in records.iter_mut() {
            if firsts
                .iter()
                .any(|f| rec.state.joins_group(*f, &self.rules))
            {
                if let Some(e) = rec.state.fire_with_group(now) {
                    events.push((*id, e));
                }
            }
        }
        let items: Vec<Transition> = events
            .iter()
            .map(|(id, e)| {
                let (_, rec) = records
                    .iter()
                    .find(|(i, _)| i == id)
                    .expect("a record per check");
                let r = rec.latest().expect("a reading was just pushed");
                metrics::alert(id.name(), e.as_str());
                tracing::info!(
                    check = id.name(),
                    event = e.as_str(),
                    level = rec.state.level.as_str(),
                    "health transition"
                );
                Transition {
                    at: now,
                    check: *id,
                    event: *e,
                    level: if *e == Event::Recovered {
                        Level::Ok
                    } else {
                        rec.state.level.max(r.level)
                    },
                    reason: r.reason.clone(),
                    lasted_ms: if *e == Event::Recovered {
                        now - rec.state.bad_since
                    } else {
                        0
                    },
                }
            })
            .collect();
        let alert = match core.admin_target()? {
            Some((chat, user)) if !items.is_empty() && signals().telegram_on() => Some(Alert {
                chat,
                user,
                items: items.clone(),
            }),
            _ => None,
        };
        let alerted = alert.is_some();
        let encoded: Vec<(&'static str, Vec<u8>)> = records
            .iter()
            .map(|(id, r)| (id.name(), r.encode()))
            .collect();
        let log: Vec<Vec<u8>> = items
            .iter()
            .map(|t| serde_json::to_vec(t).expect("transitions serialise"))
            .collect();
        core.health_commit(&encoded, &log, alert)?;
        signals().passed(now);
        Ok(PassReport {
            readings,
            events,
            alerted,
        })
    }

    /// The heartbeat URL for this pass's readings: `url` when no check is
    /// critical, `url/fail` when one is; `None` when off.
    pub fn heartbeat(&self, readings: &[Reading]) -> Option<String> {
        let url = self.cfg.heartbeat_url.trim().trim_end_matches('/');
        if url.is_empty() {
            return None;
        }
        let critical = readings
            .iter()
            .any(|r| r.applies && r.level == Level::Critical);
        Some(if critical {
            format!("{url}/fail")
        } else {
            url.to_owned()
        })
    }
}

/// Every check's stored record (for `/health`, `/readyz`, doctor).
pub fn records(store: &Store) -> Vec<(CheckId, CheckRecord)> {
    let stored = store.health_records().unwrap_or_default();
    CheckId::ALL
        .into_iter()
        .filter_map(|id| {
            stored
                .iter()
                .find(|(n, _)| n == id.name())
                .and_then(|(_, b)| CheckRecord::decode(b))
                .map(|r| (id, r))
        })
        .collect()
}

/// How many checks are not ok now (as last recorded).
pub fn not_ok(store: &Store) -> usize {
    records(store)
        .iter()
        .filter(|(_, r)| {
            r.latest()
                .is_some_and(|x| x.applies && x.level != Level::Ok)
        })
        .count()
}

/// The newest `n` transitions, newest first.
pub fn log(store: &Store, n: usize) -> Vec<Transition> {
    store
        .health_log(n)
        .unwrap_or_default()
        .iter()
        .filter_map(|b| Transition::decode(b))
        .collect()
}

/// The process's resident set size in bytes (`/proc/self/statm`).
pub fn rss_bytes() -> u64 {
    let page = 4096u64;
    std::fs::read_to_string("/proc/self/statm")
        .ok()
        .and_then(|s| s.split_whitespace().nth(1)?.parse::<u64>().ok())
        .map_or(0, |pages| pages * page)
}
