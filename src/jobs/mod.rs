//! Background jobs: upkeep that runs on a schedule while mnemo runs.
//!
//! A [`Job`] is a name, a [`Schedule`] from `[jobs]` in the config and a
//! piece of blocking work (store commits, file removal) that returns a
//! one-line summary. The [`Runtime`] ticks them with
//! `tokio-cron-scheduler` (in UTC; see [`schedule`] for why), runs each on a
//! blocking thread, never two runs of one job at once (a tick that finds the
//! previous run still busy is skipped), and records every run in the store
//! (`JobRun`: when, how long, ok or the error), so `mnemo jobs` can show the
//! last and next run of each, across restarts.
//!
//! Which jobs exist is decided in one place, [`catalog`]; what they do is
//! wired by the [`crate::app::App`], which owns what they touch.

pub mod schedule;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

use anyhow::Context;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_cron_scheduler::{Job as CronJob, JobScheduler};

pub use schedule::Schedule;

use crate::app::Shutdown;
use crate::config::Config;
use crate::store::Store;

/// Processed-update markers, used button nonces, old recall questions and
/// stranger refusals past their use.
pub const PRUNE: &str = "prune";
/// Voice audio past `voice.keep_audio_days`.
pub const AUDIO_RETENTION: &str = "audio-retention";
/// Voice notes that failed for want of the speech model, once it is back.
pub const VOICE_RETRY: &str = "voice-retry";
/// The ANN graph, saved when it changed (so a crash rebuilds less).
pub const GRAPH_SAVE: &str = "graph-save";
/// A verified backup into `backup.dir`, then retention (`backup.keep`).
pub const BACKUP: &str = "backup";
/// The health checks and their alerts (`crate::health`), every
/// `health.interval_secs`.
pub const HEALTH: &str = "health";

/// Every job mnemo has, with its schedule from config (`None`: turned off).
pub fn catalog(cfg: &Config) -> anyhow::Result<Vec<(&'static str, Option<Schedule>)>> {
    let j = &cfg.jobs;
    let health = format!("every {}s", cfg.health.interval_secs);
    [
        (PRUNE, &j.prune),
        (AUDIO_RETENTION, &j.audio_retention),
        (VOICE_RETRY, &j.voice_retry),
        (GRAPH_SAVE, &j.graph_save),
        (BACKUP, &j.backup),
        (HEALTH, &health),
    ]
    .into_iter()
    .map(|(name, s)| {
        let key = match name {
            HEALTH => "health.interval_secs".to_owned(),
            n => format!("jobs.{}", n.replace('-', "_")),
        };
        Ok((name, Schedule::parse(s).with_context(|| key)?))
    })
    .collect()
}

/// Blocking work of a job: a summary of what it did, or why it failed.
pub type Work = Arc<dyn Fn() -> anyhow::Result<String> + Send + Sync>;

/// Stores one run: (job name, started at unix ms, took ms, summary or error).
pub type Record = Arc<dyn Fn(&str, i64, u64, Result<&str, &str>) + Send + Sync>;

pub struct Job {
    pub name: &'static str,
    pub schedule: Schedule,
    pub work: Work,
}

impl Job {
    /// Runs the job once on this thread (blocking work) and records the run:
    /// what a tick does, and what start-up upkeep does.
    pub fn run_once(&self, record: &Record) {
        let at = crate::core::now_ms();
        let t0 = Instant::now();
        let out = (self.work)();
        let took = t0.elapsed().as_millis() as u64;
        match &out {
            Ok(d) => {
                tracing::debug!(job = self.name, took_ms = took, detail = %d, "job ran");
                record(self.name, at, took, Ok(d));
            }
            Err(e) => {
                let why = format!("{e:#}");
                tracing::warn!(job = self.name, took_ms = took, error = %why, "job failed");
                record(self.name, at, took, Err(&why));
            }
        }
    }
}

/// One job as `mnemo jobs --json` shows it (times RFC 3339, null when never
/// run or turned off).
#[derive(Debug, Clone, Serialize, serde::Deserialize, PartialEq)]
pub struct JobStatus {
    pub name: String,
    /// The schedule as configured (cron normalised to 6 fields), or "off".
    pub schedule: String,
    pub last_run: Option<String>,
    /// "ok" or "failed".
    pub last_outcome: Option<String>,
    /// What the last run did, or why it failed.
    pub last_detail: Option<String>,
    pub next_run: Option<String>,
    pub runs: u64,
    pub failures: u64,
}

/// The status of every job in `catalog`, from the runs recorded in `store`.
pub fn status(
    store: &Store,
    catalog: &[(&'static str, Option<Schedule>)],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<JobStatus>> {
    let runs = store.job_runs()?;
    Ok(catalog
        .iter()
        .map(|(name, schedule)| {
            let last = runs.iter().find(|(n, _)| n == name).map(|(_, r)| r);
            let last_at = last.and_then(|r| DateTime::from_timestamp_millis(r.at));
            let next = schedule.as_ref().and_then(|s| match s {
                // A period counts from the last run; once that is past (the
                // bot was not running), from now.
                Schedule::Every(_) => last_at
                    .and_then(|t| s.next_after(t))
                    .filter(|t| *t > now)
                    .or_else(|| s.next_after(now)),
                Schedule::Cron { .. } => s.next_after(now),
            });
            JobStatus {
                name: (*name).to_owned(),
                schedule: schedule
                    .as_ref()
                    .map_or_else(|| "off".to_owned(), Schedule::describe),
                last_run: last_at.map(rfc3339),
                last_outcome: last.map(|r| if r.ok { "ok" } else { "failed" }.to_owned()),
                last_detail: last.map(|r| r.detail.clone()),
                next_run: next.map(rfc3339),
                runs: last.map_or(0, |r| r.runs),
                failures: last.map_or(0, |r| r.failures),
            }
        })
        .collect())
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// The running scheduler.
pub struct Runtime {
    sched: JobScheduler,
}

impl Runtime {
    /// Starts ticking `jobs`. `record` stores each run (the store's
    /// `record_job_run` in a commit of its own). Ticks after `shutdown` run
    /// nothing.
    pub async fn start(
        jobs: Vec<Job>,
        record: Record,
        shutdown: Shutdown,
    ) -> anyhow::Result<Runtime> {
        Runtime::start_with(jobs, record, shutdown, None).await
    }

    /// [`Runtime::start`], plus a `tick` run on the runtime itself every
    /// period (not recorded): systemd's watchdog keep-alive comes from the
    /// same scheduler that runs the jobs, so a hung runtime stops it.
    pub async fn start_with(
        jobs: Vec<Job>,
        record: Record,
        shutdown: Shutdown,
        tick: Option<(std::time::Duration, Arc<dyn Fn() + Send + Sync>)>,
    ) -> anyhow::Result<Runtime> {
        let sched = JobScheduler::new()
            .await
            .context("cannot start the job scheduler")?;
        if let Some((every, f)) = tick {
            let cj = CronJob::new_repeated(every, move |_, _| f())
                .context("cannot schedule the watchdog tick")?;
            sched.add(cj).await?;
        }
        for job in jobs {
            let (name, schedule) = (job.name, job.schedule.clone());
            let runner = Arc::new(Runner {
                job,
                busy: AtomicBool::new(false),
                record: record.clone(),
                shutdown: shutdown.clone(),
            });
            let tick = move |_id, _sched| {
                let r = runner.clone();
                Box::pin(async move { r.fire().await })
                    as std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>
            };
            let cj = match &schedule {
                Schedule::Cron { expr, .. } => CronJob::new_async(expr.as_str(), tick),
                Schedule::Every(d) => CronJob::new_repeated_async(*d, tick),
            }
            .with_context(|| format!("cannot schedule job {name}"))?;
            sched.add(cj).await?;
            tracing::debug!(job = name, schedule = %schedule.describe(), "job scheduled");
        }
        sched
            .start()
            .await
            .context("cannot start the job scheduler")?;
        Ok(Runtime { sched })
    }

    /// Stops ticking. A run in progress finishes on its blocking thread (its
    /// writes are single commits: all or nothing).
    pub async fn stop(mut self) {
        if let Err(e) = self.sched.shutdown().await {
            tracing::warn!(error = %e, "job scheduler did not stop cleanly");
        }
    }
}

struct Runner {
    job: Job,
    busy: AtomicBool,
    record: Record,
    shutdown: Shutdown,
}

impl Runner {
    async fn fire(self: Arc<Self>) {
        if self.shutdown.is_triggered() {
            return;
        }
        if self.busy.swap(true, Ordering::AcqRel) {
            tracing::debug!(job = self.job.name, "previous run still busy; tick skipped");
            return;
        }
        // Idle again however this ends (a panic here would otherwise skip
        // every later tick).
        let _idle = Idle(&self.busy);
        let me = self.clone();
        let done = tokio::task::spawn_blocking(move || me.job.run_once(&me.record)).await;
        if let Err(e) = done {
            tracing::error!(job = self.job.name, error = %e, "job panicked");
        }
    }
}

struct Idle<'a>(&'a AtomicBool);

impl Drop for Idle<'_> {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}
