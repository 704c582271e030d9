//! Voice notes in the core: receiving one (a durable job), storing its audio,
//! and turning its transcript into a memory — each step one commit.
//!
//! The core does not download or transcribe: the channel adapter fetches the
//! audio ([`Core::voice_fetched`]) and `crate::voice::pipeline` decodes and
//! transcribes it ([`Core::voice_transcribed`] / [`Core::voice_failed`]).
//! What the core guarantees is the order of durability: the job exists
//! before the update is confirmed, the audio is on disk before the job is
//! `Ready`, and the note replaces the job in one transaction — so a voice
//! note is never lost and never stored twice, whatever is killed when.

use std::io::Write as _;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};

use super::{now_ms, Changes, Core, CoreError, Cx, Outcome, Reply};
use crate::buttons::Action;
use crate::i18n::Line;
use crate::store::{NewNote, Source, StoreError, Tx, VoiceJob, VoiceMeta, VoiceState};

/// Telegram's getFile limit: bigger files cannot be downloaded by a bot.
pub const MAX_VOICE_BYTES: u64 = 20 * 1024 * 1024;

/// A voice (or audio) message as the channel describes it.
#[derive(Debug, Clone)]
pub struct VoiceIn {
    /// `voice` or `audio`.
    pub kind: &'static str,
    pub file_id: String,
    pub duration_secs: u32,
    pub size: Option<u64>,
}

/// What transcription produced, in the terms the core stores.
#[derive(Debug, Clone)]
pub struct VoiceText {
    pub text: String,
    /// Mean token probability, 0..=1.
    pub confidence: f32,
    /// Words the model was unsure about.
    pub doubtful: Vec<String>,
    pub language: String,
    pub audio_ms: u64,
}

/// Why a voice note could not be transcribed: a locale key (`voice-err-*`)
/// and a detail for the log and the reply.
#[derive(Debug, Clone)]
pub struct VoiceFailure {
    pub key: &'static str,
    pub detail: String,
}

/// Average confidence below which a transcript is marked as doubtful.
const LOW_CONFIDENCE: f32 = 0.6;
/// Doubtful words listed at most.
const DOUBTFUL_MAX: usize = 8;

impl Core {
    /// A voice message arrived: refuse it politely when it cannot be
    /// processed, else register a job (committed with the update's marker).
    pub(super) fn voice_in(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        v: &VoiceIn,
    ) -> Result<Vec<Outcome>, StoreError> {
        if v.size.is_some_and(|s| s > MAX_VOICE_BYTES) {
            let mb = v.size.unwrap_or_default().div_ceil(1024 * 1024);
            return Ok(vec![cx.reply_to_msg(vec![Line::new("voice-too-big")
                .num("size", mb)
                .num("max", MAX_VOICE_BYTES / 1024 / 1024)])]);
        }
        if u64::from(v.duration_secs) > self.settings.max_voice_secs {
            return Ok(vec![cx.reply_to_msg(vec![Line::new("voice-too-long")
                .text("duration", clock(u64::from(v.duration_secs) * 1000))
                .text("max", clock(self.settings.max_voice_secs * 1000))])]);
        }
        let job = tx.add_voice_job(VoiceJob {
            message_id: cx.ev.message_id,
            duration_secs: v.duration_secs,
            size: v.size,
            ..VoiceJob::new(
                cx.ev.chat_id,
                cx.ev.user_id,
                &cx.lang,
                v.kind,
                &v.file_id,
                cx.ev.at,
            )
        })?;
        tracing::info!(
            job = job.id,
            chat = job.chat_id,
            secs = job.duration_secs,
            "voice note received"
        );
        Ok(Vec::new())
    }

    /// Registers a local audio file (CLI `mnemo transcribe --save`, tests):
    /// copied into the data dir and queued `Ready`.
    pub fn voice_add_file(
        &self,
        chat_id: i64,
        user_id: i64,
        bytes: &[u8],
        name: &str,
    ) -> Result<VoiceJob, CoreError> {
        let job = self.store.write(|tx| {
            let lang = tx
                .chat_lang(chat_id)?
                .unwrap_or_else(|| self.settings.default_lang.clone());
            tx.add_voice_job(VoiceJob {
                size: Some(bytes.len() as u64),
                ..VoiceJob::new(chat_id, user_id, &lang, "file", name, now_ms())
            })
        })?;
        self.voice_fetched(job.id, bytes)?;
        Ok(self.store.voice_job(job.id)?.unwrap_or(job))
    }

    pub fn voice_jobs(&self, state: VoiceState) -> Result<Vec<VoiceJob>, CoreError> {
        Ok(self.store.voice_jobs(state)?)
    }

    /// Stores a job's audio: written under a temporary name, fsynced,
    /// renamed, and only then the job is marked `Ready`.
    pub fn voice_fetched(&self, id: u64, bytes: &[u8]) -> Result<(), CoreError> {
        let dir = self.store.voice_dir();
        let io = |what: &str, e: std::io::Error| {
            CoreError::Store(StoreError::Io {
                context: format!("{what} in {}", dir.display()),
                source: e,
            })
        };
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&dir)
            .map_err(|e| io("cannot create the voice dir", e))?;
        let ext = match bytes.get(..4) {
            Some(b"OggS") => "ogg",
            Some(b"RIFF") => "wav",
            _ => "bin",
        };
        let name = format!("{id}.{ext}");
        let tmp = dir.join(format!("{id}.part"));
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| io("cannot create an audio file", e))?;
        f.write_all(bytes)
            .and_then(|()| f.sync_all())
            .map_err(|e| io("cannot write an audio file", e))?;
        drop(f);
        std::fs::rename(&tmp, dir.join(&name))
            .map_err(|e| io("cannot move an audio file into place", e))?;
        if let Ok(d) = std::fs::File::open(&dir) {
            let _ = d.sync_all();
        }
        self.store.write(|tx| {
            let Some(mut job) = tx.voice_job(id)? else {
                return Ok(());
            };
            job.audio = Some(name.clone());
            job.state = VoiceState::Ready;
            tx.put_voice_job(&job)
        })?;
        self.notify_voice();
        Ok(())
    }

    /// Reads a job's audio file.
    pub fn voice_audio(&self, job: &VoiceJob) -> std::io::Result<Vec<u8>> {
        let name = job.audio.as_deref().ok_or_else(|| {
            std::io::Error::new(std::io::ErrorKind::NotFound, "no audio stored for this job")
        })?;
        std::fs::read(self.store.voice_dir().join(name))
    }

    /// The transcript of job `id` becomes a memory (or replaces the text of
    /// the note being re-transcribed): note, reply and job removal in one
    /// commit. Returns the note id; `None` when nothing was said (the user
    /// is told, the job is kept as failed with its audio).
    pub fn voice_transcribed(&self, id: u64, t: &VoiceText) -> Result<Option<u64>, CoreError> {
        let text = t.text.trim();
        if text.is_empty() {
            self.voice_failed(
                id,
                &VoiceFailure {
                    key: "voice-err-no-speech",
                    detail: String::new(),
                },
                false,
            )?;
            return Ok(None);
        }
        let _w = self.writer.lock().unwrap_or_else(|p| p.into_inner());
        let mut ch = Changes::default();
        let note = self.store.write(|tx| {
            let Some(job) = tx.voice_job(id)? else {
                return Ok(None);
            };
            let meta = VoiceMeta {
                audio: job.audio.clone(),
                duration_ms: t.audio_ms,
                file_id: job.file_id.clone(),
                confidence: t.confidence,
                language: t.language.clone(),
            };
            let cut: String = text.chars().take(self.settings.max_note_chars).collect();
            let (note, head) = match job.note_id {
                Some(nid) => match tx.edit_note(nid, cut, now_ms())? {
                    Some(n) => (n, Line::new("voice-retranscribed").num("id", nid)),
                    None => {
                        tx.remove_voice_job(id)?;
                        return Ok(None);
                    }
                },
                None => {
                    let n = tx.insert_note(NewNote {
                        chat_id: job.chat_id,
                        user_id: job.user_id,
                        message_id: job.message_id,
                        text: cut,
                        created_at: job.at,
                        source: Source::Voice,
                        author: None,
                    })?;
                    let head = Line::new("voice-saved")
                        .num("id", n.id)
                        .text("duration", clock(t.audio_ms));
                    (n, head)
                }
            };
            tx.set_note_voice(note.id, Some(meta))?;
            ch.stored(&note, "voice");
            tx.remove_voice_job(id)?;
            let mut lines = vec![
                head,
                Line::new("voice-transcript").text("text", text.to_owned()),
            ];
            if t.confidence < LOW_CONFIDENCE {
                lines.push(
                    Line::new("voice-low-confidence")
                        .num("pct", (t.confidence * 100.0).round() as i64),
                );
            }
            if !t.doubtful.is_empty() {
                let words: Vec<&str> = t
                    .doubtful
                    .iter()
                    .take(DOUBTFUL_MAX)
                    .map(String::as_str)
                    .collect();
                lines.push(Line::new("voice-doubtful").text("words", words.join(", ")));
            }
            if let Some(p) = crate::extract::extract(&note.text).priority {
                lines.push(Line::new("note-priority").text("cue", p.cue));
            }
            let buttons: Vec<_> = [
                (Action::Retranscribe, "btn-retranscribe"),
                (Action::Undo, "btn-undo"),
            ]
            .into_iter()
            .filter_map(|(action, key)| {
                self.sign_button(
                    job.chat_id,
                    job.user_id,
                    action,
                    note.id,
                    None,
                    Line::new(key),
                )
            })
            .collect();
            let reply = Reply {
                chat_id: job.chat_id,
                reply_to: job.message_id,
                lang: job.lang.clone(),
                lines,
                note_id: Some(note.id),
                chunks_sent: 0,
                buttons: if buttons.is_empty() || !job.replies() {
                    Vec::new()
                } else {
                    vec![buttons]
                },
                digest: None,
                low_priority: false,
            };
            if job.replies() {
                tx.push_outbox(
                    &serde_json::to_vec(&Outcome::Reply(reply)).expect("outcomes serialise"),
                )?;
            }
            Ok(Some(note.id))
        })?;
        self.apply_changes(ch);
        drop(_w);
        self.notify_outbox();
        Ok(note)
    }

    /// Job `id` failed. The audio stays; the job is `Failed` and retried at
    /// the next start or by `mnemo retry-voice`. The user is told once.
    /// `later` marks a passing cause (busy, network): the job stays in its
    /// state and nobody is told.
    pub fn voice_failed(&self, id: u64, why: &VoiceFailure, later: bool) -> Result<(), CoreError> {
        let told = self.store.write(|tx| {
            let Some(mut job) = tx.voice_job(id)? else {
                return Ok(false);
            };
            job.attempts += 1;
            job.error = Some(format!("{}: {}", why.key, why.detail));
            if later {
                tx.put_voice_job(&job)?;
                return Ok(false);
            }
            job.state = VoiceState::Failed;
            let tell = !job.notified && job.replies();
            job.notified = true;
            tx.put_voice_job(&job)?;
            if tell {
                let reason = Line::new(why.key).text("detail", why.detail.clone());
                let lines = vec![Line::new("voice-failed"), reason, Line::new("voice-kept")];
                let reply = Reply {
                    reply_to: job.message_id,
                    ..Reply::plain(job.chat_id, job.lang.clone(), lines)
                };
                tx.push_outbox(
                    &serde_json::to_vec(&Outcome::Reply(reply)).expect("outcomes serialise"),
                )?;
            }
            Ok(tell)
        })?;
        tracing::warn!(job = id, reason = why.key, detail = %why.detail, later, "voice note not transcribed");
        if told {
            self.notify_outbox();
        }
        Ok(())
    }

    /// Puts failed jobs back in line (their cause may be fixed: a model
    /// fetched, a disk freed). Returns how many.
    pub fn voice_retry(&self) -> Result<u64, CoreError> {
        self.voice_retry_where(|_| true)
    }

    /// [`Core::voice_retry`] for the failed jobs `pick` selects.
    pub fn voice_retry_where(&self, pick: impl Fn(&VoiceJob) -> bool) -> Result<u64, CoreError> {
        let n = self.store.write(|tx| {
            // Read inside the write transaction: redb lets one writer at a
            // time, so this snapshot is the state the transaction starts from.
            let mut n = 0;
            for mut job in self.store.voice_jobs(VoiceState::Failed)? {
                if !pick(&job) {
                    continue;
                }
                // A fresh budget of download tries.
                job.attempts = 0;
                job.state = if job.audio.is_some() {
                    VoiceState::Ready
                } else {
                    VoiceState::Fetch
                };
                tx.put_voice_job(&job)?;
                n += 1;
            }
            Ok(n)
        })?;
        if n > 0 {
            self.notify_voice();
        }
        Ok(n)
    }

    /// 🔁 on a voice memory: queue its stored audio again.
    pub(super) fn retranscribe(
        &self,
        tx: &mut Tx,
        cx: &Cx,
        note_id: u64,
    ) -> Result<Outcome, StoreError> {
        let Some(note) = tx.note(note_id)?.filter(|n| n.chat_id == cx.ev.chat_id) else {
            return Ok(cx.answer(Line::new("press-gone"), false));
        };
        let Some(meta) = note.voice.as_ref() else {
            return Ok(cx.answer(Line::new("press-gone"), false));
        };
        let Some(audio) = meta
            .audio
            .clone()
            .filter(|a| self.store.voice_dir().join(a).exists())
        else {
            return Ok(cx.answer(Line::new("press-audio-gone"), false));
        };
        tx.add_voice_job(VoiceJob {
            message_id: note.message_id,
            duration_secs: (meta.duration_ms / 1000) as u32,
            audio: Some(audio),
            state: VoiceState::Ready,
            note_id: Some(note.id),
            ..VoiceJob::new(
                note.chat_id,
                cx.ev.user_id,
                &cx.lang,
                "voice",
                &meta.file_id,
                note.created_at,
            )
        })?;
        Ok(cx.answer(Line::new("press-retranscribing").num("id", note.id), true))
    }

    /// Deletes audio files of voice memories older than `keep_days`
    /// (the transcript stays; 🔁 then says the audio is gone). Returns how
    /// many files were removed.
    pub fn voice_prune_audio(&self, keep_days: u32) -> Result<u64, CoreError> {
        let horizon = now_ms() - i64::from(keep_days) * 86_400_000;
        let mut old = Vec::new();
        self.store.for_each_note(|n| {
            if n.created_at < horizon && n.voice.as_ref().is_some_and(|v| v.audio.is_some()) {
                old.push(n.id);
            }
        })?;
        let dir = self.store.voice_dir();
        let mut removed = 0;
        for id in old {
            let name = self.store.write(|tx| {
                let Some(mut n) = tx.note(id)? else {
                    return Ok(None);
                };
                let name = n.voice.as_mut().and_then(|v| v.audio.take());
                let voice = n.voice.clone();
                tx.set_note_voice(id, voice)?;
                Ok(name)
            })?;
            if let Some(name) = name {
                if std::fs::remove_file(dir.join(&name)).is_ok() {
                    removed += 1;
                }
            }
        }
        Ok(removed)
    }
}

/// `m:ss` for milliseconds.
pub fn clock(ms: u64) -> String {
    let s = ms.div_ceil(1000);
    format!("{}:{:02}", s / 60, s % 60)
}
