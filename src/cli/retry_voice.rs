//! `mnemo retry-voice`: transcribe again every voice note that failed (the
//! model was missing, the audio could not be read, …). Their replies are
//! queued and go out with the next `mnemo serve`. Voice notes still waiting
//! for their download need `mnemo serve` (it talks to Telegram).

use serde::Serialize;

use crate::app::App;
use crate::config::Config;
use crate::i18n::Line;
use crate::store::VoiceState;
use crate::voice::pipeline::Done;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: {"requeued": N, "stored": N, "failed": N, "waiting_for_download": N}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    requeued: u64,
    stored: u64,
    failed: u64,
    waiting_for_download: u64,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let app = App::open(cfg)?;
    let core = app.core();
    let requeued = core.voice_retry()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let results = rt.block_on(app.pipeline().drain());
    core.embed_all_pending(|_, _| {})?;
    let s = Summary {
        requeued,
        stored: results
            .iter()
            .filter(|(_, d)| matches!(d, Done::Stored(_)))
            .count() as u64,
        failed: results
            .iter()
            .filter(|(_, d)| !matches!(d, Done::Stored(_)))
            .count() as u64,
        waiting_for_download: core.voice_jobs(VoiceState::Fetch)?.len() as u64,
    };
    if args.json {
        return super::print_json(&s);
    }
    super::say(
        cfg,
        Line::new("cli-voice-retried")
            .num("requeued", s.requeued)
            .num("stored", s.stored)
            .num("failed", s.failed)
            .num("waiting", s.waiting_for_download),
    );
    Ok(())
}
