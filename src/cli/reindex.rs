//! `mnemo reindex`: rebuild the lexical index and re-embed every note.

use serde::Serialize;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Show a progress bar.
    #[arg(long)]
    progress: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    notes: u64,
    embedded: u64,
    seconds: f64,
    model: Option<String>,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let app = crate::app::App::open_bulk(cfg)?;
    let core = app.core();
    let t0 = std::time::Instant::now();
    let total = core.store().count_notes()?;
    let bar = super::progress_bar(args.progress, total, "re-embedding");
    let embedded = core.reindex(super::track(&bar))?;
    bar.finish_and_clear();
    let s = Summary {
        notes: total,
        embedded,
        seconds: t0.elapsed().as_secs_f64(),
        model: core.embedder().map(|e| e.model_id().to_owned()),
    };
    if args.json {
        return super::print_json(&s);
    }
    super::say(
        cfg,
        crate::i18n::Line::new("cli-reindexed")
            .num("notes", s.notes)
            .num("embedded", s.embedded)
            .text("secs", format!("{:.1}", s.seconds)),
    );
    Ok(())
}
