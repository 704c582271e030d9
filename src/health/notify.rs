//! systemd's notify protocol (`Type=notify`, `WatchdogSec=`): `READY=1`
//! once polling runs, `WATCHDOG=1` from the job runtime while health passes
//! keep coming, `STOPPING=1` on the way out. Without `NOTIFY_SOCKET` (not
//! started by systemd) every call does nothing.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(state: NotifyState) {
    if let Err(e) = sd_notify::notify(false, &[state]) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The service is up: Telegram polling runs.
pub fn ready() {
    send(NotifyState::Ready);
}

/// The service is stopping.
pub fn stopping() {
    send(NotifyState::Stopping);
}

/// One watchdog keep-alive.
pub fn watchdog() {
    send(NotifyState::Watchdog);
}

/// The watchdog period systemd asked for (`WATCHDOG_USEC`), when it is
/// meant for this process (`WATCHDOG_PID` unset or ours — as libsystemd's
/// `sd_watchdog_enabled` reads them).
pub fn watchdog_period() -> Option<Duration> {
    let usec: u64 = std::env::var("WATCHDOG_USEC").ok()?.parse().ok()?;
    if let Ok(pid) = std::env::var("WATCHDOG_PID") {
        if pid.parse::<u32>().ok()? != std::process::id() {
            return None;
        }
    }
    (usec > 0).then(|| Duration::from_micros(usec))
}

/// Whether the keep-alive may be sent: health passes are not overdue (a
/// process whose jobs stopped is hung, and systemd should restart it).
pub fn alive(interval: Duration, now_ms: i64) -> bool {
    let s = super::signals();
    let last = s.last_pass().max(s.started());
    let slack = (interval.as_millis() as i64).saturating_mul(3).max(30_000);
    now_ms - last < slack
}
