//! Voice notes waiting to become memories: the durable job queue and the
//! audio files it points at.
//!
//! A voice note goes through three states, each a commit:
//!
//! ```text
//!  received ──> Fetch ──(bytes written, fsynced)──> Ready ──(transcript)──> note
//!                 │                                   │
//!                 └──────────────> Failed <───────────┘   (kept; retried)
//! ```
//!
//! The Telegram update is marked processed in the same commit that creates
//! the `Fetch` job, and the note is stored in the same commit that removes
//! the job, so a kill at any point leaves either the job (redone after
//! restart) or the note — never both, never neither. Audio files live in
//! `<data>/voice/` (0600), named by job id; the file is complete before the
//! job says `Ready` (written to a temporary name, fsynced, renamed).

use redb::{ReadableTable, ReadableTableMetadata};
use serde::{Deserialize, Serialize};

use super::schema::*;
use super::{Store, StoreError, Tx};

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum VoiceState {
    /// The audio is still at the channel (Telegram's file id).
    Fetch,
    /// The audio is on disk; transcription is next.
    Ready,
    /// Fetching or transcribing failed; the audio (if fetched) is kept and
    /// the job is retried at the next start or by `mnemo retry-voice`.
    Failed,
}

/// One voice note in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceJob {
    pub id: u64,
    pub chat_id: i64,
    pub user_id: i64,
    pub message_id: Option<i64>,
    /// Reply language at receipt.
    pub lang: String,
    /// `voice`, `audio` or `file` (a local file through the CLI).
    pub kind: String,
    /// The channel's file reference (Telegram file id).
    pub file_id: String,
    pub duration_secs: u32,
    pub size: Option<u64>,
    /// Unix ms when the message was sent.
    pub at: i64,
    /// File name in `<data>/voice/` once fetched.
    pub audio: Option<String>,
    pub state: VoiceState,
    pub attempts: u32,
    pub error: Option<String>,
    /// Whether the user was told about the failure already.
    #[serde(default)]
    pub notified: bool,
    /// Re-transcription of this existing note (🔁) instead of a new note.
    #[serde(default)]
    pub note_id: Option<u64>,
}

impl VoiceJob {
    /// Whether the job came from a chat that gets replies (not a local file
    /// from `mnemo transcribe --save`).
    pub fn replies(&self) -> bool {
        self.kind != "file"
    }

    /// A job waiting for its audio (`Fetch`); the id is given by
    /// [`Tx::add_voice_job`].
    pub fn new(
        chat_id: i64,
        user_id: i64,
        lang: &str,
        kind: &str,
        file_id: &str,
        at: i64,
    ) -> VoiceJob {
        VoiceJob {
            id: 0,
            chat_id,
            user_id,
            message_id: None,
            lang: lang.to_owned(),
            kind: kind.to_owned(),
            file_id: file_id.to_owned(),
            duration_secs: 0,
            size: None,
            at,
            audio: None,
            state: VoiceState::Fetch,
            attempts: 0,
            error: None,
            notified: false,
            note_id: None,
        }
    }
}

/// What a voice memory keeps besides its transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VoiceMeta {
    /// File name in `<data>/voice/`, until retention removes it.
    pub audio: Option<String>,
    pub duration_ms: u64,
    /// The channel's file reference.
    pub file_id: String,
    /// Mean token probability of the transcript.
    pub confidence: f32,
    pub language: String,
}

/// A stored job, or `None` when damaged ([`super::damaged`]).
fn read_job(id: u64, bytes: &[u8]) -> Option<VoiceJob> {
    super::damaged::quarantine("voice_jobs", id, serde_json::from_slice(bytes))
}

impl Tx {
    /// Registers a new job and returns it with its id.
    pub fn add_voice_job(&mut self, mut job: VoiceJob) -> Result<VoiceJob, StoreError> {
        job.id = self.next_seq(KEY_NEXT_VOICE)?;
        self.put_voice_job(&job)?;
        Ok(job)
    }

    pub fn put_voice_job(&mut self, job: &VoiceJob) -> Result<(), StoreError> {
        self.txn.open_table(VOICE_JOBS)?.insert(
            job.id,
            serde_json::to_vec(job).expect("jobs serialise").as_slice(),
        )?;
        Ok(())
    }

    pub fn voice_job(&self, id: u64) -> Result<Option<VoiceJob>, StoreError> {
        let t = self.txn.open_table(VOICE_JOBS)?;
        let g = t.get(id)?;
        Ok(g.and_then(|g| read_job(id, g.value())))
    }

    pub fn remove_voice_job(&mut self, id: u64) -> Result<(), StoreError> {
        self.txn.open_table(VOICE_JOBS)?.remove(id)?;
        Ok(())
    }
}

impl Store {
    /// Jobs in `state`, oldest first.
    pub fn voice_jobs(&self, state: VoiceState) -> Result<Vec<VoiceJob>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(VOICE_JOBS)?;
        let mut out = Vec::new();
        for row in t.iter()? {
            let (k, v) = row?;
            let Some(job) = read_job(k.value(), v.value()) else {
                continue;
            };
            if job.state == state {
                out.push(job);
            }
        }
        Ok(out)
    }

    pub fn voice_job(&self, id: u64) -> Result<Option<VoiceJob>, StoreError> {
        let r = self.read()?;
        let t = r.open_table(VOICE_JOBS)?;
        let g = t.get(id)?;
        Ok(g.and_then(|g| read_job(id, g.value())))
    }

    pub fn voice_job_count(&self) -> Result<u64, StoreError> {
        let r = self.read()?;
        Ok(r.open_table(VOICE_JOBS)?.len()?)
    }

    /// `<data>/voice`, where audio files live.
    pub fn voice_dir(&self) -> std::path::PathBuf {
        self.dir().join("voice")
    }
}
