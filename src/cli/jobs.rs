//! `mnemo jobs`: the background jobs, their schedules, last and next runs.
//!
//! While `serve` or `chat` runs it holds the database, so the answer comes
//! from that process over the control socket (`app::control`); otherwise the
//! job records are read from the store directly.

use crate::app::control::{self, Request};
use crate::config::Config;
use crate::i18n::Line;
use crate::jobs::{self, JobStatus};
use crate::store::Store;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: [{"name", "schedule", "last_run", "last_outcome", "next_run", ...}].
    #[arg(long)]
    json: bool,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let dir = cfg.data_dir()?;
    let list: Vec<JobStatus> = match control::ask(&dir, &Request::Jobs)? {
        Some(v) => serde_json::from_value(v)?,
        None => {
            let store = Store::open(&dir)?;
            jobs::status(&store, &jobs::catalog(cfg)?, chrono::Utc::now())?
        }
    };
    if args.json {
        return super::print_json(&list);
    }
    for j in &list {
        let line = Line::new("cli-job")
            .text("name", j.name.clone())
            .text("schedule", j.schedule.clone());
        let line = match &j.last_run {
            Some(t) => line.text("last", t.clone()),
            None => line.key("last", "cli-job-never"),
        };
        let line = match &j.next_run {
            Some(t) => line.text("next", t.clone()),
            None => line.key("next", "cli-job-off"),
        };
        let line = match (&j.last_outcome, &j.last_detail) {
            (Some(o), Some(d)) => line.text("outcome", format!("{o}: {d}")),
            _ => line.key("outcome", "cli-job-never"),
        };
        super::say(cfg, line);
    }
    Ok(())
}
