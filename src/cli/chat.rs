//! `mnemo chat`: the console channel on the local data dir.

use crate::config::Config;
use crate::i18n::I18n;

pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let core = super::open_core(cfg)?;
    crate::channels::console::run_stdio(&core, &I18n::new())
}
