//! The optional HTTP listener (`http.listen`): `/healthz` (the process
//! answers), `/readyz` (the database takes a write, Telegram answered
//! within `health.telegram_stale_secs`, health passes keep coming: 200, or
//! 503 with one reason per line) and `/metrics` (Prometheus text format).
//! Loopback only unless `http.allow_remote` (checked with the config).

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::{metrics, signals};
use crate::app::Shutdown;
use crate::core::{now_ms, Core};

#[derive(Clone)]
struct Ctx {
    core: Weak<Core>,
    health: crate::config::Health,
}

/// Binds `addr` and serves until `shutdown`. Binding errors come back at
/// once (a port in use is a start error, not a silent missing endpoint).
pub async fn serve(
    addr: SocketAddr,
    core: Weak<Core>,
    health: crate::config::Health,
    shutdown: Shutdown,
) -> anyhow::Result<tokio::task::JoinHandle<()>> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on http.listen {addr}: {e}"))?;
    tracing::info!(%addr, "health endpoints: /healthz /readyz /metrics");
    let app = Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .with_state(Ctx { core, health });
    Ok(tokio::spawn(async move {
        let stop = async move { shutdown.triggered().await };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::warn!(error = %e, "the health endpoint stopped");
        }
    }))
}

/// Why mnemo is not ready; empty when it is.
pub fn not_ready(core: &Core, h: &crate::config::Health, now: i64) -> Vec<String> {
    let mut why = Vec::new();
    if let Err(e) = core.store().write(|tx| tx.health_probe(now)) {
        if e.is_disk_full() {
            signals().disk_full(now);
        }
        why.push(format!("database: {e}"));
    }
    let s = signals();
    if s.telegram_on() {
        let stale = h.telegram_stale_secs as i64 * 1000;
        let last = s.telegram_last_ok();
        let since = if last > 0 { last } else { s.started() };
        if now - since > stale {
            why.push(format!(
                "telegram: no answer for {} s (limit {} s)",
                (now - since) / 1000,
                h.telegram_stale_secs
            ));
        }
    }
    let interval = std::time::Duration::from_secs(h.interval_secs);
    if !super::notify::alive(interval, now) {
        why.push(format!(
            "jobs: no health pass for {} s",
            (now - s.last_pass().max(s.started())) / 1000
        ));
    }
    why
}

async fn readyz(State(cx): State<Ctx>) -> Response {
    let Some(core) = cx.core.upgrade() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    };
    let h = cx.health.clone();
    let why = tokio::task::spawn_blocking(move || not_ready(&core, &h, now_ms()))
        .await
        .unwrap_or_else(|e| vec![format!("check panicked: {e}")]);
    if why.is_empty() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            why.iter().map(|w| format!("{w}\n")).collect::<String>(),
        )
            .into_response()
    }
}

async fn metrics_text(State(cx): State<Ctx>) -> Response {
    let Some(core) = cx.core.upgrade() else {
        return (StatusCode::SERVICE_UNAVAILABLE, "stopping\n").into_response();
    };
    let body = tokio::task::spawn_blocking(move || metrics::render(&snapshot(&core, now_ms())))
        .await
        .unwrap_or_default();
    ([(header::CONTENT_TYPE, metrics::CONTENT_TYPE)], body).into_response()
}

/// The store-derived gauges.
pub fn snapshot(core: &Arc<Core>, now: i64) -> metrics::Snapshot {
    let st = core.store();
    let voice: Vec<crate::store::VoiceJob> = [
        crate::store::VoiceState::Fetch,
        crate::store::VoiceState::Ready,
    ]
    .into_iter()
    .filter_map(|s| st.voice_jobs(s).ok())
    .flatten()
    .collect();
    let spend = st.llm_spend(now).ok();
    let verified = st.last_verified_backup().ok().flatten();
    let last = st.last_backup().ok().flatten();
    metrics::Snapshot {
        notes: st.count_notes().unwrap_or(0),
        embed_depth: st.embed_queue_len().unwrap_or(0),
        embed_age_secs: signals().embed_age_ms() as f64 / 1000.0,
        voice_depth: voice.len() as u64,
        voice_age_secs: voice
            .iter()
            .map(|j| (now - j.at) as f64 / 1000.0)
            .fold(0.0, f64::max),
        backup_age_secs: verified.map(|v| (now - v.at) as f64 / 1000.0),
        backup_ok: last.is_some_and(|l| l.verified),
        llm_tokens_today: spend
            .as_ref()
            .map_or(0, |s| s.today.input_tokens + s.today.output_tokens),
        llm_cost_today: spend.and_then(|s| s.today.cost_usd),
        rss_bytes: super::rss_bytes(),
    }
}
