//! From stored audio to a memory: the channel-free half of the voice path.
//!
//! [`Pipeline::run`] takes jobs the channel has fetched (`Ready` in the
//! store), decodes them ([`super::audio`]) on a blocking thread, transcribes
//! them one at a time ([`super::whisper::Transcriber`]) and hands the
//! transcript to the core, which stores the note and its reply in one commit
//! ([`Core::voice_transcribed`]). A failure is recorded with its cause
//! ([`Core::voice_failed`]); the audio stays, and failed jobs are put back
//! in line at the next start ([`Core::voice_retry`]) or by
//! `mnemo retry-voice`.
//!
//! A kill during transcription leaves the job `Ready`: it is transcribed
//! again after the restart and stored once.
//!
//! The [`crate::app::App`] builds one pipeline ([`Pipeline::from_config`]),
//! runs its loop and wakes it when the core marks a job `Ready`; the
//! `voice-retry` job puts jobs that failed for want of the model back in
//! line once the model is there again ([`Pipeline::retry_model_failures`]).

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;

use super::audio::{self, AudioError};
use super::whisper::{TranscribeError, Transcriber};
use crate::app::Shutdown;
use crate::config::Config;
use crate::core::{Core, VoiceFailure, VoiceText};
use crate::store::{VoiceJob, VoiceState};

/// What became of one job.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Done {
    /// Stored as (or re-transcribed into) this note.
    Stored(u64),
    /// Nothing was said; the user was told, the audio is kept.
    NoSpeech,
    /// Failed for a reason recorded with the job.
    Failed,
    /// Not now (the transcriber is busy); the job stays `Ready`.
    Later,
}

pub struct Pipeline {
    pub core: Arc<Core>,
    pub transcriber: Arc<Transcriber>,
    /// Longest audio decoded.
    pub max: Duration,
    /// Wakes [`Pipeline::run`]: a job became `Ready`.
    ready: Notify,
}

impl Pipeline {
    /// The pipeline for `core` with the `[voice]` settings (the model is
    /// loaded on the first job, not here).
    pub fn from_config(cfg: &Config, core: Arc<Core>) -> anyhow::Result<Pipeline> {
        let settings = crate::voice::whisper::Settings::from_config(cfg)?;
        Ok(Pipeline {
            core,
            max: settings.max_duration,
            transcriber: Arc::new(Transcriber::new(settings)),
            ready: Notify::new(),
        })
    }

    /// Wakes the loop of [`Pipeline::run`] (a job became `Ready`).
    pub fn wake(&self) {
        self.ready.notify_one();
    }

    /// Transcribes `Ready` jobs as they come (see [`Pipeline::wake`]) until
    /// `shutdown`. A job being transcribed when the stop comes is abandoned:
    /// it stays `Ready` and is redone at the next start.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        loop {
            if shutdown.is_triggered() {
                break;
            }
            let jobs = self.ready_jobs().await;
            tracing::debug!(jobs = jobs.len(), "voice pipeline looking for work");
            for job in jobs {
                tokio::select! {
                    _ = self.process(&job) => {}
                    _ = shutdown.triggered() => break,
                }
            }
            tokio::select! {
                _ = self.ready.notified() => {}
                // A safety net: a wake-up lost between the read and the wait.
                _ = tokio::time::sleep(Duration::from_secs(300)) => {}
                _ = shutdown.triggered() => {}
            }
        }
        tracing::debug!("voice pipeline stopped");
    }

    /// Requeues jobs that failed because the model was missing or damaged,
    /// once the model file exists again (the owner ran `mnemo models fetch`
    /// or fixed `[voice] model`), and wakes the loop. Their users were told
    /// already and are not told again. Blocking: the `voice-retry` job.
    pub fn retry_model_failures(&self) -> anyhow::Result<u64> {
        if !self.transcriber.settings().model.exists() {
            return Ok(0);
        }
        let n = self.core.voice_retry_where(|j| {
            j.error
                .as_deref()
                .is_some_and(|e| e.starts_with("voice-err-model"))
        })?;
        if n > 0 {
            tracing::info!(jobs = n, "the speech model is back; retrying voice notes");
            self.wake();
        }
        Ok(n)
    }

    /// Transcribes every `Ready` job now (`mnemo retry-voice`); returns what
    /// became of each.
    pub async fn drain(&self) -> Vec<(u64, Done)> {
        let mut out = Vec::new();
        for job in self.ready_jobs().await {
            out.push((job.id, self.process(&job).await));
        }
        out
    }

    async fn ready_jobs(&self) -> Vec<VoiceJob> {
        let core = self.core.clone();
        match tokio::task::spawn_blocking(move || core.voice_jobs(VoiceState::Ready)).await {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read voice jobs");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    /// Decodes, transcribes and stores one job.
    pub async fn process(&self, job: &VoiceJob) -> Done {
        let (core, j, max) = (self.core.clone(), job.clone(), self.max);
        let decoded = tokio::task::spawn_blocking(move || -> Result<audio::Pcm, VoiceFailure> {
            let bytes = core.voice_audio(&j).map_err(|e| VoiceFailure {
                key: "voice-err-audio",
                detail: format!("the stored audio cannot be read ({e})"),
            })?;
            audio::decode(&bytes, max).map_err(|e| VoiceFailure {
                key: "voice-err-audio",
                detail: audio_detail(&e),
            })
        })
        .await;
        let pcm = match decoded {
            Ok(Ok(pcm)) => pcm,
            Ok(Err(why)) => return self.fail(job.id, why, false).await,
            Err(e) => {
                let why = VoiceFailure {
                    key: "voice-err-failed",
                    detail: e.to_string(),
                };
                return self.fail(job.id, why, false).await;
            }
        };
        tracing::info!(
            job = job.id,
            secs = pcm.duration().as_secs_f32(),
            "transcribing voice note"
        );
        let t = match self.transcriber.transcribe(pcm.samples).await {
            Ok(t) => t,
            Err(e) => {
                let later = matches!(e, TranscribeError::Busy { .. });
                let key = match e {
                    TranscribeError::ModelMissing { .. } | TranscribeError::ModelInvalid { .. } => {
                        "voice-err-model"
                    }
                    TranscribeError::EmptyAudio
                    | TranscribeError::InvalidAudio
                    | TranscribeError::TooLong { .. } => "voice-err-audio",
                    _ => "voice-err-failed",
                };
                return self
                    .fail(
                        job.id,
                        VoiceFailure {
                            key,
                            detail: e.to_string(),
                        },
                        later,
                    )
                    .await;
            }
        };
        tracing::info!(
            job = job.id,
            audio_secs = t.audio_secs,
            took_ms = t.took.as_millis() as u64,
            confidence = t.avg_confidence,
            "voice note transcribed"
        );
        if t.audio_secs > 0.0 {
            crate::health::metrics::transcription_rtf(
                t.took.as_secs_f64() / f64::from(t.audio_secs),
            );
        }
        let text = VoiceText {
            text: t.text.clone(),
            confidence: t.avg_confidence,
            doubtful: t
                .low_confidence
                .iter()
                .map(|w| w.text.trim().to_owned())
                .filter(|w| !w.is_empty())
                .collect(),
            language: t.language.clone(),
            audio_ms: (f64::from(t.audio_secs) * 1000.0).round() as u64,
        };
        let (core, id) = (self.core.clone(), job.id);
        match tokio::task::spawn_blocking(move || core.voice_transcribed(id, &text)).await {
            Ok(Ok(Some(note))) => Done::Stored(note),
            Ok(Ok(None)) => Done::NoSpeech,
            Ok(Err(e)) => {
                // Storage failed: the job stays Ready and is redone later.
                tracing::error!(job = id, error = %e, "cannot store a transcript; it will be redone");
                Done::Later
            }
            Err(_) => Done::Later,
        }
    }

    async fn fail(&self, id: u64, why: VoiceFailure, later: bool) -> Done {
        if !later {
            crate::health::signals()
                .voice_failed(why.key == "voice-err-model", crate::core::now_ms());
        }
        let core = self.core.clone();
        match tokio::task::spawn_blocking(move || core.voice_failed(id, &why, later)).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(job = id, error = %e, "cannot record a voice failure"),
            Err(_) => {}
        }
        if later {
            Done::Later
        } else {
            Done::Failed
        }
    }
}

/// The reason shown to the user for audio that cannot be decoded.
fn audio_detail(e: &AudioError) -> String {
    e.to_string()
}
