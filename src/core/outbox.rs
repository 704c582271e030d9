//! Delivery plumbing: the Telegram inbox (updates durable before they are
//! confirmed), the outbox the sender drains, pruning of old markers, and
//! the hooks that wake the sender and the voice pipeline when the core
//! queued something on its own.

use super::{now_ms, Core, CoreError, Outcome, Reply};

impl Core {
    /// Registers what to call when the core queues replies on its own (voice
    /// transcripts and failures): the Telegram sender's wake-up.
    pub fn on_outbox(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.outbox_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
    }

    /// Registers what to call when a voice job becomes ready (the
    /// transcription pipeline's wake-up).
    pub fn on_voice_ready(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.voice_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
    }

    pub(super) fn notify_voice(&self) {
        fire(&self.voice_hook);
    }

    pub(super) fn notify_outbox(&self) {
        fire(&self.outbox_hook);
    }

    /// Wakes every background worker that may have backed off (the outbox
    /// sender, the voice pipeline, the embed worker): the store works again.
    pub fn wake_background(&self) {
        fire(&self.outbox_hook);
        fire(&self.voice_hook);
        self.wake_worker();
    }

    /// Records a received update durably before it is dispatched. Returns
    /// false for an update that was processed already.
    pub fn receive_update(&self, update_id: u64, raw: &[u8]) -> Result<bool, CoreError> {
        Ok(self.store.write(|tx| tx.inbox_put(update_id, raw))?)
    }

    /// Updates received but not processed before the last stop, oldest first.
    pub fn pending_updates(&self) -> Result<Vec<(u64, Vec<u8>)>, CoreError> {
        Ok(self.store.inbox(usize::MAX)?)
    }

    /// Marks an update that needs no handling (an unsupported update kind).
    pub fn discard_update(&self, update_id: u64) -> Result<(), CoreError> {
        Ok(self
            .store
            .write(|tx| tx.mark_processed(update_id, now_ms()))?)
    }

    /// Queued replies, oldest first. Undecodable entries are dropped with an
    /// error in the log rather than blocking the queue forever.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(u64, Reply)>, CoreError> {
        self.outbox_after(None, limit)
    }

    /// Queued replies after sequence number `after`, oldest first (what the
    /// sender reads as new: sequence numbers grow in commit order, so
    /// nothing committed later lands before `after`). Undecodable entries
    /// are dropped as in [`Core::outbox`].
    pub fn outbox_after(
        &self,
        after: Option<u64>,
        limit: usize,
    ) -> Result<Vec<(u64, Reply)>, CoreError> {
        let mut out = Vec::new();
        for (seq, bytes) in self.store.outbox_after(after, limit)? {
            match serde_json::from_slice::<Outcome>(&bytes) {
                Ok(Outcome::Reply(r)) => out.push((seq, r)),
                Ok(other) => {
                    tracing::error!(seq, ?other, "dropping an outbox entry that is not a reply");
                    self.store.write(|tx| tx.remove_outbox(seq))?;
                }
                Err(e) => {
                    tracing::error!(seq, error = %e, "dropping unreadable outbox entry");
                    self.store.write(|tx| tx.remove_outbox(seq))?;
                }
            }
        }
        Ok(out)
    }

    /// Records that `chunks_sent` chunks of reply `seq` went out.
    pub fn outbox_progress(&self, seq: u64, reply: &Reply) -> Result<(), CoreError> {
        let bytes = serde_json::to_vec(&Outcome::Reply(reply.clone())).expect("outcomes serialise");
        Ok(self.store.write(|tx| tx.replace_outbox(seq, &bytes))?)
    }

    /// Removes a delivered (or undeliverable) reply and links the sent message
    /// ids to the acknowledged note. A digest's slot is settled in the same
    /// commit: `sent` with the message ids, or `failed` with `refused` (why
    /// Telegram refused it).
    pub fn outbox_done(
        &self,
        seq: u64,
        reply: &Reply,
        sent_message_ids: &[i64],
        refused: Option<&str>,
    ) -> Result<(), CoreError> {
        self.store.write(|tx| {
            tx.remove_outbox(seq)?;
            if let Some(note) = reply.note_id {
                if tx.note(note)?.is_some() {
                    for m in sent_message_ids {
                        tx.link_message(reply.chat_id, *m, note)?;
                    }
                }
            }
            if let Some(key) = &reply.digest {
                if let Some(mut rec) = tx.slot(key)? {
                    rec.at = now_ms();
                    rec.message_ids.extend_from_slice(sent_message_ids);
                    match refused {
                        Some(why) => {
                            rec.state = crate::store::SlotState::Failed;
                            rec.reason = Some(why.to_owned());
                        }
                        None => rec.state = crate::store::SlotState::Sent,
                    }
                    tx.put_slot(key, &rec)?;
                }
            }
            Ok(())
        })?;
        if reply.digest.is_some() {
            let outcome = if refused.is_some() { "failed" } else { "sent" };
            crate::health::metrics::digest_outcome(outcome);
        }
        Ok(())
    }

    /// Drops processed-update markers older than a week, the used nonces
    /// and recall questions of buttons that have expired, and digest ledger
    /// rows older than [`LEDGER_DAYS`], LLM call records older than
    /// [`LLM_CALL_DAYS`] (each schedule keeps the rows that
    /// say what is new and where catch-up starts).
    pub fn prune(&self) -> Result<u64, CoreError> {
        let now = now_ms();
        let horizon =
            now / 1000 - self.settings.button_max_age_secs - crate::buttons::MAX_CLOCK_SKEW_SECS;
        Ok(self.store.write(|tx| {
            Ok(tx.prune_processed(now - 7 * 86_400_000)?
                + tx.prune_buttons(horizon)?
                + tx.prune_ledger(now - LEDGER_DAYS * 86_400_000)?
                + tx.prune_llm_calls(now - LLM_CALL_DAYS * 86_400_000)?)
        })?)
    }
}

/// Days of LLM call records kept (this month's spend needs at most 31).
pub const LLM_CALL_DAYS: i64 = 400;

/// Days of digest ledger kept.
pub const LEDGER_DAYS: i64 = 90;

/// Calls a registered hook, if any.
fn fire(hook: &std::sync::Mutex<Option<Box<dyn Fn() + Send + Sync>>>) {
    if let Some(f) = hook.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
        f();
    }
}
