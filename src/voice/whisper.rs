//! The transcription engine: whisper.cpp behind a bounded queue.
//!
//! [`Transcriber`] owns one whisper.cpp context and one worker thread. The
//! shape follows from three facts about the model on a small machine:
//!
//! - **It is heavy and rarely needed.** Loading takes ~0.1 s but the context
//!   holds ~150–200 MB, so it is loaded on the first job and dropped again
//!   after `idle_unload` without work ([`Transcriber::loaded`] tells which).
//!   After dropping it the worker calls `malloc_trim`, because glibc keeps
//!   freed pages otherwise and the resident size would not go down.
//! - **It is CPU-bound and one job saturates the cores it is given.** Two
//!   jobs at once would each run at half speed, so jobs run one at a time on
//!   a dedicated blocking thread (not a tokio worker: a 10-second inference
//!   there would stall every other task on that worker).
//! - **Work can pile up.** The queue in front of the thread is bounded; when
//!   it is full [`Transcriber::transcribe`] answers [`TranscribeError::Busy`]
//!   at once instead of letting voice notes wait for minutes.
//!
//! Input is mono 16 kHz f32 PCM in [-1, 1] (what `voice::audio` decodes a
//! voice note to). Output is a [`Transcript`]: the text without non-speech
//! markers such as `[BLANK_AUDIO]` or `(music)`, timed segments, and token
//! probabilities summarised as a mean and a list of doubtful words.
//!
//! whisper.cpp's own log lines go to `tracing` (target `whisper_rs`).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use whisper_rs::{FullParams, SamplingStrategy, WhisperContext, WhisperContextParameters};

use crate::config::Config;
use crate::models::{sha256_file, ModelSet, SPEECH_MODEL};

/// Whisper's input rate; the engine does not resample.
pub const SAMPLE_RATE: u32 = 16_000;

/// How the engine runs; usually [`Settings::from_config`].
#[derive(Debug, Clone)]
pub struct Settings {
    /// The ggml model file.
    pub model: PathBuf,
    /// When set, the model's sha256 must match (the pinned default model).
    pub expected_sha256: Option<String>,
    /// A Whisper language code, or `auto` (multilingual models only).
    pub language: String,
    pub threads: usize,
    pub idle_unload: Duration,
    /// Jobs that may wait behind the running one.
    pub queue: usize,
    pub max_duration: Duration,
    /// Words with a token probability below this are reported as doubtful.
    pub low_confidence: f32,
    /// whisper.cpp's flash attention: less memory for the attention
    /// buffers. On by default (see docs/BENCHMARKS.md); not a config key.
    pub flash_attn: bool,
    /// Encode notes shorter than 30 s with an audio context cut to their
    /// length (+1.3 s) instead of Whisper's fixed 30 s window: 3-8x faster
    /// for short notes, same text on the test clips (whisper.cpp marks the
    /// option experimental). On by default; not a config key.
    pub trim_audio_ctx: bool,
}

impl Settings {
    /// The `[voice]` section. An empty `model` means the pinned tiny.en in
    /// the models dir, whose checksum is then verified at each load.
    pub fn from_config(cfg: &Config) -> anyhow::Result<Settings> {
        let v = &cfg.voice;
        let (model, expected_sha256) = if v.model.trim().is_empty() {
            (
                ModelSet::new(cfg.models_dir()?).speech_model(),
                Some(SPEECH_MODEL.sha256.to_owned()),
            )
        } else {
            (PathBuf::from(v.model.trim()), None)
        };
        Ok(Settings {
            model,
            expected_sha256,
            language: v.language.clone(),
            threads: v.threads,
            idle_unload: Duration::from_secs(v.idle_unload_secs),
            queue: v.queue,
            max_duration: Duration::from_secs(v.max_duration_secs),
            low_confidence: v.low_confidence,
            flash_attn: true,
            trim_audio_ctx: true,
        })
    }
}

/// A transcribed voice note.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transcript {
    /// The speech, segments joined by spaces; empty when nothing was said.
    pub text: String,
    pub segments: Vec<Segment>,
    /// Mean probability of the text tokens, in (0, 1]; 0 when there are none.
    pub avg_confidence: f32,
    /// Words containing a token below [`Settings::low_confidence`], in order.
    pub low_confidence: Vec<Word>,
    /// The language spoken (the configured one, or the detected one for `auto`).
    pub language: String,
    pub audio_secs: f32,
    /// Inference time (model loading excluded).
    pub took: Duration,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Segment {
    pub start_ms: u64,
    pub end_ms: u64,
    pub text: String,
    /// Whisper's probability that the segment's window holds no speech.
    pub no_speech: f32,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Word {
    pub text: String,
    /// The lowest token probability within the word.
    pub p: f32,
}

#[derive(Debug, thiserror::Error)]
pub enum TranscribeError {
    #[error("speech model {} is missing; run `mnemo models fetch` (or set [voice] model to a ggml Whisper model)", path.display())]
    ModelMissing { path: PathBuf },
    #[error("speech model {} cannot be used: {reason}", path.display())]
    ModelInvalid { path: PathBuf, reason: String },
    #[error("the transcriber is busy ({queued} voice notes waiting); try again in a minute")]
    Busy { queued: usize },
    #[error("the audio is empty")]
    EmptyAudio,
    #[error("the audio has invalid samples (NaN or infinite)")]
    InvalidAudio,
    #[error("the audio is {secs:.0} s long; the limit is {max_secs} s")]
    TooLong { secs: f32, max_secs: u64 },
    #[error("transcription failed: {0}")]
    Failed(String),
}

enum Job {
    Transcribe {
        pcm: Vec<f32>,
        reply: tokio::sync::oneshot::Sender<Result<Transcript, TranscribeError>>,
    },
    Load {
        reply: tokio::sync::oneshot::Sender<Result<Duration, TranscribeError>>,
    },
    Unload {
        reply: tokio::sync::oneshot::Sender<()>,
    },
}

/// The engine handle. Cheap to share behind an `Arc`; dropping the last
/// handle stops the worker thread and frees the model.
#[derive(Debug)]
pub struct Transcriber {
    tx: SyncSender<Job>,
    loaded: Arc<AtomicBool>,
    settings: Settings,
}

impl Transcriber {
    /// Starts the worker thread. The model is not loaded until needed.
    pub fn new(settings: Settings) -> Transcriber {
        whisper_rs::install_logging_hooks();
        let (tx, rx) = std::sync::mpsc::sync_channel(settings.queue.max(1));
        let loaded = Arc::new(AtomicBool::new(false));
        let worker = Worker {
            settings: settings.clone(),
            loaded: loaded.clone(),
            ctx: None,
        };
        std::thread::Builder::new()
            .name("mnemo-whisper".into())
            .spawn(move || worker.run(rx))
            .expect("the OS refused to start the transcription thread");
        Transcriber {
            tx,
            loaded,
            settings,
        }
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    /// Whether the model is in memory right now.
    pub fn loaded(&self) -> bool {
        self.loaded.load(Ordering::SeqCst)
    }

    /// Transcribes mono 16 kHz PCM. Fails at once with [`TranscribeError::Busy`]
    /// when the queue is full; otherwise waits for its turn.
    pub async fn transcribe(&self, pcm: Vec<f32>) -> Result<Transcript, TranscribeError> {
        if pcm.is_empty() {
            return Err(TranscribeError::EmptyAudio);
        }
        let secs = pcm.len() as f32 / SAMPLE_RATE as f32;
        if secs > self.settings.max_duration.as_secs_f32() {
            return Err(TranscribeError::TooLong {
                secs,
                max_secs: self.settings.max_duration.as_secs(),
            });
        }
        if pcm.iter().any(|s| !s.is_finite()) {
            return Err(TranscribeError::InvalidAudio);
        }
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Transcribe { pcm, reply })?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Loads the model now (e.g. to warm up); returns the load time (zero
    /// when it was already loaded).
    pub async fn load(&self) -> Result<Duration, TranscribeError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Load { reply })?;
        rx.await.unwrap_or_else(|_| Err(stopped()))
    }

    /// Frees the model now, after the jobs queued before this call.
    pub async fn unload(&self) -> Result<(), TranscribeError> {
        let (reply, rx) = tokio::sync::oneshot::channel();
        self.submit(Job::Unload { reply })?;
        rx.await.map_err(|_| stopped())
    }

    fn submit(&self, job: Job) -> Result<(), TranscribeError> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => TranscribeError::Busy {
                queued: self.settings.queue,
            },
            TrySendError::Disconnected(_) => stopped(),
        })
    }
}

fn stopped() -> TranscribeError {
    TranscribeError::Failed("the transcription thread has stopped".into())
}

struct Worker {
    settings: Settings,
    loaded: Arc<AtomicBool>,
    ctx: Option<WhisperContext>,
}

impl Worker {
    fn run(mut self, rx: Receiver<Job>) {
        loop {
            let job = if self.ctx.is_some() {
                match rx.recv_timeout(self.settings.idle_unload) {
                    Ok(job) => job,
                    Err(RecvTimeoutError::Timeout) => {
                        tracing::debug!(
                            "speech model idle for {:?}: unloading",
                            self.settings.idle_unload
                        );
                        self.unload();
                        continue;
                    }
                    Err(RecvTimeoutError::Disconnected) => break,
                }
            } else {
                match rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                }
            };
            match job {
                Job::Transcribe { pcm, reply } => {
                    let res = self.ensure_loaded().and_then(|_| self.transcribe(&pcm));
                    let _ = reply.send(res);
                }
                Job::Load { reply } => {
                    let _ = reply.send(self.ensure_loaded());
                }
                Job::Unload { reply } => {
                    self.unload();
                    let _ = reply.send(());
                }
            }
        }
        self.unload();
    }

    fn unload(&mut self) {
        if self.ctx.take().is_some() {
            trim_heap();
        }
        self.loaded.store(false, Ordering::SeqCst);
    }

    fn ensure_loaded(&mut self) -> Result<Duration, TranscribeError> {
        if self.ctx.is_some() {
            return Ok(Duration::ZERO);
        }
        let t = Instant::now();
        let path = &self.settings.model;
        if !path.is_file() {
            return Err(TranscribeError::ModelMissing { path: path.clone() });
        }
        if let Some(want) = &self.settings.expected_sha256 {
            let invalid = |reason: String| TranscribeError::ModelInvalid {
                path: path.clone(),
                reason,
            };
            let got = sha256_file(path).map_err(|e| invalid(format!("{e:#}")))?;
            if &got != want {
                return Err(invalid(format!(
                    "sha256 {got}, expected {want}; run `mnemo models fetch` to replace it"
                )));
            }
        }
        let mut params = WhisperContextParameters::default();
        params.use_gpu(false).flash_attn(self.settings.flash_attn);
        let ctx = WhisperContext::new_with_params(path, params).map_err(|e| {
            TranscribeError::ModelInvalid {
                path: path.clone(),
                reason: format!("whisper.cpp could not load it ({e}); is it a ggml Whisper model?"),
            }
        })?;
        if !ctx.is_multilingual() && !matches!(self.settings.language.as_str(), "en" | "auto") {
            tracing::warn!(
                "speech model {} is English-only; [voice] language {:?} is ignored",
                path.display(),
                self.settings.language
            );
        }
        self.ctx = Some(ctx);
        self.loaded.store(true, Ordering::SeqCst);
        let took = t.elapsed();
        tracing::info!(model = %path.display(), ms = took.as_millis() as u64, "speech model loaded");
        Ok(took)
    }

    fn transcribe(&mut self, pcm: &[f32]) -> Result<Transcript, TranscribeError> {
        let ctx = self
            .ctx
            .as_ref()
            .ok_or_else(|| TranscribeError::Failed("model not loaded".into()))?;
        let failed = |e: whisper_rs::WhisperError| TranscribeError::Failed(e.to_string());
        let t = Instant::now();
        let multilingual = ctx.is_multilingual();
        let mut state = ctx.create_state().map_err(failed)?;
        let mut params = FullParams::new(SamplingStrategy::Greedy { best_of: 1 });
        params.set_n_threads(i32::try_from(self.settings.threads.max(1)).unwrap_or(1));
        params.set_language(Some(if multilingual {
            self.settings.language.as_str()
        } else {
            "en"
        }));
        params.set_translate(false);
        // Each voice note stands alone: no text carried over from the last one.
        params.set_no_context(true);
        params.set_suppress_blank(true);
        // Suppresses the tokens of non-speech annotations ("[", "(", "♪", …).
        params.set_suppress_nst(true);
        params.set_print_special(false);
        params.set_print_progress(false);
        params.set_print_realtime(false);
        params.set_print_timestamps(false);
        if self.settings.trim_audio_ctx {
            // 50 encoder frames per second, plus a margin, in steps of 64.
            let frames = pcm.len() / 320 + 64;
            let ctx_frames = (frames.div_ceil(64) * 64).min(1500);
            params.set_audio_ctx(ctx_frames as i32);
        }
        state.full(params, pcm).map_err(failed)?;

        let eot = ctx.token_eot();
        let mut words: Vec<(String, f32)> = Vec::new();
        let mut segments = Vec::new();
        let (mut p_sum, mut p_n) = (0f64, 0usize);
        for seg in state.as_iter() {
            // Tokens → words: a token that starts with a space starts a word.
            let mut seg_words: Vec<(Vec<u8>, f32, Vec<f32>)> = Vec::new();
            for i in 0..seg.n_tokens() {
                let Some(tok) = seg.get_token(i) else {
                    continue;
                };
                if tok.token_id() >= eot {
                    continue; // timestamps and other special tokens
                }
                let bytes = tok.to_bytes().map_err(failed)?;
                let p = tok.token_probability();
                match seg_words.last_mut() {
                    Some(w) if !bytes.starts_with(b" ") => {
                        w.0.extend_from_slice(bytes);
                        w.1 = w.1.min(p);
                        w.2.push(p);
                    }
                    _ => seg_words.push((bytes.to_vec(), p, vec![p])),
                }
            }
            if is_silence(
                seg.no_speech_probability(),
                seg_words.iter().flat_map(|w| w.2.iter().copied()),
            ) {
                continue;
            }
            let kept = drop_non_speech(
                seg_words
                    .into_iter()
                    .map(|(b, p, ps)| (String::from_utf8_lossy(&b).trim().to_owned(), p, ps)),
            );
            if kept.is_empty() {
                continue;
            }
            for (_, _, ps) in &kept {
                p_sum += ps.iter().map(|&p| f64::from(p)).sum::<f64>();
                p_n += ps.len();
            }
            let text = kept
                .iter()
                .map(|w| w.0.as_str())
                .collect::<Vec<_>>()
                .join(" ");
            let cs_to_ms = |cs: i64| u64::try_from(cs).unwrap_or(0) * 10;
            segments.push(Segment {
                start_ms: cs_to_ms(seg.start_timestamp()),
                end_ms: cs_to_ms(seg.end_timestamp()),
                text,
                no_speech: seg.no_speech_probability(),
            });
            words.extend(kept.into_iter().map(|(w, p, _)| (w, p)));
        }
        let language = if multilingual {
            whisper_rs::get_lang_str(state.full_lang_id_from_state())
                .unwrap_or(&self.settings.language)
                .to_owned()
        } else {
            "en".to_owned()
        };
        Ok(Transcript {
            text: segments
                .iter()
                .map(|s| s.text.as_str())
                .collect::<Vec<_>>()
                .join(" "),
            segments,
            avg_confidence: if p_n == 0 {
                0.0
            } else {
                (p_sum / p_n as f64) as f32
            },
            low_confidence: words
                .into_iter()
                .filter(|(_, p)| *p < self.settings.low_confidence)
                .map(|(text, p)| Word { text, p })
                .collect(),
            language,
            audio_secs: pcm.len() as f32 / SAMPLE_RATE as f32,
            took: t.elapsed(),
        })
    }
}

/// Drops annotations that are not speech: `[BLANK_AUDIO]`, `(music)`,
/// `[ Laughter ]`, `♪ … ♪`, `*sigh*`. A bracket opened by one word may be
/// closed by a later one; an unclosed bracket drops the rest of the segment.
/// Words made only of punctuation after that are dropped too.
pub fn drop_non_speech<I, T>(words: I) -> Vec<(String, f32, T)>
where
    I: IntoIterator<Item = (String, f32, T)>,
{
    let mut out = Vec::new();
    let mut closer: Option<char> = None;
    for (w, p, extra) in words {
        let mut kept = String::new();
        for c in w.chars() {
            match closer {
                Some(close) => {
                    if c == close {
                        closer = None;
                    }
                }
                None => match c {
                    '[' => closer = Some(']'),
                    '(' => closer = Some(')'),
                    '♪' | '♫' => closer = Some(c),
                    '*' => closer = Some('*'),
                    _ => kept.push(c),
                },
            }
        }
        let kept = kept.trim();
        if kept.chars().any(char::is_alphanumeric) {
            out.push((kept.to_owned(), p, extra));
        }
    }
    out
}

/// Whisper's own rule for a window without speech (as in OpenAI's
/// `transcribe`): the no-speech probability is above 0.6 *and* the decoded
/// text is unlikely (mean token log-probability below -1). Either alone is
/// not enough: quiet speech can score a high no-speech probability, and
/// hard-to-hear words a low log-probability. On silence, tiny.en tends to
/// produce "you" with exactly this signature (no-speech 0.99, p 0.19).
pub fn is_silence(no_speech: f32, token_p: impl IntoIterator<Item = f32>) -> bool {
    const NO_SPEECH: f32 = 0.6;
    const LOGPROB: f64 = -1.0;
    let (sum, n) = token_p.into_iter().fold((0f64, 0usize), |(s, n), p| {
        (s + f64::from(p.max(1e-10)).ln(), n + 1)
    });
    no_speech > NO_SPEECH && (n == 0 || sum / (n as f64) < LOGPROB)
}

/// Gives freed heap pages back to the OS (glibc holds on to them otherwise).
fn trim_heap() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own free lists.
    unsafe {
        libc::malloc_trim(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(ws: &[&str]) -> Vec<String> {
        drop_non_speech(ws.iter().map(|w| (w.to_string(), 1.0, ())))
            .into_iter()
            .map(|w| w.0)
            .collect()
    }

    #[test]
    fn non_speech_markers_are_dropped() {
        assert!(words(&["[BLANK_AUDIO]"]).is_empty());
        assert!(words(&["[MUSIC]", "(music)", "♪", "la", "♪", "*sigh*"]).is_empty());
        assert_eq!(
            words(&["Hello", "[", "Laughter", "]", "world."]),
            vec!["Hello", "world."]
        );
        assert_eq!(
            words(&["(upbeat", "music)", "so,", "we", "start"]),
            vec!["so,", "we", "start"]
        );
        assert_eq!(words(&["ok", "-", "fine"]), vec!["ok", "fine"]);
        assert_eq!(
            words(&["it's", "3", "o'clock"]),
            vec!["it's", "3", "o'clock"]
        );
        assert!(words(&["[unclosed", "rest", "of", "it"]).is_empty());
    }

    #[test]
    fn silence_needs_both_signals() {
        assert!(is_silence(0.99, [0.19]));
        assert!(is_silence(0.7, []));
        assert!(!is_silence(0.99, [0.9, 0.8]), "confident text is kept");
        assert!(!is_silence(0.3, [0.1, 0.2]), "doubtful speech is kept");
    }

    fn settings(model: PathBuf) -> Settings {
        Settings {
            model,
            expected_sha256: None,
            language: "en".into(),
            threads: 1,
            idle_unload: Duration::from_secs(60),
            queue: 2,
            max_duration: Duration::from_secs(2),
            low_confidence: 0.4,
            flash_attn: true,
            trim_audio_ctx: false,
        }
    }

    #[tokio::test]
    async fn input_is_checked_before_it_is_queued() {
        let t = Transcriber::new(settings(PathBuf::from("/nonexistent/ggml.bin")));
        assert!(matches!(
            t.transcribe(Vec::new()).await,
            Err(TranscribeError::EmptyAudio)
        ));
        let e = t.transcribe(vec![0.0; 3 * 16_000]).await.unwrap_err();
        assert!(
            matches!(e, TranscribeError::TooLong { max_secs: 2, .. }),
            "{e}"
        );
        assert!(e.to_string().contains("limit is 2 s"), "{e}");
        assert!(matches!(
            t.transcribe(vec![0.0, f32::NAN]).await,
            Err(TranscribeError::InvalidAudio)
        ));
        assert!(!t.loaded());
    }

    #[tokio::test]
    async fn missing_and_invalid_models_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ggml-tiny.en.bin");
        let t = Transcriber::new(settings(path.clone()));
        let e = t.transcribe(vec![0.0; 16_000]).await.unwrap_err();
        assert!(matches!(e, TranscribeError::ModelMissing { .. }), "{e}");
        let msg = e.to_string();
        assert!(
            msg.contains("mnemo models fetch") && msg.contains(&path.display().to_string()),
            "{msg}"
        );

        // Not a ggml file: whisper.cpp refuses it.
        std::fs::write(&path, b"definitely not a whisper model").unwrap();
        let e = t.load().await.unwrap_err();
        assert!(matches!(e, TranscribeError::ModelInvalid { .. }), "{e}");
        assert!(!t.loaded());

        // The pinned model with the wrong bytes: caught by the checksum.
        let mut s = settings(path.clone());
        s.expected_sha256 = Some(SPEECH_MODEL.sha256.into());
        let e = Transcriber::new(s).load().await.unwrap_err();
        assert!(
            e.to_string().contains("sha256") && e.to_string().contains("mnemo models fetch"),
            "{e}"
        );
    }
}
