//! Applying one event inside its transaction: the access check, then the
//! press, voice note, command, new note or edit it carries. Also the other
//! way notes come in: imports, in batches of one commit each.
//!
//! Everything here writes through the caller's [`Tx`] and records what the
//! derived indexes must learn in [`Changes`]; nothing is applied to them before
//! the commit ([`Core::handle_batch`]).

use super::prepare::Prepared;
use super::{
    access, commands, Body, Changes, Core, CoreError, Cx, ImportSummary, Inbound, Outcome,
};
use crate::i18n::{self, Line};
use crate::memory::indexes::IndexOp;
use crate::store::{NewNote, Source, StoreError, Tx};

impl Core {
    /// Applies one event (already deduplicated) in `tx`: the chat's
    /// language, the access check, then what the event carries.
    pub(super) fn apply(
        &self,
        tx: &mut Tx,
        ev: &Inbound,
        prep: Prepared,
        ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        let lang = match tx.chat_lang(ev.chat_id)? {
            Some(l) => l,
            None => i18n::negotiate(ev.user_lang.as_deref(), &self.settings.default_lang),
        };
        let cx = Cx { ev, lang };
        let verdict = self.check_access(tx, &cx)?;
        if let Body::Press(data) = &ev.body {
            // A press always gets an answer (Telegram shows a spinner until
            // then), but a stranger's press gets nothing else.
            return match verdict {
                access::Verdict::Allowed => self.press(tx, &cx, data, ch),
                _ => Ok(vec![cx.answer(Line::new("press-not-allowed"), false)]),
            };
        }
        let leave = || {
            Ok(vec![Outcome::Leave {
                chat_id: ev.chat_id,
            }])
        };
        match verdict {
            access::Verdict::Allowed => {}
            access::Verdict::Reply(lines) => return Ok(vec![cx.reply(lines)]),
            access::Verdict::Refuse(lines) => {
                let mut o = cx.reply(lines);
                if let Outcome::Reply(r) = &mut o {
                    r.low_priority = true;
                }
                return Ok(vec![o]);
            }
            // A stranger who added mnemo to a group: leave it.
            access::Verdict::Silent if matches!(ev.body, Body::Added) => return leave(),
            access::Verdict::Silent => return Ok(Vec::new()),
            access::Verdict::Leave => return leave(),
        }
        let lines = match &ev.body {
            Body::Unsupported(kind) => {
                vec![Line::new("unsupported-kind").key("kind", &format!("kind-{kind}"))]
            }
            Body::Press(_) => unreachable!("handled above"),
            // Added by an allowed user: stay, quietly.
            Body::Added => return Ok(Vec::new()),
            Body::Voice(v) => return self.voice_in(tx, &cx, v),
            Body::Text(text) => match commands::parse(text) {
                Some(parsed) => return self.command(tx, &cx, parsed, prep, ch),
                None => {
                    let embedded = match prep {
                        Prepared::Note { vector, repeats } => Some((vector, repeats)),
                        _ => None,
                    };
                    return self.save_note(tx, &cx, text, embedded, ch);
                }
            },
            Body::Edited(text) => return self.edited(tx, &cx, text, ch),
        };
        Ok(vec![cx.reply_to_msg(lines)])
    }

    /// A message was edited: its note takes the new text. An edit of a
    /// message that was never a note (a note refused as too long) is treated
    /// as a new message; an edited command is not run again.
    fn edited(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        text: &str,
        ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        let existing = match cx.ev.message_id {
            Some(m) => tx.note_by_message(cx.ev.chat_id, m)?,
            None => None,
        };
        let id = match existing {
            None if commands::parse(text).is_some() => return Ok(Vec::new()),
            None => return self.save_note(tx, cx, text, None, ch),
            Some(id) => id,
        };
        let line = match self.validate(text) {
            Err(line) => line,
            Ok(clean) => match tx.edit_note(id, clean.to_owned(), cx.ev.at)? {
                Some(n) => {
                    ch.upsert(&n);
                    Line::new("note-updated").num("id", n.id)
                }
                None => return Ok(Vec::new()),
            },
        };
        Ok(vec![cx.reply_to_msg(vec![line])])
    }

    /// [`Core::validate`] without the reason.
    pub(super) fn valid_text<'t>(&self, text: &'t str) -> Option<&'t str> {
        self.validate(text).ok()
    }

    /// Checks a note's text: the trimmed text, or the line that explains why not.
    fn validate<'t>(&self, text: &'t str) -> Result<&'t str, Line> {
        let clean = text.trim();
        if clean.is_empty() {
            return Err(Line::new("note-empty"));
        }
        let len = clean.chars().count();
        if len > self.settings.max_note_chars {
            return Err(Line::new("note-too-long")
                .num("len", len as i64)
                .num("max", self.settings.max_note_chars as i64));
        }
        Ok(clean)
    }

    /// A new note: stored (with its to-dos and decisions), acknowledged
    /// quoting the message, with an undo button where buttons work — unless
    /// it repeats a stored note (found before the writer was taken, with the
    /// note's vector, `embedded`): then it is stored hidden (not a second
    /// memory) and the one reply names the note already there. Otherwise a
    /// vector computed then is stored with the note, so the worker does not
    /// embed it again.
    fn save_note(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        text: &str,
        embedded: Option<(Vec<f32>, Option<u64>)>,
        ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        let (vector, repeats) = match embedded {
            Some((v, r)) => (Some(v), r),
            None => (None, None),
        };
        let clean = match self.validate(text) {
            Ok(c) => c,
            Err(line) => return Ok(vec![cx.reply_to_msg(vec![line])]),
        };
        let note = tx.insert_note(NewNote {
            chat_id: cx.ev.chat_id,
            user_id: cx.ev.user_id,
            message_id: cx.ev.message_id,
            text: clean.to_owned(),
            created_at: cx.ev.at,
            source: cx.ev.origin.channel.source(),
            author: None,
        })?;
        // A repeat of a note still there (it may have been forgotten since it
        // was found) is kept hidden: not a second memory, but not lost either
        // — an edit of the message makes it a note of its own again.
        let orig = match repeats.map(|id| tx.note(id)).transpose()?.flatten() {
            Some(orig) => match tx.embed_seq(note.id)? {
                Some(seq) if tx.mark_duplicate(note.id, orig.id, seq)? => Some(orig),
                _ => None,
            },
            None => None,
        };
        if let Some(orig) = orig {
            let mut reply = cx.reply_to_msg(vec![Line::new("note-repeat")
                .num("id", orig.id)
                .text("date", super::format_date(orig.created_at))
                .text("text", super::snippet(&orig.text, 80))]);
            if let Outcome::Reply(r) = &mut reply {
                // The notice's message is linked to the note it names:
                // /forget in reply to it forgets that note (and its copy).
                r.note_id = Some(orig.id);
            }
            return Ok(vec![reply]);
        }
        ch.stored(&note, note.source.as_str());
        if let (Some(v), Some(e)) = (vector, self.embedder.as_deref()) {
            if tx.put_vector_now(note.id, &super::vector_space(e), &v)? {
                ch.index.push(IndexOp::Vector(note.id, note.chat_id, v));
            }
        }
        let mut lines = vec![Line::new("note-saved").num("id", note.id)];
        if let Some(p) = crate::extract::extract(&note.text).priority {
            lines.push(Line::new("note-priority").text("cue", p.cue));
        }
        let mut reply = cx.reply_to_msg(lines);
        if let Outcome::Reply(r) = &mut reply {
            r.note_id = Some(note.id);
            r.buttons = self
                .button(
                    cx,
                    crate::buttons::Action::Undo,
                    note.id,
                    None,
                    Line::new("btn-undo"),
                )
                .map(|b| vec![vec![b]])
                .unwrap_or_default();
        }
        Ok(vec![reply])
    }

    /// Stores imported messages in batches of `batch` per transaction,
    /// skipping any already present (same chat and message id). Each chat
    /// goes to its own import space ([`crate::store::import_chat`]), never
    /// to the Telegram chat of the same id. A message longer than
    /// `notes.max_chars` is stored as linked parts: notes with the same
    /// message id, their text prefixed `(i/n)`, the message linked to the
    /// first. Reports progress as (done, total) after each batch.
    pub fn import(
        &self,
        msgs: &[crate::import::ImportedMessage],
        batch: usize,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ImportSummary, CoreError> {
        let mut sum = ImportSummary::default();
        let max = self.settings.max_note_chars.max(1);
        for chunk in msgs.chunks(batch.max(1)) {
            let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let (ops, dups, split, parts) = self.store.write(|tx| {
                let (mut ops, mut dups, mut split, mut parts) = (Vec::new(), 0, 0, 0);
                for m in chunk {
                    let chat = crate::store::import_chat(m.chat_id);
                    if tx.note_by_message(chat, m.message_id)?.is_some() {
                        dups += 1;
                        continue;
                    }
                    let pieces = split_text(&m.text, max);
                    let n = pieces.len();
                    let mut first = None;
                    for (i, text) in pieces.into_iter().enumerate() {
                        let note = tx.insert_note(NewNote {
                            chat_id: chat,
                            user_id: m.user_id,
                            message_id: Some(m.message_id),
                            text: if n > 1 {
                                format!("({}/{n}) {text}", i + 1)
                            } else {
                                text
                            },
                            created_at: m.date,
                            source: Source::Import,
                            author: m.author.clone(),
                        })?;
                        first.get_or_insert(note.id);
                        ops.push(IndexOp::upsert(&note));
                    }
                    if n > 1 {
                        tx.link_message(chat, m.message_id, first.expect("parts"))?;
                        split += 1;
                        parts += n as u64;
                    }
                }
                Ok((ops, dups, split, parts))
            })?;
            crate::health::metrics::notes_ingested("import", chunk.len() as u64 - dups);
            // The worker is woken once, at the end: it embeds the whole import.
            self.indexes.apply(ops);
            sum.imported += chunk.len() as u64 - dups;
            sum.duplicates += dups;
            sum.split += split;
            sum.parts += parts;
            progress(sum.imported + sum.duplicates, msgs.len() as u64);
        }
        self.wake_worker();
        Ok(sum)
    }
}

/// `text` cut into pieces of at most `max` characters (a prefix of up to
/// 12 more is added to each part), at the last whitespace of a piece when
/// there is one in its second half, else mid-word.
pub(crate) fn split_text(text: &str, max: usize) -> Vec<String> {
    if text.chars().count() <= max {
        return vec![text.to_owned()];
    }
    let budget = max.saturating_sub(12).max(1);
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut start = 0;
    while start < chars.len() {
        let mut end = (start + budget).min(chars.len());
        if end < chars.len() {
            if let Some(ws) = (start + budget / 2..end)
                .rev()
                .find(|&i| chars[i].is_whitespace())
            {
                end = ws + 1;
            }
        }
        let piece: String = chars[start..end].iter().collect();
        let piece = piece.trim();
        if !piece.is_empty() {
            out.push(piece.to_owned());
        }
        start = end;
    }
    out
}

#[cfg(test)]
mod split_tests {
    #[test]
    fn long_text_is_cut_into_parts_that_fit() {
        let text = "word ".repeat(3000);
        let parts = super::split_text(&text, 4096);
        assert_eq!(parts.len(), 4);
        assert!(parts.iter().all(|p| p.chars().count() + 12 <= 4096));
        assert_eq!(parts.join(" "), text.trim());
        let one = "x".repeat(100);
        assert_eq!(super::split_text(&one, 40).concat(), one);
        assert_eq!(super::split_text("short", 40), vec!["short"]);
    }
}
