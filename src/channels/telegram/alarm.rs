//! Telling the owner that the store refuses writes, and that it works
//! again.
//!
//! A health alert is queued in the outbox, in the same commit as the state
//! that says it was told — but while the store refuses writes (a full disk)
//! nothing can be queued, and waiting until space is back would tell the
//! owner only when it no longer matters. So this task watches the store's
//! state ([`crate::store::Store::watch`]) and:
//!
//! - when it fails, sends the alert **directly** (sendMessage, not the
//!   outbox) to where health alerts go — the admin chat or the owner —
//!   retrying every few seconds while Telegram does not take it. Whom to
//!   tell and in which language is read while the store works and kept;
//! - when commits have worked again for [`SETTLE`], queues the recovery
//!   through the outbox (durable, rate-limited like any alert) with both
//!   transitions in the alert log (`/alerts`) — and the alert before it if
//!   it never got out. A failure again within `SETTLE` is the same episode:
//!   told once.
//!
//! The health pass cannot commit while the store fails, and its disk check
//! counts a refused write only while the store is failed, so the health
//! path does not tell this condition a second time. Not durable: the state
//! of one episode lives in this process; a restart while the disk is full
//! tells again (once), and the recovery of an episode told by a process
//! that stopped is not announced.

use std::sync::Arc;
use std::time::Duration;

use teloxide::prelude::*;
use teloxide::types::ParseMode;

use super::render;
use crate::app::Shutdown;
use crate::core::Core;
use crate::i18n::I18n;
use crate::store::{Failure, StoreState};

/// How long commits must work before the recovery is told.
pub const SETTLE: Duration = Duration::from_secs(3);
/// Between tries of the direct alert while Telegram does not take it.
const RESEND: Duration = Duration::from_secs(5);
/// How often whom to tell is read again while the store works.
const REFRESH: Duration = Duration::from_secs(60);

pub async fn run(bot: Bot, core: Arc<Core>, i18n: Arc<I18n>, shutdown: Shutdown) {
    let mut state = core.store().watch();
    let mut target = None;
    loop {
        // Wait for a failure, keeping whom to tell fresh.
        let failure = loop {
            if let StoreState::Failed(f) = state.borrow_and_update().clone() {
                break f;
            }
            target = who(&core).await.or(target);
            tokio::select! {
                r = state.changed() => if r.is_err() { return },
                _ = tokio::time::sleep(REFRESH) => {}
                _ = shutdown.triggered() => return,
            }
        };
        let told = tell(
            &bot,
            &core,
            &i18n,
            target.as_ref(),
            &failure,
            &mut state,
            &shutdown,
        )
        .await;
        // Until commits work and keep working for SETTLE.
        loop {
            tokio::select! {
                r = state.wait_for(|s| *s == StoreState::Ok) => if r.is_err() { return },
                _ = shutdown.triggered() => return,
            }
            tokio::select! {
                _ = tokio::time::sleep(SETTLE) => {}
                _ = shutdown.triggered() => return,
            }
            if *state.borrow_and_update() == StoreState::Ok {
                break;
            }
        }
        let c = core.clone();
        let now = crate::core::now_ms();
        match tokio::task::spawn_blocking(move || c.storage_recovered(&failure, told, now)).await {
            Ok(Ok(_)) => tracing::info!(told, "storage recovery queued for the owner"),
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot queue the storage recovery"),
            Err(e) => tracing::error!(error = %e, "storage recovery panicked"),
        }
    }
}

/// (chat, language) health alerts go to, if anybody owns this mnemo and the
/// store can say.
async fn who(core: &Arc<Core>) -> Option<(i64, String)> {
    let c = core.clone();
    tokio::task::spawn_blocking(move || {
        let (chat, _) = c.admin_target().ok()??;
        Some((chat, c.chat_lang_or_default(chat).ok()?))
    })
    .await
    .ok()?
}

/// Sends the alert for `failure` directly, retrying every [`RESEND`] while
/// Telegram does not take it and the store still fails. True once sent.
async fn tell(
    bot: &Bot,
    core: &Arc<Core>,
    i18n: &I18n,
    target: Option<&(i64, String)>,
    failure: &Failure,
    state: &mut tokio::sync::watch::Receiver<StoreState>,
    shutdown: &Shutdown,
) -> bool {
    let Some((chat, lang)) = target else {
        tracing::warn!("the store refuses writes and nobody owns this mnemo yet: nobody to tell");
        return false;
    };
    let reply = core.storage_alert(failure, *chat, lang);
    loop {
        let mut sent = true;
        for chunk in render::render(i18n, &reply) {
            let r = bot
                .send_message(ChatId(*chat), chunk)
                .parse_mode(ParseMode::Html)
                .await;
            crate::health::signals().telegram_result("SendMessage", &r);
            if let Err(e) = r {
                tracing::warn!(error = %e, retry_in = ?RESEND, "cannot send the storage alert");
                sent = false;
                break;
            }
        }
        if sent {
            tracing::info!(chat, "the owner was told that the store refuses writes");
            return true;
        }
        tokio::select! {
            _ = tokio::time::sleep(RESEND) => {}
            _ = shutdown.triggered() => return false,
        }
        if *state.borrow() == StoreState::Ok {
            // Back before Telegram took it: the recovery says both.
            return false;
        }
    }
}
