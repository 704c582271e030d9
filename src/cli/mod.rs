//! Command-line interface: one file per subcommand, this file parses and
//! dispatches. Every command that prints results takes `--json`.

mod backup;
mod chat;
mod digest;
mod doctor;
mod import;
mod jobs;
mod models;
mod recall;
mod reindex;
mod repair;
mod retry_voice;
mod rotate_key;
mod serve;
mod stats;
mod transcribe;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};

#[derive(Debug, Parser)]
#[command(name = "mnemo", version, about = "A private, local-first memory bot", long_about = None)]
pub struct Cli {
    /// A config file layered over the embedded defaults (also: MNEMO_CONFIG).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    /// More of mnemo's own log: -v one level up (warn → info → debug → trace), -vv two.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve Telegram if TELEGRAM_BOT_TOKEN is set, else open the console (the default).
    Run,
    /// Serve the Telegram bot (needs TELEGRAM_BOT_TOKEN).
    Serve,
    /// Talk to mnemo in this terminal; also reads piped stdin, one message per line.
    Chat,
    /// Search notes.
    Recall(recall::Args),
    /// Show counts.
    Stats(stats::Args),
    /// Check config, data dir, database, models and token; exit non-zero when unhealthy.
    Doctor(doctor::Args),
    /// Fetch or check the model files.
    #[command(subcommand)]
    Models(models::Cmd),
    /// Rebuild every derived index (lexical, vectors) from the database.
    Reindex(reindex::Args),
    /// Import a Telegram Desktop chat export (result.json).
    Import(import::Args),
    /// Replace the key inline buttons are signed with (the old one stays valid for a grace period).
    RotateKey(rotate_key::Args),
    /// Transcribe a local voice note (OGG/Opus) or WAV file with the voice-note path.
    Transcribe(transcribe::Args),
    /// Transcribe again the voice notes that failed (after fixing the cause).
    RetryVoice(retry_voice::Args),
    /// List the background jobs with their schedules, last and next runs.
    Jobs(jobs::Args),
    /// Print a digest of a chat (not sent).
    Digest(digest::Args),
    /// Digest schedules and the delivery ledger.
    #[command(subcommand)]
    Schedule(digest::ScheduleCmd),
    /// Write a verified backup archive (database, voice audio, signing key); `backup verify FILE` checks one.
    Backup(backup::Args),
    /// Restore a backup archive into the data dir (mnemo must be stopped).
    Restore(backup::RestoreArgs),
    /// List damaged records (values that no longer decode); --export their bytes, --remove them (mnemo must be stopped).
    Repair(repair::Args),
}

/// Parses arguments, runs the command, maps errors to a message and exit 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let cfg = match Config::load(cli.config.as_deref()) {
        Ok(c) => c,
        Err(e) => {
            // Doctor reports a broken config as a failed check.
            if let Some(Command::Doctor(args)) = &cli.command {
                return doctor::run_without_config(args, &e);
            }
            eprintln!("error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let format = cli.log_format.unwrap_or(cfg.log.format);
    let command = cli.command.unwrap_or(Command::Run);
    // Only a server logs at the configured level; one-shot commands and the
    // console keep to warnings unless -v or RUST_LOG says otherwise.
    let server = matches!(command, Command::Serve)
        || matches!(command, Command::Run if crate::config::bot_token().is_some());
    crate::logging::init(
        format,
        if server { &cfg.log.level } else { "warn" },
        cli.verbose,
    );
    let result = match command {
        Command::Run if crate::config::bot_token().is_some() => serve::run(&cfg),
        Command::Run | Command::Chat => chat::run(&cfg),
        Command::Serve => serve::run(&cfg),
        Command::Recall(a) => recall::run(&cfg, &a),
        Command::Stats(a) => stats::run(&cfg, &a),
        Command::Doctor(a) => return doctor::run(&cfg, &a),
        Command::Models(c) => models::run(&cfg, &c),
        Command::Reindex(a) => reindex::run(&cfg, &a),
        Command::Import(a) => import::run(&cfg, &a),
        Command::RotateKey(a) => rotate_key::run(&cfg, &a),
        Command::Transcribe(a) => transcribe::run(&cfg, &a),
        Command::RetryVoice(a) => retry_voice::run(&cfg, &a),
        Command::Jobs(a) => jobs::run(&cfg, &a),
        Command::Digest(a) => digest::run(&cfg, &a),
        Command::Schedule(c) => digest::schedule(&cfg, &c),
        Command::Backup(a) => backup::run(&cfg, &a),
        Command::Restore(a) => backup::restore(&cfg, &a),
        Command::Repair(a) => repair::run(&cfg, &a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::debug!(error = ?e, "command failed");
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// The tokio runtime of the long-running commands: multi-threaded, so the
/// App's background runs while the main thread serves a channel.
fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    Ok(tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?)
}

/// A progress bar on stderr for `total` items (hidden when `show` is false
/// or stderr is not a terminal).
pub fn progress_bar(show: bool, total: u64, what: &str) -> indicatif::ProgressBar {
    use std::io::IsTerminal;
    if !show || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(what.to_owned());
    bar
}

/// A `(done, total)` progress callback that drives `bar`.
pub fn track(bar: &indicatif::ProgressBar) -> impl FnMut(u64, u64) + '_ {
    move |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    }
}

/// Opens an input file that may be at most `cap` bytes (`key` names the
/// setting). A regular file over the cap is refused from its metadata,
/// before a byte is read; for anything else (pipes, devices) the caller
/// must read at most `cap + 1` bytes and refuse when it got more. Returns
/// the file and whether it is a regular file.
fn open_capped(
    path: &std::path::Path,
    cap: u64,
    key: &str,
) -> anyhow::Result<(std::fs::File, bool)> {
    use anyhow::Context;
    let f = std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let meta = f
        .metadata()
        .with_context(|| format!("cannot read {}", path.display()))?;
    if meta.is_dir() {
        anyhow::bail!("{} is a directory", path.display());
    }
    if meta.is_file() && meta.len() > cap {
        anyhow::bail!(
            "{} is {} bytes, more than the limit of {cap} ({key}); nothing was read",
            path.display(),
            meta.len()
        );
    }
    Ok((f, meta.is_file()))
}

/// Prints a localised line (plain text) in the configured language.
fn say(cfg: &Config, line: crate::i18n::Line) {
    use crate::i18n::I18n;
    println!(
        "{}",
        I18n::new().render_plain(&cfg.general.default_lang, &line)
    );
}

/// Prints `value` as pretty JSON on stdout.
fn print_json(value: &impl serde::Serialize) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
