//! Approximate nearest neighbours over note vectors (hnsw_rs), persisted in
//! the data dir so a large memory does not rebuild its graph at every start.
//!
//! Files in `<data dir>/ann/`: `vectors.hnsw.graph`, `vectors.hnsw.data`
//! (hnsw_rs' own dump) and `manifest.json` ([`Manifest`]: model id,
//! dimension, and the note id behind every graph point). The manifest is
//! written last, after the dump succeeded, so a crash mid-dump leaves a
//! manifest that does not match and the graph is rebuilt.
//!
//! hnsw_rs cannot delete points. A note that was deleted or edited keeps its
//! old point as a tombstone that searches filter out; points the graph lacks
//! (notes embedded since the last dump) are inserted at load. When tombstones
//! pass a quarter of the points, or the files are missing, truncated, garbled
//! or from another model, the graph is rebuilt from the vectors in redb —
//! which are the truth.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnsw::Hnsw;
use hnsw_rs::hnswio::HnswIo;
use serde::{Deserialize, Serialize};

use super::dot::UnitDot;
use super::vector::VectorIndex;

const BASENAME: &str = "vectors";
const MANIFEST: &str = "manifest.json";
/// Graph parameters: 16 links per point, ef 64 at build time, 96+ at search.
const M: usize = 16;
const EF_CONSTRUCTION: usize = 64;
const EF_SEARCH: usize = 96;
/// Batches at least this large are inserted in parallel.
const PARALLEL_FROM: usize = 32;

/// Version of the files' layout and distance. A manifest of another
/// format (or without one) names a graph this build does not read: it is
/// rebuilt. 2: [`UnitDot`] on unscaled vectors (1 scaled them for anndists'
/// `DistDot`, which asserted `a·b <= 1`).
const FORMAT: u32 = 2;

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

pub struct Ann {
    graph: Hnsw<'static, f32, UnitDot>,
    /// Graph point → note id.
    points: Vec<u64>,
    /// Graph point → fingerprint of its vector.
    hashes: Vec<u64>,
    /// Note id → its live graph point; points not named here are tombstones.
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

impl Ann {
    fn empty(capacity: usize, model_id: &str, dim: usize) -> Ann {
        let layers = 16;
        Ann {
            graph: Hnsw::new(M, capacity.max(1024), layers, EF_CONSTRUCTION, UnitDot),
            points: Vec::new(),
            hashes: Vec::new(),
            live: HashMap::new(),
            model_id: model_id.to_owned(),
            dim,
        }
    }

    /// Builds a graph over every vector in `idx`.
    pub fn build(idx: &VectorIndex, model_id: &str) -> Ann {
        let mut ann = Ann::empty(idx.len() * 2, model_id, idx.dim());
        let all: Vec<(u64, &[f32])> = idx.iter().map(|(id, _, v)| (id, v)).collect();
        ann.insert_many(&all);
        ann
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
    pub fn insert(&mut self, id: u64, v: &[f32]) {
        self.insert_many(&[(id, v)]);
    }

    /// Adds (or replaces) many notes' vectors. Batches are inserted on every
    /// core (hnsw_rs' parallel insert: the graph's shape then depends on
    /// thread timing, its quality does not).
    pub fn insert_many(&mut self, batch: &[(u64, &[f32])]) {
        let first = self.points.len();
        let points: Vec<(&[f32], usize)> = batch
            .iter()
            .enumerate()
            .map(|(i, (_, v))| (*v, first + i))
            .collect();
        if points.len() < PARALLEL_FROM {
            points.iter().for_each(|p| self.graph.insert_slice(*p));
        } else {
            self.graph.parallel_insert_slice(&points);
        }
        for (i, (id, v)) in batch.iter().enumerate() {
            self.points.push(*id);
            self.hashes.push(fingerprint(v));
            self.live.insert(*id, first + i);
        }
    }

    pub fn remove(&mut self, id: u64) {
        self.live.remove(&id);
    }

    /// Top `k` (note id, cosine) among live points accepted by `keep`.
    pub fn search(&self, q: &[f32], k: usize, keep: &dyn Fn(u64) -> bool) -> Vec<(u64, f32)> {
        let filter = |p: &usize| {
            let id = self.points[*p];
            self.live.get(&id) == Some(p) && keep(id)
        };
        self.graph
            .search_filter(q, k, EF_SEARCH.max(k), Some(&filter))
            .into_iter()
            .map(|n| (self.points[n.d_id], 1.0 - n.distance))
            .collect()
    }

    /// Writes the graph and then the manifest into `dir`.
    pub fn save(&self, dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_file(dir.join(MANIFEST));
        let used = self.graph.file_dump(dir, BASENAME)?;
        anyhow::ensure!(used == BASENAME, "graph files are in use; dumped as {used}");
        let m = Manifest {
            format: FORMAT,
            model_id: self.model_id.clone(),
            dim: self.dim,
            points: self.points.clone(),
            hashes: self.hashes.clone(),
            graph_sha256: crate::models::sha256_file(&dir.join(format!("{BASENAME}.hnsw.graph")))?,
            data_sha256: crate::models::sha256_file(&dir.join(format!("{BASENAME}.hnsw.data")))?,
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
        let m: Manifest = serde_json::from_slice(&std::fs::read(dir.join(MANIFEST))?)?;
        anyhow::ensure!(m.format == FORMAT, "graph files are of another format");
        anyhow::ensure!(
            m.model_id == model_id && m.dim == idx.dim(),
            "graph is for another model"
        );
        let graph_ok = crate::models::sha256_file(&dir.join(format!("{BASENAME}.hnsw.graph")))?
            == m.graph_sha256;
        let data_ok = crate::models::sha256_file(&dir.join(format!("{BASENAME}.hnsw.data")))?
            == m.data_sha256;
        anyhow::ensure!(
            graph_ok && data_ok,
            "graph files do not match their manifest (damaged or partly written)"
        );
        // hnsw_rs' loaded graph borrows its loader for its whole life; the
        // loader is a few paths, leaked once per load.
        let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(dir, BASENAME)));
        let graph: Hnsw<'static, f32, UnitDot> = io.load_hnsw_with_dist(UnitDot)?;
        anyhow::ensure!(
            graph.get_nb_point() == m.points.len() && m.hashes.len() == m.points.len(),
            "graph and manifest disagree"
        );
        let mut ann = Ann {
            graph,
            points: m.points,
            hashes: m.hashes,
            live: HashMap::new(),
            model_id: model_id.to_owned(),
            dim: idx.dim(),
        };
        // Live points are those whose stored vector is still the one in the graph.
        let mut last: HashMap<u64, usize> = HashMap::new();
        for (p, id) in ann.points.iter().enumerate() {
            last.insert(*id, p);
        }
        let mut missing = Vec::new();
        for (id, _, v) in idx.iter() {
            match last.get(&id) {
                Some(&p) if ann.hashes[p] == fingerprint(v) => {
                    ann.live.insert(id, p);
                }
                _ => missing.push((id, v)),
            }
        }
        ann.insert_many(&missing);
        let added = missing.len();
        anyhow::ensure!(
            ann.tombstones() * 4 <= ann.points.len().max(1),
            "too many deleted points"
        );
        Ok((ann, added))
    }
}

/// FNV-1a over the vector's bytes.
fn fingerprint(v: &[f32]) -> u64 {
    v.iter()
        .flat_map(|x| x.to_le_bytes())
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
