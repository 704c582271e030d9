//! Ogg/Opus: our own walk over the Ogg page headers (cheap, bounded, and it
//! tells a cut page from a damaged one), `OpusHead`, the length the pages
//! declare, and decoding (packets from the `ogg` crate, audio from libopus).

use std::io::Cursor;
use std::time::Duration;

use super::resample::To16k;
use super::{check_length, AudioError, Format, Pcm, MAX_OPUS_FRAME, OPUS_RATE};

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
pub(super) fn ogg_crc(mut crc: u32, data: &[u8]) -> u32 {
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
pub(super) struct OpusHead {
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
pub(super) fn ogg_head(b: &[u8]) -> Result<(u32, OpusHead, usize), AudioError> {
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
pub(super) struct OggInfo {
    serial: u32,
    head: OpusHead,
    /// 48 kHz samples after the pre-skip and the end trim.
    pub(super) samples: u64,
}

/// Walks every page header from the start to the Opus stream's
/// end-of-stream page or the end of the input (cost: a few bytes per page,
/// ~1 page per second of voice), checking that each page is whole, and takes
/// the last granule position.
pub(super) fn ogg_info(b: &[u8]) -> Result<OggInfo, AudioError> {
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

pub(super) fn decode_ogg(b: &[u8], max: Duration) -> Result<Pcm, AudioError> {
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
