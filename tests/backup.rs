//! Backups end to end: `mnemo backup`, `backup verify` and `restore`
//! through the real binary (offline and beside a running `serve`), a backup
//! taken while notes are written, damaged archives, and retention.

mod support;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use mnemo::backup;
use mnemo::store::{Aggregate, FeedbackEvent, Item, ItemKind, NewNote, Note, Source, Store, Vote};
use support::fake_telegram::{self as tg, FakeTelegram, TOKEN};
use support::{run_mnemo, ServeProcess};

const OWNER: i64 = 4242;
const T: Duration = Duration::from_secs(20);

fn new_note(i: i64, text: &str) -> NewNote {
    NewNote {
        chat_id: OWNER,
        user_id: OWNER,
        message_id: Some(i),
        text: text.into(),
        created_at: 1_700_000_000_000 + i,
        source: Source::Telegram,
        author: None,
    }
}

/// A data dir with notes (some with to-dos), votes (compacted and in the
/// log), a key file and voice audio.
fn fill(dir: &Path) {
    let store = Store::open(dir).unwrap();
    store
        .write(|tx| {
            for i in 1..=40 {
                let text = if i % 4 == 0 {
                    format!("todo: call the plumber about pipe {i}")
                } else {
                    format!("note {i}: the blue door code is {}", i * 37)
                };
                tx.insert_note(new_note(i, &text))?;
            }
            Ok(())
        })
        .unwrap();
    let vote = |note_id, user_id, vote| FeedbackEvent {
        note_id,
        chat_id: OWNER,
        user_id,
        vote,
        at: 5,
        query: "door code".into(),
        qvec: None,
        qspace: String::new(),
    };
    store
        .write(|tx| {
            tx.append_feedback(&vote(1, OWNER, Vote::Helpful))?;
            tx.append_feedback(&vote(2, 7, Vote::Outdated))?;
            tx.compact_feedback()?;
            tx.append_feedback(&vote(3, OWNER, Vote::NotHelpful))?;
            Ok(())
        })
        .unwrap();
    // The signing key, as `serve` creates it on its first start.
    mnemo::buttons::Keyring::load_or_create(dir, None, 86_400, 1_700_000_000).unwrap();
    assert!(dir.join("callback.key").is_file());
    std::fs::create_dir_all(dir.join("voice")).unwrap();
    std::fs::write(dir.join("voice/1.ogg"), vec![0x4f; 20_000]).unwrap();
    std::fs::write(dir.join("voice/2.ogg"), b"OggS tiny").unwrap();
}

/// Everything a user would miss: notes, votes, to-dos, audio, the key.
#[derive(Debug, PartialEq)]
struct Snapshot {
    notes: Vec<Note>,
    votes: std::collections::HashMap<u64, Aggregate>,
    todos: Vec<Item>,
    files: BTreeMap<String, Vec<u8>>,
}

fn snapshot(dir: &Path) -> Snapshot {
    let store = Store::open(dir).unwrap();
    let mut notes = Vec::new();
    store.for_each_note(|n| notes.push(n)).unwrap();
    let mut files = BTreeMap::new();
    for name in ["callback.key", "voice/1.ogg", "voice/2.ogg"] {
        files.insert(name.to_owned(), std::fs::read(dir.join(name)).unwrap());
    }
    Snapshot {
        notes,
        votes: store.feedback_state().unwrap(),
        todos: store.items(OWNER, ItemKind::Todo, false, 1000).unwrap(),
        files,
    }
}

async fn json(dir: &Path, args: &[&str]) -> serde_json::Value {
    let (code, out, err) = run_mnemo(dir, args).await;
    assert_eq!(code, 0, "mnemo {args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// Every file under `dir` with its bytes.
fn tree(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_verify_and_restore_bring_back_every_note_vote_todo_and_audio_file() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fill(&data);
    let before = snapshot(&data);
    assert_eq!(before.notes.len(), 40);
    assert_eq!(before.todos.len(), 10);
    assert_eq!(before.votes.len(), 3);

    let out = tmp.path().join("archives");
    let b = json(&data, &["backup", "--to", out.to_str().unwrap(), "--json"]).await;
    let archive = PathBuf::from(b["archive"].as_str().unwrap());
    assert!(archive.starts_with(&out), "{b}");
    assert_eq!(b["notes"], 40);
    assert_eq!(b["todos"], 10);
    assert_eq!(b["votes"], 3);
    assert_eq!(b["audio_files"], 2);
    assert_eq!(b["verified"], true);
    assert_eq!(
        b["bytes"].as_u64().unwrap(),
        std::fs::metadata(&archive).unwrap().len()
    );
    assert_eq!(b["sha256"].as_str().unwrap().len(), 64);

    let v = json(
        &data,
        &["backup", "verify", archive.to_str().unwrap(), "--json"],
    )
    .await;
    assert_eq!(v["ok"], true, "{v}");
    assert_eq!(v["notes"], 40);
    assert!(v.get("error").is_none(), "{v}");

    // The store remembers it (for the health check).
    let rec = Store::open(&data).unwrap().last_backup().unwrap().unwrap();
    assert!(rec.verified);
    assert_eq!(PathBuf::from(&rec.path), archive);

    let fresh = tmp.path().join("fresh");
    let r = json(&fresh, &["restore", archive.to_str().unwrap(), "--json"]).await;
    assert!(r["moved_aside"].is_null(), "{r}");
    assert_eq!(snapshot(&fresh), before);
    // A human-readable run says what it did, from the locale files.
    let (code, out, err) = run_mnemo(&data, &["backup", "--to", out.to_str().unwrap()]).await;
    assert_eq!(code, 0, "{err}");
    assert!(
        out.contains("backup written to") && out.contains("40 notes"),
        "{out}"
    );
}

#[test]
fn a_backup_taken_while_notes_are_written_holds_whole_commits() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let store = Arc::new(Store::open(&data).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (store, stop) = (store.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                // Ten notes per commit: a backup holds all ten or none.
                store
                    .write(|tx| {
                        for _ in 0..10 {
                            i += 1;
                            tx.insert_note(new_note(i, &format!("todo: item {i} of a busy day")))?;
                        }
                        Ok(())
                    })
                    .unwrap();
            }
            i
        })
    };
    let out = tmp.path().join("out");
    let mut archives = Vec::new();
    for _ in 0..3 {
        std::thread::sleep(Duration::from_millis(150));
        archives.push(backup::create(&store, &out, &mut |_, _, _| {}).unwrap());
    }
    stop.store(true, Ordering::Relaxed);
    let written = writer.join().unwrap() as u64;
    let mut last = 0;
    for (k, w) in archives.iter().enumerate() {
        let n = w.manifest.counts.notes;
        assert!(
            n > last && n <= written,
            "archive {k}: {n} notes, {written} written"
        );
        assert_eq!(n % 10, 0, "archive {k} holds part of a commit: {n} notes");
        assert_eq!(w.manifest.counts.todos, n);
        last = n;
        let target = tmp.path().join(format!("restored-{k}"));
        let r = backup::restore(&w.archive, &target, false).unwrap();
        assert_eq!(r.notes, n);
        let restored = Store::open(&target).unwrap();
        let c = restored.contents().unwrap();
        assert_eq!(c.notes, n);
        assert_eq!(c.notes_sha256, w.manifest.notes_sha256);
        let mut ids = Vec::new();
        restored.for_each_note(|note| ids.push(note.id)).unwrap();
        assert_eq!(ids, (1..=n).collect::<Vec<_>>(), "no gaps, nothing after");
    }
    assert!(
        last < written,
        "the writer kept writing after the last backup"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_damaged_archive_is_refused_by_verify_and_restore_and_nothing_changes() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fill(&data);
    let w = {
        let store = Store::open(&data).unwrap();
        backup::create(&store, &tmp.path().join("out"), &mut |_, _, _| {}).unwrap()
    };
    let good = std::fs::read(&w.archive).unwrap();
    let target = tmp.path().join("target");
    fill(&target);
    let untouched = tree(&target);
    let parent_before: Vec<_> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    let mut flipped = good.clone();
    flipped[good.len() / 3] ^= 0x20;
    for (what, bytes) in [
        ("flipped", flipped),
        ("truncated", good[..good.len() * 2 / 3].to_vec()),
    ] {
        let bad = tmp.path().join(format!("{what}.tar.zst"));
        std::fs::write(&bad, &bytes).unwrap();
        let (code, out, err) = run_mnemo(
            &data,
            &["backup", "verify", bad.to_str().unwrap(), "--json"],
        )
        .await;
        assert_ne!(code, 0, "{what}: verify accepted it");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["ok"], false, "{what}: {v}");
        assert!(
            v["error"].as_str().unwrap().contains("damaged"),
            "{what}: {v}"
        );
        assert!(err.contains("damaged"), "{what}: {err}");
        let (code, _, err) =
            run_mnemo(&target, &["restore", bad.to_str().unwrap(), "--force"]).await;
        assert_ne!(code, 0, "{what}: restore accepted it");
        assert!(err.contains("damaged"), "{what}: {err}");
        assert_eq!(tree(&target), untouched, "{what}: the target changed");
        std::fs::remove_file(&bad).unwrap();
        let parent_after: Vec<_> = std::fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(parent_after, parent_before, "{what}: staging left behind");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_over_data_needs_force_and_keeps_the_old_data_aside() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fill(&data);
    let b = json(&data, &["backup", "--json"]).await;
    let archive = b["archive"].as_str().unwrap().to_owned();
    // The default dir is <data dir>/backups.
    assert!(Path::new(&archive).starts_with(data.join("backups")), "{b}");
    let other = tmp.path().join("other");
    Store::open(&other)
        .unwrap()
        .write(|tx| tx.insert_note(new_note(1, "only here")).map(|_| ()))
        .unwrap();
    let untouched = tree(&other);
    let (code, _, err) = run_mnemo(&other, &["restore", &archive]).await;
    assert_ne!(code, 0);
    assert!(err.contains("--force"), "{err}");
    assert_eq!(tree(&other), untouched);

    let (code, out, err) = run_mnemo(&other, &["restore", &archive, "--force"]).await;
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("restored") && out.contains("kept in"), "{out}");
    assert_eq!(Store::open(&other).unwrap().count_notes().unwrap(), 40);
    let aside: Vec<PathBuf> = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("other.before-restore-")
        })
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    let old = Store::open(&aside[0]).unwrap();
    assert_eq!(old.count_notes().unwrap(), 1);
    assert_eq!(old.note(1).unwrap().unwrap().text, "only here");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backup_asks_the_running_serve_and_restore_refuses_beside_it() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fill(&data);
    let tg = FakeTelegram::start().await;
    let mut p = ServeProcess::spawn(&data, &tg.url(), &OWNER.to_string(), TOKEN);
    tg.push(tg::text(OWNER, 100, "a note written while serving"));
    tg.wait_sent(OWNER, 1, T).await;
    let out = tmp.path().join("out");
    let b = json(&data, &["backup", "--to", out.to_str().unwrap(), "--json"]).await;
    assert_eq!(b["notes"], 41, "{b}");
    assert_eq!(b["verified"], true);
    let archive = b["archive"].as_str().unwrap().to_owned();
    assert!(Path::new(&archive).starts_with(&out));
    let (code, _, err) = run_mnemo(&data, &["restore", &archive, "--force"]).await;
    assert_ne!(code, 0);
    assert!(err.contains("running") || err.contains("in use"), "{err}");
    p.term();
    assert!(p.wait_exit(T).await.success());
    let v = json(&data, &["backup", "verify", &archive, "--json"]).await;
    assert_eq!(v["ok"], true);
    let fresh = tmp.path().join("fresh");
    json(&fresh, &["restore", &archive, "--json"]).await;
    let store = Store::open(&fresh).unwrap();
    let mut texts = Vec::new();
    store.for_each_note(|n| texts.push(n.text)).unwrap();
    assert!(texts.iter().any(|t| t == "a note written while serving"));
}

#[test]
fn the_daily_job_keeps_keep_archives_and_never_the_last_verified() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    fill(&data);
    let store = Store::open(&data).unwrap();
    let dir = tmp.path().join("daily");
    let archives = |dir: &Path| {
        let mut v: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.ends_with(backup::SUFFIX))
            .collect();
        v.sort();
        v
    };
    for _ in 0..4 {
        backup::scheduled(&store, &dir, 2).unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    let left = archives(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    let last = store.last_verified_backup().unwrap().unwrap();
    assert!(last.path.ends_with(left.last().unwrap()), "{last:?}");
    // Newer archives that never verified (written by hand, copied in) push
    // the verified one out of the newest `keep`: it stays anyway.
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(5));
        backup::create(&store, &dir, &mut |_, _, _| {}).unwrap();
    }
    backup::prune(&dir, 1, Some(Path::new(&last.path))).unwrap();
    let left = archives(&dir);
    assert_eq!(left.len(), 2, "{left:?}");
    assert!(last.path.ends_with(&left[0]), "{left:?}");
}

/// Sizes and times for docs/RELIABILITY.md:
/// `cargo test --release --test backup -- --ignored --nocapture measure`.
#[test]
#[ignore]
fn measure_backup_and_verify_of_100k_notes() {
    use mnemo::core::{Core, Settings};
    use std::time::Instant;
    let n = std::env::var("BACKUP_NOTES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let texts: Vec<String> = [
        "dentist moved to Friday at 3pm, bring the insurance card",
        "todo: renew the passport before the trip to Lisbon in May",
        "the wifi password at the cabin is on the fridge, ask Jonas",
        "we decided to paint the hallway a warm grey, not white",
        "Anna's birthday is on the 14th; she likes dark chocolate",
        "call the plumber about the dripping kitchen tap next week",
    ]
    .map(String::from)
    .to_vec();
    let mut rng = support::synth::Rng(0x9E37_79B9_7F4A_7C15);
    let msgs = support::synth::messages(n, &[1, 2, 3], &texts, &mut rng);
    {
        let core = Core::new(
            Store::open(&data).unwrap(),
            Settings::from_config(&mnemo::config::Config::defaults()),
        )
        .unwrap();
        core.import(&msgs, 1000, |_, _| {}).unwrap();
    }
    // 384-dim vectors for every note, as the real model leaves them.
    support::synth::mark_model(&data, &mut rng);
    let store = Store::open(&data).unwrap();
    let db = store.file_size();
    let out = tmp.path().join("out");
    let t = Instant::now();
    let w = backup::create(&store, &out, &mut |_, _, _| {}).unwrap();
    let write = t.elapsed().as_secs_f64();
    let t = Instant::now();
    backup::verify(&w.archive).unwrap();
    let verify = t.elapsed().as_secs_f64();
    let snap = w
        .manifest
        .files
        .iter()
        .find(|f| f.path == "mnemo.redb")
        .unwrap()
        .bytes;
    println!(
        "{n} notes ({} to-dos): live db {:.1} MB, snapshot {:.1} MB, archive {:.1} MB; backup {write:.2} s, verify {verify:.2} s",
        w.manifest.counts.todos,
        db as f64 / 1e6,
        snap as f64 / 1e6,
        w.bytes as f64 / 1e6
    );
}
