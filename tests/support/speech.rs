//! Real speech for tests and benches: synthetic voice notes made with
//! espeak-ng and opusenc (Debian packages installed by scripts/setup.sh), and
//! the real recording fetched by scripts/test-assets.sh.
//!
//! Benches include this file on its own (`#[path]`), so not every function
//! is used everywhere.
#![allow(dead_code)]

use std::path::PathBuf;
use std::process::Command;

/// Runs an external tool, failing with a message that names the fix.
pub fn run(cmd: &mut Command) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; run scripts/setup.sh to install it"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `text` spoken by espeak-ng, encoded as a Telegram-like voice note
/// (Ogg/Opus, 48 kHz mono, 24 kbit/s).
pub fn voice_note(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let ogg = dir.path().join("speech.ogg");
    run(Command::new("espeak-ng")
        .args(["-s", "150", "-w"])
        .arg(&wav)
        .arg(text));
    run(Command::new("opusenc")
        .args(["--quiet", "--bitrate", "24"])
        .arg(&wav)
        .arg(&ogg));
    std::fs::read(ogg).unwrap()
}

/// The 11 s JFK clip ("… ask not what your country can do for you …"),
/// where scripts/test-assets.sh puts it (`MNEMO_TEST_AUDIO` or
/// `~/.cache/mnemo/test-audio`).
pub fn jfk_wav() -> PathBuf {
    let dir = std::env::var_os("MNEMO_TEST_AUDIO")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/mnemo/test-audio")
        });
    let p = dir.join("jfk.wav");
    assert!(
        p.exists(),
        "{} is missing: run scripts/test-assets.sh (make test does)",
        p.display()
    );
    p
}

/// jfk.wav as mono 16 kHz f32 (the voice decoder produces the same format).
pub fn jfk_samples() -> Vec<f32> {
    let path = jfk_wav();
    let mut r = hound::WavReader::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let spec = r.spec();
    assert_eq!(
        (spec.channels, spec.sample_rate, spec.bits_per_sample),
        (1, 16_000, 16)
    );
    r.samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32768.0)
        .collect()
}
