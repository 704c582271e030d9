//! `mnemo serve`: the Telegram bot, until SIGTERM or SIGINT.
//!
//! Writes `serve.pid` (0600) into the data dir so that other commands can name
//! the process holding the database, and removes it on the way out. The first
//! signal stops the App (everything returns within the drain, what is still
//! queued stays in the store); a second one exits at once.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;

use crate::app::App;
use crate::config::{bot_token, Config};
use crate::store::PID_FILE;

pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let token =
        bot_token().context("TELEGRAM_BOT_TOKEN is not set; `mnemo chat` works without it")?;
    let mut app = App::open_serving(cfg)?;
    let pid = PidFile::create(cfg.data_dir()?.join(PID_FILE))?;
    let rt = super::runtime()?;
    let res = rt.block_on(async move {
        app.shutdown().on_signals()?;
        app.start().await?;
        let res = app.serve_telegram(token).await;
        app.close().await;
        res
    });
    // Do not wait for blocking tasks beyond a moment: everything is committed.
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
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
