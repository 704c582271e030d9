//! Containers by magic bytes: Ogg and WAV to decode, the other common audio
//! formats to name in [`AudioError::Unsupported`].

use super::AudioError;

pub(super) enum Container {
    Ogg,
    Wav,
}

/// Classifies `bytes` by their first bytes. Knowing the other common audio
/// formats lets the user be told "MP3 is not supported" rather than "not
/// audio".
pub(super) fn container(b: &[u8]) -> Result<Container, AudioError> {
    if b.is_empty() {
        return Err(AudioError::Empty);
    }
    // A file shorter than its magic that starts like one was cut.
    for magic in [&b"OggS"[..], b"RIFF"] {
        if b.len() < magic.len() && magic.starts_with(b) {
            return Err(AudioError::Truncated);
        }
    }
    if b.starts_with(b"OggS") {
        return Ok(Container::Ogg);
    }
    if b.starts_with(b"RIFF") {
        if b.len() < 12 {
            return Err(AudioError::Truncated);
        }
        return if &b[8..12] == b"WAVE" {
            Ok(Container::Wav)
        } else {
            Err(AudioError::NotAudio)
        };
    }
    let other = |name: &str| Err(AudioError::Unsupported(name.to_owned()));
    if b.starts_with(b"RF64") {
        return other("RF64 (64-bit WAV)");
    }
    if b.starts_with(b"ID3") || (b.len() >= 2 && b[0] == 0xFF && b[1] & 0xF6 == 0xF2) {
        return other("MP3");
    }
    if b.len() >= 2 && b[0] == 0xFF && b[1] & 0xF6 == 0xF0 {
        return other("AAC (ADTS)");
    }
    if b.starts_with(b"fLaC") {
        return other("FLAC");
    }
    if b.len() >= 8 && &b[4..8] == b"ftyp" {
        return other("MP4/M4A");
    }
    if b.starts_with(&[0x1A, 0x45, 0xDF, 0xA3]) {
        return other("WebM/Matroska");
    }
    if b.starts_with(b"#!AMR") {
        return other("AMR");
    }
    if b.len() >= 12 && b.starts_with(b"FORM") && (&b[8..12] == b"AIFF" || &b[8..12] == b"AIFC") {
        return other("AIFF");
    }
    Err(AudioError::NotAudio)
}
