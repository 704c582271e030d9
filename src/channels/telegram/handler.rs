//! The dptree handler tree: Telegram updates → core [`Inbound`]s.
//!
//! Endpoints are small: translate, call the core on a blocking thread (redb
//! commits are synchronous), wake the outbox sender. They never send replies
//! themselves; the [`super::send::Sender`] does, from the outbox.

use std::sync::Arc;

use teloxide::dispatching::{UpdateFilterExt, UpdateHandler};
use teloxide::prelude::*;
use teloxide::types::{
    CallbackQuery, ChatMemberUpdated, InlineKeyboardButtonKind, InlineKeyboardMarkup, MediaKind,
    MessageKind,
};
use tokio::sync::Notify;

use teloxide::types::ParseMode;

use super::listener::store_works;
use super::render;
use crate::app::Shutdown;
use crate::core::{Answer, Body, Core, CoreError, Inbound, Origin, Outcome, Reply, VoiceIn};
use crate::i18n::{self, I18n, Line};

/// The handler tree, in the style of teloxide's examples.
pub fn schema() -> UpdateHandler<anyhow::Error> {
    dptree::entry()
        .branch(Update::filter_message().endpoint(on_message))
        .branch(Update::filter_edited_message().endpoint(on_edited_message))
        .branch(Update::filter_callback_query().endpoint(on_callback))
        .branch(Update::filter_my_chat_member().endpoint(on_my_member))
        // Anything else (channel posts, inline queries, business messages,
        // other member updates, …) is recorded as processed so it leaves
        // the inbox, and nothing is sent.
        .endpoint(on_other)
}

/// What the endpoints need besides the update itself.
#[derive(Clone)]
pub struct Deps {
    pub core: Arc<Core>,
    pub wake: Arc<Notify>,
    pub i18n: Arc<I18n>,
    /// Wakes the voice fetcher.
    pub voice: Arc<Notify>,
    /// A handler waiting for the store to work again gives up at the stop.
    pub shutdown: Shutdown,
}

async fn on_message(bot: Bot, update: Update, msg: Message, deps: Deps) -> anyhow::Result<()> {
    let Some(body) = body_of(&msg, false) else {
        // A service message (a join, a pin) from a group mnemo may not
        // serve: the member update that added it was missed; leave now.
        if is_group(&msg.chat) && !deps.core.serves_groups() {
            leave(&bot, msg.chat.id.0).await;
        }
        return discard(deps.core, &update).await;
    };
    handle(bot, deps, inbound(&update, &msg, body)).await
}

async fn on_edited_message(
    bot: Bot,
    update: Update,
    msg: Message,
    deps: Deps,
) -> anyhow::Result<()> {
    let Some(body) = body_of(&msg, true) else {
        return discard(deps.core, &update).await;
    };
    handle(bot, deps, inbound(&update, &msg, body)).await
}

/// mnemo's own membership changed. Added to a group (or supergroup): the
/// core decides whether it stays ([`Body::Added`]; a group it may not serve
/// gets [`Outcome::Leave`]). Anything else (left, kicked, a private chat
/// blocked) needs nothing.
async fn on_my_member(
    bot: Bot,
    update: Update,
    m: ChatMemberUpdated,
    deps: Deps,
) -> anyhow::Result<()> {
    let added =
        is_group(&m.chat) && m.new_chat_member.is_present() && !m.old_chat_member.is_present();
    if !added {
        return discard(deps.core, &update).await;
    }
    let ev = Inbound {
        origin: Origin::telegram(u64::from(update.id.0)).in_group(),
        chat_id: m.chat.id.0,
        user_id: m.from.id.0 as i64,
        user_lang: m.from.language_code.clone(),
        message_id: None,
        reply_to: None,
        at: m.date.timestamp_millis(),
        body: Body::Added,
    };
    handle(bot, deps, ev).await
}

/// Leaves a chat mnemo may not serve, without a word.
async fn leave(bot: &Bot, chat_id: i64) {
    match bot.leave_chat(ChatId(chat_id)).await {
        Ok(_) => tracing::info!(chat_id, "left a group mnemo may not serve"),
        Err(e) => tracing::warn!(chat_id, error = %e, "could not leave a group"),
    }
}

async fn on_other(update: Update, deps: Deps) -> anyhow::Result<()> {
    discard(deps.core, &update).await
}

async fn discard(core: Arc<Core>, update: &Update) -> anyhow::Result<()> {
    let id = u64::from(update.id.0);
    tokio::task::spawn_blocking(move || core.discard_update(id)).await??;
    Ok(())
}

/// `Core::handle` on a blocking thread.
async fn attempt(deps: &Deps, ev: Inbound) -> Result<Vec<Outcome>, CoreError> {
    let core = deps.core.clone();
    tokio::task::spawn_blocking(move || core.handle(ev))
        .await
        .map_err(|e| CoreError::Embed(format!("the handler panicked: {e}")))?
}

/// After a refused write: whether to handle the event again. When the
/// store refused it for a storage reason (a full disk) the event waits for
/// the store to work again — polling is paused meanwhile, so nothing
/// overtakes it. At the stop it gives up: the update stays in the inbox,
/// and the next start handles it.
async fn again(deps: &Deps, e: &CoreError) -> bool {
    if !e.is_storage() || !store_works(&deps.core, &deps.shutdown).await {
        return false;
    }
    tracing::info!("the store works again: handling a held update");
    // Never a tight loop, should the store flip back and forth.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    true
}

async fn handle(bot: Bot, deps: Deps, ev: Inbound) -> anyhow::Result<()> {
    let (chat_id, reply_to, lang) = (ev.chat_id, ev.message_id, ev.user_lang.clone());
    let voice = matches!(ev.body, Body::Voice(_));
    let (user, group) = (ev.user_id, ev.origin.group);
    let mut told = false;
    let result = loop {
        match attempt(&deps, ev.clone()).await {
            Err(e @ CoreError::Store(_)) => {
                // Tell the user directly (the outbox lives in the failing
                // store), once — a user mnemo serves: strangers learn
                // nothing; nobody while stopping.
                if !told && !deps.shutdown.is_triggered() && deps.core.serves_sender(user, group) {
                    told = true;
                    let lang = i18n::negotiate(lang.as_deref(), &deps.core.settings().default_lang);
                    let reply = Reply {
                        reply_to,
                        ..Reply::plain(chat_id, lang, vec![Line::new("storage-error")])
                    };
                    for chunk in render::render(&deps.i18n, &reply) {
                        let _ = bot
                            .send_message(ChatId(chat_id), chunk)
                            .parse_mode(ParseMode::Html)
                            .await;
                    }
                }
                if !again(&deps, &e).await {
                    break Err(e);
                }
            }
            other => break other,
        }
    };
    match result {
        Ok(outcomes) => {
            for o in &outcomes {
                match o {
                    Outcome::Leave { chat_id } => leave(&bot, *chat_id).await,
                    _ => deps.wake.notify_one(),
                }
            }
            if voice {
                deps.voice.notify_one();
            }
            Ok(())
        }
        // The update stays in the inbox and is handled again on the next
        // start.
        Err(CoreError::Store(e)) => {
            Err(anyhow::Error::new(e).context("storing an update failed; it stays in the inbox"))
        }
        Err(e) => Err(anyhow::Error::new(e)),
    }
}

/// A button press: verified and applied by the core, answered here at once
/// (Telegram shows a spinner until answerCallbackQuery, and an answer is
/// only accepted for a short while), then the pressed button is marked.
async fn on_callback(bot: Bot, update: Update, q: CallbackQuery, deps: Deps) -> anyhow::Result<()> {
    let data = q.data.clone().unwrap_or_default();
    let lang = q.from.language_code.clone();
    let Some(msg) = q.message.as_ref() else {
        // Presses on inline-mode messages: mnemo never sends those.
        let _ = answer(
            &bot,
            &deps,
            &q,
            &fallback_answer(&deps, lang.as_deref(), "press-invalid"),
        )
        .await;
        return discard(deps.core, &update).await;
    };
    let (chat_id, message_id) = (msg.chat().id, msg.id());
    let ev = Inbound {
        origin: origin(&update, msg.chat()),
        chat_id: chat_id.0,
        user_id: q.from.id.0 as i64,
        user_lang: lang.clone(),
        message_id: Some(i64::from(message_id.0)),
        reply_to: None,
        at: crate::core::now_ms(),
        body: Body::Press(data.clone()),
    };
    let refused = fallback_answer(&deps, lang.as_deref(), "storage-error");
    let mut told = false;
    let outcomes = loop {
        match attempt(&deps, ev.clone()).await {
            Ok(o) => break o,
            Err(e) => {
                if !told && !deps.shutdown.is_triggered() {
                    told = true;
                    let _ = answer(&bot, &deps, &q, &refused).await;
                }
                if !again(&deps, &e).await {
                    return Err(anyhow::Error::new(e)
                        .context("a button press could not be stored; it stays in the inbox"));
                }
            }
        }
    };
    let mut answered = false;
    for o in outcomes {
        match o {
            Outcome::Answer(a) => {
                if let Err(e) = answer(&bot, &deps, &q, &a).await {
                    // Late (e.g. replayed from the inbox after a restart): the
                    // effect is stored; only the notice is lost.
                    tracing::info!(error = %e, "press applied but its answer was not accepted");
                }
                answered = true;
                let markup = msg.regular_message().and_then(|m| m.reply_markup());
                if let (true, Some(markup)) = (a.chosen, markup) {
                    let marked = mark_chosen(markup, &data);
                    if &marked != markup {
                        if let Err(e) = bot
                            .edit_message_reply_markup(chat_id, message_id)
                            .reply_markup(marked)
                            .await
                        {
                            tracing::info!(error = %e, "could not mark the pressed button");
                        }
                    }
                }
            }
            Outcome::Reply(_) => deps.wake.notify_one(),
            Outcome::Leave { chat_id } => leave(&bot, chat_id).await,
        }
    }
    if !answered {
        // A re-delivered press (processed before): stop the spinner quietly.
        let _ = bot.answer_callback_query(q.id.clone()).await;
    }
    Ok(())
}

fn fallback_answer(deps: &Deps, lang: Option<&str>, key: &str) -> Answer {
    Answer {
        lang: i18n::negotiate(lang, &deps.core.settings().default_lang),
        line: Line::new(key),
        chosen: false,
    }
}

async fn answer(
    bot: &Bot,
    deps: &Deps,
    q: &CallbackQuery,
    a: &Answer,
) -> Result<(), teloxide::RequestError> {
    let text = deps.i18n.render_plain(&a.lang, &a.line);
    bot.answer_callback_query(q.id.clone())
        .text(text)
        .await
        .map(drop)
}

/// Prefix of a button shown as chosen.
pub const CHOSEN: &str = "✓ ";

/// The keyboard with the button carrying `data` marked chosen and the other
/// buttons of its row unmarked (a vote replaces the earlier one).
pub fn mark_chosen(markup: &InlineKeyboardMarkup, data: &str) -> InlineKeyboardMarkup {
    let mut out = markup.clone();
    for row in &mut out.inline_keyboard {
        let pressed = row
            .iter()
            .any(|b| matches!(&b.kind, InlineKeyboardButtonKind::CallbackData(d) if d == data));
        if !pressed {
            continue;
        }
        for b in row.iter_mut() {
            let plain = b.text.strip_prefix(CHOSEN).unwrap_or(&b.text).to_owned();
            let is_it = matches!(&b.kind, InlineKeyboardButtonKind::CallbackData(d) if d == data);
            b.text = if is_it {
                format!("{CHOSEN}{plain}")
            } else {
                plain
            };
        }
    }
    out
}

/// A Telegram update's origin: in a group when its chat is one.
fn origin(update: &Update, chat: &teloxide::types::Chat) -> Origin {
    let o = Origin::telegram(u64::from(update.id.0));
    if is_group(chat) {
        o.in_group()
    } else {
        o
    }
}

/// A group or supergroup (channels never reach the message handlers).
pub fn is_group(chat: &teloxide::types::Chat) -> bool {
    chat.is_group() || chat.is_supergroup()
}

fn inbound(update: &Update, msg: &Message, body: Body) -> Inbound {
    let user = msg.from.as_ref();
    Inbound {
        origin: origin(update, &msg.chat),
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
    let MessageKind::Common(common) = &msg.kind else {
        return None;
    };
    let kind = match &common.media_kind {
        MediaKind::Text(t) => {
            return Some(if edited {
                Body::Edited(t.text.clone())
            } else {
                Body::Text(t.text.clone())
            });
        }
        MediaKind::Sticker(_) => "sticker",
        MediaKind::Photo(_) => "photo",
        MediaKind::Video(_) | MediaKind::VideoNote(_) | MediaKind::Animation(_) => "video",
        // An audio file sent as a document (e.g. a .wav or .ogg attachment).
        MediaKind::Document(d)
            if !edited
                && d.document
                    .mime_type
                    .as_ref()
                    .is_some_and(|m| m.type_() == "audio") =>
        {
            return Some(voice_in("audio", &d.document.file, 0));
        }
        MediaKind::Document(_) => "document",
        // Voice notes and audio files are transcribed.
        MediaKind::Voice(v) if !edited => {
            return Some(voice_in("voice", &v.voice.file, v.voice.duration.seconds()))
        }
        MediaKind::Audio(a) if !edited => {
            return Some(voice_in("audio", &a.audio.file, a.audio.duration.seconds()))
        }
        MediaKind::Audio(_) | MediaKind::Voice(_) => "audio",
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

fn voice_in(kind: &'static str, file: &teloxide::types::FileMeta, duration_secs: u32) -> Body {
    Body::Voice(VoiceIn {
        kind,
        file_id: file.id.0.clone(),
        duration_secs,
        // teloxide reports a missing `file_size` as `u32::MAX`.
        size: (file.size != u32::MAX).then_some(u64::from(file.size)),
    })
}
