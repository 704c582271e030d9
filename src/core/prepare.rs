//! The read-only half of an event, done before the writer is taken.
//!
//! redb has one writer at a time, and the core holds its `writer` lock from
//! the write transaction until the derived indexes are updated. Anything
//! slow inside that window — embedding a question, searching 100k notes,
//! listing to-dos, embedding a new note to see whether it repeats an older
//! one — would hold up every other chat's acknowledgement. So
//! [`Core::handle_batch`] first runs [`Core::prepare`] for each event with
//! no lock held, on committed data, and hands the result ([`Prepared`]) to
//! the write phase, which only commits: the processed marker, the outbox
//! entry, a recall's question record for its vote buttons.
//!
//! Only events the access check will let through are prepared (a stranger
//! costs no model call), and only from what the event says; the write phase
//! still decides everything (dedup, access, refusals) and recomputes in place
//! whatever was not prepared.

use super::commands::{self, Command};
use super::{Body, Core, CoreError, Hit, Inbound};
use crate::i18n::Line;
use crate::store::{Item, StoreError};

/// What an event's read-only part found.
#[derive(Default)]
pub(super) enum Prepared {
    /// Nothing: the write phase does all of it.
    #[default]
    Nothing,
    /// A read-only command's reply lines (`/recent`, `/decisions`,
    /// `/feedback`, `/stats`).
    Lines(Vec<Line>),
    /// A question's hits and its embedding; `None` when recall failed (it
    /// was logged; the reply says so).
    Recall(Option<Found>),
    /// The chat's open to-dos (`/todos`; their ✅ buttons are signed later).
    Todos(Vec<Item>),
    /// `/digest`: the digest, built (and summarised) with no lock held.
    Digest(super::Reply),
    /// A new note, embedded already: its vector, and the stored note of the
    /// same chat it repeats, if any.
    Note {
        vector: Vec<f32>,
        repeats: Option<u64>,
    },
}

/// Hits of a recall and the question's embedding.
pub(super) type Found = (Vec<Hit>, Option<Vec<f32>>);

impl Core {
    /// The read-only part of `ev`, computed with no lock held.
    pub(super) fn prepare(&self, ev: &Inbound) -> Result<Prepared, CoreError> {
        let Body::Text(text) = &ev.body else {
            return Ok(Prepared::Nothing);
        };
        if !self.may_serve(ev)? {
            return Ok(Prepared::Nothing);
        }
        if let Some(id) = ev.origin.event_id {
            if self.store.is_processed(id)? {
                return Ok(Prepared::Nothing);
            }
        }
        let chat = ev.chat_id;
        Ok(match commands::parse(text) {
            None => match self.valid_text(text) {
                Some(clean) => self.repeat_of(chat, ev.at, clean).map_or(
                    Prepared::Nothing,
                    |(vector, repeats)| Prepared::Note { vector, repeats },
                ),
                None => Prepared::Nothing,
            },
            Some(Err(_)) => Prepared::Nothing,
            Some(Ok((cmd, args))) => match cmd {
                Command::Recall if !args.is_empty() => {
                    self.catch_up()?;
                    Prepared::Recall(self.find(chat, args)?)
                }
                Command::Recent => Prepared::Lines(self.read_recent(chat, args)?),
                Command::Todos => Prepared::Todos(self.open_todos(chat)?),
                Command::Decisions => Prepared::Lines(self.read_decisions(chat)?),
                Command::Feedback => Prepared::Lines(self.read_feedback(chat)?),
                Command::Stats => Prepared::Lines(self.read_stats(chat, ev.origin.group)?),
                Command::Digest => Prepared::Digest(self.read_digest(chat, args)?),
                _ => Prepared::Nothing,
            },
        })
    }

    /// A recall for `/recall`: `None` when it failed other than in the store
    /// (the model), logged here.
    pub(super) fn find(&self, chat: i64, query: &str) -> Result<Option<Found>, StoreError> {
        let t0 = std::time::Instant::now();
        let found = self.recall_full(
            query,
            crate::memory::Chats::one(chat),
            self.settings.recall_default_k,
            &self.settings.weights,
        );
        crate::health::metrics::recall_seconds(t0.elapsed().as_secs_f64());
        match found {
            Ok(f) => Ok(Some(f)),
            Err(CoreError::Store(e)) => Err(e),
            Err(e) => {
                tracing::error!(error = %e, "recall failed");
                Ok(None)
            }
        }
    }
}
