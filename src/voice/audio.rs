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

use std::io::Cursor;
use std::time::Duration;

use rubato::{FftFixedInOut, Resampler};

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
// Containers by magic bytes

enum Container {
    Ogg,
    Wav,
}

/// Classifies `bytes` by their first bytes. Knowing the other common audio
/// formats lets the user be told "MP3 is not supported" rather than "not
/// audio".
fn container(b: &[u8]) -> Result<Container, AudioError> {
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

// ---------------------------------------------------------------------------
// Ogg pages (our own header walk: cheap, bounded, and it tells a cut page
// from a damaged one; packets for decoding come from the `ogg` crate)

const FLAG_CONTINUED: u8 = 0x01;
const FLAG_BOS: u8 = 0x02;
const FLAG_EOS: u8 = 0x04;
const PAGE_HEADER: usize = 27;

struct Page<'a> {
    flags: u8,
    granule: u64,
    serial: u32,
    lacing: &'a [u8],
    body: &'a [u8],
    /// The whole page (header, lacing, body), for its checksum.
    raw: &'a [u8],
}

/// The page at byte `at`, or `None` when `at` is the end of the input.
fn page_at(b: &[u8], at: usize) -> Result<Option<Page<'_>>, AudioError> {
    let rest = b.get(at..).unwrap_or_default();
    if rest.is_empty() {
        return Ok(None);
    }
    let magic_len = rest.len().min(4);
    if rest[..magic_len] != b"OggS"[..magic_len] {
        return Err(AudioError::Corrupt(format!(
            "no Ogg page where one should start (byte {at})"
        )));
    }
    if rest.len() < PAGE_HEADER {
        return Err(AudioError::Truncated);
    }
    if rest[4] != 0 {
        return Err(AudioError::Corrupt(format!(
            "unknown Ogg version {} (byte {at})",
            rest[4]
        )));
    }
    let n_segments = usize::from(rest[26]);
    let lacing = rest
        .get(PAGE_HEADER..PAGE_HEADER + n_segments)
        .ok_or(AudioError::Truncated)?;
    let body_len: usize = lacing.iter().map(|&l| usize::from(l)).sum();
    let total = PAGE_HEADER + n_segments + body_len;
    let raw = rest.get(..total).ok_or(AudioError::Truncated)?;
    let u64_at = |i: usize| u64::from_le_bytes(raw[i..i + 8].try_into().unwrap_or_default());
    let u32_at = |i: usize| u32::from_le_bytes(raw[i..i + 4].try_into().unwrap_or_default());
    Ok(Some(Page {
        flags: raw[5],
        granule: u64_at(6),
        serial: u32_at(14),
        lacing,
        body: &raw[PAGE_HEADER + n_segments..],
        raw,
    }))
}

impl Page<'_> {
    /// The first packet, when it starts on this page and ends on it.
    fn first_packet(&self) -> Option<&[u8]> {
        if self.flags & FLAG_CONTINUED != 0 {
            return None;
        }
        let mut len = 0;
        for &l in self.lacing {
            len += usize::from(l);
            if l < 255 {
                return self.body.get(..len);
            }
        }
        None
    }

    /// Whether the stored CRC-32 matches the page.
    fn checksum_ok(&self) -> bool {
        let stored = u32::from_le_bytes([self.raw[22], self.raw[23], self.raw[24], self.raw[25]]);
        let mut crc = ogg_crc(0, &self.raw[..22]);
        crc = ogg_crc(crc, &[0; 4]);
        ogg_crc(crc, &self.raw[26..]) == stored
    }
}

/// Ogg's CRC-32: polynomial 0x04c11db7, MSB first, initial value 0, no final
/// XOR (not the zlib CRC).
fn ogg_crc(mut crc: u32, data: &[u8]) -> u32 {
    static TABLE: [u32; 256] = {
        let mut t = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut r = (i as u32) << 24;
            let mut k = 0;
            while k < 8 {
                r = if r & 0x8000_0000 != 0 {
                    (r << 1) ^ 0x04c1_1db7
                } else {
                    r << 1
                };
                k += 1;
            }
            t[i] = r;
            i += 1;
        }
        t
    };
    for &byte in data {
        crc = (crc << 8) ^ TABLE[((crc >> 24) as u8 ^ byte) as usize];
    }
    crc
}

/// What `OpusHead` says (RFC 7845 §5.1).
#[derive(Debug, Clone, Copy)]
struct OpusHead {
    channels: u8,
    pre_skip: u16,
    /// Output gain in Q7.8 dB, to be applied by the decoder.
    gain: i16,
}

fn parse_opus_head(p: &[u8]) -> Result<OpusHead, AudioError> {
    if p.len() < 19 {
        return Err(AudioError::Corrupt("OpusHead is too short".into()));
    }
    // Upper nibble = major version: only 0 is specified; minor versions are
    // compatible by design.
    if p[8] >> 4 != 0 {
        return Err(AudioError::Unsupported(format!(
            "Opus header version {}",
            p[8]
        )));
    }
    let channels = p[9];
    let pre_skip = u16::from_le_bytes([p[10], p[11]]);
    let gain = i16::from_le_bytes([p[16], p[17]]);
    match (p[18], channels) {
        (0, 1 | 2) => Ok(OpusHead {
            channels,
            pre_skip,
            gain,
        }),
        (0, n) => Err(AudioError::Corrupt(format!(
            "OpusHead says {n} channels for a mono/stereo stream"
        ))),
        (family, n) => Err(AudioError::Unsupported(format!(
            "surround Opus ({n} channels, mapping family {family})"
        ))),
    }
}

/// The name of the codec whose first packet this is (Ogg codecs identify
/// themselves in their first packet).
fn ogg_codec(packet: &[u8]) -> &'static str {
    const CODECS: [(&[u8], &str); 8] = [
        (b"OpusHead", "Opus"),
        (b"\x01vorbis", "Vorbis"),
        (b"\x7fFLAC", "FLAC"),
        (b"Speex   ", "Speex"),
        (b"\x80theora", "Theora video"),
        (b"OVP80", "VP8 video"),
        (b"PCM     ", "PCM"),
        (b"fishead\0", "Skeleton"),
    ];
    CODECS
        .iter()
        .find(|(magic, _)| packet.starts_with(magic))
        .map_or("an unknown codec", |(_, name)| name)
}

/// The Opus stream among the streams that begin the file (pages with the
/// beginning-of-stream flag come first): its serial, head, and the offset of
/// the first page after the beginning pages.
fn ogg_head(b: &[u8]) -> Result<(u32, OpusHead, usize), AudioError> {
    let mut at = 0;
    let mut opus = None;
    let mut other = None;
    while let Some(page) = page_at(b, at)? {
        if page.flags & FLAG_BOS == 0 {
            if at == 0 {
                return Err(AudioError::Corrupt(
                    "the first Ogg page does not begin a stream".into(),
                ));
            }
            break;
        }
        at += page.raw.len();
        let Some(packet) = page.first_packet() else {
            return Err(AudioError::Corrupt(
                "an Ogg stream's first page holds no whole packet".into(),
            ));
        };
        match ogg_codec(packet) {
            "Opus" if opus.is_none() => {
                if !page.checksum_ok() {
                    return Err(AudioError::Corrupt(
                        "the OpusHead page fails its checksum".into(),
                    ));
                }
                opus = Some((page.serial, parse_opus_head(packet)?));
            }
            "Opus" | "Skeleton" => {}
            name => other = other.or(Some(name)),
        }
    }
    match (opus, other) {
        (Some((serial, head)), _) => Ok((serial, head, at)),
        (None, Some(name)) => Err(AudioError::Unsupported(format!(
            "{name} in Ogg (only Opus is decoded)"
        ))),
        // Only beginning pages (or only Skeleton): cut before the audio.
        (None, None) => Err(AudioError::Truncated),
    }
}

/// The Opus stream and its length as its pages declare it.
struct OggInfo {
    serial: u32,
    head: OpusHead,
    /// 48 kHz samples after the pre-skip and the end trim.
    samples: u64,
}

/// Walks every page header from the start to the Opus stream's
/// end-of-stream page or the end of the input (cost: a few bytes per page,
/// ~1 page per second of voice), checking that each page is whole, and takes
/// the last granule position.
fn ogg_info(b: &[u8]) -> Result<OggInfo, AudioError> {
    let (serial, head, mut at) = ogg_head(b)?;
    let mut last: Option<Page<'_>> = None;
    loop {
        let Some(page) = page_at(b, at)? else {
            // The input ends without the end-of-stream flag. After audio
            // pages (granule > 0: header pages have 0) that is how some
            // recorders end a note; before any, the file was cut.
            match &last {
                Some(p) if p.granule > 0 => break,
                _ => return Err(AudioError::Truncated),
            }
        };
        at += page.raw.len();
        if page.serial != serial {
            continue;
        }
        let eos = page.flags & FLAG_EOS != 0;
        // −1 (all ones) means "no packet ends on this page".
        if page.granule != u64::MAX {
            last = Some(page);
        }
        if eos {
            break;
        }
    }
    let Some(last) = last else {
        return Ok(OggInfo {
            serial,
            head,
            samples: 0,
        });
    };
    // The whole length rests on this one number: check its page.
    if !last.checksum_ok() {
        return Err(AudioError::Corrupt(
            "the last Ogg page fails its checksum".into(),
        ));
    }
    if last.granule > i64::MAX as u64 {
        return Err(AudioError::Corrupt(
            "negative granule position on the last page".into(),
        ));
    }
    Ok(OggInfo {
        serial,
        head,
        samples: last.granule.saturating_sub(u64::from(head.pre_skip)),
    })
}

fn ogg_error(e: ogg::OggReadError) -> AudioError {
    use ogg::OggReadError as E;
    match e {
        E::ReadError(_) => AudioError::Truncated,
        E::HashMismatch(..) => AudioError::Corrupt("an Ogg page fails its checksum".into()),
        E::NoCapturePatternFound => AudioError::Corrupt("lost the Ogg page structure".into()),
        E::InvalidStreamStructVer(v) => AudioError::Corrupt(format!("unknown Ogg version {v}")),
        E::InvalidData => AudioError::Corrupt("Ogg pages out of order".into()),
    }
}

fn decode_ogg(b: &[u8], max: Duration) -> Result<Pcm, AudioError> {
    let OggInfo {
        serial,
        head,
        samples: target,
    } = ogg_info(b)?;
    check_length(target, OPUS_RATE, max)?;
    if target == 0 {
        return Err(AudioError::Empty);
    }
    let channels = usize::from(head.channels);
    let layout = if channels == 1 {
        opus::Channels::Mono
    } else {
        opus::Channels::Stereo
    };
    let opus_err = |what: &str, e: opus::Error| AudioError::Corrupt(format!("{what}: {e}"));
    let mut decoder =
        opus::Decoder::new(OPUS_RATE, layout).map_err(|e| opus_err("Opus decoder", e))?;
    if head.gain != 0 {
        decoder
            .set_gain(i32::from(head.gain))
            .map_err(|e| opus_err("OpusHead output gain", e))?;
    }
    let mut resampler = To16k::new(OPUS_RATE, target)?;
    let mut frame = vec![0f32; MAX_OPUS_FRAME * channels];
    let mut mono = Vec::with_capacity(MAX_OPUS_FRAME);
    let mut skip = u64::from(head.pre_skip);
    // `kept` never exceeds `target`, which `check_length` bounded by `max`:
    // the loop stops there however many packets follow, so a file whose
    // granule understates its packets costs no more than its stated length.
    let mut kept = 0u64;
    let mut index = 0u64;
    let mut packets = ogg::PacketReader::new(Cursor::new(b));
    while kept < target {
        let Some(packet) = packets.read_packet().map_err(ogg_error)? else {
            break;
        };
        if packet.stream_serial() != serial {
            continue;
        }
        index += 1;
        match index {
            1 => continue, // OpusHead, read by `ogg_info`
            2 if packet.data.starts_with(b"OpusTags") => continue,
            2 => {
                return Err(AudioError::Corrupt(
                    "OpusTags missing after OpusHead".into(),
                ))
            }
            _ => {}
        }
        if packet.data.is_empty() {
            // No audio in it (RFC 6716 wants ≥ 1 byte; writers differ).
            if packet.last_in_stream() {
                break;
            }
            continue;
        }
        let n = decoder
            .decode_float(&packet.data, &mut frame, false)
            .map_err(|e| opus_err(&format!("Opus packet {}", index - 2), e))?;
        mono.clear();
        if channels == 1 {
            mono.extend_from_slice(&frame[..n]);
        } else {
            mono.extend(
                frame[..2 * n]
                    .chunks_exact(2)
                    .map(|lr| 0.5 * (lr[0] + lr[1])),
            );
        }
        // Drop the encoder's priming (pre-skip), keep up to the end trim.
        let dropped = skip.min(n as u64) as usize;
        skip -= dropped as u64;
        let take = (mono.len() - dropped).min((target - kept) as usize);
        resampler.push(&mono[dropped..dropped + take])?;
        kept += take as u64;
        if packet.last_in_stream() {
            break;
        }
    }
    // Fewer samples than the last granule promised is tolerated (players do
    // the same): the output is what the packets hold.
    let samples = resampler.finish()?;
    if samples.is_empty() {
        return Err(AudioError::Empty);
    }
    Ok(Pcm {
        samples,
        source_rate: OPUS_RATE,
        channels: u16::from(head.channels),
        format: Format::OggOpus,
    })
}

// ---------------------------------------------------------------------------
// WAV

struct WavInfo<'a> {
    reader: hound::WavReader<Cursor<&'a [u8]>>,
    rate: u32,
    channels: u16,
    frames: u64,
}

fn wav_error(e: hound::Error) -> AudioError {
    match e {
        // Reading from memory fails only at the end of the input.
        hound::Error::IoError(_) => AudioError::Truncated,
        hound::Error::FormatError(what) => AudioError::Corrupt(format!("WAV: {what}")),
        hound::Error::Unsupported => {
            AudioError::Unsupported("WAV encoding other than PCM or float".into())
        }
        hound::Error::TooWide | hound::Error::InvalidSampleFormat => {
            AudioError::Unsupported("WAV sample format".into())
        }
        hound::Error::UnfinishedSample => AudioError::Corrupt("WAV: unfinished sample".into()),
    }
}

/// Parses the header and checks the data chunk is all there.
fn wav_info(b: &[u8]) -> Result<WavInfo<'_>, AudioError> {
    let reader = hound::WavReader::new(Cursor::new(b)).map_err(wav_error)?;
    let spec = reader.spec();
    if !(MIN_WAV_RATE..=MAX_WAV_RATE).contains(&spec.sample_rate) {
        return Err(AudioError::Unsupported(format!(
            "WAV at {} Hz",
            spec.sample_rate
        )));
    }
    // The reader stands at the first data byte: that many bytes must follow
    // (counted with the smallest container size the bit depth allows).
    let data_start = hound::WavReader::new(Cursor::new(b))
        .map_err(wav_error)?
        .into_inner()
        .position();
    let needed = u64::from(reader.len()) * u64::from(spec.bits_per_sample).div_ceil(8);
    if (b.len() as u64).saturating_sub(data_start) < needed {
        return Err(AudioError::Truncated);
    }
    Ok(WavInfo {
        rate: spec.sample_rate,
        channels: spec.channels,
        frames: u64::from(reader.duration()),
        reader,
    })
}

fn decode_wav(b: &[u8], max: Duration) -> Result<Pcm, AudioError> {
    let WavInfo {
        mut reader,
        rate,
        channels,
        frames,
    } = wav_info(b)?;
    check_length(frames, rate, max)?;
    if frames == 0 {
        return Err(AudioError::Empty);
    }
    let spec = reader.spec();
    let mut resampler = To16k::new(rate, frames)?;
    let mut sink = Downmix::new(usize::from(channels), &mut resampler);
    match (spec.sample_format, spec.bits_per_sample) {
        (hound::SampleFormat::Int, bits @ (8 | 16 | 24 | 32)) => {
            let scale = 1.0 / (1u64 << (bits - 1)) as f32;
            for s in reader.samples::<i32>() {
                sink.push(s.map_err(wav_error)? as f32 * scale)?;
            }
        }
        (hound::SampleFormat::Float, 32) => {
            for s in reader.samples::<f32>() {
                let s = s.map_err(wav_error)?;
                if !s.is_finite() {
                    return Err(AudioError::Corrupt(
                        "WAV holds a non-finite float sample".into(),
                    ));
                }
                sink.push(s)?;
            }
        }
        (format, bits) => {
            return Err(AudioError::Unsupported(format!(
                "{bits}-bit {format:?} WAV"
            )))
        }
    }
    sink.flush()?;
    let samples = resampler.finish()?;
    Ok(Pcm {
        samples,
        source_rate: rate,
        channels,
        format: Format::Wav,
    })
}

/// Averages interleaved channels into mono, handing the resampler blocks.
struct Downmix<'r> {
    channels: usize,
    acc: f32,
    in_frame: usize,
    block: Vec<f32>,
    out: &'r mut To16k,
}

impl<'r> Downmix<'r> {
    fn new(channels: usize, out: &'r mut To16k) -> Self {
        Downmix {
            channels: channels.max(1),
            acc: 0.0,
            in_frame: 0,
            block: Vec::with_capacity(4096),
            out,
        }
    }

    fn push(&mut self, s: f32) -> Result<(), AudioError> {
        self.acc += s;
        self.in_frame += 1;
        if self.in_frame == self.channels {
            self.block.push(self.acc / self.channels as f32);
            self.acc = 0.0;
            self.in_frame = 0;
            if self.block.len() == self.block.capacity() {
                self.flush()?;
            }
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), AudioError> {
        self.out.push(&self.block)?;
        self.block.clear();
        Ok(())
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

// ---------------------------------------------------------------------------
// Resampling to 16 kHz

/// A streaming resampler to [`SAMPLE_RATE`] whose output is aligned with its
/// input and exactly `round(n · 16000 / rate)` long.
///
/// rubato's `FftFixedInOut` takes fixed chunks and answers with fixed chunks,
/// `output_delay()` samples late (half a chunk: the low-pass filter is
/// centred). So: drop the first `delay` output samples, and at the end feed
/// zeros until the output reaches the exact length.
struct To16k {
    rate: u32,
    /// `None` at 16 kHz: samples pass through.
    fft: Option<FftFixedInOut<f32>>,
    chunk_in: usize,
    pending: Vec<f32>,
    scratch: Vec<f32>,
    delay: usize,
    consumed: u64,
    out: Vec<f32>,
}

impl To16k {
    /// `expected_in`: input length if known, to size the output once.
    fn new(rate: u32, expected_in: u64) -> Result<Self, AudioError> {
        let expected_out = exact_len(expected_in, rate);
        let mut out = Vec::new();
        out.try_reserve_exact(usize::try_from(expected_out).unwrap_or(usize::MAX))
            .map_err(|_| AudioError::Unsupported("audio too large for memory".into()))?;
        if rate == SAMPLE_RATE {
            return Ok(To16k {
                rate,
                fft: None,
                chunk_in: 0,
                pending: Vec::new(),
                scratch: Vec::new(),
                delay: 0,
                consumed: 0,
                out,
            });
        }
        // rubato's chunk is k × (rate / gcd) input frames for k × (16000 /
        // gcd) output frames, and its filter is centred on sample chunk/2: with
        // k even both halves are whole samples, so the delay it reports is
        // exact (an odd k leaves a half-sample shift, 0.2 samples at 44.1k).
        let min_in = (rate / gcd(rate, SAMPLE_RATE)) as usize;
        let k = RESAMPLE_CHUNK.div_ceil(min_in).next_multiple_of(2);
        let fft = FftFixedInOut::<f32>::new(rate as usize, SAMPLE_RATE as usize, k * min_in, 1)
            .map_err(|e| AudioError::Unsupported(format!("resampling from {rate} Hz: {e}")))?;
        let chunk_in = fft.input_frames_next();
        Ok(To16k {
            rate,
            chunk_in,
            pending: Vec::with_capacity(chunk_in),
            scratch: vec![0.0; fft.output_frames_max()],
            delay: fft.output_delay(),
            fft: Some(fft),
            consumed: 0,
            out,
        })
    }

    fn push(&mut self, mut x: &[f32]) -> Result<(), AudioError> {
        self.consumed += x.len() as u64;
        if self.fft.is_none() {
            self.out.extend_from_slice(x);
            return Ok(());
        }
        if !self.pending.is_empty() {
            let take = (self.chunk_in - self.pending.len()).min(x.len());
            self.pending.extend_from_slice(&x[..take]);
            x = &x[take..];
            if self.pending.len() < self.chunk_in {
                return Ok(());
            }
            let chunk = std::mem::take(&mut self.pending);
            self.run(&chunk)?;
            self.pending = chunk;
            self.pending.clear();
        }
        while x.len() >= self.chunk_in {
            let (chunk, rest) = x.split_at(self.chunk_in);
            self.run(chunk)?;
            x = rest;
        }
        self.pending.extend_from_slice(x);
        Ok(())
    }

    /// Resamples one whole chunk, dropping what is still owed to the delay.
    fn run(&mut self, chunk: &[f32]) -> Result<(), AudioError> {
        let Some(fft) = self.fft.as_mut() else {
            return Ok(());
        };
        let (_, n) = fft
            .process_into_buffer(&[chunk], &mut [&mut self.scratch[..]], None)
            .map_err(|e| AudioError::Corrupt(format!("resampler: {e}")))?;
        let drop = self.delay.min(n);
        self.delay -= drop;
        self.out.extend_from_slice(&self.scratch[drop..n]);
        Ok(())
    }

    /// Flushes the filter and returns exactly `round(consumed · 16000 /
    /// rate)` samples, clamped to −1..1.
    fn finish(mut self) -> Result<Vec<f32>, AudioError> {
        let want = usize::try_from(exact_len(self.consumed, self.rate)).unwrap_or(usize::MAX);
        if self.fft.is_some() {
            let zeros = vec![0.0; self.chunk_in];
            let mut last = std::mem::take(&mut self.pending);
            if !last.is_empty() {
                last.resize(self.chunk_in, 0.0);
                self.run(&last)?;
            }
            // Each chunk yields output once the delay is paid: this ends.
            while self.out.len() < want {
                self.run(&zeros)?;
            }
        }
        self.out.truncate(want);
        self.out.iter_mut().for_each(|s| *s = s.clamp(-1.0, 1.0));
        Ok(self.out)
    }
}

fn gcd(mut a: u32, mut b: u32) -> u32 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

/// `round(n · 16000 / rate)`, halves up.
fn exact_len(n: u64, rate: u32) -> u64 {
    let rate = u128::from(rate.max(1));
    ((u128::from(n) * u128::from(SAMPLE_RATE) + rate / 2) / rate) as u64
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MINUTE: Duration = Duration::from_secs(60);

    /// A WAV in memory, written by hound (test fixture).
    fn wav(rate: u32, channels: u16, bits: u16, float: bool, frames: &[Vec<f32>]) -> Vec<u8> {
        let spec = hound::WavSpec {
            channels,
            sample_rate: rate,
            bits_per_sample: bits,
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut cur = Cursor::new(Vec::new());
        let mut w = hound::WavWriter::new(&mut cur, spec).unwrap();
        for frame in frames {
            for &s in frame {
                if float {
                    w.write_sample(s).unwrap();
                } else {
                    let full = ((1i64 << (bits - 1)) - 1) as f32;
                    w.write_sample((s * full).round() as i32).unwrap();
                }
            }
        }
        w.finalize().unwrap();
        cur.into_inner()
    }

    fn sine(rate: u32, hz: f32, secs: f32) -> Vec<f32> {
        let n = (rate as f32 * secs) as usize;
        (0..n)
            .map(|i| 0.5 * (std::f32::consts::TAU * hz * i as f32 / rate as f32).sin())
            .collect()
    }

    fn mono(x: &[f32]) -> Vec<Vec<f32>> {
        x.iter().map(|&s| vec![s]).collect()
    }

    #[test]
    fn crc_matches_the_ogg_reference_value() {
        // The standard check input; equals CRC-32/CKSUM (0x765e7680) before
        // its final inversion, which Ogg does not do.
        assert_eq!(ogg_crc(0, b"123456789"), 0x89a1_897f);
    }

    #[test]
    fn exact_output_length_and_alignment() {
        for rate in [8_000, 11_025, 22_050, 44_100, 48_000, 96_000] {
            for n in [1u64, 100, 1_025, 4_801, 48_000] {
                let mut r = To16k::new(rate, n).unwrap();
                r.push(&vec![0.25; n as usize]).unwrap();
                let out = r.finish().unwrap();
                assert_eq!(out.len() as u64, exact_len(n, rate), "rate {rate} n {n}");
            }
        }
        // A 440 Hz tone keeps its phase: delay removed.
        for rate in [8_000, 44_100, 48_000] {
            let x = sine(rate, 440.0, 0.5);
            let mut r = To16k::new(rate, x.len() as u64).unwrap();
            r.push(&x).unwrap();
            let y = r.finish().unwrap();
            let reference = sine(SAMPLE_RATE, 440.0, 0.5);
            let mid = &y[2_000..6_000];
            let err = mid
                .iter()
                .zip(&reference[2_000..6_000])
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < 1e-3, "rate {rate}: max error {err}");
        }
    }

    #[test]
    fn aliasing_is_filtered() {
        // 12 kHz at 48 kHz must vanish at 16 kHz (Nyquist 8 kHz).
        let x = sine(48_000, 12_000.0, 0.5);
        let mut r = To16k::new(48_000, x.len() as u64).unwrap();
        r.push(&x).unwrap();
        let y = r.finish().unwrap();
        let rms = (y[1_000..7_000].iter().map(|s| s * s).sum::<f32>() / 6_000.0).sqrt();
        assert!(rms < 0.001, "alias rms {rms}");
    }

    #[test]
    fn wav_formats_and_downmix() {
        let tone = sine(16_000, 300.0, 0.25);
        for (bits, float) in [
            (8, false),
            (16, false),
            (24, false),
            (32, false),
            (32, true),
        ] {
            let pcm = decode(&wav(16_000, 1, bits, float, &mono(&tone)), MINUTE).unwrap();
            assert_eq!(pcm.samples.len(), tone.len());
            let tol = if bits == 8 { 0.02 } else { 1e-4 };
            let err = pcm
                .samples
                .iter()
                .zip(&tone)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(err < tol, "{bits}-bit float={float}: error {err}");
        }
        // Left = tone, right = −tone/2 → mono = tone/4.
        let stereo: Vec<Vec<f32>> = tone.iter().map(|&s| vec![s, -s / 2.0]).collect();
        let pcm = decode(&wav(16_000, 2, 16, false, &stereo), MINUTE).unwrap();
        assert_eq!(pcm.channels, 2);
        let err = pcm
            .samples
            .iter()
            .zip(&tone)
            .map(|(a, b)| (a - b / 4.0).abs())
            .fold(0.0, f32::max);
        assert!(err < 1e-3, "downmix error {err}");
    }

    #[test]
    fn sniff_by_magic_bytes() {
        let w = wav(8_000, 1, 16, false, &mono(&[0.0; 10]));
        assert_eq!(sniff(&w), Some(Format::Wav));
        assert_eq!(sniff(b""), None);
        assert_eq!(sniff(b"\x89PNG\r\n\x1a\n"), None);
        assert_eq!(sniff(b"OggS"), None);
    }

    #[test]
    fn not_audio_and_other_formats() {
        assert_eq!(decode(b"", MINUTE), Err(AudioError::Empty));
        assert_eq!(probe_duration(b""), Err(AudioError::Empty));
        assert_eq!(
            decode(b"hello, this is text", MINUTE),
            Err(AudioError::NotAudio)
        );
        assert_eq!(
            decode(b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR", MINUTE),
            Err(AudioError::NotAudio)
        );
        assert_eq!(
            decode(b"RIFF\0\0\0\0WEBPVP8 ", MINUTE),
            Err(AudioError::NotAudio)
        );
        assert!(
            matches!(decode(b"ID3\x04\0\0\0\0\0\0", MINUTE), Err(AudioError::Unsupported(s)) if s == "MP3")
        );
        assert!(
            matches!(decode(b"fLaC\0\0\0\x22", MINUTE), Err(AudioError::Unsupported(s)) if s == "FLAC")
        );
        assert!(matches!(
            decode(b"\0\0\0\x20ftypM4A ", MINUTE),
            Err(AudioError::Unsupported(_))
        ));
        assert_eq!(decode(b"Og", MINUTE), Err(AudioError::Truncated));
        assert_eq!(decode(b"RIFF\x10\0", MINUTE), Err(AudioError::Truncated));
    }

    #[test]
    fn wav_limits() {
        let w = wav(8_000, 1, 16, false, &mono(&vec![0.1; 8_000 * 3]));
        assert_eq!(probe_duration(&w), Ok(Duration::from_secs(3)));
        assert_eq!(
            decode(&w, Duration::from_secs(2)),
            Err(AudioError::TooLong {
                secs: 3,
                max_secs: 2
            })
        );
        assert_eq!(
            decode(&w, Duration::from_secs(3)).unwrap().samples.len(),
            48_000
        );
        // Cut in the data chunk, in the header.
        assert_eq!(
            decode(&w[..w.len() - 1], MINUTE),
            Err(AudioError::Truncated)
        );
        assert_eq!(
            probe_duration(&w[..w.len() / 2]),
            Err(AudioError::Truncated)
        );
        assert_eq!(decode(&w[..30], MINUTE), Err(AudioError::Truncated));
        // Zero samples.
        assert_eq!(
            decode(&wav(8_000, 1, 16, false, &[]), MINUTE),
            Err(AudioError::Empty)
        );
        // An absurd rate.
        let mut odd = wav(8_000, 1, 16, false, &mono(&[0.0; 4]));
        odd[24..28].copy_from_slice(&5u32.to_le_bytes());
        odd[28..32].copy_from_slice(&10u32.to_le_bytes());
        assert!(matches!(
            decode(&odd, MINUTE),
            Err(AudioError::Unsupported(_))
        ));
    }

    #[test]
    fn fake_vorbis_ogg_is_unsupported() {
        // One beginning page whose first packet is a Vorbis id header.
        let mut packet = b"\x01vorbis".to_vec();
        packet.resize(30, 0);
        let mut page = b"OggS\0\x02".to_vec();
        page.extend_from_slice(&0u64.to_le_bytes());
        page.extend_from_slice(&7u32.to_le_bytes());
        page.extend_from_slice(&0u32.to_le_bytes());
        page.extend_from_slice(&[0; 4]);
        page.push(1);
        page.push(packet.len() as u8);
        page.extend_from_slice(&packet);
        let crc = ogg_crc(0, &page);
        page[22..26].copy_from_slice(&crc.to_le_bytes());
        assert!(
            matches!(decode(&page, MINUTE), Err(AudioError::Unsupported(s)) if s.contains("Vorbis"))
        );
        assert_eq!(sniff(&page), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2_000, ..ProptestConfig::default() })]
        #[test]
        fn arbitrary_bytes_never_panic(
            prefix in prop::sample::select(vec![&b""[..], b"OggS", b"OggS\0\x02", b"RIFF\x24\0\0\0WAVEfmt "]),
            body in prop::collection::vec(any::<u8>(), 0..600),
        ) {
            let mut b = prefix.to_vec();
            b.extend_from_slice(&body);
            let _ = sniff(&b);
            let _ = probe_duration(&b);
            if let Ok(pcm) = decode(&b, MINUTE) {
                prop_assert!(pcm.duration() <= MINUTE);
            }
        }
    }
}
