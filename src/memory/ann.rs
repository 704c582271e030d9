//! Approximate nearest neighbours over note vectors (hnsw_rs), persisted in
//! the data dir so a large memory does not rebuild its graph at every start.
//!
//! **One copy of the vectors.** The graph is a `Hnsw<f16, UnitDot>`: its
//! points hold each note's vector as half floats, and nothing else holds
//! them — the exact passes (a lexical candidate's cosine, duplicate
//! detection) read a point's vector from the graph by its id ([`Ann::get`],
//! [`Ann::search_exact`]). A graph read from disk is loaded with its data
//! file memory-mapped (hnsw_rs' `ReloadOptions::set_mmap`): the vectors of
//! those points are file-backed pages the kernel can drop and read again,
//! not heap; points inserted since are on the heap until the next save and
//! load.
//!
//! Files in `<data dir>/ann/`: `vectors.hnsw.graph`, `vectors.hnsw.data`
//! (hnsw_rs' own dump) and `manifest.json` ([`Manifest`]: model id,
//! dimension, and the note id behind every graph point). A save dumps into
//! `ann/.dump/` and renames the two files into place (a mapped data file is
//! never truncated under the graph that reads it: the old file lives on,
//! unlinked, until that graph is dropped), then writes the manifest — last,
//! so a crash mid-save leaves a manifest that does not match and the graph
//! is rebuilt.
//!
//! hnsw_rs cannot delete points. A note that was deleted or edited keeps its
//! old point as a tombstone that searches filter out; points the graph lacks
//! (notes embedded since the last dump) are inserted at load. When tombstones
//! pass a quarter of the points, or the files are missing, truncated, garbled
//! or from another model, the graph is rebuilt from the vectors in redb —
//! which are the truth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::{Hnsw, Point};
use hnsw_rs::hnswio::{HnswIo, ReloadOptions};
use serde::{Deserialize, Serialize};

use super::dot::{dot_f16_f32, f16, to_f16, UnitDot};
use super::vector::VectorIndex;
use super::Chats;

const BASENAME: &str = "vectors";
const MANIFEST: &str = "manifest.json";
/// Where a save dumps before renaming the files into place.
const DUMP_DIR: &str = ".dump";
/// How a graph is built: links per point (twice as many on the ground
/// layer) and the beam while inserting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Params {
    pub m: usize,
    pub ef_construction: usize,
}

/// The graph mnemo builds: 16 links per point (32 on the ground layer), ef
/// 200 at build time. On clusters of 2,000 near-equidistant points (the
/// hard part of the 1M bench set) ef 64 found 0.87 of the true top 10 at
/// search ef 128, ef 200 0.99, for twice the build time and ~14% more
/// links (`cargo bench --bench ann`, docs/BENCHMARKS.md). A graph saved
/// with other parameters is still read: they shape it, not its format.
pub const PARAMS: Params = Params {
    m: 16,
    ef_construction: 200,
};
/// The search beam: candidates kept while walking the graph (at least k).
/// Measured at 100k and 1M synthetic vectors (docs/BENCHMARKS.md).
pub const EF_SEARCH: usize = 128;
/// A chat with at most this many points is searched exactly (a scan of its
/// points: ~2 ms per 20k); larger ones through the graph.
pub const EXACT_MAX: usize = 20_000;
/// The widest beam a search through the graph uses.
const BEAM_MAX: usize = 4096;
/// At most this many points of the graph's upper layers are compared with
/// every query to choose where its walk starts ([`Ann::walk`]): the layers
/// above the first hold about N / 256 points (M 16), all of them up to 2M
/// points; ~1 ms at most.
const SEEDS_MAX: usize = 8192;
/// The closest seeds the ground layer's search also starts from.
const START_SEEDS: usize = 8;
/// Batches at least this large are inserted in parallel.
const PARALLEL_FROM: usize = 32;
/// Points inserted since the last scan of the graph keep a copy of their
/// vector (hnsw_rs does not hand out a new point); past this many, one scan
/// of the graph's points replaces the copies with the graph's own.
const FRESH_MAX: usize = 4096;

/// Version of the files' layout and distance. A manifest of another
/// format (or without one) names a graph this build does not read: it is
/// rebuilt. 2: [`UnitDot`] on unscaled vectors (1 scaled them for anndists'
/// `DistDot`, which asserted `a·b <= 1`); 3: half-float points.
const FORMAT: u32 = 3;

#[derive(Debug, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub format: u32,
    pub model_id: String,
    pub dim: usize,
    /// `points[i]` is the note id of graph point `i`.
    pub points: Vec<u64>,
    /// `hashes[i]` fingerprints point `i`'s vector, to tell edited notes.
    pub hashes: Vec<u64>,
    /// sha256 of the two graph files. hnsw_rs trusts its files completely (a
    /// damaged one can end the process or read out of bounds), so it is only
    /// handed files that are byte for byte what it wrote.
    pub graph_sha256: String,
    pub data_sha256: String,
}

/// The loader of a graph read from disk, kept for the graph's life: hnsw_rs'
/// loaded graph borrows it (it owns the memory map of the data file the
/// points read). Freed when the [`Ann`] is dropped, after the graph.
struct Loader(*mut HnswIo);

// SAFETY: the loader is never touched again after the load; it only has to
// outlive the graph that borrows it (hnsw_rs' own graph is Send + Sync).
unsafe impl Send for Loader {}
unsafe impl Sync for Loader {}

impl Drop for Loader {
    fn drop(&mut self) {
        // SAFETY: the pointer came from `Box::into_raw` in `Ann::load`, and
        // the graph and rows borrowing it were dropped first (field order).
        drop(unsafe { Box::from_raw(self.0) });
    }
}

pub struct Ann {
    // Field order is drop order: the graph and its points before `_loader`.
    graph: Hnsw<'static, f16, UnitDot>,
    /// Graph point → the graph's own point (its vector), once a scan saw it.
    rows: Vec<Option<Arc<Point<'static, f16>>>>,
    /// The points of the graph's upper layers a search starts from (all of
    /// them compared with the query), and the lowest of those layers; set
    /// by a scan. Empty: hnsw_rs' own search.
    seeds: Vec<usize>,
    seed_layer: usize,
    /// Search by [`Ann::walk`] (else hnsw_rs' own search; benches compare).
    walk: bool,
    /// Vectors of points inserted since the last scan (at most [`FRESH_MAX`]).
    fresh: HashMap<usize, Box<[f16]>>,
    /// Graph point → note id.
    points: Vec<u64>,
    /// Graph point → fingerprint of its vector.
    hashes: Vec<u64>,
    /// Graph point → the note's chat.
    chats: Vec<i64>,
    /// Graph point → whether it is its note's live point (not a tombstone).
    alive: Vec<bool>,
    /// Live points by chat.
    per_chat: HashMap<i64, usize>,
    /// Chats of at most this many points are searched exactly.
    exact_max: usize,
    /// Note id → its live graph point.
    live: HashMap<u64, usize>,
    model_id: String,
    dim: usize,
    /// Points whose vector is in the memory-mapped data file (the first
    /// `mapped` ones, read from disk).
    mapped: usize,
    _loader: Option<Loader>,
}

/// How the graph came to be, for logs and tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    Loaded { added: usize },
    Rebuilt,
}

impl Ann {
    fn empty(capacity: usize, model_id: &str, dim: usize, p: Params) -> Ann {
        let layers = 16;
        Ann {
            graph: Hnsw::new(p.m, capacity.max(1024), layers, p.ef_construction, UnitDot),
            rows: Vec::new(),
            seeds: Vec::new(),
            seed_layer: 0,
            walk: true,
            fresh: HashMap::new(),
            points: Vec::new(),
            hashes: Vec::new(),
            chats: Vec::new(),
            alive: Vec::new(),
            per_chat: HashMap::new(),
            exact_max: EXACT_MAX,
            live: HashMap::new(),
            model_id: model_id.to_owned(),
            dim,
            mapped: 0,
            _loader: None,
        }
    }

    /// Builds a graph over every vector in `idx`.
    pub fn build(idx: &VectorIndex, model_id: &str) -> Ann {
        Ann::build_with(idx, model_id, PARAMS)
    }

    /// [`Ann::build`] with other parameters (benches/ann.rs compares them).
    pub fn build_with(idx: &VectorIndex, model_id: &str, p: Params) -> Ann {
        let mut ann = Ann::empty(idx.len(), model_id, idx.dim(), p);
        let all: Vec<(u64, i64, &[f16])> = idx.iter().collect();
        ann.insert_many(&all);
        ann
    }

    /// With `false`, searches go through hnsw_rs' own search instead of
    /// [`Ann::walk`] (benches/ann.rs compares the two on one graph).
    pub fn set_walk(&mut self, on: bool) {
        self.walk = on;
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

    /// Adds (or replaces) a note's vector.
    pub fn insert(&mut self, id: u64, chat: i64, v: &[f32]) {
        let h = to_f16(v);
        self.insert_many(&[(id, chat, &h[..])]);
    }

    /// Adds (or replaces) many notes' vectors. Batches are inserted on every
    /// core (hnsw_rs' parallel insert: the graph's shape then depends on
    /// thread timing, its quality does not).
    pub fn insert_many(&mut self, batch: &[(u64, i64, &[f16])]) {
        if batch.is_empty() {
            return;
        }
        let first = self.points.len();
        let points: Vec<(&[f16], usize)> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, _, v))| (*v, first + i))
            .collect();
        if points.len() < PARALLEL_FROM {
            points.iter().for_each(|p| self.graph.insert_slice(*p));
        } else {
            self.graph.parallel_insert_slice(&points);
        }
        for (i, (id, chat, v)) in batch.iter().enumerate() {
            if let Some(old) = self.live.insert(*id, first + i) {
                self.kill(old);
            }
            *self.per_chat.entry(*chat).or_default() += 1;
            self.points.push(*id);
            self.hashes.push(fingerprint(v));
            self.chats.push(*chat);
            self.alive.push(true);
            self.rows.push(None);
        }
        if self.fresh.len() + batch.len() > FRESH_MAX {
            self.scan();
        } else {
            for (i, (_, _, v)) in batch.iter().enumerate() {
                self.fresh.insert(first + i, (*v).into());
            }
        }
    }

    /// Points every row at the graph's own point, and drops the copies.
    fn scan(&mut self) {
        let mut by_level: Vec<Vec<usize>> = Vec::new();
        for p in self.graph.get_point_indexation() {
            let i = p.get_origin_id();
            let level = usize::from(p.get_point_id().0);
            if let Some(row) = self.rows.get_mut(i) {
                *row = Some(p);
                if by_level.len() <= level {
                    by_level.resize(level + 1, Vec::new());
                }
                by_level[level].push(i);
            }
        }
        self.fresh.clear();
        // The seeds: the upper layers from the top down, as many as fit in
        // SEEDS_MAX (never the ground layer: that is a search of its own).
        self.seeds.clear();
        self.seed_layer = 0;
        for level in (1..by_level.len()).rev() {
            if self.seeds.len() + by_level[level].len() > SEEDS_MAX && !self.seeds.is_empty() {
                break;
            }
            self.seeds.extend(&by_level[level]);
            self.seed_layer = level;
        }
    }

    /// Point `p`'s neighbours on `layer` (graph points), as hnsw_rs keeps
    /// them; none for a point no scan has seen yet.
    fn links(&self, p: usize, layer: usize) -> Vec<usize> {
        self.rows[p]
            .as_ref()
            .map(|point| {
                let mut all = point.get_neighborhood_id();
                if layer < all.len() {
                    all.swap_remove(layer).into_iter().map(|n| n.d_id).collect()
                } else {
                    Vec::new()
                }
            })
            .unwrap_or_default()
    }

    /// The `ef` graph points closest to `q` found by walking the graph
    /// hnsw_rs built, as (point, cosine), best first. hnsw_rs' own search
    /// makes one move per upper layer from its single entry point; on
    /// well-separated clusters that often ends in another cluster, whose
    /// ground-layer links never leave it (1M synthetic points, ef 128: 86 of
    /// 200 queries found none of their true top 10; recall@10 0.54). Here
    /// every seed (the upper layers' points, up to [`SEEDS_MAX`]) is
    /// compared with the query, the best is followed down the layers below
    /// moving while a neighbour is closer, and the ground layer is searched
    /// with a beam of `ef` from there and from the [`START_SEEDS`] closest
    /// seeds (same graph: 0.96, none lost).
    fn walk(&self, q: &[f32], ef: usize) -> Vec<(usize, f32)> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        /// (cosine, point), ordered by cosine.
        struct By(f32, usize);
        impl Ord for By {
            fn cmp(&self, o: &Self) -> std::cmp::Ordering {
                self.0.total_cmp(&o.0).then(self.1.cmp(&o.1))
            }
        }
        impl PartialOrd for By {
            fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(o))
            }
        }
        impl PartialEq for By {
            fn eq(&self, o: &Self) -> bool {
                self.cmp(o).is_eq()
            }
        }
        impl Eq for By {}
        let cos = |p: usize| self.row(p).map(|v| dot_f16_f32(v, q));
        let mut seeds: Vec<(usize, f32)> = self
            .seeds
            .iter()
            .filter_map(|&p| Some((p, cos(p)?)))
            .collect();
        seeds.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        seeds.truncate(START_SEEDS);
        let Some(&(mut at, mut best)) = seeds.first() else {
            return Vec::new();
        };
        for layer in (1..self.seed_layer).rev() {
            loop {
                let next = self
                    .links(at, layer)
                    .into_iter()
                    .filter_map(|p| Some((p, cos(p)?)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match next {
                    Some((p, c)) if c > best => (at, best) = (p, c),
                    _ => break,
                }
            }
        }
        let mut seen = vec![0u64; self.points.len().div_ceil(64)];
        let mut mark = |p: usize| {
            let (w, b) = (p / 64, 1u64 << (p % 64));
            let new = seen[w] & b == 0;
            seen[w] |= b;
            new
        };
        // The ground layer's search starts from where the descent ended and
        // from the closest seeds (their ground links too).
        seeds.push((at, best));
        // Candidates to expand (closest first) and the best `ef` found
        // (worst first, to drop it).
        let mut todo = BinaryHeap::new();
        let mut found = BinaryHeap::new();
        for (p, c) in seeds {
            if mark(p) {
                todo.push(By(c, p));
                found.push(Reverse(By(c, p)));
            }
        }
        while found.len() > ef {
            found.pop();
        }
        while let Some(By(c, p)) = todo.pop() {
            if found.len() >= ef && found.peek().is_some_and(|w| c < w.0 .0) {
                break;
            }
            for n in self.links(p, 0) {
                if !mark(n) {
                    continue;
                }
                let Some(cn) = cos(n) else { continue };
                if found.len() < ef || found.peek().is_some_and(|w| cn > w.0 .0) {
                    todo.push(By(cn, n));
                    found.push(Reverse(By(cn, n)));
                    if found.len() > ef {
                        found.pop();
                    }
                }
            }
        }
        let mut out: Vec<(usize, f32)> =
            found.into_iter().map(|Reverse(By(c, p))| (p, c)).collect();
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
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

    fn row(&self, p: usize) -> Option<&[f16]> {
        match &self.rows[p] {
            Some(point) => Some(point.get_v()),
            None => self.fresh.get(&p).map(|v| &v[..]),
        }
    }

    /// Note `id`'s vector, as the graph holds it.
    pub fn get(&self, id: u64) -> Option<&[f16]> {
        self.row(*self.live.get(&id)?)
    }

    pub fn chat_of(&self, id: u64) -> Option<i64> {
        self.live.get(&id).map(|&p| self.chats[p])
    }

    /// Every live (id, chat, vector).
    pub fn iter(&self) -> impl Iterator<Item = (u64, i64, &[f16])> + '_ {
        (0..self.points.len())
            .filter(|&p| self.alive[p])
            .filter_map(|p| Some((self.points[p], self.chats[p], self.row(p)?)))
    }

    /// Top `k` (note id, cosine) among the live points of `chats`.
    pub fn search(&self, q: &[f32], k: usize, chats: Chats) -> Vec<(u64, f32)> {
        self.search_ef(q, k, EF_SEARCH, chats)
    }

    /// [`Ann::search`] with a given beam width (benches sweep it).
    ///
    /// hnsw_rs' own filtered search is not used: with a filter it never
    /// stops early and walks most of the graph (measured: hundreds of ms
    /// at 100k points for one chat in three). Instead the graph is searched
    /// unfiltered with the beam widened by the share of points that can
    /// qualify (the chat's live points among all, tombstones included), and
    /// the hits are filtered after; a chat of at most [`EXACT_MAX`] points,
    /// or a search that came back short, is answered exactly. Cosines are
    /// recomputed with the query in full precision.
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
        let found: Vec<(usize, f32)> = if self.walk && !self.seeds.is_empty() {
            self.walk(q, beam)
        } else {
            self.graph
                .search(&to_f16(q), beam, beam)
                .into_iter()
                .map(|n| {
                    let cos = self
                        .row(n.d_id)
                        .map_or(1.0 - n.distance, |v| dot_f16_f32(v, q));
                    (n.d_id, cos)
                })
                .collect()
        };
        let mut hits: Vec<(u64, f32)> = found
            .into_iter()
            .filter(|&(p, _)| self.alive[p] && chats.admits(self.chats[p]))
            .map(|(p, cos)| (self.points[p], cos))
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
            .filter_map(|p| Some((self.points[p], dot_f16_f32(self.row(p)?, q))))
            .collect();
        super::vector::top(&mut scored, k);
        scored
    }

    /// Heap bytes of this side's tables (not the graph's points and links,
    /// which hnsw_rs allocates: see [`Ann::graph_bytes_estimate`]).
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * 8
            + self.fresh.len() * (self.dim * 2 + 32)
            + self.points.capacity() * 8
            + self.hashes.capacity() * 8
            + self.chats.capacity() * 8
            + self.alive.capacity()
            + self.live.capacity() * (8 + 8 + 1)
            + self.per_chat.capacity() * (8 + 8 + 1)
    }

    /// hnsw_rs' own memory, estimated from its layout (0.3), as (points and
    /// links, vectors on the heap): per point an `Arc<Point>` (~80 bytes
    /// with the allocator's header) and its neighbour table (an
    /// `Arc<RwLock<Vec<Vec<_>>>>` of 16 layers, ~460 bytes); per link an
    /// `Arc<PointWithOrder>` (~48 bytes) and its slot (8); the vector (2
    /// bytes a dimension) unless memory-mapped. A scan of every point: for
    /// benches.
    pub fn graph_bytes_estimate(&self) -> (usize, usize) {
        let links: usize = self
            .graph
            .get_point_indexation()
            .into_iter()
            .map(|p| p.get_neighborhood_id().iter().map(Vec::len).sum::<usize>())
            .sum();
        let on_heap = self.points.len() - self.mapped;
        (
            self.points.len() * (80 + 460) + links * 56,
            on_heap * self.dim * 2,
        )
    }

    /// Writes the graph and then the manifest into `dir`.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_file(dir.join(MANIFEST));
        let dump = dir.join(DUMP_DIR);
        let _ = std::fs::remove_dir_all(&dump);
        std::fs::create_dir_all(&dump)?;
        let used = self.graph.file_dump(&dump, BASENAME)?;
        anyhow::ensure!(used == BASENAME, "graph files are in use; dumped as {used}");
        let files = [graph_file(), data_file()];
        let mut sums = Vec::new();
        for f in &files {
            sums.push(crate::models::sha256_file(&dump.join(f))?);
        }
        // A rename never truncates the file a loaded graph may have mapped.
        for f in &files {
            std::fs::rename(dump.join(f), dir.join(f))?;
        }
        let _ = std::fs::remove_dir(&dump);
        let m = Manifest {
            format: FORMAT,
            model_id: self.model_id.clone(),
            dim: self.dim,
            points: self.points.clone(),
            hashes: self.hashes.clone(),
            graph_sha256: sums.remove(0),
            data_sha256: sums.remove(0),
        };
        let tmp = dir.join(format!("{MANIFEST}.tmp"));
        std::fs::write(&tmp, serde_json::to_vec(&m)?)?;
        std::fs::rename(&tmp, dir.join(MANIFEST))?;
        private(dir)?;
        Ok(())
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
        let graph_ok = crate::models::sha256_file(&dir.join(graph_file()))? == m.graph_sha256;
        let data_ok = crate::models::sha256_file(&dir.join(data_file()))? == m.data_sha256;
        anyhow::ensure!(
            graph_ok && data_ok,
            "graph files do not match their manifest (damaged or partly written)"
        );
        let checked = t.elapsed();
        let raw = Box::into_raw(Box::new(HnswIo::new_with_options(
            dir,
            BASENAME,
            ReloadOptions::default().set_mmap(true),
        )));
        let loader = Loader(raw);
        // SAFETY: `raw` stays valid until `loader` is dropped, which the
        // Ann it goes into does after the graph (field order); on an error
        // here no graph borrows it.
        let graph: Hnsw<'static, f16, UnitDot> = unsafe { (*raw).load_hnsw::<f16, UnitDot>()? };
        let loaded = t.elapsed();
        anyhow::ensure!(
            graph.get_nb_point() == m.points.len() && m.hashes.len() == m.points.len(),
            "graph and manifest disagree"
        );
        let n = m.points.len();
        let mut ann = Ann {
            graph,
            rows: vec![None; n],
            seeds: Vec::new(),
            seed_layer: 0,
            walk: true,
            fresh: HashMap::new(),
            points: m.points,
            hashes: m.hashes,
            chats: vec![0; n],
            alive: vec![false; n],
            per_chat: HashMap::new(),
            exact_max: EXACT_MAX,
            live: HashMap::with_capacity(idx.len()),
            model_id: model_id.to_owned(),
            dim: idx.dim(),
            mapped: n,
            _loader: Some(loader),
        };
        ann.scan();
        anyhow::ensure!(
            ann.rows.iter().all(Option::is_some),
            "graph points and manifest disagree"
        );
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
            added,
            checked_ms = checked.as_millis() as u64,
            graph_ms = (loaded - checked).as_millis() as u64,
            total_ms = t.elapsed().as_millis() as u64,
            "ANN graph loaded (data memory-mapped)"
        );
        Ok((ann, added))
    }
}

fn graph_file() -> String {
    format!("{BASENAME}.hnsw.graph")
}

fn data_file() -> String {
    format!("{BASENAME}.hnsw.data")
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

/// Makes `dir` 0700 and the files in it 0600: hnsw_rs creates its dumps
/// with the process's default mode (the binary sets a 077 umask at start;
/// this holds for library callers too).
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
