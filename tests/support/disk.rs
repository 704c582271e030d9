// A real, small data disk that fills up: a size-limited tmpfs (CI runs as
// root, so `mount` works there; elsewhere the tests that need it skip,
// saying so).

use std::path::{Path, PathBuf};

/// A size-limited tmpfs, unmounted on drop. `None` (with the reason
/// printed) where mounting is not allowed; CI runs as root, so it runs there.
pub struct SmallDisk {
    pub dir: PathBuf,
    _tmp: tempfile::TempDir,
}

impl SmallDisk {
    pub fn mount(mb: u64) -> Option<SmallDisk> {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("fs");
        std::fs::create_dir(&dir).unwrap();
        let out = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={mb}m,mode=0700"),
                "tmpfs",
            ])
            .arg(&dir)
            .output();
        match out {
            Ok(o) if o.status.success() => Some(SmallDisk { dir, _tmp: tmp }),
            Ok(o) => {
                eprintln!(
                    "SKIPPED: cannot mount a tmpfs here ({}); run as root to test a full disk",
                    String::from_utf8_lossy(&o.stderr).trim()
                );
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: no mount command ({e})");
                None
            }
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// Fills `fs` until `free_mb` MB are left (a file beside the data dir);
/// with 0, until a write is refused.
pub fn fill_to(fs: &Path, free_mb: u64) {
    use std::io::Write;
    let (free, _) = free_bytes(fs);
    let take = free.saturating_sub(free_mb * 1024 * 1024);
    let f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(fs.join("filler"))
        .unwrap();
    let mut w = std::io::BufWriter::new(f);
    let chunk = vec![0xA5u8; 1 << 20];
    let mut left = take;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        if w.write_all(&chunk[..n]).is_err() {
            break;
        }
        left -= n as u64;
    }
    if w.flush().is_err() || free_mb > 0 {
        return;
    }
    // Every last page.
    let mut f = w.into_inner().unwrap();
    let page = [0x5Au8; 4096];
    while f.write_all(&page).is_ok() {}
    let byte = [0u8; 1];
    while f.write_all(&byte).is_ok() {}
}

pub fn unfill(fs: &Path) {
    let _ = std::fs::remove_file(fs.join("filler"));
}

/// (available, size) of the filesystem holding `p`, in bytes.
pub fn free_bytes(p: &Path) -> (u64, u64) {
    let out = std::process::Command::new("df")
        .args(["-B1", "--output=avail,size"])
        .arg(p)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1).unwrap();
    let mut it = line.split_whitespace().map(|x| x.parse::<u64>().unwrap());
    (it.next().unwrap(), it.next().unwrap())
}
