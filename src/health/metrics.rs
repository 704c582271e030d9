//! Prometheus metrics (`/metrics`, the official `prometheus-client` crate).
//!
//! One registry per process. Counters and the recall histogram are moved
//! where things happen (`notes_ingested`, `recall_seconds`,
//! `telegram_call`, `alert`, `digest_outcome`); gauges that describe the
//! store (queue depths, backup age, LLM spend) are set from a [`Snapshot`]
//! just before each scrape is encoded. Names follow the conventions:
//! `mnemo_` prefix, base units, `_total` on counters (added by the crate).

use std::sync::atomic::AtomicU64;
use std::sync::{Mutex, OnceLock};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SourceLabel {
    source: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AlertLabels {
    check: String,
    event: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabel {
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabel {
    check: String,
}

type FGauge = Gauge<f64, AtomicU64>;

struct Metrics {
    registry: Mutex<Registry>,
    ingested: Family<SourceLabel, Counter>,
    recall: Histogram,
    calls: Family<CallLabels, Counter>,
    alerts: Family<AlertLabels, Counter>,
    digests: Family<OutcomeLabel, Counter>,
    checks: Family<CheckLabel, Gauge>,
    embed_depth: Gauge,
    embed_age: FGauge,
    voice_depth: Gauge,
    voice_age: FGauge,
    rtf: FGauge,
    backup_age: FGauge,
    backup_ok: Gauge,
    llm_tokens: Gauge,
    llm_cost: FGauge,
    rss: Gauge,
    notes: Gauge,
}

fn metrics() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let mut r = Registry::with_prefix("mnemo");
        let m = Metrics {
            registry: Mutex::new(Registry::default()),
            ingested: Family::default(),
            recall: Histogram::new(exponential_buckets(0.002, 2.0, 12)),
            calls: Family::default(),
            alerts: Family::default(),
            digests: Family::default(),
            checks: Family::default(),
            embed_depth: Gauge::default(),
            embed_age: FGauge::default(),
            voice_depth: Gauge::default(),
            voice_age: FGauge::default(),
            rtf: FGauge::default(),
            backup_age: FGauge::default(),
            backup_ok: Gauge::default(),
            llm_tokens: Gauge::default(),
            llm_cost: FGauge::default(),
            rss: Gauge::default(),
            notes: Gauge::default(),
        };
        r.register(
            "notes_ingested",
            "Notes stored, by source (telegram, console, voice, import)",
            m.ingested.clone(),
        );
        r.register_with_unit(
            "recall_duration",
            "Time to answer one recall question (embedding, search, fusion)",
            Unit::Seconds,
            m.recall.clone(),
        );
        r.register(
            "telegram_calls",
            "Bot API calls by method and outcome (ok, 5xx, 429, network, refused)",
            m.calls.clone(),
        );
        r.register(
            "alert_transitions",
            "Health alert events by check (firing, escalated, repeat, recovered, flapping)",
            m.alerts.clone(),
        );
        r.register(
            "digest_outcomes",
            "Scheduled digest slots by outcome (sent, failed, skipped, missed, uncertain)",
            m.digests.clone(),
        );
        r.register(
            "health_check_level",
            "Each check's last level: 0 ok, 1 warn, 2 critical",
            m.checks.clone(),
        );
        r.register(
            "embed_queue_depth",
            "Notes waiting for their embedding",
            m.embed_depth.clone(),
        );
        r.register_with_unit(
            "embed_queue_oldest_age",
            "Age of the oldest note waiting for its embedding",
            Unit::Seconds,
            m.embed_age.clone(),
        );
        r.register(
            "transcription_queue_depth",
            "Voice notes waiting to be transcribed",
            m.voice_depth.clone(),
        );
        r.register_with_unit(
            "transcription_queue_oldest_age",
            "Age of the oldest voice note waiting to be transcribed",
            Unit::Seconds,
            m.voice_age.clone(),
        );
        r.register(
            "transcription_realtime_factor",
            "Transcription time over audio duration, last voice note",
            m.rtf.clone(),
        );
        r.register_with_unit(
            "backup_age",
            "Time since the last verified backup (-1: none yet)",
            Unit::Seconds,
            m.backup_age.clone(),
        );
        r.register(
            "backup_last_verify_success",
            "1 when the last backup verified, 0 when it failed or none was made",
            m.backup_ok.clone(),
        );
        r.register(
            "llm_tokens_today",
            "LLM tokens (input + output) used today, UTC",
            m.llm_tokens.clone(),
        );
        r.register(
            "llm_cost_dollars_today",
            "LLM cost today in US dollars, UTC (-1: unknown)",
            m.llm_cost.clone(),
        );
        r.register_with_unit(
            "process_resident_memory",
            "Resident set size of the mnemo process",
            Unit::Bytes,
            m.rss.clone(),
        );
        r.register("notes", "Memories stored", m.notes.clone());
        *m.registry.lock().unwrap_or_else(|p| p.into_inner()) = r;
        m
    })
}

/// A note was stored (after its commit).
pub fn notes_ingested(source: &str, n: u64) {
    metrics()
        .ingested
        .get_or_create(&SourceLabel {
            source: source.to_owned(),
        })
        .inc_by(n);
}

/// One recall question answered in `secs`.
pub fn recall_seconds(secs: f64) {
    metrics().recall.observe(secs);
}

pub fn telegram_call(method: &str, outcome: &str) {
    metrics()
        .calls
        .get_or_create(&CallLabels {
            method: method.to_owned(),
            outcome: outcome.to_owned(),
        })
        .inc();
}

pub fn alert(check: &str, event: &str) {
    metrics()
        .alerts
        .get_or_create(&AlertLabels {
            check: check.to_owned(),
            event: event.to_owned(),
        })
        .inc();
}

pub fn digest_outcome(outcome: &str) {
    metrics()
        .digests
        .get_or_create(&OutcomeLabel {
            outcome: outcome.to_owned(),
        })
        .inc();
}

pub fn check_level(check: &str, level: super::Level) {
    metrics()
        .checks
        .get_or_create(&CheckLabel {
            check: check.to_owned(),
        })
        .set(level as i64);
}

/// The last transcription's real-time factor.
pub fn transcription_rtf(rtf: f64) {
    metrics().rtf.set(rtf);
}

/// Store-derived values, read just before a scrape.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    pub notes: u64,
    pub embed_depth: u64,
    pub embed_age_secs: f64,
    pub voice_depth: u64,
    pub voice_age_secs: f64,
    pub backup_age_secs: Option<f64>,
    pub backup_ok: bool,
    pub llm_tokens_today: u64,
    pub llm_cost_today: Option<f64>,
    pub rss_bytes: u64,
}

/// The Prometheus text exposition of every metric, gauges set from `s`.
pub fn render(s: &Snapshot) -> String {
    let m = metrics();
    m.notes.set(s.notes as i64);
    m.embed_depth.set(s.embed_depth as i64);
    m.embed_age.set(s.embed_age_secs);
    m.voice_depth.set(s.voice_depth as i64);
    m.voice_age.set(s.voice_age_secs);
    m.backup_age.set(s.backup_age_secs.unwrap_or(-1.0));
    m.backup_ok.set(i64::from(s.backup_ok));
    m.llm_tokens.set(s.llm_tokens_today as i64);
    m.llm_cost.set(s.llm_cost_today.unwrap_or(-1.0));
    m.rss.set(s.rss_bytes as i64);
    let mut out = String::new();
    let r = m.registry.lock().unwrap_or_else(|p| p.into_inner());
    prometheus_client::encoding::text::encode(&mut out, &r).expect("writing to a String");
    out
}

/// The content type of [`render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
