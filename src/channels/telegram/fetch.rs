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

pub struct Fetcher {
    pub bot: Bot,
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
                        tracing::warn!(job = job.id, error = %why, retry_in = ?backoff, "voice note download failed");
                        self.fail(job.id, why, true).await;
                        retry = true;
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
        let core = self.core.clone();
        let why = VoiceFailure {
            key: "voice-err-download",
            detail,
        };
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
        let mut stream = self.bot.download_file_stream(&file.path);
        let mut bytes = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| FetchError::Transient(e.to_string()))?;
            if (bytes.len() + chunk.len()) as u64 > MAX_VOICE_BYTES {
                return Err(FetchError::Permanent(
                    "the file is over the 20 MB limit".into(),
                ));
            }
            bytes.extend_from_slice(&chunk);
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
