//! `mnemo chat`: the console channel on the local data dir.

use crate::config::Config;
use crate::i18n::I18n;

pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let core = std::sync::Arc::new(super::open_core(cfg)?);
    // Embeds in the background while you type; what is left at exit stays
    // queued in the database for the next run.
    let worker = crate::memory::worker::EmbedWorker::spawn(core.clone());
    let res = crate::channels::console::run_stdio(&core, &I18n::new());
    worker.stop();
    core.persist();
    res
}
