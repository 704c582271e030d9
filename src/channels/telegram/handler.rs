//! The dptree handler tree: Telegram updates → core [`Inbound`]s.
//!
//! Endpoints are small: translate, call the core on a blocking thread (redb
//! commits are synchronous), wake the outbox sender. They never send replies
//! themselves; the [`super::send::Sender`] does, from the outbox.

use std::sync::Arc;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{MediaKind, MessageKind};
use tokio::sync::Notify;

use teloxide::types::ParseMode;

use super::render;
use crate::core::{Body, Core, CoreError, Inbound, Origin, Reply};
use crate::i18n::{self, I18n, Line};

/// The handler tree, in the style of teloxide's examples.
pub fn schema() -> UpdateHandler<anyhow::Error> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_edited_message().endpoint(on_edited_message))
        // Anything else (channel posts, member updates, …) is recorded as
        // processed so it leaves the inbox.
        .endpoint(on_other)
}

/// What the endpoints need besides the update itself.
#[derive(Clone)]
pub struct Deps {
    pub core: Arc<Core>,
    pub wake: Arc<Notify>,
    pub i18n: Arc<I18n>,
}

async fn on_message(bot: Bot, update: Update, msg: Message, deps: Deps) -> anyhow::Result<()> {
    let Some(body) = body_of(&msg, false) else { return discard(deps.core, &update).await };
    handle(bot, deps, inbound(&update, &msg, body)).await
}

async fn on_edited_message(bot: Bot, update: Update, msg: Message, deps: Deps) -> anyhow::Result<()> {
    let Some(body) = body_of(&msg, true) else { return discard(deps.core, &update).await };
    handle(bot, deps, inbound(&update, &msg, body)).await
}

async fn on_other(update: Update, deps: Deps) -> anyhow::Result<()> {
    discard(deps.core, &update).await
}

async fn discard(core: Arc<Core>, update: &Update) -> anyhow::Result<()> {
    let id = u64::from(update.id.0);
    tokio::task::spawn_blocking(move || core.discard_update(id)).await??;
    Ok(())
}

async fn handle(bot: Bot, deps: Deps, ev: Inbound) -> anyhow::Result<()> {
    let (chat_id, reply_to, lang) = (ev.chat_id, ev.message_id, ev.user_lang.clone());
    let core = deps.core.clone();
    match tokio::task::spawn_blocking(move || core.handle(ev)).await? {
        Ok(outcomes) => {
            if !outcomes.is_empty() {
                deps.wake.notify_one();
            }
            Ok(())
        }
        // The update stays in the inbox and is handled again on the next
        // start. Tell the user directly: the outbox lives in the failing store.
        Err(CoreError::Store(e)) => {
            let lang = i18n::negotiate(lang.as_deref(), &deps.core.settings().default_lang);
            let reply = Reply { chat_id, reply_to, lang, lines: vec![Line::new("storage-error")], note_id: None, chunks_sent: 0 };
            for chunk in render::render(&deps.i18n, &reply) {
                let _ = bot.send_message(ChatId(chat_id), chunk).parse_mode(ParseMode::Html).await;
            }
            Err(anyhow::Error::new(e).context("storing an update failed; it stays in the inbox"))
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

fn inbound(update: &Update, msg: &Message, body: Body) -> Inbound {
    let user = msg.from.as_ref();
    Inbound {
        origin: Origin::Telegram { update_id: u64::from(update.id.0) },
        chat_id: msg.chat.id.0,
        // No sender (channel posts): id 0 is never allowed.
        user_id: user.map_or(0, |u| u.id.0 as i64),
        user_lang: user.and_then(|u| u.language_code.clone()),
        message_id: Some(i64::from(msg.id.0)),
        reply_to: msg.reply_to_message().map(|m| i64::from(m.id.0)),
        at: msg.edit_date().unwrap_or(&msg.date).timestamp_millis(),
        body,
    }
}

/// What the core should see of a message; `None` for service messages
/// (joins, pins, …), which need no answer.
fn body_of(msg: &Message, edited: bool) -> Option<Body> {
    let MessageKind::Common(common) = &msg.kind else { return None };
    let kind = match &common.media_kind {
        MediaKind::Text(t) => {
            return Some(if edited { Body::Edited(t.text.clone()) } else { Body::Text(t.text.clone()) });
        }
        MediaKind::Sticker(_) => "sticker",
        MediaKind::Photo(_) => "photo",
        MediaKind::Video(_) | MediaKind::VideoNote(_) | MediaKind::Animation(_) => "video",
        MediaKind::Document(_) => "document",
        MediaKind::Audio(_) => "audio",
        MediaKind::Voice(_) => "voice",
        MediaKind::Location(_) | MediaKind::Venue(_) => "location",
        MediaKind::Contact(_) => "contact",
        MediaKind::Poll(_) => "poll",
        _ => "other",
    };
    // Edits of media captions are not notes; ignore them quietly.
    if edited {
        return None;
    }
    Some(Body::Unsupported(kind))
}
