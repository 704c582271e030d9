//! `mnemo transcribe FILE`: the voice path on a local file — the same
//! decoder and the same whisper engine as voice notes from Telegram.
//! With `--save` the transcript is stored as a console note (through the
//! durable voice queue, like a voice note).

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use serde::Serialize;

use crate::config::Config;
use crate::i18n::Line;
use crate::voice::whisper::{Settings, Transcriber, Transcript};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// An OGG/Opus voice note or a WAV file.
    file: PathBuf,
    /// Store the transcript as a note (needs the database: not while `mnemo serve` runs).
    #[arg(long)]
    save: bool,
    /// Print JSON: {"text", "language", "audio_secs", "took_ms", "avg_confidence", "low_confidence", "segments", "note_id"}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Out<'a> {
    #[serde(flatten)]
    transcript: &'a Transcript,
    took_ms: u64,
    note_id: Option<u64>,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let cap = cfg.voice.transcribe_max_bytes;
    let (f, _) = super::open_capped(&args.file, cap, "voice.transcribe_max_bytes")?;
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(&mut std::io::Read::take(f, cap + 1), &mut bytes)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    if bytes.len() as u64 > cap {
        anyhow::bail!(
            "{}: more than {cap} bytes (voice.transcribe_max_bytes)",
            args.file.display()
        );
    }
    let settings = Settings::from_config(cfg)?;
    let pcm = crate::voice::audio::decode(&bytes, settings.max_duration)
        .with_context(|| format!("cannot decode {}", args.file.display()))?;
    let transcriber = Arc::new(Transcriber::new(settings.clone()));
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let t = rt.block_on(transcriber.transcribe(pcm.samples))?;
    let note_id = if args.save {
        save(cfg, &rt, &bytes, &args.file)?
    } else {
        None
    };
    if args.json {
        return super::print_json(&Out {
            transcript: &t,
            took_ms: t.took.as_millis() as u64,
            note_id,
        });
    }
    println!("{}", t.text);
    let rtf = if t.took.as_secs_f32() > 0.0 {
        t.audio_secs / t.took.as_secs_f32()
    } else {
        0.0
    };
    super::say(
        cfg,
        Line::new("cli-transcribed")
            .text("secs", format!("{:.1}", t.audio_secs))
            .text("took", format!("{:.2}", t.took.as_secs_f32()))
            .text("rtf", format!("{rtf:.1}"))
            .num("pct", (t.avg_confidence * 100.0).round() as i64),
    );
    if !t.low_confidence.is_empty() {
        let words: Vec<&str> = t.low_confidence.iter().map(|w| w.text.trim()).collect();
        super::say(
            cfg,
            Line::new("cli-doubtful").text("words", words.join(", ")),
        );
    }
    if let Some(id) = note_id {
        super::say(cfg, Line::new("cli-voice-saved").num("id", id));
    }
    Ok(())
}

/// Stores the file as a console voice note through the durable queue and
/// the App's voice pipeline (which transcribes it again: the note is what the
/// pipeline stored, exactly as for a voice note from Telegram).
fn save(
    cfg: &Config,
    rt: &tokio::runtime::Runtime,
    bytes: &[u8],
    file: &std::path::Path,
) -> anyhow::Result<Option<u64>> {
    let app = crate::app::App::open(cfg)?;
    let core = app.core();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let job = core.voice_add_file(crate::core::CONSOLE_CHAT_ID, 0, bytes, &name)?;
    let done = rt.block_on(app.pipeline().process(&job));
    core.embed_all_pending(|_, _| {})?;
    match done {
        crate::voice::pipeline::Done::Stored(id) => Ok(Some(id)),
        other => anyhow::bail!(
            "the transcript was not stored ({other:?}); the audio is kept, see `mnemo retry-voice`"
        ),
    }
}
