//! `mnemo import <result.json>`: Telegram Desktop chat history.

use serde::Serialize;

use crate::config::Config;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The export's result.json.
    file: std::path::PathBuf,
    /// Messages per transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Import only; leave embedding to the running bot (or the next command).
    #[arg(long)]
    no_embed: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    chats: u64,
    imported: u64,
    skipped: u64,
    duplicates: u64,
    embedded: u64,
    seconds: f64,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let f = std::fs::File::open(&args.file)
        .map_err(|e| anyhow::anyhow!("cannot open {}: {e}", args.file.display()))?;
    let parsed = crate::import::parse(std::io::BufReader::new(f))
        .map_err(|e| anyhow::anyhow!("{}: {e}; nothing was imported", args.file.display()))?;
    let app = crate::app::App::open_bulk(cfg)?;
    let core = app.core();
    let bar = super::progress_bar(!args.json, parsed.messages.len() as u64, "importing");
    let sum = core.import(&parsed.messages, args.batch, super::track(&bar))?;
    bar.finish_and_clear();
    let mut embedded = 0;
    if !args.no_embed && core.embedder().is_some() {
        let pending = core.store().embed_queue_len()?;
        let bar = super::progress_bar(!args.json, pending, "embedding");
        embedded = core.embed_all_pending(super::track(&bar))?;
        bar.finish_and_clear();
    }
    let s = Summary {
        chats: parsed.chats,
        imported: sum.imported,
        skipped: parsed.skipped,
        duplicates: sum.duplicates,
        embedded,
        seconds: t0.elapsed().as_secs_f64(),
    };
    if args.json {
        return super::print_json(&s);
    }
    super::say(
        cfg,
        crate::i18n::Line::new("cli-imported")
            .num("imported", s.imported)
            .num("chats", s.chats)
            .num("skipped", s.skipped)
            .num("dups", s.duplicates)
            .num("embedded", s.embedded)
            .text("secs", format!("{:.1}", s.seconds)),
    );
    Ok(())
}
