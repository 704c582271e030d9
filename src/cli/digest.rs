//! `mnemo digest` (a digest printed, not sent) and `mnemo schedule list`
//! (every chat's digest schedules and the delivery ledger).
//!
//! Like `mnemo jobs`, both ask the running bot over the control socket when
//! it holds the database, and read the store themselves otherwise.

use crate::app::control::{self, Request};
use crate::app::{App, SCHEDULE_LIST_ROWS};
use crate::config::Config;
use crate::digest::report::{self, DigestReport, ScheduleList};
use crate::digest::Period;
use crate::i18n::Line;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The period up to now: day or week (or hour).
    #[arg(long, default_value = "day")]
    period: String,
    /// The chat (default: the owner's private chat).
    #[arg(long, allow_hyphen_values = true)]
    chat: Option<i64>,
    /// Print JSON: {"chat_id", "period", "from", "to", "text", "sections", "source", "tokens", "cost_usd"}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCmd {
    /// Every chat's schedules with their next runs, and the delivery ledger.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Print JSON: {"schedules": [...], "ledger": [...]}.
    #[arg(long)]
    json: bool,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let period = Period::parse(&args.period)
        .filter(|_| !args.period.trim().is_empty())
        .ok_or_else(|| {
            anyhow::anyhow!(
                "--period must be day or week (or hour), not {:?}",
                args.period
            )
        })?;
    let dir = cfg.data_dir()?;
    let ask = Request::Digest {
        chat: args.chat,
        period: period.as_str().into(),
    };
    let d: DigestReport = match control::ask(&dir, &ask)? {
        Some(v) => serde_json::from_value(v)?,
        None => {
            let app = App::open(cfg)?;
            let rt = super::runtime()?;
            app.enable_summaries(rt.handle().clone())?;
            let chat = match args.chat {
                Some(c) => c,
                None => report::default_chat(app.core())?,
            };
            report::digest(app.core(), chat, period)?
        }
    };
    if args.json {
        return super::print_json(&d);
    }
    println!("{}", d.text);
    Ok(())
}

pub fn schedule(cfg: &Config, cmd: &ScheduleCmd) -> anyhow::Result<()> {
    let ScheduleCmd::List(args) = cmd;
    let dir = cfg.data_dir()?;
    let list: ScheduleList = match control::ask(&dir, &Request::Schedules)? {
        Some(v) => serde_json::from_value(v)?,
        None => {
            let app = App::open(cfg)?;
            report::schedule_list(app.core(), SCHEDULE_LIST_ROWS)?
        }
    };
    if args.json {
        return super::print_json(&list);
    }
    for s in &list.schedules {
        let line = Line::new("cli-schedule")
            .text(
                "chat",
                s.chat_id.map_or_else(|| "*".into(), |c| c.to_string()),
            )
            .text("name", s.name.clone())
            .text("cron", s.cron.clone())
            .text("tz", s.timezone.clone());
        super::say(
            cfg,
            match &s.next_run {
                Some(t) => line.text("next", t.clone()),
                None => line.key("next", "cli-job-off"),
            },
        );
    }
    for l in &list.ledger {
        super::say(
            cfg,
            Line::new("cli-ledger")
                .num("chat", l.chat_id)
                .text("schedule", l.schedule.clone())
                .text("slot", l.slot.clone())
                .key("state", &format!("slot-{}", l.state))
                .key("late", if l.late { "digest-late" } else { "flag-none" }),
        );
    }
    Ok(())
}
