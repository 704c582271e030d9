//! A long-polling update listener that writes every update to the store
//! before the dispatcher sees it.
//!
//! teloxide's [`Polling`] confirms updates to Telegram (by asking for the next
//! offset) as soon as its buffer of the previous batch is consumed — before
//! the handlers have necessarily run. A crash in between would lose those
//! updates. This listener wraps `Polling` and records each update in the
//! store's inbox before yielding it; since `Polling` only asks for more once
//! every yielded update was taken, nothing is confirmed that is not durable.
//!
//! On start, updates left in the inbox by a previous run are yielded first,
//! and updates the store has already processed are skipped, so a re-delivery
//! after a crash is handled exactly once.

use std::sync::Arc;
use std::time::Duration;

use futures::stream::{self, BoxStream, StreamExt};
use teloxide::prelude::*;
use teloxide::stop::StopToken;
use teloxide::types::{AllowedUpdate, Update};
use teloxide::update_listeners::{AsUpdateStream, Polling, UpdateListener};
use teloxide::RequestError;

use crate::app::Shutdown;
use crate::core::Core;

pub struct DurablePolling {
    polling: Polling<Bot>,
    core: Arc<Core>,
    replay: Vec<Update>,
    shutdown: Shutdown,
}

impl DurablePolling {
    pub fn new(bot: Bot, core: Arc<Core>, poll_timeout: Duration, shutdown: Shutdown) -> Self {
        let mut replay = Vec::new();
        match core.pending_updates() {
            Ok(pending) => {
                for (id, raw) in pending {
                    match serde_json::from_slice::<Update>(&raw) {
                        Ok(u) => replay.push(u),
                        Err(e) => {
                            tracing::error!(update_id = id, error = %e, "unreadable update in the inbox; skipping it");
                            let _ = core.discard_update(id);
                        }
                    }
                }
            }
            Err(e) => tracing::error!(error = %e, "cannot read the inbox"),
        }
        if !replay.is_empty() {
            tracing::info!(
                count = replay.len(),
                "replaying updates received before the last stop"
            );
        }
        let polling = Polling::builder(bot).timeout(poll_timeout).build();
        DurablePolling {
            polling,
            core,
            replay,
            shutdown,
        }
    }
}

impl UpdateListener for DurablePolling {
    type Err = RequestError;

    fn stop_token(&mut self) -> StopToken {
        self.polling.stop_token()
    }

    fn hint_allowed_updates(&mut self, hint: &mut dyn Iterator<Item = AllowedUpdate>) {
        self.polling.hint_allowed_updates(hint);
    }
}

impl<'a> AsUpdateStream<'a> for DurablePolling {
    type StreamErr = RequestError;
    type Stream = BoxStream<'a, Result<Update, RequestError>>;

    fn as_stream(&'a mut self) -> Self::Stream {
        let replay = stream::iter(std::mem::take(&mut self.replay).into_iter().map(Ok));
        let core = self.core.clone();
        let shutdown = self.shutdown.clone();
        let live = self.polling.as_stream().filter_map(move |res| {
            let core = core.clone();
            let shutdown = shutdown.clone();
            async move {
                crate::health::signals().telegram_result("GetUpdates", &res);
                match res {
                    Ok(update) => persist(core, update, shutdown).await.map(Ok),
                    Err(e) => Some(Err(e)),
                }
            }
        });
        replay.chain(live).boxed()
    }
}

/// Records `update` in the inbox, retrying while the store fails (a full
/// disk, say): until it is durable the update is not passed on, so Telegram
/// keeps it. `None` for a re-delivery of a processed update, or when
/// shutting down with the store still failing.
async fn persist(core: Arc<Core>, update: Update, shutdown: Shutdown) -> Option<Update> {
    let id = u64::from(update.id.0);
    if !needs_inbox(&core, &update) {
        // A stranger's update: nothing of it will be stored, so it is
        // handled without a durable copy (no commit, no fsync).
        return Some(update);
    }
    let raw = match serde_json::to_vec(&update) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(update_id = id, error = %e, "cannot serialise an update; handling it without a durable copy");
            return Some(update);
        }
    };
    let mut delay = Duration::from_millis(200);
    loop {
        let c = core.clone();
        let r = raw.clone();
        match tokio::task::spawn_blocking(move || c.receive_update(id, &r)).await {
            Ok(Ok(true)) => return Some(update),
            Ok(Ok(false)) => {
                tracing::debug!(update_id = id, "re-delivered update was processed already");
                return None;
            }
            Ok(Err(e)) => {
                tracing::error!(update_id = id, error = %e, retry_in = ?delay, "cannot record an update")
            }
            Err(e) => tracing::error!(update_id = id, error = %e, "inbox writer panicked"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.triggered() => return None,
        }
        delay = (delay * 2).min(Duration::from_secs(30));
    }
}

/// Whether `update` must be in the inbox before it is confirmed: messages,
/// edits, presses and membership changes from someone mnemo will not serve
/// (and who is not pairing) need not be — handling one again after a crash
/// would change nothing ([`Core::keeps`]). Every other kind is kept.
pub fn needs_inbox(core: &Core, update: &Update) -> bool {
    use teloxide::types::UpdateKind;
    let text = match &update.kind {
        UpdateKind::Message(m) | UpdateKind::EditedMessage(m) => m.text(),
        UpdateKind::CallbackQuery(_) | UpdateKind::MyChatMember(_) => None,
        _ => return true,
    };
    let (Some(user), Some(chat)) = (update.from(), update.chat()) else {
        return true;
    };
    core.keeps(user.id.0 as i64, super::handler::is_group(chat), text)
}
