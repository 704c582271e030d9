//! `mnemo backup [--to DIR]`, `mnemo backup verify FILE` and
//! `mnemo restore FILE [--force]`: see [`crate::backup`].
//!
//! While `serve` or `chat` runs it holds the database, so `mnemo backup`
//! asks that process over the control socket (`app::control`) to write the
//! archive from its own store; otherwise it opens the store itself.
//! `restore` never runs beside a serving mnemo: it refuses instead.

use std::path::{Path, PathBuf};

use anyhow::Context;

use crate::app::control::{self, Request};
use crate::backup::{self, Outcome, Phase};
use crate::config::Config;
use crate::i18n::{I18n, Line};
use crate::store::Store;

#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Where the archive goes (default: backup.dir, else <data dir>/backups).
    #[arg(long, value_name = "DIR")]
    to: Option<PathBuf>,
    /// Print JSON: {"archive", "bytes", "sha256", "notes", ...}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
pub enum Cmd {
    /// Restore an archive into a temporary dir and check it against its manifest.
    Verify(VerifyArgs),
}

#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The archive (mnemo-backup-….tar.zst).
    file: PathBuf,
    /// Print JSON: {"archive", "ok", "notes", ..., "error"?}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The archive (mnemo-backup-….tar.zst).
    file: PathBuf,
    /// Restore over a data dir that holds data (which is moved aside, not deleted).
    #[arg(long)]
    force: bool,
    /// Print JSON: {"archive", "data_dir", "moved_aside", "notes", ...}.
    #[arg(long)]
    json: bool,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    match &args.cmd {
        Some(Cmd::Verify(v)) => verify(cfg, v),
        None => write(cfg, args),
    }
}

fn write(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let data = cfg.data_dir()?;
    let to = args.to.as_deref().map(absolute).transpose()?;
    let req = Request::Backup {
        to: to.as_ref().map(|p| p.display().to_string()),
    };
    let o: Outcome = match control::ask(&data, &req)? {
        Some(v) => serde_json::from_value(v).context("unreadable answer from the running mnemo")?,
        None => {
            let dir = match to {
                Some(d) => d,
                None => cfg.backup_dir()?,
            };
            let store = Store::open(&data)?;
            let bar = super::progress_bar(!args.json, 0, "");
            let i18n = I18n::new();
            let mut phase = None;
            let o = backup::backup(&store, &dir, &mut |p, done, total| {
                if phase != Some(p) {
                    phase = Some(p);
                    let key = match p {
                        Phase::Snapshot => "cli-backup-phase-snapshot",
                        Phase::Pack => "cli-backup-phase-pack",
                        Phase::Verify => "cli-backup-phase-verify",
                    };
                    bar.set_message(i18n.render_plain(&cfg.general.default_lang, &Line::new(key)));
                }
                bar.set_length(total);
                bar.set_position(done);
            });
            bar.finish_and_clear();
            o?
        }
    };
    if args.json {
        return super::print_json(&o);
    }
    super::say(
        cfg,
        Line::new("cli-backup-written")
            .text("archive", o.archive.display().to_string())
            .text("size", mb(o.bytes))
            .num("notes", o.notes)
            .num("votes", o.votes)
            .num("todos", o.todos)
            .num("audio", o.audio_files)
            .text("secs", format!("{:.1}", o.write_secs + o.verify_secs)),
    );
    super::say(cfg, Line::new("cli-backup-sha256").text("sha256", o.sha256));
    Ok(())
}

fn verify(cfg: &Config, args: &VerifyArgs) -> anyhow::Result<()> {
    let checked = backup::verify(&args.file);
    let report = backup::Report::of(&args.file, &checked);
    if args.json {
        super::print_json(&report)?;
    }
    let m = checked?;
    if !args.json {
        super::say(
            cfg,
            Line::new("cli-backup-verified")
                .text("archive", args.file.display().to_string())
                .text("created", m.created_at)
                .num("notes", m.counts.notes)
                .num("votes", m.counts.votes)
                .num("todos", m.counts.todos)
                .num("audio", m.counts.audio_files)
                .num("files", m.files.len() as u64),
        );
    }
    Ok(())
}

pub fn restore(cfg: &Config, args: &RestoreArgs) -> anyhow::Result<()> {
    let r = backup::restore(&args.file, &cfg.data_dir()?, args.force)?;
    if args.json {
        return super::print_json(&r);
    }
    super::say(
        cfg,
        Line::new("cli-restored")
            .text("archive", r.archive.display().to_string())
            .text("dir", r.data_dir.display().to_string())
            .num("notes", r.notes)
            .num("votes", r.votes)
            .num("todos", r.todos)
            .num("audio", r.audio_files),
    );
    if let Some(a) = &r.moved_aside {
        super::say(
            cfg,
            Line::new("cli-restored-aside").text("aside", a.display().to_string()),
        );
    }
    Ok(())
}

fn absolute(p: &Path) -> anyhow::Result<PathBuf> {
    Ok(if p.is_absolute() {
        p.to_path_buf()
    } else {
        std::env::current_dir()?.join(p)
    })
}

/// Bytes as "12.3 MB".
fn mb(bytes: u64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}
