//! Approximate nearest neighbours over note vectors, persisted in the data
//! dir so a large memory neither rebuilds nor re-reads a graph at start.
//!
//! **Segments.** hnsw_rs builds the graphs; once built, each is frozen into
//! a [`Segment`] (its links as flat `u32` arrays beside the points' half-float
//! vectors, in one file read memory-mapped) and hnsw_rs' own structure is
//! dropped: it keeps every link as a reference-counted heap record, ~2.2 GB
//! for 1M points, and took ~20 s to read back. Points added since the last
//! save go into a small hnsw_rs graph of their own (the *delta*, searched
//! exactly up to [`DELTA_EXACT`] points). A save freezes the delta into a
//! new segment and merges the newest segments while the last holds at least
//! a quarter of the live points of the one before ([`MERGE_RATIO`]: a merge
//! is one hnsw_rs build over their live points), so their number stays
//! logarithmic and each point is rebuilt a logarithmic number of times.
//!
//! **Saving does not stop the bot.** A save is three steps
//! ([`Ann::begin_save`], [`SavePlan::run`], [`Ann::finish_save`] and
//! [`write_manifest`]): only the first (freezing the delta) and the third
//! (putting the new segments in place) need the graph locked, and both are
//! quick; the merge and the file writes run on the segments, which are
//! immutable and shared. Points added meanwhile wait in the delta; points
//! deleted meanwhile stay dead in the merged segment.
//!
//! **One copy of the vectors.** The segments and the delta hold each note's
//! vector (a delta point's also in hnsw_rs' graph until the next save), and
//! nothing else does: the exact passes (a lexical candidate's cosine,
//! duplicate detection) read a point's vector by its id ([`Ann::get`],
//! [`Ann::search_exact`]).
//!
//! Files in `<data dir>/ann/`: `seg-NNNNNNNN.ann` (one per segment, never
//! rewritten: a save writes new names) and `manifest.json` ([`Manifest`]:
//! model id, dimension, each segment's file and sha256, and the note id
//! behind every point). The manifest is written last and other files are
//! removed after it, so a crash mid-save leaves the previous manifest with
//! its files.
//!
//! Points are not deleted from a graph. A note that was deleted or edited
//! keeps its old point as a tombstone that searches filter out (a merge
//! drops them); points the segments lack (notes embedded since the last
//! save) are inserted at load. When tombstones pass a quarter of the
//! points, or a file is missing, truncated, garbled or from another model,
//! the graph is rebuilt from the vectors in redb — which are the truth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use hnsw_rs::hnsw::Hnsw;
use serde::{Deserialize, Serialize};

use super::dot::{dot_f16_f32, f16, to_f16, UnitDot};
use super::segment::Segment;
use super::vector::VectorIndex;
use super::Chats;

const MANIFEST: &str = "manifest.json";
/// How a graph is built: links per point (twice as many on the ground
/// layer) and the beam while inserting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub m: usize,
    pub ef_construction: usize,
    /// Fill a point's links up to the maximum with the nearest candidates
    /// the neighbour-selection heuristic pruned (hnsw_rs' `keep_pruned`).
    pub keep_pruned: bool,
}

/// The graph mnemo builds: 16 links per point (32 on the ground layer), ef
/// 200 at build time. On clusters of 2,000 near-equidistant points (the
/// hard part of the 1M bench set) ef 64 found 0.87 of the true top 10 at
/// search ef 128, ef 200 0.99, for twice the build time and ~14% more
/// links (`cargo bench --bench ann`, docs/BENCHMARKS.md). hnsw_rs' pruned
/// candidates are not kept: filling every list with them made a 1M graph
/// far worse (recall@10 0.62): a point inserted from the wrong cluster
/// then links only there, and is the first evicted from those lists. Such
/// points are relinked where a graph is built or written instead
/// ([`Segment::relink_short`]). A graph saved with other parameters is
/// still read: they shape it, not its format.
pub const PARAMS: Params = Params {
    m: 16,
    ef_construction: 200,
    keep_pruned: false,
};
/// The search beam: candidates kept while walking the graph (at least k).
/// At 1M synthetic vectors in clusters of 2,000 (docs/BENCHMARKS.md) a
/// reloaded graph, relinked, finds 0.992 of the true top 10 at 128, 0.998
/// at 256, for ~0.1–1 ms more per search.
pub const EF_SEARCH: usize = 256;
/// A chat with at most this many points is searched exactly (a scan of its
/// points: ~2 ms per 20k); larger ones through the graph.
pub const EXACT_MAX: usize = 20_000;
/// The widest beam a search through the graph uses.
const BEAM_MAX: usize = 4096;
/// Batches at least this large are inserted in parallel.
const PARALLEL_FROM: usize = 32;
/// The delta (points added since the last save) and segments of at most
/// this many points are scanned exactly rather than walked.
pub const DELTA_EXACT: usize = 4096;
/// The newest segment is merged with the one before it once it holds at
/// least 1 / `MERGE_RATIO` as many points.
const MERGE_RATIO: usize = 4;

/// Version of the files' layout and distance. A manifest of another
/// format (or without one) names a graph this build does not read: it is
/// rebuilt. 2: [`UnitDot`] on unscaled vectors (1 scaled them for anndists'
/// `DistDot`, which asserted `a·b <= 1`); 3: half-float points (hnsw_rs'
/// dump); 4: frozen segments.
const FORMAT: u32 = 4;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub model_id: String,
    pub dim: usize,
    /// The segments in order: their points are numbered on from the last's.
    pub segments: Vec<SegmentFile>,
    /// `points[i]` is the note id of point `i`.
    pub points: Vec<u64>,
    /// `hashes[i]` fingerprints point `i`'s vector, to tell edited notes.
    pub hashes: Vec<u64>,
}

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct SegmentFile {
    pub file: String,
    pub points: usize,
    /// sha256 of the file: a segment is only used when it is byte for byte
    /// what was written (its structure is checked too, but not its vectors).
    pub sha256: String,
}

/// A segment and where its points start; `file` (name, sha256) once saved.
#[derive(Clone)]
struct Frozen {
    seg: Arc<Segment>,
    start: usize,
    file: Option<(String, String)>,
}

pub struct Ann {
    /// Tells this graph from any other (a save's last step checks it).
    generation: u64,
    segments: Vec<Frozen>,
    /// hnsw_rs' graph of the points after the segments (its ids count from
    /// the first of them), and their vectors, flat.
    delta: Hnsw<'static, f16, UnitDot>,
    delta_rows: Vec<f16>,
    params: Params,
    /// Point → note id.
    points: Vec<u64>,
    /// Point → fingerprint of its vector.
    hashes: Vec<u64>,
    /// Point → the note's chat.
    chats: Vec<i64>,
    /// Point → whether it is its note's live point (not a tombstone).
    alive: Vec<bool>,
    /// Live points by chat.
    per_chat: HashMap<i64, usize>,
    /// Chats of at most this many points are searched exactly.
    exact_max: usize,
    /// Note id → its live point.
    live: HashMap<u64, usize>,
    model_id: String,
    dim: usize,
}

/// How the graph came to be, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded { added: usize },
    Rebuilt,
}

fn new_delta(p: Params) -> Hnsw<'static, f16, UnitDot> {
    new_hnsw(p, 1024)
}

fn new_hnsw(p: Params, n: usize) -> Hnsw<'static, f16, UnitDot> {
    let mut g = Hnsw::new(p.m, n, 16, p.ef_construction, UnitDot);
    g.set_keeping_pruned(p.keep_pruned);
    g
}

/// hnsw_rs' graph over `rows` (ids their positions), frozen, its weakly
/// linked points relinked ([`Segment::relink_short`]); none for no rows.
fn build_segment(rows: &[&[f16]], dim: usize, p: Params) -> Option<Segment> {
    if rows.is_empty() {
        return None;
    }
    let graph = new_hnsw(p, rows.len().max(1024));
    let points: Vec<(&[f16], usize)> = rows.iter().enumerate().map(|(i, r)| (*r, i)).collect();
    if points.len() < PARALLEL_FROM {
        points.iter().for_each(|p| graph.insert_slice(*p));
    } else {
        graph.parallel_insert_slice(&points);
    }
    let seg = Segment::freeze(&graph, rows.len(), dim, |i| rows[i]);
    // hnsw_rs' records (~2 GB at 1M) are not needed for the walks.
    drop(graph);
    Some(seg.relink_short().unwrap_or(seg))
}

impl Ann {
    fn empty(model_id: &str, dim: usize, p: Params) -> Ann {
        static GENERATION: AtomicU64 = AtomicU64::new(0);
        Ann {
            generation: GENERATION.fetch_add(1, Ordering::Relaxed),
            segments: Vec::new(),
            delta: new_delta(p),
            delta_rows: Vec::new(),
            params: p,
            points: Vec::new(),
            hashes: Vec::new(),
            chats: Vec::new(),
            alive: Vec::new(),
            per_chat: HashMap::new(),
            exact_max: EXACT_MAX,
            live: HashMap::new(),
            model_id: model_id.to_owned(),
            dim,
        }
    }

    /// Builds a graph over every vector in `idx`.
    pub fn build(idx: &VectorIndex, model_id: &str) -> Ann {
        Ann::build_with(idx, model_id, PARAMS)
    }

    /// [`Ann::build`] with other parameters (benches/ann.rs compares them).
    pub fn build_with(idx: &VectorIndex, model_id: &str, p: Params) -> Ann {
        let mut ann = Ann::empty(model_id, idx.dim(), p);
        let all: Vec<(u64, i64, &[f16])> = idx.iter().collect();
        let rows: Vec<&[f16]> = all.iter().map(|x| x.2).collect();
        if let Some(seg) = build_segment(&rows, idx.dim(), p) {
            ann.segments.push(Frozen {
                seg: Arc::new(seg),
                start: 0,
                file: None,
            });
        }
        for (id, chat, v) in all {
            ann.push_point(id, chat, v);
        }
        ann
    }

    /// Chats of at most `n` points are searched exactly (default
    /// [`EXACT_MAX`]; tests set 0 to search every chat through the graph).
    pub fn set_exact_max(&mut self, n: usize) {
        self.exact_max = n;
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.live.len()
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    pub fn tombstones(&self) -> usize {
        self.points.len() - self.live.len()
    }

    /// Ground-layer points of the segments that no link reaches
    /// ([`Segment::orphans`]).
    pub fn orphans(&self) -> usize {
        self.segments.iter().map(|f| f.seg.orphans()).sum()
    }

    /// Ground-layer points of the segments with fewer than `min` in-links.
    pub fn thin(&self, min: u32) -> usize {
        self.segments.iter().map(|f| f.seg.thin(min)).sum()
    }

    /// Ground-layer points of the segments with fewer than `min` links.
    pub fn short(&self, min: usize) -> usize {
        self.segments.iter().map(|f| f.seg.short(min)).sum()
    }

    /// Lays every segment out again with the repair of unreachable points
    /// (for a graph frozen without it: benches compare the two; the next
    /// save writes them to new files).
    pub fn relink(&mut self) {
        for f in &mut self.segments {
            f.seg = Arc::new(f.seg.relinked());
            f.file = None;
        }
    }

    /// Points in each segment, oldest first, then in the delta.
    pub fn shape(&self) -> (Vec<usize>, usize) {
        (
            self.segments.iter().map(|f| f.seg.len()).collect(),
            self.points.len() - self.delta_start(),
        )
    }

    /// Adds (or replaces) a note's vector.
    pub fn insert(&mut self, id: u64, chat: i64, v: &[f32]) {
        let h = to_f16(v);
        self.insert_many(&[(id, chat, &h[..])]);
    }

    /// Adds (or replaces) many notes' vectors, into the delta. Batches are
    /// inserted on every core (hnsw_rs' parallel insert: the graph's shape
    /// then depends on thread timing, its quality does not).
    pub fn insert_many(&mut self, batch: &[(u64, i64, &[f16])]) {
        if batch.is_empty() {
            return;
        }
        let first = self.points.len() - self.delta_start();
        let points: Vec<(&[f16], usize)> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, _, v))| (*v, first + i))
            .collect();
        if points.len() < PARALLEL_FROM {
            points.iter().for_each(|p| self.delta.insert_slice(*p));
        } else {
            self.delta.parallel_insert_slice(&points);
        }
        for (id, chat, v) in batch {
            self.delta_rows.extend_from_slice(v);
            self.push_point(*id, *chat, v);
        }
    }

    /// Records a new point for note `id` (the last), killing its old one.
    fn push_point(&mut self, id: u64, chat: i64, v: &[f16]) {
        let p = self.points.len();
        if let Some(old) = self.live.insert(id, p) {
            self.kill(old);
        }
        *self.per_chat.entry(chat).or_default() += 1;
        self.points.push(id);
        self.hashes.push(fingerprint(v));
        self.chats.push(chat);
        self.alive.push(true);
    }

    /// The first point of the delta (all before it are in segments).
    fn delta_start(&self) -> usize {
        self.segments.last().map_or(0, |f| f.start + f.seg.len())
    }

    pub fn remove(&mut self, id: u64) {
        if let Some(p) = self.live.remove(&id) {
            self.kill(p);
        }
    }

    /// Point `p` becomes a tombstone.
    fn kill(&mut self, p: usize) {
        if std::mem::replace(&mut self.alive[p], false) {
            if let Some(n) = self.per_chat.get_mut(&self.chats[p]) {
                *n = n.saturating_sub(1);
            }
        }
    }

    fn row(&self, p: usize) -> &[f16] {
        let ds = self.delta_start();
        if p >= ds {
            let i = p - ds;
            return &self.delta_rows[i * self.dim..(i + 1) * self.dim];
        }
        row_of(&self.segments, p)
    }

    /// Note `id`'s vector, as the graph holds it.
    pub fn get(&self, id: u64) -> Option<&[f16]> {
        Some(self.row(*self.live.get(&id)?))
    }

    pub fn chat_of(&self, id: u64) -> Option<i64> {
        self.live.get(&id).map(|&p| self.chats[p])
    }

    /// Every live (id, chat, vector).
    pub fn iter(&self) -> impl Iterator<Item = (u64, i64, &[f16])> + '_ {
        (0..self.points.len())
            .filter(|&p| self.alive[p])
            .map(|p| (self.points[p], self.chats[p], self.row(p)))
    }

    /// Top `k` (note id, cosine) among the live points of `chats`.
    pub fn search(&self, q: &[f32], k: usize, chats: Chats) -> Vec<(u64, f32)> {
        self.search_ef(q, k, EF_SEARCH, chats)
    }

    /// [`Ann::search`] with a given beam width (benches sweep it).
    ///
    /// Graphs are searched unfiltered with the beam widened by the share of
    /// points that can qualify (the chat's live points among all,
    /// tombstones included), and the hits are filtered after (hnsw_rs'
    /// filtered search never stops early: hundreds of ms at 100k points for
    /// one chat in three). A chat of at most [`EXACT_MAX`] points, or a
    /// search that came back short, is answered exactly. Each large segment
    /// is walked ([`Segment::walk`]), small ones and a small delta scanned,
    /// a large delta searched by hnsw_rs; cosines are with the query in
    /// full precision.
    pub fn search_ef(&self, q: &[f32], k: usize, ef: usize, chats: Chats) -> Vec<(u64, f32)> {
        if q.len() != self.dim || k == 0 || self.live.is_empty() {
            return Vec::new();
        }
        let eligible = match chats.ids() {
            None => self.live.len(),
            Some(cs) => cs
                .iter()
                .map(|c| self.per_chat.get(c).copied().unwrap_or(0))
                .sum(),
        };
        if eligible == 0 {
            return Vec::new();
        }
        if chats != Chats::ALL && eligible <= self.exact_max {
            return self.search_exact(q, chats, k);
        }
        let ef = ef.max(k);
        let beam = (ef * self.points.len())
            .div_ceil(eligible)
            .clamp(ef, BEAM_MAX);
        let wanted = |p: &usize| self.alive[*p] && chats.admits(self.chats[*p]);
        let cos = |p: usize| (p, dot_f16_f32(self.row(p), q));
        let mut found: Vec<(usize, f32)> = Vec::new();
        for f in &self.segments {
            if f.seg.walkable() && f.seg.len() > DELTA_EXACT {
                found.extend(
                    f.seg
                        .walk(q, beam)
                        .into_iter()
                        .map(|(p, c)| (f.start + p, c))
                        .filter(|(p, _)| wanted(p)),
                );
            } else {
                found.extend((f.start..f.start + f.seg.len()).filter(wanted).map(cos));
            }
        }
        let ds = self.delta_start();
        if self.points.len() - ds <= DELTA_EXACT {
            found.extend((ds..self.points.len()).filter(wanted).map(cos));
        } else {
            found.extend(
                self.delta
                    .search(&to_f16(q), beam, beam)
                    .into_iter()
                    .map(|n| ds + n.d_id)
                    .filter(|p| *p < self.points.len() && wanted(p))
                    .map(cos),
            );
        }
        let mut hits: Vec<(u64, f32)> = found
            .into_iter()
            .map(|(p, c)| (self.points[p], c))
            .collect();
        if hits.len() < k.min(eligible) {
            return self.search_exact(q, chats, k);
        }
        super::vector::top(&mut hits, k);
        hits
    }

    /// Exact top `k` by cosine over the live points of `chat`, reading every
    /// vector from the graph (duplicate detection must not miss one).
    pub fn search_exact(&self, q: &[f32], chat: Chats, k: usize) -> Vec<(u64, f32)> {
        if q.len() != self.dim || k == 0 {
            return Vec::new();
        }
        let mut scored: Vec<(u64, f32)> = (0..self.points.len())
            .filter(|&p| self.alive[p] && chat.admits(self.chats[p]))
            .map(|p| (self.points[p], dot_f16_f32(self.row(p), q)))
            .collect();
        super::vector::top(&mut scored, k);
        scored
    }

    /// Heap bytes of this side's tables and the delta's vectors (not the
    /// graphs: see [`Ann::graph_bytes`]).
    pub fn heap_bytes(&self) -> usize {
        self.delta_rows.capacity() * 2
            + self.points.capacity() * 8
            + self.hashes.capacity() * 8
            + self.chats.capacity() * 8
            + self.alive.capacity()
            + self.live.capacity() * (8 + 8 + 1)
            + self.per_chat.capacity() * (8 + 8 + 1)
    }

    /// The graphs' bytes as (links, vectors) on the heap, and the bytes of
    /// the segments read memory-mapped (file-backed: the kernel pages them
    /// in and drops them). The delta's hnsw_rs graph is estimated from its
    /// layout (0.3): per point ~540 bytes and a copy of its vector, per
    /// link ~56 (hnsw_rs has no count of its own memory).
    pub fn graph_bytes(&self) -> ((usize, usize), usize) {
        let (mut links, mut vectors, mut mapped) = (0, 0, 0);
        for f in &self.segments {
            let (l, v) = f.seg.sizes();
            if f.seg.is_mapped() {
                mapped += l + v;
            } else {
                links += l;
                vectors += v;
            }
        }
        let delta = self.points.len() - self.delta_start();
        links += delta * (540 + 24 * 56);
        vectors += delta * self.dim * 2;
        ((links, vectors), mapped)
    }

    /// Saves into `dir` in one go (tests and benches; the bot saves in the
    /// steps below so that searches and writes do not wait on it).
    pub fn save(&mut self, dir: &Path) -> anyhow::Result<()> {
        let work = self.begin_save(true).run(dir)?;
        let m = self.finish_save(work)?;
        write_manifest(dir, &m)
    }

    /// The first step of a save (call with the graph locked for writing;
    /// quick): freezes the delta into a segment, and plans the merge of the
    /// newest segments while the last holds at least 1 / [`MERGE_RATIO`] as
    /// many live points as the one before (only with `merge`: a merge is
    /// one hnsw_rs build over the live points of those segments, minutes at
    /// a million).
    pub fn begin_save(&mut self, merge: bool) -> SavePlan {
        let ds = self.delta_start();
        let nd = self.points.len() - ds;
        if nd > 0 {
            let rows = &self.delta_rows;
            let dim = self.dim;
            let seg = Segment::freeze(&self.delta, nd, dim, |i| &rows[i * dim..(i + 1) * dim]);
            self.segments.push(Frozen {
                seg: Arc::new(seg),
                start: ds,
                file: None,
            });
            self.delta = new_delta(self.params);
            self.delta_rows = Vec::new();
        }
        let live: Vec<usize> = self
            .segments
            .iter()
            .map(|f| {
                (f.start..f.start + f.seg.len())
                    .filter(|&p| self.alive[p])
                    .count()
            })
            .collect();
        // The newest segments that merge: a suffix, grown while the merged
        // part holds at least 1 / MERGE_RATIO of the one before it.
        let n = live.len();
        let mut from = n.saturating_sub(1);
        if merge && n >= 2 {
            let mut acc = live[n - 1];
            while from >= 1 && acc * MERGE_RATIO >= live[from - 1] {
                acc += live[from - 1];
                from -= 1;
            }
        }
        let merge = (from + 1 < n).then(|| {
            let f = &self.segments[from];
            Merge {
                from,
                // Up to the end: the delta was just frozen.
                keep: (f.start..self.points.len())
                    .filter(|&p| self.alive[p])
                    .collect(),
            }
        });
        SavePlan {
            generation: self.generation,
            dim: self.dim,
            params: self.params,
            segments: self.segments.clone(),
            merge,
        }
    }

    /// The third step of a save (call with the graph locked for writing;
    /// quick): puts the written (and merged) segments in place — a merged
    /// segment's points renumbered, those deleted meanwhile left dead — and
    /// returns the manifest to write. Refused if the graph changed under the
    /// save other than by new points (another save, another graph).
    pub fn finish_save(&mut self, work: SaveWork) -> anyhow::Result<Manifest> {
        let SaveWork { plan, segments } = work;
        anyhow::ensure!(
            plan.generation == self.generation
                && plan.segments.len() == self.segments.len()
                && plan
                    .segments
                    .iter()
                    .zip(&self.segments)
                    .all(|(a, b)| Arc::ptr_eq(&a.seg, &b.seg)),
            "the graph changed while it was being saved"
        );
        if let Some(m) = &plan.merge {
            let start = self.segments[m.from].start;
            let end = self.delta_start();
            let take = |p: usize| (self.points[p], self.hashes[p], self.chats[p], self.alive[p]);
            let merged: Vec<_> = m.keep.iter().map(|&p| take(p)).collect();
            // The delta's points follow: renumbered, their graph ids (from
            // the delta's start) unchanged.
            let delta: Vec<_> = (end..self.points.len()).map(take).collect();
            self.points.truncate(start);
            self.hashes.truncate(start);
            self.chats.truncate(start);
            self.alive.truncate(start);
            for (id, hash, chat, alive) in merged.into_iter().chain(delta) {
                if alive {
                    self.live.insert(id, self.points.len());
                }
                self.points.push(id);
                self.hashes.push(hash);
                self.chats.push(chat);
                self.alive.push(alive);
            }
        }
        self.segments = segments;
        let ds = self.delta_start();
        Ok(Manifest {
            format: FORMAT,
            model_id: self.model_id.clone(),
            dim: self.dim,
            segments: self
                .segments
                .iter()
                .map(|f| {
                    let (file, sha256) = f.file.clone().expect("written by the save");
                    SegmentFile {
                        file,
                        points: f.seg.len(),
                        sha256,
                    }
                })
                .collect(),
            points: self.points[..ds].to_vec(),
            hashes: self.hashes[..ds].to_vec(),
        })
    }

    /// Loads the graph in `dir` and brings it in line with `idx` (the truth),
    /// or rebuilds it when it is missing, damaged, stale beyond repair or
    /// from another model.
    pub fn load_or_build(dir: &Path, idx: &VectorIndex, model_id: &str) -> (Ann, Origin) {
        match Self::load(dir, idx, model_id) {
            Ok((ann, added)) => (ann, Origin::Loaded { added }),
            Err(e) => {
                tracing::info!(reason = %e, vectors = idx.len(), "building the ANN graph");
                (Ann::build(idx, model_id), Origin::Rebuilt)
            }
        }
    }

    fn load(dir: &Path, idx: &VectorIndex, model_id: &str) -> anyhow::Result<(Ann, usize)> {
        let t = std::time::Instant::now();
        let m: Manifest = serde_json::from_slice(&std::fs::read(dir.join(MANIFEST))?)?;
        anyhow::ensure!(m.format == FORMAT, "graph files are of another format");
        anyhow::ensure!(
            m.model_id == model_id && m.dim == idx.dim(),
            "graph is for another model"
        );
        anyhow::ensure!(m.hashes.len() == m.points.len(), "manifest is inconsistent");
        let mut ann = Ann::empty(model_id, idx.dim(), PARAMS);
        let mut start = 0;
        for s in &m.segments {
            anyhow::ensure!(
                segment_number(&s.file).is_some(),
                "manifest names a file that is not a segment"
            );
            // Checked by reading the file, not through the map: the vectors'
            // pages then stay out of this process until a search touches
            // them (opening reads the links through the map, to check them).
            let path = dir.join(&s.file);
            anyhow::ensure!(
                crate::models::sha256_file(&path)? == s.sha256,
                "graph files do not match their manifest (damaged or partly written)"
            );
            let seg = Segment::open(&path, idx.dim())?;
            anyhow::ensure!(seg.len() == s.points, "graph and manifest disagree");
            ann.segments.push(Frozen {
                seg: Arc::new(seg),
                start,
                file: Some((s.file.clone(), s.sha256.clone())),
            });
            start += s.points;
        }
        anyhow::ensure!(start == m.points.len(), "graph and manifest disagree");
        let checked = t.elapsed();
        let n = m.points.len();
        ann.points = m.points;
        ann.hashes = m.hashes;
        ann.chats = vec![0; n];
        ann.alive = vec![false; n];
        ann.live.reserve(idx.len());
        // Live points are those whose stored vector is still the one in the graph.
        let mut last: HashMap<u64, usize> = HashMap::with_capacity(n);
        for (p, id) in ann.points.iter().enumerate() {
            last.insert(*id, p);
        }
        let mut missing = Vec::new();
        for (id, chat, v) in idx.iter() {
            match last.get(&id) {
                Some(&p) if ann.hashes[p] == fingerprint(v) => {
                    ann.live.insert(id, p);
                    ann.alive[p] = true;
                    ann.chats[p] = chat;
                    *ann.per_chat.entry(chat).or_default() += 1;
                }
                _ => missing.push((id, chat, v)),
            }
        }
        drop(last);
        ann.insert_many(&missing);
        let added = missing.len();
        anyhow::ensure!(
            ann.tombstones() * 4 <= ann.points.len().max(1),
            "too many deleted points"
        );
        tracing::info!(
            points = n,
            segments = ann.segments.len(),
            added,
            checked_ms = checked.as_millis() as u64,
            total_ms = t.elapsed().as_millis() as u64,
            "ANN graph loaded (segments memory-mapped)"
        );
        Ok((ann, added))
    }
}

/// The number in a segment file's name (`seg-00000012.ann` → 12).
fn segment_number(name: &str) -> Option<u64> {
    let digits = name.strip_prefix("seg-")?.strip_suffix(".ann")?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}

/// Point `p`'s vector, `p` in one of `segments`.
fn row_of(segments: &[Frozen], p: usize) -> &[f16] {
    let f = &segments[segments.partition_point(|f| f.start + f.seg.len() <= p)];
    f.seg.row(p - f.start)
}

/// A merge planned by [`Ann::begin_save`]: segments `from..` become one
/// over `keep`, their points live when the save began.
struct Merge {
    from: usize,
    keep: Vec<usize>,
}

/// What a save does without the lock ([`SavePlan::run`]): the segments as
/// they were when it began (shared, immutable) and the merge to build.
pub struct SavePlan {
    generation: u64,
    dim: usize,
    params: Params,
    segments: Vec<Frozen>,
    merge: Option<Merge>,
}

/// A save's written segments, for [`Ann::finish_save`].
pub struct SaveWork {
    plan: SavePlan,
    segments: Vec<Frozen>,
}

impl SavePlan {
    /// The second step of a save, without the lock (slow: a merge builds a
    /// graph, and every new segment is written to a new file, synced, and
    /// read back memory-mapped).
    pub fn run(self, dir: &Path) -> anyhow::Result<SaveWork> {
        std::fs::create_dir_all(dir)?;
        let mut next = std::fs::read_dir(dir)?
            .filter_map(|e| segment_number(&e.ok()?.file_name().to_string_lossy()))
            .max()
            .map_or(0, |n| n + 1);
        let mut write = |f: &Frozen| -> anyhow::Result<Frozen> {
            if f.file.is_some() {
                return Ok(f.clone());
            }
            let name = format!("seg-{next:08}.ann");
            next += 1;
            let path = dir.join(&name);
            // A delta frozen under the lock is relinked here, off it.
            let relinked = f.seg.relink_short();
            let seg = relinked.as_ref().unwrap_or(&f.seg);
            seg.write(&path)?;
            let sum = crate::models::sha256_bytes(seg.bytes());
            Ok(Frozen {
                seg: Arc::new(Segment::open(&path, self.dim)?),
                start: f.start,
                file: Some((name, sum)),
            })
        };
        let kept = self.merge.as_ref().map_or(self.segments.len(), |m| m.from);
        let mut segments = self.segments[..kept]
            .iter()
            .map(&mut write)
            .collect::<anyhow::Result<Vec<_>>>()?;
        if let Some(m) = &self.merge {
            let rows: Vec<&[f16]> = m.keep.iter().map(|&p| row_of(&self.segments, p)).collect();
            if let Some(seg) = build_segment(&rows, self.dim, self.params) {
                segments.push(write(&Frozen {
                    seg: Arc::new(seg),
                    start: self.segments[m.from].start,
                    file: None,
                })?);
            }
        }
        sync_dir(dir)?;
        Ok(SaveWork {
            plan: self,
            segments,
        })
    }
}

/// The last step of a save: the manifest (by rename, synced), then every
/// file it does not name is removed (older segments, earlier formats).
pub fn write_manifest(dir: &Path, m: &Manifest) -> anyhow::Result<()> {
    let tmp = dir.join(format!("{MANIFEST}.tmp"));
    std::fs::write(&tmp, serde_json::to_vec(m)?)?;
    std::fs::File::open(&tmp)?.sync_all()?;
    std::fs::rename(&tmp, dir.join(MANIFEST))?;
    sync_dir(dir)?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        if name == MANIFEST || m.segments.iter().any(|s| s.file == name) {
            continue;
        }
        let _ = if e.file_type()?.is_dir() {
            std::fs::remove_dir_all(e.path())
        } else {
            std::fs::remove_file(e.path())
        };
    }
    private(dir)?;
    Ok(())
}

/// Makes renames and new files in `dir` durable.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::File::open(dir)?.sync_all()
}

/// FNV-1a over the vector's bytes.
fn fingerprint(v: &[f16]) -> u64 {
    v.iter()
        .flat_map(|x| x.to_bits().to_le_bytes())
        .fold(0xcbf2_9ce4_8422_2325, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
        })
}

/// Directory of the graph inside a data dir.
pub fn dir_in(data_dir: &Path) -> PathBuf {
    data_dir.join("ann")
}

/// Makes `dir` 0700 and the files in it 0600: segments are created with
/// the process's default mode (the binary sets a 077 umask at start; this
/// holds for library callers too).
fn private(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    for e in std::fs::read_dir(dir)? {
        let e = e?;
        if e.file_type()?.is_file() {
            std::fs::set_permissions(e.path(), std::fs::Permissions::from_mode(0o600))?;
        }
    }
    Ok(())
}
