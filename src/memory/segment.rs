//! A frozen HNSW graph: the links hnsw_rs built, copied into flat arrays
//! and written to one file that is read back memory-mapped.
//!
//! hnsw_rs keeps a built graph as one heap record per link (an
//! `Arc<PointWithOrder>`, ~56 bytes) and a 16-layer table per point: ~2.2 GB
//! for 1M points before a single vector, and ~20 s to read back from its
//! dump. Once built, a graph never changes here, so mnemo keeps it as a
//! [`Segment`] instead: per layer, the points on it, an offset per point and
//! one `u32` per link, next to the points' vectors — ~85 MB of links and 768
//! MB of half-float vectors at 1M, in a file the kernel pages in as searches
//! touch it (nothing to parse but a bounds check of every link).
//!
//! A segment is searched by [`Segment::walk`]; [`super::ann`] keeps several
//! (each built by hnsw_rs over the points added between two saves, merged as
//! they grow) and decides which points are alive.
//!
//! File layout (little-endian, the byte order of every machine mnemo builds
//! for: sections are read in place; every section starts at a multiple of 8):
//!
//! ```text
//! magic "MNEMOSEG" | version u32 | dim u32 | points u64 | layers u32 | 0 u32
//! vectors: points × dim f16
//! per layer l:  count u64
//!               l > 0: the points on it, u32 ascending (count)
//!               offsets u32 (count + 1) into this layer's links
//!               links u32 (offsets[count])
//! ```
//!
//! Layer 0 holds every point, so its point list is implied.

use std::ops::Range;
use std::path::Path;

use hnsw_rs::hnsw::Hnsw;

use super::dot::{dot_f16_f32, f16, UnitDot};

#[cfg(not(target_endian = "little"))]
compile_error!("segment files are read in place as little-endian");

const MAGIC: &[u8; 8] = b"MNEMOSEG";
const VERSION: u32 = 1;
const HEADER: usize = 32;
/// At most this many points of the upper layers are compared with every
/// query to choose where its walk starts: the layers above the first hold
/// about N / 256 points (M 16), all of them up to 2M points; ~1 ms at most.
const SEEDS_MAX: usize = 8192;
/// The closest seeds the ground layer's search also starts from.
const START_SEEDS: usize = 8;
/// The beam on layer 1 when the seeds are above it.
const LAYER1_EF: usize = 32;
/// A ground-layer point no link reaches gets links from this many of its
/// nearest neighbours.
const ORPHAN_LINKS: usize = 2;
/// A ground-layer point with fewer links than this, or fewer in-links than
/// [`MIN_IN`], is linked again (see [`Segment::relink_short`]) ...
const MIN_LINKS: usize = 16;
const MIN_IN: u32 = 4;
/// ... both ways with this many of the points a search for it finds ...
const RELINK_LINKS: usize = 16;
/// ... with this beam.
const RELINK_EF: usize = 64;

/// Why a segment's bytes were refused.
#[derive(Debug, thiserror::Error)]
pub enum SegmentError {
    #[error("not a graph segment (or of another version)")]
    Header,
    #[error("graph segment is truncated or garbled: {0}")]
    Garbled(&'static str),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// The segment's bytes: owned (just built, 8-aligned) or a file mapping.
enum Bytes {
    Owned(Vec<u64>),
    Mapped(memmap2::Mmap),
}

impl Bytes {
    fn get(&self) -> &[u8] {
        match self {
            Bytes::Owned(w) => bytemuck::cast_slice(w),
            Bytes::Mapped(m) => m,
        }
    }
}

/// One layer's sections (byte ranges of the segment).
struct Layer {
    /// Sorted points on the layer; `None` on layer 0 (all of them).
    points: Option<Range<usize>>,
    offsets: Range<usize>,
    links: Range<usize>,
}

pub struct Segment {
    bytes: Bytes,
    dim: usize,
    n: usize,
    vectors: Range<usize>,
    layers: Vec<Layer>,
    /// The upper layers' points every search compares with the query, and
    /// the lowest layer they come from (0: none; searched exactly).
    seeds: Vec<u32>,
    seed_layer: usize,
}

impl Segment {
    /// Freezes a graph hnsw_rs built over points `0..n` (their insertion
    /// ids), whose vectors `row` hands out.
    pub fn freeze<'a>(
        graph: &Hnsw<'_, f16, UnitDot>,
        n: usize,
        dim: usize,
        row: impl Fn(usize) -> &'a [f16],
    ) -> Segment {
        // Per point, its links on each layer it is on (its level + 1 layers).
        let mut links: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
        for p in graph.get_point_indexation() {
            let i = p.get_origin_id();
            if i >= n {
                continue;
            }
            let level = usize::from(p.get_point_id().0);
            let mut by_layer = p.get_neighborhood_id();
            by_layer.resize(level + 1, Vec::new());
            links[i] = by_layer
                .into_iter()
                .take(level + 1)
                .map(|l| {
                    l.into_iter()
                        .filter(|nb| nb.d_id < n && nb.d_id != i)
                        .map(|nb| nb.d_id as u32)
                        .collect()
                })
                .collect();
        }
        for l in &mut links {
            if l.is_empty() {
                // A point hnsw_rs did not list (never the case) is still on
                // the ground layer, without links.
                l.push(Vec::new());
            }
        }
        Segment::lay_out(links, n, dim, row)
    }

    /// The same graph laid out again with the repairs of [`Segment::freeze`]
    /// and [`Segment::relink_short`] (benches measure a graph before and
    /// after them).
    pub fn relinked(&self) -> Segment {
        let seg = Segment::lay_out(self.all_links(), self.n, self.dim, |p| self.row(p));
        seg.relink_short().unwrap_or(seg)
    }

    /// Per point, its links on each layer it is on.
    fn all_links(&self) -> Vec<Vec<Vec<u32>>> {
        (0..self.n)
            .map(|p| {
                (0..self.layers.len())
                    .take_while(|&l| l == 0 || self.on(l).binary_search(&(p as u32)).is_ok())
                    .map(|l| self.links(p, l).to_vec())
                    .collect()
            })
            .collect()
    }

    /// The segment with every ground-layer point that has fewer than
    /// [`MIN_LINKS`] links (or fewer than [`MIN_IN`] in-links) linked both
    /// ways with the [`RELINK_LINKS`] nearest points a walk for its own
    /// vector finds; none when there is no such point (or nothing to walk).
    ///
    /// hnsw_rs finds a new point's neighbours by single moves down its
    /// upper layers; on separated clusters (a million synthetic points in
    /// clusters of 2,000) that often ends in another cluster, whose points
    /// its heuristic then prunes, and the point is left with a link or two
    /// and few in-links: 138k of such a graph's points had fewer than 16
    /// links, 43k fewer than 4 in-links, and they were most of what searches
    /// missed. The walk here compares every seed, so it finds the point's
    /// own cluster. Slow at scale (~160 s for those points at 1M, on every
    /// core): it runs where the graph was built or is written, never under
    /// the graph's lock.
    pub fn relink_short(&self) -> Option<Segment> {
        let indeg = in_degrees(self.n, |p| self.links(p, 0));
        let short: Vec<usize> = (0..self.n)
            .filter(|&p| self.links(p, 0).len() < MIN_LINKS || indeg[p] < MIN_IN)
            .collect();
        if short.is_empty() || !self.walkable() {
            return None;
        }
        tracing::debug!(
            points = short.len(),
            of = self.n,
            "relinking weakly linked graph points"
        );
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let found: Vec<Vec<u32>> = std::thread::scope(|sc| {
            let parts: Vec<_> = short
                .chunks(short.len().div_ceil(threads))
                .map(|part| {
                    let seg = self;
                    sc.spawn(move || {
                        part.iter()
                            .map(|&p| {
                                let q: Vec<f32> = seg.row(p).iter().map(|x| x.to_f32()).collect();
                                seg.walk(&q, RELINK_EF)
                                    .into_iter()
                                    .filter(|&(x, _)| x != p)
                                    .take(RELINK_LINKS)
                                    .map(|(x, _)| x as u32)
                                    .collect()
                            })
                            .collect::<Vec<Vec<u32>>>()
                    })
                })
                .collect();
            parts
                .into_iter()
                .flat_map(|h| h.join().expect("relink thread"))
                .collect()
        });
        let mut links = self.all_links();
        for (&p, near) in short.iter().zip(found) {
            for x in near {
                if !links[p][0].contains(&x) {
                    links[p][0].push(x);
                }
                let back = &mut links[x as usize][0];
                if !back.contains(&(p as u32)) {
                    back.push(p as u32);
                }
            }
        }
        Some(Segment::lay_out(links, self.n, self.dim, |p| self.row(p)))
    }

    /// Points of the ground layer that no link reaches: a search finds
    /// them only by starting at them. hnsw_rs leaves some (a point's
    /// neighbours may all prune it from their lists as closer points
    /// arrive).
    pub fn orphans(&self) -> usize {
        self.thin(1)
    }

    /// Points of the ground layer with fewer than `min` links of their own.
    pub fn short(&self, min: usize) -> usize {
        (0..self.n)
            .filter(|&p| self.links(p, 0).len() < min)
            .count()
    }

    /// Points of the ground layer with fewer than `min` in-links.
    pub fn thin(&self, min: u32) -> usize {
        in_degrees(self.n, |p| self.links(p, 0))
            .iter()
            .filter(|&&d| d < min)
            .count()
    }

    /// Writes `links` (per point, per layer it is on) and the vectors.
    /// Every ground-layer point no link reaches is linked from its
    /// [`ORPHAN_LINKS`] nearest neighbours (its first links), so that a
    /// search through the neighbourhood can find it.
    fn lay_out<'a>(
        mut links: Vec<Vec<Vec<u32>>>,
        n: usize,
        dim: usize,
        row: impl Fn(usize) -> &'a [f16],
    ) -> Segment {
        let indeg = in_degrees(n, |p| &links[p][0]);
        for p in 0..n {
            if indeg[p] == 0 {
                let near: Vec<u32> = links[p][0].iter().take(ORPHAN_LINKS).copied().collect();
                for q in near {
                    links[q as usize][0].push(p as u32);
                }
            }
        }
        let layers = links.iter().map(Vec::len).max().unwrap_or(1);
        let total: usize = links.iter().flatten().map(Vec::len).sum();
        assert!(total < u32::MAX as usize, "links fit u32 offsets");
        // The file's size, near enough: written in place, never copied.
        let mut w = Writer::with_capacity(HEADER + n * dim * 2 + (total + 2 * n) * 4 + layers * 64);
        w.bytes(MAGIC);
        w.u32s(&[VERSION, dim as u32]);
        w.u64(n as u64);
        w.u32s(&[layers as u32, 0]);
        for i in 0..n {
            let v = row(i);
            assert_eq!(v.len(), dim, "vector of another dimension");
            w.bytes(bytemuck::cast_slice(v));
        }
        w.pad();
        for layer in 0..layers {
            let on: Vec<u32> = (0..n as u32)
                .filter(|&i| links[i as usize].len() > layer)
                .collect();
            w.u64(on.len() as u64);
            if layer > 0 {
                w.u32s(&on);
                w.pad();
            }
            let mut offsets = Vec::with_capacity(on.len() + 1);
            let mut all = Vec::new();
            offsets.push(0u32);
            for &i in &on {
                all.extend_from_slice(&links[i as usize][layer]);
                offsets.push(all.len() as u32);
            }
            w.u32s(&offsets);
            w.pad();
            w.u32s(&all);
            w.pad();
        }
        Segment::parse(Bytes::Owned(w.words()), dim).expect("a segment just written reads back")
    }

    /// Reads the segment in `path`, memory-mapped, checking its structure
    /// (every offset and link in bounds); its vectors are trusted to the
    /// caller's checksum.
    pub fn open(path: &Path, dim: usize) -> Result<Segment, SegmentError> {
        let file = std::fs::File::open(path)?;
        // SAFETY: segment files are written once (to a temporary name, then
        // renamed) and never modified in place; a save replaces them with
        // new files, so the mapped bytes do not change under the map.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        // A walk reads scattered rows: no read-ahead around each (it would
        // bring in pages no search asked for).
        map.advise(memmap2::Advice::Random)?;
        Segment::parse(Bytes::Mapped(map), dim)
    }

    /// The segment's bytes, to write or checksum.
    pub fn bytes(&self) -> &[u8] {
        self.bytes.get()
    }

    /// Writes the segment to `path` (a temporary file, synced, renamed).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(self.bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    }

    fn parse(bytes: Bytes, dim: usize) -> Result<Segment, SegmentError> {
        let b = bytes.get();
        if b.len() < HEADER || &b[..8] != MAGIC || u32_at(b, 8) != VERSION {
            return Err(SegmentError::Header);
        }
        if u32_at(b, 12) as usize != dim {
            return Err(SegmentError::Garbled("dimension"));
        }
        let n = usize::try_from(u64_at(b, 16)).map_err(|_| SegmentError::Garbled("count"))?;
        let nlayers = u32_at(b, 24) as usize;
        if n > u32::MAX as usize || nlayers == 0 || nlayers > 64 {
            return Err(SegmentError::Garbled("counts"));
        }
        let mut at = HEADER;
        let mut take = |len: usize| -> Result<Range<usize>, SegmentError> {
            let end = at
                .checked_add(len)
                .filter(|&e| e <= b.len())
                .ok_or(SegmentError::Garbled("truncated"))?;
            let r = at..end;
            at = end.next_multiple_of(8);
            Ok(r)
        };
        let vectors = take(
            n.checked_mul(dim * 2)
                .ok_or(SegmentError::Garbled("size"))?,
        )?;
        let mut layers = Vec::with_capacity(nlayers);
        let mut above = n;
        for layer in 0..nlayers {
            let count = take(8)?;
            let count = usize::try_from(u64_at(b, count.start))
                .map_err(|_| SegmentError::Garbled("count"))?;
            if count > above || (layer == 0 && count != n) {
                return Err(SegmentError::Garbled("layer size"));
            }
            above = count;
            let points = if layer > 0 {
                let r = take(count.checked_mul(4).ok_or(SegmentError::Garbled("size"))?)?;
                let p: &[u32] = bytemuck::cast_slice(&b[r.clone()]);
                if !p.windows(2).all(|w| w[0] < w[1]) || p.last().is_some_and(|&x| x as usize >= n)
                {
                    return Err(SegmentError::Garbled("layer points"));
                }
                Some(r)
            } else {
                None
            };
            let offsets = take(
                (count + 1)
                    .checked_mul(4)
                    .ok_or(SegmentError::Garbled("size"))?,
            )?;
            let o: &[u32] = bytemuck::cast_slice(&b[offsets.clone()]);
            if o[0] != 0 || !o.windows(2).all(|w| w[0] <= w[1]) {
                return Err(SegmentError::Garbled("offsets"));
            }
            let links = take(
                (o[count] as usize)
                    .checked_mul(4)
                    .ok_or(SegmentError::Garbled("size"))?,
            )?;
            let l: &[u32] = bytemuck::cast_slice(&b[links.clone()]);
            if l.iter().any(|&x| x as usize >= n) {
                return Err(SegmentError::Garbled("links"));
            }
            layers.push(Layer {
                points,
                offsets,
                links,
            });
        }
        if at < b.len() {
            return Err(SegmentError::Garbled("trailing bytes"));
        }
        let mut seg = Segment {
            bytes,
            dim,
            n,
            vectors,
            layers,
            seeds: Vec::new(),
            seed_layer: 0,
        };
        // The seeds: the points of the lowest upper layer that holds at most
        // SEEDS_MAX of them (a layer holds every point of the layers above
        // it); the top layer if none does. Never the ground layer: that is
        // a search of its own.
        if let Some(layer) = (1..seg.layers.len())
            .find(|&l| seg.on(l).len() <= SEEDS_MAX)
            .or((seg.layers.len() > 1).then(|| seg.layers.len() - 1))
        {
            seg.seeds = seg.on(layer).to_vec();
            seg.seed_layer = layer;
        }
        Ok(seg)
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// Whether the segment is memory-mapped (else on the heap).
    pub fn is_mapped(&self) -> bool {
        matches!(self.bytes, Bytes::Mapped(_))
    }

    /// Bytes of the links (all layers) and of the vectors.
    pub fn sizes(&self) -> (usize, usize) {
        (
            self.bytes.get().len() - self.vectors.len() - HEADER,
            self.vectors.len(),
        )
    }

    /// Point `p`'s vector.
    pub fn row(&self, p: usize) -> &[f16] {
        let all: &[f16] = bytemuck::cast_slice(&self.bytes.get()[self.vectors.clone()]);
        &all[p * self.dim..(p + 1) * self.dim]
    }

    /// The points on `layer` (layer > 0).
    fn on(&self, layer: usize) -> &[u32] {
        let r = self.layers[layer].points.clone().unwrap_or(0..0);
        bytemuck::cast_slice(&self.bytes.get()[r])
    }

    /// Point `p`'s links on `layer`.
    fn links(&self, p: usize, layer: usize) -> &[u32] {
        let Some(l) = self.layers.get(layer) else {
            return &[];
        };
        let b = self.bytes.get();
        let i = match &l.points {
            None => p,
            Some(_) => match self.on(layer).binary_search(&(p as u32)) {
                Ok(i) => i,
                Err(_) => return &[],
            },
        };
        let o: &[u32] = bytemuck::cast_slice(&b[l.offsets.clone()]);
        let links: &[u32] = bytemuck::cast_slice(&b[l.links.clone()]);
        &links[o[i] as usize..o[i + 1] as usize]
    }

    /// Whether [`Segment::walk`] can search it (it has upper layers to start
    /// from); a segment without is small and searched exactly.
    pub fn walkable(&self) -> bool {
        !self.seeds.is_empty()
    }

    /// The `ef` points closest to `q` found by walking the graph, as (point,
    /// cosine), best first. hnsw_rs' own search makes one move per upper
    /// layer from its single entry point; on well-separated clusters that
    /// often ends in another cluster, whose ground-layer links never leave
    /// it (1M synthetic points, ef 128: 86 of 200 queries found none of
    /// their true top 10; recall@10 0.54). Here every seed (the upper
    /// layers' points, up to [`SEEDS_MAX`]) is compared with the query, the
    /// best is followed down to layer 2 moving while a neighbour is closer,
    /// layer 1 is searched with a beam of [`LAYER1_EF`] from there and from
    /// the [`START_SEEDS`] closest seeds, and the ground layer with a beam
    /// of `ef` from the [`LAYER1_EF`] points found there.
    pub fn walk(&self, q: &[f32], ef: usize) -> Vec<(usize, f32)> {
        let cos = |p: usize| dot_f16_f32(self.row(p), q);
        let mut seeds: Vec<(usize, f32)> = self
            .seeds
            .iter()
            .map(|&p| (p as usize, cos(p as usize)))
            .collect();
        seeds.sort_unstable_by(|a, b| b.1.total_cmp(&a.1));
        seeds.truncate(START_SEEDS);
        let Some(&(mut at, mut best)) = seeds.first() else {
            return Vec::new();
        };
        for layer in (2..self.seed_layer).rev() {
            loop {
                let next = self
                    .links(at, layer)
                    .iter()
                    .map(|&p| (p as usize, cos(p as usize)))
                    .max_by(|a, b| a.1.total_cmp(&b.1));
                match next {
                    Some((p, c)) if c > best => (at, best) = (p, c),
                    _ => break,
                }
            }
        }
        seeds.push((at, best));
        let mut seen = vec![0u64; self.n.div_ceil(64)];
        // Layer 1 (when the seeds are above it) is searched with a beam too,
        // not by single moves: a cluster with no seed of its own is reached
        // through its layer-1 points (a greedy move stops at the first point
        // with no closer neighbour, often in the wrong cluster).
        if self.seed_layer > 1 {
            let mut up = vec![0u64; self.n.div_ceil(64)];
            seeds = self.beam(&cos, &mut up, 1, seeds, LAYER1_EF);
        }
        self.beam(&cos, &mut seen, 0, seeds, ef)
    }

    /// The best-first search of one layer: from `starts`, expand the
    /// closest candidate until none left is closer than the worst of the
    /// `ef` best found; those, best first.
    fn beam(
        &self,
        cos: &impl Fn(usize) -> f32,
        seen: &mut [u64],
        layer: usize,
        starts: Vec<(usize, f32)>,
        ef: usize,
    ) -> Vec<(usize, f32)> {
        use std::cmp::Reverse;
        use std::collections::BinaryHeap;
        let mut mark = |p: usize| {
            let (w, b) = (p / 64, 1u64 << (p % 64));
            let new = seen[w] & b == 0;
            seen[w] |= b;
            new
        };
        // Candidates to expand (closest first) and the best `ef` found
        // (worst first, to drop it).
        let mut todo = BinaryHeap::new();
        let mut found = BinaryHeap::new();
        for (p, c) in starts {
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
            for &n in self.links(p, layer) {
                let n = n as usize;
                if !mark(n) {
                    continue;
                }
                let cn = cos(n);
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
}

/// How many other points' `links` reach each of points `0..n`.
fn in_degrees<'a>(n: usize, links: impl Fn(usize) -> &'a [u32]) -> Vec<u32> {
    let mut indeg = vec![0u32; n];
    for p in 0..n {
        for &q in links(p) {
            indeg[q as usize] += u32::from(q as usize != p);
        }
    }
    indeg
}

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

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(b[at..at + 4].try_into().expect("4 bytes"))
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

/// Little-endian bytes, written into 8-aligned words (what [`Bytes::Owned`]
/// keeps, so a built segment is never copied).
struct Writer {
    words: Vec<u64>,
    len: usize,
}

impl Writer {
    fn with_capacity(bytes: usize) -> Writer {
        Writer {
            words: Vec::with_capacity(bytes.div_ceil(8)),
            len: 0,
        }
    }

    fn bytes(&mut self, b: &[u8]) {
        let end = self.len + b.len();
        self.words.resize(end.div_ceil(8), 0);
        bytemuck::cast_slice_mut::<u64, u8>(&mut self.words)[self.len..end].copy_from_slice(b);
        self.len = end;
    }

    fn u32s(&mut self, v: &[u32]) {
        // Little-endian already: the sections are read as they lie.
        self.bytes(bytemuck::cast_slice(v));
    }

    fn u64(&mut self, x: u64) {
        self.bytes(&x.to_le_bytes());
    }

    fn pad(&mut self) {
        self.len = self.len.next_multiple_of(8);
        self.words.resize(self.len / 8, 0);
    }

    fn words(mut self) -> Vec<u64> {
        self.pad();
        self.words
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn graph(n: usize, dim: usize) -> (Hnsw<'static, f16, UnitDot>, Vec<Vec<f16>>) {
        let mut s = 7u64;
        let mut rnd = || {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 33) as f32 / (1u64 << 31) as f32) - 0.5
        };
        let rows: Vec<Vec<f16>> = (0..n)
            .map(|_| {
                let v: Vec<f32> = (0..dim).map(|_| rnd()).collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter().map(|x| f16::from_f32(x / norm)).collect()
            })
            .collect();
        let g = Hnsw::new(8, n, 16, 64, UnitDot);
        for (i, r) in rows.iter().enumerate() {
            g.insert_slice((r, i));
        }
        (g, rows)
    }

    #[test]
    fn a_frozen_graph_reads_back_and_finds_its_points() {
        let (g, rows) = graph(2_000, 16);
        let seg = Segment::freeze(&g, rows.len(), 16, |i| &rows[i]);
        assert_eq!(seg.len(), 2_000);
        assert!(seg.walkable(), "2,000 points have upper layers");
        assert_eq!(seg.row(17), &rows[17][..]);
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.seg");
        seg.write(&path).unwrap();
        let back = Segment::open(&path, 16).unwrap();
        assert!(back.is_mapped());
        assert_eq!(back.bytes(), seg.bytes());
        let mut found = 0;
        for (i, r) in rows.iter().enumerate().step_by(20) {
            let q: Vec<f32> = r.iter().map(|x| x.to_f32()).collect();
            let hits = back.walk(&q, 32);
            found += usize::from(hits.first().map(|h| h.0) == Some(i));
        }
        assert!(found >= 98, "{found} of 100 points found themselves");
        // Links are hnsw_rs' own: the ground layer of point 0 is its
        // neighbour list there.
        let p0 = g
            .get_point_indexation()
            .into_iter()
            .find(|p| p.get_origin_id() == 0)
            .unwrap();
        let want: Vec<u32> = p0.get_neighborhood_id()[0]
            .iter()
            .map(|n| n.d_id as u32)
            .collect();
        assert_eq!(back.links(0, 0), &want[..]);
    }

    #[test]
    fn a_point_no_link_reaches_is_linked_from_its_nearest() {
        // 2 links to 0, nothing to 2: 2 is reachable only as a start.
        let rows: Vec<Vec<f16>> = (0..3)
            .map(|i| vec![f16::from_f32(i as f32), f16::from_f32(1.0)])
            .collect();
        let links = vec![vec![vec![1]], vec![vec![0]], vec![vec![0, 1]]];
        let seg = Segment::lay_out(links, 3, 2, |i| &rows[i]);
        assert_eq!(seg.orphans(), 0);
        assert_eq!(seg.links(0, 0), &[1, 2], "its nearest links to it");
        assert_eq!(seg.links(1, 0), &[0, 2]);
        assert_eq!(
            seg.relinked().bytes(),
            seg.bytes(),
            "nothing left to repair"
        );
        let (g, rows) = graph(3_000, 8);
        let seg = Segment::freeze(&g, rows.len(), 8, |i| &rows[i]);
        assert_eq!(seg.orphans(), 0, "every frozen point is reachable");
    }

    #[test]
    fn points_left_with_few_links_are_linked_again_from_a_search() {
        let (g, rows) = graph(3_000, 8);
        let seg = Segment::freeze(&g, rows.len(), 8, |i| &rows[i]);
        let seg = seg.relink_short().unwrap_or(seg);
        assert_eq!(seg.short(MIN_LINKS), 0);
        assert!(seg.relink_short().is_none(), "nothing left to relink");
        // Point 5 cut off: one link of its own, none to it (laying out
        // links it back from that one).
        let mut links = seg.all_links();
        links[5][0].truncate(1);
        for (p, l) in links.iter_mut().enumerate() {
            if p != 5 {
                l[0].retain(|&x| x != 5);
            }
        }
        let cut = Segment::lay_out(links, rows.len(), 8, |i| &rows[i]);
        assert_eq!(cut.links(5, 0).len(), 1);
        assert_eq!(in_degrees(cut.n, |p| cut.links(p, 0))[5], 1);
        let fixed = cut.relink_short().unwrap();
        assert!(
            fixed.links(5, 0).len() > RELINK_LINKS / 2,
            "{:?}",
            fixed.links(5, 0)
        );
        assert!(in_degrees(fixed.n, |p| fixed.links(p, 0))[5] > (RELINK_LINKS / 2) as u32);
        let q: Vec<f32> = rows[5].iter().map(|x| x.to_f32()).collect();
        assert_eq!(fixed.walk(&q, 32)[0].0, 5);
        // Its new links are near it: the nearest of them is its true
        // nearest neighbour.
        let nearest = (0..rows.len())
            .filter(|&p| p != 5)
            .max_by(|&a, &b| dot_f16_f32(&rows[a], &q).total_cmp(&dot_f16_f32(&rows[b], &q)))
            .unwrap();
        assert!(fixed.links(5, 0).contains(&(nearest as u32)));
    }

    #[test]
    fn damaged_segments_are_refused_not_read() {
        let (g, rows) = graph(500, 8);
        let seg = Segment::freeze(&g, rows.len(), 8, |i| &rows[i]);
        let good = seg.bytes().to_vec();
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("s.seg");
        let try_ = |b: &[u8]| {
            std::fs::write(&path, b).unwrap();
            Segment::open(&path, 8)
        };
        assert!(try_(&good).is_ok());
        assert!(matches!(
            Segment::open(&path, 16),
            Err(SegmentError::Garbled(_))
        ));
        // Every truncation, a wrong magic, a link out of bounds, a count too
        // large: an error, never a panic.
        for cut in (0..good.len() - 8).step_by(97) {
            assert!(try_(&good[..cut]).is_err(), "cut at {cut}");
        }
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(try_(&bad), Err(SegmentError::Header)));
        let mut bad = good.clone();
        let last = bad.len() - 8;
        bad[last..last + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(try_(&bad).is_err(), "link or offset out of bounds");
        let mut bad = good.clone();
        bad[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(try_(&bad).is_err());
        // Flipped bytes anywhere in the links: refused or still in bounds.
        let links_from = HEADER + 500 * 8 * 2;
        for at in (links_from..good.len()).step_by(13) {
            let mut bad = good.clone();
            bad[at] ^= 0xA5;
            if let Ok(s) = try_(&bad) {
                let q = vec![0.3f32; 8];
                let _ = s.walk(&q, 16);
            }
        }
    }
}
