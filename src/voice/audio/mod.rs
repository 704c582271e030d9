//! Audio decoding for voice notes: OGG/Opus or WAV bytes → 16 kHz mono `f32`.
//!
//! Telegram voice notes are **Opus in an Ogg container** (48 kHz, mono).
//! Speech recognisers want 16 kHz mono samples in −1..1, so [`decode`] does:
//!
//! ```text
//! bytes ─ sniff ─┬─ Ogg: pages → packets (ogg) → Opus frames at 48 kHz (libopus) ─┐
//!                └─ WAV: header + PCM/float samples (hound) at any rate ───────────┴─ downmix → resample (rubato) → Pcm
//! ```
//!
//! # Ogg/Opus in five facts (RFC 3533, RFC 7845)
//!
//! - An Ogg file is a chain of **pages**: a 27-byte header (`OggS`, flags,
//!   *granule position*, stream serial, sequence number, CRC-32), a table of
//!   *lacing values* (segment sizes), then the body. A packet is the
//!   concatenation of segments up to one shorter than 255 bytes, so packets
//!   may span pages.
//! - The first packet of an Opus stream is `OpusHead` (channel count,
//!   **pre-skip**, original input rate, output gain, channel mapping family),
//!   the second `OpusTags`; every later packet is compressed audio of 2.5 to
//!   120 ms.
//! - Opus always decodes at 48 kHz. The encoder's look-ahead puts `pre-skip`
//!   samples of priming at the start: they are decoded (to warm the decoder
//!   up) and then dropped.
//! - A page's granule position is the number of 48 kHz samples, *including*
//!   the pre-skip, decoded by the end of the last packet finished on that
//!   page. The last packet is padded to a whole frame, so the final page's
//!   granule is what trims the end: the audio has exactly
//!   `last granule − pre-skip` samples.
//! - The last page of a stream should carry the end-of-stream flag (not
//!   every writer sets it: see below).
//!
//! That is why the length of an Ogg/Opus file is known from its headers:
//! [`probe_duration`] walks the page headers (a few bytes per second of audio)
//! and reads the last granule, so a voice note that is too long is refused
//! before a single packet is decoded.
//!
//! # Choices
//!
//! - **Cut-off files are refused** ([`AudioError::Truncated`]), not decoded as
//!   far as they go: a page cut short, or a stream that ends before its first
//!   audio page, means the download or the upload was interrupted, and the
//!   user is better told so than answered with half a transcript. A stream
//!   that ends on a whole page *without* the end-of-stream flag is accepted,
//!   up to its last granule: Telegram's Android recorder writes every packet
//!   on its own page and sets the flag only when the last frame is short, so
//!   such files are ordinary voice notes. (A cut exactly between two pages
//!   therefore goes unnoticed; cuts fall mid-page almost always.)
//! - Empty packets (a writer may end a stream with one) carry no audio and
//!   are skipped.
//! - **Length is bounded before and during decoding.** The length a file
//!   claims is checked against `max` first; decoding then never produces more
//!   than that claimed length (the end trim), so a file that lies about its
//!   length cannot make us decode or allocate more than `max` allows. Memory
//!   is the 16 kHz output plus one resampler chunk: the 48 kHz (or WAV-rate)
//!   signal is resampled as it is decoded, never held whole.
//! - **Only Opus in Ogg.** Vorbis, FLAC, Speex … in Ogg, and other containers
//!   (MP3, M4A, WebM …), are recognised by their magic bytes and reported as
//!   [`AudioError::Unsupported`] with their name. Only the first Opus stream
//!   of a file is decoded (multiplexed or chained streams are rare in voice
//!   notes). Surround Opus (channel mapping family 1 or 255) is unsupported.
//! - **WAV**: integer PCM of 8, 16, 24 or 32 bits and 32-bit float, any rate
//!   from 1 kHz to 384 kHz, any channel count. Streamed WAVs whose header
//!   lies about the data length are not supported (never a voice note).
//! - Channels are averaged into mono. Resampling is rubato's FFT resampler
//!   (a windowed-sinc low-pass applied in the frequency domain), its delay
//!   removed, so the output is aligned with the input and has exactly
//!   `round(n · 16000 / rate)` samples; 16 kHz input is passed through.
//!
//! No input panics: every malformed byte sequence is an [`AudioError`]
//! (tested with random and mutated files).
//!
//! # Files
//!
//! `magic.rs` tells containers apart by their first bytes, `ogg_opus.rs`
//! walks Ogg pages and decodes Opus, `wav.rs` reads WAV and averages its
//! channels, `resample.rs` brings any rate to 16 kHz; the public entry points
//! and the length limits are here.

use std::time::Duration;

mod magic;
mod ogg_opus;
mod resample;
mod wav;

use magic::{container, Container};
use ogg_opus::{decode_ogg, ogg_head, ogg_info};
use wav::{decode_wav, wav_info};

/// The rate of [`Pcm::samples`]: what speech recognisers (Whisper) expect.
pub const SAMPLE_RATE: u32 = 16_000;

/// Opus always decodes at 48 kHz; pre-skip and granule positions count
/// samples at this rate whatever the original input rate was.
const OPUS_RATE: u32 = 48_000;

/// The longest Opus packet is 120 ms: 5,760 samples per channel at 48 kHz.
const MAX_OPUS_FRAME: usize = 5_760;

/// WAV sample rates accepted. Outside this range a "rate" is a damaged
/// header, and an absurd one would size the resampler's FFT.
const MIN_WAV_RATE: u32 = 1_000;
const MAX_WAV_RATE: u32 = 384_000;

/// Input frames per resampler call, at least (rounded up to an even multiple
/// of the rate ratio's numerator: 1,026 at 48 kHz, 1,764 at 44.1 kHz). The
/// FFT's low-pass filter is as long as a chunk.
const RESAMPLE_CHUNK: usize = 1_024;

/// The two containers mnemo decodes, as told by their magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Opus in an Ogg container (Telegram voice notes).
    OggOpus,
    /// RIFF/WAVE, PCM or float.
    Wav,
}

/// Decoded audio, ready for speech recognition.
#[derive(Debug, Clone, PartialEq)]
pub struct Pcm {
    /// Mono, [`SAMPLE_RATE`] (16 kHz), in −1..1.
    pub samples: Vec<f32>,
    /// The rate the codec delivered before resampling: 48,000 for Opus (its
    /// decoding rate, whatever the `OpusHead` says the input was), the
    /// header's rate for WAV.
    pub source_rate: u32,
    /// Channels in the source (they are averaged into one).
    pub channels: u16,
    pub format: Format,
}

impl Pcm {
    /// Length of the decoded audio.
    pub fn duration(&self) -> Duration {
        duration_of(self.samples.len() as u64, SAMPLE_RATE)
    }
}

/// Why bytes could not become audio. Each variant is a different answer to
/// the user (the messages here are for logs).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AudioError {
    /// Zero bytes, or a well-formed file that holds no samples.
    #[error("the audio is empty")]
    Empty,
    /// Neither Ogg nor WAV nor any audio format we recognise.
    #[error("not an audio file")]
    NotAudio,
    /// Audio, but a codec, container or variant we do not decode; the string
    /// says which.
    #[error("unsupported audio: {0}")]
    Unsupported(String),
    /// The file ends early (an interrupted download or upload).
    #[error("the audio file is cut off")]
    Truncated,
    /// Structure or codec data are damaged; the string says where.
    #[error("the audio file is damaged: {0}")]
    Corrupt(String),
    /// Longer than the caller's limit (`secs` rounded up, `max_secs` down).
    #[error("the audio is {secs} s long, more than the limit of {max_secs} s")]
    TooLong { secs: u64, max_secs: u64 },
}

/// Which decodable container `bytes` is, by magic bytes (never by file name
/// or MIME type, which the sender chooses). `OggOpus` only when an Ogg
/// stream at the start announces Opus (`OpusHead`).
pub fn sniff(bytes: &[u8]) -> Option<Format> {
    match container(bytes) {
        Ok(Container::Wav) => Some(Format::Wav),
        Ok(Container::Ogg) => ogg_head(bytes).ok().map(|_| Format::OggOpus),
        Err(_) => None,
    }
}

/// The length of the audio, from headers only: the last granule position
/// minus the pre-skip for Ogg/Opus (a walk over page headers, no decoding),
/// the data chunk's size for WAV. Microseconds for a minute of voice: use it
/// to refuse long audio before spending CPU on it ([`decode`] does too).
/// A cut file is [`AudioError::Truncated`] here already; damage inside the
/// audio pages is found only by [`decode`].
pub fn probe_duration(bytes: &[u8]) -> Result<Duration, AudioError> {
    match container(bytes)? {
        Container::Ogg => Ok(duration_of(ogg_info(bytes)?.samples, OPUS_RATE)),
        Container::Wav => {
            let info = wav_info(bytes)?;
            Ok(duration_of(info.frames, info.rate))
        }
    }
}

/// Decodes `bytes` (OGG/Opus or WAV) into 16 kHz mono. Audio longer than
/// `max` is refused with [`AudioError::TooLong`] before it is decoded.
pub fn decode(bytes: &[u8], max: Duration) -> Result<Pcm, AudioError> {
    match container(bytes)? {
        Container::Ogg => decode_ogg(bytes, max),
        Container::Wav => decode_wav(bytes, max),
    }
}

// ---------------------------------------------------------------------------
// Length limits

fn duration_of(samples: u64, rate: u32) -> Duration {
    let rate = u64::from(rate.max(1));
    let nanos = u128::from(samples % rate) * 1_000_000_000 / u128::from(rate);
    Duration::new(samples / rate, nanos as u32)
}

/// `TooLong` when `samples` at `rate` last longer than `max`.
fn check_length(samples: u64, rate: u32, max: Duration) -> Result<(), AudioError> {
    if u128::from(samples) * 1_000_000_000 > max.as_nanos() * u128::from(rate) {
        return Err(AudioError::TooLong {
            secs: samples.div_ceil(u64::from(rate)),
            max_secs: max.as_secs(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
