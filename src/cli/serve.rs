//! `mnemo serve`: the Telegram bot, until SIGTERM or SIGINT.
//!
//! Writes `serve.pid` (0600) into the data dir so that other commands can name
//! the process holding the database, and removes it on the way out.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::watch;

use crate::config::{bot_token, Config};
use crate::store::PID_FILE;

pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let token =
        bot_token().context("TELEGRAM_BOT_TOKEN is not set; `mnemo chat` works without it")?;
    let core = Arc::new(super::open_core(cfg)?);
    let pid = PidFile::create(cfg.data_dir()?.join(PID_FILE))?;
    let worker = crate::memory::worker::EmbedWorker::spawn(core.clone());
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let res = rt.block_on(async {
        let core = core.clone();
        let (tx, rx) = watch::channel(false);
        tokio::spawn(async move {
            let mut term = signal(SignalKind::terminate()).expect("SIGTERM handler");
            let mut int = signal(SignalKind::interrupt()).expect("SIGINT handler");
            tokio::select! {
                _ = term.recv() => tracing::info!("SIGTERM: stopping"),
                _ = int.recv() => tracing::info!("SIGINT: stopping"),
            }
            let _ = tx.send(true);
            // A second signal means "now".
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            tracing::warn!("second signal: exiting at once");
            std::process::exit(130);
        });
        crate::channels::telegram::run(cfg, core.clone(), token, rx).await
    });
    // Do not wait for blocking tasks beyond a moment: everything is committed.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    worker.stop();
    core.persist();
    drop(pid);
    res
}

struct PidFile(PathBuf);

impl PidFile {
    fn create(path: PathBuf) -> anyhow::Result<PidFile> {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        writeln!(f, "{}", std::process::id())?;
        Ok(PidFile(path))
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
