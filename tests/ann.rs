//! The ANN graph against exact search, and its persistence: reload, catch
//! up, and rebuild when the files are missing, truncated, garbled or stale.

use std::time::Instant;

use mnemo::memory::ann::{Ann, Origin};
use mnemo::memory::vector::VectorIndex;
use mnemo::memory::Chats;

const DIM: usize = 384;
const MODEL: &str = "test-model/384";

/// Deterministic xorshift so the data is the same every run.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 40) as f32 / (1u64 << 24) as f32 - 0.5
    }
}

fn unit(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// `n` vectors around 300 topic centres (sentence embeddings cluster by
/// topic), spread over 5 chats.
fn corpus(n: usize, seed: u64) -> VectorIndex {
    let mut rng = Rng(seed);
    let centres: Vec<Vec<f32>> = (0..300)
        .map(|_| unit((0..DIM).map(|_| rng.next()).collect()))
        .collect();
    let mut idx = VectorIndex::new(DIM);
    for i in 0..n {
        let c = &centres[i % centres.len()];
        let v = unit(c.iter().map(|x| x + 0.09 * rng.next()).collect());
        assert!(idx.insert(i as u64 + 1, (i % 5) as i64, &v));
    }
    idx
}

fn wide(v: &[mnemo::memory::dot::f16]) -> Vec<f32> {
    v.iter().map(|x| x.to_f32()).collect()
}

fn queries(idx: &VectorIndex, n: usize) -> Vec<Vec<f32>> {
    let mut rng = Rng(99);
    (0..n)
        .map(|i| {
            let base = idx.get((i * 97 % idx.len()) as u64 + 1).unwrap();
            unit(
                base.iter()
                    .map(|x| x.to_f32() + 0.05 * rng.next())
                    .collect(),
            )
        })
        .collect()
}

fn recall_at_10(ann: &Ann, idx: &VectorIndex, qs: &[Vec<f32>], chat: Option<i64>) -> f64 {
    let mut found = 0;
    let mut total = 0;
    for q in qs {
        let exact: Vec<u64> = idx
            .search_exact(q, chat, 10)
            .into_iter()
            .map(|h| h.0)
            .collect();
        let chats = chat.map_or(Chats::ALL, Chats::one);
        let approx: Vec<u64> = ann.search(q, 10, chats).into_iter().map(|h| h.0).collect();
        found += exact.iter().filter(|id| approx.contains(id)).count();
        total += exact.len();
    }
    found as f64 / total as f64
}

#[test]
fn ann_recall_at_10_against_brute_force_on_20k_vectors() {
    let idx = corpus(20_000, 7);
    let t = Instant::now();
    let mut ann = Ann::build(&idx, MODEL);
    let built = t.elapsed();
    // hnsw_rs leaves some points of clustered data with a link or two
    // (inserted from the wrong cluster); building relinks them.
    assert_eq!(ann.short(16), 0, "every point has at least 16 links");
    assert_eq!(ann.orphans(), 0);
    let qs = queries(&idx, 200);
    // A chat of 4,000 points is searched exactly by default; through the
    // graph (filtered after a widened beam) here.
    assert_eq!(recall_at_10(&ann, &idx, &qs, Some(3)), 1.0);
    ann.set_exact_max(0);
    let r_all = recall_at_10(&ann, &idx, &qs, None);
    let r_chat = recall_at_10(&ann, &idx, &qs, Some(3));
    println!("20k: build {built:?}, recall@10 {r_all:.3} (all), {r_chat:.3} (one chat)");
    assert!(r_all >= 0.95, "recall@10 {r_all}");
    assert!(r_chat >= 0.95, "recall@10 within a chat {r_chat}");
}

/// Repeat detection in a chat too large for an exact scan goes through the
/// graph (`Indexes::nearest`): a near-copy of any stored note (cosine ≥ 0.95,
/// mnemo's repeat threshold is 0.95 or more) must come back as the nearest.
#[test]
fn a_near_copy_is_the_nearest_through_the_graph() {
    let idx = corpus(20_000, 21);
    let mut ann = Ann::build(&idx, MODEL);
    ann.set_exact_max(0);
    let mut rng = Rng(5);
    let mut checked = 0;
    for i in (0..20_000u64).step_by(97) {
        let id = i + 1;
        let stored = wide(idx.get(id).unwrap());
        let copy = unit(stored.iter().map(|x| x + 0.05 * rng.next()).collect());
        let cos: f32 = copy.iter().zip(&stored).map(|(a, b)| a * b).sum();
        if cos < 0.95 {
            continue;
        }
        let chat = (i % 5) as i64;
        let exact = idx.search_exact(&copy, Some(chat), 1)[0];
        let got = ann.search(&copy, 1, Chats::one(chat));
        assert_eq!(got.first().map(|h| h.0), Some(exact.0), "near-copy of {id}");
        checked += 1;
    }
    assert!(checked > 150, "{checked} near-copies checked");
}

#[test]
fn the_graph_survives_restarts_and_is_rebuilt_when_damaged() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ann");
    let mut idx = corpus(3_000, 11);
    let mut ann = Ann::build(&idx, MODEL);
    ann.save(&dir).unwrap();
    let qs = queries(&idx, 30);

    // Clean reload: nothing to add, same answers.
    let (loaded, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Loaded { added: 0 });
    assert!(recall_at_10(&loaded, &idx, &qs, None) >= 0.95);

    // Stale: notes added, one deleted, one edited since the dump.
    let extra = corpus(3_100, 12);
    for (id, chat, v) in extra.iter().filter(|(id, _, _)| *id > 3_000) {
        idx.insert_f16(id, chat, v);
    }
    idx.remove(5);
    let edited = unit(vec![1.0; DIM]);
    idx.insert(6, 0, &edited);
    let (mut loaded, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Loaded { added: 101 }, "100 new + 1 edited");
    assert!(
        loaded
            .search(&wide(idx.get(5 + 100).unwrap()), 50, Chats::ALL)
            .iter()
            .all(|h| h.0 != 5),
        "deleted note never returned"
    );
    assert_eq!(
        loaded.search(&edited, 1, Chats::ALL)[0].0,
        6,
        "edited vector found"
    );
    assert_eq!(loaded.len(), idx.len());

    // The graph holds the only copy of the vectors: exact search through its
    // points is the flat index's, and a note's vector is the one stored.
    let ids = |h: Vec<(u64, f32)>| h.into_iter().map(|h| h.0).collect::<Vec<_>>();
    for q in &qs {
        assert_eq!(
            ids(loaded.search_exact(q, Chats::ALL, 10)),
            ids(idx.search_exact(q, None, 10))
        );
        assert_eq!(
            ids(loaded.search_exact(q, Chats::one(2), 5)),
            ids(idx.search_exact(q, Some(2), 5))
        );
    }
    assert_eq!(loaded.get(7), idx.get(7));
    assert_eq!(loaded.get(5), None, "deleted");

    // Saved beside the files the loaded graph reads (memory-mapped; the
    // older are unlinked, not truncated), then read again: both answer.
    loaded.save(&dir).unwrap();
    let (again, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Loaded { added: 0 });
    assert!(recall_at_10(&again, &idx, &qs, None) >= 0.95);
    assert!(recall_at_10(&loaded, &idx, &qs, None) >= 0.95);
    drop(again);

    // Another model's graph is not reused.
    assert_eq!(
        Ann::load_or_build(&dir, &idx, "other/384").1,
        Origin::Rebuilt
    );

    // Truncated segment.
    let data = segment_files(&dir).pop().unwrap();
    let bytes = std::fs::read(&data).unwrap();
    std::fs::write(&data, &bytes[..bytes.len() / 3]).unwrap();
    let (mut rebuilt, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Rebuilt);
    assert!(recall_at_10(&rebuilt, &idx, &qs, None) >= 0.95);

    // Garbled manifest.
    rebuilt.save(&dir).unwrap();
    std::fs::write(dir.join("manifest.json"), b"{\"model_id\": 12, garbage").unwrap();
    assert_eq!(Ann::load_or_build(&dir, &idx, MODEL).1, Origin::Rebuilt);

    // Garbled segment bytes (same length), in the vectors and in the links.
    for in_links in [false, true] {
        // A graph of its own each time: its save writes a fresh segment.
        let mut fresh = Ann::build(&idx, MODEL);
        fresh.save(&dir).unwrap();
        let graph = segment_files(&dir).pop().unwrap();
        let mut g = std::fs::read(&graph).unwrap();
        // The links are the file's last ~250 kB (3,099 points · ~20 links).
        let from = if in_links { g.len() - 20_000 } else { 64 };
        for b in g.iter_mut().skip(from).step_by(7).take(1000) {
            *b ^= 0x5A;
        }
        std::fs::write(&graph, &g).unwrap();
        assert_eq!(Ann::load_or_build(&dir, &idx, MODEL).1, Origin::Rebuilt);
    }

    // A manifest naming a file outside the directory is not followed.
    rebuilt.save(&dir).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m["segments"][0]["file"] = "../../etc/passwd".into();
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    let (mut ann, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Rebuilt);
    assert_eq!(ann.len(), idx.len());

    // A graph written by an older build (manifest without `format`, or of
    // an older format) is not read, even with matching hashes.
    ann.save(&dir).unwrap();
    let mut m: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("manifest.json")).unwrap()).unwrap();
    m.as_object_mut().unwrap().remove("format");
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    assert_eq!(Ann::load_or_build(&dir, &idx, MODEL).1, Origin::Rebuilt);
    m["format"] = 1.into();
    std::fs::write(dir.join("manifest.json"), m.to_string()).unwrap();
    assert_eq!(Ann::load_or_build(&dir, &idx, MODEL).1, Origin::Rebuilt);

    // Missing files.
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(Ann::load_or_build(&dir, &idx, MODEL).1, Origin::Rebuilt);
}

/// The first 3,000 notes of `all` in a flat index, and their graph built
/// and saved in `dir`.
fn saved_first_3000(all: &VectorIndex, dir: &std::path::Path) -> (VectorIndex, Ann) {
    let mut idx = VectorIndex::new(DIM);
    for (id, chat, v) in all.iter().filter(|(id, _, _)| *id <= 3_000) {
        idx.insert_f16(id, chat, v);
    }
    let mut ann = Ann::build(&idx, MODEL);
    ann.save(dir).unwrap();
    (idx, ann)
}

/// Notes `ids` of `all` stored in `idx` and added to `ann` as one batch.
fn add(
    all: &VectorIndex,
    idx: &mut VectorIndex,
    ann: &mut Ann,
    ids: std::ops::RangeInclusive<u64>,
) {
    let batch: Vec<_> = ids
        .map(|id| (id, all.chat_of(id).unwrap(), all.get(id).unwrap()))
        .collect();
    for &(id, chat, v) in &batch {
        idx.insert_f16(id, chat, v);
    }
    ann.insert_many(&batch);
}

fn segment_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "ann"))
        .collect();
    v.sort();
    v
}

/// Points added between saves become segments of their own; a save merges
/// the newest while they are comparable in size (tombstones dropped, files
/// of merged segments removed), and a reload reads them all.
#[test]
fn saves_freeze_new_points_into_segments_and_merge_them() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ann");
    let all = corpus(3_800, 11);
    let (mut idx, mut ann) = saved_first_3000(&all, &dir);
    assert_eq!(ann.shape(), (vec![3_000], 0));

    add(&all, &mut idx, &mut ann, 3_001..=3_200);
    assert_eq!(
        ann.shape(),
        (vec![3_000], 200),
        "new points wait in the delta"
    );
    let qs = queries(&all, 40);
    assert!(recall_at_10(&ann, &idx, &qs, None) >= 0.95);
    for id in 1..=50 {
        idx.remove(id);
        ann.remove(id);
    }
    ann.save(&dir).unwrap();
    assert_eq!(
        ann.shape(),
        (vec![3_000, 200], 0),
        "200 · 4 < 3,000: kept apart"
    );
    // The delta was frozen under the lock as hnsw_rs built it, and its
    // weakly linked points relinked as it was written.
    assert_eq!(ann.short(16), 0);
    assert_eq!(segment_files(&dir).len(), 2);
    let (loaded, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Loaded { added: 0 });
    assert_eq!(loaded.shape(), (vec![3_000, 200], 0));
    assert!(recall_at_10(&loaded, &idx, &qs, None) >= 0.95);
    assert!(loaded.get(3_150).is_some() && loaded.get(7).is_none());

    add(&all, &mut idx, &mut ann, 3_201..=3_800);
    ann.save(&dir).unwrap();
    // 600 joins 200 (600 · 4 ≥ 200), and 800 then joins 3,000: one segment
    // of the 3,750 live points, the 50 tombstones dropped.
    assert_eq!(ann.shape(), (vec![3_750], 0));
    assert_eq!(ann.tombstones(), 0);
    assert_eq!(
        segment_files(&dir).len(),
        1,
        "merged segments' files removed"
    );
    let (loaded, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Loaded { added: 0 });
    assert_eq!(loaded.len(), 3_750);
    let qs = queries(&all, 40);
    assert!(recall_at_10(&loaded, &idx, &qs, None) >= 0.95);
    assert!(recall_at_10(&loaded, &idx, &qs, Some(2)) >= 0.95);
    for id in [51, 3_000, 3_001, 3_800] {
        assert_eq!(loaded.get(id), idx.get(id), "note {id}");
    }
    assert_eq!(loaded.get(50), None);
}

/// A save merges and writes without the lock (`SavePlan::run`): notes added
/// meanwhile wait in the delta, notes deleted or edited meanwhile stay dead
/// in the merged segment, and the manifest names only what is in segments.
#[test]
fn points_come_and_go_while_a_save_merges() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ann");
    let all = corpus(4_000, 13);
    let (mut idx, mut ann) = saved_first_3000(&all, &dir);
    add(&all, &mut idx, &mut ann, 3_001..=3_800);
    let plan = ann.begin_save(true);
    assert_eq!(
        ann.shape(),
        (vec![3_000, 800], 0),
        "the delta frozen at once"
    );
    // While the merge of 3,000 + 800 is built: 200 notes arrive, 10 old
    // and 10 frozen ones are deleted, one old note is edited.
    add(&all, &mut idx, &mut ann, 3_801..=4_000);
    for id in (1..=10).chain(3_001..=3_010) {
        idx.remove(id);
        ann.remove(id);
    }
    let edited = unit(vec![1.0; DIM]);
    idx.insert(20, 0, &edited);
    ann.insert(20, 0, &edited);
    let work = plan.run(&dir).unwrap();
    let m = ann.finish_save(work).unwrap();
    mnemo::memory::ann::write_manifest(&dir, &m).unwrap();
    assert_eq!(
        ann.shape(),
        (vec![3_800], 201),
        "one merged segment, the delta kept"
    );
    assert_eq!(ann.len(), idx.len());
    assert_eq!(
        m.points.len(),
        3_800,
        "the manifest names the segments' points only"
    );
    for id in [1, 3_001] {
        assert_eq!(ann.get(id), None, "deleted during the save: {id}");
    }
    for id in [11, 3_011, 3_900, 4_000] {
        assert_eq!(ann.get(id), idx.get(id), "note {id}");
    }
    assert_eq!(ann.search(&edited, 1, Chats::ALL)[0].0, 20, "the edit wins");
    let qs = queries(&all, 40);
    assert!(recall_at_10(&ann, &idx, &qs, None) >= 0.95);
    // Read back: the 201 points of the delta (200 new, 1 edited) are added.
    let (loaded, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(how, Origin::Loaded { added: 201 });
    assert_eq!(loaded.len(), idx.len());
    assert!(recall_at_10(&loaded, &idx, &qs, None) >= 0.95);
    // A plan for one graph is refused by another.
    let mut other = Ann::build(&idx, MODEL);
    let work = ann.begin_save(false).run(&dir).unwrap();
    assert!(other.finish_save(work).is_err());
}

/// A save that stops after writing its segments (the process killed, the
/// disk full before the manifest): the previous manifest and its files are
/// untouched, so the next start loads them and adds what they lack; the
/// stray segment is removed by the next save. A save into a place it cannot
/// write fails with an error and leaves the graph answering.
#[test]
fn a_save_cut_short_leaves_the_previous_graph_readable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("ann");
    let all = corpus(3_500, 17);
    let (mut idx, mut ann) = saved_first_3000(&all, &dir);
    let before = std::fs::read(dir.join("manifest.json")).unwrap();
    add(&all, &mut idx, &mut ann, 3_001..=3_500);
    // Cut short: the 500 new points' segment written, no manifest.
    let work = ann.begin_save(true).run(&dir).unwrap();
    drop(work);
    drop(ann);
    assert_eq!(std::fs::read(dir.join("manifest.json")).unwrap(), before);
    assert_eq!(
        segment_files(&dir).len(),
        2,
        "the old segment and a stray one"
    );
    let stray = segment_files(&dir).pop().unwrap();
    let (mut loaded, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(
        how,
        Origin::Loaded { added: 500 },
        "the points the old graph lacks"
    );
    let qs = queries(&all, 40);
    assert!(recall_at_10(&loaded, &idx, &qs, None) >= 0.95);
    loaded.save(&dir).unwrap();
    assert!(!stray.exists(), "the stray segment is removed");
    assert_eq!(segment_files(&dir).len(), 2);
    assert_eq!(loaded.shape(), (vec![3_000, 500], 0));

    // A directory that cannot be written: an error, the graph unchanged.
    let blocked = tmp.path().join("a-file");
    std::fs::write(&blocked, b"not a directory").unwrap();
    loaded.insert(9_999, 1, &unit(vec![0.5; DIM]));
    assert!(loaded.save(&blocked).is_err());
    assert_eq!(loaded.len(), 3_501);
    assert_eq!(
        loaded.search(&unit(vec![0.5; DIM]), 1, Chats::ALL)[0].0,
        9_999
    );
    loaded.save(&dir).unwrap();
    let (again, how) = Ann::load_or_build(&dir, &idx, MODEL);
    assert_eq!(
        how,
        Origin::Loaded { added: 0 },
        "idx lacks 9,999: a tombstone, not an addition"
    );
    assert_eq!(again.len(), idx.len());
}
