//! `mnemo recall <query>`: search notes from the command line.
//!
//! `--stdin` reads one query per line and writes one JSON array per line,
//! loading the model once (for scripted evaluation).

use std::io::{BufRead, Write};

use serde::Serialize;

use crate::config::Config;
use crate::core::{format_date, Core, Hit};
use crate::i18n::{I18n, Line};
use crate::memory::recall::Parts;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Words to look for (or use --stdin).
    #[arg(required_unless_present = "stdin", num_args = 1..)]
    query: Vec<String>,
    /// Only notes of this chat and the history imported from an export with
    /// this chat id (the console is chat 0).
    #[arg(long)]
    chat: Option<i64>,
    /// Number of hits.
    #[arg(long, short)]
    k: Option<usize>,
    /// Print a JSON array of hits.
    #[arg(long)]
    json: bool,
    /// Read one query per line from stdin; print one JSON array per line.
    #[arg(long)]
    stdin: bool,
    /// Show each component of the score.
    #[arg(long)]
    explain: bool,
}

/// One hit as printed by `--json`.
#[derive(Debug, Serialize)]
pub struct JsonHit {
    pub id: u64,
    pub chat_id: i64,
    pub message_id: Option<i64>,
    pub text: String,
    /// Who wrote it, when known (imported chats).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    pub score: f32,
    /// RFC 3339.
    pub created_at: String,
    pub source: &'static str,
    /// Someone marked it outdated with the ⌛ button.
    pub outdated: bool,
    /// Shown as a match (`recall.relevance_floor`, `recall.beside_floor`,
    /// and for turns the cross-encoder's part: see `memory::recall::relevant`);
    /// chat shows the others only behind
    /// "more", or as the closest one when none is.
    pub relevant: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Parts>,
}

fn json_hit(h: &Hit, explain: bool) -> JsonHit {
    JsonHit {
        id: h.note.id,
        // An import space shows as the export's chat id.
        chat_id: crate::store::shown_chat(h.note.chat_id),
        message_id: h.note.message_id,
        text: h.note.text.clone(),
        author: h.note.author.clone(),
        score: h.score,
        created_at: chrono::DateTime::from_timestamp_millis(h.note.created_at)
            .unwrap_or_default()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        source: h.note.source.as_str(),
        outdated: h.outdated,
        relevant: h.relevant,
        explain: explain.then_some(h.parts),
    }
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let app = crate::app::App::open(cfg)?;
    let core = app.core();
    catch_up(core)?;
    let k = args.k.unwrap_or(cfg.recall.default_k);
    if args.stdin {
        let stdin = std::io::stdin();
        let mut out = std::io::stdout().lock();
        for line in stdin.lock().lines() {
            let q = line?;
            let hits = if q.trim().is_empty() {
                Vec::new()
            } else {
                core.recall(&q, args.chat, k)?
            };
            let arr: Vec<JsonHit> = hits.iter().map(|h| json_hit(h, args.explain)).collect();
            writeln!(out, "{}", serde_json::to_string(&arr)?)?;
            out.flush()?;
        }
        return Ok(());
    }
    let query = args.query.join(" ");
    let hits = core.recall(&query, args.chat, k)?;
    if args.json {
        let out: Vec<JsonHit> = hits.iter().map(|h| json_hit(h, args.explain)).collect();
        return super::print_json(&out);
    }
    let i18n = I18n::new();
    let lang = &cfg.general.default_lang;
    if hits.is_empty() {
        println!(
            "{}",
            i18n.render_plain(lang, &Line::new("cli-recall-empty"))
        );
    } else if !hits.iter().any(|h| h.relevant) {
        println!(
            "{}",
            i18n.render_plain(lang, &Line::new("cli-recall-none-relevant"))
        );
    }
    for h in hits {
        let line = Line::new("cli-recall-hit")
            .num("id", h.note.id)
            .text("date", format_date(h.note.created_at))
            .num("chat", crate::store::shown_chat(h.note.chat_id))
            .key("source", &format!("source-{}", h.note.source.as_str()))
            .text("score", format!("{:.3}", h.score))
            .key(
                "flag",
                if h.relevant {
                    "cli-recall-relevant"
                } else {
                    "cli-recall-closest"
                },
            )
            .text("text", h.note.text.clone());
        println!("{}", i18n.render_plain(lang, &line));
        if args.explain {
            let p = h.parts;
            let line = Line::new("cli-recall-explain")
                .text("lex", format!("{:.3}", p.lexical))
                .text("bm25", format!("{:.2}", p.bm25))
                .text("vec", format!("{:.3}", p.vector))
                .text("cos", format!("{:.3}", p.cosine))
                .text("rec", format!("{:.3}", p.recency))
                .text("fb", format!("{:+.3}", p.feedback));
            println!("{}", i18n.render_plain(lang, &line));
            let line = Line::new("cli-recall-explain-more")
                .text("spk", format!("{:.3}", p.speaker))
                .text("date", format!("{:.3}", p.date))
                .text("when", format!("{:.3}", p.when))
                .text("ask", format!("{:+.3}", p.question))
                .text("sit", format!("{:.3}", p.sitting))
                .text("rel", format!("{:.3}", p.relevance))
                .text(
                    "xe",
                    p.rerank.map_or_else(|| "-".into(), |l| format!("{l:.2}")),
                );
            println!("{}", i18n.render_plain(lang, &line));
        }
    }
    Ok(())
}

/// Embeds notes still queued (say, just typed into `mnemo chat`) so the
/// answer covers everything stored.
fn catch_up(core: &Core) -> anyhow::Result<()> {
    let pending = core.store().embed_queue_len()?;
    if pending == 0 || core.embedder().is_none() {
        return Ok(());
    }
    let bar = super::progress_bar(pending > 200, pending, "embedding new notes");
    core.embed_all_pending(super::track(&bar))?;
    bar.finish_and_clear();
    Ok(())
}
