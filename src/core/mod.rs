//! The channel-free heart of mnemo: an [`Inbound`] event goes in, [`Outcome`]s
//! come out.
//!
//! The core knows nothing of Telegram or terminals. An adapter translates its
//! channel's messages into [`Inbound`]s and renders the returned [`Outcome`]s.
//!
//! One event is handled in one store transaction ([`Core::handle`]):
//!
//! 1. dedup — a Telegram update already processed is dropped;
//! 2. access — strangers get at most one refusal a day, nothing stored;
//! 3. the note or command is applied;
//! 4. for durable origins (Telegram) the replies are queued in the outbox and
//!    the update is marked processed — in the same commit as the note.
//!
//! Only after that commit are derived indexes updated, and only then does the
//! adapter send anything. So a reply always describes something durable, and a
//! crash anywhere leaves either nothing (the update is re-delivered or replayed
//! from the inbox) or everything (note, marker and pending reply).

mod access;
mod commands;
mod events;
mod press;
mod settings;
mod voice;

use std::sync::{Arc, Condvar, Mutex, RwLock};
use std::time::Duration;

use crate::buttons::Keyring;
use crate::i18n::{self, Line};
use crate::memory::ann::{self, Ann};
use crate::memory::embed::Embedder;
use crate::memory::lexical::LexicalIndex;
use crate::memory::recall::{self, Candidate, Weights};
use crate::memory::vector::VectorIndex;
use crate::models::EMBED_DIM;
use crate::store::{Aggregate, FeedbackEvent, NewNote, Note, Source, Store, StoreError, Tx};

pub use access::PairingCode;
pub use commands::human_bytes;
use events::Cx;
pub use events::{
    Answer, Body, Button, Hit, ImportSummary, Inbound, Origin, Outcome, Reply, Stats,
};
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

/// Candidates taken from each side before fusion.
const CANDIDATES: usize = 50;
/// Largest embedding backlog a recall waits for (larger ones — an import in
/// progress — are left to the worker).
const CATCH_UP_MAX: u64 = 256;

/// A change to apply to derived indexes once the transaction committed.
enum IndexOp {
    /// (note id, chat id, the text the lexical index reads): see [`IndexOp::upsert`].
    Upsert(u64, i64, String),
    Remove(u64),
    /// A vote was logged: fold it into the in-memory feedback state.
    Vote(FeedbackEvent),
    /// A forgotten voice note's audio file (in the voice dir) to delete.
    DropAudio(String),
    /// A voice job became ready for transcription: wake the pipeline.
    VoiceReady,
}

impl IndexOp {
    /// A new or changed note: the lexical index reads its
    /// [`Note::indexed_text`]; its vector is redone by the worker.
    fn upsert(n: &Note) -> IndexOp {
        IndexOp::Upsert(n.id, n.chat_id, n.indexed_text().into_owned())
    }
}

pub struct Core {
    store: Store,
    settings: Settings,
    lexical: RwLock<LexicalIndex>,
    /// Serialises "commit, then update indexes" so indexes see writes in
    /// commit order. redb serialises writers anyway, so this costs nothing.
    writer: Mutex<()>,
    pairing: Mutex<Option<PairingCode>>,
    embedder: Option<Arc<Embedder>>,
    vectors: RwLock<VectorIndex>,
    /// The ANN graph, once the index is above `ann_threshold`.
    ann: RwLock<Option<Ann>>,
    /// The graph changed since it was last saved.
    ann_dirty: std::sync::atomic::AtomicBool,
    /// Set when new work for the embed worker was committed.
    work: (Mutex<bool>, Condvar),
    outbox_hook: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Wakes the voice pipeline (a job became `Ready`).
    voice_hook: Mutex<Option<Box<dyn Fn() + Send + Sync>>>,
    /// Signs and verifies inline buttons; without it replies carry none.
    keys: Option<Keyring>,
    /// Every note's votes (derived from the store: aggregates + log).
    feedback: RwLock<std::collections::HashMap<u64, Aggregate>>,
}

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
        let lexical = LexicalIndex::rebuild(&store)?;
        let mut vectors = VectorIndex::new(EMBED_DIM);
        if let Some(e) = &embedder {
            if store.vector_model()?.as_deref() != Some(vector_space(e).as_str()) {
                let n = store.write(|tx| tx.reset_vectors(&vector_space(e)))?;
                if n > 0 {
                    tracing::info!(
                        model = %vector_space(e),
                        notes = n,
                        "embedding model changed; re-embedding every note"
                    );
                }
            }
            let mut bad = Vec::new();
            let mut stale = store.for_each_vector(&vector_space(e), EMBED_DIM, |id, chat, v| {
                if !vectors.insert(id, chat, &v) {
                    bad.push(id);
                }
            })?;
            stale.append(&mut bad);
            if !stale.is_empty() {
                tracing::warn!(
                    notes = stale.len(),
                    "stored vectors of another model, another dimension, with NaN or damaged; embedding those notes again"
                );
                store.write(|tx| tx.requeue_embed(&stale))?;
            }
        }
        let mut graph = None;
        let mut dirty = false;
        if let Some(e) = &embedder {
            if vectors.len() >= settings.ann_threshold {
                let dir = ann::dir_in(store.dir());
                let (g, how) = Ann::load_or_build(&dir, &vectors, &vector_space(e));
                tracing::info!(?how, points = g.len(), "ANN graph ready");
                dirty = how != ann::Origin::Loaded { added: 0 };
                graph = Some(g);
            }
        }
        // Votes only tune ranking: an unreadable one must not keep mnemo from
        // starting. It stays in the store (and in the error log) untouched.
        let feedback = store.feedback_state().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read feedback; ranking ignores votes until this is fixed");
            Default::default()
        });
        Ok(Core {
            store,
            settings,
            lexical: RwLock::new(lexical),
            writer: Mutex::new(()),
            pairing: Mutex::new(None),
            embedder,
            vectors: RwLock::new(vectors),
            ann: RwLock::new(graph),
            ann_dirty: std::sync::atomic::AtomicBool::new(dirty),
            work: (Mutex::new(true), Condvar::new()),
            outbox_hook: Mutex::new(None),
            voice_hook: Mutex::new(None),
            keys: None,
            feedback: RwLock::new(feedback),
        })
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
        let mut all = self.handle_batch(std::slice::from_ref(&ev))?;
        Ok(all.pop().unwrap_or_default())
    }

    /// Handles several events in one transaction: one durable commit for all
    /// (bulk ingest, imports). Either every event is applied or none is.
    pub fn handle_batch(&self, events: &[Inbound]) -> Result<Vec<Vec<Outcome>>, CoreError> {
        // Read your writes: a question asked right after a note should see the
        // note's embedding, so a small backlog is embedded before answering.
        let asks = events.iter().any(|e| match &e.body {
            Body::Text(t) => commands::parse(t).is_some_and(|(c, _)| c == "recall"),
            _ => false,
        });
        if asks && self.embedder.is_some() && self.store.embed_queue_len()? <= CATCH_UP_MAX {
            if let Err(e) = self.embed_all_pending(|_, _| {}) {
                tracing::warn!(error = %e, "could not embed recent notes before recall");
            }
        }
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let now = now_ms();
        let (outcomes, ops) = self.store.write(|tx| {
            let mut ops = Vec::new();
            let mut outcomes = Vec::with_capacity(events.len());
            for ev in events {
                outcomes.push(self.handle_in(tx, ev, now, &mut ops)?);
            }
            Ok((outcomes, ops))
        })?;
        let voted = self.apply_ops(ops);
        drop(_w);
        if voted {
            self.maybe_compact_feedback();
        }
        Ok(outcomes)
    }

    /// Brings the derived state up to date with a commit's changes (call
    /// after the commit, still under the writer lock). Returns whether votes
    /// were logged: the caller then runs [`Core::maybe_compact_feedback`]
    /// once the lock is released.
    fn apply_ops(&self, ops: Vec<IndexOp>) -> bool {
        let mut voted = false;
        if !ops.is_empty() {
            let mut lex = self.lexical.write().unwrap_or_else(|p| p.into_inner());
            let mut vec = self.vectors.write().unwrap_or_else(|p| p.into_inner());
            let mut graph = self.ann.write().unwrap_or_else(|p| p.into_inner());
            let mut fb = self.feedback.write().unwrap_or_else(|p| p.into_inner());
            for op in ops {
                let id = match op {
                    IndexOp::Upsert(id, chat, text) => {
                        lex.insert(id, chat, &text);
                        // The old vector (if any) is stale; the worker adds the new one.
                        id
                    }
                    IndexOp::Remove(id) => {
                        lex.remove(id);
                        fb.remove(&id);
                        id
                    }
                    IndexOp::Vote(ev) => {
                        fb.entry(ev.note_id).or_default().apply(ev);
                        voted = true;
                        continue;
                    }
                    IndexOp::VoiceReady => {
                        self.notify_voice();
                        continue;
                    }
                    IndexOp::DropAudio(name) => {
                        let path = self.store.voice_dir().join(&name);
                        if let Err(e) = std::fs::remove_file(&path) {
                            tracing::warn!(error = %e, file = %path.display(), "could not delete a forgotten voice note's audio");
                        }
                        continue;
                    }
                };
                vec.remove(id);
                if let Some(g) = graph.as_mut() {
                    g.remove(id);
                    self.ann_dirty
                        .store(true, std::sync::atomic::Ordering::Release);
                }
            }
            drop((lex, vec, graph, fb));
            self.wake_worker();
        }
        voted
    }

    // ---- embeddings ---------------------------------------------------------

    /// Registers what to call when the core queues replies on its own (the
    /// embed worker's duplicate notices): the Telegram sender's wake-up.
    pub fn on_outbox(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.outbox_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
    }

    /// Registers what to call when a voice job becomes ready (the
    /// transcription pipeline's wake-up).
    pub fn on_voice_ready(&self, f: impl Fn() + Send + Sync + 'static) {
        *self.voice_hook.lock().unwrap_or_else(|p| p.into_inner()) = Some(Box::new(f));
    }

    pub(crate) fn notify_voice(&self) {
        if let Some(f) = self
            .voice_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f();
        }
    }

    fn notify_outbox(&self) {
        if let Some(f) = self
            .outbox_hook
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .as_ref()
        {
            f();
        }
    }

    /// Wakes the embed worker.
    pub fn wake_worker(&self) {
        let (m, cv) = &self.work;
        *m.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cv.notify_all();
    }

    /// Blocks until there may be new work, or `timeout`.
    pub fn wait_for_work(&self, timeout: Duration) {
        let (m, cv) = &self.work;
        let mut g = m.lock().unwrap_or_else(|p| p.into_inner());
        if !*g {
            g = cv
                .wait_timeout(g, timeout)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *g = false;
    }

    /// Embeds up to `max` queued notes in one model call and stores their
    /// vectors in one commit. Returns how many queue entries were taken (0
    /// when the queue is empty or there is no model).
    pub fn embed_pending(&self, max: usize) -> Result<usize, CoreError> {
        let Some(e) = &self.embedder else {
            return Ok(0);
        };
        let batch = self.store.embed_queue(max)?;
        if batch.is_empty() {
            return Ok(0);
        }
        let space = vector_space(e);
        let mut texts = Vec::with_capacity(batch.len());
        for (id, _, n) in &batch {
            // Only notes with an author (imported chats) can be turns of a
            // conversation; a note typed to mnemo stands alone.
            let before = match n.author {
                Some(_) => self.store.notes_before(n.chat_id, *id, CONTEXT_TURNS)?,
                None => Vec::new(),
            };
            texts.push(embed_text(n, &before));
        }
        // Model calls of similar lengths: padding to the longest text of a call
        // is wasted work, so texts are sorted by length before chunking.
        let mut order: Vec<usize> = (0..texts.len()).collect();
        order.sort_by_key(|&i| texts[i].len());
        let sorted: Vec<&str> = order.iter().map(|&i| texts[i].as_str()).collect();
        let out = e
            .embed_chunks(&sorted, crate::memory::worker::BATCH)
            .map_err(|err| CoreError::Embed(format!("{err:#}")))?;
        let mut vecs = vec![Vec::new(); texts.len()];
        for (&i, v) in order.iter().zip(out) {
            vecs[i] = v;
        }
        // Near-duplicates: a new note (not an import, not an edit) whose vector
        // is this close to an older note of the same chat is not kept.
        let dups: Vec<Option<(u64, f32)>> = {
            let idx = self.vectors.read().unwrap_or_else(|p| p.into_inner());
            batch
                .iter()
                .zip(&vecs)
                .enumerate()
                .map(|(i, ((id, _, note), v))| {
                    if note.source == Source::Import
                        || note.edited_at.is_some()
                        || self.settings.duplicate_threshold > 1.0
                    {
                        return None;
                    }
                    let earlier_in_batch = batch[..i]
                        .iter()
                        .zip(&vecs[..i])
                        .filter(|((oid, _, o), _)| o.chat_id == note.chat_id && oid < id)
                        .map(|((oid, _, _), ov)| (*oid, crate::memory::dot::dot(v, ov)));
                    idx.search_exact(v, Some(note.chat_id), 1)
                        .into_iter()
                        .filter(|(oid, _)| oid < id)
                        .chain(earlier_in_batch)
                        .filter(|(_, c)| *c >= self.settings.duplicate_threshold)
                        .max_by(|a, b| a.1.total_cmp(&b.1))
                })
                .collect()
        };
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut removed = Vec::new();
        let mut replied = false;
        let applied = self.store.write(|tx| {
            let mut applied = Vec::new();
            for (((id, seq, note), v), dup) in batch.iter().zip(&vecs).zip(&dups) {
                if let Some((orig, cos)) = dup {
                    let Some(o) = tx.note(*orig)? else { continue };
                    if tx.delete_note(note.chat_id, *id)?.is_none() {
                        continue;
                    }
                    tracing::info!(
                        note = id,
                        same_as = orig,
                        cosine = cos,
                        "near-duplicate note not kept"
                    );
                    removed.push(*id);
                    if let Some(m) = note.message_id {
                        tx.link_message(note.chat_id, m, *orig)?;
                    }
                    if note.source == Source::Telegram {
                        let lang = tx
                            .chat_lang(note.chat_id)?
                            .unwrap_or_else(|| self.settings.default_lang.clone());
                        let reply = Outcome::Reply(Reply {
                            chat_id: note.chat_id,
                            reply_to: note.message_id,
                            lang,
                            lines: vec![Line::new("note-duplicate")
                                .num("id", o.id)
                                .num("new", *id)
                                .text("date", format_date(o.created_at))],
                            note_id: Some(o.id),
                            chunks_sent: 0,
                            buttons: Vec::new(),
                        });
                        tx.push_outbox(&serde_json::to_vec(&reply).expect("outcomes serialise"))?;
                        replied = true;
                    }
                    continue;
                }
                if v.len() != EMBED_DIM || v.iter().any(|x| !x.is_finite()) {
                    tracing::error!(
                        note = id,
                        "model returned an unusable vector; note stays lexical-only"
                    );
                    tx.skip_embed(*id, *seq)?;
                } else if tx.put_vector(*id, *seq, &space, v)? {
                    applied.push((*id, note.chat_id, v));
                }
            }
            Ok(applied)
        })?;
        if !removed.is_empty() {
            let mut lex = self.lexical.write().unwrap_or_else(|p| p.into_inner());
            for id in &removed {
                lex.remove(*id);
            }
        }
        if replied {
            self.notify_outbox();
        }
        let mut idx = self.vectors.write().unwrap_or_else(|p| p.into_inner());
        let mut graph = self.ann.write().unwrap_or_else(|p| p.into_inner());
        for (id, chat, v) in &applied {
            idx.insert(*id, *chat, v);
        }
        if let Some(g) = graph.as_mut() {
            let batch: Vec<(u64, &[f32])> =
                applied.iter().map(|(id, _, v)| (*id, &v[..])).collect();
            g.insert_many(&batch);
        }
        if !applied.is_empty() && graph.is_some() {
            self.ann_dirty
                .store(true, std::sync::atomic::Ordering::Release);
        }
        if graph.is_none() && idx.len() >= self.settings.ann_threshold {
            tracing::info!(
                vectors = idx.len(),
                "index crossed the ANN threshold; building the graph"
            );
            *graph = Some(Ann::build(&idx, &vector_space(e)));
            self.ann_dirty
                .store(true, std::sync::atomic::Ordering::Release);
        }
        Ok(batch.len())
    }

    /// Saves the ANN graph if it changed (call on the way out; a graph not
    /// saved is caught up or rebuilt at the next start).
    pub fn persist(&self) {
        if !self
            .ann_dirty
            .swap(false, std::sync::atomic::Ordering::AcqRel)
        {
            return;
        }
        let graph = self.ann.read().unwrap_or_else(|p| p.into_inner());
        if let Some(g) = graph.as_ref() {
            let dir = ann::dir_in(self.store.dir());
            match g.save(&dir) {
                Ok(()) => tracing::info!(points = g.len(), "ANN graph saved"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not save the ANN graph; it will be rebuilt")
                }
            }
        }
    }

    /// Drains the whole queue now (CLI commands, reindex), reporting progress
    /// as (done, total).
    pub fn embed_all_pending(&self, mut progress: impl FnMut(u64, u64)) -> Result<u64, CoreError> {
        if self.embedder.is_none() {
            return Ok(0);
        }
        let total = self.store.embed_queue_len()?;
        let mut done = 0;
        loop {
            // Larger takes let the length sort cut padding; one commit per take.
            let n = self.embed_pending(crate::memory::worker::TAKE)? as u64;
            if n == 0 {
                break;
            }
            done += n;
            progress(done.min(total), total);
        }
        Ok(done)
    }

    /// Rebuilds every derived index from the store: lexical from the notes,
    /// vectors by re-embedding every note (progress as (done, total)).
    pub fn reindex(&self, progress: impl FnMut(u64, u64)) -> Result<u64, CoreError> {
        {
            let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
            let lex = LexicalIndex::rebuild(&self.store)?;
            *self.lexical.write().unwrap_or_else(|p| p.into_inner()) = lex;
            if let Some(e) = &self.embedder {
                self.store.write(|tx| tx.reset_vectors(&vector_space(e)))?;
                *self.vectors.write().unwrap_or_else(|p| p.into_inner()) =
                    VectorIndex::new(EMBED_DIM);
                *self.ann.write().unwrap_or_else(|p| p.into_inner()) = None;
            }
        }
        self.embed_all_pending(progress)
    }

    fn handle_in(
        &self,
        tx: &mut Tx,
        ev: &Inbound,
        now: i64,
        ops: &mut Vec<IndexOp>,
    ) -> Result<Vec<Outcome>, StoreError> {
        if let Origin::Telegram { update_id } = ev.origin {
            if tx.is_processed(update_id)? {
                tracing::debug!(update_id, "duplicate update ignored");
                return Ok(Vec::new());
            }
        }
        let outcomes = self.apply(tx, ev, ops)?;
        if let Origin::Telegram { update_id } = ev.origin {
            tx.mark_processed(update_id, now)?;
            for o in outcomes.iter().filter(|o| matches!(o, Outcome::Reply(_))) {
                tx.push_outbox(&serde_json::to_vec(o).expect("outcomes serialise"))?;
            }
        }
        Ok(outcomes)
    }

    fn apply(
        &self,
        tx: &mut Tx,
        ev: &Inbound,
        ops: &mut Vec<IndexOp>,
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
                access::Verdict::Allowed => self.press(tx, &cx, data, ops),
                _ => Ok(vec![cx.answer(Line::new("press-not-allowed"), false)]),
            };
        }
        match verdict {
            access::Verdict::Allowed => {}
            access::Verdict::Reply(lines) => return Ok(vec![cx.reply(lines)]),
            access::Verdict::Silent => return Ok(Vec::new()),
        }
        let lines = match &ev.body {
            Body::Unsupported(kind) => {
                vec![Line::new("unsupported-kind").key("kind", &format!("kind-{kind}"))]
            }
            Body::Press(_) => unreachable!("handled above"),
            Body::Voice(v) => return self.voice_in(tx, &cx, v),
            Body::Text(text) => match commands::parse(text) {
                Some((cmd, args)) => return self.command(tx, &cx, &cmd, args, ops),
                None => return self.save_note(tx, &cx, text, ops),
            },
            Body::Edited(text) => {
                let existing = match ev.message_id {
                    Some(m) => tx.note_by_message(ev.chat_id, m)?,
                    None => None,
                };
                match existing {
                    // An edit of a message that was never a note (a command, or a
                    // note refused as too long) is treated as a new message.
                    None if commands::parse(text).is_some() => return Ok(Vec::new()),
                    None => return self.save_note(tx, &cx, text, ops),
                    Some(id) => match self.validate(text) {
                        Err(line) => vec![line],
                        Ok(clean) => match tx.edit_note(id, clean.to_owned(), ev.at)? {
                            Some(n) => {
                                ops.push(IndexOp::upsert(&n));
                                vec![Line::new("note-updated").num("id", n.id)]
                            }
                            None => return Ok(Vec::new()),
                        },
                    },
                }
            }
        };
        Ok(vec![cx.reply_to_msg(lines)])
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

    fn save_note(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        text: &str,
        ops: &mut Vec<IndexOp>,
    ) -> Result<Vec<Outcome>, StoreError> {
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
            source: match cx.ev.origin {
                Origin::Telegram { .. } => Source::Telegram,
                Origin::Console => Source::Console,
            },
            author: None,
        })?;
        ops.push(IndexOp::upsert(&note));
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

    /// Hybrid recall (lexical + vector + recency); `chat` restricts to one
    /// chat. Without a model it is lexical with recency.
    pub fn recall(&self, query: &str, chat: Option<i64>, k: usize) -> Result<Vec<Hit>, CoreError> {
        self.recall_weighted(query, chat, k, &self.settings.weights)
    }

    /// [`Core::recall`] with explicit fusion weights (evaluation: lexical
    /// only is `vector = 0`, vector only is `lexical = 0`).
    pub fn recall_weighted(
        &self,
        query: &str,
        chat: Option<i64>,
        k: usize,
        weights: &Weights,
    ) -> Result<Vec<Hit>, CoreError> {
        Ok(self.recall_full(query, chat, k, weights)?.0)
    }

    /// The hits and the query's embedding (kept with vote buttons, so a vote
    /// knows which questions are similar).
    fn recall_full(
        &self,
        query: &str,
        chat: Option<i64>,
        k: usize,
        weights: &Weights,
    ) -> Result<(Vec<Hit>, Option<Vec<f32>>), CoreError> {
        let k = k.clamp(1, self.settings.recall_max_k);
        let (lex, qweight) = {
            let idx = self.lexical.read().unwrap_or_else(|p| p.into_inner());
            (
                idx.search(query, chat, CANDIDATES.max(k)),
                idx.query_weight(query),
            )
        };
        let qv = match &self.embedder {
            Some(e) if !query.trim().is_empty() => Some(
                e.embed(&[query])
                    .map_err(|err| CoreError::Embed(format!("{err:#}")))?
                    .remove(0),
            ),
            _ => None,
        };
        let vectors = self.vectors.read().unwrap_or_else(|p| p.into_inner());
        let graph = self.ann.read().unwrap_or_else(|p| p.into_inner());
        let vec = match (qv.as_ref(), graph.as_ref()) {
            (Some(q), Some(g)) => {
                let keep = |id: u64| chat.is_none_or(|c| vectors.chat_of(id) == Some(c));
                g.search(q, CANDIDATES.max(k), &keep)
            }
            (Some(q), None) => vectors.search_exact(q, chat, CANDIDATES.max(k)),
            (None, _) => Vec::new(),
        };
        drop(graph);
        let mut notes = std::collections::HashMap::new();
        let mut cands = Vec::new();
        for (id, (bm25, cos)) in recall::merge(&lex, &vec) {
            // The indexes are derived: a note deleted since is simply skipped.
            let Some(note) = self.store.note(id)? else {
                continue;
            };
            let cosine =
                cos.or_else(|| Some(crate::memory::dot::dot(qv.as_ref()?, vectors.get(id)?)));
            cands.push(Candidate {
                id,
                bm25,
                lexical: bm25 / qweight,
                cosine,
                created_at: note.created_at,
            });
            notes.insert(id, note);
        }
        drop(vectors);
        // Rank every candidate, then let feedback move them before cutting to k.
        let mut ranked = recall::fuse(&cands, now_ms(), weights, cands.len());
        let outdated = self.apply_feedback(&mut ranked, query, qv.as_deref());
        ranked.truncate(k);
        let hits = ranked
            .into_iter()
            .filter_map(|(id, score, parts)| {
                notes.remove(&id).map(|note| Hit {
                    note,
                    score,
                    parts,
                    outdated: outdated.contains(&id),
                })
            })
            .collect();
        Ok((hits, qv))
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
            let (added, dups) = self.store.write(|tx| {
                let mut added = Vec::new();
                let mut dups = 0;
                for (i, m) in chunk.iter().enumerate() {
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
                    added.push((n.id, i));
                }
                Ok((added, dups))
            })?;
            let mut lex = self.lexical.write().unwrap_or_else(|p| p.into_inner());
            for &(id, i) in &added {
                lex.insert(
                    id,
                    chunk[i].chat_id,
                    &crate::store::indexed_text(chunk[i].author.as_deref(), &chunk[i].text),
                );
            }
            drop(lex);
            sum.imported += added.len() as u64;
            sum.duplicates += dups;
            progress(sum.imported + sum.duplicates, msgs.len() as u64);
        }
        self.wake_worker();
        Ok(sum)
    }

    pub fn stats(&self) -> Result<Stats, CoreError> {
        Ok(Stats {
            memories: self.store.count_notes()?,
            chats: self.store.count_chats()?,
            outbox: self.store.outbox_len()?,
            db_bytes: self.store.file_size(),
            db_path: self.store.path().display().to_string(),
            schema_version: self.store.schema_version()?,
            embedded: self.store.vector_count()?,
            pending: self.store.embed_queue_len()?,
            index_size: self.vectors.read().unwrap_or_else(|p| p.into_inner()).len() as u64,
            model: self.embedder.as_ref().map(|e| e.model_id().to_owned()),
            feedback: self.feedback_counts()?,
            items: self.store.count_items()?,
        })
    }

    // ---- Telegram plumbing: inbox and outbox --------------------------------

    /// Records a received update durably before it is dispatched. Returns
    /// false for an update that was processed already.
    pub fn receive_update(&self, update_id: u64, raw: &[u8]) -> Result<bool, CoreError> {
        Ok(self.store.write(|tx| tx.inbox_put(update_id, raw))?)
    }

    /// Updates received but not processed before the last stop, oldest first.
    pub fn pending_updates(&self) -> Result<Vec<(u64, Vec<u8>)>, CoreError> {
        Ok(self.store.inbox(usize::MAX)?)
    }

    /// Marks an update that needs no handling (an unsupported update kind).
    pub fn discard_update(&self, update_id: u64) -> Result<(), CoreError> {
        Ok(self
            .store
            .write(|tx| tx.mark_processed(update_id, now_ms()))?)
    }

    /// Queued replies, oldest first. Undecodable entries are dropped with an
    /// error in the log rather than blocking the queue forever.
    pub fn outbox(&self, limit: usize) -> Result<Vec<(u64, Reply)>, CoreError> {
        let mut out = Vec::new();
        for (seq, bytes) in self.store.outbox(limit)? {
            match serde_json::from_slice::<Outcome>(&bytes) {
                Ok(Outcome::Reply(r)) => out.push((seq, r)),
                Ok(other) => {
                    tracing::error!(seq, ?other, "dropping an outbox entry that is not a reply");
                    self.store.write(|tx| tx.remove_outbox(seq))?;
                }
                Err(e) => {
                    tracing::error!(seq, error = %e, "dropping unreadable outbox entry");
                    self.store.write(|tx| tx.remove_outbox(seq))?;
                }
            }
        }
        Ok(out)
    }

    /// Records that `chunks_sent` chunks of reply `seq` went out.
    pub fn outbox_progress(&self, seq: u64, reply: &Reply) -> Result<(), CoreError> {
        let bytes = serde_json::to_vec(&Outcome::Reply(reply.clone())).expect("outcomes serialise");
        Ok(self.store.write(|tx| tx.replace_outbox(seq, &bytes))?)
    }

    /// Removes a delivered (or undeliverable) reply and links the sent message
    /// ids to the acknowledged note.
    pub fn outbox_done(
        &self,
        seq: u64,
        reply: &Reply,
        sent_message_ids: &[i64],
    ) -> Result<(), CoreError> {
        Ok(self.store.write(|tx| {
            tx.remove_outbox(seq)?;
            if let Some(note) = reply.note_id {
                if tx.note(note)?.is_some() {
                    for m in sent_message_ids {
                        tx.link_message(reply.chat_id, *m, note)?;
                    }
                }
            }
            Ok(())
        })?)
    }

    /// Drops processed-update markers older than a week, and the used
    /// nonces and recall questions of buttons that have expired.
    pub fn prune(&self) -> Result<u64, CoreError> {
        let now = now_ms();
        let horizon =
            now / 1000 - self.settings.button_max_age_secs - crate::buttons::MAX_CLOCK_SKEW_SECS;
        Ok(self.store.write(|tx| {
            Ok(tx.prune_processed(now - 7 * 86_400_000)? + tx.prune_buttons(horizon)?)
        })?)
    }
}

/// Commands for Telegram's menu: (name, description locale key).
pub fn commands_menu() -> &'static [(&'static str, &'static str)] {
    commands::MENU
}

/// How [`embed_text`] lays a note out; part of [`vector_space`], so a
/// change re-embeds every note instead of mixing layouts.
const EMBED_LAYOUT: &str = "date-dmy-author-ctx2x8";

/// The identity of the stored vectors: the model and the text layout.
pub fn vector_space(e: &Embedder) -> String {
    vector_space_of(e.model_id())
}

/// [`vector_space`] for a model id.
pub fn vector_space_of(model_id: &str) -> String {
    format!("{model_id}#{EMBED_LAYOUT}")
}

/// Turns before a message that [`embed_text`] may add as its context.
const CONTEXT_TURNS: usize = 2;
/// A context turn is at most this much older than the message (one sitting
/// of a conversation; a gap ends the context).
const CONTEXT_WINDOW_MS: i64 = 30 * 60_000;
/// Words kept of each context turn: its last ones, where a question's
/// subject usually is ("… did you go to the Coldplay concert?").
const CONTEXT_WORDS: usize = 8;

/// What is embedded for a note: its date, its author when known, then its
/// text (the date helps questions about time, dense retrieval most of all;
/// the author, questions about who said what in imported chats). The date is
/// written `25 Nov 2026`: four tokens instead of six for `2026-11-25`, and a
/// month *name* is what questions say ("in November") — measured better on
/// the eval set (hybrid hit@10 0.743 → 0.757) and ~20% less model work.
///
/// In a dialogue, a message often means little alone ("Nope, Thursdays"):
/// `before` (the chat's previous notes, newest first) adds up to
/// [`CONTEXT_TURNS`] of them, oldest first, cut to their last
/// [`CONTEXT_WORDS`] words, in parentheses after the text — when they are
/// within [`CONTEXT_WINDOW_MS`] of each other and the message, and someone
/// else speaks among them (a monologue of notes gets no context). Measured
/// on tests/data/conversation_eval.json: hybrid hit@1 0.392 → 0.433, hit@10
/// 0.731 → 0.772, evidence@10 0.588 → 0.650 (docs/BENCHMARKS.md). Context goes after the
/// text, not before it: in front it outweighed the message's own words
/// (hit@1 0.392 → 0.366).
pub fn embed_text(n: &Note, before: &[Note]) -> String {
    let date = chrono::DateTime::from_timestamp_millis(n.created_at)
        .map(|d| d.format("%-d %b %Y").to_string());
    let own = match (date, n.author.as_deref().map(str::trim)) {
        (Some(d), Some(a)) if !a.is_empty() => format!("{d}, {a}: {}", n.text),
        (Some(d), _) => format!("{d}: {}", n.text),
        (None, _) => n.indexed_text().into_owned(),
    };
    let Some(author) = n.author.as_deref() else {
        return own;
    };
    let mut turns = Vec::new();
    let mut after = n.created_at;
    for b in before.iter().take(CONTEXT_TURNS) {
        // Ids are arrival order, not always date order (an older export
        // imported after a newer one): a later message is no context.
        let gap = after - b.created_at;
        if b.chat_id != n.chat_id || !(0..=CONTEXT_WINDOW_MS).contains(&gap) {
            break;
        }
        after = b.created_at;
        turns.push(b);
    }
    if !turns.iter().any(|b| b.author.as_deref() != Some(author)) {
        return own;
    }
    let context: Vec<String> = turns
        .iter()
        .rev()
        .map(|b| {
            let words: Vec<&str> = b.text.split_whitespace().collect();
            let tail = &words[words.len().saturating_sub(CONTEXT_WORDS)..];
            format!(
                "{}: {}",
                b.author.as_deref().unwrap_or("").trim(),
                tail.join(" ")
            )
        })
        .collect();
    format!("{own}\n({})", context.join(" / "))
}

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

#[cfg(test)]
mod embed_text_tests {
    use super::*;

    /// 25 Nov 2026 12:00 UTC, plus `min` minutes.
    fn turn(id: u64, min: i64, author: Option<&str>, text: &str) -> Note {
        Note {
            id,
            chat_id: 7,
            user_id: 1,
            message_id: Some(id as i64),
            text: text.into(),
            created_at: 1_795_608_000_000 + min * 60_000,
            edited_at: None,
            source: Source::Import,
            author: author.map(Into::into),
            voice: None,
        }
    }

    #[test]
    fn a_reply_in_a_dialogue_carries_the_turns_it_answers() {
        let q = turn(
            1,
            0,
            Some("Jana"),
            "Ich hab mich gestern bei der VHS für einen Spanischkurs angemeldet",
        );
        let d = turn(2, 1, Some("Malte"), "Schön. Dienstags?");
        let a = turn(3, 2, Some("Jana"), "Donnerstags");
        assert_eq!(
            embed_text(&a, &[d.clone(), q.clone()]),
            "25 Nov 2026, Jana: Donnerstags\n\
             (Jana: gestern bei der VHS für einen Spanischkurs angemeldet / Malte: Schön. Dienstags?)",
            "oldest first, each cut to its last 8 words"
        );
        assert!(embed_text(&q, &[])
            .ends_with("Jana: Ich hab mich gestern bei der VHS für einen Spanischkurs angemeldet"));
    }

    #[test]
    fn no_context_across_a_pause_in_a_monologue_or_for_notes_without_author() {
        let a = turn(3, 100, Some("Jana"), "Donnerstags");
        let own = "25 Nov 2026, Jana: Donnerstags";
        // The previous turn is 40 minutes older: another sitting.
        assert_eq!(
            embed_text(&a, &[turn(2, 60, Some("Malte"), "Dienstags?")]),
            own
        );
        // A pause between the two earlier turns ends the context there.
        assert_eq!(
            embed_text(
                &a,
                &[
                    turn(2, 95, Some("Malte"), "Dienstags?"),
                    turn(1, 0, Some("Jana"), "old")
                ]
            ),
            format!("{own}\n(Malte: Dienstags?)")
        );
        // A later message (an older export imported after a newer one) is
        // no context.
        assert_eq!(
            embed_text(&a, &[turn(2, 101, Some("Malte"), "Dienstags?")]),
            own
        );
        // Only the same author: a run of notes, not a conversation.
        assert_eq!(
            embed_text(&a, &[turn(2, 99, Some("Jana"), "Spanischkurs")]),
            own
        );
        // Notes typed to mnemo have no author and stand alone.
        let mut mine = turn(3, 100, None, "Donnerstags");
        mine.source = Source::Telegram;
        assert_eq!(
            embed_text(&mine, &[turn(2, 99, Some("Malte"), "Dienstags?")]),
            "25 Nov 2026: Donnerstags"
        );
    }
}
