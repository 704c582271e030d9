//! The outbox sender: the only task that sends messages to Telegram.
//!
//! The core commits replies to the outbox in the same transaction as the note
//! they acknowledge; this task delivers them and removes each one after
//! Telegram accepted it. Replies are served per chat ([`super::queue`]): a
//! chat's replies in outbox order and a reply's chunks in order, one send
//! per chat on the wire, chats in turn (round-robin) within Telegram's
//! limits — token buckets per chat (a short burst, then about one message a
//! second) and overall (thirty a second) — with up to [`MAX_IN_FLIGHT`]
//! sends to different chats on the wire at once. A chat waiting on its own
//! bucket, its own `429 retry_after` or its own back-off never holds up
//! another; failures that are not one chat's (no connection, 5xx) pause
//! everyone. Refusals to strangers go last. Only replies that Telegram
//! refuses for good (chat gone, bot blocked) are dropped, with an error in
//! the log.
//!
//! The outbox is read incrementally: entries after the highest sequence
//! number read so far (outbox sequence numbers grow with commit order), a
//! page at a time, on a wake-up from the core or the handlers, and every
//! [`IDLE_POLL`] anyway.
//!
//! Delivery is at-least-once: a crash after Telegram accepted a message but
//! before the outbox entry was removed sends that message again on restart.
//! That window is one local commit wide; every other crash point loses and
//! duplicates nothing.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ParseMode, ReplyParameters};
use teloxide::{ApiError, RequestError};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

pub use super::queue::RateLimiter;
use super::queue::{Entry, Pick, Queues, Step};
use super::render;
use crate::app::Shutdown;
use crate::core::{Core, Reply};
use crate::i18n::{html_to_plain, I18n};

/// How long a send already on the wire may finish after the drain ran out.
/// Cutting it off earlier risks nothing lost, but the reply may then reach
/// Telegram and still be sent again at the next start.
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(1000);

/// Sends on the wire at once, each to a different chat: one slow request
/// holds up only its own chat. (At 30 messages a second and a few hundred
/// milliseconds a request, a handful keep the global limit busy.)
pub const MAX_IN_FLIGHT: usize = 8;

/// Outbox entries read per read transaction.
const PAGE: usize = 512;

/// Replies held in memory at most; beyond that the outbox is read as they
/// go out (a backlog that large is then served in outbox order until it
/// shrinks).
const MAX_LOADED: usize = 50_000;

/// How often the outbox is read with nothing to wait for (a missed wake-up
/// costs at most this).
const IDLE_POLL: Duration = Duration::from_secs(30);

pub struct Sender {
    pub bot: Bot,
    pub core: Arc<Core>,
    pub i18n: Arc<I18n>,
    pub wake: Arc<Notify>,
    pub limiter: RateLimiter,
}

/// What a send step needs (cheap to clone into its task).
#[derive(Clone)]
struct Ctx {
    bot: Bot,
    core: Arc<Core>,
    i18n: Arc<I18n>,
}

impl Sender {
    /// Delivers outbox entries until `shutdown` fires; then goes on for at
    /// most [`crate::app::shutdown::DRAIN`] and returns: no new send
    /// starts after that, and sends on the wire get [`IN_FLIGHT_GRACE`]
    /// more. Undelivered entries stay in the outbox for the next start (a
    /// reply cut between two of its chunks resumes at the chunk it had
    /// reached).
    pub async fn run(self, shutdown: Shutdown) {
        let Sender {
            bot,
            core,
            i18n,
            wake,
            limiter,
        } = self;
        let cx = Ctx { bot, core, i18n };
        let drained = shutdown.drained();
        tokio::pin!(drained);
        let mut queues = Queues::new(limiter);
        // The highest outbox sequence number read so far.
        let mut cursor: Option<u64> = None;
        // The outbox may hold entries not read yet.
        let mut unread = true;
        let mut wire: JoinSet<Step> = JoinSet::new();
        let mut chat_of: HashMap<tokio::task::Id, i64> = HashMap::new();
        let mut stopping = false;
        loop {
            if unread && !stopping {
                unread = load(&cx.core, &mut queues, &mut cursor).await;
            }
            let mut wait = None;
            while !stopping && wire.len() < MAX_IN_FLIGHT {
                match queues.pick(Instant::now()) {
                    Pick::Send(chat) => {
                        let entry = queues.head(chat).expect("a picked chat has a head").clone();
                        let task = wire.spawn(step(cx.clone(), entry, shutdown.clone()));
                        chat_of.insert(task.id(), chat);
                    }
                    Pick::Wait(t) => {
                        wait = t;
                        break;
                    }
                }
            }
            let idle = queues.is_empty() && !unread;
            if wire.is_empty() && (stopping || (shutdown.is_triggered() && idle)) {
                break;
            }
            let until = wait.unwrap_or_else(|| Instant::now() + IDLE_POLL);
            tokio::select! {
                Some(done) = wire.join_next_with_id(), if !wire.is_empty() => {
                    let (id, outcome) = match done {
                        Ok((id, s)) => (id, s),
                        Err(e) => {
                            tracing::error!(error = %e, "a send task failed");
                            (e.id(), Step::Later { global: false, why: e.to_string() })
                        }
                    };
                    if let Some(chat) = chat_of.remove(&id) {
                        queues.settle(chat, outcome, Instant::now());
                    }
                }
                _ = &mut drained, if !stopping => stopping = true,
                _ = wake.notified(), if !stopping => unread = true,
                _ = tokio::time::sleep_until(until), if !stopping => {
                    if wait.is_none() {
                        unread = true;
                    }
                }
                // Wakes the loop once, so an empty outbox ends it at once.
                _ = shutdown.triggered(), if !shutdown.is_triggered() => unread = true,
            }
        }
        tracing::debug!(left = queues.len(), "outbox sender stopped");
    }
}

/// Reads the outbox entries after `cursor` into `queues`, a page per read
/// transaction (each read on a blocking thread, O(page)). Returns whether
/// entries may remain unread (the memory cap was reached).
async fn load(core: &Arc<Core>, queues: &mut Queues, cursor: &mut Option<u64>) -> bool {
    loop {
        if queues.len() >= MAX_LOADED {
            return true;
        }
        let (core, after) = (core.clone(), *cursor);
        let page = match tokio::task::spawn_blocking(move || core.outbox_after(after, PAGE)).await {
            Ok(Ok(p)) => p,
            // Tried again at the next wake-up or after IDLE_POLL.
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read the outbox");
                return false;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox reader panicked");
                return false;
            }
        };
        let full = page.len() == PAGE;
        for (seq, reply) in page {
            *cursor = Some(seq);
            queues.push(seq, reply);
        }
        if !full {
            return false;
        }
    }
}

/// Sends the next chunk of one reply (its tokens were taken by the
/// schedule), and commits what that changed: progress, or the entry's
/// removal when it is done with. Waits for `retry_after` and back-offs are
/// the schedule's, not this step's.
async fn step(cx: Ctx, entry: Entry, shutdown: Shutdown) -> Step {
    let Entry {
        seq,
        mut reply,
        mut gated,
        mut sent,
    } = entry;
    let chunks = render::render(&cx.i18n, &reply);
    let blank = |c: &String| html_to_plain(c).trim().is_empty();
    let mut i = reply.chunks_sent as usize;
    while i < chunks.len() && blank(&chunks[i]) {
        i += 1;
    }
    if i >= chunks.len() {
        return finish(&cx, seq, &reply, sent, None, &shutdown).await;
    }
    // A digest's slot is marked `sending` once per attempt, right before
    // its first request (see `Core::digest_gate`).
    if !gated {
        let key = reply.digest.clone().expect("only digests are gated");
        let core = cx.core.clone();
        match tokio::task::spawn_blocking(move || core.digest_gate(seq, &key)).await {
            Ok(Ok(crate::core::Gate::Send)) => gated = true,
            Ok(Ok(crate::core::Gate::Drop)) => return Step::Finished,
            Ok(Err(e)) => {
                return Step::Later {
                    global: true,
                    why: e.to_string(),
                }
            }
            Err(e) => {
                return Step::Later {
                    global: true,
                    why: e.to_string(),
                }
            }
        }
    }
    let chunk = &chunks[i];
    let mut req = cx
        .bot
        .send_message(ChatId(reply.chat_id), chunk.clone())
        .parse_mode(ParseMode::Html);
    if i + 1 == chunks.len() && !reply.buttons.is_empty() {
        req = req.reply_markup(keyboard(&cx.i18n, &reply));
    }
    if let Some(m) = reply.reply_to.filter(|_| i == 0) {
        req = req.reply_parameters(ReplyParameters {
            allow_sending_without_reply: Some(true),
            ..ReplyParameters::new(teloxide::types::MessageId(m as i32))
        });
    }
    let sent_or = tokio::select! {
        r = req.send() => r,
        _ = shutdown.after_stop(crate::app::shutdown::DRAIN + IN_FLIGHT_GRACE) => {
            tracing::warn!(seq, chat_id = reply.chat_id, "a reply on the wire at shutdown; it may be sent again at the next start");
            return Step::Stopped;
        }
    };
    crate::health::signals().telegram_result("SendMessage", &sent_or);
    match sent_or {
        Ok(msg) => {
            sent.push(i64::from(msg.id.0));
            i += 1;
            while i < chunks.len() && blank(&chunks[i]) {
                i += 1;
            }
            if i >= chunks.len() {
                return finish(&cx, seq, &reply, sent, None, &shutdown).await;
            }
            reply.chunks_sent = i as u32;
            let r = reply.clone();
            persist(&cx.core, move |core| core.outbox_progress(seq, &r)).await;
            Step::Progress { reply, gated, sent }
        }
        Err(RequestError::RetryAfter(secs)) => Step::RetryAfter {
            after: secs.duration(),
            gated,
        },
        Err(RequestError::Api(ApiError::MessageToReplyNotFound)) => {
            reply.reply_to = None;
            Step::Progress { reply, gated, sent }
        }
        Err(
            e @ (RequestError::Network(_) | RequestError::Io(_) | RequestError::InvalidJson { .. }),
        ) => {
            // No connection at all: the request never left, and nothing
            // else will get through either.
            let not_sent = matches!(&e, RequestError::Network(n) if n.is_connect());
            unsent(&cx, seq, &reply, not_sent, not_sent, e.to_string()).await
        }
        Err(RequestError::Api(ApiError::Unknown(ref d)))
            if d.contains("Internal Server Error") || d.contains("Bad Gateway") =>
        {
            unsent(&cx, seq, &reply, false, true, d.clone()).await
        }
        Err(e) => {
            tracing::error!(seq, chat_id = reply.chat_id, error = %e, "Telegram refused a reply; dropping it");
            finish(&cx, seq, &reply, sent, Some(e.to_string()), &shutdown).await
        }
    }
}

/// Removes a reply that is done with (delivered, or refused for good) and
/// links its message ids. While the store refuses writes (a full disk) it
/// waits and commits once the store works again: the chat's next reply
/// waits behind it, and the reply is not sent twice. At the stop it gives
/// up; the entry stays in the outbox and goes out again at the next start
/// (the one at-least-once window, see the module docs).
async fn finish(
    cx: &Ctx,
    seq: u64,
    reply: &Reply,
    sent: Vec<i64>,
    refused: Option<String>,
    shutdown: &Shutdown,
) -> Step {
    loop {
        let core = cx.core.clone();
        let (r, ids, why) = (reply.clone(), sent.clone(), refused.clone());
        match tokio::task::spawn_blocking(move || core.outbox_done(seq, &r, &ids, why.as_deref()))
            .await
        {
            Ok(Ok(())) => break,
            Ok(Err(e)) if e.is_storage() => {
                tracing::warn!(seq, error = %e, "a sent reply cannot be marked sent yet; it waits for the store (and is not sent again)");
                if !super::listener::store_works(&cx.core, shutdown).await {
                    return Step::Finished;
                }
            }
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot update the outbox");
                return Step::Finished;
            }
            Err(e) => {
                tracing::error!(error = %e, "outbox update panicked");
                return Step::Finished;
            }
        }
    }
    if refused.is_none() {
        tracing::debug!(seq, chat_id = reply.chat_id, "reply delivered");
    }
    Step::Finished
}

/// A send failed for a reason that may pass. An ordinary reply stays for a
/// retry. A digest is retried only when the request surely never left
/// (`not_sent`); otherwise it may have arrived, and its slot becomes
/// `uncertain` instead of risking a second copy. `global`: the failure is
/// not this chat's (everyone pauses).
async fn unsent(
    cx: &Ctx,
    seq: u64,
    reply: &Reply,
    not_sent: bool,
    global: bool,
    why: String,
) -> Step {
    let Some(key) = reply.digest.clone() else {
        return Step::Later { global, why };
    };
    let w = why.clone();
    let ok = persist(&cx.core, move |core| {
        core.digest_unsent(seq, &key, not_sent, &w)
    })
    .await;
    if not_sent || !ok {
        Step::Later { global, why }
    } else {
        tracing::warn!(seq, chat_id = reply.chat_id, error = %why, "a digest send ended without an answer; it is not sent again");
        Step::Finished
    }
}

/// Runs an outbox update off the async threads; true when it committed.
async fn persist(
    core: &Arc<Core>,
    f: impl FnOnce(&Core) -> Result<(), crate::core::CoreError> + Send + 'static,
) -> bool {
    let core = core.clone();
    match tokio::task::spawn_blocking(move || f(&core)).await {
        Ok(Ok(())) => return true,
        Ok(Err(e)) => tracing::error!(error = %e, "cannot update the outbox"),
        Err(e) => tracing::error!(error = %e, "outbox update panicked"),
    }
    false
}

/// The reply's buttons as an inline keyboard (labels rendered as plain text).
fn keyboard(i18n: &I18n, reply: &Reply) -> InlineKeyboardMarkup {
    InlineKeyboardMarkup::new(reply.buttons.iter().map(|row| {
        row.iter()
            .map(|b| {
                InlineKeyboardButton::callback(
                    i18n.render_plain(&reply.lang, &b.label),
                    b.data.clone(),
                )
            })
            .collect::<Vec<_>>()
    }))
}
