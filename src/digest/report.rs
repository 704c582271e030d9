//! What `mnemo digest` and `mnemo schedule list` print (and the control
//! socket answers while `serve` holds the database): a digest built without
//! sending it, and every chat's schedules with the ledger.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Deserialize, Serialize};

use super::{build, period_notes, render, Period, Sections};
use crate::core::{now_ms, Core, CoreError};
use crate::i18n::I18n;

/// `mnemo digest --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DigestReport {
    pub chat_id: i64,
    pub period: String,
    /// RFC 3339.
    pub from: String,
    pub to: String,
    /// The digest as the chat would read it (plain text).
    pub text: String,
    pub sections: serde_json::Value,
    /// "extractive" or "llm:<provider>/<model>".
    pub source: String,
    pub tokens: Tokens,
    pub cost_usd: Option<f64>,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
}

/// `mnemo schedule list --json`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleList {
    pub schedules: Vec<ScheduleEntry>,
    pub ledger: Vec<LedgerEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ScheduleEntry {
    /// `null` for the configured defaults when no chat has notes yet.
    pub chat_id: Option<i64>,
    pub name: String,
    pub cron: String,
    pub timezone: String,
    pub enabled: bool,
    pub next_run: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LedgerEntry {
    pub chat_id: i64,
    pub schedule: String,
    /// The slot, RFC 3339.
    pub slot: String,
    pub state: String,
    pub message_id: Option<i64>,
    pub late: bool,
    pub source: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

fn rfc3339(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The chat a CLI digest is about when none is named: the owner's (or
/// the first allowed user's) private chat, else the chat with the newest
/// note, else the console's.
pub fn default_chat(core: &Core) -> Result<i64, CoreError> {
    let store = core.store();
    if let Some(o) = store.owner()? {
        return Ok(o);
    }
    if let Some(&u) = core.settings().allowed_user_ids.first() {
        return Ok(u);
    }
    let live = store.live_chats()?;
    let mut best = (i64::MIN, crate::core::CONSOLE_CHAT_ID);
    for c in live {
        if let Some(n) = store.recent(c, 1)?.first() {
            best = best.max((n.created_at, c));
        }
    }
    Ok(best.1)
}

/// The digest of `chat` for the `period` up to now, as `/digest` builds it
/// (with the LLM summary when one is configured), not sent.
pub fn digest(core: &Core, chat: i64, period: Period) -> Result<DigestReport, CoreError> {
    let store = core.store();
    let to = now_ms();
    let from = to - period.length().num_milliseconds();
    let notes = period_notes(store, chat, 0, from, to)?;
    let mut d = build(store, chat, period, (from, to), &notes)?;
    let lang = core.chat_lang_or_default(chat)?;
    if !d.is_empty() {
        core.summarize(&mut d, &lang);
    }
    let tz = core.chat_tz(store.chat_digest(chat)?.as_ref());
    let i18n = I18n::new();
    let text = if d.is_empty() {
        i18n.render_plain(
            &lang,
            &crate::i18n::Line::new("digest-empty")
                .key("period", &format!("digest-period-{}", period.as_str())),
        )
    } else {
        render::lines(&d, tz, false)
            .iter()
            .map(|l| i18n.render_plain(&lang, l))
            .collect::<Vec<_>>()
            .join("\n")
    };
    let sections: &Sections = &d.sections;
    Ok(DigestReport {
        chat_id: chat,
        period: period.as_str().into(),
        from: rfc3339(from),
        to: rfc3339(to),
        text,
        sections: serde_json::to_value(sections).expect("sections serialise"),
        source: d.source.clone(),
        tokens: Tokens {
            input: d.tokens.input,
            output: d.tokens.output,
        },
        cost_usd: d.cost_usd,
    })
}

/// Every chat's schedules (next runs in its zone) and the ledger's newest
/// `ledger_rows` rows.
pub fn schedule_list(core: &Core, ledger_rows: usize) -> Result<ScheduleList, CoreError> {
    let store = core.store();
    let now = Utc::now();
    let crons = core
        .schedules()
        .map(|s| s.crons.clone())
        .unwrap_or_default();
    let mut schedules = Vec::new();
    let mut chats = Vec::new();
    for c in store.live_chats()? {
        if core.digest_chat_allowed(c)? {
            chats.push(c);
        }
    }
    let entry = |chat: Option<i64>, enabled: bool, tz: chrono_tz::Tz| {
        crons
            .iter()
            .map(|(p, cron)| ScheduleEntry {
                chat_id: chat,
                name: p.schedule().into(),
                cron: cron.expr().into(),
                timezone: tz.name().into(),
                enabled,
                next_run: cron
                    .next_after(tz, now)
                    .filter(|_| enabled)
                    .map(|t| t.to_rfc3339_opts(SecondsFormat::Secs, true)),
            })
            .collect::<Vec<_>>()
    };
    for &c in &chats {
        let cd = store.chat_digest(c)?;
        let enabled = cd.as_ref().is_none_or(|d| d.enabled);
        schedules.extend(entry(Some(c), enabled, core.chat_tz(cd.as_ref())));
    }
    if chats.is_empty() {
        schedules.extend(entry(None, true, core.chat_tz(None)));
    }
    let mut rows = store.ledger(None, usize::MAX)?;
    rows.sort_by_key(|(k, _)| std::cmp::Reverse(k.slot));
    let ledger = rows
        .into_iter()
        .take(ledger_rows)
        .map(|(k, r)| LedgerEntry {
            chat_id: k.chat_id,
            schedule: k.schedule,
            slot: rfc3339(k.slot * 1000),
            state: r.state.as_str().into(),
            message_id: r.message_ids.first().copied(),
            late: r.late,
            source: r.source,
            reason: r.reason,
        })
        .collect();
    Ok(ScheduleList { schedules, ledger })
}
