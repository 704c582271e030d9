//! A long-polling update listener that writes every update to the store
//! before the dispatcher sees it.
//!
//! teloxide's [`Polling`] confirms updates to Telegram by asking for the
//! next offset: each `getUpdates` carries the last id of the previous batch
//! plus one — the offset is taken when a batch *arrives*, and the next
//! request (also the one `Polling` sends when it stops, with timeout 0) goes
//! out once the stream is polled with the batch's buffer empty. Handlers
//! may not have run by then, so a crash in between would lose updates. This
//! listener wraps `Polling` and records each update in the store's inbox
//! before yielding it; since `Polling` is only polled again once the
//! previous update was stored, nothing is confirmed that is not durable.
//!
//! When the store refuses writes (a full disk, an I/O error: see
//! `store/recovery.rs`) the update at hand is held and `Polling` is not
//! polled at all — polling pauses, Telegram keeps everything after the last
//! stored update — until the store works again, then it goes on by itself.
//! A stop while an update is held ends the stream *without* polling
//! `Polling` again: its stop request would confirm the held update.
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
use crate::store::StoreState;

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
        let live = Live {
            polling: self.polling.as_stream().boxed(),
            core: self.core.clone(),
            shutdown: self.shutdown.clone(),
        };
        let live = stream::unfold(live, |mut live| async move {
            let item = live.next().await?;
            Some((item, live))
        });
        replay.chain(live).boxed()
    }
}

/// teloxide's polling stream behind the inbox.
struct Live<'a> {
    polling: BoxStream<'a, Result<Update, RequestError>>,
    core: Arc<Core>,
    shutdown: Shutdown,
}

impl Live<'_> {
    /// The next update for the dispatcher, once it is in the inbox. `None`
    /// ends the stream: teloxide ended it (stopped), or a stop came while
    /// the store refused writes — then teloxide's stream is not polled
    /// again, so no `getUpdates` confirms what was not stored.
    async fn next(&mut self) -> Option<Result<Update, RequestError>> {
        loop {
            // Polling pauses while the store refuses writes: nothing more
            // is fetched, nothing more is confirmed.
            if self.core.store().failure().is_some() {
                tracing::warn!(
                    "polling paused: the store refuses writes (updates wait at Telegram)"
                );
                if !store_works(&self.core, &self.shutdown).await {
                    tracing::info!("stopping while the store refuses writes: nothing more is confirmed to Telegram");
                    return None;
                }
                tracing::info!("the store works again: polling resumes");
            }
            let res = self.polling.next().await?;
            crate::health::signals().telegram_result("GetUpdates", &res);
            let update = match res {
                Ok(u) => u,
                Err(e) => return Some(Err(e)),
            };
            match persist(&self.core, update, &self.shutdown).await {
                Persisted::Stored(u) => return Some(Ok(*u)),
                Persisted::Done => continue,
                Persisted::Held(id) => {
                    tracing::info!(
                        update_id = id,
                        "stopping with an update that could not be stored: it is not confirmed, Telegram delivers it again at the next start"
                    );
                    return None;
                }
            }
        }
    }
}

/// Waits while the store refuses writes. False when the stop came first.
/// (The listener, the handlers and the sender hold their update or reply
/// meanwhile.)
pub(super) async fn store_works(core: &Core, shutdown: &Shutdown) -> bool {
    let mut state = core.store().watch();
    loop {
        if *state.borrow_and_update() == StoreState::Ok {
            return true;
        }
        tokio::select! {
            changed = state.changed() => {
                if changed.is_err() {
                    return true;
                }
            }
            _ = shutdown.triggered() => return false,
        }
    }
}

enum Persisted {
    /// In the inbox (or needing no durable copy): hand it on.
    Stored(Box<Update>),
    /// Processed already (a re-delivery): skip it.
    Done,
    /// Not stored, and the stop came: the update id.
    Held(u64),
}

/// Records `update` in the inbox. While the store refuses writes the update
/// is held — not passed on, so Telegram keeps it — and stored once the
/// store works again; [`Persisted::Held`] when the stop comes first.
async fn persist(core: &Arc<Core>, update: Update, shutdown: &Shutdown) -> Persisted {
    let id = u64::from(update.id.0);
    if !needs_inbox(core, &update) {
        // A stranger's update: nothing of it will be stored, so it is
        // handled without a durable copy (no commit, no fsync).
        return Persisted::Stored(Box::new(update));
    }
    let raw = match serde_json::to_vec(&update) {
        Ok(r) => r,
        Err(e) => {
            tracing::error!(update_id = id, error = %e, "cannot serialise an update; handling it without a durable copy");
            return Persisted::Stored(Box::new(update));
        }
    };
    let mut delay = Duration::from_millis(200);
    loop {
        let c = core.clone();
        let r = raw.clone();
        let failed = match tokio::task::spawn_blocking(move || c.receive_update(id, &r)).await {
            Ok(Ok(true)) => return Persisted::Stored(Box::new(update)),
            Ok(Ok(false)) => {
                tracing::debug!(update_id = id, "re-delivered update was processed already");
                return Persisted::Done;
            }
            Ok(Err(e)) if e.is_storage() => {
                tracing::warn!(update_id = id, error = %e, "cannot record an update; holding it until the store works again");
                true
            }
            Ok(Err(e)) => {
                tracing::error!(update_id = id, error = %e, retry_in = ?delay, "cannot record an update");
                false
            }
            Err(e) => {
                tracing::error!(update_id = id, error = %e, "inbox writer panicked");
                false
            }
        };
        if failed {
            if !store_works(core, shutdown).await {
                return Persisted::Held(id);
            }
            delay = Duration::from_millis(200);
        }
        // Also after the store came back: a moment, never a tight loop.
        tokio::select! {
            _ = tokio::time::sleep(if failed { Duration::from_millis(50) } else { delay }) => {}
            _ = shutdown.triggered() => return Persisted::Held(id),
        }
        if !failed {
            delay = (delay * 2).min(Duration::from_secs(30));
        }
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
