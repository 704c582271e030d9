//! The background embedder: drains the store's `embed_queue` in batches, off
//! the reply path. Notes are acknowledged as soon as they are stored; their
//! vectors follow a few milliseconds later. The queue is durable, so after a
//! crash the worker picks up where it stopped, and the queue's sequence
//! check means nothing is embedded twice into a stale vector.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crate::core::{Core, TAKE};

pub struct EmbedWorker {
    stop: Arc<AtomicBool>,
    core: Arc<Core>,
    handle: Option<JoinHandle<()>>,
}

impl EmbedWorker {
    /// Starts the worker thread. Does nothing useful without an embedder.
    pub fn spawn(core: Arc<Core>) -> EmbedWorker {
        let stop = Arc::new(AtomicBool::new(false));
        let (s, c) = (stop.clone(), core.clone());
        let handle = std::thread::Builder::new()
            .name("mnemo-embed".into())
            .spawn(move || {
                let mut backoff = Duration::from_millis(500);
                while !s.load(Ordering::Acquire) {
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
            stop,
            core,
            handle: Some(handle),
        }
    }

    /// Stops after the batch in progress (its results are committed).
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.core.wake_worker();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for EmbedWorker {
    fn drop(&mut self) {
        self.shutdown();
    }
}
