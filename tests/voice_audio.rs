//! Voice-note decoding against real encoders.
//!
//! The audio is made at test time: speech by espeak-ng (WAV), voice notes by
//! opusenc (Ogg/Opus, the format Telegram sends), a Vorbis file by oggenc,
//! and tones written here. A decoded note must match its source WAV — in
//! length (pre-skip and end trim honoured), in alignment (lag 0) and in
//! waveform (normalised cross-correlation) — not merely be non-empty.
//! The tools are installed by `scripts/setup.sh`; a missing one fails the
//! test with that advice rather than skipping it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use mnemo::voice::audio::{decode, probe_duration, sniff, AudioError, Format, Pcm, SAMPLE_RATE};
use proptest::prelude::*;

const MINUTE: Duration = Duration::from_secs(60);
const SPEECH: &str = "Remember to buy oat milk and call Anna on Friday about the garden. \
                      The meeting with the bank moved to half past three.";

// ---------------------------------------------------------------------------
// Making audio

fn need(tool: &str) {
    let ok = Command::new(tool)
        .arg("--version")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    assert!(ok, "`{tool}` is missing or broken: run scripts/setup.sh (it installs espeak-ng, opus-tools and vorbis-tools)");
}

fn run(cmd: &mut Command) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Dir(tempfile::TempDir);

impl Dir {
    fn new() -> Dir {
        Dir(tempfile::tempdir().unwrap())
    }

    fn path(&self, name: &str) -> PathBuf {
        self.0.path().join(name)
    }

    /// espeak-ng speech as a WAV file (22,050 Hz mono, 16-bit).
    fn speech(&self, name: &str, text: &str) -> PathBuf {
        need("espeak-ng");
        let wav = self.path(name);
        run(Command::new("espeak-ng").arg("-w").arg(&wav).arg(text));
        wav
    }

    /// A WAV written here (16-bit, or 32-bit float).
    fn wav(&self, name: &str, rate: u32, frames: &[Vec<f32>], float: bool) -> PathBuf {
        let path = self.path(name);
        let spec = hound::WavSpec {
            channels: frames.first().map_or(1, |f| f.len() as u16),
            sample_rate: rate,
            bits_per_sample: if float { 32 } else { 16 },
            sample_format: if float {
                hound::SampleFormat::Float
            } else {
                hound::SampleFormat::Int
            },
        };
        let mut w = hound::WavWriter::create(&path, spec).unwrap();
        for frame in frames {
            for &s in frame {
                if float {
                    w.write_sample(s).unwrap();
                } else {
                    w.write_sample((s.clamp(-1.0, 1.0) * 32_767.0).round() as i16)
                        .unwrap();
                }
            }
        }
        w.finalize().unwrap();
        path
    }

    /// `opusenc [args] wav` → the Ogg/Opus bytes.
    fn opus(&self, wav: &Path, args: &[&str]) -> Vec<u8> {
        need("opusenc");
        let out = wav.with_extension("opus");
        run(Command::new("opusenc")
            .arg("--quiet")
            .args(args)
            .arg(wav)
            .arg(&out));
        std::fs::read(out).unwrap()
    }
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap()
}

fn tone(rate: u32, secs: f64, parts: &[(f64, f64)]) -> Vec<f32> {
    let n = (rate as f64 * secs).round() as usize;
    (0..n)
        .map(|i| {
            let t = i as f64 / rate as f64;
            parts
                .iter()
                .map(|(hz, amp)| amp * (std::f64::consts::TAU * hz * t).sin())
                .sum::<f64>() as f32
        })
        .collect()
}

fn mono(x: &[f32]) -> Vec<Vec<f32>> {
    x.iter().map(|&s| vec![s]).collect()
}

/// A short speech note made once per test process (for the property tests).
fn small_note() -> &'static (Vec<u8>, Vec<u8>) {
    static NOTE: OnceLock<(Vec<u8>, Vec<u8>)> = OnceLock::new();
    NOTE.get_or_init(|| {
        let dir = Dir::new();
        let wav = dir.speech("small.wav", "Call Anna.");
        let ogg = dir.opus(&wav, &["--bitrate", "24"]);
        (ogg, read(&wav))
    })
}

// ---------------------------------------------------------------------------
// Comparing audio

/// Normalised cross-correlation of `a` and `b` shifted by `lag` (b[i + lag]
/// against a[i]) over their overlap.
fn ncc(a: &[f32], b: &[f32], lag: isize) -> f64 {
    let (mut ab, mut aa, mut bb) = (0f64, 0f64, 0f64);
    for (i, &x) in a.iter().enumerate() {
        let Some(&y) = usize::try_from(i as isize + lag)
            .ok()
            .and_then(|j| b.get(j))
        else {
            continue;
        };
        ab += f64::from(x) * f64::from(y);
        aa += f64::from(x) * f64::from(x);
        bb += f64::from(y) * f64::from(y);
    }
    ab / (aa * bb).sqrt().max(1e-12)
}

/// The lag in −`max_lag`..=`max_lag` with the highest correlation.
fn best_lag(a: &[f32], b: &[f32], max_lag: isize) -> (isize, f64) {
    (-max_lag..=max_lag)
        .map(|l| (l, ncc(a, b, l)))
        .fold((0, f64::MIN), |best, x| if x.1 > best.1 { x } else { best })
}

/// Pearson correlation of 20 ms RMS envelopes.
fn envelope_corr(a: &[f32], b: &[f32]) -> f64 {
    let env = |x: &[f32]| -> Vec<f64> {
        x.chunks(320)
            .map(|c| (c.iter().map(|s| f64::from(*s).powi(2)).sum::<f64>() / c.len() as f64).sqrt())
            .collect()
    };
    let (ea, eb) = (env(a), env(b));
    let n = ea.len().min(eb.len());
    let (ma, mb) = (
        ea[..n].iter().sum::<f64>() / n as f64,
        eb[..n].iter().sum::<f64>() / n as f64,
    );
    let cov: f64 = (0..n).map(|i| (ea[i] - ma) * (eb[i] - mb)).sum();
    let va: f64 = (0..n).map(|i| (ea[i] - ma).powi(2)).sum();
    let vb: f64 = (0..n).map(|i| (eb[i] - mb).powi(2)).sum();
    cov / (va * vb).sqrt()
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// The checks every decoded note must pass against its source WAV: same
/// length (±25 ms), aligned (a wrong pre-skip shows as a lag of ~100 samples;
/// Opus's speech mode itself may shift by one), the same waveform at lag 0
/// (> 0.9) and at the best lag (> `min_best`), and the same loudness contour.
fn assert_matches_source(what: &str, note: &Pcm, source: &Pcm, min_best: f64) {
    let diff = (secs(note.duration()) - secs(source.duration())).abs();
    assert!(
        diff < 0.025,
        "{what}: note lasts {:?}, source {:?}",
        note.duration(),
        source.duration()
    );
    let (lag, best) = best_lag(&source.samples, &note.samples, 40);
    let at_zero = ncc(&source.samples, &note.samples, 0);
    let env = envelope_corr(&source.samples, &note.samples);
    eprintln!("{what}: ncc {at_zero:.4} at lag 0, best {best:.4} at lag {lag}; envelope {env:.4}; Δduration {:.2} ms", diff * 1e3);
    assert!(
        lag.abs() <= 1,
        "{what}: decoded audio is shifted by {lag} samples (pre-skip?)"
    );
    assert!(
        at_zero > 0.9,
        "{what}: waveform correlation {at_zero:.3} at lag 0"
    );
    assert!(
        best > min_best,
        "{what}: waveform correlation {best:.3} ≤ {min_best}"
    );
    assert!(env > 0.95, "{what}: envelope correlation {env:.3}");
}

// ---------------------------------------------------------------------------
// Ogg pages, for surgery on real files

struct PageSpan {
    start: usize,
    len: usize,
    header_end: usize,
}

fn pages(b: &[u8]) -> Vec<PageSpan> {
    let mut out = Vec::new();
    let mut at = 0;
    while at + 27 <= b.len() {
        assert_eq!(&b[at..at + 4], b"OggS");
        let n = b[at + 26] as usize;
        let body: usize = b[at + 27..at + 27 + n].iter().map(|&l| l as usize).sum();
        out.push(PageSpan {
            start: at,
            len: 27 + n + body,
            header_end: at + 27 + n,
        });
        at += 27 + n + body;
    }
    out
}

fn crc(data: &[u8]) -> u32 {
    let mut crc = 0u32;
    for &byte in data {
        crc ^= u32::from(byte) << 24;
        for _ in 0..8 {
            crc = if crc & 0x8000_0000 != 0 {
                (crc << 1) ^ 0x04c1_1db7
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Recomputes the checksum of the page at `p`.
fn fix_crc(b: &mut [u8], p: &PageSpan) {
    b[p.start + 22..p.start + 26].fill(0);
    let c = crc(&b[p.start..p.start + p.len]);
    b[p.start + 22..p.start + 26].copy_from_slice(&c.to_le_bytes());
}

fn granule(b: &[u8], p: &PageSpan) -> u64 {
    u64::from_le_bytes(b[p.start + 6..p.start + 14].try_into().unwrap())
}

/// Re-muxes an Ogg/Opus file with at most `max_segments` lacing values per
/// page, so packets longer than 255 bytes span two or more pages (pages with
/// granule −1 in between). Granules come from the packets' own durations.
/// With `empty_last`, the stream ends with an extra zero-byte packet.
fn repaginate(b: &[u8], max_segments: usize, empty_last: bool) -> Vec<u8> {
    let mut reader = ogg::PacketReader::new(std::io::Cursor::new(b));
    let mut packets = Vec::new();
    let mut serial = 0;
    while let Some(p) = reader.read_packet().unwrap() {
        serial = p.stream_serial();
        packets.push(p.data);
    }
    let last_granule = granule(b, pages(b).last().unwrap());
    let mut out = Vec::new();
    let mut seq = 0u32;
    let mut page = |flags: u8, gp: u64, lacing: &[u8], body: &[u8], out: &mut Vec<u8>| {
        let start = out.len();
        out.extend_from_slice(b"OggS\0");
        out.push(flags);
        out.extend_from_slice(&gp.to_le_bytes());
        out.extend_from_slice(&serial.to_le_bytes());
        out.extend_from_slice(&seq.to_le_bytes());
        out.extend_from_slice(&[0; 4]);
        out.push(lacing.len() as u8);
        out.extend_from_slice(lacing);
        out.extend_from_slice(body);
        seq += 1;
        let span = PageSpan {
            start,
            len: out.len() - start,
            header_end: 0,
        };
        fix_crc(out, &span);
    };
    // Headers on their own pages, as RFC 7845 wants.
    page(0x02, 0, &[packets[0].len() as u8], &packets[0], &mut out);
    let tags = &packets[1];
    let mut lacing = vec![255u8; tags.len() / 255];
    lacing.push((tags.len() % 255) as u8);
    page(0, 0, &lacing, tags, &mut out);
    // Audio: a stream of (segment length, ends packet, granule at packet end).
    let mut segments = Vec::new();
    let mut gp = 0u64;
    for (i, p) in packets[2..].iter().enumerate() {
        gp += opus::packet::get_nb_samples(p, 48_000).unwrap() as u64;
        let is_last = i == packets.len() - 3 && !empty_last;
        let gp_here = if is_last { last_granule } else { gp };
        let mut rest = p.as_slice();
        while rest.len() >= 255 {
            segments.push((&rest[..255], None));
            rest = &rest[255..];
        }
        segments.push((rest, Some(gp_here)));
    }
    if empty_last {
        segments.push((&[][..], Some(last_granule)));
    }
    let chunks: Vec<_> = segments.chunks(max_segments).collect();
    for (ci, chunk) in chunks.iter().enumerate() {
        let continued = ci > 0 && chunks[ci - 1].last().unwrap().1.is_none();
        let flags = u8::from(continued) | if ci == chunks.len() - 1 { 0x04 } else { 0 };
        let gp = chunk.iter().rev().find_map(|s| s.1).unwrap_or(u64::MAX);
        let lacing: Vec<u8> = chunk.iter().map(|s| s.0.len() as u8).collect();
        let body: Vec<u8> = chunk.iter().flat_map(|s| s.0.iter().copied()).collect();
        page(flags, gp, &lacing, &body, &mut out);
    }
    out
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn a_speech_note_decodes_like_its_source() {
    let dir = Dir::new();
    let wav = dir.speech("speech.wav", SPEECH);
    let source = decode(&read(&wav), MINUTE).unwrap();
    assert_eq!(
        (source.format, source.source_rate, source.channels),
        (Format::Wav, 22_050, 1)
    );
    let frames = hound::WavReader::open(&wav).unwrap().duration() as u64;
    // Output length exact: round(n · 16000 / rate).
    assert_eq!(
        source.samples.len() as u64,
        (frames * 16_000 + 11_025) / 22_050
    );

    // Telegram's voice notes are ~32 kbit/s mono; 16 kbit/s is a poor line.
    for (bitrate, min_best) in [("32", 0.97), ("16", 0.95)] {
        let ogg = dir.opus(&wav, &["--bitrate", bitrate]);
        assert_eq!(sniff(&ogg), Some(Format::OggOpus));
        let note = decode(&ogg, MINUTE).unwrap();
        assert_eq!(
            (note.format, note.source_rate, note.channels),
            (Format::OggOpus, 48_000, 1)
        );
        // probe_duration (headers only) agrees with the decoded length.
        let probed = probe_duration(&ogg).unwrap();
        let n48 = (probed.as_nanos() * 48_000).div_ceil(1_000_000_000) as u64;
        assert_eq!(
            note.samples.len() as u64,
            (n48 * 16_000 + 24_000) / 48_000,
            "output length is round(n·16000/48000)"
        );
        assert!(
            (secs(probed) - secs(source.duration())).abs() < 0.025,
            "probe {probed:?} vs source {:?}",
            source.duration()
        );
        assert!(note.samples.iter().all(|s| (-1.0..=1.0).contains(s)));
        assert_matches_source(
            &format!("speech at {bitrate} kbit/s"),
            &note,
            &source,
            min_best,
        );
    }
}

#[test]
fn stereo_notes_are_downmixed() {
    let dir = Dir::new();
    let speech = decode(&read(&dir.speech("speech.wav", SPEECH)), MINUTE).unwrap();
    // Left: the speech; right: a 220 Hz hum — mono must hold both, halved.
    let hum = tone(
        SAMPLE_RATE,
        speech.samples.len() as f64 / 16_000.0,
        &[(220.0, 0.3)],
    );
    let frames: Vec<Vec<f32>> = speech
        .samples
        .iter()
        .zip(&hum)
        .map(|(&l, &r)| vec![l, r])
        .collect();
    let wav = dir.wav("stereo.wav", SAMPLE_RATE, &frames, false);
    let source = decode(&read(&wav), MINUTE).unwrap();
    assert_eq!(source.channels, 2);
    let expected: Vec<f32> = frames.iter().map(|f| (f[0] + f[1]) / 2.0).collect();
    assert!(
        source
            .samples
            .iter()
            .zip(&expected)
            .all(|(a, b)| (a - b).abs() < 1e-3),
        "WAV downmix"
    );

    let ogg = dir.opus(&wav, &["--bitrate", "96"]);
    let note = decode(&ogg, MINUTE).unwrap();
    assert_eq!(note.channels, 2);
    assert_matches_source("stereo note", &note, &source, 0.99);
}

#[test]
fn wav_and_notes_at_48k_44k1_8k_and_22k05() {
    let dir = Dir::new();
    for rate in [48_000u32, 44_100, 8_000, 22_050] {
        // Tones the 16 kHz output keeps, plus (above 8 kHz) one it must drop.
        let mut parts = vec![(311.0, 0.3), (1_230.0, 0.2), (3_100.0, 0.1)];
        if rate > 20_000 {
            parts.push((11_000.0, 0.2));
        }
        let x = tone(rate, 2.0, &parts);
        for float in [false, true] {
            let bytes = read(&dir.wav(&format!("t{rate}.wav"), rate, &mono(&x), float));
            assert_eq!(probe_duration(&bytes).unwrap(), Duration::from_secs(2));
            let pcm = decode(&bytes, MINUTE).unwrap();
            assert_eq!(pcm.source_rate, rate);
            assert_eq!(pcm.samples.len(), 32_000, "{rate} Hz: exact length");
            let want = tone(SAMPLE_RATE, 2.0, &parts[..3]);
            // Away from the edges (where the tones start abruptly).
            let err = pcm.samples[800..31_200]
                .iter()
                .zip(&want[800..31_200])
                .map(|(a, b)| (a - b).abs())
                .fold(0f32, f32::max);
            assert!(
                err < 0.005,
                "{rate} Hz float={float}: max error {err} against the ideal 16 kHz signal"
            );
        }
        let wav = dir.wav(&format!("s{rate}.wav"), rate, &mono(&x), false);
        let source = decode(&read(&wav), MINUTE).unwrap();
        let note = decode(&dir.opus(&wav, &["--bitrate", "48"]), MINUTE).unwrap();
        assert_matches_source(
            &format!("tones at {rate} Hz through Opus"),
            &note,
            &source,
            0.99,
        );
    }
}

#[test]
fn packets_spanning_pages() {
    let dir = Dir::new();
    let wav = dir.speech("speech.wav", SPEECH);
    // 128 kbit/s, 20 ms: 320-byte packets, two lacing values each.
    let ogg = dir.opus(&wav, &["--bitrate", "128", "--hard-cbr"]);
    let reference = decode(&ogg, MINUTE).unwrap();
    for (max_segments, empty_last) in [(1, false), (3, false), (255, false), (3, true)] {
        let remuxed = repaginate(&ogg, max_segments, empty_last);
        let spans = pages(&remuxed);
        if max_segments == 1 {
            assert!(
                spans.iter().any(|p| granule(&remuxed, p) == u64::MAX),
                "some pages end no packet"
            );
        }
        let pcm = decode(&remuxed, MINUTE).unwrap();
        assert_eq!(
            pcm.samples,
            reference.samples,
            "{max_segments} segments per page ({} pages), empty last packet: {empty_last}",
            spans.len()
        );
        assert_eq!(
            probe_duration(&remuxed).unwrap(),
            probe_duration(&ogg).unwrap()
        );
    }
}

#[test]
fn empty_input_and_empty_notes() {
    let dir = Dir::new();
    assert_eq!(decode(b"", MINUTE), Err(AudioError::Empty));
    assert_eq!(probe_duration(b""), Err(AudioError::Empty));
    assert_eq!(sniff(b""), None);
    let wav = dir.wav("empty.wav", 16_000, &[], false);
    assert_eq!(decode(&read(&wav), MINUTE), Err(AudioError::Empty));
    let ogg = dir.opus(&wav, &[]);
    assert_eq!(probe_duration(&ogg), Ok(Duration::ZERO));
    assert_eq!(decode(&ogg, MINUTE), Err(AudioError::Empty));
}

#[test]
fn cut_off_notes_are_truncated() {
    let dir = Dir::new();
    let ogg = dir.opus(&dir.speech("speech.wav", SPEECH), &["--bitrate", "32"]);
    let spans = pages(&ogg);
    assert!(spans.len() >= 4, "several pages");
    let mut cuts = vec![
        2,
        10,
        27,
        30,
        spans[0].len - 3,
        spans[0].len,
        spans[1].start + spans[1].len,
    ];
    let last = spans.last().unwrap();
    cuts.extend([ogg.len() / 3, ogg.len() / 2, last.start + 20, ogg.len() - 1]);
    for cut in cuts {
        // Mid-page: a cut between two audio pages is a valid shorter note
        // (see `a_note_without_its_end_of_stream_flag_decodes`).
        let cut = if spans[2..].iter().any(|p| p.start == cut) {
            cut + 1
        } else {
            cut
        };
        let part = &ogg[..cut];
        assert_eq!(
            decode(part, MINUTE),
            Err(AudioError::Truncated),
            "cut at {cut} of {}",
            ogg.len()
        );
        assert_eq!(
            probe_duration(part),
            Err(AudioError::Truncated),
            "probe, cut at {cut}"
        );
    }
    // Cut WAVs too.
    let wav = read(&dir.speech("w.wav", "Short."));
    for cut in [3, 20, 44, wav.len() / 2, wav.len() - 1] {
        assert_eq!(
            decode(&wav[..cut], MINUTE),
            Err(AudioError::Truncated),
            "WAV cut at {cut}"
        );
    }
}

#[test]
fn a_note_without_its_end_of_stream_flag_decodes() {
    // Telegram's Android recorder puts each packet on its own page and sets
    // the end-of-stream flag only when the last frame is short.
    let (ogg, _) = small_note();
    let full = decode(ogg, MINUTE).unwrap();
    let spans = pages(ogg);
    let last = spans.last().unwrap();
    let mut b = ogg.clone();
    assert_eq!(b[last.start + 5] & 0x04, 0x04);
    b[last.start + 5] &= !0x04;
    fix_crc(&mut b, last);
    assert_eq!(decode(&b, MINUTE).unwrap().samples, full.samples);

    // Ending on a whole page: decoded up to that page's granule.
    let dir = Dir::new();
    let ogg = dir.opus(&dir.speech("speech.wav", SPEECH), &["--bitrate", "32"]);
    let spans = pages(&ogg);
    let pre_skip = u64::from(u16::from_le_bytes([
        ogg[spans[0].header_end + 10],
        ogg[spans[0].header_end + 11],
    ]));
    let end = &spans[spans.len() - 2];
    let part = &ogg[..end.start + end.len];
    let n48 = granule(&ogg, end) - pre_skip;
    assert_eq!(
        probe_duration(part).unwrap(),
        Duration::from_nanos(n48 * 1_000_000_000 / 48_000)
    );
    let pcm = decode(part, MINUTE).unwrap();
    assert_eq!(pcm.samples.len() as u64, (n48 * 16_000 + 24_000) / 48_000);
    let whole = decode(&ogg, MINUTE).unwrap();
    assert!(ncc(&whole.samples[..pcm.samples.len()], &pcm.samples, 0) > 0.999);
}

#[test]
fn damaged_notes_are_corrupt() {
    let (ogg, _) = small_note();
    let spans = pages(ogg);
    let audio = &spans[2]; // first audio page: OpusHead, OpusTags, then audio
                           // A flipped byte in an Opus packet: the page checksum catches it.
    let mut b = ogg.clone();
    b[audio.header_end + 5] ^= 0x40;
    assert!(
        matches!(decode(&b, MINUTE), Err(AudioError::Corrupt(_))),
        "{:?}",
        decode(&b, MINUTE)
    );
    // With the checksum recomputed the Opus decoder sees it. A TOC byte saying
    // "code 3, zero frames" is an invalid packet.
    let mut b = ogg.clone();
    b[audio.header_end] = 0x03;
    b[audio.header_end + 1] = 0x00;
    fix_crc(&mut b, audio);
    match decode(&b, MINUTE) {
        Err(AudioError::Corrupt(what)) => assert!(what.contains("Opus packet 1"), "{what}"),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    // Flips in the payload may decode to noise, but never panic.
    let length = decode(ogg, MINUTE).unwrap().samples.len();
    for i in 0..40 {
        let mut b = ogg.clone();
        let at = audio.header_end + 2 + i * 7 % (audio.start + audio.len - audio.header_end - 2);
        b[at] ^= 0xA5;
        fix_crc(&mut b, audio);
        match decode(&b, MINUTE) {
            // A flipped TOC byte may shorten a packet; the end trim keeps it
            // from growing.
            Ok(pcm) => assert!(pcm.samples.len() <= length),
            Err(AudioError::Corrupt(_)) => {}
            Err(e) => panic!("flip at {at}: {e:?}"),
        }
    }
    // A damaged OpusHead page.
    let mut b = ogg.clone();
    b[spans[0].header_end + 9] = 2; // channels
    assert!(matches!(decode(&b, MINUTE), Err(AudioError::Corrupt(_))));
}

#[test]
fn other_files_are_not_audio() {
    let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x10\x08\x06\0\0\0\x1f\xf3\xffa";
    let text = "Einkaufsliste: Milch, Brot\n".repeat(50);
    let mut random = Vec::new();
    let mut x = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..10_000 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.push(x as u8);
    }
    for (name, bytes) in [
        ("png", &png[..]),
        ("text", text.as_bytes()),
        ("random", &random),
    ] {
        assert_eq!(sniff(bytes), None, "{name}");
        assert_eq!(decode(bytes, MINUTE), Err(AudioError::NotAudio), "{name}");
        assert_eq!(probe_duration(bytes), Err(AudioError::NotAudio), "{name}");
    }
}

#[test]
fn vorbis_in_ogg_is_unsupported() {
    need("oggenc");
    let dir = Dir::new();
    let wav = dir.speech("speech.wav", "Vorbis is not Opus.");
    let out = dir.path("speech.ogg");
    run(Command::new("oggenc")
        .arg("--quiet")
        .arg("-o")
        .arg(&out)
        .arg(&wav));
    let vorbis = read(&out);
    assert_eq!(sniff(&vorbis), None);
    for result in [
        decode(&vorbis, MINUTE).map(|_| ()),
        probe_duration(&vorbis).map(|_| ()),
    ] {
        match result {
            Err(AudioError::Unsupported(what)) => assert!(what.contains("Vorbis"), "{what}"),
            other => panic!("expected Unsupported, got {other:?}"),
        }
    }
}

#[test]
fn long_audio_is_refused_before_decoding() {
    let dir = Dir::new();
    // 70 s of tones, ~1 MB as 8 kHz WAV.
    let x = tone(8_000, 70.0, &[(300.0, 0.3), (1_700.0, 0.1)]);
    let wav = dir.wav("long.wav", 8_000, &mono(&x), false);
    let ogg = dir.opus(&wav, &["--bitrate", "16"]);
    let too_long = Err(AudioError::TooLong {
        secs: 70,
        max_secs: 60,
    });
    for (name, bytes) in [("ogg", ogg.clone()), ("wav", read(&wav))] {
        let probed = probe_duration(&bytes).unwrap();
        assert!((secs(probed) - 70.0).abs() < 0.025, "{name}: {probed:?}");
        // The fastest of several refusals: one sample of a microsecond-long
        // call is at the mercy of a single preemption on a busy machine.
        let refused_in = (0..9)
            .map(|_| {
                let t = Instant::now();
                assert_eq!(
                    decode(&bytes, MINUTE).map(|p| p.samples.len()),
                    too_long,
                    "{name}"
                );
                t.elapsed()
            })
            .min()
            .unwrap();
        let t = Instant::now();
        let full = decode(&bytes, Duration::from_secs(70)).unwrap();
        let decoded_in = t.elapsed();
        assert_eq!(full.samples.len(), 70 * 16_000);
        eprintln!("{name}: refused in {refused_in:?}, decoded in {decoded_in:?}");
        assert!(
            refused_in * 20 < decoded_in,
            "{name}: refusing ({refused_in:?}) must not decode ({decoded_in:?})"
        );
    }

    // The last granule is the length: a note whose last page claims 20 s is
    // decoded to exactly 20 s — the packets beyond are never decoded — and
    // one that claims an hour is refused from its header.
    let spans = pages(&ogg);
    let last = spans.last().unwrap();
    for (claim, expect) in [
        (20u64, Ok(20 * 16_000)),
        (
            3_600,
            Err(AudioError::TooLong {
                secs: 3_600,
                max_secs: 60,
            }),
        ),
    ] {
        let mut b = ogg.clone();
        b[last.start + 6..last.start + 14].copy_from_slice(&(claim * 48_000 + 312).to_le_bytes());
        fix_crc(&mut b, last);
        assert_eq!(probe_duration(&b), Ok(Duration::from_secs(claim)));
        assert_eq!(
            decode(&b, MINUTE).map(|p| p.samples.len()),
            expect,
            "claim {claim} s"
        );
    }
}

/// How a valid file is damaged in the property test.
#[derive(Debug, Clone)]
enum Damage {
    Flip { at: usize, mask: u8 },
    Cut(usize),
    Splice { from: usize, len: usize, to: usize },
    Set { at: usize, byte: u8 },
}

fn damage() -> impl Strategy<Value = Damage> {
    prop_oneof![
        (any::<usize>(), 1..=255u8).prop_map(|(at, mask)| Damage::Flip { at, mask }),
        any::<usize>().prop_map(Damage::Cut),
        (any::<usize>(), 0..2_000usize, any::<usize>())
            .prop_map(|(from, len, to)| Damage::Splice { from, len, to }),
        (any::<usize>(), any::<u8>()).prop_map(|(at, byte)| Damage::Set { at, byte }),
    ]
}

fn apply(bytes: &mut Vec<u8>, d: &Damage) {
    if bytes.is_empty() {
        return;
    }
    let n = bytes.len();
    match *d {
        Damage::Flip { at, mask } => bytes[at % n] ^= mask,
        Damage::Cut(at) => bytes.truncate(at % n),
        Damage::Splice { from, len, to } => {
            let from = from % n;
            let piece = bytes[from..(from + len).min(bytes.len())].to_vec();
            let to = to % (bytes.len() + 1);
            bytes.splice(to..to, piece);
        }
        Damage::Set { at, byte } => bytes[at % n] = byte,
    }
}

/// Decoding any input ends, without panicking, in time linear in its size
/// (plus the bounded work of `max` seconds of audio), and never returns
/// more than `max`.
fn check_bounded(bytes: &[u8]) -> Result<(), TestCaseError> {
    let max = Duration::from_secs(5);
    let t = Instant::now();
    let _ = sniff(bytes);
    let _ = probe_duration(bytes);
    let result = decode(bytes, max);
    let elapsed = t.elapsed();
    if let Ok(pcm) = &result {
        prop_assert!(pcm.duration() <= max);
        prop_assert!(pcm
            .samples
            .iter()
            .all(|s| s.is_finite() && (-1.0..=1.0).contains(s)));
    }
    let bound = Duration::from_secs(2) + Duration::from_micros(20) * bytes.len() as u32;
    prop_assert!(elapsed < bound, "{} bytes took {elapsed:?}", bytes.len());
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn damaged_files_never_panic(which in 0..2usize, damages in prop::collection::vec(damage(), 1..6), fix in any::<bool>()) {
        let (ogg, wav) = small_note();
        let mut b = if which == 0 { ogg.clone() } else { wav.clone() };
        for d in &damages {
            apply(&mut b, d);
        }
        // Half the time make the checksums right again, so that the damage
        // reaches the Opus decoder instead of stopping at the page CRC.
        if fix && which == 0 && b.starts_with(b"OggS") {
            let mut at = 0;
            while at + 27 <= b.len() && &b[at..at + 4] == b"OggS" {
                let n = b[at + 26] as usize;
                let Some(lacing) = b.get(at + 27..at + 27 + n) else { break };
                let len = 27 + n + lacing.iter().map(|&l| l as usize).sum::<usize>();
                if at + len > b.len() {
                    break;
                }
                fix_crc(&mut b, &PageSpan { start: at, len, header_end: 0 });
                at += len;
            }
        }
        check_bounded(&b)?;
    }

    #[test]
    fn arbitrary_bytes_never_panic(
        prefix in prop::sample::select(vec![&b""[..], b"OggS\0\x02", b"RIFF\xff\xff\xff\xffWAVEfmt ", b"ID3"]),
        body in prop::collection::vec(any::<u8>(), 0..65_536),
    ) {
        let mut b = prefix.to_vec();
        b.extend_from_slice(&body);
        check_bounded(&b)?;
    }
}
