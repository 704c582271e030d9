//! The core's vocabulary: the channel-free event that goes in ([`Inbound`]),
//! what comes out ([`Outcome`]: a [`Reply`] to send or an [`Answer`] to a
//! press), what recall returns ([`Hit`]) and the counts `stats` reports.
//!
//! Replies carry locale keys and arguments ([`Line`]), never rendered text:
//! the adapter renders them in the reply's language. [`Cx`] is what every
//! handler knows about the event it is handling.

use serde::{Deserialize, Serialize};

use super::VoiceIn;
use crate::i18n::Line;
use crate::memory::recall::Parts;
use crate::store::{Note, Source};

/// Where an event came from, described by what it can do: the core decides
/// by these capabilities, never by the channel's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Origin {
    /// The channel it came through, recorded as a new note's [`Source`].
    pub channel: Channel,
    /// A durable event id (Telegram's update id): the event is deduplicated
    /// by it, marked processed in the same commit as its effect, and its
    /// replies are queued in the outbox. Without one, replies are only
    /// returned.
    pub event_id: Option<u64>,
    /// The channel shows inline buttons and delivers their presses.
    pub buttons: bool,
    /// The sender needs no allowlist (whoever sits at the console).
    pub trusted: bool,
    /// The chat has other members (a group): it is served only as
    /// `telegram.groups` allows, strangers there are ignored silently (no
    /// refusal, no pairing), and replies show only this chat's data.
    pub group: bool,
}

impl Origin {
    /// A Telegram update: durable, with buttons, subject to the allowlist.
    pub const fn telegram(update_id: u64) -> Origin {
        Origin {
            channel: Channel::Telegram,
            event_id: Some(update_id),
            buttons: true,
            trusted: false,
            group: false,
        }
    }

    /// The same origin, in a group chat.
    pub const fn in_group(mut self) -> Origin {
        self.group = true;
        self
    }

    /// The local console: trusted, without buttons, replies returned
    /// directly.
    pub const fn console() -> Origin {
        Origin {
            channel: Channel::Console,
            event_id: None,
            buttons: false,
            trusted: true,
            group: false,
        }
    }
}

/// A channel events come through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Telegram,
    Console,
}

impl Channel {
    /// The [`Source`] of a note typed into this channel.
    pub fn source(self) -> Source {
        match self {
            Channel::Telegram => Source::Telegram,
            Channel::Console => Source::Console,
        }
    }
}

/// A channel-free event.
#[derive(Debug, Clone)]
pub struct Inbound {
    pub origin: Origin,
    pub chat_id: i64,
    pub user_id: i64,
    /// The sender's client language (e.g. Telegram's `language_code`).
    pub user_lang: Option<String>,
    pub message_id: Option<i64>,
    /// The message this one replies to, if any (used by /forget).
    pub reply_to: Option<i64>,
    /// When the message was sent, unix ms.
    pub at: i64,
    pub body: Body,
}

#[derive(Debug, Clone)]
pub enum Body {
    /// A new text message: a note or a command.
    Text(String),
    /// A message was edited to this text.
    Edited(String),
    /// A message kind mnemo cannot store (sticker, photo, …): the locale key
    /// suffix of its name, e.g. `"sticker"`.
    Unsupported(&'static str),
    /// An inline button was pressed on message `message_id`: its callback
    /// data, as received (untrusted until verified).
    Press(String),
    /// A voice note (or audio file) to fetch and transcribe.
    Voice(VoiceIn),
    /// The sender added mnemo to this (group) chat: it stays only where it
    /// may serve, else the outcome is [`Outcome::Leave`].
    Added,
}

/// What the adapter should do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Outcome {
    Reply(Reply),
    /// The answer to a button press: shown at once as a small notice
    /// (Telegram's answerCallbackQuery). Never queued in the outbox — an
    /// answer is only useful within seconds of the press.
    Answer(Answer),
    /// Leave this chat without a word (a group mnemo may not serve). Never
    /// queued: any later message from the chat asks again.
    Leave {
        chat_id: i64,
    },
}

/// The answer to a button press.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Answer {
    pub lang: String,
    pub line: Line,
    /// Whether the press took effect: the adapter then shows the pressed
    /// button as chosen (and its row's other buttons as not).
    pub chosen: bool,
}

/// An inline button: its label and its signed callback data
/// ([`crate::buttons`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Button {
    pub label: Line,
    pub data: String,
}

/// A message to send.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    pub chat_id: i64,
    /// Reply to this message id (a note's acknowledgement quotes the note).
    pub reply_to: Option<i64>,
    pub lang: String,
    pub lines: Vec<Line>,
    /// The note this reply acknowledges: once sent, the sent message is linked
    /// to it, so replying `/forget` to the acknowledgement works.
    #[serde(default)]
    pub note_id: Option<u64>,
    /// How many chunks of a long reply were delivered already (set by the
    /// sender as it goes, so a restart does not repeat them).
    #[serde(default)]
    pub chunks_sent: u32,
    /// Inline buttons under the (last chunk of the) reply, row by row.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub buttons: Vec<Vec<Button>>,
    /// The digest slot this reply delivers: the sender records the attempt
    /// in the ledger before sending and the message id after, so the slot
    /// is posted at most once ([`crate::store::SlotRecord`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<crate::store::SlotKey>,
    /// A refusal to a stranger: the sender sends it only when no other
    /// reply waits for its turn.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub low_priority: bool,
}

impl Reply {
    /// `lines` to `chat`: no quote, no buttons, linked to no note or digest.
    pub fn plain(chat_id: i64, lang: String, lines: Vec<Line>) -> Reply {
        Reply {
            chat_id,
            reply_to: None,
            lang,
            lines,
            note_id: None,
            chunks_sent: 0,
            buttons: Vec::new(),
            digest: None,
            low_priority: false,
        }
    }
}

/// A recall hit.
#[derive(Debug, Clone)]
pub struct Hit {
    pub note: Note,
    pub score: f32,
    /// The weighted components of `score`.
    pub parts: Parts,
    /// Someone marked this memory outdated (it is demoted, and shown so).
    pub outdated: bool,
    /// A match ([`crate::memory::recall::relevant`]: the question is
    /// answered and this hit reaches `Weights::beside_floor`, or
    /// `Weights::rerank_beside` for a turn the cross-encoder scored): chat shows it
    /// first; the others are the closest there is.
    pub relevant: bool,
}

/// Counts for /stats and `mnemo stats`.
#[derive(Debug, Clone, Serialize)]
pub struct Stats {
    pub memories: u64,
    /// Damaged records: kept but skipped (`mnemo repair`), 0 normally.
    pub damaged: u64,
    pub chats: u64,
    pub outbox: u64,
    pub db_bytes: u64,
    pub db_path: String,
    pub schema_version: u32,
    /// Notes with a stored embedding.
    pub embedded: u64,
    /// Notes waiting for their embedding.
    pub pending: u64,
    /// Vectors in the in-memory index.
    pub index_size: u64,
    /// Embedding model id, `null` when no model is loaded.
    pub model: Option<String>,
    pub feedback: crate::store::FeedbackCounts,
    pub items: crate::store::ItemCounts,
    /// LLM use for digest summaries: today's and this month's calls,
    /// tokens and cost (UTC; `cost_usd` null when some model had no price).
    pub llm: crate::store::Spend,
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct ImportSummary {
    /// Messages stored (a long one counts once, however many parts).
    pub imported: u64,
    pub duplicates: u64,
    /// Messages longer than `notes.max_chars`, stored as linked parts.
    pub split: u64,
    /// The notes those messages became.
    pub parts: u64,
}

/// Per-event context shared by the handlers.
pub(super) struct Cx<'a> {
    pub(super) ev: &'a Inbound,
    /// The language replies to this event are rendered in.
    pub(super) lang: String,
}

impl Cx<'_> {
    /// A reply in the event's chat.
    pub(super) fn reply(&self, lines: Vec<Line>) -> Outcome {
        Outcome::Reply(Reply::plain(self.ev.chat_id, self.lang.clone(), lines))
    }

    /// The answer to a press.
    pub(super) fn answer(&self, line: Line, chosen: bool) -> Outcome {
        Outcome::Answer(Answer {
            lang: self.lang.clone(),
            line,
            chosen,
        })
    }

    /// A reply that quotes the event's message.
    pub(super) fn reply_to_msg(&self, lines: Vec<Line>) -> Outcome {
        let mut o = self.reply(lines);
        if let Outcome::Reply(r) = &mut o {
            r.reply_to = self.ev.message_id;
        }
        o
    }
}
