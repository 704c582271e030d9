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
    /// skipping any already present (same chat and message id). Reports
    /// progress as (done, total) after each batch.
    pub fn import(
        &self,
        msgs: &[crate::import::ImportedMessage],
        batch: usize,
        mut progress: impl FnMut(u64, u64),
    ) -> Result<ImportSummary, CoreError> {
        let mut sum = ImportSummary::default();
        for chunk in msgs.chunks(batch.max(1)) {
            let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let (ops, dups) = self.store.write(|tx| {
                let mut ops = Vec::new();
                let mut dups = 0;
                for m in chunk {
                    if tx.note_by_message(m.chat_id, m.message_id)?.is_some() {
                        dups += 1;
                        continue;
                    }
                    let n = tx.insert_note(NewNote {
                        chat_id: m.chat_id,
                        user_id: m.user_id,
                        message_id: Some(m.message_id),
                        text: m.text.clone(),
                        created_at: m.date,
                        source: Source::Import,
                        author: m.author.clone(),
                    })?;
                    ops.push(IndexOp::upsert(&n));
                }
                Ok((ops, dups))
            })?;
            let added = ops.len() as u64;
            crate::health::metrics::notes_ingested("import", added);
            // The worker is woken once, at the end: it embeds the whole import.
            self.indexes.apply(ops);
            sum.imported += added;
            sum.duplicates += dups;
            progress(sum.imported + sum.duplicates, msgs.len() as u64);
        }
        self.wake_worker();
        Ok(sum)
    }
}
