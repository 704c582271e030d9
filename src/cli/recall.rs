//! `mnemo recall <query>`: search notes from the command line.

use serde::Serialize;

use crate::config::Config;
use crate::core::format_date;
use crate::i18n::{escape_html, html_to_plain, I18n, Line};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to look for.
    #[arg(required = true, num_args = 1..)]
    query: Vec<String>,
    /// Only notes of this chat (the console is chat 0).
    #[arg(long)]
    chat: Option<i64>,
    /// Number of hits.
    #[arg(long, short)]
    k: Option<usize>,
    /// Print a JSON array of hits.
    #[arg(long)]
    json: bool,
}

/// One hit as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct JsonHit {
    pub id: u64,
    pub chat_id: i64,
    pub message_id: Option<i64>,
    pub text: String,
    pub score: f32,
    /// RFC 3339.
    pub created_at: String,
    pub source: &'static str,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let core = super::open_core(cfg)?;
    let query = args.query.join(" ");
    let k = args.k.unwrap_or(cfg.recall.default_k);
    let hits = core.recall(&query, args.chat, k)?;
    if args.json {
        let out: Vec<JsonHit> = hits
            .iter()
            .map(|h| JsonHit {
                id: h.note.id,
                chat_id: h.note.chat_id,
                message_id: h.note.message_id,
                text: h.note.text.clone(),
                score: h.score,
                created_at: chrono::DateTime::from_timestamp_millis(h.note.created_at)
                    .unwrap_or_default()
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                source: h.note.source.as_str(),
            })
            .collect();
        return super::print_json(&out);
    }
    let i18n = I18n::new();
    let lang = &cfg.general.default_lang;
    if hits.is_empty() {
        println!("{}", html_to_plain(&i18n.render(lang, &Line::new("cli-recall-empty"), &escape_html)));
    }
    for h in hits {
        let line = Line::new("cli-recall-hit")
            .num("id", h.note.id)
            .text("date", format_date(h.note.created_at))
            .num("chat", h.note.chat_id)
            .key("source", &format!("source-{}", h.note.source.as_str()))
            .text("score", format!("{:.3}", h.score))
            .text("text", h.note.text.clone());
        println!("{}", html_to_plain(&i18n.render(lang, &line, &escape_html)));
    }
    Ok(())
}
