//! Real speech for tests: synthetic voice notes made with espeak-ng and
//! opusenc (Debian packages installed by scripts/setup.sh), and the real
//! recording fetched by scripts/test-assets.sh.

use std::path::PathBuf;
use std::process::Command;

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}; run scripts/setup.sh to install it"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// `text` spoken by espeak-ng, encoded as a Telegram-like voice note
/// (Ogg/Opus, 48 kHz mono, 24 kbit/s).
pub fn voice_note(text: &str) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    let wav = dir.path().join("speech.wav");
    let ogg = dir.path().join("speech.ogg");
    run(Command::new("espeak-ng").args(["-s", "150", "-w"]).arg(&wav).arg(text));
    run(Command::new("opusenc").args(["--quiet", "--bitrate", "24"]).arg(&wav).arg(&ogg));
    std::fs::read(ogg).unwrap()
}

/// The 11 s JFK clip ("… ask not what your country can do for you …").
pub fn jfk_wav() -> PathBuf {
    let home = std::env::var_os("HOME").map(PathBuf::from).expect("HOME");
    let p = home.join(".cache/mnemo/test-audio/jfk.wav");
    assert!(p.exists(), "{} is missing: run scripts/test-assets.sh (make test does)", p.display());
    p
}
