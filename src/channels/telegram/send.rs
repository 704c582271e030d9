//! The outbox sender: the only task that sends messages to Telegram.
//!
//! The core commits replies to the outbox in the same transaction as the note
//! they acknowledge; this task delivers them in order and removes each one
//! after Telegram accepted it. It respects Telegram's limits with token
//! buckets (a short burst, then about one message per second per chat, thirty
//! per second overall), waits out `429 retry_after`, backs off on network
//! errors and drops only replies that Telegram refuses for good (chat gone,
//! bot blocked), with an error in the log.
//!
//! Delivery is at-least-once: a crash after Telegram accepted a message but
//! before the outbox entry was removed sends that message again on restart.
//! That window is one local commit wide; every other crash point loses and
//! duplicates nothing. A full disk does not widen it: when the removal is
//! refused, the sender waits for the store to work again and commits it
//! then, instead of reading the entry again and sending the reply twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use teloxide::payloads::SendMessageSetters;
use teloxide::prelude::*;
use teloxide::types::{InlineKeyboardButton, InlineKeyboardMarkup, ParseMode, ReplyParameters};
use teloxide::{ApiError, RequestError};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::render;
use crate::app::Shutdown;
use crate::core::{Core, Reply};
use crate::i18n::{html_to_plain, I18n};

/// A token bucket: `burst` tokens, refilled at `rate` per second.
#[derive(Debug, Clone)]
struct Bucket {
    tokens: f64,
    burst: f64,
    rate: f64,
    at: Instant,
}

impl Bucket {
    fn new(burst: f64, rate: f64) -> Bucket {
        Bucket {
            tokens: burst,
            burst,
            rate,
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let dt = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        self.at = now;
    }

    /// How long until one token is available.
    fn wait(&mut self, now: Instant) -> Duration {
        self.refill(now);
        if self.tokens >= 1.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64((1.0 - self.tokens) / self.rate)
        }
    }

    fn take(&mut self) {
        self.tokens -= 1.0;
    }
}

/// Per-chat and global send limits.
#[derive(Debug)]
pub struct RateLimiter {
    chats: HashMap<i64, Bucket>,
    global: Bucket,
    chat_burst: f64,
    chat_rate: f64,
}

impl RateLimiter {
    pub fn new(chat_burst: u32, chat_per_sec: f64, global_per_sec: f64) -> RateLimiter {
        RateLimiter {
            chats: HashMap::new(),
            global: Bucket::new(global_per_sec.max(1.0), global_per_sec),
            chat_burst: f64::from(chat_burst),
            chat_rate: chat_per_sec,
        }
    }

    /// Waits until a message to `chat` may be sent, and counts it.
    pub async fn acquire(&mut self, chat: i64) {
        loop {
            let now = Instant::now();
            let (burst, rate) = (self.chat_burst, self.chat_rate);
            let bucket = self
                .chats
                .entry(chat)
                .or_insert_with(|| Bucket::new(burst, rate));
            let wait = bucket.wait(now).max(self.global.wait(now));
            if wait.is_zero() {
                bucket.take();
                self.global.take();
                break;
            }
            tokio::time::sleep(wait).await;
        }
        // Keep the map small: forget chats whose bucket is full again.
        if self.chats.len() > 1024 {
            let now = Instant::now();
            self.chats.retain(|_, b| {
                b.refill(now);
                b.tokens < b.burst
            });
        }
    }
}

/// What became of one delivery attempt.
enum Delivery {
    Done,
    /// A transient failure (network, 5xx): keep the entry, try again later.
    Later(String),
    /// The drain after a stop ran out: the entry stays for the next start.
    Stopped,
}

/// How long a send already on the wire may finish after the drain ran out.
/// Cutting it off earlier risks nothing lost, but the reply may then reach
/// Telegram and still be sent again at the next start.
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(1000);

pub struct Sender {
    pub bot: Bot,
    pub core: Arc<Core>,
    pub i18n: Arc<I18n>,
    pub wake: Arc<Notify>,
    pub limiter: RateLimiter,
}

impl Sender {
    /// Delivers outbox entries until `shutdown` fires; then goes on for at
    /// most [`crate::app::shutdown::DRAIN`] and returns, wherever it is —
    /// mid-batch, waiting on a rate limit or on `retry_after`. Undelivered
    /// entries stay in the outbox for the next start (a reply cut between
    /// two of its chunks resumes at the chunk it had reached).
    pub async fn run(mut self, shutdown: Shutdown) {
        let drained = shutdown.drained();
        tokio::pin!(drained);
        let mut backoff = Duration::from_millis(500);
        'outer: loop {
            let core = self.core.clone();
            let batch = match tokio::task::spawn_blocking(move || core.outbox(32)).await {
                Ok(Ok(b)) => b,
                Ok(Err(e)) => {
                    tracing::error!(error = %e, "cannot read the outbox");
                    Vec::new()
                }
                Err(e) => {
                    tracing::error!(error = %e, "outbox reader panicked");
                    Vec::new()
                }
            };
            let mut failed = false;
            for (seq, reply) in &batch {
                match self.deliver(*seq, reply.clone(), &shutdown).await {
                    Delivery::Stopped => break 'outer,
                    Delivery::Done => backoff = Duration::from_millis(500),
                    Delivery::Later(why) => {
                        tracing::warn!(seq, error = %why, retry_in = ?backoff, "reply not sent yet");
                        failed = true;
                        break;
                    }
                }
            }
            if batch.is_empty() && shutdown.is_triggered() {
                break;
            }
            let pause = if failed {
                let p = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(60));
                p
            } else if batch.is_empty() {
                Duration::from_secs(30)
            } else {
                continue;
            };
            tokio::select! {
                _ = &mut drained => break,
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                // Wakes the loop once, so an empty outbox ends it at once.
                _ = shutdown.triggered(), if !shutdown.is_triggered() => {}
            }
        }
        tracing::debug!("outbox sender stopped");
    }

    /// Sends one reply, chunk by chunk. Waits (rate limits, `retry_after`)
    /// end at the drain deadline; a send on the wire gets
    /// [`IN_FLIGHT_GRACE`] more.
    async fn deliver(&mut self, seq: u64, mut reply: Reply, shutdown: &Shutdown) -> Delivery {
        let chunks = render::render(&self.i18n, &reply);
        let mut sent = Vec::new();
        let mut refused: Option<String> = None;
        let mut reply_to = reply.reply_to;
        let mut i = reply.chunks_sent as usize;
        // A digest's slot is marked `sending` once per attempt, right
        // before its first request (see `Core::digest_gate`).
        let mut gated = reply.digest.is_none();
        while i < chunks.len() {
            let chunk = &chunks[i];
            if html_to_plain(chunk).trim().is_empty() {
                i += 1;
                continue;
            }
            tokio::select! {
                _ = self.limiter.acquire(reply.chat_id) => {}
                _ = shutdown.drained() => return Delivery::Stopped,
            }
            if !gated {
                let key = reply.digest.clone().expect("only digests are gated");
                let core = self.core.clone();
                match tokio::task::spawn_blocking(move || core.digest_gate(seq, &key)).await {
                    Ok(Ok(crate::core::Gate::Send)) => gated = true,
                    Ok(Ok(crate::core::Gate::Drop)) => return Delivery::Done,
                    Ok(Err(e)) => return Delivery::Later(e.to_string()),
                    Err(e) => return Delivery::Later(e.to_string()),
                }
            }
            let mut req = self
                .bot
                .send_message(ChatId(reply.chat_id), chunk.clone())
                .parse_mode(ParseMode::Html);
            if i + 1 == chunks.len() && !reply.buttons.is_empty() {
                req = req.reply_markup(keyboard(&self.i18n, &reply));
            }
            if let Some(m) = reply_to.filter(|_| i == 0) {
                req = req.reply_parameters(ReplyParameters {
                    allow_sending_without_reply: Some(true),
                    ..ReplyParameters::new(teloxide::types::MessageId(m as i32))
                });
            }
            let sent_or = tokio::select! {
                r = req.send() => r,
                _ = shutdown.after_stop(crate::app::shutdown::DRAIN + IN_FLIGHT_GRACE) => {
                    tracing::warn!(seq, chat_id = reply.chat_id, "a reply on the wire at shutdown; it may be sent again at the next start");
                    return Delivery::Stopped;
                }
            };
            crate::health::signals().telegram_result("SendMessage", &sent_or);
            match sent_or {
                Ok(msg) => {
                    sent.push(i64::from(msg.id.0));
                    i += 1;
                    if i < chunks.len() {
                        reply.chunks_sent = i as u32;
                        let r = reply.clone();
                        self.persist(move |core| core.outbox_progress(seq, &r))
                            .await;
                    }
                }
                Err(RequestError::RetryAfter(secs)) => {
                    tracing::warn!(chat_id = reply.chat_id, retry_after = ?secs.duration(), "Telegram asked to slow down");
                    tokio::select! {
                        _ = tokio::time::sleep(secs.duration()) => {}
                        _ = shutdown.drained() => return Delivery::Stopped,
                    }
                }
                Err(RequestError::Api(ApiError::MessageToReplyNotFound)) => reply_to = None,
                Err(
                    e @ (RequestError::Network(_)
                    | RequestError::Io(_)
                    | RequestError::InvalidJson { .. }),
                ) => {
                    // No connection at all: the request never left.
                    let not_sent = matches!(&e, RequestError::Network(n) if n.is_connect());
                    return self.unsent(seq, &reply, not_sent, e.to_string()).await;
                }
                Err(RequestError::Api(ApiError::Unknown(ref d)))
                    if d.contains("Internal Server Error") || d.contains("Bad Gateway") =>
                {
                    return self.unsent(seq, &reply, false, d.clone()).await;
                }
                Err(e) => {
                    tracing::error!(seq, chat_id = reply.chat_id, error = %e, "Telegram refused a reply; dropping it");
                    refused = Some(e.to_string());
                    break;
                }
            }
        }
        let done = self
            .settle(seq, &reply, &sent, refused.as_deref(), shutdown)
            .await;
        if done && refused.is_none() {
            tracing::debug!(seq, chat_id = reply.chat_id, "reply delivered");
        }
        Delivery::Done
    }

    /// A send failed for a reason that may pass. An ordinary reply stays
    /// for a retry. A digest is retried only when the request surely never
    /// left (`not_sent`); otherwise it may have arrived, and its slot
    /// becomes `uncertain` instead of risking a second copy.
    async fn unsent(&self, seq: u64, reply: &Reply, not_sent: bool, why: String) -> Delivery {
        let Some(key) = reply.digest.clone() else {
            return Delivery::Later(why);
        };
        let w = why.clone();
        let ok = self
            .persist(move |core| core.digest_unsent(seq, &key, not_sent, &w))
            .await;
        if not_sent || !ok {
            Delivery::Later(why)
        } else {
            tracing::warn!(seq, chat_id = reply.chat_id, error = %why, "a digest send ended without an answer; it is not sent again");
            Delivery::Done
        }
    }

    /// Removes a delivered (or refused) reply from the outbox. While the
    /// store refuses writes (a full disk) this waits and commits once it
    /// works again: going on would read the entry again and send the reply
    /// a second time. At the stop it gives up — the next start sends it
    /// again, the one at-least-once window (see the module docs).
    async fn settle(
        &self,
        seq: u64,
        reply: &Reply,
        sent: &[i64],
        refused: Option<&str>,
        shutdown: &Shutdown,
    ) -> bool {
        loop {
            let core = self.core.clone();
            let (r, ids, why) = (reply.clone(), sent.to_vec(), refused.map(str::to_owned));
            let e = match tokio::task::spawn_blocking(move || {
                core.outbox_done(seq, &r, &ids, why.as_deref())
            })
            .await
            {
                Ok(Ok(())) => return true,
                Ok(Err(e)) => e,
                Err(e) => {
                    tracing::error!(error = %e, "outbox update panicked");
                    return false;
                }
            };
            if !e.is_storage() {
                tracing::error!(error = %e, "cannot update the outbox");
                return false;
            }
            tracing::warn!(seq, error = %e, "a sent reply cannot be marked sent yet; it waits for the store (and is not sent again)");
            if !super::listener::store_works(&self.core, shutdown).await {
                return false;
            }
        }
    }

    /// Runs an outbox update off the async threads; true when it committed.
    async fn persist(
        &self,
        f: impl FnOnce(&Core) -> Result<(), crate::core::CoreError> + Send + 'static,
    ) -> bool {
        let core = self.core.clone();
        match tokio::task::spawn_blocking(move || f(&core)).await {
            Ok(Ok(())) => return true,
            Ok(Err(e)) => tracing::error!(error = %e, "cannot update the outbox"),
            Err(e) => tracing::error!(error = %e, "outbox update panicked"),
        }
        false
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn per_chat_bucket_allows_a_burst_then_one_per_second() {
        let mut rl = RateLimiter::new(3, 1.0, 30.0);
        let t0 = Instant::now();
        for _ in 0..3 {
            rl.acquire(1).await;
        }
        assert_eq!(t0.elapsed(), Duration::ZERO, "the burst is free");
        rl.acquire(1).await;
        rl.acquire(1).await;
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(1990) && e <= Duration::from_millis(2100),
            "{e:?}"
        );
        // Another chat is not held back by the first one.
        let t1 = Instant::now();
        rl.acquire(2).await;
        assert_eq!(t1.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn global_bucket_caps_all_chats() {
        let mut rl = RateLimiter::new(3, 1.0, 10.0);
        let t0 = Instant::now();
        for chat in 0..20 {
            rl.acquire(chat).await;
        }
        // 10 free, then 10 more at 10/s.
        let e = t0.elapsed();
        assert!(
            e >= Duration::from_millis(990) && e <= Duration::from_millis(1100),
            "{e:?}"
        );
    }
}
