//! The speech engine end to end: the converted tiny.en model (made by
//! `mnemo models fetch`), real whisper.cpp, real speech (jfk.wav, fetched by
//! scripts/test-assets.sh). `make test` provides both.

use std::time::{Duration, Instant};

mod support;

use mnemo::config::Config;
use mnemo::voice::whisper::{Settings, TranscribeError, Transcriber};
use support::speech::jfk_samples as jfk;

fn settings() -> Settings {
    Settings::from_config(&Config::defaults()).expect("a home directory")
}

#[tokio::test]
async fn converted_model_transcribes_real_speech() {
    let t = Transcriber::new(settings());
    let pcm = jfk();
    let tr = t.transcribe(pcm).await.unwrap();
    let text = tr.text.to_lowercase();
    assert!(
        text.contains("ask not") && text.contains("country"),
        "{tr:#?}"
    );
    assert!(
        tr.avg_confidence > 0.0 && tr.avg_confidence <= 1.0,
        "{}",
        tr.avg_confidence
    );
    assert!(
        tr.avg_confidence > 0.6,
        "clear speech should be confident: {}",
        tr.avg_confidence
    );
    assert_eq!(tr.language, "en");
    assert!((tr.audio_secs - 11.0).abs() < 0.1, "{}", tr.audio_secs);
    assert!(!tr.segments.is_empty());
    for s in &tr.segments {
        assert!(s.start_ms <= s.end_ms && s.end_ms <= 11_100, "{s:?}");
        assert!(!s.text.is_empty());
    }
    assert!(
        tr.low_confidence.iter().all(|w| w.p < 0.4),
        "{:?}",
        tr.low_confidence
    );
    assert!(t.loaded());
}

/// Deterministic white noise in [-amp, amp].
fn noise(n: usize, amp: f32) -> Vec<f32> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x as f32 / u32::MAX as f32 * 2.0 - 1.0) * amp
        })
        .collect()
}

#[tokio::test]
async fn silence_and_noise_give_no_text_markers() {
    let t = Transcriber::new(settings());
    for (what, pcm) in [
        ("silence", vec![0.0; 3 * 16_000]),
        ("noise", noise(3 * 16_000, 0.1)),
    ] {
        let tr = t.transcribe(pcm).await.unwrap();
        assert!(
            !tr.text.contains('[') && !tr.text.contains('('),
            "{what}: {tr:?}"
        );
        assert!(!tr.text.to_uppercase().contains("BLANK"), "{what}: {tr:?}");
        // tiny.en says "you" to 3 s of silence unless the no-speech rule drops it.
        assert!(tr.text.is_empty(), "{what} should give no text: {tr:?}");
        assert!(
            tr.segments.is_empty() && tr.avg_confidence == 0.0,
            "{what}: {tr:?}"
        );
    }
}

#[tokio::test]
async fn the_model_is_unloaded_when_idle_and_reloaded_on_demand() {
    let mut s = settings();
    s.idle_unload = Duration::from_millis(300);
    let t = Transcriber::new(s);
    assert!(!t.loaded(), "lazy: nothing loaded before the first job");
    let took = t.load().await.unwrap();
    assert!(took > Duration::ZERO);
    let deadline = Instant::now() + Duration::from_secs(30);
    while t.loaded() {
        assert!(
            Instant::now() < deadline,
            "still loaded long after the idle time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // The next job loads it again.
    let tr = t.transcribe(jfk()).await.unwrap();
    assert!(tr.text.to_lowercase().contains("country"), "{tr:?}");
    t.unload().await.unwrap();
    assert!(!t.loaded());
}

#[tokio::test]
async fn a_full_queue_answers_busy_at_once() {
    let mut s = settings();
    s.queue = 1;
    let t = Transcriber::new(s);
    let pcm = jfk();
    // One job runs (~1 s), one waits; the third finds the queue full.
    let (a, b, c) = futures::join!(
        t.transcribe(pcm.clone()),
        t.transcribe(pcm.clone()),
        t.transcribe(pcm)
    );
    let results = [a, b, c];
    let busy = results
        .iter()
        .filter(|r| matches!(r, Err(TranscribeError::Busy { queued: 1 })))
        .count();
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert!(busy >= 1 && ok >= 1 && busy + ok == 3, "{results:?}");
    let msg = results
        .iter()
        .find_map(|r| r.as_ref().err())
        .unwrap()
        .to_string();
    assert!(msg.contains("busy"), "{msg}");
}

#[tokio::test]
async fn a_missing_model_names_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = Config::defaults();
    cfg.models.dir = dir.path().display().to_string();
    let t = Transcriber::new(Settings::from_config(&cfg).unwrap());
    let e = t.transcribe(jfk()).await.unwrap_err();
    assert!(matches!(e, TranscribeError::ModelMissing { .. }), "{e}");
    let msg = e.to_string();
    assert!(msg.contains("mnemo models fetch"), "{msg}");
    assert!(
        msg.contains(&dir.path().join("ggml-tiny.en.bin").display().to_string()),
        "{msg}"
    );
}

/// The file `mnemo models fetch` made has the layout whisper.cpp expects:
/// tiny.en's hyperparameters, 50256 text tokens and 167 tensors.
#[test]
fn the_converted_file_has_tiny_en_layout() {
    fn rd(b: &[u8], pos: &mut usize) -> i32 {
        let v = i32::from_le_bytes(b[*pos..*pos + 4].try_into().unwrap());
        *pos += 4;
        v
    }
    let b = std::fs::read(settings().model).expect("made by `mnemo models fetch`");
    let p = &mut 0usize;
    assert_eq!(rd(&b, p) as u32, mnemo::voice::ggml::GGML_MAGIC);
    let hp: Vec<i32> = (0..11).map(|_| rd(&b, p)).collect();
    assert_eq!(hp, [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1]);
    assert_eq!((rd(&b, p), rd(&b, p)), (80, 201));
    *p += 80 * 201 * 4;
    let tokens = rd(&b, p);
    assert_eq!(tokens, 50256);
    for _ in 0..tokens {
        let n = rd(&b, p) as usize;
        *p += n;
    }
    let mut names = Vec::new();
    while *p < b.len() {
        let (dims, name_len, ty) = (rd(&b, p), rd(&b, p) as usize, rd(&b, p));
        let ne: Vec<usize> = (0..dims).map(|_| rd(&b, p) as usize).collect();
        names.push(String::from_utf8(b[*p..*p + name_len].to_vec()).unwrap());
        *p += name_len + ne.iter().product::<usize>() * if ty == 0 { 4 } else { 2 };
    }
    assert_eq!(*p, b.len());
    assert_eq!(names.len(), 167, "{names:?}");
    assert!(names
        .iter()
        .any(|n| n == "decoder.blocks.3.cross_attn.value.bias"));
}
