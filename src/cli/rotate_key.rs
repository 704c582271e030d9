//! `mnemo rotate-key`: a new key for signing inline buttons.
//!
//! The old key stays valid for `buttons.key_grace_days`, so buttons already
//! in chats keep working for a while. A running `mnemo serve` picks the new
//! key up at its next start. With `MNEMO_CALLBACK_SECRET` set the key comes
//! from that secret: change the secret instead (the key generated before is
//! then honoured for the grace period automatically).

use crate::config::Config;
use crate::i18n::Line;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: {"fingerprint": "...", "previous_valid_until": unix_s}.
    #[arg(long)]
    json: bool,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    if crate::config::callback_secret().is_some() {
        anyhow::bail!(
            "the button key comes from MNEMO_CALLBACK_SECRET; to rotate it, change that secret"
        );
    }
    let dir = cfg.data_dir()?;
    let grace = i64::from(cfg.buttons.key_grace_days) * 86_400;
    let ring = crate::buttons::Keyring::rotate(&dir, grace, crate::core::now_ms() / 1000)?;
    let until = ring.previous_expires_at();
    if args.json {
        return super::print_json(&serde_json::json!({
            "fingerprint": ring.fingerprint(),
            "previous_valid_until": until,
        }));
    }
    let until = until.map_or_else(|| "-".to_owned(), |t| crate::core::format_date(t * 1000));
    super::say(
        cfg,
        Line::new("cli-key-rotated")
            .text("fingerprint", ring.fingerprint())
            .text("until", until),
    );
    Ok(())
}
