//! What the running process saw that the store cannot tell: Telegram calls
//! and their failures, voice notes that failed, writes refused for lack of
//! space, the last health pass. Process-wide (one per process, like the
//! Prometheus registry): the places that see these things record them
//! without being handed a monitor, and the checks read them.
//!
//! Nothing here is durable; after a restart the checks start from the
//! store's own state and fresh observations.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Mutex, OnceLock};

use serde::Serialize;

/// How long failures are remembered (the checks look at the last hour).
const WINDOW_MS: i64 = 3_600_000;
/// Bound on each remembered list (a storm of errors stays small).
const MAX_EVENTS: usize = 4096;

/// Why a Telegram call failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum CallError {
    /// 5xx (including 502 from a proxy).
    Server,
    /// 429: Telegram asked to slow down.
    Throttled,
    /// No connection, timeout, unreadable answer.
    Network,
    /// Refused for good (4xx other than 429).
    Refused,
}

impl CallError {
    pub fn as_str(self) -> &'static str {
        match self {
            CallError::Server => "5xx",
            CallError::Throttled => "429",
            CallError::Network => "network",
            CallError::Refused => "refused",
        }
    }

    /// Classifies a teloxide error.
    pub fn of(e: &teloxide::RequestError) -> CallError {
        use teloxide::{ApiError, RequestError};
        match e {
            RequestError::RetryAfter(_) => CallError::Throttled,
            RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. } => {
                CallError::Network
            }
            RequestError::Api(ApiError::Unknown(d))
                if d.contains("Internal Server Error")
                    || d.contains("Bad Gateway")
                    || d.contains("Service Unavailable")
                    || d.contains("Gateway Timeout") =>
            {
                CallError::Server
            }
            _ => CallError::Refused,
        }
    }
}

/// Counts of Telegram failures in a period, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct CallErrors {
    pub server: u64,
    pub throttled: u64,
    pub network: u64,
    pub refused: u64,
}

impl CallErrors {
    pub fn total(&self) -> u64 {
        self.server + self.throttled + self.network + self.refused
    }
}

#[derive(Default)]
pub struct Signals {
    telegram_on: AtomicBool,
    telegram_last_ok: AtomicI64,
    telegram_calls: AtomicI64,
    telegram_errors: Mutex<VecDeque<(i64, CallError)>>,
    voice_failures: Mutex<VecDeque<(i64, bool)>>,
    disk_full_at: AtomicI64,
    last_pass: AtomicI64,
    started: AtomicI64,
    embed_age_ms: AtomicI64,
}

/// The process's signals.
pub fn signals() -> &'static Signals {
    static S: OnceLock<Signals> = OnceLock::new();
    S.get_or_init(|| {
        let s = Signals::default();
        s.started.store(crate::core::now_ms(), Ordering::Relaxed);
        s
    })
}

fn push<T>(q: &Mutex<VecDeque<(i64, T)>>, now: i64, v: T) {
    let mut q = q.lock().unwrap_or_else(|p| p.into_inner());
    while q
        .front()
        .is_some_and(|(t, _)| now - t > WINDOW_MS || q.len() >= MAX_EVENTS)
    {
        q.pop_front();
    }
    q.push_back((now, v));
}

impl Signals {
    /// The Telegram channel is running (alerts can go out; the check applies).
    pub fn set_telegram(&self, on: bool) {
        self.telegram_on.store(on, Ordering::Relaxed);
    }

    pub fn telegram_on(&self) -> bool {
        self.telegram_on.load(Ordering::Relaxed)
    }

    /// A call that Telegram answered (any answer proves it is reachable,
    /// except a 5xx).
    pub fn telegram_ok(&self, method: &str, now: i64) {
        self.telegram_last_ok.store(now, Ordering::Relaxed);
        self.telegram_calls.fetch_add(1, Ordering::Relaxed);
        super::metrics::telegram_call(method, "ok");
    }

    pub fn telegram_error(&self, method: &str, kind: CallError, now: i64) {
        if kind == CallError::Refused {
            // An answer all the same: Telegram is reachable.
            self.telegram_last_ok.store(now, Ordering::Relaxed);
        }
        self.telegram_calls.fetch_add(1, Ordering::Relaxed);
        push(&self.telegram_errors, now, kind);
        super::metrics::telegram_call(method, kind.as_str());
    }

    /// Records a teloxide result.
    pub fn telegram_result<T>(&self, method: &str, r: &Result<T, teloxide::RequestError>) {
        let now = crate::core::now_ms();
        match r {
            Ok(_) => self.telegram_ok(method, now),
            Err(e) => self.telegram_error(method, CallError::of(e), now),
        }
    }

    /// When Telegram last answered (unix ms; 0: not since the start).
    pub fn telegram_last_ok(&self) -> i64 {
        self.telegram_last_ok.load(Ordering::Relaxed)
    }

    pub fn telegram_errors_since(&self, since: i64) -> CallErrors {
        let q = self
            .telegram_errors
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        let mut c = CallErrors::default();
        for (_, k) in q.iter().filter(|(t, _)| *t >= since) {
            match k {
                CallError::Server => c.server += 1,
                CallError::Throttled => c.throttled += 1,
                CallError::Network => c.network += 1,
                CallError::Refused => c.refused += 1,
            }
        }
        c
    }

    /// A voice note failed; `model` when for want of the speech model.
    pub fn voice_failed(&self, model: bool, now: i64) {
        push(&self.voice_failures, now, model);
    }

    /// (all, for want of the model) voice failures since `since`.
    pub fn voice_failures_since(&self, since: i64) -> (u64, u64) {
        let q = self
            .voice_failures
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        q.iter()
            .filter(|(t, _)| *t >= since)
            .fold((0, 0), |(a, m), (_, model)| (a + 1, m + u64::from(*model)))
    }

    /// A write failed because the disk is full.
    pub fn disk_full(&self, now: i64) {
        self.disk_full_at.store(now, Ordering::Relaxed);
    }

    pub fn disk_full_at(&self) -> i64 {
        self.disk_full_at.load(Ordering::Relaxed)
    }

    /// A health pass finished (the job runtime ticks).
    pub fn passed(&self, now: i64) {
        self.last_pass.store(now, Ordering::Relaxed);
    }

    pub fn last_pass(&self) -> i64 {
        self.last_pass.load(Ordering::Relaxed)
    }

    /// How long the embed queue's head has waited (set by the queues check).
    pub fn set_embed_age(&self, ms: i64) {
        self.embed_age_ms.store(ms, Ordering::Relaxed);
    }

    pub fn embed_age_ms(&self) -> i64 {
        self.embed_age_ms.load(Ordering::Relaxed)
    }

    pub fn started(&self) -> i64 {
        self.started.load(Ordering::Relaxed)
    }
}
