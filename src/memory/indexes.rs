//! `Indexes`: every derived structure recall reads, in one place — the
//! lexical BM25 index, the flat vector index, the HNSW graph over it (once
//! it is large) and the per-note vote aggregates.
//!
//! All of it is rebuilt from the store by `Indexes::build` and kept in
//! step by `Indexes::apply`, which the core calls with the `IndexOp`s of
//! each transaction once it committed. Losing it loses nothing: the next
//! start builds it again (the graph is saved in the data dir only to make
//! that start fast; [`super::ann`] checks it against the stored vectors).

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{RwLock, RwLockReadGuard};

use super::ann::{self, Ann};
use super::dot::dot;
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
///   never reaches them.
/// - One lock order: lexical → turns → dates → vectors → graph → feedback.
///   Whoever holds more than one takes them in that order ([`Indexes::apply`]
///   all six, [`Indexes::search`] all but feedback); none is held across a store
///   read or a model call.
/// - Nothing here is the only copy of anything: [`Indexes::build`] makes it
///   all again from the store.
pub(crate) struct Indexes {
    lexical: RwLock<LexicalIndex>,
    /// The turns of imported conversations: sittings and speakers.
    turns: RwLock<Sittings>,
    /// Every note's date, for questions that name a time.
    dates: RwLock<Dates>,
    vectors: RwLock<VectorIndex>,
    /// The ANN graph, once the vectors number `ann_threshold`.
    ann: RwLock<Option<Ann>>,
    /// The graph changed since it was last saved.
    ann_dirty: AtomicBool,
    /// Every note's votes (aggregates + the log's tail).
    feedback: RwLock<HashMap<u64, Aggregate>>,
    /// The vector space (model + text layout) of the vectors; `None` without
    /// a model: no vectors are loaded and no graph is built.
    space: Option<String>,
    ann_threshold: usize,
}

impl Indexes {
    /// Builds everything from the store. With a vector `space`: vectors of
    /// another space (a model change) are dropped and every note queued
    /// again, stored vectors that cannot be used (another space or
    /// dimension, NaN, undecodable) are requeued, and the graph is loaded
    /// from the data dir — or built — once there are `ann_threshold`
    /// vectors. These store writes are the only ones made from here.
    pub(crate) fn build(
        store: &Store,
        space: Option<&str>,
        ann_threshold: usize,
    ) -> Result<Indexes, StoreError> {
        let (lexical, turns, dates) = rebuild_text(store)?;
        let mut vectors = VectorIndex::new(EMBED_DIM);
        let mut graph = None;
        let mut dirty = false;
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
            if vectors.len() >= ann_threshold {
                let dir = ann::dir_in(store.dir());
                let (g, how) = Ann::load_or_build(&dir, &vectors, space);
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
        Ok(Indexes {
            lexical: RwLock::new(lexical),
            turns: RwLock::new(turns),
            dates: RwLock::new(dates),
            vectors: RwLock::new(vectors),
            ann: RwLock::new(graph),
            ann_dirty: AtomicBool::new(dirty),
            feedback: RwLock::new(feedback),
            space: space.map(str::to_owned),
            ann_threshold,
        })
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
        let mut vec = write(&self.vectors);
        let mut graph = write(&self.ann);
        let mut fb = write(&self.feedback);
        // Vectors stored by this commit, not yet in the graph.
        let mut added: Vec<(u64, Vec<f32>)> = Vec::new();
        let mut any_vector = false;
        for op in ops {
            if !matches!(op, IndexOp::Vector(..)) {
                self.add_to_graph(graph.as_mut(), &mut added);
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
                    any_vector = true;
                    if vec.insert(id, chat, &v) {
                        added.push((id, v));
                    }
                    continue;
                }
            };
            vec.remove(stale);
            if let Some(g) = graph.as_mut() {
                g.remove(stale);
                self.ann_dirty.store(true, Ordering::Release);
            }
        }
        self.add_to_graph(graph.as_mut(), &mut added);
        dates.remove(&gone);
        if any_vector && graph.is_none() && vec.len() >= self.ann_threshold {
            if let Some(space) = &self.space {
                tracing::info!(
                    vectors = vec.len(),
                    "index crossed the ANN threshold; building the graph"
                );
                *graph = Some(Ann::build(&vec, space));
                self.ann_dirty.store(true, Ordering::Release);
            }
        }
        voted
    }

    /// Inserts the vectors gathered in `added` into the graph (if there is
    /// one) as one batch, and empties `added`.
    fn add_to_graph(&self, graph: Option<&mut Ann>, added: &mut Vec<(u64, Vec<f32>)>) {
        if added.is_empty() {
            return;
        }
        if let Some(g) = graph {
            let batch: Vec<(u64, &[f32])> = added.iter().map(|(id, v)| (*id, &v[..])).collect();
            g.insert_many(&batch);
            self.ann_dirty.store(true, Ordering::Release);
        }
        added.clear();
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
                .filter(|(t, _)| hood.iter().any(|&nid| idx.has_term(nid, t)))
                .map(|(_, idf)| idf)
                .sum::<f32>()
                / query_weight
        };
        let named = turns.named_speakers(chat, query);
        let span_notes = span.map(|_| in_span.as_ref().map_or(usize::MAX, Vec::len));
        let vectors = read(&self.vectors);
        let graph = read(&self.ann);
        let vec = match (query_vector, graph.as_ref()) {
            (Some(q), Some(g)) => {
                let keep = |id: u64| {
                    chat == super::Chats::ALL || vectors.chat_of(id).is_some_and(|c| chat.admits(c))
                };
                g.search(q, n, &keep)
            }
            (Some(q), None) => vectors.search_exact(q, chat, n),
            (None, _) => Vec::new(),
        };
        drop(graph);
        let mut merged = recall::merge(&lex, &vec);
        let mut dated_only = std::collections::HashSet::new();
        if let Some(ids) = in_span {
            let mut dated: Vec<(u64, Option<f32>)> = ids
                .into_iter()
                .map(|id| {
                    (
                        id,
                        query_vector.and_then(|q| Some(dot(q, vectors.get(id)?))),
                    )
                })
                .collect();
            dated.sort_by(|a, b| b.1.unwrap_or(-1.0).total_cmp(&a.1.unwrap_or(-1.0)));
            for (id, cos) in dated.into_iter().take(n) {
                merged.entry(id).or_insert_with(|| {
                    dated_only.insert(id);
                    (0.0, cos)
                });
            }
        }
        let cosine_of = |id: u64| Some(dot(query_vector?, vectors.get(id)?));
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

    /// The note of `chat` whose vector is closest to `v`, with the cosine
    /// (exact, not through the graph: duplicates must not be missed).
    pub(crate) fn nearest(&self, v: &[f32], chat: i64) -> Option<(u64, f32)> {
        read(&self.vectors)
            .search_exact(v, Some(chat), 1)
            .into_iter()
            .next()
    }

    /// Vectors in memory.
    /// Documents in the lexical index.
    pub(crate) fn lexical_len(&self) -> usize {
        read(&self.lexical).len()
    }

    pub(crate) fn vectors_len(&self) -> usize {
        read(&self.vectors).len()
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
    /// call under the writer lock).
    pub(crate) fn clear_vectors(&self) {
        *write(&self.vectors) = VectorIndex::new(EMBED_DIM);
        *write(&self.ann) = None;
    }

    /// Saves the graph in `<data_dir>/ann` if it changed since it was loaded
    /// or saved (a graph not saved is caught up or rebuilt at the next
    /// start).
    pub(crate) fn persist(&self, data_dir: &Path) {
        if !self.ann_dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let graph = read(&self.ann);
        if let Some(g) = graph.as_ref() {
            match g.save(&ann::dir_in(data_dir)) {
                Ok(()) => tracing::info!(points = g.len(), "ANN graph saved"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not save the ANN graph; it will be rebuilt")
                }
            }
        }
    }
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
