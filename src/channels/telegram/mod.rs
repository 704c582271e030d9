//! The Telegram channel: a thin adapter between the Bot API and the core.
//!
//! - [`listener`]: long polling that records each update before dispatch,
//!   paused while the store refuses writes;
//! - [`alarm`]: tells the owner directly when the store refuses writes, and
//!   when it works again;
//! - [`handler`]: the dptree tree turning updates into core events;
//! - [`send`]: the outbox sender with rate limits and `retry_after`, and
//!   [`queue`], its per-chat schedule (fair across chats, refusals last);
//! - [`fetch`]: downloads voice notes for the transcription pipeline;
//! - [`render`]: HTML rendering and splitting at 4096 characters.
//!
//! [`run`] attaches them to an App's core until its [`Shutdown`] fires:
//! polling stops, in-flight handlers finish, the outbox drains for at most
//! [`crate::app::shutdown::DRAIN`], and it returns. Startup maintenance,
//! the transcription loop and the background jobs belong to the App, not to
//! this adapter.

pub mod alarm;
pub mod fetch;
pub mod handler;
pub mod listener;
pub mod queue;
pub mod render;
pub mod send;

use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use teloxide::dispatching::Dispatcher;
use teloxide::error_handlers::LoggingErrorHandler;
use teloxide::payloads::setters::*;
use teloxide::prelude::*;
use teloxide::types::BotCommand;
use teloxide::{ApiError, RequestError};
use tokio::sync::Notify;

use crate::app::Shutdown;
use crate::config::Config;
use crate::core::{commands_menu, Core};
use crate::i18n::{self, I18n, Line};

/// Serves Telegram until a stop signal. Errors out early when the token is
/// rejected (so a typo is reported in seconds, not retried forever).
pub async fn run(
    cfg: &Config,
    core: Arc<Core>,
    token: String,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let url = reqwest_url(&cfg.telegram.api_url)?;
    let download =
        Bot::with_client(token.clone(), fetch::download_client()).set_api_url(url.clone());
    let bot = Bot::new(token).set_api_url(url);
    let i18n = Arc::new(I18n::new());

    let me = connect(&bot, shutdown.clone()).await?;
    let Some(me) = me else { return Ok(()) };
    tracing::info!(username = %me.username(), "connected to Telegram");
    let signals = crate::health::signals();
    signals.telegram_ok("GetMe", crate::core::now_ms());
    signals.set_telegram(true);
    let probe = tokio::spawn(probe(
        bot.clone(),
        Duration::from_secs((cfg.health.telegram_stale_secs / 3).clamp(5, 60)),
        shutdown.clone(),
    ));

    if let Err(e) = bot.delete_webhook().await {
        tracing::warn!(error = %e, "deleteWebhook failed; polling may be refused");
    }
    register_commands(&bot, &i18n).await;

    let wake = Arc::new(Notify::new());
    let sender = send::Sender {
        bot: bot.clone(),
        core: core.clone(),
        i18n: i18n.clone(),
        wake: wake.clone(),
        limiter: send::RateLimiter::new(
            cfg.telegram.per_chat_burst,
            cfg.telegram.per_chat_per_sec,
            cfg.telegram.global_per_sec,
        ),
    };
    let sender = tokio::spawn(sender.run(shutdown.clone()));
    // The embed worker queues duplicate notices on its own; let it wake the sender.
    let w = wake.clone();
    core.on_outbox(move || w.notify_one());
    // Replies left over from the last run go out first.
    wake.notify_one();

    let voice = Arc::new(Notify::new());
    let fetcher = fetch::Fetcher {
        bot: bot.clone(),
        download,
        limits: fetch::Limits::from_config(&cfg.voice),
        core: core.clone(),
        wake: voice.clone(),
    };
    let fetcher = tokio::spawn(fetcher.run(shutdown.clone()));

    let alarm = tokio::spawn(alarm::run(
        bot.clone(),
        core.clone(),
        i18n.clone(),
        shutdown.clone(),
    ));
    let deps = handler::Deps {
        core: core.clone(),
        wake,
        i18n,
        voice,
        shutdown: shutdown.clone(),
    };
    let mut dispatcher = Dispatcher::builder(bot.clone(), handler::schema())
        .dependencies(dptree::deps![deps])
        .default_handler(|_| async {})
        .error_handler(LoggingErrorHandler::with_custom_text(
            "an update handler failed",
        ))
        .build();

    let token = dispatcher.shutdown_token();
    let stop = shutdown.clone();
    let stopper = tokio::spawn(async move {
        stop.triggered().await;
        // The dispatcher may not be running yet; retry until it takes the request.
        loop {
            match token.shutdown() {
                Ok(done) => {
                    done.await;
                    break;
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
            }
        }
    });

    let listener = listener::DurablePolling::new(
        bot,
        core,
        Duration::from_secs(cfg.telegram.poll_timeout_secs),
        shutdown.clone(),
    );
    // Polling starts now: systemd (Type=notify) may consider us up.
    crate::health::notify::ready();
    dispatcher
        .dispatch_with_listener(
            listener,
            LoggingErrorHandler::with_custom_text("polling Telegram failed"),
        )
        .await;
    stopper.abort();
    probe.abort();
    alarm.abort();
    let _ = fetcher.await;
    let _ = sender.await;
    signals.set_telegram(false);
    tracing::info!("telegram channel stopped");
    Ok(())
}

/// Calls getMe until it works. A rejected token is fatal; network trouble
/// is retried with backoff until `shutdown`. `None` when stopped first.
async fn connect(bot: &Bot, shutdown: Shutdown) -> anyhow::Result<Option<teloxide::types::Me>> {
    let mut delay = Duration::from_secs(1);
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(12), bot.get_me());
        let res = tokio::select! {
            r = attempt => r,
            _ = shutdown.triggered() => return Ok(None),
        };
        match res {
            Ok(Ok(me)) => return Ok(Some(me)),
            Ok(Err(RequestError::Api(ApiError::InvalidToken))) => {
                bail!("Telegram rejected the bot token (401 Unauthorized): check TELEGRAM_BOT_TOKEN, as given by @BotFather")
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, retry_in = ?delay, "cannot reach Telegram (getMe)")
            }
            Err(_) => tracing::warn!(retry_in = ?delay, "getMe timed out"),
        }
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = shutdown.triggered() => return Ok(None),
        }
        delay = (delay * 2).min(Duration::from_secs(60));
    }
}

/// Asks getMe every `every` so the health check knows whether Telegram
/// answers even when nobody writes (long polling alone says nothing while
/// it waits).
async fn probe(bot: Bot, every: Duration, shutdown: Shutdown) {
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = shutdown.triggered() => return,
        }
        let r = tokio::time::timeout(Duration::from_secs(10), bot.get_me()).await;
        let signals = crate::health::signals();
        match r {
            Ok(r) => signals.telegram_result("GetMe", &r),
            Err(_) => signals.telegram_error(
                "GetMe",
                crate::health::signals::CallError::Network,
                crate::core::now_ms(),
            ),
        }
    }
}

/// setMyCommands for the default scope, once per shipped locale.
async fn register_commands(bot: &Bot, i18n: &I18n) {
    for (n, lang) in i18n::LOCALES.iter().enumerate() {
        let commands: Vec<BotCommand> = commands_menu()
            .iter()
            .map(|(name, key)| {
                BotCommand::new(*name, i18n.render(lang, &Line::new(key), &|s| s.to_owned()))
            })
            .collect();
        let mut req = bot.set_my_commands(commands);
        // The first locale is the default for every client language.
        if n > 0 {
            req = req.language_code(*lang);
        }
        if let Err(e) = req.await {
            tracing::warn!(lang, error = %e, "setMyCommands failed");
        }
    }
}

fn reqwest_url(s: &str) -> anyhow::Result<url::Url> {
    url::Url::parse(s).with_context(|| format!("telegram.api_url {s:?} is not a valid URL"))
}
