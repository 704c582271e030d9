//! Slash commands: parsing and one small handler each.

use super::{format_date, snippet, Core, Cx, IndexOp, Outcome};
use crate::i18n::{self, Line};
use crate::store::{StoreError, Tx};

/// Longest preview of a note in lists.
const SNIPPET_CHARS: usize = 300;

/// A command the bot offers in Telegram's menu: name and description key.
pub const MENU: &[(&str, &str)] = &[
    ("start", "cmd-start"),
    ("help", "cmd-help"),
    ("recent", "cmd-recent"),
    ("recall", "cmd-recall"),
    ("forget", "cmd-forget"),
    ("stats", "cmd-stats"),
    ("lang", "cmd-lang"),
];

/// Splits `/cmd@bot args` into (`cmd` lower-cased, `args` trimmed).
/// Returns `None` for text that is not a command.
pub fn parse(text: &str) -> Option<(String, &str)> {
    let rest = text.trim_start().strip_prefix('/')?;
    let (word, args) = match rest.find(char::is_whitespace) {
        Some(i) => (&rest[..i], rest[i..].trim()),
        None => (rest, ""),
    };
    let name = word.split('@').next().unwrap_or_default();
    Some((name.to_lowercase(), args))
}

impl Core {
    pub(super) fn command(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        cmd: &str,
        args: &str,
        ops: &mut Vec<IndexOp>,
    ) -> Result<Vec<Outcome>, StoreError> {
        let lines = match cmd {
            "start" => vec![Line::new("start-welcome")],
            "help" => vec![Line::new("help").text("available", i18n::LOCALES.join(", "))],
            "recent" => self.cmd_recent(tx, cx, args)?,
            "recall" => self.cmd_recall(tx, cx, args)?,
            "forget" => self.cmd_forget(tx, cx, args, ops)?,
            "stats" => self.cmd_stats(tx, cx)?,
            "lang" => return self.cmd_lang(tx, cx, args),
            _ => vec![Line::new("unknown-command").text("command", format!("/{cmd}"))],
        };
        Ok(vec![cx.reply(lines)])
    }

    fn note_line(&self, n: &crate::store::Note) -> Line {
        Line::new("note-line").num("id", n.id).text("date", format_date(n.created_at)).text("text", snippet(&n.text, SNIPPET_CHARS))
    }

    fn cmd_recent(&self, tx: &mut Tx, cx: &Cx, args: &str) -> Result<Vec<Line>, StoreError> {
        let n = args.parse::<usize>().unwrap_or(self.settings.recent_default).clamp(1, self.settings.recent_max);
        let _ = tx; // reads see committed data; nothing of this event is written yet
        let notes = self.store.recent(cx.ev.chat_id, n)?;
        if notes.is_empty() {
            return Ok(vec![Line::new("recent-empty")]);
        }
        let mut lines = vec![Line::new("recent-header").num("count", notes.len() as i64)];
        lines.extend(notes.iter().map(|n| self.note_line(n)));
        Ok(lines)
    }

    fn cmd_recall(&self, _tx: &mut Tx, cx: &Cx, query: &str) -> Result<Vec<Line>, StoreError> {
        if query.is_empty() {
            return Ok(vec![Line::new("recall-usage")]);
        }
        let hits = match self.recall(query, Some(cx.ev.chat_id), self.settings.recall_default_k) {
            Ok(h) => h,
            Err(super::CoreError::Store(e)) => return Err(e),
            Err(e) => {
                tracing::error!(error = %e, "recall failed");
                return Ok(vec![Line::new("recall-failed")]);
            }
        };
        if hits.is_empty() {
            return Ok(vec![Line::new("recall-empty").text("query", snippet(query, 100))]);
        }
        let mut lines = vec![Line::new("recall-header").text("query", snippet(query, 100))];
        lines.extend(hits.iter().map(|h| {
            Line::new("recall-hit")
                .num("id", h.note.id)
                .text("date", format_date(h.note.created_at))
                .key("source", &format!("source-{}", h.note.source.as_str()))
                .text("text", snippet(&h.note.text, SNIPPET_CHARS))
        }));
        Ok(lines)
    }

    fn cmd_forget(&self, tx: &mut Tx, cx: &Cx, args: &str, ops: &mut Vec<IndexOp>) -> Result<Vec<Line>, StoreError> {
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
        let Some(id) = target else { return Ok(vec![Line::new("forget-usage")]) };
        match tx.delete_note(cx.ev.chat_id, id)? {
            Some(n) => {
                ops.push(IndexOp::Remove(n.id));
                Ok(vec![Line::new("forget-done").num("id", n.id)])
            }
            None => Ok(vec![Line::new("forget-not-found").num("id", id)]),
        }
    }

    fn cmd_stats(&self, _tx: &mut Tx, cx: &Cx) -> Result<Vec<Line>, StoreError> {
        let index = self.vectors.read().unwrap_or_else(|p| p.into_inner()).len();
        let line = Line::new("stats")
            .num("chat", self.store.count_chat_notes(cx.ev.chat_id)?)
            .num("total", self.store.count_notes()?)
            .num("embedded", self.store.vector_count()?)
            .num("pending", self.store.embed_queue_len()?)
            .num("index", index as i64)
            .text("size", human_bytes(self.store.file_size()));
        let line = match &self.embedder {
            Some(e) => line.text("model", e.model_id()),
            None => line.key("model", "model-none"),
        };
        Ok(vec![line])
    }

    fn cmd_lang(&self, tx: &mut Tx, cx: &Cx, args: &str) -> Result<Vec<Outcome>, StoreError> {
        let code = args.trim().to_ascii_lowercase();
        if i18n::is_supported(&code) {
            tx.set_chat_lang(cx.ev.chat_id, &code)?;
            let mut o = cx.reply(vec![Line::new("lang-set")]);
            let Outcome::Reply(r) = &mut o;
            r.lang = code;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_commands() {
        assert_eq!(parse("/help"), Some(("help".into(), "")));
        assert_eq!(parse("/Recall@mnemo_bot  dentist friday "), Some(("recall".into(), "dentist friday")));
        assert_eq!(parse("  /recent 3"), Some(("recent".into(), "3")));
        assert_eq!(parse("just text /not"), None);
        assert_eq!(parse("/"), Some(("".into(), "")));
    }

    #[test]
    fn sizes() {
        assert_eq!(human_bytes(10), "10 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
    }
}
