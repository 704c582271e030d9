//! The background embedder: drains the store's `embed_queue` in takes of
//! [`TAKE`] notes, off the reply path. Notes are acknowledged as soon as they
//! are stored; their vectors follow a few milliseconds later. The queue is
//! durable, so after a crash the worker picks up where it stopped, and the
//! queue's sequence check means nothing is embedded twice into a stale
//! vector.
//!
//! A thread of its own (the model call is blocking CPU work), owned by the
//! [`super::App`] and stopped by its [`Shutdown`]: the take in progress is
//! finished and committed, the rest stays queued.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::Shutdown;
use crate::core::{Core, TAKE};

pub struct EmbedWorker {
    shutdown: Shutdown,
    core: Arc<Core>,
    handle: Option<JoinHandle<()>>,
}

impl EmbedWorker {
    /// Starts the worker thread. Does nothing useful without an embedder.
    pub fn spawn(core: Arc<Core>, shutdown: Shutdown) -> EmbedWorker {
        let (s, c) = (shutdown.clone(), core.clone());
        let handle = std::thread::Builder::new()
            .name("mnemo-embed".into())
            .spawn(move || {
                let mut backoff = Duration::from_millis(500);
                while !s.is_triggered() {
                    match c.embed_pending(TAKE) {
                        Ok(0) => c.wait_for_work(Duration::from_secs(5)),
                        Ok(_) => backoff = Duration::from_millis(500),
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in = ?backoff, "embedding failed; will retry");
                            c.wait_for_work(backoff);
                            backoff = (backoff * 2).min(Duration::from_secs(60));
                        }
                    }
                }
            })
            .expect("spawn embed worker");
        EmbedWorker {
            shutdown,
            core,
            handle: Some(handle),
        }
    }

    /// Stops after the take in progress (its results are committed).
    pub fn stop(mut self) {
        self.join();
    }

    fn join(&mut self) {
        self.shutdown.trigger();
        self.core.wake_worker();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for EmbedWorker {
    fn drop(&mut self) {
        self.join();
    }
}
