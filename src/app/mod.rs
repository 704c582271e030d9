//! The App: the one owner of everything that runs.
//!
//! Every way of running mnemo — `serve` (Telegram), `chat` (the console),
//! one-shot commands (`recall`, `import`, `transcribe`, …) and the tests —
//! starts from an [`App`]. It opens the store, loads the embedding model and
//! the button keys, builds the [`Core`] (and with it the derived indexes)
//! and the voice [`Pipeline`] once. Long-running modes then call
//! [`App::start`], which runs startup maintenance and the background: the
//! embed worker, the transcription loop, the [`jobs`](crate::jobs) runtime
//! and the local control socket ([`control`]). Channels only *attach*:
//! [`App::serve_telegram`] runs the Telegram adapter on this App until the
//! [`Shutdown`] fires; the console reads stdin and hands lines to the core.
//!
//! Shutdown has one path: [`Shutdown::trigger`] (a signal, the end of the
//! console's input, a test), every task returns within
//! [`shutdown::DRAIN`], then [`App::close`] stops the job runtime and the
//! embed worker; dropping the App saves derived state (the ANN graph) —
//! the App's job, not each command's.

pub mod control;
mod embed_worker;
pub mod recovery;
pub mod shutdown;

use embed_worker::EmbedWorker;

use std::sync::Arc;

pub use shutdown::Shutdown;

use crate::config::Config;
use crate::core::{Core, Settings};
use crate::jobs::{self, Job, Schedule};
use crate::store::Store;
use crate::voice::pipeline::Pipeline;

/// Most embedding sessions bulk work opens: each holds its own copy of the
/// model (~180 MB), and calls of 8 short notes stop scaling long before a
/// big machine's core count.
const MAX_BULK_SESSIONS: usize = 4;

/// Ledger rows `mnemo schedule list` shows.
pub const SCHEDULE_LIST_ROWS: usize = 200;

pub struct App {
    cfg: Config,
    core: Arc<Core>,
    pipeline: Arc<Pipeline>,
    monitor: Arc<crate::health::Monitor>,
    shutdown: Shutdown,
    background: Option<Background>,
}

/// What [`App::start`] runs, and [`App::close`] stops.
struct Background {
    worker: EmbedWorker,
    jobs: Option<jobs::Runtime>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    control: Option<control::Server>,
}

impl App {
    /// Opens the data dir for serving: the model with `models.embed_threads`
    /// sessions. When the model files are missing or damaged, mnemo still
    /// runs — notes are stored and queued for embedding, recall is lexical —
    /// and says how to fix it.
    pub fn open(cfg: &Config) -> anyhow::Result<App> {
        App::open_with(cfg, cfg.models.embed_threads, false)
    }

    /// [`App::open`] for a long-running process (`serve`, `chat`): a large
    /// memory's vectors and graph load in the background, and questions are
    /// answered by words (saying so) until they are in.
    pub fn open_serving(cfg: &Config) -> anyhow::Result<App> {
        App::open_with(cfg, cfg.models.embed_threads, true)
    }

    /// [`App::open`] for bulk work (import, reindex): the model may use every
    /// core (up to [`MAX_BULK_SESSIONS`]), since nothing else competes.
    pub fn open_bulk(cfg: &Config) -> anyhow::Result<App> {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        App::open_with(
            cfg,
            cfg.models.embed_threads.max(cores.min(MAX_BULK_SESSIONS)),
            false,
        )
    }

    fn open_with(cfg: &Config, threads: usize, background: bool) -> anyhow::Result<App> {
        let dir = cfg.data_dir()?;
        let store = Store::open(&dir)?;
        let embedder = load_embedder(cfg, threads);
        let keys = load_keyring(cfg, &dir)?;
        let settings = Settings {
            vectors_in_background: background,
            ..Settings::from_config(cfg)
        };
        let reranker = match embedder {
            Some(_) if settings.weights.rerank > 0.0 => load_reranker(cfg),
            _ => None,
        };
        let core = Core::with_embedder(store, settings, embedder)?
            .with_reranker(reranker)
            .with_keyring(keys);
        App::with_core(cfg, core)
    }

    /// An App around a core built by the caller (tests, benches).
    pub fn with_core(cfg: &Config, core: Core) -> anyhow::Result<App> {
        let core = Arc::new(core);
        let pipeline = Arc::new(Pipeline::from_config(cfg, core.clone())?);
        let p = Arc::downgrade(&pipeline);
        core.on_voice_ready(move || {
            if let Some(p) = p.upgrade() {
                p.wake();
            }
        });
        Ok(App {
            cfg: cfg.clone(),
            core,
            pipeline,
            monitor: Arc::new(crate::health::Monitor::new(cfg)?),
            shutdown: Shutdown::new(),
            background: None,
        })
    }

    /// Routes digests through the LLM of `[llm]`, when it names a
    /// provider: the summary runs on `rt` (the core's caller blocks its own
    /// thread, never a runtime worker's, until it is done or fell back).
    pub fn enable_summaries(&self, rt: tokio::runtime::Handle) -> anyhow::Result<()> {
        let store = self.core.store().clone();
        let Some(llm) = crate::llm::Llm::from_config(&self.cfg.llm, store.clone())? else {
            return Ok(());
        };
        tracing::info!(providers = %llm.describe(), "digests are summarised by an LLM");
        let llm = Arc::new(llm);
        self.core.on_summarize(move |d, lang| {
            let req = match crate::digest::summary::request(&store, d, lang) {
                Ok(r) => r,
                Err(e) => {
                    tracing::error!(error = %e, "cannot read the notes for the summary");
                    return;
                }
            };
            let (tx, rx) = std::sync::mpsc::channel();
            let llm = llm.clone();
            rt.spawn(async move {
                let _ = tx.send(llm.summarize(&req).await);
            });
            match rx.recv() {
                Ok(out) => crate::digest::summary::apply(d, out),
                Err(_) => tracing::error!("the LLM summary task ended without an answer"),
            }
        });
        Ok(())
    }

    pub fn core(&self) -> &Arc<Core> {
        &self.core
    }

    pub fn config(&self) -> &Config {
        &self.cfg
    }

    pub fn pipeline(&self) -> &Arc<Pipeline> {
        &self.pipeline
    }

    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    pub fn monitor(&self) -> &Arc<crate::health::Monitor> {
        &self.monitor
    }

    /// Startup maintenance, then the background: embed worker,
    /// transcription loop, job runtime, control socket. Needs a tokio
    /// runtime (multi-threaded: the console blocks one thread on stdin).
    pub async fn start(&mut self) -> anyhow::Result<()> {
        if self.background.is_some() {
            return Ok(());
        }
        self.enable_summaries(tokio::runtime::Handle::current())?;
        self.startup_maintenance().await;
        let worker = EmbedWorker::spawn(self.core.clone(), self.shutdown.clone());
        let tasks = vec![
            tokio::spawn(self.pipeline.clone().run(self.shutdown.clone())),
            // A store that failed (a full disk) comes back by itself.
            recovery::spawn(self.core.clone(), self.shutdown.clone()),
        ];
        // systemd's watchdog (Type=notify, WatchdogSec=): kept alive from
        // the job runtime while health passes keep coming.
        let interval = std::time::Duration::from_secs(self.cfg.health.interval_secs);
        let tick = crate::health::notify::watchdog_period().map(|period| {
            let f: Arc<dyn Fn() + Send + Sync> = Arc::new(move || {
                if crate::health::notify::alive(interval, crate::core::now_ms()) {
                    crate::health::notify::watchdog();
                }
            });
            // tokio-cron-scheduler counts whole seconds.
            ((period / 2).max(std::time::Duration::from_secs(1)), f)
        });
        let jobs = match self.jobs()? {
            js if js.is_empty() && tick.is_none() => None,
            js => Some(
                jobs::Runtime::start_with(js, self.job_recorder(), self.shutdown.clone(), tick)
                    .await?,
            ),
        };
        let mut tasks = tasks;
        if let Some(addr) = self.cfg.http.addr()? {
            tasks.push(
                crate::health::http::serve(
                    addr,
                    Arc::downgrade(&self.core),
                    self.cfg.health.clone(),
                    self.shutdown.clone(),
                )
                .await?,
            );
        }
        let control = match control::Server::start(
            &self.cfg.data_dir()?,
            self.control_handler()?,
            self.shutdown.clone(),
        ) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "no control socket; `mnemo jobs` cannot ask this process");
                None
            }
        };
        self.background = Some(Background {
            worker,
            jobs,
            tasks,
            control,
        });
        Ok(())
    }

    /// What every start does before serving: failed voice notes back in line
    /// (their cause may be gone: a model fetched, disk space freed), and the
    /// upkeep jobs run once (a bot that runs for minutes a day still prunes).
    async fn startup_maintenance(&self) {
        let core = self.core.clone();
        let upkeep: Vec<Job> = self
            .jobs()
            .unwrap_or_default()
            .into_iter()
            .filter(|j| j.name == jobs::PRUNE || j.name == jobs::AUDIO_RETENTION)
            .collect();
        let record = self.job_recorder();
        let done = tokio::task::spawn_blocking(move || {
            match core.voice_retry() {
                Ok(n) if n > 0 => {
                    tracing::info!(jobs = n, "retrying voice notes that failed before")
                }
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "cannot requeue failed voice notes"),
            }
            for j in upkeep {
                j.run_once(&record);
            }
        })
        .await;
        if let Err(e) = done {
            tracing::error!(error = %e, "startup maintenance panicked");
        }
    }

    /// The configured jobs, wired to this App's core and pipeline. They
    /// hold them weakly: the scheduler may keep its closures a while after
    /// it stopped, and the store must close when the App goes (a restart in
    /// the same process opens it again).
    fn jobs(&self) -> anyhow::Result<Vec<Job>> {
        let mut out = Vec::new();
        for (name, schedule) in jobs::catalog(&self.cfg)? {
            let Some(schedule) = schedule else { continue };
            let weak = Arc::downgrade(&self.core);
            let core = move || {
                weak.upgrade()
                    .ok_or_else(|| anyhow::anyhow!("mnemo is stopping"))
            };
            let work: jobs::Work = match name {
                jobs::PRUNE => Arc::new(move || {
                    let core = core()?;
                    let n = core.prune()?;
                    let today = crate::core::now_ms().div_euclid(86_400_000);
                    let r = core.store().write(|tx| tx.prune_refusals(today))?;
                    Ok(format!("pruned {n} markers and nonces, {r} refusals"))
                }),
                jobs::AUDIO_RETENTION => {
                    let days = self.cfg.voice.keep_audio_days;
                    Arc::new(move || {
                        if days == 0 {
                            return Ok("audio is kept forever (voice.keep_audio_days = 0)".into());
                        }
                        let n = core()?.voice_prune_audio(days)?;
                        Ok(format!("removed {n} audio files older than {days} days"))
                    })
                }
                jobs::VOICE_RETRY => {
                    let p = Arc::downgrade(&self.pipeline);
                    Arc::new(move || {
                        let p = p
                            .upgrade()
                            .ok_or_else(|| anyhow::anyhow!("mnemo is stopping"))?;
                        let n = p.retry_model_failures()?;
                        Ok(format!("requeued {n} voice notes"))
                    })
                }
                jobs::GRAPH_SAVE => Arc::new(move || {
                    core()?.persist_merging();
                    Ok("saved if changed".into())
                }),
                jobs::BACKUP => {
                    let (dir, keep) = (self.cfg.backup_dir()?, self.cfg.backup.keep);
                    Arc::new(move || crate::backup::scheduled(core()?.store(), &dir, keep))
                }
                jobs::HEALTH => self.health_work(core),
                other => anyhow::bail!("job {other} has no work wired"),
            };
            out.push(Job {
                name,
                schedule,
                work,
            });
        }
        Ok(out)
    }

    /// The health job: one pass ([`crate::health::Monitor::pass`]), then
    /// the heartbeat (a GET on the runtime, never waited for here).
    fn health_work(
        &self,
        core: impl Fn() -> anyhow::Result<Arc<Core>> + Send + Sync + 'static,
    ) -> jobs::Work {
        let monitor = self.monitor.clone();
        let rt = tokio::runtime::Handle::try_current().ok();
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .build()
            .ok();
        Arc::new(move || {
            let core = core()?;
            let rep = monitor.pass(&core, crate::core::now_ms())?;
            if let (Some(url), Some(rt), Some(client)) =
                (monitor.heartbeat(&rep.readings), &rt, &client)
            {
                let client = client.clone();
                rt.spawn(async move {
                    // The URL may hold a secret (a check's key): never logged.
                    match client.get(&url).send().await {
                        Ok(r) if r.status().is_success() => {}
                        Ok(r) => tracing::warn!(status = %r.status(), "the heartbeat was refused"),
                        Err(e) => tracing::warn!(error = %e.without_url(), "the heartbeat failed"),
                    }
                });
            }
            let bad = rep
                .readings
                .iter()
                .filter(|r| r.applies && r.level != crate::health::Level::Ok)
                .count();
            Ok(format!(
                "{} checks, {bad} not ok, {} transitions{}",
                rep.readings.len(),
                rep.events.len(),
                if rep.alerted { ", alert queued" } else { "" }
            ))
        })
    }

    fn job_recorder(&self) -> jobs::Record {
        let core = Arc::downgrade(&self.core);
        Arc::new(move |name, at, took, res| {
            let Some(core) = core.upgrade() else { return };
            if let Err(e) = core
                .store()
                .write(|tx| tx.record_job_run(name, at, took, res).map(|_| ()))
            {
                tracing::warn!(job = name, error = %e, "cannot record a job run");
            }
        })
    }

    fn control_handler(&self) -> anyhow::Result<control::Handler> {
        let core = Arc::downgrade(&self.core);
        let catalog: Vec<(&'static str, Option<Schedule>)> = jobs::catalog(&self.cfg)?;
        let backup_dir = self.cfg.backup_dir()?;
        let monitor = self.monitor.clone();
        Ok(Arc::new(move |req| {
            let core = core
                .upgrade()
                .ok_or_else(|| anyhow::anyhow!("mnemo is stopping"))?;
            match req {
                control::Request::Jobs => {
                    let s = jobs::status(core.store(), &catalog, chrono::Utc::now())?;
                    Ok(serde_json::to_value(s)?)
                }
                control::Request::Digest { chat, period } => {
                    let period = crate::digest::Period::parse(&period)
                        .ok_or_else(|| anyhow::anyhow!("unknown period {period:?}"))?;
                    let chat = match chat {
                        Some(c) => c,
                        None => crate::digest::report::default_chat(&core)?,
                    };
                    let d = crate::digest::report::digest(&core, chat, period)?;
                    Ok(serde_json::to_value(d)?)
                }
                control::Request::Schedules => Ok(serde_json::to_value(
                    crate::digest::report::schedule_list(&core, SCHEDULE_LIST_ROWS)?,
                )?),
                // A snapshot from this process's own store: its read
                // transaction does not hold up the writers.
                control::Request::Backup { to } => {
                    let dir = to.map_or_else(|| backup_dir.clone(), std::path::PathBuf::from);
                    let o = crate::backup::backup(core.store(), &dir, &mut |_, _, _| {})?;
                    Ok(serde_json::to_value(o)?)
                }
                control::Request::Health => Ok(serde_json::to_value(monitor.readings(
                    Some(&core),
                    core.store(),
                    crate::core::now_ms(),
                ))?),
            }
        }))
    }

    /// The Telegram channel attached to this App: runs until the shutdown
    /// fires, and errors early when the token is rejected. A future of its
    /// own (it holds clones), so it can be spawned.
    pub fn serve_telegram(
        &self,
        token: String,
    ) -> impl std::future::Future<Output = anyhow::Result<()>> + Send + 'static {
        let (cfg, core, shutdown) = (self.cfg.clone(), self.core.clone(), self.shutdown.clone());
        async move {
            if let Some(code) = core.start_pairing()? {
                // On the terminal only: a secret has no place in the logs.
                tracing::warn!(
                    "no allowed users yet: the pairing code is printed on the terminal (stderr)"
                );
                eprintln!(
                    "mnemo: no allowed users yet: send `/start {}` to the bot from your Telegram account to become its owner (valid for {} min)",
                    code.as_str(),
                    cfg.telegram.pairing_ttl_secs.div_ceil(60)
                );
            }
            // Scheduled digests go out through this channel's sender.
            let digests = tokio::spawn(crate::digest::runner::run(
                Arc::downgrade(&core),
                crate::digest::runner::SystemClock,
                shutdown.clone(),
            ));
            let out = crate::channels::telegram::run(&cfg, core, token, shutdown).await;
            digests.abort();
            out
        }
    }

    /// Stops everything [`App::start`] started (triggering the shutdown if
    /// nobody did), then saves derived state. What is still queued stays in
    /// the store for the next start.
    pub async fn close(mut self) {
        crate::health::notify::stopping();
        self.shutdown.trigger();
        if let Some(bg) = self.background.take() {
            if let Some(j) = bg.jobs {
                j.stop().await;
            }
            for mut t in bg.tasks {
                // Each task returns within the drain once the shutdown fired;
                // one that does not is aborted (nothing may keep the store open).
                if tokio::time::timeout(shutdown::DRAIN * 2, &mut t)
                    .await
                    .is_err()
                {
                    t.abort();
                }
            }
            if let Some(c) = bg.control {
                c.stop().await;
            }
            let worker = bg.worker;
            let _ = tokio::task::spawn_blocking(move || worker.stop()).await;
        }
        // Dropping saves the derived state.
    }
}

impl Drop for App {
    /// Saves derived state (the ANN graph, if it changed) however the App
    /// ends: a one-shot command returning (early or not), or [`App::close`].
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(bg) = self.background.take() {
            // Not closed (an error on the way): the worker's own drop stops
            // it; tasks are aborted so that nothing keeps the store open.
            for t in &bg.tasks {
                t.abort();
            }
            drop(bg);
        }
        self.core.persist();
    }
}

/// The button signing keys: from `MNEMO_CALLBACK_SECRET`, else the key file
/// in the data dir (created on first start, mode 0600). Never logged.
pub fn load_keyring(
    cfg: &Config,
    dir: &std::path::Path,
) -> anyhow::Result<crate::buttons::Keyring> {
    let grace = i64::from(cfg.buttons.key_grace_days) * 86_400;
    let now = crate::core::now_ms() / 1000;
    Ok(crate::buttons::Keyring::load_or_create(
        dir,
        crate::config::callback_secret().as_deref(),
        grace,
        now,
    )?)
}

/// The cross-encoder recall asks about its first turns, loaded at its first
/// use (a store without imported conversations never reads it); `None`
/// without a models dir. Missing files show at that first use (a warning;
/// recall keeps its plain relevance), in the health check and in `mnemo
/// doctor`.
pub fn load_reranker(cfg: &Config) -> Option<Arc<crate::memory::rerank::Reranker>> {
    let models = cfg.model_set().ok()?;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    Some(Arc::new(crate::memory::rerank::Reranker::lazy(
        &models,
        RERANK_THREADS.min(cores),
    )))
}

/// Intra-op threads of the cross-encoder's session (at most the machine's
/// cores): its calls for a question are latency (up to 5 pairs), so they
/// may take both cores here (p50 35.7 against 53.8 ms with one).
const RERANK_THREADS: usize = 2;

/// The embedding model, or `None` with a warning that names the fix.
pub fn load_embedder(cfg: &Config, threads: usize) -> Option<Arc<crate::memory::embed::Embedder>> {
    let models = match cfg.model_set() {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!("no models dir: {e:#}");
            return None;
        }
    };
    match crate::memory::embed::Embedder::shared(&models, threads) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!("semantic recall is off: {e:#}");
            use crate::i18n::{I18n, Line};
            let line = Line::new("cli-semantic-off").text("reason", format!("{e:#}"));
            eprintln!(
                "{}",
                I18n::new().render_plain(&cfg.general.default_lang, &line)
            );
            None
        }
    }
}
