//! One way to stop: a [`Shutdown`] every task holds a clone of.
//!
//! In the style of mini-redis: the process creates one `Shutdown`, hands a
//! clone to every task (the Telegram listener, the outbox sender, the voice
//! fetcher and pipeline, the job runtime, the embed worker), and each task
//! selects on [`Shutdown::triggered`] next to its own work. A signal (or a
//! test, or the end of the console's input) calls [`Shutdown::trigger`]
//! once; tasks then finish what they hold within [`DRAIN`] and return.
//!
//! Nothing in mnemo needs a task to finish for data to be safe — every change
//! is committed before it is acknowledged — so the drain is a courtesy
//! (replies already queued get a moment to go out), never a requirement, and
//! a second signal exits at once.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// How long tasks may keep working after the stop was asked for. What is not
/// done by then stays queued in the store for the next start.
pub const DRAIN: Duration = Duration::from_secs(2);

/// The stop signal, shared by clone.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    token: CancellationToken,
    /// When the stop was asked for: every holder drains to the same deadline.
    at: Arc<OnceLock<Instant>>,
}

impl Shutdown {
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Asks every holder to stop. Idempotent.
    pub fn trigger(&self) {
        self.at.get_or_init(Instant::now);
        self.token.cancel();
    }

    pub fn is_triggered(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Resolves once the stop was asked for (at once if it already was).
    pub async fn triggered(&self) {
        self.token.cancelled().await
    }

    /// Resolves [`DRAIN`] after the stop was asked for (the same instant for
    /// every holder): the moment a task's courtesy work (draining the outbox)
    /// must end.
    pub async fn drained(&self) {
        self.after_stop(DRAIN).await
    }

    /// Resolves `d` after the stop was asked for.
    pub async fn after_stop(&self, d: Duration) {
        self.triggered().await;
        let at = *self.at.get_or_init(Instant::now);
        tokio::time::sleep_until(at + d).await;
    }

    /// Turns SIGTERM and SIGINT into [`Shutdown::trigger`]; a second signal
    /// exits the process at once (status 130). Needs a tokio runtime.
    pub fn on_signals(&self) -> std::io::Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let me = self.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
                _ = me.triggered() => {}
            }
            me.trigger();
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: exiting at once");
            std::process::exit(130);
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn every_clone_sees_the_stop_and_the_drain_ends_after_drain() {
        let s = Shutdown::new();
        let c = s.clone();
        assert!(!c.is_triggered());
        let waiter = tokio::spawn(async move { c.triggered().await });
        let t0 = tokio::time::Instant::now();
        s.trigger();
        waiter.await.unwrap();
        assert!(s.is_triggered());
        s.drained().await;
        assert_eq!(t0.elapsed(), DRAIN);
        // Every clone drains to the same deadline, however late it asks.
        s.clone().drained().await;
        assert_eq!(t0.elapsed(), DRAIN);
        // Triggering again changes nothing.
        s.trigger();
        s.triggered().await;
    }
}
