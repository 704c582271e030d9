//! A store that failed and comes back by itself.
//!
//! redb latches the first I/O error of a commit (a full disk, say): from
//! then on every read and write of that `Database` returns "previous I/O
//! error", and only closing and opening the file again clears it (the open
//! recovers the file as after a crash: the failed commit was never made
//! durable). So:
//!
//! - [`Store::write`] marks the store [`StoreState::Failed`] when a commit
//!   fails for a storage reason ([`StoreError::is_io`]), and
//!   [`StoreState::Ok`] again when a commit works. The state is watched
//!   ([`Store::watch`]): the Telegram listener pauses polling, handlers wait
//!   to retry, the owner is told.
//! - [`Store::try_recover`] (called every second by the App's recovery task
//!   while failed) closes the database, opens it again and proves it takes
//!   a commit of [`ROOM`] bytes (removed again). After a full disk it only
//!   tries once the
//!   free space grew by [`MIN_GAIN`] since the last refusal (or every
//!   [`FULL_RETRY`]): an open after an I/O error rebuilds redb's allocator
//!   state by walking the file, which is not free on a large database.
//!
//! Committed data is never at risk in between: a failed commit is all or
//! nothing, and reads see the last durable commit once it is open again.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::{open_db, Store, StoreError};

/// Free space that must have come back since the last refused write before
/// a full-disk store tries to reopen.
pub const MIN_GAIN: u64 = 1024 * 1024;
/// A full-disk store tries anyway this long after its last try (the space
/// may have come back in a way `statvfs` does not show, e.g. a quota).
pub const FULL_RETRY: Duration = Duration::from_secs(60);
/// Bytes a recovering store must be able to commit (see
/// [`Store::try_recover`]).
pub const ROOM: usize = 1024 * 1024;
/// Longest pause between tries after other I/O errors.
const MAX_BACKOFF: Duration = Duration::from_secs(30);
/// How long a reopen waits for calls still holding the failed database.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// Whether the store takes writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum StoreState {
    #[default]
    Ok,
    /// A commit failed for a storage reason; no commit worked since.
    Failed(Failure),
}

/// Why the store does not take writes, since when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// The first refused commit (unix ms).
    pub since: i64,
    /// Any refusal since then was for lack of space (ENOSPC, EDQUOT).
    pub disk_full: bool,
    /// The first error, as text.
    pub error: String,
    /// Free bytes on the data disk at the last refusal for lack of space.
    pub free_bytes: u64,
}

pub(super) struct Health {
    state: watch::Sender<StoreState>,
    retry: Mutex<Retry>,
    /// Held by the one [`Store::try_recover`] running.
    recovering: Mutex<()>,
}

#[derive(Default)]
struct Retry {
    /// Not before this (after a failed try).
    next: Option<Instant>,
    backoff: Duration,
    last_try: Option<Instant>,
}

impl Health {
    pub(super) fn new() -> Health {
        Health {
            state: watch::Sender::new(StoreState::Ok),
            retry: Mutex::new(Retry::default()),
            recovering: Mutex::new(()),
        }
    }
}

impl Store {
    /// Whether the store takes writes now.
    pub fn state(&self) -> StoreState {
        self.shared.health.state.borrow().clone()
    }

    /// Why the store does not take writes, if it does not.
    pub fn failure(&self) -> Option<Failure> {
        match &*self.shared.health.state.borrow() {
            StoreState::Ok => None,
            StoreState::Failed(f) => Some(f.clone()),
        }
    }

    /// Changes of [`Store::state`] (failed, working again).
    pub fn watch(&self) -> watch::Receiver<StoreState> {
        self.shared.health.state.subscribe()
    }

    /// A commit worked: the store is well (again).
    pub(super) fn commit_worked(&self) {
        let recovered = self.shared.health.state.send_if_modified(|s| match s {
            StoreState::Ok => false,
            StoreState::Failed(_) => {
                *s = StoreState::Ok;
                true
            }
        });
        if recovered {
            *lock(&self.shared.health.retry) = Retry::default();
            tracing::info!("storage works again: commits go through");
        }
    }

    /// A commit failed for a storage reason.
    pub(super) fn storage_failed(&self, e: &StoreError) {
        let now = crate::core::now_ms();
        let full = e.is_disk_full();
        let free = if full {
            // The health check alerts at once (not after `for_secs`).
            crate::health::signals().disk_full(now);
            free_space(self.dir()).map_or(0, |(f, _)| f)
        } else {
            0
        };
        let mut first = false;
        self.shared.health.state.send_if_modified(|s| match s {
            StoreState::Ok => {
                first = true;
                *s = StoreState::Failed(Failure {
                    since: now,
                    disk_full: full,
                    error: e.to_string(),
                    free_bytes: free,
                });
                true
            }
            StoreState::Failed(f) => {
                if full {
                    f.free_bytes = free;
                }
                let changed = full && !f.disk_full;
                f.disk_full |= full;
                changed
            }
        });
        if first {
            // The refusal counts as a try: the next is due when space came
            // back, or after FULL_RETRY.
            lock(&self.shared.health.retry).last_try = Some(Instant::now());
            tracing::error!(error = %e, disk_full = full, "storage failed: writes are refused until it works again (Telegram polling pauses; nothing is lost)");
        }
    }

    /// Tries to make a failed store work again: closes the database, opens
    /// it again (redb recovers the file as after a crash) and commits the
    /// health probe. True when the store works (also when it never failed).
    /// Cheap when it is not due yet (see the module docs); blocking (file
    /// I/O) otherwise.
    pub fn try_recover(&self) -> bool {
        let Some(failure) = self.failure() else {
            return true;
        };
        let _one = match self.shared.health.recovering.try_lock() {
            Ok(g) => g,
            Err(std::sync::TryLockError::Poisoned(p)) => p.into_inner(),
            Err(std::sync::TryLockError::WouldBlock) => return false,
        };
        let now = Instant::now();
        {
            let mut r = lock(&self.shared.health.retry);
            if r.next.is_some_and(|n| now < n) {
                return false;
            }
            if failure.disk_full {
                let free = free_space(self.dir()).map_or(u64::MAX, |(f, _)| f);
                let gained = free >= failure.free_bytes.saturating_add(MIN_GAIN);
                tracing::debug!(
                    free,
                    at_failure = failure.free_bytes,
                    gained,
                    "free space on the data disk"
                );
                let stale = r.last_try.is_none_or(|t| now - t >= FULL_RETRY);
                if !gained && !stale {
                    return false;
                }
            }
            r.last_try = Some(now);
        }
        let out = self.reopen().and_then(|()| self.probe_room());
        match out {
            Ok(()) => true,
            Err(e) => {
                if e.is_io() {
                    // An open refused for lack of space (redb's recovery
                    // writes) counts like a refused commit: the next try
                    // waits for more space.
                    self.storage_failed(&e);
                }
                let mut r = lock(&self.shared.health.retry);
                if !failure.disk_full {
                    r.backoff = (r.backoff * 2).clamp(Duration::from_secs(1), MAX_BACKOFF);
                    r.next = Some(now + r.backoff);
                }
                tracing::warn!(error = %e, "storage still failing");
                false
            }
        }
    }

    /// Proves the store takes real commits again, not only a tiny one (a
    /// full disk often leaves a few free pages in redb's file): commits
    /// [`ROOM`] bytes with the health probe, then removes them — their pages
    /// stay in the file, free for the next commits.
    fn probe_room(&self) -> Result<(), StoreError> {
        let blob = vec![0u8; ROOM];
        let now = crate::core::now_ms();
        self.write(|tx| {
            tx.health_probe(now)?;
            tx.room_probe(Some(&blob))
        })?;
        self.write(|tx| tx.room_probe(None))
    }

    /// Closes the database and opens the file again. Calls in progress on
    /// the old one fail (redb: closed) and are waited for up to
    /// [`CLOSE_WAIT`]; one that holds it longer closes it when it ends, and
    /// the open is tried again next time (redb's file lock).
    fn reopen(&self) -> Result<(), StoreError> {
        let mut slot = self.shared.db.write().unwrap_or_else(|p| p.into_inner());
        if let Some(mut old) = slot.take() {
            let deadline = Instant::now() + CLOSE_WAIT;
            loop {
                match Arc::try_unwrap(old) {
                    Ok(db) => {
                        // An error here is the latched one; the file is
                        // closed all the same.
                        if let Err(e) = db.close() {
                            tracing::debug!(error = %e, "closing the failed database");
                        }
                        break;
                    }
                    Err(still) if Instant::now() < deadline => {
                        old = still;
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Err(still) => {
                        drop(still);
                        break;
                    }
                }
            }
        }
        let db = open_db(&self.path)?;
        *slot = Some(Arc::new(db));
        tracing::info!("database reopened after a storage error");
        Ok(())
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// (free bytes for an unprivileged writer, total bytes) of the filesystem
/// holding `dir`.
pub fn free_space(dir: &Path) -> Result<(u64, u64), String> {
    use std::os::unix::ffi::OsStrExt;
    let c = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
    let mut s: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is a valid NUL-terminated path and `s` a writable statvfs.
    let rc = unsafe { libc::statvfs(c.as_ptr(), &mut s) };
    if rc != 0 {
        return Err(format!(
            "statvfs {}: {}",
            dir.display(),
            std::io::Error::last_os_error()
        ));
    }
    let frsize = s.f_frsize as u64;
    Ok((s.f_bavail as u64 * frsize, s.f_blocks as u64 * frsize))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{NewNote, Source};

    /// The fault suite's real small disk (a size-limited tmpfs), shared
    /// rather than written twice.
    #[allow(dead_code)]
    mod tmpfs {
        include!("../../tests/support/disk.rs");
    }
    use tmpfs::SmallDisk;

    fn note(i: usize, text: &str) -> NewNote {
        NewNote {
            chat_id: 1,
            user_id: 1,
            message_id: Some(i as i64),
            text: text.into(),
            created_at: 1,
            source: Source::Telegram,
            author: None,
        }
    }

    /// Fills the filesystem of `dir` with a file, leaving nothing free.
    #[test]
    fn a_full_disk_fails_the_store_and_freed_space_brings_it_back() {
        let Some(disk) = SmallDisk::mount(16) else {
            return;
        };
        let store = Store::open(&disk.dir.join("data")).unwrap();
        let mut watch = store.watch();
        store.write(|tx| tx.insert_note(note(0, "kept"))).unwrap();
        tmpfs::fill_to(&disk.dir, 0);
        // Notes until a commit is refused (redb may still have room in its
        // file for a few).
        let text = "x".repeat(3000);
        let mut stored = 1;
        let err = loop {
            match store.write(|tx| tx.insert_note(note(stored, &text))) {
                Ok(_) => stored += 1,
                Err(e) => break e,
            }
            assert!(stored < 10_000, "the disk never filled");
        };
        assert!(err.is_disk_full(), "{err}");
        let f = store.failure().expect("failed");
        assert!(f.disk_full && f.since > 0, "{f:?}");
        assert!(watch.has_changed().unwrap());
        watch.borrow_and_update();
        // Later writes fail too (latched or still no space), and no reopen
        // is tried while no space came back.
        assert!(store.write(|tx| tx.insert_note(note(9999, "no"))).is_err());
        assert!(!store.try_recover());
        assert!(store.failure().is_some());

        std::fs::remove_file(disk.dir.join("filler")).unwrap();
        assert!(store.try_recover(), "reopens once space is back");
        assert_eq!(store.state(), StoreState::Ok);
        assert!(watch.has_changed().unwrap());
        // Everything committed before the failure is there, nothing else.
        assert_eq!(store.count_notes().unwrap(), stored as u64);
        store
            .write(|tx| tx.insert_note(note(10_000, "after")))
            .unwrap();
        assert_eq!(store.count_notes().unwrap(), stored as u64 + 1);
    }

    #[test]
    fn opening_on_a_full_disk_says_so_and_loses_nothing() {
        let Some(disk) = SmallDisk::mount(16) else {
            return;
        };
        let dir = disk.dir.join("data");
        let store = Store::open(&dir).unwrap();
        store.write(|tx| tx.insert_note(note(1, "kept"))).unwrap();
        drop(store);
        tmpfs::fill_to(&disk.dir, 0);
        let err = Store::open(&dir).err().expect("no room to open");
        assert!(matches!(err, StoreError::DiskFull(_)), "{err}");
        assert!(
            err.to_string().contains("is full: free some space"),
            "{err}"
        );
        std::fs::remove_file(disk.dir.join("filler")).unwrap();
        let store = Store::open(&dir).unwrap();
        assert_eq!(store.count_notes().unwrap(), 1);
    }

    #[test]
    fn a_store_that_never_failed_needs_no_recovery() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        assert!(store.try_recover());
        assert_eq!(store.state(), StoreState::Ok);
        // A failed closure is no storage failure.
        let r: Result<(), _> = store.write(|_| Err(StoreError::Corrupt("bug".into())));
        assert!(r.is_err());
        assert_eq!(store.state(), StoreState::Ok);
    }
}
