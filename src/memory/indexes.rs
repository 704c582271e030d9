//! `Indexes`: every derived structure recall reads, in one place — the
//! lexical BM25 index, the vectors (flat while few, then the HNSW graph that
//! holds the only copy of them) and the per-note vote aggregates.
//!
//! All of it is rebuilt from the store by `Indexes::build` and kept in
//! step by `Indexes::apply`, which the core calls with the `IndexOp`s of
//! each transaction once it committed. Losing it loses nothing: the next
//! start builds it again (the graph is saved in the data dir only to make
//! that start fast; [`super::ann`] checks it against the stored vectors).
//!
//! At start the lexical index and the vectors are read side by side (two
//! threads). A serving process ([`Indexes::build`] with `background`) does
//! not wait for a large memory's vectors and graph: recall answers by words
//! until they are in ([`Indexes::vectors_loading`], and the reply says so),
//! and the changes that arrive meanwhile are replayed once they are.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};

use super::ann::{self, Ann};
use super::dot::{dot_f16_f32, f16};
use super::lexical::LexicalIndex;
use super::recall;
use super::vector::VectorIndex;
use super::when::{Dates, Span};
use super::window::{self, Sittings};
use crate::models::EMBED_DIM;
use crate::store::{Aggregate, FeedbackEvent, Note, Store, StoreError};

/// A change to the derived state, applied once its transaction committed.
pub(crate) enum IndexOp {
    /// A new or changed note: (note id, chat id, the text the lexical index
    /// reads, its date, its author); see [`IndexOp::upsert`]. Its old
    /// vector, if any, is stale and dropped; the embed worker adds the new
    /// one.
    Upsert(u64, i64, String, i64, Option<String>),
    /// A deleted note: out of every index, its votes forgotten (the store
    /// deleted them with it).
    Remove(u64),
    /// A vote was logged: fold it into the in-memory feedback state.
    Vote(FeedbackEvent),
    /// A note's vector was stored: (note id, chat id, unit vector).
    Vector(u64, i64, Vec<f32>),
}

impl IndexOp {
    /// A new or changed note: the lexical index reads its
    /// [`Note::indexed_text`]; its vector is redone by the worker.
    pub(crate) fn upsert(n: &Note) -> IndexOp {
        IndexOp::Upsert(
            n.id,
            n.chat_id,
            n.indexed_text().into_owned(),
            n.created_at,
            n.author.clone(),
        )
    }
}

/// Heap bytes of the derived structures (capacities; hash tables estimated),
/// for the memory breakdown in the benches.
#[derive(Debug, Clone, Copy, Default)]
pub struct Footprint {
    pub lexical: usize,
    /// The flat vectors, or the graph side's own tables (ids, chats, rows).
    pub vectors: usize,
    /// The graphs' links on the heap (segments not yet saved, and the
    /// delta's hnsw_rs graph, estimated from its layout).
    pub graph: usize,
    /// Vectors on the heap inside the graphs.
    pub graph_vectors: usize,
    /// Saved segments, memory-mapped (file-backed, paged in on use).
    pub graph_mapped: usize,
}

/// Where the vectors are.
enum Vectors {
    /// Fewer than `ann_threshold`: flat, searched exactly.
    Flat(VectorIndex),
    /// The graph, holding the only copy.
    Graph(Box<Ann>),
    /// Being read (and the graph loaded or built) on a background thread;
    /// the changes that arrived meanwhile, replayed in order when it is done.
    Loading(Vec<Pending>),
}

enum Pending {
    Put(u64, i64, Vec<f32>),
    Drop(u64),
}

impl Vectors {
    fn len(&self) -> usize {
        match self {
            Vectors::Flat(v) => v.len(),
            Vectors::Graph(g) => g.len(),
            Vectors::Loading(_) => 0,
        }
    }

    fn get(&self, id: u64) -> Option<&[f16]> {
        match self {
            Vectors::Flat(v) => v.get(id),
            Vectors::Graph(g) => g.get(id),
            Vectors::Loading(_) => None,
        }
    }

    /// Applies a change; returns whether the graph changed.
    fn put(&mut self, id: u64, chat: i64, v: Vec<f32>) -> bool {
        match self {
            Vectors::Flat(idx) => {
                idx.insert(id, chat, &v);
                false
            }
            Vectors::Graph(g) => {
                if v.len() == g.dim() && v.iter().all(|x| x.is_finite()) {
                    g.insert(id, chat, &v);
                    true
                } else {
                    false
                }
            }
            Vectors::Loading(p) => {
                p.push(Pending::Put(id, chat, v));
                false
            }
        }
    }

    fn drop_vector(&mut self, id: u64) -> bool {
        match self {
            Vectors::Flat(idx) => {
                idx.remove(id);
                false
            }
            Vectors::Graph(g) => {
                g.remove(id);
                true
            }
            Vectors::Loading(p) => {
                p.push(Pending::Drop(id));
                false
            }
        }
    }
}

/// The vectors' shared state: the loader thread fills it in.
struct Shared {
    vectors: RwLock<Vectors>,
    /// The graph changed since it was last saved.
    ann_dirty: AtomicBool,
    /// Set when the vectors are in (not `Loading`).
    ready: Mutex<bool>,
    ready_cv: Condvar,
    /// The loader holds a clone of the store until this is set.
    store_released: Mutex<bool>,
    store_cv: Condvar,
}

/// A note the indexes found for a query, before fusion.
pub(crate) struct Match {
    pub(crate) id: u64,
    /// Its BM25 score (0 when only the vector side found it).
    pub(crate) bm25: f32,
    /// The cosine of its vector with the query's, when both exist (also for
    /// notes only the lexical side found).
    pub(crate) cosine: Option<f32>,
    /// The vector side's score: `cosine`, for a turn with its neighbours'
    /// (`Weights::vector_window`).
    pub(crate) vector: Option<f32>,
    /// The share of the query in its stretch of the sitting (`Weights::sitting`).
    pub(crate) sitting: f32,
    /// A turn by a person the query names.
    pub(crate) by_named: bool,
    /// A turn of an imported conversation.
    pub(crate) turn: bool,
    /// Found only among the notes of the time the query names.
    pub(crate) dated_only: bool,
}

/// What [`Indexes::search`] found: both sides' candidates, merged by id.
pub(crate) struct Found {
    pub(crate) matches: Vec<Match>,
    /// The query's total idf: BM25 divided by it is the share of the query
    /// a note matches.
    pub(crate) query_weight: f32,
    /// The notes written in the time the query names (`usize::MAX`: more
    /// than [`DATE_POOL`]); `None` when it names none.
    pub(crate) span_notes: Option<usize>,
}

/// The derived state of the notes in the store.
///
/// **Invariants.**
/// - Commit, then apply: [`Indexes::apply`] is called only after the
///   transaction that produced its ops committed, by a caller holding the
///   core's writer lock from before the commit until after the apply — so
///   the indexes see writes in commit order, and a rolled-back transaction
///   never reaches them. While the vectors load in the background, their
///   changes are queued in that order and replayed before anyone sees them.
/// - One lock order: lexical → turns → dates → vectors → feedback.
///   Whoever holds more than one takes them in that order
///   ([`Indexes::apply`] all five, [`Indexes::search`] all but feedback);
///   none is held across a store read or a model call.
/// - Nothing here is the only copy of anything: [`Indexes::build`] makes it
///   all again from the store.
pub(crate) struct Indexes {
    lexical: RwLock<LexicalIndex>,
    /// The turns of imported conversations: sittings and speakers.
    turns: RwLock<Sittings>,
    /// Every note's date, for questions that name a time.
    dates: RwLock<Dates>,
    shared: Arc<Shared>,
    /// Every note's votes (aggregates + the log's tail).
    feedback: RwLock<HashMap<u64, Aggregate>>,
    /// The vector space (model + text layout) of the vectors; `None` without
    /// a model: no vectors are loaded and no graph is built.
    space: Option<String>,
    ann_threshold: usize,
    /// Held by a save from start to end (one at a time).
    saving: Mutex<()>,
}

impl Indexes {
    /// Builds everything from the store. With a vector `space`: vectors of
    /// another space (a model change) are dropped and every note queued
    /// again, stored vectors that cannot be used (another space or
    /// dimension, NaN, undecodable) are requeued, and the graph is loaded
    /// from the data dir — or built — once there are `ann_threshold`
    /// vectors. These store writes are the only ones made from here. The
    /// lexical side and the vectors are read on two threads; with
    /// `background` and at least `ann_threshold` stored vectors, the
    /// lexical side is read first, alone, and this returns once it is in;
    /// the vectors follow on their own thread
    /// ([`Indexes::vectors_loading`]).
    pub(crate) fn build(
        store: &Store,
        space: Option<&str>,
        ann_threshold: usize,
        background: bool,
    ) -> Result<Indexes, StoreError> {
        if let Some(space) = space {
            if store.vector_model()?.as_deref() != Some(space) {
                let n = store.write(|tx| tx.reset_vectors(space))?;
                if n > 0 {
                    tracing::info!(
                        model = %space,
                        notes = n,
                        "embedding model changed; re-embedding every note"
                    );
                }
            }
        }
        // Everything below reads the whole file: ask for it in one sweep.
        store.read_ahead();
        let background =
            background && space.is_some() && store.vector_count()? >= ann_threshold as u64;
        let shared = Arc::new(Shared {
            vectors: RwLock::new(Vectors::Loading(Vec::new())),
            ann_dirty: AtomicBool::new(false),
            ready: Mutex::new(false),
            ready_cv: Condvar::new(),
            store_released: Mutex::new(false),
            store_cv: Condvar::new(),
        });
        let text = if background {
            // Words first, alone: the first question is answered by them,
            // and reading the vectors beside them slowed them threefold at
            // 1M notes on two cores (docs/BENCHMARKS.md).
            let text = rebuild_text(store)?;
            let (s, sp, sh) = (
                store.clone(),
                space.unwrap_or_default().to_owned(),
                shared.clone(),
            );
            std::thread::Builder::new()
                .name("mnemo-vectors".into())
                .spawn(move || {
                    let t = std::time::Instant::now();
                    let got = read_vectors(&s, &sp);
                    let dir = ann::dir_in(s.dir());
                    drop(s);
                    *lock(&sh.store_released) = true;
                    sh.store_cv.notify_all();
                    let got = got.map(|v| into_graph(v, &dir, &sp, ann_threshold));
                    install(&sh, got);
                    tracing::info!(
                        secs = t.elapsed().as_secs_f64(),
                        "vectors loaded in the background"
                    );
                })
                .map_err(|source| StoreError::Io {
                    context: "cannot start the vector loader".into(),
                    source,
                })?;
            text
        } else {
            *lock(&shared.store_released) = true;
            let (text, got) = std::thread::scope(|sc| {
                let text = sc.spawn(|| rebuild_text(store));
                let got = match space {
                    Some(sp) => read_vectors(store, sp)
                        .map(|v| into_graph(v, &ann::dir_in(store.dir()), sp, ann_threshold)),
                    None => Ok((Vectors::Flat(VectorIndex::new(EMBED_DIM)), false)),
                };
                (text.join().expect("lexical index thread"), got)
            });
            let got = got?;
            install(&shared, Ok(got));
            text?
        };
        let (lexical, turns, dates) = text;
        // Votes only tune ranking: an unreadable one must not keep mnemo from
        // starting. It stays in the store (and in the error log) untouched.
        let feedback = store.feedback_state().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot read feedback; ranking ignores votes until this is fixed");
            Default::default()
        });
        Ok(Indexes {
            lexical: RwLock::new(lexical),
            turns: RwLock::new(turns),
            dates: RwLock::new(dates),
            shared,
            feedback: RwLock::new(feedback),
            space: space.map(str::to_owned),
            ann_threshold,
            saving: Mutex::new(()),
        })
    }

    /// Whether the vectors are still being loaded in the background (recall
    /// is by words only until they are in).
    pub(crate) fn vectors_loading(&self) -> bool {
        !*lock(&self.shared.ready)
    }

    /// Blocks until the vectors are in.
    pub(crate) fn wait_vectors(&self) {
        wait_until(&self.shared.ready, &self.shared.ready_cv);
    }

    /// Applies a committed transaction's changes, in order (call after the
    /// commit, still under the writer lock). Vectors are added to the graph
    /// in batches (in parallel when large); when they pass `ann_threshold`
    /// and there is no graph yet, it is built. Returns whether votes were
    /// logged (the log may then be due for compaction).
    pub(crate) fn apply(&self, ops: Vec<IndexOp>) -> bool {
        if ops.is_empty() {
            return false;
        }
        let mut voted = false;
        let mut lex = write(&self.lexical);
        let mut turns = write(&self.turns);
        let mut dates = write(&self.dates);
        let mut gone = std::collections::HashSet::new();
        let mut vec = write(&self.shared.vectors);
        let mut fb = write(&self.feedback);
        // Vectors stored by this commit, not yet in the graph.
        let mut added: Vec<(u64, i64, Vec<f32>)> = Vec::new();
        let mut changed = false;
        for op in ops {
            if !matches!(op, IndexOp::Vector(..)) {
                changed |= add_batch(&mut vec, &mut added);
            }
            let stale = match op {
                IndexOp::Upsert(id, chat, text, at, author) => {
                    lex.insert(id, chat, &text);
                    turns.insert(id, chat, at, author.as_deref());
                    dates.insert(id, chat, at);
                    id
                }
                IndexOp::Remove(id) => {
                    lex.remove(id);
                    turns.remove(id);
                    gone.insert(id);
                    fb.remove(&id);
                    id
                }
                IndexOp::Vote(ev) => {
                    fb.entry(ev.note_id).or_default().apply(ev);
                    voted = true;
                    continue;
                }
                IndexOp::Vector(id, chat, v) => {
                    added.push((id, chat, v));
                    continue;
                }
            };
            changed |= vec.drop_vector(stale);
        }
        changed |= add_batch(&mut vec, &mut added);
        dates.remove(&gone);
        if let Vectors::Flat(idx) = &*vec {
            if idx.len() >= self.ann_threshold {
                if let Some(space) = &self.space {
                    tracing::info!(
                        vectors = idx.len(),
                        "index crossed the ANN threshold; building the graph"
                    );
                    *vec = Vectors::Graph(Box::new(Ann::build(idx, space)));
                    changed = true;
                }
            }
        }
        if changed {
            self.shared.ann_dirty.store(true, Ordering::Release);
        }
        voted
    }

    /// The lexical and vector candidates for a query: the `n` best of each
    /// side (the vector side only with a query vector; through the graph
    /// when there is one, exact otherwise), optionally in one chat, merged
    /// by id. When the question names a time (`span`), its phrase is left
    /// out of the lexical query (unless no note of these chats was written
    /// then: then it is the time of the thing asked about, and its words
    /// may be in the answer), and the notes written in the span — up to
    /// [`DATE_POOL`] of them; a wider span only boosts, in fusion — are
    /// candidates too: the `n` closest to the query vector.
    pub(crate) fn search(
        &self,
        query: &str,
        query_vector: Option<&[f32]>,
        chat: super::Chats,
        n: usize,
        w: &recall::Weights,
        span: Option<&Span>,
    ) -> Found {
        let in_span = span.and_then(|s| read(&self.dates).within(s, chat, DATE_POOL));
        // A time no note of these chats was written in is the time of the
        // thing asked about ("which festival in July?"): its words stay.
        let stripped = span
            .filter(|_| in_span.as_ref().is_none_or(|ids| !ids.is_empty()))
            .map(|s| s.strip(query));
        let words = stripped.as_deref().unwrap_or(query);
        let idx = read(&self.lexical);
        let turns = read(&self.turns);
        let lex = if turns.is_empty() || (w.window <= 0.0 && w.window_after <= 0.0) {
            idx.search(words, chat, n, w.bm25)
        } else {
            window::search(&idx, &turns, words, chat, w, n)
        };
        let query_weight = idx.query_weight(words);
        let terms = if w.sitting > 0.0 {
            idx.query_terms(words)
        } else {
            Vec::new()
        };
        // The share of the query's terms in a turn's stretch of its sitting.
        let sitting = |id: u64| -> f32 {
            if terms.is_empty() {
                return 0.0;
            }
            let mut hood: Vec<u64> = turns
                .neighbours_within(id, w.sitting_turns)
                .into_iter()
                .map(|(nid, _)| nid)
                .collect();
            hood.push(id);
            terms
                .iter()
                .filter(|(t, _)| hood.iter().any(|&nid| idx.has_term(nid, *t)))
                .map(|(_, idf)| idf)
                .sum::<f32>()
                / query_weight
        };
        let named = turns.named_speakers(chat, query);
        let span_notes = span.map(|_| in_span.as_ref().map_or(usize::MAX, Vec::len));
        let vectors = read(&self.shared.vectors);
        let vec = match (query_vector, &*vectors) {
            (Some(q), Vectors::Graph(g)) => g.search(q, n, chat),
            (Some(q), Vectors::Flat(v)) => v.search_exact(q, chat, n),
            _ => Vec::new(),
        };
        let cosine_of = |id: u64| Some(dot_f16_f32(vectors.get(id)?, query_vector?));
        let mut merged = recall::merge(&lex, &vec);
        let mut dated_only = std::collections::HashSet::new();
        if let Some(ids) = in_span {
            let mut dated: Vec<(u64, Option<f32>)> =
                ids.into_iter().map(|id| (id, cosine_of(id))).collect();
            dated.sort_by(|a, b| b.1.unwrap_or(-1.0).total_cmp(&a.1.unwrap_or(-1.0)));
            for (id, cos) in dated.into_iter().take(n) {
                merged.entry(id).or_insert_with(|| {
                    dated_only.insert(id);
                    (0.0, cos)
                });
            }
        }
        let matches = merged
            .into_iter()
            .map(|(id, (bm25, cos))| {
                let cosine = cos.or_else(|| cosine_of(id));
                let turn = turns.speaker_of(id).is_some();
                // A turn's vector side with its neighbours': the best of
                // them, over its distance.
                let vector = match cosine {
                    Some(c) if turn && w.vector_window > 0.0 => Some(
                        c + w.vector_window
                            * turns
                                .neighbours(id)
                                .into_iter()
                                .filter_map(|(nid, d)| Some(cosine_of(nid)? / d as f32))
                                .fold(0.0, f32::max),
                    ),
                    _ => cosine,
                };
                Match {
                    id,
                    bm25,
                    cosine,
                    vector,
                    sitting: if turn { sitting(id) } else { 0.0 },
                    by_named: !named.is_empty()
                        && turns.speaker_of(id).is_some_and(|s| named.contains(&s)),
                    turn,
                    dated_only: dated_only.contains(&id),
                }
            })
            .collect();
        drop(idx);
        Found {
            matches,
            query_weight,
            span_notes,
        }
    }

    /// The note of `chat` whose vector is closest to `v`, with the cosine,
    /// for repeat detection (before a note is acknowledged). Exact while
    /// the vectors are flat and for a chat of at most [`ann::EXACT_MAX`]
    /// points; a larger chat is searched through the graph, as recall
    /// does — an exact scan of a 333k-note chat took 265 ms at 1M, and a
    /// repeat (cosine ≥ `duplicate_threshold`) is the query's own
    /// neighbourhood, which the graph search finds. `None` while the
    /// vectors load.
    pub(crate) fn nearest(&self, v: &[f32], chat: i64) -> Option<(u64, f32)> {
        let vectors = read(&self.shared.vectors);
        let hits = match &*vectors {
            Vectors::Flat(idx) => idx.search_exact(v, Some(chat), 1),
            Vectors::Graph(g) => g.search(v, 1, super::Chats::one(chat)),
            Vectors::Loading(_) => Vec::new(),
        };
        hits.into_iter().next()
    }

    /// Documents in the lexical index.
    pub(crate) fn lexical_len(&self) -> usize {
        read(&self.lexical).len()
    }

    /// Vectors in memory (0 while they load).
    pub(crate) fn vectors_len(&self) -> usize {
        read(&self.shared.vectors).len()
    }

    /// Bytes each derived structure holds on the heap (the graph's part is
    /// estimated by a scan of its points: for benches).
    pub(crate) fn footprint(&self) -> Footprint {
        let lexical = read(&self.lexical).heap_bytes();
        let vectors = read(&self.shared.vectors);
        match &*vectors {
            Vectors::Flat(v) => Footprint {
                lexical,
                vectors: v.heap_bytes(),
                ..Default::default()
            },
            Vectors::Graph(g) => {
                let ((graph, graph_vectors), graph_mapped) = g.graph_bytes();
                Footprint {
                    lexical,
                    vectors: g.heap_bytes(),
                    graph,
                    graph_vectors,
                    graph_mapped,
                }
            }
            Vectors::Loading(_) => Footprint {
                lexical,
                ..Default::default()
            },
        }
    }

    /// Every note's votes, for reading (ranking, /feedback, counts).
    pub(crate) fn feedback(&self) -> RwLockReadGuard<'_, HashMap<u64, Aggregate>> {
        read(&self.feedback)
    }

    /// Rebuilds the lexical index from the store's notes (call under the
    /// writer lock).
    pub(crate) fn rebuild_lexical(&self, store: &Store) -> Result<(), StoreError> {
        let (lex, turns, dates) = rebuild_text(store)?;
        *write(&self.lexical) = lex;
        *write(&self.turns) = turns;
        *write(&self.dates) = dates;
        Ok(())
    }

    /// Drops every vector and the graph (the store's vectors were reset;
    /// call under the writer lock). Waits for a background load first.
    pub(crate) fn clear_vectors(&self) {
        self.wait_vectors();
        *write(&self.shared.vectors) = Vectors::Flat(VectorIndex::new(EMBED_DIM));
    }

    /// Saves the graph in `<data_dir>/ann` if it changed since it was loaded
    /// or saved (a graph not saved is caught up or rebuilt at the next
    /// start), merging the newest segments with `merge`. Searches and writes
    /// wait only for the two quick steps ([`Ann::begin_save`],
    /// [`Ann::finish_save`]); one save runs at a time, and the one on the
    /// way out (`merge` false) does not wait for a running one. A failed or
    /// panicked save is tried again at the next.
    pub(crate) fn persist(&self, data_dir: &Path, merge: bool) {
        // Without `merge` (the way out) a save already running is not
        // waited for: it may be building a merge for minutes, and what it
        // does not save is caught up at the next start.
        let _one = if merge {
            lock(&self.saving)
        } else {
            match self.saving.try_lock() {
                Ok(g) => g,
                Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => {
                    tracing::info!("a graph save is running; not waiting for it");
                    return;
                }
            }
        };
        if !self.shared.ann_dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        // Dirty again unless the save ends well (an error or a panic).
        struct Redo<'a>(&'a AtomicBool, bool);
        impl Drop for Redo<'_> {
            fn drop(&mut self) {
                if !self.1 {
                    self.0.store(true, Ordering::Release);
                }
            }
        }
        let mut redo = Redo(&self.shared.ann_dirty, false);
        let plan = match &mut *write(&self.shared.vectors) {
            Vectors::Graph(g) => g.begin_save(merge),
            _ => {
                redo.1 = true;
                return;
            }
        };
        let dir = ann::dir_in(data_dir);
        let t = std::time::Instant::now();
        tracing::debug!(merge, "ANN graph save started");
        let saved = plan.run(&dir).and_then(|work| {
            let m = match &mut *write(&self.shared.vectors) {
                Vectors::Graph(g) => g.finish_save(work)?,
                _ => anyhow::bail!("the graph was dropped while it was being saved"),
            };
            ann::write_manifest(&dir, &m)?;
            Ok(m.segments.iter().map(|s| s.points).collect::<Vec<_>>())
        });
        match saved {
            Ok(segments) => {
                redo.1 = true;
                tracing::info!(
                    ?segments,
                    secs = t.elapsed().as_secs_f64(),
                    "ANN graph saved"
                )
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not save the ANN graph; trying again at the next save")
            }
        }
    }
}

impl Drop for Indexes {
    /// A background load still reading the store holds it open: wait for
    /// that part (the graph load after it holds nothing and is dropped with
    /// its result), so the store can be opened again as soon as this is gone.
    fn drop(&mut self) {
        wait_until(&self.shared.store_released, &self.shared.store_cv);
    }
}

/// Inserts the vectors gathered in `added` as one batch (into the graph, in
/// parallel when large), and empties `added`. Returns whether the graph
/// changed.
fn add_batch(vec: &mut Vectors, added: &mut Vec<(u64, i64, Vec<f32>)>) -> bool {
    if added.is_empty() {
        return false;
    }
    let changed = match vec {
        Vectors::Graph(g) => {
            let halves: Vec<(u64, i64, Vec<f16>)> = added
                .iter()
                .filter(|(_, _, v)| v.len() == g.dim() && v.iter().all(|x| x.is_finite()))
                .map(|(id, chat, v)| (*id, *chat, super::dot::to_f16(v)))
                .collect();
            let batch: Vec<(u64, i64, &[f16])> =
                halves.iter().map(|(id, c, v)| (*id, *c, &v[..])).collect();
            g.insert_many(&batch);
            !batch.is_empty()
        }
        _ => {
            let mut changed = false;
            for (id, chat, v) in added.drain(..) {
                changed |= vec.put(id, chat, v);
            }
            changed
        }
    };
    added.clear();
    changed
}

/// Every stored vector of `space` (flat, half floats); stale or unusable
/// ones are requeued for embedding.
fn read_vectors(store: &Store, space: &str) -> Result<VectorIndex, StoreError> {
    let mut vectors = VectorIndex::new(EMBED_DIM);
    let mut bad = Vec::new();
    let mut stale = store.for_each_vector(space, EMBED_DIM, |id, chat, v| {
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
    Ok(vectors)
}

/// The graph over `vectors` (loaded from `dir` or built) once they number
/// `ann_threshold`, else the flat index; and whether it differs from what
/// is saved.
fn into_graph(
    vectors: VectorIndex,
    dir: &Path,
    space: &str,
    ann_threshold: usize,
) -> (Vectors, bool) {
    if vectors.len() < ann_threshold {
        return (Vectors::Flat(vectors), false);
    }
    let (g, how) = Ann::load_or_build(dir, &vectors, space);
    drop(vectors);
    // The flat copy and hnsw_rs' temporary tables of a load are freed now,
    // scattered between the graph's many small records: hand the free pages
    // back to the system instead of keeping them as the process's own.
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases free heap pages.
    unsafe {
        libc::malloc_trim(0);
    }
    tracing::info!(?how, points = g.len(), "ANN graph ready");
    (
        Vectors::Graph(Box::new(g)),
        how != ann::Origin::Loaded { added: 0 },
    )
}

/// Puts loaded vectors in place, replaying what arrived while they loaded,
/// and wakes whoever waits for them. A failed read leaves the vectors empty
/// (recall by words; the next start reads them again).
fn install(shared: &Shared, got: Result<(Vectors, bool), StoreError>) {
    let mut vec = write(&shared.vectors);
    let pending = match std::mem::replace(&mut *vec, Vectors::Loading(Vec::new())) {
        Vectors::Loading(p) => p,
        _ => Vec::new(),
    };
    let (mut loaded, mut dirty) = got.unwrap_or_else(|e| {
        tracing::error!(error = %e, "cannot read the stored vectors; recall is by words only until the next start");
        (Vectors::Flat(VectorIndex::new(EMBED_DIM)), false)
    });
    let mut added = Vec::new();
    for p in pending {
        match p {
            Pending::Put(id, chat, v) => added.push((id, chat, v)),
            Pending::Drop(id) => {
                dirty |= add_batch(&mut loaded, &mut added);
                dirty |= loaded.drop_vector(id);
            }
        }
    }
    dirty |= add_batch(&mut loaded, &mut added);
    *vec = loaded;
    if dirty {
        shared.ann_dirty.store(true, Ordering::Release);
    }
    drop(vec);
    *lock(&shared.ready) = true;
    shared.ready_cv.notify_all();
}

/// The notes of a named time that are searched one by one (a wider span
/// only boosts the candidates found otherwise).
pub(crate) const DATE_POOL: usize = 4096;

/// The lexical index, the conversations' turns and the notes' dates, from
/// one pass over the store's notes.
fn rebuild_text(store: &Store) -> Result<(LexicalIndex, Sittings, Dates), StoreError> {
    let mut lex = LexicalIndex::new();
    let mut turns = Sittings::new();
    let mut dates = Dates::new();
    store.for_each_memory(|n| {
        lex.insert(n.id, n.chat_id, &n.indexed_text());
        turns.insert(n.id, n.chat_id, n.created_at, n.author.as_deref());
        dates.load(n.id, n.chat_id, n.created_at);
    })?;
    dates.merge();
    Ok((lex, turns, dates))
}

/// A read lock that survives a panicked writer: the state is derived, and
/// a half-applied change is no worse than a stale one.
fn read<T>(l: &RwLock<T>) -> RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|p| p.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|p| p.into_inner())
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Blocks until `flag` is set (whoever sets it notifies `cv`).
fn wait_until(flag: &Mutex<bool>, cv: &Condvar) {
    let mut set = lock(flag);
    while !*set {
        set = cv.wait(set).unwrap_or_else(|p| p.into_inner());
    }
}
