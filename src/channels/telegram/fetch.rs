//! Downloads voice notes: the Telegram half of the voice pipeline.
//!
//! The handler only registers a job ([`crate::core::Core`] commits it with
//! the update). This task takes jobs in the `Fetch` state, asks Telegram
//! where the file is (getFile), streams it — refusing more than Telegram's
//! 20 MB bot limit — and hands the bytes to the core, which writes them to
//! the data dir before marking the job `Ready` for transcription. It also
//! keeps the chat's "typing…" indicator alive while a voice note waits.
//!
//! Network trouble is retried with backoff; an answer from Telegram that
//! will not change (file too big, unknown file id) fails the job, and the
//! user is told.
//!
//! Downloads do not go through the Bot API client (whose requests end after
//! 17 s, too short for 20 MB on a slow link) but through a client without a
//! total timeout, and each download gets its own: [`Limits::timeout`], a
//! base plus the file's size at a minimum rate (`[voice] download_*`).
//! After `download_attempts` failed tries (counted in the job) the job is
//! `Failed` and the user is told (`voice-err-download-gave-up`);
//! `retry-voice` or the next start tries again with a fresh count.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use teloxide::net::Download;
use teloxide::prelude::*;
use teloxide::types::{ChatAction, FileId};
use teloxide::RequestError;
use tokio::sync::Notify;

use crate::app::Shutdown;

use crate::core::{Core, VoiceFailure, MAX_VOICE_BYTES};
use crate::store::{VoiceJob, VoiceState};

/// How often the typing indicator is renewed (Telegram shows it for 5 s).
const TYPING_EVERY: Duration = Duration::from_secs(4);

/// How long a download may take, and how often it is tried.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub base: Duration,
    pub min_bytes_per_sec: u64,
    pub attempts: u32,
}

impl Limits {
    pub fn from_config(v: &crate::config::Voice) -> Limits {
        Limits {
            base: Duration::from_secs_f64(v.download_base_secs),
            min_bytes_per_sec: v.download_min_bytes_per_sec.max(1),
            attempts: v.download_attempts.max(1),
        }
    }

    /// The time one download of `size` bytes may take.
    pub fn timeout(&self, size: u64) -> Duration {
        self.base + Duration::from_secs_f64(size as f64 / self.min_bytes_per_sec as f64)
    }
}

/// A client for file downloads: connections time out, whole requests do not
/// (each download is bounded by [`Limits::timeout`] instead).
pub fn download_client() -> reqwest::Client {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(10))
        .build()
        .expect("the HTTP client builds")
}

pub struct Fetcher {
    pub bot: Bot,
    /// The same bot on [`download_client`], for the file itself.
    pub download: Bot,
    pub limits: Limits,
    pub core: Arc<Core>,
    /// Wakes this task (a voice note was received). The pipeline is woken
    /// by the core itself once the audio is stored (`Core::on_voice_ready`).
    pub wake: Arc<Notify>,
}

enum FetchError {
    /// Will not succeed by retrying.
    Permanent(String),
    Transient(String),
}

impl Fetcher {
    pub async fn run(self, shutdown: Shutdown) {
        let mut backoff = Duration::from_secs(1);
        loop {
            if shutdown.is_triggered() {
                break;
            }
            let jobs = self.jobs(VoiceState::Fetch).await;
            let mut retry = false;
            for job in &jobs {
                // A download cut by the stop is redone at the next start.
                let fetched = tokio::select! {
                    r = self.fetch(job) => r,
                    _ = shutdown.triggered() => break,
                };
                match fetched {
                    Ok(bytes) => {
                        let core = self.core.clone();
                        let id = job.id;
                        match tokio::task::spawn_blocking(move || core.voice_fetched(id, &bytes))
                            .await
                        {
                            Ok(Ok(())) => tracing::info!(job = id, "voice note downloaded"),
                            Ok(Err(e)) => {
                                // Disk full, most likely: keep the job, try again later.
                                tracing::error!(job = id, error = %e, "cannot store a downloaded voice note");
                                retry = true;
                            }
                            Err(e) => tracing::error!(error = %e, "voice store task failed"),
                        }
                    }
                    Err(FetchError::Permanent(why)) => self.fail(job.id, why, false).await,
                    Err(FetchError::Transient(why)) => {
                        let tries = job.attempts + 1;
                        if tries >= self.limits.attempts {
                            tracing::warn!(job = job.id, error = %why, tries, "voice note download failed; giving up");
                            let detail = format!("{tries} tries, the last: {why}");
                            self.fail_with(job.id, "voice-err-download-gave-up", detail, false)
                                .await;
                        } else {
                            tracing::warn!(job = job.id, error = %why, tries, retry_in = ?backoff, "voice note download failed");
                            self.fail(job.id, why, true).await;
                            retry = true;
                        }
                    }
                }
            }
            // Keep "typing…" visible in chats whose voice notes are waiting.
            let waiting = self.jobs(VoiceState::Ready).await;
            let mut chats: Vec<i64> = waiting.iter().map(|j| j.chat_id).collect();
            chats.dedup();
            for chat in &chats {
                let _ = self
                    .bot
                    .send_chat_action(ChatId(*chat), ChatAction::Typing)
                    .await;
            }
            let pause = if retry {
                let p = backoff;
                backoff = (backoff * 2).min(Duration::from_secs(300));
                p
            } else {
                backoff = Duration::from_secs(1);
                if chats.is_empty() {
                    Duration::from_secs(60)
                } else {
                    TYPING_EVERY
                }
            };
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(pause) => {}
                _ = shutdown.triggered() => {}
            }
        }
        tracing::debug!("voice fetcher stopped");
    }

    async fn jobs(&self, state: VoiceState) -> Vec<VoiceJob> {
        let core = self.core.clone();
        match tokio::task::spawn_blocking(move || core.voice_jobs(state)).await {
            Ok(Ok(j)) => j,
            Ok(Err(e)) => {
                tracing::error!(error = %e, "cannot read voice jobs");
                Vec::new()
            }
            Err(_) => Vec::new(),
        }
    }

    async fn fail(&self, id: u64, detail: String, later: bool) {
        self.fail_with(id, "voice-err-download", detail, later)
            .await
    }

    async fn fail_with(&self, id: u64, key: &'static str, detail: String, later: bool) {
        let core = self.core.clone();
        let why = VoiceFailure { key, detail };
        if let Ok(Err(e)) =
            tokio::task::spawn_blocking(move || core.voice_failed(id, &why, later)).await
        {
            tracing::error!(job = id, error = %e, "cannot record a voice download failure");
        }
    }

    async fn fetch(&self, job: &VoiceJob) -> Result<Vec<u8>, FetchError> {
        let _ = self
            .bot
            .send_chat_action(ChatId(job.chat_id), ChatAction::Typing)
            .await;
        let file = self
            .bot
            .get_file(FileId(job.file_id.clone()))
            .await
            .map_err(classify)?;
        if u64::from(file.meta.size) > MAX_VOICE_BYTES && file.meta.size != u32::MAX {
            return Err(FetchError::Permanent(format!(
                "{} bytes is over the 20 MB limit",
                file.meta.size
            )));
        }
        let size = if file.meta.size == u32::MAX {
            job.size.unwrap_or(MAX_VOICE_BYTES)
        } else {
            u64::from(file.meta.size)
        };
        let limit = self.limits.timeout(size);
        let mut bytes = Vec::new();
        let download = async {
            let mut stream = self.download.download_file_stream(&file.path);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(|e| FetchError::Transient(e.to_string()))?;
                if (bytes.len() + chunk.len()) as u64 > MAX_VOICE_BYTES {
                    return Err(FetchError::Permanent(
                        "the file is over the 20 MB limit".into(),
                    ));
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(())
        };
        match tokio::time::timeout(limit, download).await {
            Ok(r) => r?,
            Err(_) => {
                return Err(FetchError::Transient(format!(
                    "the download did not finish in {} s",
                    limit.as_secs()
                )))
            }
        }
        if bytes.is_empty() {
            return Err(FetchError::Permanent("the file is empty".into()));
        }
        Ok(bytes)
    }
}

fn classify(e: RequestError) -> FetchError {
    match e {
        RequestError::Api(api) => FetchError::Permanent(api.to_string()),
        other => FetchError::Transient(other.to_string()),
    }
}
