//! Speech to text: real-time factor, model load time and memory.
//!
//! `cargo bench --bench transcribe` — transcribes jfk.wav (11 s of real
//! speech, fetched by scripts/test-assets.sh) with the converted tiny.en
//! model through the real [`Transcriber`]: model load time (median of 5
//! load/unload cycles), then for 1 and 2 threads one warm-up and `BENCH_RUNS`
//! (default 5) timed runs, reporting the median inference time and the
//! real-time factor (audio seconds per second of inference). Memory comes
//! from /proc/self/status: VmRSS before loading, VmHWM (peak) after the runs
//! and VmRSS after unloading. `BENCH_FLASH=0` turns whisper.cpp's flash
//! attention off, `BENCH_TRIM=0` the trimmed audio context. Under
//! `cargo test` it runs one transcription as a smoke pass.

use std::time::Duration;

#[path = "../tests/support/speech.rs"]
mod speech;

use mnemo::config::Config;
use mnemo::voice::whisper::{Settings, Transcriber};
use speech::jfk_samples as jfk;

/// A /proc/self/status field in MB.
fn status_mb(key: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

/// Median of 5 load/unload cycles of a transcriber with `settings`.
fn median_load(rt: &tokio::runtime::Runtime, settings: Settings) -> Duration {
    let t = Transcriber::new(settings);
    let loads = (0..5)
        .map(|_| {
            let d = rt.block_on(t.load()).unwrap();
            rt.block_on(t.unload()).unwrap();
            d
        })
        .collect();
    median(loads)
}

fn main() {
    let bench = std::env::args().any(|a| a == "--bench");
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let pcm = jfk();
    let audio = pcm.len() as f64 / 16_000.0;
    let mut base = Settings::from_config(&Config::defaults()).expect("a home directory");
    // BENCH_FLASH=0 measures without whisper.cpp's flash attention.
    base.flash_attn = std::env::var("BENCH_FLASH")
        .map(|v| v != "0")
        .unwrap_or(true);
    // BENCH_TRIM=0 encodes short audio with the full 30 s window.
    base.trim_audio_ctx = std::env::var("BENCH_TRIM")
        .map(|v| v != "0")
        .unwrap_or(true);

    if !bench {
        let t = Transcriber::new(base);
        let tr = rt
            .block_on(t.transcribe(pcm))
            .expect("models fetched by make test");
        assert!(tr.text.to_lowercase().contains("country"), "{tr:?}");
        println!(
            "transcribe smoke pass: {:.2} s for {audio:.1} s of audio",
            tr.took.as_secs_f64()
        );
        return;
    }

    println!(
        "flash attention: {}, trimmed audio context: {}",
        base.flash_attn, base.trim_audio_ctx
    );
    println!("whisper.cpp: {}", whisper_rs::print_system_info());
    let runs: usize = std::env::var("BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let rss_start = status_mb("VmRSS:");
    println!(
        "model load (sha256 check + whisper init): median {:.0} ms",
        median_load(&rt, base.clone()).as_secs_f64() * 1e3
    );
    // The load time without the checksum (a custom [voice] model path).
    let mut unpinned = base.clone();
    unpinned.expected_sha256 = None;
    println!(
        "model load (whisper init only):        median {:.0} ms",
        median_load(&rt, unpinned).as_secs_f64() * 1e3
    );

    for threads in [1, 2] {
        let mut s = base.clone();
        s.threads = threads;
        let t = Transcriber::new(s);
        let warm = rt.block_on(t.transcribe(pcm.clone())).unwrap();
        let took: Vec<Duration> = (0..runs)
            .map(|_| rt.block_on(t.transcribe(pcm.clone())).unwrap().took)
            .collect();
        let m = median(took);
        println!(
            "{threads} thread(s): median {:.2} s for {audio:.1} s of audio = {:.1}x realtime ({runs} runs; text: {:?})",
            m.as_secs_f64(),
            audio / m.as_secs_f64(),
            warm.text
        );
        let peak = status_mb("VmHWM:");
        let loaded = status_mb("VmRSS:");
        rt.block_on(t.unload()).unwrap();
        let after = status_mb("VmRSS:");
        println!(
            "  memory: RSS before load {rss_start:.0} MB, loaded {loaded:.0} MB, peak {peak:.0} MB, after unload {after:.0} MB"
        );
    }

    // A long note: jfk.wav five times (55 s), beyond one 30 s window, so the
    // audio context is not trimmed for the first window.
    let long: Vec<f32> = (0..5).flat_map(|_| pcm.iter().copied()).collect();
    let secs = long.len() as f64 / 16_000.0;
    let t = Transcriber::new(base);
    rt.block_on(t.load()).unwrap();
    let took: Vec<Duration> = (0..3)
        .map(|_| rt.block_on(t.transcribe(long.clone())).unwrap().took)
        .collect();
    let m = median(took);
    println!(
        "long note, 1 thread: median {:.2} s for {secs:.0} s of audio = {:.1}x realtime (3 runs); peak RSS so far {:.0} MB",
        m.as_secs_f64(),
        secs / m.as_secs_f64(),
        status_mb("VmHWM:")
    );
}
