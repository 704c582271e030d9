//! `mnemo chat`: the console channel on the local data dir.
//!
//! The App runs its background (embedding, upkeep jobs, the control socket)
//! on the runtime's threads while this thread reads stdin; at the end of
//! input the App closes: what is left to embed stays queued for next time.

use crate::app::App;
use crate::config::Config;
use crate::i18n::I18n;

pub fn run(cfg: &Config) -> anyhow::Result<()> {
    let mut app = App::open_serving(cfg)?;
    let rt = super::runtime()?;
    rt.block_on(app.start())?;
    let res = {
        let _in_runtime = rt.enter();
        crate::channels::console::run_stdio(app.core(), &I18n::new())
    };
    rt.block_on(app.close());
    rt.shutdown_timeout(std::time::Duration::from_secs(1));
    res
}
