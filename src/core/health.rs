//! The core's side of health: the commit of a health pass (check states,
//! the alert log and the alert message in one transaction), `/health` and
//! `/alerts` (the owner and the admin chat only), the alert buttons (🔕
//! snooze 1 h, ✅ acknowledge, 🔍 details) and the index counts the index
//! check compares with the store. And the alert for a store that refuses
//! writes (`storage_alert`, sent directly by the channel: the outbox is in
//! the failing store) and its recovery (`storage_recovered`, through the
//! outbox once commits work again).

use super::{now_ms, Button, Changes, Core, CoreError, Cx, Outcome, Reply};
use crate::buttons::Action;
use crate::health::{self, machine::Phase, Alert, CheckId, CheckRecord, Level, Transition};
use crate::i18n::Line;
use crate::store::{Failure, StoreError, Tx};

/// How long 🔕 mutes an alert's repeats.
pub const SNOOZE_MS: i64 = 3_600_000;
/// Transitions `/alerts` lists.
const ALERTS_SHOWN: usize = 20;

impl Core {
    /// (lexical documents, vectors) in the derived indexes.
    pub fn index_counts(&self) -> (usize, usize) {
        (self.indexes.lexical_len(), self.indexes.vectors_len())
    }

    /// Commits one health pass: every check's record, the new log entries
    /// and, when there is one, the alert message (outbox) — all or nothing.
    pub fn health_commit(
        &self,
        records: &[(&str, Vec<u8>)],
        log: &[Vec<u8>],
        alert: Option<Alert>,
    ) -> Result<(), CoreError> {
        let reply = match &alert {
            Some(a) => {
                let lang = self.chat_lang_or_default(a.chat)?;
                Some(self.alert_reply(a, lang))
            }
            None => None,
        };
        let bytes =
            reply.map(|r| serde_json::to_vec(&Outcome::Reply(r)).expect("outcomes serialise"));
        self.store.write(|tx| {
            for (name, rec) in records {
                tx.put_health_record(name, rec)?;
            }
            for entry in log {
                tx.log_health(entry)?;
            }
            if let Some(b) = &bytes {
                tx.push_outbox(b)?;
            }
            Ok(())
        })?;
        if bytes.is_some() {
            self.notify_outbox();
        }
        Ok(())
    }

    /// The alert for a store that refuses writes, for `chat` in `lang`:
    /// the check it is told as (the data disk when the disk is full, else
    /// the database), why, and that polling waits and nothing is lost.
    /// Built without reading the store: the channel sends it directly.
    pub fn storage_alert(&self, f: &Failure, chat: i64, lang: &str) -> Reply {
        let t = storage_transition(f, health::machine::Event::Firing, f.since, f.since);
        let mut lines = vec![Line::new("health-alert-header").num("count", 1)];
        lines.extend(transition_lines(&t));
        lines.push(Line::new("health-storage-held"));
        Reply::plain(chat, lang.to_owned(), lines)
    }

    /// The store works again after `f`: the recovery message through the
    /// outbox — with the alert before it when the alert could not be sent
    /// (`told` false) — and both transitions in the alert log, one commit.
    /// False when nobody owns this mnemo yet (nothing to tell).
    pub fn storage_recovered(&self, f: &Failure, told: bool, now: i64) -> Result<bool, CoreError> {
        use health::machine::Event;
        let Some((chat, _)) = self.admin_target()? else {
            return Ok(false);
        };
        let lang = self.chat_lang_or_default(chat)?;
        let fired = storage_transition(f, Event::Firing, f.since, now);
        let back = storage_transition(f, Event::Recovered, now, now);
        let shown: Vec<&Transition> = if told {
            vec![&back]
        } else {
            vec![&fired, &back]
        };
        let mut lines = vec![Line::new("health-alert-header").num("count", shown.len())];
        for t in &shown {
            lines.extend(transition_lines(t));
        }
        lines.pop();
        lines.push(Line::new("health-storage-back"));
        let reply = Reply::plain(chat, lang, lines);
        let bytes = serde_json::to_vec(&Outcome::Reply(reply)).expect("outcomes serialise");
        let log: Vec<Vec<u8>> = [&fired, &back]
            .iter()
            .map(|t| serde_json::to_vec(t).expect("transitions serialise"))
            .collect();
        self.store.write(|tx| {
            for entry in &log {
                tx.log_health(entry)?;
            }
            tx.push_outbox(&bytes)?;
            Ok(())
        })?;
        let name = storage_check(f).name();
        health::metrics::alert(name, Event::Firing.as_str());
        health::metrics::alert(name, Event::Recovered.as_str());
        self.notify_outbox();
        Ok(true)
    }

    fn alert_reply(&self, a: &Alert, lang: String) -> Reply {
        let mut lines = vec![Line::new("health-alert-header").num("count", a.items.len())];
        let mut rows: Vec<Vec<Button>> = Vec::new();
        for t in &a.items {
            lines.extend(transition_lines(t));
            if matches!(t.event, health::machine::Event::Recovered) {
                continue;
            }
            let row: Vec<Button> = [
                (Action::HealthSnooze, "btn-health-snooze"),
                (Action::HealthAck, "btn-health-ack"),
                (Action::HealthDetails, "btn-health-details"),
            ]
            .into_iter()
            .filter_map(|(action, key)| {
                self.sign_button(
                    a.chat,
                    a.user,
                    action,
                    t.check as u64,
                    None,
                    Line::new(key).key("check", t.check.label_key()),
                )
            })
            .collect();
            if !row.is_empty() {
                rows.push(row);
            }
        }
        Reply {
            buttons: rows,
            ..Reply::plain(a.chat, lang, lines)
        }
    }

    /// Who owns this mnemo: the paired user, else the first allowlisted id.
    fn owner_or_first(&self) -> Result<Option<i64>, StoreError> {
        Ok(self
            .store
            .owner()?
            .or_else(|| self.settings.allowed_user_ids.first().copied()))
    }

    /// Where health alerts go: (chat, the user their buttons are signed
    /// for) — `telegram.admin_chat_id`, else the owner's private chat.
    /// `None` while nobody owns this mnemo.
    pub fn admin_target(&self) -> Result<Option<(i64, i64)>, StoreError> {
        Ok(self.owner_or_first()?.map(|owner| {
            let chat = match self.settings.admin_chat_id {
                0 => owner,
                c => c,
            };
            (chat, owner)
        }))
    }

    /// May this event see health (`/health`, `/alerts`, the alert
    /// buttons)? The console, the owner, and allowlisted users in the admin
    /// chat.
    pub(super) fn is_admin(&self, cx: &Cx) -> Result<bool, StoreError> {
        let ev = cx.ev;
        if ev.origin.trusted {
            return Ok(true);
        }
        if self.owner_or_first()? == Some(ev.user_id) {
            return Ok(true);
        }
        Ok(self.settings.admin_chat_id != 0
            && ev.chat_id == self.settings.admin_chat_id
            && self.serves_user(ev.user_id)?)
    }

    /// `/health`: every check with its state and last reading. Nothing at
    /// all for anyone who is not the admin (not even a refusal).
    pub(super) fn cmd_health(&self, cx: &Cx) -> Result<Vec<Outcome>, StoreError> {
        if !self.is_admin(cx)? {
            return Ok(Vec::new());
        }
        let records = health::records(&self.store);
        if records.is_empty() {
            return Ok(vec![cx.reply(vec![Line::new("health-none-yet")])]);
        }
        let worst = records
            .iter()
            .filter_map(|(_, r)| r.latest().filter(|x| x.applies).map(|x| x.level))
            .max()
            .unwrap_or(Level::Ok);
        let at = records
            .iter()
            .filter_map(|(_, r)| r.latest().map(|x| x.at))
            .max()
            .unwrap_or(0);
        let mut lines = vec![Line::new("health-header")
            .key("icon", worst.icon_key())
            .text("at", super::format_date(at))];
        for (id, rec) in &records {
            let Some(r) = rec.latest() else { continue };
            lines.push(
                Line::new("health-line")
                    .key(
                        "icon",
                        if r.applies {
                            r.level.icon_key()
                        } else {
                            "health-icon-na"
                        },
                    )
                    .key("check", id.label_key())
                    .key("phase", phase_key(rec)),
            );
            lines.push(r.reason.clone());
        }
        Ok(vec![cx.reply(lines)])
    }

    /// `/alerts`: the last transitions, newest first.
    pub(super) fn cmd_alerts(&self, cx: &Cx) -> Result<Vec<Outcome>, StoreError> {
        if !self.is_admin(cx)? {
            return Ok(Vec::new());
        }
        let log = health::log(&self.store, ALERTS_SHOWN);
        if log.is_empty() {
            return Ok(vec![cx.reply(vec![Line::new("alerts-empty")])]);
        }
        let mut lines = vec![Line::new("alerts-header").num("count", log.len())];
        for t in &log {
            lines.push(
                Line::new("alerts-line")
                    .text("at", super::format_date(t.at))
                    .key("icon", t.level.icon_key())
                    .key("check", t.check.label_key())
                    .key("event", event_key(t.event)),
            );
        }
        Ok(vec![cx.reply(lines)])
    }

    /// 🔕 / ✅ / 🔍 on an alert. The state change is in the press's
    /// transaction; 🔍 also sends the check's last readings.
    pub(super) fn health_press(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        action: Action,
        target: u64,
        _ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        let Some(id) = CheckId::from_u64(target) else {
            return Ok(vec![cx.answer(Line::new("press-gone"), false)]);
        };
        if !self.is_admin(cx)? {
            return Ok(vec![cx.answer(Line::new("press-invalid"), false)]);
        }
        let Some(mut rec) = tx
            .health_record(id.name())?
            .and_then(|b| CheckRecord::decode(&b))
        else {
            return Ok(vec![cx.answer(Line::new("press-gone"), false)]);
        };
        let label = id.label_key();
        match action {
            Action::HealthDetails => {
                let mut lines = vec![Line::new("health-details-header")
                    .key("check", label)
                    .key("phase", phase_key(&rec))];
                for r in rec.last.iter().rev() {
                    lines.push(
                        Line::new("health-details-line")
                            .text("at", super::format_date(r.at))
                            .key("icon", r.level.icon_key()),
                    );
                    lines.push(r.reason.clone());
                }
                Ok(vec![
                    cx.answer(Line::new("press-health-details"), false),
                    cx.reply(lines),
                ])
            }
            Action::HealthSnooze | Action::HealthAck => {
                if rec.state.phase == Phase::Ok {
                    return Ok(vec![cx.answer(
                        Line::new("press-health-recovered").key("check", label),
                        false,
                    )]);
                }
                let key = if action == Action::HealthAck {
                    rec.state.acked = true;
                    "press-health-acked"
                } else {
                    rec.state.snoozed_until = now_ms() + SNOOZE_MS;
                    "press-health-snoozed"
                };
                tx.put_health_record(id.name(), &rec.encode())?;
                tracing::info!(check = id.name(), action = ?action, "alert muted by a button");
                Ok(vec![cx.answer(Line::new(key).key("check", label), true)])
            }
            _ => Ok(vec![cx.answer(Line::new("press-invalid"), false)]),
        }
    }
}

fn phase_key(rec: &CheckRecord) -> &'static str {
    if rec.state.flapping {
        return "health-phase-flapping";
    }
    match rec.state.phase {
        Phase::Ok => "health-phase-ok",
        Phase::Pending => "health-phase-pending",
        Phase::Firing if rec.state.acked => "health-phase-acked",
        Phase::Firing => "health-phase-firing",
        Phase::Resolving => "health-phase-resolving",
    }
}

fn event_key(e: health::machine::Event) -> &'static str {
    use health::machine::Event;
    match e {
        Event::Firing => "health-event-firing",
        Event::Escalated => "health-event-escalated",
        Event::Repeat => "health-event-repeat",
        Event::Recovered => "health-event-recovered",
        Event::Flapping => "health-event-flapping",
    }
}

/// The check a storage failure is told as.
fn storage_check(f: &Failure) -> CheckId {
    if f.disk_full {
        CheckId::Disk
    } else {
        CheckId::Database
    }
}

/// A storage failure as an alert-log transition.
fn storage_transition(f: &Failure, event: health::machine::Event, at: i64, now: i64) -> Transition {
    use health::machine::Event;
    let reason = if f.disk_full {
        Line::new("health-disk-refused").num("free_mb", (f.free_bytes / (1024 * 1024)) as i64)
    } else {
        Line::new("health-database-failed").text("error", f.error.clone())
    };
    let recovered = event == Event::Recovered;
    Transition {
        at,
        check: storage_check(f),
        event,
        level: if recovered {
            Level::Ok
        } else {
            Level::Critical
        },
        reason,
        lasted_ms: if recovered { now - f.since } else { 0 },
    }
}

/// The lines of one transition in an alert message.
fn transition_lines(t: &Transition) -> Vec<Line> {
    use health::machine::Event;
    let head = match t.event {
        Event::Recovered => Line::new("health-recovered")
            .key("check", t.check.label_key())
            .text("lasted", human_duration(t.lasted_ms)),
        Event::Flapping => Line::new("health-flapping").key("check", t.check.label_key()),
        e => Line::new("health-firing")
            .key("icon", t.level.icon_key())
            .key("check", t.check.label_key())
            .key("event", event_key(e)),
    };
    vec![head, t.reason.clone()]
}

/// "3 h 12 min", "14 min", "40 s".
pub fn human_duration(ms: i64) -> String {
    let s = (ms / 1000).max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, s % 3600 / 60),
        _ => format!("{} d {} h", s / 86_400, s % 86_400 / 3600),
    }
}
