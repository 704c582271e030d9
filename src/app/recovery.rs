//! Brings a failed store back by itself.
//!
//! While the store refuses writes (`StoreState::Failed`: a full disk, an
//! I/O error), this task calls [`crate::store::Store::try_recover`] every
//! [`EVERY`] — cheap until it is due: after a full disk only once space
//! came back — on a blocking thread. Once commits work again it wakes what
//! backed off meanwhile: the outbox sender, the embed worker, the voice
//! pipeline. The Telegram listener and the handlers that hold updates
//! watch the state themselves.

use std::sync::Arc;
use std::time::Duration;

use super::Shutdown;
use crate::core::Core;
use crate::store::StoreState;

/// How often a failed store is looked at.
pub const EVERY: Duration = Duration::from_secs(1);

pub fn spawn(core: Arc<Core>, shutdown: Shutdown) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut state = core.store().watch();
        loop {
            tokio::select! {
                r = state.wait_for(|s| *s != StoreState::Ok) => if r.is_err() { return },
                _ = shutdown.triggered() => return,
            }
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(EVERY) => {}
                    _ = shutdown.triggered() => return,
                }
                let c = core.clone();
                if let Ok(true) = tokio::task::spawn_blocking(move || c.store().try_recover()).await
                {
                    break;
                }
            }
            core.wake_background();
        }
    })
}
