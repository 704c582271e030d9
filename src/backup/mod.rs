//! Backups: one file that holds everything needed to get a lost mnemo back,
//! and the proof that it does.
//!
//! # What an archive is
//!
//! `mnemo-backup-20261204T033000.123Z.tar.zst`: a tar container, compressed
//! with zstd (one frame, with zstd's own checksum of the content), holding
//!
//! ```text
//! mnemo.redb        a snapshot of the database (every table, one commit)
//! callback.key      the button signing key, if the data dir has one
//! voice/<file>      the kept audio of voice notes
//! manifest.json     written last: what the archive holds and how to check it
//! ```
//!
//! The manifest lists every other file with its size and sha256, the counts
//! (notes, vote records, to-dos, audio files, rows of every table) and a
//! sha256 over the stored notes (see [`crate::store::Contents`]). Derived
//! state — the ANN graph, the lexical index — is not in it: mnemo rebuilds it
//! from the database on the first start after a restore.
//!
//! # Writing one ([`create`])
//!
//! 1. Estimate the space needed (the database twice — the snapshot and the
//!    archive — plus the audio) and refuse early if the disk has less.
//! 2. [`Store::snapshot_to`]: every row of every table, read under *one*
//!    read transaction, into a fresh database next to the archive; its
//!    integrity is checked. The bot keeps writing meanwhile — a read
//!    transaction does not block writers — and what it writes after the
//!    read began is simply not in this backup.
//! 3. Stream the snapshot, the key and the audio into the tar, through zstd,
//!    into a temporary file in the target dir (0600), hashing every file on
//!    the way and the whole archive as it is written.
//! 4. `fsync` the file, rename it to its final name (atomic: a reader sees
//!    no archive or a whole one), `fsync` the directory (so the rename
//!    survives a power cut).
//!
//! # Checking one ([`verify`])
//!
//! A backup that has never been restored is a hope. [`verify`] *restores*:
//! it unpacks into a temporary directory (reading to the end of the zstd
//! frame, so a truncated or flipped byte fails its checksum), checks every
//! file against the manifest's sha256, runs redb's integrity check on the
//! database, opens it with the normal [`Store::open`] and compares its
//! counts and notes hash with the manifest. [`backup`] runs it after every
//! write; an archive that fails is renamed `….failed` and the backup counts
//! as failed.
//!
//! # Getting it back ([`restore`])
//!
//! Only while no mnemo holds the data dir. The archive is unpacked and
//! verified in a staging dir beside the data dir *before* anything is
//! touched; then the data dir — if it holds anything — is renamed to
//! `<data dir>.before-restore-<time>` (never deleted) and the staging dir
//! renamed into its place.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};

use anyhow::{anyhow, bail, Context};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::store::{BackupRecord, Store, DB_FILE};

/// Version of the archive layout; [`verify`] refuses newer ones.
pub const FORMAT: u32 = 1;
/// Archives are named `mnemo-backup-<UTC time to the ms>.tar.zst`, so that
/// names sort by time.
pub const PREFIX: &str = "mnemo-backup-";
pub const SUFFIX: &str = ".tar.zst";
/// The manifest's name inside the archive.
pub const MANIFEST: &str = "manifest.json";
/// Where voice audio lives, in the data dir and in the archive.
const VOICE: &str = "voice";
/// zstd level: 3 is zstd's default, fast and within a few % of 9 on text.
const LEVEL: i32 = 3;

/// What an archive holds; its last entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    /// RFC 3339, UTC.
    pub created_at: String,
    pub mnemo_version: String,
    pub schema_version: u32,
    pub counts: Counts,
    /// See [`Contents::notes_sha256`].
    pub notes_sha256: String,
    /// Rows of every table, by name.
    pub tables: BTreeMap<String, u64>,
    /// Every other entry of the archive.
    pub files: Vec<FileEntry>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub notes: u64,
    pub votes: u64,
    pub todos: u64,
    pub audio_files: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Path inside the archive (`mnemo.redb`, `voice/12.ogg`).
    pub path: String,
    pub bytes: u64,
    pub sha256: String,
}

/// Which part of [`create`] a progress report is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Copying rows into the snapshot (done, total rows).
    Snapshot,
    /// Packing files into the archive (done, total bytes before compression).
    Pack,
    /// Checking the written archive (done, total bytes of the archive).
    Verify,
}

/// Progress callback: (phase, done, total).
pub type Progress<'a> = &'a mut dyn FnMut(Phase, u64, u64);

/// A written archive.
#[derive(Debug, Clone)]
pub struct Written {
    pub archive: PathBuf,
    /// Size of the archive file.
    pub bytes: u64,
    /// sha256 of the archive file, hex.
    pub sha256: String,
    pub manifest: Manifest,
}

/// What `mnemo backup` and the daily job report (`--json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub archive: PathBuf,
    pub bytes: u64,
    pub sha256: String,
    pub notes: u64,
    pub votes: u64,
    pub todos: u64,
    pub audio_files: u64,
    pub verified: bool,
    /// Seconds spent writing and verifying.
    pub write_secs: f64,
    pub verify_secs: f64,
}

/// Writes an archive of `store` (and the files beside it) into `dir`.
pub fn create(store: &Store, dir: &Path, progress: Progress) -> anyhow::Result<Written> {
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the backup dir {}", dir.display()))?;
    let data = store.dir().to_path_buf();
    let key = data.join(crate::buttons::KEY_FILE);
    let key = key.is_file().then_some(key);
    let audio = audio_files(&data.join(VOICE))?;
    let audio_bytes: u64 = audio.iter().map(|(_, n)| n).sum();
    let key_bytes = key
        .as_ref()
        .map_or(0, |k| fs::metadata(k).map(|m| m.len()).unwrap_or(0));
    // The snapshot is at most as large as the live file; the archive at
    // most as large as what goes in (zstd never grows data by much).
    let need = 2 * store.file_size() + audio_bytes + key_bytes + (1 << 20);
    check_space(dir, need)?;

    let work = tempfile::Builder::new()
        .prefix(".mnemo-backup-")
        .tempdir_in(dir)
        .with_context(|| format!("cannot write in {}", dir.display()))?;
    let snap = work.path().join(DB_FILE);
    let contents = store
        .snapshot_to(&snap, |d, t| progress(Phase::Snapshot, d, t))
        .context("cannot snapshot the database")?;

    let part = tempfile::Builder::new()
        .prefix(".mnemo-backup-")
        .suffix(".part")
        .tempfile_in(dir)?;
    let out = HashWriter::new(part.as_file().try_clone()?);
    let mut zst = zstd::Encoder::new(out, LEVEL)?;
    zst.include_checksum(true)?;
    let mut tar = tar::Builder::new(zst);
    let snap_bytes = fs::metadata(&snap)?.len();
    let total = snap_bytes + audio_bytes + key_bytes;
    let mut done = 0;
    let mut files = Vec::new();
    files.push(append_file(
        &mut tar, &snap, DB_FILE, &mut done, total, progress,
    )?);
    if let Some(k) = &key {
        let name = crate::buttons::KEY_FILE;
        files.push(append_file(&mut tar, k, name, &mut done, total, progress)?);
    }
    let mut audio_files = 0;
    for (name, _) in &audio {
        let path = data.join(VOICE).join(name);
        let entry = format!("{VOICE}/{name}");
        match append_file(&mut tar, &path, &entry, &mut done, total, progress) {
            Ok(f) => {
                files.push(f);
                audio_files += 1;
            }
            // Removed since it was listed (audio retention): not part of
            // this backup.
            Err(e) if is_not_found(&e) => {}
            Err(e) => return Err(e),
        }
    }
    let manifest = Manifest {
        format: FORMAT,
        created_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        mnemo_version: env!("CARGO_PKG_VERSION").to_owned(),
        schema_version: crate::store::schema::CURRENT_VERSION,
        counts: Counts {
            notes: contents.notes,
            votes: contents.votes,
            todos: contents.todos,
            audio_files,
        },
        notes_sha256: contents.notes_sha256,
        tables: contents.tables,
        files,
    };
    let json = serde_json::to_vec_pretty(&manifest)?;
    append_named(&mut tar, MANIFEST, &json)?;
    let out = tar.into_inner()?.finish()?;
    let (bytes, sha256) = out.finish();
    part.as_file().sync_all()?;
    drop(work);

    let archive = persist(part, dir)?;
    sync_dir(dir)?;
    Ok(Written {
        archive,
        bytes,
        sha256,
        manifest,
    })
}

/// [`create`], then [`verify`], then the record in the store: what
/// `mnemo backup` and the daily job do. An archive that does not verify is
/// renamed `….failed` and the error returned (the record says so too).
pub fn backup(store: &Store, dir: &Path, progress: Progress) -> anyhow::Result<Outcome> {
    let t0 = std::time::Instant::now();
    let w = create(store, dir, progress)?;
    let write_secs = t0.elapsed().as_secs_f64();
    let t1 = std::time::Instant::now();
    let checked = verify_with(&w.archive, progress);
    let verify_secs = t1.elapsed().as_secs_f64();
    let rec = BackupRecord {
        at: crate::core::now_ms(),
        path: w.archive.display().to_string(),
        bytes: w.bytes,
        sha256: w.sha256.clone(),
        notes: w.manifest.counts.notes,
        verified: checked.is_ok(),
        error: checked.as_ref().err().map(|e| format!("{e:#}")),
    };
    store
        .write(|tx| tx.record_backup(&rec))
        .context("cannot record the backup")?;
    if let Err(e) = checked {
        let failed = PathBuf::from(format!("{}.failed", w.archive.display()));
        let _ = fs::rename(&w.archive, &failed);
        return Err(e.context(format!(
            "the backup did not verify; kept as {}",
            failed.display()
        )));
    }
    let c = w.manifest.counts;
    Ok(Outcome {
        archive: w.archive,
        bytes: w.bytes,
        sha256: w.sha256,
        notes: c.notes,
        votes: c.votes,
        todos: c.todos,
        audio_files: c.audio_files,
        verified: true,
        write_secs,
        verify_secs,
    })
}

/// The daily job: [`backup`] into `dir`, then keep the newest `keep`
/// archives (and always the last verified one). A one-line summary.
pub fn scheduled(store: &Store, dir: &Path, keep: usize) -> anyhow::Result<String> {
    let o = backup(store, dir, &mut |_, _, _| {})?;
    let protect = store.last_verified_backup()?.map(|r| PathBuf::from(r.path));
    let removed = prune(dir, keep, protect.as_deref())?;
    Ok(format!(
        "wrote {} ({} bytes, {} notes, verified); removed {} old archives",
        o.archive.display(),
        o.bytes,
        o.notes,
        removed.len()
    ))
}

/// Removes all but the newest `keep` archives in `dir` (newest by name,
/// which is the UTC time written), never `protect`, and all but the newest
/// `….failed` archive. Returns what it removed.
pub fn prune(dir: &Path, keep: usize, protect: Option<&Path>) -> anyhow::Result<Vec<PathBuf>> {
    let mut archives = Vec::new();
    let mut failed = Vec::new();
    for e in fs::read_dir(dir).with_context(|| format!("cannot list {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if !name.starts_with(PREFIX) {
            continue;
        }
        if name.ends_with(SUFFIX) {
            archives.push(name);
        } else if name.ends_with(".failed") {
            failed.push(name);
        }
    }
    archives.sort_unstable_by(|a, b| b.cmp(a));
    failed.sort_unstable_by(|a, b| b.cmp(a));
    let protect = protect.and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()));
    let mut removed = Vec::new();
    let old = archives.iter().skip(keep.max(1));
    for name in old.chain(failed.iter().skip(1)) {
        if protect.as_deref() == Some(name.as_str()) {
            continue;
        }
        let p = dir.join(name);
        fs::remove_file(&p).with_context(|| format!("cannot remove {}", p.display()))?;
        removed.push(p);
    }
    if !removed.is_empty() {
        sync_dir(dir)?;
    }
    Ok(removed)
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    pub archive: PathBuf,
    pub ok: bool,
    pub notes: u64,
    pub votes: u64,
    pub todos: u64,
    pub audio_files: u64,
    pub files: usize,
    pub created_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Report {
    /// A report of `archive` from `checked`.
    pub fn of(archive: &Path, checked: &anyhow::Result<Manifest>) -> Report {
        let m = checked.as_ref().ok();
        let c = m.map(|m| m.counts).unwrap_or_default();
        Report {
            archive: archive.to_path_buf(),
            ok: m.is_some(),
            notes: c.notes,
            votes: c.votes,
            todos: c.todos,
            audio_files: c.audio_files,
            files: m.map_or(0, |m| m.files.len()),
            created_at: m.map(|m| m.created_at.clone()).unwrap_or_default(),
            error: checked.as_ref().err().map(|e| format!("{e:#}")),
        }
    }
}

/// Restores `archive` into a temporary dir beside it and checks everything
/// against its manifest (see the module docs). Nothing is left behind.
pub fn verify(archive: &Path) -> anyhow::Result<Manifest> {
    verify_with(archive, &mut |_, _, _| {})
}

fn verify_with(archive: &Path, progress: Progress) -> anyhow::Result<Manifest> {
    let parent = archive
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let tmp = tempfile::Builder::new()
        .prefix(".mnemo-verify-")
        .tempdir_in(parent)
        .or_else(|_| tempfile::Builder::new().prefix("mnemo-verify-").tempdir())?;
    unpack_checked(archive, tmp.path(), progress)
}

/// Unpacks `archive` into the empty dir `into` and checks it: every file's
/// sha256 and size, the database's integrity, counts and notes hash.
fn unpack_checked(archive: &Path, into: &Path, progress: Progress) -> anyhow::Result<Manifest> {
    let damaged = || format!("the archive {} is damaged or incomplete", archive.display());
    let got = unpack(archive, into, progress).with_context(damaged)?;
    let manifest: Manifest = {
        let bytes = got
            .manifest
            .ok_or_else(|| anyhow!("it has no {MANIFEST}"))
            .with_context(damaged)?;
        serde_json::from_slice(&bytes)
            .map_err(|e| anyhow!("its {MANIFEST} is unreadable: {e}"))
            .with_context(damaged)?
    };
    if manifest.format > FORMAT {
        bail!(
            "{} is a backup of format {}, this mnemo reads up to {FORMAT}; upgrade mnemo",
            archive.display(),
            manifest.format
        );
    }
    let listed: BTreeMap<&str, &FileEntry> = manifest
        .files
        .iter()
        .map(|f| (f.path.as_str(), f))
        .collect();
    for (path, (bytes, sha)) in &got.files {
        match listed.get(path.as_str()) {
            Some(f) if f.bytes == *bytes && f.sha256 == *sha => {}
            Some(_) => {
                Err(anyhow!("{path} differs from its manifest entry")).with_context(damaged)?
            }
            None => Err(anyhow!("{path} is not in the manifest")).with_context(damaged)?,
        }
    }
    let present: BTreeSet<&str> = got.files.keys().map(String::as_str).collect();
    if let Some(missing) = listed.keys().find(|p| !present.contains(*p)) {
        Err(anyhow!("{missing} is missing")).with_context(damaged)?;
    }
    let db = into.join(DB_FILE);
    if !db.is_file() {
        Err(anyhow!("it holds no database")).with_context(damaged)?;
    }
    {
        let mut raw = redb::Database::open(&db)
            .map_err(|e| anyhow!("the database does not open: {e}"))
            .with_context(damaged)?;
        match raw.check_integrity() {
            Ok(true) => {}
            Ok(false) => Err(anyhow!("the database needed repair")).with_context(damaged)?,
            Err(e) => Err(anyhow!("the database is corrupt: {e}")).with_context(damaged)?,
        }
    }
    let store = Store::open(into).with_context(damaged)?;
    let c = store.contents()?;
    drop(store);
    let audio = got
        .files
        .keys()
        .filter(|p| p.starts_with(&format!("{VOICE}/")))
        .count() as u64;
    let m = &manifest;
    let mut wrong = Vec::new();
    let mut cmp = |what: &str, a: &dyn std::fmt::Debug, b: &dyn std::fmt::Debug, same: bool| {
        if !same {
            wrong.push(format!("{what}: manifest {a:?}, restored {b:?}"));
        }
    };
    cmp(
        "notes",
        &m.counts.notes,
        &c.notes,
        m.counts.notes == c.notes,
    );
    cmp(
        "votes",
        &m.counts.votes,
        &c.votes,
        m.counts.votes == c.votes,
    );
    cmp(
        "to-dos",
        &m.counts.todos,
        &c.todos,
        m.counts.todos == c.todos,
    );
    cmp(
        "audio files",
        &m.counts.audio_files,
        &audio,
        m.counts.audio_files == audio,
    );
    cmp(
        "notes hash",
        &m.notes_sha256,
        &c.notes_sha256,
        m.notes_sha256 == c.notes_sha256,
    );
    // Opening migrates an older schema (which may add rows); rows per
    // table are comparable only within one schema version.
    if m.schema_version == crate::store::schema::CURRENT_VERSION {
        for (t, n) in &m.tables {
            let r = c.tables.get(t).copied().unwrap_or(0);
            cmp(&format!("rows of {t}"), n, &r, *n == r);
        }
    }
    if !wrong.is_empty() {
        Err(anyhow!("{}", wrong.join("; "))).with_context(damaged)?;
    }
    Ok(manifest)
}

/// What [`unpack`] wrote: per file (size, sha256), and the manifest's bytes.
struct Unpacked {
    files: BTreeMap<String, (u64, String)>,
    manifest: Option<Vec<u8>>,
}

/// Unpacks into `into`, reading the zstd frame to its end (its checksum is
/// checked there). Only the entries an archive may hold are accepted.
fn unpack(archive: &Path, into: &Path, progress: Progress) -> anyhow::Result<Unpacked> {
    let f = File::open(archive).with_context(|| format!("cannot open {}", archive.display()))?;
    let total = f.metadata()?.len();
    let counted = CountingReader {
        inner: f,
        n: 0,
        total,
        progress,
    };
    let zst = zstd::Decoder::new(counted)?;
    let mut tar = tar::Archive::new(zst);
    let mut out = Unpacked {
        files: BTreeMap::new(),
        manifest: None,
    };
    for entry in tar.entries()? {
        let mut entry = entry?;
        let path = entry.path()?.into_owned();
        let name = allowed(&path).ok_or_else(|| anyhow!("unexpected entry {}", path.display()))?;
        if out.files.contains_key(&name) || (name == MANIFEST && out.manifest.is_some()) {
            bail!("entry {name} appears twice");
        }
        if name == MANIFEST {
            let mut b = Vec::new();
            entry.by_ref().take(16 << 20).read_to_end(&mut b)?;
            out.manifest = Some(b);
            continue;
        }
        let dest = into.join(&name);
        if let Some(p) = dest.parent() {
            fs::DirBuilder::new()
                .recursive(true)
                .mode(0o700)
                .create(p)?;
        }
        let mut file = OpenOptions::new()
            .create_new(true)
            .write(true)
            .mode(0o600)
            .open(&dest)?;
        let mut h = HashWriter::new(&mut file);
        io::copy(&mut entry, &mut h)?;
        let (n, sha) = h.finish();
        file.sync_all()?;
        out.files.insert(name, (n, sha));
    }
    // The tar reader stops at its end marker; the rest of the zstd frame
    // (padding, then zstd's checksum) must still be read for it to be checked.
    let mut rest = tar.into_inner();
    io::copy(&mut rest, &mut io::sink())?;
    let counted = rest.finish().into_inner();
    (counted.progress)(Phase::Verify, counted.total, counted.total);
    Ok(out)
}

/// The name an archive entry is stored under, if it is one an archive may
/// hold: the database, the key, the manifest, or `voice/<file>`. Anything
/// else (absolute paths, `..`, other dirs) is refused.
fn allowed(path: &Path) -> Option<String> {
    let parts: Vec<&str> = path
        .components()
        .map(|c| match c {
            Component::Normal(s) => s.to_str(),
            _ => None,
        })
        .collect::<Option<_>>()?;
    match parts.as_slice() {
        [one] if [DB_FILE, crate::buttons::KEY_FILE, MANIFEST].contains(one) => {
            Some((*one).to_owned())
        }
        [VOICE, file] if !file.starts_with('.') => Some(format!("{VOICE}/{file}")),
        _ => None,
    }
}

/// What [`restore`] did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Restored {
    pub archive: PathBuf,
    pub data_dir: PathBuf,
    /// Where the data that was there went (`--force`).
    pub moved_aside: Option<PathBuf>,
    pub notes: u64,
    pub votes: u64,
    pub todos: u64,
    pub audio_files: u64,
}

/// Why [`restore`] refused before touching anything.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("mnemo is running on {0} (its control socket answers); stop it before restoring")]
    Running(PathBuf),
    #[error("the database in {0} is open in another mnemo process; stop it before restoring")]
    Locked(PathBuf),
    #[error("{0} already holds data; restore with --force to move it aside (to {1}) and restore over it")]
    HasData(PathBuf, PathBuf),
}

/// Restores `archive` into `data_dir` (see the module docs). The archive
/// is verified in full before the data dir is touched.
pub fn restore(archive: &Path, data_dir: &Path, force: bool) -> anyhow::Result<Restored> {
    let data_dir = absolute(data_dir)?;
    if std::os::unix::net::UnixStream::connect(data_dir.join(crate::app::control::SOCKET)).is_ok() {
        return Err(Refusal::Running(data_dir).into());
    }
    let db = data_dir.join(DB_FILE);
    if db.exists() {
        if let Err(redb::DatabaseError::DatabaseAlreadyOpen) = redb::ReadOnlyDatabase::open(&db) {
            return Err(Refusal::Locked(data_dir).into());
        }
    }
    let has_data = fs::read_dir(&data_dir).is_ok_and(|mut d| d.next().is_some());
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = PathBuf::from(format!("{}.before-restore-{stamp}", data_dir.display()));
    if has_data && !force {
        return Err(Refusal::HasData(data_dir, aside).into());
    }
    let parent = data_dir
        .parent()
        .ok_or_else(|| anyhow!("{} has no parent dir", data_dir.display()))?;
    fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(parent)?;
    let staging = tempfile::Builder::new()
        .prefix(".mnemo-restore-")
        .tempdir_in(parent)
        .with_context(|| format!("cannot write in {}", parent.display()))?;
    let manifest = unpack_checked(archive, staging.path(), &mut |_, _, _| {})?;
    fs::remove_file(staging.path().join(MANIFEST)).ok();
    fs::set_permissions(staging.path(), fs::Permissions::from_mode(0o700))?;

    let moved_aside = if has_data {
        fs::rename(&data_dir, &aside)
            .with_context(|| format!("cannot move {} aside", data_dir.display()))?;
        Some(aside)
    } else {
        if data_dir.is_dir() {
            fs::remove_dir(&data_dir)?;
        }
        None
    };
    let staged = staging.keep();
    if let Err(e) = fs::rename(&staged, &data_dir) {
        // Put the old data back where it was.
        if let Some(a) = &moved_aside {
            let _ = fs::rename(a, &data_dir);
        }
        let _ = fs::remove_dir_all(&staged);
        return Err(anyhow::Error::from(e).context(format!(
            "cannot move the restored data into {}",
            data_dir.display()
        )));
    }
    sync_dir(parent)?;
    let c = manifest.counts;
    Ok(Restored {
        archive: archive.to_path_buf(),
        data_dir,
        moved_aside,
        notes: c.notes,
        votes: c.votes,
        todos: c.todos,
        audio_files: c.audio_files,
    })
}

/// The default place for archives: `<data dir>/backups`.
pub fn default_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("backups")
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// The audio files in `dir` (name, size), by name; none if it is missing.
/// Files still being written (`*.part`) are not audio yet.
fn audio_files(dir: &Path) -> anyhow::Result<Vec<(String, u64)>> {
    let rd = match fs::read_dir(dir) {
        Ok(rd) => rd,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot list {}", dir.display())),
    };
    let mut out = Vec::new();
    for e in rd {
        let e = e?;
        let name = e.file_name().to_string_lossy().into_owned();
        let meta = e.metadata()?;
        if meta.is_file() && !name.ends_with(".part") && !name.starts_with('.') {
            out.push((name, meta.len()));
        }
    }
    out.sort();
    Ok(out)
}

/// Refuses when `dir`'s filesystem has less than `need` bytes free.
fn check_space(dir: &Path, need: u64) -> anyhow::Result<()> {
    let free = free_bytes(dir)?;
    if free < need {
        bail!(
            "not enough disk space in {}: a backup needs about {} MB, {} MB are free",
            dir.display(),
            need.div_ceil(1 << 20),
            free >> 20
        );
    }
    Ok(())
}

/// Bytes available to this user on `dir`'s filesystem.
pub fn free_bytes(dir: &Path) -> anyhow::Result<u64> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes())?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    if unsafe { libc::statvfs(c.as_ptr(), &mut s) } != 0 {
        return Err(io::Error::last_os_error())
            .with_context(|| format!("cannot read the free space of {}", dir.display()));
    }
    Ok(s.f_bavail as u64 * s.f_frsize as u64)
}

fn header(size: u64, mode: u32) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_size(size);
    h.set_mode(mode);
    h.set_mtime(chrono::Utc::now().timestamp().max(0) as u64);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn append_named<W: Write>(tar: &mut tar::Builder<W>, name: &str, bytes: &[u8]) -> io::Result<()> {
    let mut h = header(bytes.len() as u64, 0o600);
    tar.append_data(&mut h, name, bytes)
}

/// Appends the file at `path` as `name`, hashing it on the way.
fn append_file<W: Write>(
    tar: &mut tar::Builder<W>,
    path: &Path,
    name: &str,
    done: &mut u64,
    total: u64,
    progress: Progress,
) -> anyhow::Result<FileEntry> {
    let f = File::open(path).with_context(|| format!("cannot read {}", path.display()))?;
    let size = f.metadata()?.len();
    let mut h = header(size, 0o600);
    let base = *done;
    let mut r = HashReader {
        inner: BufReader::with_capacity(1 << 16, f).take(size),
        h: Sha256::new(),
        n: 0,
        on_read: &mut |n| progress(Phase::Pack, base + n, total),
    };
    tar.append_data(&mut h, name, &mut r)
        .with_context(|| format!("cannot pack {}", path.display()))?;
    if r.n != size {
        bail!("{} changed while it was packed", path.display());
    }
    *done += size;
    Ok(FileEntry {
        path: name.to_owned(),
        bytes: size,
        sha256: hex::encode(r.h.finalize()),
    })
}

fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<io::Error>()
            .is_some_and(|e| e.kind() == io::ErrorKind::NotFound)
    })
}

/// Moves the finished temporary archive to its final name (never over an
/// existing file).
fn persist(part: tempfile::NamedTempFile, dir: &Path) -> anyhow::Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ").to_string();
    let mut part = part;
    for i in 0..100 {
        let name = match i {
            0 => format!("{PREFIX}{stamp}{SUFFIX}"),
            i => format!("{PREFIX}{stamp}-{i}{SUFFIX}"),
        };
        let dest = dir.join(name);
        match part.persist_noclobber(&dest) {
            Ok(_) => return Ok(dest),
            Err(e) if e.error.kind() == io::ErrorKind::AlreadyExists => part = e.file,
            Err(e) => return Err(e.error).context("cannot name the archive"),
        }
    }
    bail!("too many archives named {PREFIX}{stamp}")
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("cannot sync {}", dir.display()))
}

/// A writer that counts and hashes what passes through.
struct HashWriter<W> {
    inner: W,
    h: Sha256,
    n: u64,
}

impl<W> HashWriter<W> {
    fn new(inner: W) -> Self {
        HashWriter {
            inner,
            h: Sha256::new(),
            n: 0,
        }
    }

    /// (bytes, sha256 hex).
    fn finish(self) -> (u64, String) {
        (self.n, hex::encode(self.h.finalize()))
    }
}

impl<W: Write> Write for HashWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.h.update(&buf[..n]);
        self.n += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// A reader that counts and hashes what passes through.
struct HashReader<'a, R> {
    inner: R,
    h: Sha256,
    n: u64,
    on_read: &'a mut dyn FnMut(u64),
}

impl<R: Read> Read for HashReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.h.update(&buf[..n]);
        let before = self.n;
        self.n += n as u64;
        if self.n >> 20 != before >> 20 {
            (self.on_read)(self.n);
        }
        Ok(n)
    }
}

/// A reader that reports how far into the archive it is.
struct CountingReader<'a, R> {
    inner: R,
    n: u64,
    total: u64,
    progress: Progress<'a>,
}

impl<R: Read> Read for CountingReader<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let before = self.n;
        self.n += n as u64;
        if self.n >> 20 != before >> 20 {
            (self.progress)(Phase::Verify, self.n, self.total);
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewNote, Source};

    /// A data dir with notes, a key file and two audio files.
    fn data(root: &Path) -> (PathBuf, Store) {
        let dir = root.join("data");
        let store = Store::open(&dir).unwrap();
        store
            .write(|tx| {
                for i in 0..20 {
                    tx.insert_note(NewNote {
                        chat_id: 1,
                        user_id: 7,
                        message_id: Some(i),
                        text: format!("note {i}"),
                        created_at: 1,
                        source: Source::Telegram,
                        author: None,
                    })?;
                }
                Ok(())
            })
            .unwrap();
        fs::write(dir.join(crate::buttons::KEY_FILE), b"key material").unwrap();
        fs::create_dir(dir.join(VOICE)).unwrap();
        fs::write(dir.join(VOICE).join("1.ogg"), vec![7u8; 5000]).unwrap();
        fs::write(dir.join(VOICE).join("2.ogg"), vec![9u8; 300]).unwrap();
        fs::write(dir.join(VOICE).join("3.part"), b"half").unwrap();
        (dir, store)
    }

    #[test]
    fn an_archive_holds_everything_and_verifies() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, store) = data(tmp.path());
        let out = tmp.path().join("out");
        let w = create(&store, &out, &mut |_, _, _| {}).unwrap();
        assert!(w.archive.starts_with(&out));
        let name = w.archive.file_name().unwrap().to_str().unwrap();
        assert!(name.starts_with(PREFIX) && name.ends_with(SUFFIX), "{name}");
        let mode = fs::metadata(&w.archive).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(fs::metadata(&w.archive).unwrap().len(), w.bytes);
        let mut paths: Vec<&str> = w.manifest.files.iter().map(|f| f.path.as_str()).collect();
        paths.sort();
        assert_eq!(
            paths,
            ["callback.key", "mnemo.redb", "voice/1.ogg", "voice/2.ogg"]
        );
        assert_eq!(w.manifest.counts.notes, 20);
        assert_eq!(w.manifest.counts.audio_files, 2);
        // Nothing but the archive is left in the target dir.
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1);
        assert_eq!(verify(&w.archive).unwrap(), w.manifest);
        assert_eq!(fs::read_dir(&out).unwrap().count(), 1, "verify cleans up");
        drop(store);
        let _ = dir;
    }

    #[test]
    fn a_flipped_byte_or_a_cut_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let (_dir, store) = data(tmp.path());
        let w = create(&store, &tmp.path().join("out"), &mut |_, _, _| {}).unwrap();
        let good = fs::read(&w.archive).unwrap();
        for (what, bytes) in [
            ("flipped", {
                let mut b = good.clone();
                let i = b.len() / 2;
                b[i] ^= 0x01;
                b
            }),
            ("truncated", good[..good.len() - 100].to_vec()),
            ("cut in half", good[..good.len() / 2].to_vec()),
            ("last byte", good[..good.len() - 1].to_vec()),
        ] {
            let bad = tmp.path().join(format!("{what}{SUFFIX}"));
            fs::write(&bad, &bytes).unwrap();
            let err = verify(&bad).expect_err(what);
            assert!(format!("{err:#}").contains("damaged"), "{what}: {err:#}");
        }
    }

    #[test]
    fn foreign_entries_are_refused() {
        assert_eq!(
            allowed(Path::new("mnemo.redb")).as_deref(),
            Some("mnemo.redb")
        );
        assert_eq!(
            allowed(Path::new("voice/1.ogg")).as_deref(),
            Some("voice/1.ogg")
        );
        for bad in [
            "../x",
            "/etc/passwd",
            "voice/../../x",
            "ann/graph",
            "voice/a/b",
            "x",
        ] {
            assert_eq!(allowed(Path::new(bad)), None, "{bad}");
        }
    }

    #[test]
    fn restore_fills_an_empty_dir_and_keeps_data_aside_with_force() {
        let tmp = tempfile::tempdir().unwrap();
        let (_dir, store) = data(tmp.path());
        let w = create(&store, &tmp.path().join("out"), &mut |_, _, _| {}).unwrap();
        drop(store);
        let target = tmp.path().join("new");
        let r = restore(&w.archive, &target, false).unwrap();
        assert_eq!(r.moved_aside, None);
        assert_eq!(
            fs::read(target.join("voice/1.ogg")).unwrap(),
            vec![7u8; 5000]
        );
        assert!(!target.join(MANIFEST).exists());
        let mode = fs::metadata(&target).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700);
        assert_eq!(Store::open(&target).unwrap().contents().unwrap().notes, 20);
        // Now it holds data: refused without --force, untouched.
        let err = restore(&w.archive, &target, false).unwrap_err();
        assert!(err.downcast_ref::<Refusal>().is_some(), "{err:#}");
        fs::write(target.join("marker"), b"mine").unwrap();
        let r = restore(&w.archive, &target, true).unwrap();
        let aside = r.moved_aside.unwrap();
        assert_eq!(fs::read(aside.join("marker")).unwrap(), b"mine");
        assert!(!target.join("marker").exists());
    }

    #[test]
    fn restore_refuses_a_data_dir_whose_database_is_open() {
        let tmp = tempfile::tempdir().unwrap();
        let (dir, store) = data(tmp.path());
        let w = create(&store, &tmp.path().join("out"), &mut |_, _, _| {}).unwrap();
        let err = restore(&w.archive, &dir, true).unwrap_err();
        assert!(
            matches!(err.downcast_ref::<Refusal>(), Some(Refusal::Locked(_))),
            "{err:#}"
        );
        assert!(dir.join(DB_FILE).is_file());
    }

    #[test]
    fn retention_keeps_the_newest_and_the_last_verified() {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path();
        for day in 1..=9 {
            fs::write(
                d.join(format!("{PREFIX}2026120{day}T033000Z{SUFFIX}")),
                b"x",
            )
            .unwrap();
        }
        fs::write(
            d.join(format!("{PREFIX}20261201T000000Z{SUFFIX}.failed")),
            b"x",
        )
        .unwrap();
        fs::write(
            d.join(format!("{PREFIX}20261202T000000Z{SUFFIX}.failed")),
            b"x",
        )
        .unwrap();
        fs::write(d.join("unrelated.txt"), b"x").unwrap();
        let protect = d.join(format!("{PREFIX}20261202T033000Z{SUFFIX}"));
        let removed = prune(d, 3, Some(&protect)).unwrap();
        let mut left: Vec<String> = fs::read_dir(d)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        assert_eq!(
            left,
            [
                format!("{PREFIX}20261202T000000Z{SUFFIX}.failed"),
                format!("{PREFIX}20261202T033000Z{SUFFIX}"),
                format!("{PREFIX}20261207T033000Z{SUFFIX}"),
                format!("{PREFIX}20261208T033000Z{SUFFIX}"),
                format!("{PREFIX}20261209T033000Z{SUFFIX}"),
                "unrelated.txt".to_owned(),
            ]
        );
        assert_eq!(removed.len(), 6);
    }

    #[test]
    fn too_little_space_is_a_clear_error() {
        let tmp = tempfile::tempdir().unwrap();
        let err = check_space(tmp.path(), u64::MAX / 2).unwrap_err();
        assert!(err.to_string().contains("not enough disk space"), "{err}");
        check_space(tmp.path(), 1).unwrap();
    }
}
