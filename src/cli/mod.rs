//! Command-line interface: one file per subcommand, this file parses and
//! dispatches. Every command that prints results takes `--json`.

mod chat;
mod doctor;
mod import;
mod models;
mod recall;
mod reindex;
mod retry_voice;
mod rotate_key;
mod serve;
mod stats;
mod transcribe;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, LogFormat};
use crate::core::{Core, Settings};
use crate::store::Store;

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

/// Opens the store and builds the core (with its derived indexes). When the
/// model files are missing or damaged, mnemo still runs — notes are stored
/// and queued for embedding, recall is lexical — and says how to fix it.
pub fn open_core(cfg: &Config) -> anyhow::Result<Core> {
    open_core_with(cfg, cfg.models.embed_threads)
}

/// Most embedding sessions bulk work opens: each holds its own copy of the
/// model (~180 MB), and calls of 8 short notes stop scaling long before a
/// big machine's core count.
const MAX_BULK_SESSIONS: usize = 4;

/// [`open_core`] for bulk work (import, reindex): the model may use every
/// core (up to [`MAX_BULK_SESSIONS`]), since nothing else competes for them.
pub fn open_core_bulk(cfg: &Config) -> anyhow::Result<Core> {
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    open_core_with(
        cfg,
        cfg.models.embed_threads.max(cores.min(MAX_BULK_SESSIONS)),
    )
}

fn open_core_with(cfg: &Config, threads: usize) -> anyhow::Result<Core> {
    let dir = cfg.data_dir()?;
    let store = Store::open(&dir)?;
    let embedder = load_embedder(cfg, threads);
    let keys = load_keyring(cfg, &dir)?;
    Ok(Core::with_embedder(store, Settings::from_config(cfg), embedder)?.with_keyring(keys))
}

/// The button signing keys: from `MNEMO_CALLBACK_SECRET`, else the key file
/// in the data dir (created on first start, mode 0600). Never logged.
pub fn load_keyring(
    cfg: &Config,
    dir: &std::path::Path,
) -> anyhow::Result<crate::buttons::Keyring> {
    let grace = i64::from(cfg.buttons.key_grace_days) * 86_400;
    let now = crate::core::now_ms() / 1000;
    Ok(crate::buttons::Keyring::load_or_create(
        dir,
        crate::config::callback_secret().as_deref(),
        grace,
        now,
    )?)
}

/// The embedding model, or `None` with a warning that names the fix.
pub fn load_embedder(
    cfg: &Config,
    threads: usize,
) -> Option<std::sync::Arc<crate::memory::embed::Embedder>> {
    let dir = match cfg.models_dir() {
        Ok(d) => d,
        Err(e) => {
            tracing::warn!("no models dir: {e:#}");
            return None;
        }
    };
    match crate::memory::embed::Embedder::shared(&crate::models::ModelSet::new(dir), threads) {
        Ok(e) => Some(e),
        Err(e) => {
            tracing::warn!("semantic recall is off: {e:#}");
            use crate::i18n::{I18n, Line};
            let line = Line::new("cli-semantic-off").text("reason", format!("{e:#}"));
            eprintln!(
                "{}",
                I18n::new().render_plain(&cfg.general.default_lang, &line)
            );
            None
        }
    }
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
