//! `mnemo stats`: counts, for people or (`--json`) for scripts.

use crate::config::Config;
use crate::i18n::Line;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: {"memories": N, "damaged": N, "chats": N, "outbox": N, "db_bytes": N, ...}.
    #[arg(long)]
    json: bool,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let app = crate::app::App::open(cfg)?;
    let s = app.core().stats()?;
    if args.json {
        return super::print_json(&s);
    }
    let line = Line::new("cli-stats")
        .num("memories", s.memories)
        .num("chats", s.chats)
        .num("outbox", s.outbox)
        .num("embedded", s.embedded)
        .num("pending", s.pending)
        .num("index", s.index_size)
        .text("path", s.db_path.clone())
        .text("size", crate::core::human_bytes(s.db_bytes))
        .num("helpful", s.feedback.helpful)
        .num("not_helpful", s.feedback.not_helpful)
        .num("outdated", s.feedback.outdated)
        .num("todos", s.items.todos_open)
        .num("done", s.items.todos_done)
        .num("decisions", s.items.decisions);
    let line = match &s.model {
        Some(m) => line.text("model", m.clone()),
        None => line.key("model", "model-none"),
    };
    super::say(cfg, line);
    if s.damaged > 0 {
        super::say(cfg, Line::new("cli-stats-damaged").num("count", s.damaged));
    }
    Ok(())
}
