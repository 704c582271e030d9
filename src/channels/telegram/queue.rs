//! The sender's schedule: which queued reply goes out next.
//!
//! Every queued reply sits in its chat's FIFO queue, in outbox order (a
//! chat's replies in sequence, a reply's chunks in order), and at most one
//! send per chat is on the wire. Across chats the order is round-robin: the
//! next send goes to the first chat in the ring that may send now — nothing
//! of its own on the wire, no `retry_after` or back-off of its own running,
//! a token in its bucket — and that chat moves to the back of the ring. So
//! a chat waiting on its own limits never holds up another.
//!
//! What is shared: the global bucket (Telegram's ~30 messages/s per bot) and
//! a global pause — for failures that are clearly not one chat's (no
//! connection, 5xx, a store error) and for a `retry_after` while another
//! chat is still under one of its own (two chats throttled at once is the
//! bot's limit, not theirs).
//!
//! Refusals to strangers ([`Reply::low_priority`]) go last: one is sent only
//! when no ordinary reply waits for its turn — none on the wire and none
//! waiting only for tokens. A chat held back by its own `retry_after` or
//! back-off does not hold them back.
//!
//! A pick and a settle cost O(1) per reply whatever a chat's backlog; a
//! pick looks at chats in ring order until one may send, so at worst it
//! passes every chat with queued replies (all waiting on their buckets, or
//! refusals waiting their turn).

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tokio::time::Instant;

use crate::core::Reply;

/// The first wait after a transient failure; it doubles up to [`MAX_BACKOFF`].
pub const FIRST_BACKOFF: Duration = Duration::from_millis(500);
pub const MAX_BACKOFF: Duration = Duration::from_secs(60);

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

    /// How long until `chat`'s own bucket has a token.
    fn chat_wait(&mut self, chat: i64, now: Instant) -> Duration {
        match self.chats.get_mut(&chat) {
            Some(b) => b.wait(now),
            // A chat not seen lately has a full bucket.
            None if self.chat_burst >= 1.0 => Duration::ZERO,
            None => Bucket::new(self.chat_burst, self.chat_rate).wait(now),
        }
    }

    /// How long until the global bucket has a token.
    fn global_wait(&mut self, now: Instant) -> Duration {
        self.global.wait(now)
    }

    /// Counts a message to `chat` (call when both waits are zero).
    fn take(&mut self, chat: i64) {
        let (burst, rate) = (self.chat_burst, self.chat_rate);
        self.chats
            .entry(chat)
            .or_insert_with(|| Bucket::new(burst, rate))
            .take();
        self.global.take();
        // Keep the map small: forget chats whose bucket is full again.
        if self.chats.len() > 1024 {
            let now = Instant::now();
            self.chats.retain(|_, b| {
                b.refill(now);
                b.tokens < b.burst
            });
        }
    }

    /// Waits until a message to `chat` may be sent, and counts it.
    pub async fn acquire(&mut self, chat: i64) {
        loop {
            let now = Instant::now();
            let wait = self.chat_wait(chat, now).max(self.global_wait(now));
            if wait.is_zero() {
                self.take(chat);
                return;
            }
            tokio::time::sleep(wait).await;
        }
    }
}

/// A queued reply as the sender holds it between sends.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Its outbox key.
    pub seq: u64,
    /// As far as it went (`chunks_sent`; `reply_to` dropped when Telegram
    /// no longer had that message).
    pub reply: Reply,
    /// A digest's slot was marked `sending` in this attempt
    /// ([`crate::core::Core::digest_gate`]); always true for other replies.
    pub gated: bool,
    /// Telegram's ids of the chunks sent so far in this run.
    pub sent: Vec<i64>,
}

/// What one send step came to (see [`Queues::settle`]).
#[derive(Debug)]
pub enum Step {
    /// A chunk went out, or is to be tried again at once (its `reply_to`
    /// was dropped); the rest of the reply follows in a later turn.
    Progress {
        reply: Reply,
        gated: bool,
        sent: Vec<i64>,
    },
    /// The reply is done with: delivered, refused for good, or dropped by
    /// the digest ledger. Its outbox entry was removed (or that commit
    /// failed: it stays for the next start).
    Finished,
    /// Telegram said 429: not before `after`.
    RetryAfter { after: Duration, gated: bool },
    /// A transient failure: try again after a back-off — this chat's, or
    /// everyone's when `global` (no connection, 5xx, the store).
    Later { global: bool, why: String },
    /// The drain after a stop ran out while this send was on the wire.
    Stopped,
}

/// What to do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Pick {
    /// Send the head of this chat's queue ([`Queues::head`]); the tokens
    /// are taken and the chat is marked busy until [`Queues::settle`].
    Send(i64),
    /// Nothing may go now; ask again at this instant (or when a send
    /// settles or new replies are pushed, if `None`).
    Wait(Option<Instant>),
}

#[derive(Debug)]
struct Chat {
    entries: VecDeque<Entry>,
    /// A send of this chat's is on the wire.
    busy: bool,
    /// Its own `retry_after` or back-off: not before this.
    not_before: Option<Instant>,
    /// Under a 429 of its own until then.
    throttled_until: Option<Instant>,
    backoff: Duration,
}

impl Chat {
    /// Held back by its own `retry_after` or back-off at `now`.
    fn held(&self, now: Instant) -> bool {
        self.not_before.is_some_and(|t| t > now)
    }
}

/// The replies the sender holds, by chat, and the state that decides whose
/// turn it is.
#[derive(Debug)]
pub struct Queues {
    chats: HashMap<i64, Chat>,
    /// Chats with queued replies, in serving order.
    ring: VecDeque<i64>,
    limiter: RateLimiter,
    paused_until: Option<Instant>,
    global_backoff: Duration,
    len: usize,
}

impl Queues {
    pub fn new(limiter: RateLimiter) -> Queues {
        Queues {
            chats: HashMap::new(),
            ring: VecDeque::new(),
            limiter,
            paused_until: None,
            global_backoff: FIRST_BACKOFF,
            len: 0,
        }
    }

    /// Queues outbox entry `seq` behind its chat's earlier ones (push in
    /// outbox order).
    pub fn push(&mut self, seq: u64, reply: Reply) {
        let chat = reply.chat_id;
        let gated = reply.digest.is_none();
        let q = self.chats.entry(chat).or_insert_with(|| Chat {
            entries: VecDeque::new(),
            busy: false,
            not_before: None,
            throttled_until: None,
            backoff: FIRST_BACKOFF,
        });
        if q.entries.is_empty() {
            self.ring.push_back(chat);
        }
        q.entries.push_back(Entry {
            seq,
            reply,
            gated,
            sent: Vec::new(),
        });
        self.len += 1;
    }

    /// Replies held (those on the wire included).
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The reply at the head of `chat`'s queue (the one [`Pick::Send`]
    /// named).
    pub fn head(&self, chat: i64) -> Option<&Entry> {
        self.chats.get(&chat).and_then(|q| q.entries.front())
    }

    /// Chooses the next send, taking its tokens; see the module docs.
    pub fn pick(&mut self, now: Instant) -> Pick {
        if let Some(t) = self.paused_until {
            if t > now {
                return Pick::Wait(Some(t));
            }
            self.paused_until = None;
        }
        // Refusals wait while an ordinary reply waits for its turn.
        let ordinary_waiting = self.chats.values().any(|q| {
            q.entries.front().is_some_and(|e| !e.reply.low_priority) && (q.busy || !q.held(now))
        });
        let mut earliest: Option<Instant> = None;
        let mut at = |t: Instant| earliest = Some(earliest.map_or(t, |e| e.min(t)));
        for i in 0..self.ring.len() {
            let chat = self.ring[i];
            let Some(q) = self.chats.get(&chat) else {
                continue;
            };
            if q.busy || q.entries.is_empty() {
                continue;
            }
            if let Some(t) = q.not_before.filter(|t| *t > now) {
                at(t);
                continue;
            }
            if ordinary_waiting && q.entries.front().is_some_and(|e| e.reply.low_priority) {
                continue;
            }
            let w = self.limiter.chat_wait(chat, now);
            if !w.is_zero() {
                at(now + w);
                continue;
            }
            let g = self.limiter.global_wait(now);
            if !g.is_zero() {
                return Pick::Wait(Some(now + g));
            }
            self.limiter.take(chat);
            self.ring.remove(i);
            self.ring.push_back(chat);
            if let Some(q) = self.chats.get_mut(&chat) {
                q.busy = true;
                q.not_before = None;
            }
            return Pick::Send(chat);
        }
        Pick::Wait(earliest)
    }

    /// Records what became of the send [`Queues::pick`] gave `chat`.
    pub fn settle(&mut self, chat: i64, step: Step, now: Instant) {
        // Another chat still under a 429 of its own (read before this
        // chat's state changes; only a 429 asks).
        let others_throttled = matches!(step, Step::RetryAfter { .. })
            && self
                .chats
                .iter()
                .any(|(c, q)| *c != chat && q.throttled_until.is_some_and(|t| t > now));
        let Some(q) = self.chats.get_mut(&chat) else {
            return;
        };
        q.busy = false;
        match step {
            Step::Progress { reply, gated, sent } => {
                if let Some(e) = q.entries.front_mut() {
                    e.reply = reply;
                    e.gated = gated;
                    e.sent = sent;
                }
                q.backoff = FIRST_BACKOFF;
                self.global_backoff = FIRST_BACKOFF;
            }
            Step::Finished => {
                if q.entries.pop_front().is_some() {
                    self.len -= 1;
                }
                q.backoff = FIRST_BACKOFF;
                self.global_backoff = FIRST_BACKOFF;
            }
            Step::RetryAfter { after, gated } => {
                if let Some(e) = q.entries.front_mut() {
                    e.gated = gated;
                }
                let until = now + after;
                q.not_before = Some(until);
                q.throttled_until = Some(until);
                if others_throttled {
                    tracing::warn!(retry_after = ?after, "Telegram throttles more than one chat: pausing every chat");
                    self.paused_until = Some(self.paused_until.map_or(until, |p| p.max(until)));
                } else {
                    tracing::warn!(chat_id = chat, retry_after = ?after, "Telegram asked to slow down in this chat");
                }
            }
            Step::Later { global, why } => {
                // The next try is a new attempt: a digest is gated again.
                if let Some(e) = q.entries.front_mut() {
                    e.gated = e.reply.digest.is_none();
                }
                let seq = q.entries.front().map(|e| e.seq);
                if global {
                    let wait = self.global_backoff;
                    self.global_backoff = (wait * 2).min(MAX_BACKOFF);
                    self.paused_until = Some(now + wait);
                    tracing::warn!(seq, chat_id = chat, error = %why, retry_in = ?wait, "reply not sent yet; every chat waits");
                } else {
                    let wait = q.backoff;
                    q.backoff = (wait * 2).min(MAX_BACKOFF);
                    q.not_before = Some(now + wait);
                    tracing::warn!(seq, chat_id = chat, error = %why, retry_in = ?wait, "reply not sent yet; this chat waits");
                }
            }
            Step::Stopped => {}
        }
        if q.entries.is_empty() {
            self.chats.remove(&chat);
            // Served lately, so near the back.
            if let Some(i) = self.ring.iter().rposition(|c| *c == chat) {
                self.ring.remove(i);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::i18n::Line;

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

    fn reply(chat: i64, n: u64) -> Reply {
        Reply {
            chat_id: chat,
            reply_to: Some(n as i64),
            lang: "en".into(),
            lines: vec![Line::new("note-saved")],
            note_id: None,
            chunks_sent: 0,
            buttons: Vec::new(),
            digest: None,
            low_priority: false,
        }
    }

    fn refusal(chat: i64, n: u64) -> Reply {
        Reply {
            low_priority: true,
            ..reply(chat, n)
        }
    }

    /// What the sender's loop does, with sends that take `rtt` and end as
    /// `outcome` says: (time since start, chat, seq) of every send tried,
    /// until every reply is finished or `until` passes.
    async fn drive(
        q: &mut Queues,
        max_in_flight: usize,
        rtt: Duration,
        until: Duration,
        mut outcome: impl FnMut(i64, u64, usize) -> Step,
    ) -> Vec<(Duration, i64, u64)> {
        let t0 = Instant::now();
        let mut log = Vec::new();
        // (done at, chat, step)
        let mut wire: Vec<(Instant, i64, Step)> = Vec::new();
        while !q.is_empty() && t0.elapsed() < until {
            let mut wait = None;
            while wire.len() < max_in_flight {
                match q.pick(Instant::now()) {
                    Pick::Send(chat) => {
                        let seq = q.head(chat).unwrap().seq;
                        let step = outcome(chat, seq, log.len());
                        log.push((t0.elapsed(), chat, seq));
                        wire.push((Instant::now() + rtt, chat, step));
                    }
                    Pick::Wait(t) => {
                        wait = t;
                        break;
                    }
                }
            }
            let next_done = wire.iter().map(|w| w.0).min();
            let next = match (wait, next_done) {
                (Some(a), Some(b)) => a.min(b),
                (a, b) => a.or(b).expect("something to wait for"),
            };
            tokio::time::sleep_until(next).await;
            let now = Instant::now();
            let (done, rest): (Vec<_>, Vec<_>) = wire.into_iter().partition(|w| w.0 <= now);
            wire = rest;
            for (_, chat, step) in done {
                q.settle(chat, step, now);
            }
        }
        log
    }

    fn ok(_: i64, _: u64, _: usize) -> Step {
        Step::Finished
    }

    #[tokio::test(start_paused = true)]
    async fn a_chat_behind_its_own_bucket_does_not_delay_another() {
        // Telegram's limits: a burst of 3, then 1/s per chat; 30/s overall.
        let mut q = Queues::new(RateLimiter::new(3, 1.0, 30.0));
        for n in 1..=20 {
            q.push(n, reply(1, n));
        }
        q.push(21, reply(2, 21));
        let log = drive(&mut q, 1, Duration::ZERO, Duration::from_secs(60), ok).await;
        let seqs = |chat| {
            log.iter()
                .filter(|(_, c, _)| *c == chat)
                .map(|(_, _, s)| *s)
                .collect::<Vec<_>>()
        };
        assert_eq!(
            seqs(1),
            (1..=20).collect::<Vec<_>>(),
            "A in order, once each"
        );
        let b = log.iter().position(|(_, c, _)| *c == 2).unwrap();
        let (at, _, _) = log[b];
        assert_eq!(at, Duration::ZERO, "B goes at once");
        assert!(b <= 3, "B is served within A's burst: {log:?}");
        // A itself still gets 1/s after its burst.
        let a_last = log.iter().rfind(|(_, c, _)| *c == 1).unwrap().0;
        assert!(a_last >= Duration::from_secs(17), "{a_last:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn chats_ready_at_once_take_turns() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        let mut seq = 0;
        for chat in [1, 2, 3] {
            for _ in 0..3 {
                seq += 1;
                q.push(seq, reply(chat, seq));
            }
        }
        let log = drive(
            &mut q,
            1,
            Duration::from_millis(10),
            Duration::from_secs(60),
            ok,
        )
        .await;
        let chats: Vec<i64> = log.iter().map(|(_, c, _)| *c).collect();
        assert_eq!(chats, vec![1, 2, 3, 1, 2, 3, 1, 2, 3]);
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_limit_holds_across_chats() {
        let mut q = Queues::new(RateLimiter::new(3, 1.0, 10.0));
        for chat in 0..40 {
            q.push(chat as u64, reply(chat, chat as u64));
        }
        let log = drive(&mut q, 8, Duration::ZERO, Duration::from_secs(60), ok).await;
        assert_eq!(log.len(), 40);
        // A burst of 10, then 10/s: never more than 10 + 10·t by time t.
        for (i, (at, _, _)) in log.iter().enumerate() {
            let allowed = 10.0 + 10.0 * at.as_secs_f64() + 1e-6;
            assert!((i + 1) as f64 <= allowed, "send {i} at {at:?}");
        }
        assert!(log[39].0 >= Duration::from_millis(2990), "{:?}", log[39].0);
    }

    #[tokio::test(start_paused = true)]
    async fn one_send_per_chat_on_the_wire_and_a_slow_one_holds_only_its_chat() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        q.push(1, reply(1, 1));
        q.push(2, reply(1, 2));
        q.push(3, reply(2, 3));
        assert_eq!(q.pick(Instant::now()), Pick::Send(1));
        // Chat 1's next reply waits for the one on the wire; chat 2 goes.
        assert_eq!(q.pick(Instant::now()), Pick::Send(2));
        assert_eq!(q.pick(Instant::now()), Pick::Wait(None));
        q.settle(2, Step::Finished, Instant::now());
        assert_eq!(q.pick(Instant::now()), Pick::Wait(None));
        q.settle(1, Step::Finished, Instant::now());
        assert_eq!(q.pick(Instant::now()), Pick::Send(1));
        assert_eq!(q.head(1).unwrap().seq, 2);
    }

    #[tokio::test(start_paused = true)]
    async fn refusals_go_after_every_ordinary_reply_queued_with_them() {
        // One message per second per chat: chat 1's replies trickle, and the
        // refusal (queued first) still waits for all of them.
        let mut q = Queues::new(RateLimiter::new(1, 1.0, 30.0));
        q.push(1, refusal(9, 1));
        for n in 2..=6 {
            q.push(n, reply(1, n));
        }
        q.push(7, reply(2, 7));
        let log = drive(&mut q, 4, Duration::ZERO, Duration::from_secs(60), ok).await;
        let order: Vec<u64> = log.iter().map(|(_, _, s)| *s).collect();
        assert_eq!(*order.last().unwrap(), 1, "{log:?}");
        assert_eq!(order.len(), 7);
    }

    #[tokio::test(start_paused = true)]
    async fn a_refusal_is_not_held_back_by_a_chat_in_back_off() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        q.push(1, reply(1, 1));
        q.push(2, refusal(9, 2));
        assert_eq!(q.pick(Instant::now()), Pick::Send(1));
        assert_eq!(
            q.pick(Instant::now()),
            Pick::Wait(None),
            "chat 1 is sending"
        );
        q.settle(
            1,
            Step::Later {
                global: false,
                why: "timed out".into(),
            },
            Instant::now(),
        );
        assert_eq!(q.pick(Instant::now()), Pick::Send(9));
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_for_one_chat_pauses_that_chat_only() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        for n in 1..=3 {
            q.push(n, reply(1, n));
        }
        for n in 4..=6 {
            q.push(n, reply(2, n));
        }
        let log = drive(
            &mut q,
            1,
            Duration::from_millis(10),
            Duration::from_secs(60),
            {
                let mut throttled_once = false;
                move |chat, seq, _| {
                    if chat == 1 && seq == 1 && !throttled_once {
                        throttled_once = true;
                        Step::RetryAfter {
                            after: Duration::from_secs(5),
                            gated: true,
                        }
                    } else {
                        Step::Finished
                    }
                }
            },
        )
        .await;
        let b: Vec<_> = log.iter().filter(|(_, c, _)| *c == 2).collect();
        assert!(
            b.iter().all(|(at, _, _)| *at < Duration::from_secs(1)),
            "chat 2 is not held by chat 1's retry_after: {log:?}"
        );
        let a: Vec<_> = log.iter().filter(|(_, c, _)| *c == 1).collect();
        assert_eq!(
            a.iter().map(|(_, _, s)| *s).collect::<Vec<_>>(),
            vec![1, 1, 2, 3],
            "the throttled reply is tried again, then the rest in order"
        );
        assert!(a[1].0 >= Duration::from_secs(5), "{log:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn retry_after_in_two_chats_at_once_pauses_everyone() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        q.push(1, reply(1, 1));
        q.push(2, reply(2, 2));
        q.push(3, reply(3, 3));
        let t0 = Instant::now();
        assert_eq!(q.pick(t0), Pick::Send(1));
        assert_eq!(q.pick(t0), Pick::Send(2));
        let throttled = || Step::RetryAfter {
            after: Duration::from_secs(3),
            gated: true,
        };
        q.settle(1, throttled(), t0);
        // One chat throttled: the others go on.
        assert_eq!(q.pick(t0), Pick::Send(3));
        q.settle(3, Step::Finished, t0);
        q.settle(2, throttled(), t0);
        // A second one within the first's window: the bot's own limit.
        assert_eq!(q.pick(t0), Pick::Wait(Some(t0 + Duration::from_secs(3))));
        q.push(4, reply(4, 4));
        assert_eq!(
            q.pick(t0 + Duration::from_secs(1)),
            Pick::Wait(Some(t0 + Duration::from_secs(3))),
            "a new chat waits too"
        );
        assert!(matches!(q.pick(t0 + Duration::from_secs(3)), Pick::Send(_)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_failure_backs_off_its_chat_unless_it_is_global() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        q.push(1, reply(1, 1));
        q.push(2, reply(2, 2));
        let t0 = Instant::now();
        let later = |global| Step::Later {
            global,
            why: "x".into(),
        };
        assert_eq!(q.pick(t0), Pick::Send(1));
        q.settle(1, later(false), t0);
        assert_eq!(q.pick(t0), Pick::Send(2), "only chat 1 backs off");
        q.settle(2, later(true), t0);
        assert_eq!(
            q.pick(t0),
            Pick::Wait(Some(t0 + FIRST_BACKOFF)),
            "no connection: everyone waits"
        );
        // Chat 1's own back-off doubles; the global one too.
        let t1 = t0 + FIRST_BACKOFF;
        assert_eq!(q.pick(t1), Pick::Send(1));
        q.settle(1, later(false), t1);
        assert_eq!(q.pick(t1), Pick::Send(2));
        q.settle(2, later(true), t1);
        assert_eq!(q.pick(t1), Pick::Wait(Some(t1 + FIRST_BACKOFF * 2)));
        let t2 = t1 + FIRST_BACKOFF * 2;
        // Chat 1's back-off (1 s) ended with the pause; a success resets both.
        assert_eq!(q.pick(t2), Pick::Send(1));
        q.settle(1, Step::Finished, t2);
        assert_eq!(q.pick(t2), Pick::Send(2));
        q.settle(2, later(true), t2);
        assert_eq!(q.pick(t2), Pick::Wait(Some(t2 + FIRST_BACKOFF)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_chunked_reply_keeps_its_progress_and_finishes_in_later_turns() {
        let mut q = Queues::new(RateLimiter::new(100, 100.0, 1000.0));
        q.push(1, reply(1, 1));
        q.push(2, reply(2, 2));
        let t0 = Instant::now();
        assert_eq!(q.pick(t0), Pick::Send(1));
        let mut r = q.head(1).unwrap().reply.clone();
        r.chunks_sent = 1;
        q.settle(
            1,
            Step::Progress {
                reply: r,
                gated: true,
                sent: vec![77],
            },
            t0,
        );
        assert_eq!(q.pick(t0), Pick::Send(2), "chat 2's turn between chunks");
        assert_eq!(q.pick(t0), Pick::Send(1));
        let head = q.head(1).unwrap();
        assert_eq!((head.seq, head.reply.chunks_sent), (1, 1));
        assert_eq!(head.sent, vec![77]);
        q.settle(1, Step::Finished, t0);
        q.settle(2, Step::Finished, t0);
        assert!(q.is_empty());
        assert_eq!(q.pick(t0), Pick::Wait(None));
    }
}
