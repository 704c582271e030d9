//! Digests in the core: `/digest`, `/schedule` and `/tz`; queuing a
//! scheduled digest with its ledger row in one commit; and the ledger
//! transitions the sender asks for around the send (see
//! [`crate::store::SlotRecord`] for why a slot is delivered at most once).

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::{now_ms, Button, Core, CoreError, Cx, Outcome, Reply};
use crate::buttons::Action;
use crate::digest::{self, render, Digest, Period, Schedules};
use crate::i18n::Line;
use crate::store::{ChatDigest, SlotKey, SlotRecord, SlotState, StoreError, Tx};

/// Ledger rows shown by `/schedule`.
const SCHEDULE_LEDGER_ROWS: usize = 5;

/// What the sender should do with a digest reply it is about to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Send it: the slot is marked `sending`.
    Send,
    /// Do not send: an earlier attempt may have reached the chat (the slot
    /// is now `uncertain`) or the slot is settled. The outbox entry is gone.
    Drop,
}

impl Core {
    /// The digest schedules from config (`None` when they did not parse:
    /// config validation makes that impossible outside tests).
    pub fn schedules(&self) -> Option<&Schedules> {
        self.settings.digest.as_ref()
    }

    /// The zone of `chat`'s digests: its /tz, else `digest.timezone`.
    pub fn chat_tz(&self, d: Option<&ChatDigest>) -> Tz {
        d.and_then(|d| d.tz.as_deref())
            .and_then(|t| t.parse().ok())
            .or(self.schedules().map(|s| s.tz))
            .unwrap_or(Tz::UTC)
    }

    /// The language replies to `chat` are written in.
    pub fn chat_lang_or_default(&self, chat: i64) -> Result<String, StoreError> {
        Ok(self
            .store
            .chat_lang(chat)?
            .unwrap_or_else(|| self.settings.default_lang.clone()))
    }

    /// Whether scheduled digests may go to `chat`: a private chat (its id
    /// is its user's) of a user mnemo serves.
    pub fn digest_chat_allowed(&self, chat: i64) -> Result<bool, StoreError> {
        Ok(chat > 0 && self.serves_user(chat)?)
    }

    /// A chat's digest settings, created when absent. Digests begin at the
    /// chat's newest note, if that is at most
    /// [`crate::digest::slots::ON_TIME`] ago (the loop notices a new chat at
    /// its next pass: a slot that passed since its first note is still
    /// sent, on time), else now (no backlog for chats older than digests).
    pub fn ensure_chat_digest(&self, chat: i64, now: i64) -> Result<ChatDigest, CoreError> {
        if let Some(d) = self.store.chat_digest(chat)? {
            return Ok(d);
        }
        let newest = self
            .store
            .recent(chat, 1)?
            .first()
            .map_or(now, |n| n.created_at);
        let since = newest
            .clamp(now - digest::slots::ON_TIME.num_milliseconds(), now)
            .saturating_sub(1);
        Ok(self.store.write(|tx| chat_digest_in(tx, chat, since))?)
    }

    /// The digest reply for `d`: its lines, and a ✅ button per to-do shown.
    fn digest_reply(&self, d: &Digest, lang: String, tz: Tz, late: bool) -> Reply {
        let buttons: Vec<Button> = render::todo_buttons(d)
            .into_iter()
            .filter_map(|(n, item)| {
                self.sign_button(
                    d.chat_id,
                    d.chat_id,
                    Action::Done,
                    item,
                    None,
                    Line::new("btn-done").num("n", n),
                )
            })
            .collect();
        Reply {
            chat_id: d.chat_id,
            reply_to: None,
            lang,
            lines: render::lines(d, tz, late),
            note_id: None,
            chunks_sent: 0,
            buttons: buttons.chunks(5).map(<[Button]>::to_vec).collect(),
            digest: None,
            low_priority: false,
        }
    }

    /// Queues the digest of a scheduled slot: its ledger row (`planned`)
    /// and its outbox entry in one commit. False when the slot has a row
    /// already (it is never planned twice). An empty digest is recorded
    /// `skipped` and nothing is queued.
    pub fn queue_digest(
        &self,
        key: &SlotKey,
        d: &Digest,
        late: bool,
        tz: Tz,
    ) -> Result<bool, CoreError> {
        let now = now_ms();
        let mut rec = SlotRecord::new(SlotState::Planned, now);
        rec.late = late;
        rec.notes = d.note_ids.len() as u64;
        rec.upto_note = d.upto_note();
        rec.source = Some(d.source.clone());
        if d.is_empty() {
            rec.state = SlotState::Skipped;
            rec.reason = Some("nothing new".into());
            let added = self.store.write(|tx| tx.add_slot(key, &rec))?;
            if added {
                crate::health::metrics::digest_outcome("skipped");
            }
            return Ok(added);
        }
        let lang = self.chat_lang_or_default(d.chat_id)?;
        let mut reply = self.digest_reply(d, lang, tz, late);
        reply.digest = Some(key.clone());
        let bytes = serde_json::to_vec(&Outcome::Reply(reply)).expect("outcomes serialise");
        let queued = self.store.write(|tx| {
            if !tx.add_slot(key, &rec)? {
                return Ok(false);
            }
            tx.push_outbox(&bytes)?;
            Ok(true)
        })?;
        if queued {
            self.notify_outbox();
        }
        Ok(queued)
    }

    /// Records slots that pass unsent (`missed`) or need no digest; slots
    /// with a row already are left alone. Returns how many were new.
    pub fn record_slots(&self, rows: &[(SlotKey, SlotRecord)]) -> Result<usize, CoreError> {
        let added = self.store.write(|tx| {
            let mut added = Vec::new();
            for (k, r) in rows {
                if tx.add_slot(k, r)? {
                    added.push(r.state.as_str());
                }
            }
            Ok(added)
        })?;
        for state in &added {
            crate::health::metrics::digest_outcome(state);
        }
        Ok(added.len())
    }

    /// Called by the sender before it sends the first chunk of a digest
    /// reply in this attempt. A `planned` slot becomes `sending` (committed
    /// before the request goes out). A slot already `sending` was attempted
    /// before with an unknown outcome: it becomes `uncertain` and the entry
    /// is dropped, so a slot is never posted twice.
    pub fn digest_gate(&self, seq: u64, key: &SlotKey) -> Result<Gate, CoreError> {
        Ok(self.store.write(|tx| {
            let Some(mut rec) = tx.slot(key)? else {
                // A digest queued without its row cannot happen; do not
                // guess, drop it.
                tx.remove_outbox(seq)?;
                return Ok(Gate::Drop);
            };
            match rec.state {
                SlotState::Planned => {
                    rec.state = SlotState::Sending;
                    rec.at = now_ms();
                    tx.put_slot(key, &rec)?;
                    Ok(Gate::Send)
                }
                SlotState::Sending => {
                    tracing::warn!(chat_id = key.chat_id, schedule = %key.schedule, slot = key.slot,
                        "a digest was being sent when mnemo stopped; it may have arrived, so it is not sent again");
                    rec.state = SlotState::Uncertain;
                    rec.at = now_ms();
                    rec.reason = Some("interrupted while sending".into());
                    crate::health::metrics::digest_outcome("uncertain");
                    tx.put_slot(key, &rec)?;
                    tx.remove_outbox(seq)?;
                    Ok(Gate::Drop)
                }
                _ => {
                    tx.remove_outbox(seq)?;
                    Ok(Gate::Drop)
                }
            }
        })?)
    }

    /// A digest send failed. `not_sent`: the request surely never reached
    /// Telegram (no connection), so the slot goes back to `planned` and
    /// the entry stays for a retry; otherwise the outcome is unknown (a
    /// timeout, a 5xx): the slot becomes `uncertain` and the entry is
    /// dropped.
    pub fn digest_unsent(
        &self,
        seq: u64,
        key: &SlotKey,
        not_sent: bool,
        why: &str,
    ) -> Result<(), CoreError> {
        Ok(self.store.write(|tx| {
            let Some(mut rec) = tx.slot(key)? else {
                return Ok(());
            };
            rec.at = now_ms();
            if not_sent && rec.message_ids.is_empty() {
                rec.state = SlotState::Planned;
            } else {
                rec.state = SlotState::Uncertain;
                rec.reason = Some(why.to_owned());
                tx.remove_outbox(seq)?;
            }
            tx.put_slot(key, &rec)
        })?)
    }

    /// `/digest [day|week|hour]`: the period up to now, not recorded in the
    /// ledger. Read-only (runs before the writer is taken).
    pub(super) fn read_digest(&self, chat: i64, args: &str) -> Result<Reply, StoreError> {
        let lang = self.chat_lang_or_default(chat)?;
        let Some(period) = Period::parse(args) else {
            return Ok(Reply::plain(chat, lang, vec![Line::new("digest-usage")]));
        };
        let tz = self.chat_tz(self.store.chat_digest(chat)?.as_ref());
        let to = now_ms();
        let from = to - period.length().num_milliseconds();
        let notes = digest::period_notes(&self.store, chat, 0, from, to)?;
        if notes.is_empty() {
            let line = Line::new("digest-empty")
                .key("period", &format!("digest-period-{}", period.as_str()));
            return Ok(Reply::plain(chat, lang, vec![line]));
        }
        let mut d = digest::build(&self.store, chat, period, (from, to), &notes)?;
        self.summarize(&mut d, &lang);
        Ok(self.digest_reply(&d, lang, tz, false))
    }

    /// Adds the LLM summary to `d` through the hook the App registered
    /// (nothing without one).
    pub fn summarize(&self, d: &mut Digest, lang: &str) {
        if let Some(f) = self
            .summarizer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f(d, lang);
        }
    }

    /// Registers the LLM summary step digests go through (the App's, when
    /// `[llm]` names a provider). It blocks its thread until done.
    pub fn on_summarize(&self, f: impl Fn(&mut Digest, &str) + Send + Sync + 'static) {
        *self.summarizer.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
    }

    /// `/schedule [on|off]`: the chat's schedules, next runs and last
    /// deliveries; `on`/`off` turns its scheduled digests on or off.
    pub(super) fn cmd_schedule(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        args: &str,
    ) -> Result<Vec<Line>, StoreError> {
        let chat = cx.ev.chat_id;
        let now = now_ms();
        let mut d = chat_digest_in(tx, chat, now)?;
        let mut lines = Vec::new();
        match args.trim().to_ascii_lowercase().as_str() {
            "" => {}
            "on" | "an" | "ein" => {
                d.enabled = true;
                tx.put_chat_digest(chat, &d)?;
                lines.push(Line::new("schedule-on"));
            }
            "off" | "aus" => {
                d.enabled = false;
                tx.put_chat_digest(chat, &d)?;
                lines.push(Line::new("schedule-off"));
            }
            _ => return Ok(vec![Line::new("schedule-usage")]),
        }
        let tz = self.chat_tz(Some(&d));
        lines.push(Line::new("schedule-header").text("tz", tz.name()).key(
            "state",
            if d.enabled {
                "schedule-state-on"
            } else {
                "schedule-state-off"
            },
        ));
        let now_t = DateTime::<Utc>::from_timestamp_millis(now).unwrap_or_default();
        for (p, cron) in self
            .schedules()
            .map(|s| s.crons.as_slice())
            .unwrap_or_default()
        {
            let line = Line::new("schedule-line")
                .key("period", &format!("digest-period-{}", p.as_str()))
                .text("cron", cron.expr());
            lines.push(match cron.next_after(tz, now_t).filter(|_| d.enabled) {
                Some(t) => line.text("next", render::local(t.timestamp_millis(), tz)),
                None => line.key("next", "schedule-next-none"),
            });
        }
        let rows = self.store.chat_ledger(chat, SCHEDULE_LEDGER_ROWS)?;
        if !rows.is_empty() {
            lines.push(Line::new("schedule-ledger-header"));
        }
        for (k, r) in rows {
            lines.push(
                Line::new("schedule-ledger-line")
                    .text("schedule", k.schedule.clone())
                    .text("slot", render::local(k.slot * 1000, tz))
                    .key("state", &format!("slot-{}", r.state.as_str()))
                    .key("late", if r.late { "digest-late" } else { "flag-none" }),
            );
        }
        Ok(lines)
    }

    /// `/tz [Zone]`: shows or sets the chat's time zone (IANA names).
    pub(super) fn cmd_tz(&self, tx: &mut Tx, cx: &Cx, args: &str) -> Result<Vec<Line>, StoreError> {
        let chat = cx.ev.chat_id;
        let mut d = chat_digest_in(tx, chat, now_ms())?;
        let name = args.trim();
        if name.is_empty() {
            return Ok(vec![
                Line::new("tz-current").text("tz", self.chat_tz(Some(&d)).name())
            ]);
        }
        match name.parse::<Tz>() {
            Ok(tz) => {
                d.tz = Some(tz.name().to_owned());
                tx.put_chat_digest(chat, &d)?;
                let now = DateTime::<Utc>::from_timestamp_millis(now_ms()).unwrap_or_default();
                Ok(vec![Line::new("tz-set").text("tz", tz.name()).text(
                    "time",
                    now.with_timezone(&tz).format("%H:%M").to_string(),
                )])
            }
            Err(_) => Ok(vec![Line::new("tz-unknown").text("tz", name)]),
        }
    }
}

/// A chat's digest settings in `tx`, created (digests begin at `now`) when
/// absent.
fn chat_digest_in(tx: &mut Tx, chat: i64, now: i64) -> Result<ChatDigest, StoreError> {
    if let Some(d) = tx.chat_digest(chat)? {
        return Ok(d);
    }
    let d = ChatDigest {
        tz: None,
        enabled: true,
        since: now,
    };
    tx.put_chat_digest(chat, &d)?;
    Ok(d)
}

/// The reply for a prepared `/digest`.
pub(super) fn digest_outcome(cx: &Cx, mut r: Reply) -> Outcome {
    r.chat_id = cx.ev.chat_id;
    r.lang = cx.lang.clone();
    if !cx.ev.origin.buttons {
        r.buttons.clear();
    }
    Outcome::Reply(r)
}
