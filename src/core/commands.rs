//! Slash commands: the [`Command`] enum, parsing `/cmd@bot args` into one,
//! and one small handler each. The enum is the only list of commands: the
//! dispatch matches it exhaustively and Telegram's menu is made from
//! [`Command::ALL`].

use super::prepare::{Found, Prepared};
use super::{format_date, snippet, Button, Changes, Core, Cx, Hit, Outcome};
use crate::buttons::Action;
use crate::i18n::{self, Line};
use crate::store::{Item, ItemKind, Note, StoreError, Tx, Vote};

/// Longest preview of a note in lists.
const SNIPPET_CHARS: usize = 300;
/// Items listed by /todos and /decisions, and votes by /feedback.
const LIST_MAX: usize = 20;
/// Buttons per keyboard row in lists.
const ROW: usize = 5;

/// A command mnemo understands. Dispatch ([`Core::command`]) is an
/// exhaustive match on it, and Telegram's menu ([`commands_menu`]) is made
/// from [`Command::ALL`], so the two cannot drift apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Command {
    Start,
    Help,
    Recent,
    Recall,
    Forget,
    Todos,
    Decisions,
    Feedback,
    Stats,
    Digest,
    Schedule,
    Tz,
    Lang,
    Health,
    Alerts,
}

impl Command {
    /// Every command, in the menu's order.
    pub(super) const ALL: [Command; 15] = [
        Command::Start,
        Command::Help,
        Command::Recent,
        Command::Recall,
        Command::Forget,
        Command::Todos,
        Command::Decisions,
        Command::Feedback,
        Command::Stats,
        Command::Digest,
        Command::Schedule,
        Command::Tz,
        Command::Lang,
        Command::Health,
        Command::Alerts,
    ];

    /// What is typed after the `/`.
    pub(super) const fn name(self) -> &'static str {
        match self {
            Command::Start => "start",
            Command::Help => "help",
            Command::Recent => "recent",
            Command::Recall => "recall",
            Command::Forget => "forget",
            Command::Todos => "todos",
            Command::Decisions => "decisions",
            Command::Feedback => "feedback",
            Command::Stats => "stats",
            Command::Digest => "digest",
            Command::Schedule => "schedule",
            Command::Tz => "tz",
            Command::Lang => "lang",
            Command::Health => "health",
            Command::Alerts => "alerts",
        }
    }

    /// The locale key of its description in the menu.
    pub(super) const fn menu_key(self) -> &'static str {
        match self {
            Command::Start => "cmd-start",
            Command::Help => "cmd-help",
            Command::Recent => "cmd-recent",
            Command::Recall => "cmd-recall",
            Command::Forget => "cmd-forget",
            Command::Todos => "cmd-todos",
            Command::Decisions => "cmd-decisions",
            Command::Feedback => "cmd-feedback",
            Command::Stats => "cmd-stats",
            Command::Digest => "cmd-digest",
            Command::Schedule => "cmd-schedule",
            Command::Tz => "cmd-tz",
            Command::Lang => "cmd-lang",
            Command::Health => "cmd-health",
            Command::Alerts => "cmd-alerts",
        }
    }
}

/// A command name mnemo does not know: lower-cased, without the `/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Unknown(pub(super) String);

/// [`Command::ALL`] as (name, description key) pairs.
const MENU: [(&str, &str); Command::ALL.len()] = {
    let mut menu = [("", ""); Command::ALL.len()];
    let mut i = 0;
    while i < menu.len() {
        menu[i] = (Command::ALL[i].name(), Command::ALL[i].menu_key());
        i += 1;
    }
    menu
};

/// Commands for Telegram's menu: (name, description locale key).
pub fn commands_menu() -> &'static [(&'static str, &'static str)] {
    &MENU
}

/// Splits `/cmd@bot args` into the command (its name is case-insensitive)
/// and `args` trimmed. Returns `None` for text that is not a command, and
/// [`Unknown`] for a name that is none of [`Command::ALL`].
pub(super) fn parse(text: &str) -> Option<Result<(Command, &str), Unknown>> {
    let rest = text.trim_start().strip_prefix('/')?;
    let (word, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let name = word.split('@').next().unwrap_or_default().to_lowercase();
    Some(match Command::ALL.into_iter().find(|c| c.name() == name) {
        Some(c) => Ok((c, args)),
        None => Err(Unknown(name)),
    })
}

impl Core {
    /// Runs a command (an unknown one is told so). Read-only commands use
    /// what [`Core::prepare`] found before the writer was taken, and read in
    /// place only when nothing was prepared.
    pub(super) fn command(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        parsed: Result<(Command, &str), Unknown>,
        prep: Prepared,
        ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (cmd, args) = match parsed {
            Ok(c) => c,
            Err(Unknown(name)) => {
                return Ok(vec![cx.reply(vec![
                    Line::new("unknown-command").text("command", format!("/{name}"))
                ])])
            }
        };
        let chat = cx.ev.chat_id;
        let (prepared, found, todos, digest) = match prep {
            Prepared::Lines(l) => (Some(l), None, None, None),
            Prepared::Recall(f) => (None, Some(f), None, None),
            Prepared::Todos(t) => (None, None, Some(t), None),
            Prepared::Digest(r) => (None, None, None, Some(r)),
            Prepared::Nothing | Prepared::Note { .. } => (None, None, None, None),
        };
        let lines = match cmd {
            Command::Start => vec![Line::new("start-welcome")],
            Command::Help => vec![Line::new("help").text("available", i18n::LOCALES.join(", "))],
            Command::Recent => prepared.map_or_else(|| self.read_recent(chat, args), Ok)?,
            Command::Recall => return self.cmd_recall(tx, cx, args, found),
            Command::Todos => return self.cmd_todos(cx, todos),
            Command::Decisions => prepared.map_or_else(|| self.read_decisions(chat), Ok)?,
            Command::Feedback => prepared.map_or_else(|| self.read_feedback(chat), Ok)?,
            Command::Forget => self.cmd_forget(tx, cx, args, ch)?,
            Command::Stats => {
                prepared.map_or_else(|| self.read_stats(chat, cx.ev.origin.group), Ok)?
            }
            Command::Digest => {
                let r = digest.map_or_else(|| self.read_digest(chat, args), Ok)?;
                return Ok(vec![super::digest::digest_outcome(cx, r)]);
            }
            Command::Schedule => self.cmd_schedule(tx, cx, args)?,
            Command::Tz => self.cmd_tz(tx, cx, args)?,
            Command::Lang => return self.cmd_lang(tx, cx, args),
            Command::Health => return self.cmd_health(cx),
            Command::Alerts => return self.cmd_alerts(cx),
        };
        Ok(vec![cx.reply(lines)])
    }

    fn note_line(&self, n: &Note) -> Line {
        Line::new("note-line")
            .num("id", n.id)
            .text("date", format_date(n.created_at))
            .key("flag", self.flag(n, self.is_outdated(n.id)))
            .text("text", snippet(&n.text, SNIPPET_CHARS))
    }

    /// The marker shown before a note in lists: outdated, priority or none.
    fn flag(&self, n: &Note, outdated: bool) -> &'static str {
        if outdated {
            "flag-outdated"
        } else if crate::extract::extract(&n.text).priority.is_some() {
            "flag-priority"
        } else {
            "flag-none"
        }
    }

    pub(super) fn read_recent(&self, chat: i64, args: &str) -> Result<Vec<Line>, StoreError> {
        let n = args
            .parse::<usize>()
            .unwrap_or(self.settings.recent_default)
            .clamp(1, self.settings.recent_max);
        let notes = self.store.recent(chat, n)?;
        if notes.is_empty() {
            return Ok(vec![Line::new("recent-empty")]);
        }
        let mut lines = vec![Line::new("recent-header").num("count", notes.len() as i64)];
        lines.extend(notes.iter().map(|n| self.note_line(n)));
        Ok(lines)
    }

    /// `/recall`: the hits `found` before the writer was taken (or found
    /// now), then — in the transaction — the question recorded for the vote
    /// buttons.
    fn cmd_recall(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        query: &str,
        found: Option<Option<Found>>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let lines_only = |lines| Ok(vec![cx.reply(lines)]);
        if query.is_empty() {
            return lines_only(vec![Line::new("recall-usage")]);
        }
        let found = match found {
            Some(f) => f,
            None => self.find(cx.ev.chat_id, query)?,
        };
        let Some((hits, qvec)) = found else {
            return lines_only(vec![Line::new("recall-failed")]);
        };
        // Said honestly while a large memory's vectors load after a start.
        let loading = self
            .indexes
            .vectors_loading()
            .then(|| Line::new("recall-loading"));
        if hits.is_empty() {
            return lines_only(
                [Line::new("recall-empty").text("query", snippet(query, 100))]
                    .into_iter()
                    .chain(loading)
                    .collect(),
            );
        }
        // Only hits above the relevance floor are shown; when none is, the
        // closest one is, as such. The rest wait behind "more".
        let (shown, rest) = split_relevant(&hits);
        let mut lines = if shown.iter().any(|h| h.relevant) {
            vec![Line::new("recall-header").text("query", snippet(query, 100))]
        } else {
            vec![Line::new("recall-none").text("query", snippet(query, 100))]
        };
        lines.extend(
            shown
                .iter()
                .enumerate()
                .map(|(i, h)| self.hit_line(i + 1, h)),
        );
        let buttons = self.buttons_on(cx);
        if !rest.is_empty() && !buttons {
            lines.push(Line::new("recall-more-hidden").num("count", rest.len()));
        }
        lines.extend(loading);
        let mut reply = cx.reply(lines);
        if buttons {
            // One row per hit: 👍 n · 👎 n · ⌛ n. The vote buttons share the
            // nonce naming this question; "more" names it as its target.
            let ask = self.put_ask(tx, cx, query, qvec)?;
            let mut rows: Vec<Vec<Button>> = shown
                .iter()
                .enumerate()
                .map(|(i, h)| {
                    [
                        (Action::Helpful, "btn-helpful"),
                        (Action::NotHelpful, "btn-not-helpful"),
                        (Action::Outdated, "btn-outdated"),
                    ]
                    .into_iter()
                    .filter_map(|(a, key)| {
                        self.button(cx, a, h.note.id, Some(ask), Line::new(key).num("n", i + 1))
                    })
                    .collect()
                })
                .collect();
            if !rest.is_empty() {
                rows.extend(
                    self.button(
                        cx,
                        Action::More,
                        ask,
                        None,
                        Line::new("btn-more").num("count", rest.len()),
                    )
                    .map(|b| vec![b]),
                );
            }
            if let Outcome::Reply(r) = &mut reply {
                r.buttons = rows;
            }
        }
        Ok(vec![reply])
    }

    /// One numbered line of a recall answer.
    pub(super) fn hit_line(&self, n: usize, h: &Hit) -> Line {
        Line::new("recall-hit")
            .num("n", n)
            .num("id", h.note.id)
            .text("date", format_date(h.note.created_at))
            .key("source", &format!("source-{}", h.note.source.as_str()))
            .key("flag", self.flag(&h.note, h.outdated))
            .text("text", snippet(&h.note.text, SNIPPET_CHARS))
    }

    /// The chat's open to-dos, newest first.
    pub(super) fn open_todos(&self, chat: i64) -> Result<Vec<Item>, StoreError> {
        self.store.items(chat, ItemKind::Todo, true, LIST_MAX)
    }

    fn cmd_todos(&self, cx: &Cx, items: Option<Vec<Item>>) -> Result<Vec<Outcome>, StoreError> {
        let items = match items {
            Some(i) => i,
            None => self.open_todos(cx.ev.chat_id)?,
        };
        if items.is_empty() {
            return Ok(vec![cx.reply(vec![Line::new("todos-empty")])]);
        }
        let mut lines = vec![Line::new("todos-header").num("count", items.len())];
        lines.extend(items.iter().enumerate().map(|(i, it)| {
            Line::new("todo-line")
                .num("n", i + 1)
                .num("id", it.note_id)
                .text("date", format_date(it.created_at))
                .text("text", snippet(&it.text, SNIPPET_CHARS))
        }));
        let buttons: Vec<Button> = items
            .iter()
            .enumerate()
            .filter_map(|(i, it)| {
                self.button(
                    cx,
                    Action::Done,
                    it.id,
                    None,
                    Line::new("btn-done").num("n", i + 1),
                )
            })
            .collect();
        let mut reply = cx.reply(lines);
        if let Outcome::Reply(r) = &mut reply {
            r.buttons = buttons.chunks(ROW).map(<[Button]>::to_vec).collect();
        }
        Ok(vec![reply])
    }

    pub(super) fn read_decisions(&self, chat: i64) -> Result<Vec<Line>, StoreError> {
        let items = self
            .store
            .items(chat, ItemKind::Decision, false, LIST_MAX)?;
        if items.is_empty() {
            return Ok(vec![Line::new("decisions-empty")]);
        }
        let mut lines = vec![Line::new("decisions-header").num("count", items.len())];
        lines.extend(items.iter().map(|it| {
            Line::new("decision-line")
                .num("id", it.note_id)
                .text("date", format_date(it.created_at))
                .text("text", snippet(&it.text, SNIPPET_CHARS))
        }));
        Ok(lines)
    }

    pub(super) fn read_feedback(&self, chat: i64) -> Result<Vec<Line>, StoreError> {
        let votes = self.recent_feedback(chat, LIST_MAX);
        if votes.is_empty() {
            return Ok(vec![Line::new("feedback-empty")]);
        }
        let mut lines = vec![Line::new("feedback-header").num("count", votes.len())];
        for v in &votes {
            let Some(n) = self.store.note(v.note_id)? else {
                continue;
            };
            let vote = match v.vote {
                Vote::Helpful => "vote-helpful",
                Vote::NotHelpful => "vote-not-helpful",
                Vote::Outdated => "vote-outdated",
            };
            let line = Line::new("feedback-line")
                .key("vote", vote)
                .num("id", n.id)
                .text("date", format_date(v.at))
                .text("text", snippet(&n.text, 80));
            lines.push(if v.query.is_empty() {
                line.key("query", "feedback-no-query")
            } else {
                line.text("query", snippet(&v.query, 80))
            });
        }
        Ok(lines)
    }

    fn cmd_forget(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        args: &str,
        ch: &mut Changes,
    ) -> Result<Vec<Line>, StoreError> {
        let target = if args.is_empty() {
            match cx.ev.reply_to {
                Some(m) => tx.note_by_message(cx.ev.chat_id, m)?,
                None => return Ok(vec![Line::new("forget-usage")]),
            }
        } else {
            match args.trim_start_matches('#').parse::<u64>() {
                Ok(id) => Some(id),
                Err(_) => return Ok(vec![Line::new("forget-usage")]),
            }
        };
        let Some(id) = target else {
            return Ok(vec![Line::new("forget-usage")]);
        };
        match tx.delete_note(cx.ev.chat_id, id)? {
            Some(n) => {
                ch.forget(&n);
                Ok(vec![Line::new("forget-done").num("id", n.id)])
            }
            None => Ok(vec![Line::new("forget-not-found").num("id", id)]),
        }
    }

    /// `/stats`: this chat's notes, then (outside groups) the whole
    /// memory — totals across chats, the index, the database size, LLM
    /// spend. In a group only the group's own counts are shown: its members
    /// need not be the owner's confidants.
    pub(super) fn read_stats(&self, chat: i64, group: bool) -> Result<Vec<Line>, StoreError> {
        if group {
            let count = |kind, open| -> Result<i64, StoreError> {
                Ok(self.store.items(chat, kind, open, usize::MAX)?.len() as i64)
            };
            return Ok(vec![Line::new("stats-chat")
                .num("chat", self.store.count_chat_notes(chat)?)
                .num("todos", count(ItemKind::Todo, true)?)
                .num("decisions", count(ItemKind::Decision, false)?)]);
        }
        let index = self.indexes.vectors_len();
        let line = Line::new("stats")
            .num("chat", self.store.count_chat_notes(chat)?)
            .num("total", self.store.count_notes()?)
            .num("embedded", self.store.vector_count()?)
            .num("pending", self.store.embed_queue_len()?)
            .num("index", index as i64)
            .text("size", human_bytes(self.store.file_size()));
        let fb = self.feedback_counts()?;
        let items = self.store.count_items()?;
        let line = line
            .num("helpful", fb.helpful)
            .num("not_helpful", fb.not_helpful)
            .num("outdated", fb.outdated)
            .num("todos", items.todos_open)
            .num("done", items.todos_done)
            .num("decisions", items.decisions);
        let line = match &self.embedder {
            Some(e) => line.text("model", e.model_id()),
            None => line.key("model", "model-none"),
        };
        let mut lines = vec![line];
        let spend = self.store.llm_spend(super::now_ms())?;
        if spend.month.calls > 0 {
            let cost = |u: &crate::store::Usage, l: Line, name: &str| match u.cost_usd {
                Some(c) => l.text(name, format!("${c:.2}")),
                None => l.key(name, "stats-llm-cost-unknown"),
            };
            let l = Line::new("stats-llm")
                .num("today_calls", spend.today.calls)
                .num(
                    "today_tokens",
                    spend.today.input_tokens + spend.today.output_tokens,
                )
                .num(
                    "month_tokens",
                    spend.month.input_tokens + spend.month.output_tokens,
                );
            let l = cost(&spend.today, l, "today_cost");
            lines.push(cost(&spend.month, l, "month_cost"));
        }
        Ok(lines)
    }

    fn cmd_lang(&self, tx: &mut Tx, cx: &Cx, args: &str) -> Result<Vec<Outcome>, StoreError> {
        let code = args.trim().to_ascii_lowercase();
        if i18n::is_supported(&code) {
            tx.set_chat_lang(cx.ev.chat_id, &code)?;
            let mut o = cx.reply(vec![Line::new("lang-set")]);
            if let Outcome::Reply(r) = &mut o {
                r.lang = code;
            }
            return Ok(vec![o]);
        }
        Ok(vec![cx.reply(vec![Line::new("lang-usage")
            .text("available", i18n::LOCALES.join(", "))
            .text("current", cx.lang.clone())])])
    }
}

/// `1.5 MiB` style sizes.
pub fn human_bytes(n: u64) -> String {
    const UNITS: &[&str] = &["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u + 1 < UNITS.len() {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// The hits `/recall` shows — those above the relevance floor, or the
/// closest one when none is — and the rest, which wait behind "more".
pub(super) fn split_relevant(hits: &[Hit]) -> (Vec<&Hit>, Vec<&Hit>) {
    let (mut shown, mut rest): (Vec<&Hit>, Vec<&Hit>) = hits.iter().partition(|h| h.relevant);
    if shown.is_empty() && !rest.is_empty() {
        shown.push(rest.remove(0));
    }
    (shown, rest)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("/help"), Some(Ok((Command::Help, ""))));
        assert_eq!(
            parse("/Recall@mnemo_bot  dentist friday "),
            Some(Ok((Command::Recall, "dentist friday")))
        );
        assert_eq!(parse("  /recent 3"), Some(Ok((Command::Recent, "3"))));
        assert_eq!(parse("just text /not"), None);
        assert_eq!(parse("/"), Some(Err(Unknown("".into()))));
        assert_eq!(
            parse("/Nope@mnemo_bot x"),
            Some(Err(Unknown("nope".into())))
        );
    }

    #[test]
    fn every_command_parses_back_to_itself_and_has_its_menu_entry() {
        for c in Command::ALL {
            assert_eq!(parse(&format!("/{} a b", c.name())), Some(Ok((c, "a b"))));
            let shouted = format!("/{}@mnemo_bot", c.name().to_uppercase());
            assert_eq!(parse(&shouted), Some(Ok((c, ""))));
            assert_eq!(c.menu_key(), format!("cmd-{}", c.name()));
            let entries = commands_menu()
                .iter()
                .filter(|e| **e == (c.name(), c.menu_key()));
            assert_eq!(entries.count(), 1, "{c:?} in the menu once");
        }
        assert_eq!(commands_menu().len(), Command::ALL.len());
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
