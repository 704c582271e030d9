//! The channel-free heart of mnemo: an [`Inbound`] event goes in, [`Outcome`]s
//! come out.
//!
//! The core knows nothing of Telegram or terminals. An adapter translates its
//! channel's messages into [`Inbound`]s and renders the returned [`Outcome`]s.
//!
//! One event is handled in one store transaction ([`Core::handle`]):
//!
//! 1. dedup — an event with a durable id (a Telegram update) that was
//!    processed already is dropped;
//! 2. access — strangers get at most one refusal a day, nothing stored
//!    (and, when no refusal is due, no transaction at all: `unserved`);
//! 3. the note or command is applied;
//! 4. for durable origins (those with an event id: Telegram) the replies are
//!    queued in the outbox and the event is marked processed — in the same
//!    commit as the note.
//!
//! The core decides by what an event's [`Origin`] can do (a durable id,
//! buttons, trust), never by which channel it is.
//!
//! Only after that commit are derived indexes updated, and only then does the
//! adapter send anything. So a reply always describes something durable, and a
//! crash anywhere leaves either nothing (the update is re-delivered or replayed
//! from the inbox) or everything (note, marker and pending reply).
//!
//! One concern per file: `events` (what goes in and out), `settings`,
//! `notes` (applying an event: access, then press, voice, command, note or
//! edit; imports), `commands`, `press` (buttons and feedback in ranking),
//! `voice`, `access`, `recall`, `embedding` (the embed queue, duplicates,
//! reindex, what a note is embedded as) and `outbox` (inbox, outbox,
//! hooks). The derived state lives in [`crate::memory::indexes`].

mod access;
mod commands;
mod digest;
mod embedding;
mod events;
mod health;
mod notes;
mod outbox;
mod prepare;
mod press;
mod recall;
mod settings;
mod voice;

use std::sync::{Arc, Condvar, Mutex};

use crate::buttons::Keyring;
use crate::memory::embed::Embedder;
use crate::memory::indexes::{IndexOp, Indexes};
use crate::store::{FeedbackEvent, Note, Store, StoreError, Tx};

pub use access::PairingCode;
use commands::Command;
pub use commands::{commands_menu, human_bytes};
pub use digest::Gate;
pub use embedding::{embed_text, vector_space, vector_space_of, BATCH, TAKE};
use events::Cx;
pub use events::{
    Answer, Body, Button, Channel, Hit, ImportSummary, Inbound, Origin, Outcome, Reply, Stats,
};
pub use health::human_duration;
pub use settings::Settings;
pub use voice::{clock, VoiceFailure, VoiceIn, VoiceText, MAX_VOICE_BYTES};

/// Chat id the console channel uses. Telegram never uses 0.
pub const CONSOLE_CHAT_ID: i64 = 0;

#[derive(Debug, thiserror::Error)]
pub enum CoreError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("embedding failed: {0}")]
    Embed(String),
}

impl CoreError {
    /// The store refused the write for a storage reason (a full disk, an
    /// I/O error): it comes back by itself ([`Store::try_recover`]), and
    /// the same event can be handled again then.
    pub fn is_storage(&self) -> bool {
        matches!(self, CoreError::Store(e) if e.is_io())
    }
}

/// A side effect of a commit outside the derived indexes, run after it.
enum Effect {
    /// A forgotten voice note's audio file (in the voice dir) to delete.
    DropAudio(String),
    /// A voice job became ready for transcription: wake the pipeline.
    VoiceReady,
}

/// What a transaction changed that must be applied once it committed: the
/// derived indexes' ops, and the core's own effects. Handlers record into
/// it; [`Core::apply_changes`] applies it after the commit.
#[derive(Default)]
struct Changes {
    index: Vec<IndexOp>,
    effects: Vec<Effect>,
    /// Sources of the new notes (counted in the metrics after the commit).
    stored: Vec<&'static str>,
}

impl Changes {
    /// A new note (not an edit).
    fn stored(&mut self, n: &Note, source: &'static str) {
        self.upsert(n);
        self.stored.push(source);
    }

    /// A new or changed note.
    fn upsert(&mut self, n: &Note) {
        self.index.push(IndexOp::upsert(n));
    }

    /// A deleted note: out of the indexes, and its audio file deleted.
    fn forget(&mut self, n: &Note) {
        self.index.push(IndexOp::Remove(n.id));
        if let Some(a) = n.voice.as_ref().and_then(|v| v.audio.clone()) {
            self.effects.push(Effect::DropAudio(a));
        }
    }

    /// A vote was logged.
    fn vote(&mut self, ev: FeedbackEvent) {
        self.index.push(IndexOp::Vote(ev));
    }

    /// A voice job became `Ready`.
    fn voice_ready(&mut self) {
        self.effects.push(Effect::VoiceReady);
    }
}

pub struct Core {
    store: Store,
    settings: Settings,
    /// The derived state (lexical, vectors, graph, votes); see [`Indexes`]
    /// for its invariants.
    indexes: Indexes,
    /// Serialises "commit, then update indexes" so indexes see writes in
    /// commit order. redb serialises writers anyway, so this costs nothing.
    writer: Mutex<()>,
    /// The open pairing code and when it expires.
    pairing: Mutex<Option<(PairingCode, std::time::Instant)>>,
    embedder: Option<Arc<Embedder>>,
    /// Tells how well the first hits answer a question (relevance floor).
    reranker: Option<Arc<crate::memory::rerank::Reranker>>,
    /// Set when new work for the embed worker was committed.
    work: (Mutex<bool>, Condvar),
    outbox_hook: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Wakes the voice pipeline (a job became `Ready`).
    voice_hook: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Signs and verifies inline buttons; without it replies carry none.
    keys: Option<Keyring>,
    /// Adds the LLM summary to a digest (registered by the App).
    summarizer: Mutex<Option<Summarizer>>,
}

/// The LLM step of a digest: fills in its summary, blocking the thread.
type Summarizer = Box<dyn Fn(&mut crate::digest::Digest, &str) + Send + Sync>;

impl Core {
    /// Wraps an open store and builds the derived indexes from it, without
    /// embeddings (lexical recall only; notes still queue for embedding).
    pub fn new(store: Store, settings: Settings) -> Result<Core, CoreError> {
        Core::with_embedder(store, settings, None)
    }

    /// Like [`Core::new`] with an embedding model: if the stored vectors
    /// belong to another model they are dropped and every note is queued, so
    /// vector spaces never mix.
    pub fn with_embedder(
        store: Store,
        settings: Settings,
        embedder: Option<Arc<Embedder>>,
    ) -> Result<Core, CoreError> {
        let space = embedder.as_deref().map(vector_space);
        let indexes = Indexes::build(
            &store,
            space.as_deref(),
            settings.ann_threshold,
            settings.vectors_in_background,
        )?;
        Ok(Core {
            store,
            settings,
            indexes,
            writer: Mutex::new(()),
            pairing: Mutex::new(None),
            embedder,
            reranker: None,
            work: (Mutex::new(true), Condvar::new()),
            outbox_hook: Mutex::new(None),
            voice_hook: Mutex::new(None),
            keys: None,
            summarizer: Mutex::new(None),
        })
    }

    /// Asks `reranker` about the first hits of every recall (when the
    /// weights give it a part, [`Weights::rerank`]).
    ///
    /// [`Weights::rerank`]: crate::memory::recall::Weights::rerank
    pub fn with_reranker(mut self, reranker: Option<Arc<crate::memory::rerank::Reranker>>) -> Core {
        self.reranker = reranker;
        self
    }

    /// Whether a cross-encoder was given ([`Core::with_reranker`]).
    pub fn has_reranker(&self) -> bool {
        self.reranker.is_some()
    }

    /// Enables inline buttons, signed with `keys`.
    pub fn with_keyring(mut self, keys: Keyring) -> Core {
        self.keys = Some(keys);
        self
    }

    pub fn keyring(&self) -> Option<&Keyring> {
        self.keys.as_ref()
    }

    pub fn embedder(&self) -> Option<&Arc<Embedder>> {
        self.embedder.as_ref()
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Handles one event; see the module docs for the order of things.
    pub fn handle(&self, ev: Inbound) -> Result<Vec<Outcome>, CoreError> {
        // Access first: an event that will not be served costs a read or
        // two, no preparation and no commit.
        if let Some(out) = self.unserved(&ev)? {
            return Ok(out);
        }
        let mut all = self.handle_batch(std::slice::from_ref(&ev))?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Handles several events in one transaction: one durable commit for all
    /// (bulk ingest, imports). Either every event is applied or none is.
    pub fn handle_batch(&self, events: &[Inbound]) -> Result<Vec<Vec<Outcome>>, CoreError> {
        // Reads first, with no lock held (see `prepare`): a slow recall in
        // one chat never holds up another chat's acknowledgement.
        let prepared = events
            .iter()
            .map(|ev| self.prepare(ev))
            .collect::<Result<Vec<_>, _>>()?;
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let (outcomes, changes) = self.store.write(|tx| {
            let mut ch = Changes::default();
            let mut outcomes = Vec::with_capacity(events.len());
            for (ev, prep) in events.iter().zip(prepared) {
                outcomes.push(self.handle_in(tx, ev, prep, now, &mut ch)?);
            }
            Ok((outcomes, ch))
        })?;
        let voted = self.apply_changes(changes);
        drop(_w);
        if voted {
            self.maybe_compact_feedback();
        }
        Ok(outcomes)
    }

    /// Brings the derived state up to date with a commit's changes and runs
    /// its effects (call after the commit, still under the writer lock).
    /// Returns whether votes were logged: the caller then runs
    /// [`Core::maybe_compact_feedback`] once the lock is released.
    fn apply_changes(&self, ch: Changes) -> bool {
        for source in &ch.stored {
            crate::health::metrics::notes_ingested(source, 1);
        }
        if ch.index.is_empty() && ch.effects.is_empty() {
            return false;
        }
        let voted = self.indexes.apply(ch.index);
        for e in ch.effects {
            match e {
                Effect::VoiceReady => self.notify_voice(),
                Effect::DropAudio(name) => {
                    let path = self.store.voice_dir().join(&name);
                    if let Err(e) = std::fs::remove_file(&path) {
                        tracing::warn!(error = %e, file = %path.display(), "could not delete a forgotten voice note's audio");
                    }
                }
            }
        }
        self.wake_worker();
        voted
    }

    /// One event inside the batch's transaction: dedup, [`Core::apply`],
    /// then for durable origins the processed marker and the outbox.
    fn handle_in(
        &self,
        tx: &mut Tx,
        ev: &Inbound,
        prep: prepare::Prepared,
        now: i64,
        ch: &mut Changes,
    ) -> Result<Vec<Outcome>, StoreError> {
        if let Some(update_id) = ev.origin.event_id {
            if tx.is_processed(update_id)? {
                tracing::debug!(update_id, "duplicate update ignored");
                return Ok(Vec::new());
            }
        }
        let outcomes = self.apply(tx, ev, prep, ch)?;
        if let Some(update_id) = ev.origin.event_id {
            tx.mark_processed(update_id, now)?;
            for o in outcomes.iter().filter(|o| matches!(o, Outcome::Reply(_))) {
                tx.push_outbox(&serde_json::to_vec(o).expect("outcomes serialise"))?;
            }
        }
        Ok(outcomes)
    }

    /// Heap bytes of the derived indexes (lexical, vectors, graph), for the
    /// memory breakdown in the benches.
    pub fn index_footprint(&self) -> crate::memory::indexes::Footprint {
        self.indexes.footprint()
    }

    /// Whether the vectors (and graph) are still loading in the background;
    /// recall is by words only until they are in.
    pub fn vectors_loading(&self) -> bool {
        self.indexes.vectors_loading()
    }

    /// Blocks until the vectors are in (see [`Settings::vectors_in_background`]).
    pub fn wait_vectors(&self) {
        self.indexes.wait_vectors()
    }

    /// Counts for `/stats` and `mnemo stats`.
    pub fn stats(&self) -> Result<Stats, CoreError> {
        Ok(Stats {
            memories: self.store.count_notes()?,
            damaged: self.store.damaged()?.len() as u64,
            chats: self.store.count_chats()?,
            outbox: self.store.outbox_len()?,
            db_bytes: self.store.file_size(),
            db_path: self.store.path().display().to_string(),
            schema_version: self.store.schema_version()?,
            embedded: self.store.vector_count()?,
            pending: self.store.embed_queue_len()?,
            index_size: self.indexes.vectors_len() as u64,
            model: self.embedder.as_ref().map(|e| e.model_id().to_owned()),
            feedback: self.feedback_counts()?,
            items: self.store.count_items()?,
            llm: self.store.llm_spend(now_ms())?,
        })
    }
}

/// Now, unix ms.
pub fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// `2026-11-25 14:20` (UTC) for unix ms.
pub fn format_date(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .map(|d| d.format("%Y-%m-%d %H:%M").to_string())
        .unwrap_or_else(|| "?".into())
}

/// A one-line preview of a note: newlines folded, cut at `max` characters.
pub fn snippet(text: &str, max: usize) -> String {
    let flat: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        return flat;
    }
    let cut: String = flat.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}
