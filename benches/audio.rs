//! Voice-note decoding speed: a 60 s Telegram-like voice note (espeak-ng
//! speech, Ogg/Opus mono at 32 kbit/s, made here with opusenc) → 16 kHz mono.
//!
//! - `probe_duration/ogg_60s`: the header walk that refuses long notes.
//! - `decode/ogg_opus_60s`: the whole path (pages, libopus at 48 kHz, 48k →
//!   16k resampling) — the figure that matters.
//! - `decode/wav_48k_60s`: a 48 kHz WAV: parsing plus the resampler, i.e.
//!   the resampler's share of the Opus path.
//! - `decode/wav_16k_60s`: a 16 kHz WAV: parsing only, no resampling.
//!
//! Run: `cargo bench --bench audio` (needs espeak-ng and opusenc:
//! scripts/setup.sh). With `--bench` it also prints × realtime (best of 5).
//! Figures go to docs/BENCHMARKS.md.

use std::hint::black_box;
use std::process::Command;
use std::time::{Duration, Instant};

#[path = "../tests/support/speech.rs"]
mod speech;

use criterion::{criterion_group, criterion_main, Criterion};
use mnemo::voice::audio::{decode, probe_duration};

const SECS: u32 = 60;
const TEXT: &str = "Remember to buy oat milk, bread and coffee on the way home. \
    Call Anna on Friday about the garden party and ask whether the bank moved the meeting \
    to half past three. The plumber comes on Tuesday morning; leave the key with the neighbour. \
    Idea for the talk: start with the story about the lost suitcase in Lisbon.";

fn write_wav(path: &std::path::Path, rate: u32, samples: &[f32]) {
    let spec = hound::WavSpec {
        channels: 1,
        sample_rate: rate,
        bits_per_sample: 16,
        sample_format: hound::SampleFormat::Int,
    };
    let mut w = hound::WavWriter::create(path, spec).unwrap();
    for &s in samples {
        w.write_sample((s.clamp(-1.0, 1.0) * 32_767.0) as i16)
            .unwrap();
    }
    w.finalize().unwrap();
}

/// 60 s of speech (espeak-ng, looped to length) as a voice note, and 60 s of
/// tones as 48 kHz and 16 kHz WAVs.
fn inputs() -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let dir = tempfile::tempdir().unwrap();
    let spoken = dir.path().join("spoken.wav");
    speech::run(Command::new("espeak-ng").arg("-w").arg(&spoken).arg(TEXT));
    let mut r = hound::WavReader::open(&spoken).unwrap();
    let rate = r.spec().sample_rate;
    let speech: Vec<f32> = r
        .samples::<i16>()
        .map(|s| f32::from(s.unwrap()) / 32_768.0)
        .collect();
    let looped: Vec<f32> = speech
        .iter()
        .copied()
        .cycle()
        .take((rate * SECS) as usize)
        .collect();
    let wav = dir.path().join("note.wav");
    write_wav(&wav, rate, &looped);
    let ogg = dir.path().join("note.ogg");
    speech::run(
        Command::new("opusenc")
            .args(["--quiet", "--bitrate", "32"])
            .arg(&wav)
            .arg(&ogg),
    );

    let tones = |rate: u32| -> Vec<u8> {
        let x: Vec<f32> = (0..rate * SECS)
            .map(|i| {
                let t = i as f32 / rate as f32;
                0.3 * (std::f32::consts::TAU * 311.0 * t).sin()
                    + 0.1 * (std::f32::consts::TAU * 2_900.0 * t).sin()
            })
            .collect();
        let path = dir.path().join(format!("tones{rate}.wav"));
        write_wav(&path, rate, &x);
        std::fs::read(path).unwrap()
    };
    (std::fs::read(ogg).unwrap(), tones(48_000), tones(16_000))
}

fn audio(c: &mut Criterion) {
    let (ogg, wav48, wav16) = inputs();
    let max = Duration::from_secs(120);
    assert_eq!(probe_duration(&ogg).unwrap().as_secs(), u64::from(SECS));
    assert_eq!(
        decode(&ogg, max).unwrap().samples.len(),
        (16_000 * SECS) as usize
    );

    if std::env::args().any(|a| a == "--bench") {
        for (name, bytes) in [
            ("ogg_opus_60s", &ogg),
            ("wav_48k_60s", &wav48),
            ("wav_16k_60s", &wav16),
        ] {
            let best = (0..5)
                .map(|_| {
                    let t = Instant::now();
                    black_box(decode(bytes, max).unwrap());
                    t.elapsed()
                })
                .min()
                .unwrap_or_default();
            println!(
                "{name}: {} bytes, best of 5 {:.1} ms = {:.0}× realtime",
                bytes.len(),
                best.as_secs_f64() * 1e3,
                f64::from(SECS) / best.as_secs_f64()
            );
        }
    }

    c.bench_function("probe_duration/ogg_60s", |b| {
        b.iter(|| probe_duration(black_box(&ogg)))
    });
    let mut g = c.benchmark_group("decode");
    g.sample_size(20);
    g.bench_function("ogg_opus_60s", |b| b.iter(|| decode(black_box(&ogg), max)));
    g.bench_function("wav_48k_60s", |b| b.iter(|| decode(black_box(&wav48), max)));
    g.bench_function("wav_16k_60s", |b| b.iter(|| decode(black_box(&wav16), max)));
    g.finish();
}

criterion_group!(benches, audio);
criterion_main!(benches);
