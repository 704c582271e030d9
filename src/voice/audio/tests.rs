//! Unit tests of the decoder: CRC, resampler length and alignment, WAV
//! formats, sniffing, limits, and random bytes that must never panic.

use std::io::Cursor;

use super::ogg_opus::ogg_crc;
use super::resample::{exact_len, To16k};
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
