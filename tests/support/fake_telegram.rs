//! A fake Telegram Bot API server on 127.0.0.1 for the real teloxide client.
//!
//! It implements just enough of the Bot API for mnemo: `getMe`,
//! `deleteWebhook`, `setMyCommands`, long-polling `getUpdates` with real offset
//! confirmation, `sendMessage` (recorded, with its inline keyboard), and for
//! buttons `answerCallbackQuery` and `editMessageReplyMarkup`. Tests push
//! updates in (including presses of the buttons the bot sent), read what the
//! bot sent, and script failures: a `429 retry_after`, a hanging send, lost
//! offset confirmations, a wrong token; and hold one chat's sends (a slow
//! request to one chat) until released.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::sync::Notify;

pub const TOKEN: &str = "123456:TEST-token_abcdefghijklmnopqrstuvwxyz";
pub const BOT_ID: i64 = 123456;

/// A request the bot made: method name (as sent) and its JSON parameters.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    pub params: Value,
    pub at: Instant,
    /// For sendMessage: the message id the fake gave the sent message.
    pub message_id: Option<i64>,
}

/// A scripted answer for the next call of a method.
#[derive(Debug, Clone)]
pub enum Script {
    /// HTTP 429 with `parameters.retry_after`.
    RetryAfter(u64),
    /// An API error with this code and description.
    Error(u16, String),
    /// Never answer (the client times out or the process is killed).
    Hang,
}

#[derive(Default)]
struct Inner {
    updates: VecDeque<Value>,
    next_update_id: i64,
    next_message_id: i64,
    /// When true, offsets are not honoured: every getUpdates re-delivers
    /// everything (a confirmation that never reached Telegram).
    ignore_confirmations: bool,
    calls: Vec<Call>,
    /// (method, only calls to this chat, answer), used in order.
    scripts: Vec<(String, Option<i64>, Script)>,
    /// Messages the bot sent, by message id, as Telegram would return them
    /// (with `reply_markup` kept up to date by editMessageReplyMarkup).
    messages: std::collections::HashMap<i64, Value>,
    next_callback_id: u64,
    /// Files the bot may download: file id → bytes (served at
    /// `/file/bot<token>/voice/<file id>.oga`).
    files: std::collections::HashMap<String, Vec<u8>>,
    /// Every call answered 502 Bad Gateway (a proxy in front of a dead API).
    down: bool,

    /// Files served slowly: file id → bytes per second.
    slow: std::collections::HashMap<String, u64>,
    /// Chats whose sendMessage calls wait until released, and how many
    /// calls wait now.
    held: std::collections::HashMap<i64, usize>,
}

pub struct FakeTelegram {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    new_update: Arc<Notify>,
    released: Arc<Notify>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Clone)]
struct AppState {
    inner: Arc<Mutex<Inner>>,
    new_update: Arc<Notify>,
    released: Arc<Notify>,
}

impl FakeTelegram {
    pub async fn start() -> FakeTelegram {
        let inner = Arc::new(Mutex::new(Inner {
            next_update_id: 1000,
            next_message_id: 50_000,
            ..Default::default()
        }));
        let new_update = Arc::new(Notify::new());
        let released = Arc::new(Notify::new());
        let state = AppState {
            inner: inner.clone(),
            new_update: new_update.clone(),
            released: released.clone(),
        };
        let app = Router::new()
            .route("/{bot}/{method}", post(api))
            .route("/file/{bot}/{*path}", axum::routing::get(file))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .await
                .expect("fake telegram server");
        });
        FakeTelegram {
            addr,
            inner,
            new_update,
            released,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues a raw update (its `update_id` is assigned here) and returns the id.
    pub fn push(&self, mut update: Value) -> i64 {
        let mut g = self.inner.lock().unwrap();
        g.next_update_id += 1;
        let id = g.next_update_id;
        update["update_id"] = json!(id);
        g.updates.push_back(update);
        drop(g);
        self.new_update.notify_waiters();
        id
    }

    pub fn ignore_confirmations(&self, on: bool) {
        self.inner.lock().unwrap().ignore_confirmations = on;
    }

    /// Makes the next call of `method` answer with `script`.
    pub fn script(&self, method: &str, script: Script) {
        self.inner
            .lock()
            .unwrap()
            .scripts
            .push((method.to_ascii_lowercase(), None, script));
    }

    /// Makes the next call of `method` to `chat_id` answer with `script`
    /// (a limit on one chat: Telegram's per-chat flood wait).
    pub fn script_chat(&self, method: &str, chat_id: i64, script: Script) {
        self.inner.lock().unwrap().scripts.push((
            method.to_ascii_lowercase(),
            Some(chat_id),
            script,
        ));
    }

    /// From now on, sendMessage calls to `chat_id` get no answer (and are
    /// not recorded) until [`FakeTelegram::release`]: a slow request to
    /// one chat.
    pub fn hold(&self, chat_id: i64) {
        self.inner.lock().unwrap().held.entry(chat_id).or_insert(0);
    }

    /// Lets the held calls to `chat_id` through (recorded and answered as
    /// they are let through), and later ones at once.
    pub fn release(&self, chat_id: i64) {
        self.inner.lock().unwrap().held.remove(&chat_id);
        self.released.notify_waiters();
    }

    /// How many sendMessage calls to `chat_id` are held right now.
    pub fn waiting(&self, chat_id: i64) -> usize {
        self.inner
            .lock()
            .unwrap()
            .held
            .get(&chat_id)
            .copied()
            .unwrap_or(0)
    }

    /// While on, every call gets 502 Bad Gateway (recorded as usual).
    pub fn set_down(&self, on: bool) {
        self.inner.lock().unwrap().down = on;
    }

    pub fn clear_scripts(&self) {
        self.inner.lock().unwrap().scripts.clear();
    }

    pub fn calls(&self, method: &str) -> Vec<Call> {
        let m = method.to_ascii_lowercase();
        self.inner
            .lock()
            .unwrap()
            .calls
            .iter()
            .filter(|c| c.method.to_ascii_lowercase() == m)
            .cloned()
            .collect()
    }

    /// Texts of messages the bot sent to `chat_id`, in order.
    pub fn sent_to(&self, chat_id: i64) -> Vec<String> {
        self.calls("sendMessage")
            .into_iter()
            .filter(|c| {
                c.params["chat_id"].as_i64() == Some(chat_id) && c.params.get("_status").is_none()
            })
            .map(|c| c.params["text"].as_str().unwrap_or_default().to_owned())
            .collect()
    }

    /// Waits until at least `n` messages were sent to `chat_id`.
    pub async fn wait_sent(&self, chat_id: i64, n: usize, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let sent = self.sent_to(chat_id);
            if sent.len() >= n {
                return sent;
            }
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {n} messages to chat {chat_id}; got {sent:?}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until `cond` holds over all calls so far.
    pub async fn wait_for(&self, what: &str, timeout: Duration, cond: impl Fn(&[Call]) -> bool) {
        let deadline = Instant::now() + timeout;
        loop {
            if cond(&self.inner.lock().unwrap().calls) {
                return;
            }
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Makes `bytes` downloadable as file `file_id` (getFile + file URL).
    pub fn add_file(&self, file_id: &str, bytes: Vec<u8>) {
        self.inner
            .lock()
            .unwrap()
            .files
            .insert(file_id.to_owned(), bytes);
    }

    /// Like [`FakeTelegram::add_file`], but the download trickles at
    /// `bytes_per_sec` (in 10 pieces a second): a slow link.
    pub fn add_slow_file(&self, file_id: &str, bytes: Vec<u8>, bytes_per_sec: u64) {
        let mut g = self.inner.lock().unwrap();
        g.files.insert(file_id.to_owned(), bytes);
        g.slow.insert(file_id.to_owned(), bytes_per_sec.max(10));
    }

    /// The message the bot sent with id `message_id`, as stored here.
    pub fn message(&self, message_id: i64) -> Option<Value> {
        self.inner
            .lock()
            .unwrap()
            .messages
            .get(&message_id)
            .cloned()
    }

    /// (message id, text) of every message the bot sent to `chat_id`.
    pub fn sent_messages(&self, chat_id: i64) -> Vec<(i64, String)> {
        self.calls("sendMessage")
            .into_iter()
            .filter(|c| c.params["chat_id"].as_i64() == Some(chat_id) && c.message_id.is_some())
            .map(|c| {
                (
                    c.message_id.unwrap_or_default(),
                    c.params["text"].as_str().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The inline keyboard of a sent message: rows of (label, callback data).
    pub fn buttons(&self, message_id: i64) -> Vec<Vec<(String, String)>> {
        let Some(m) = self.message(message_id) else {
            return Vec::new();
        };
        m["reply_markup"]["inline_keyboard"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        row.as_array()
                            .map(|bs| {
                                bs.iter()
                                    .map(|b| {
                                        (
                                            b["text"].as_str().unwrap_or_default().to_owned(),
                                            b["callback_data"]
                                                .as_str()
                                                .unwrap_or_default()
                                                .to_owned(),
                                        )
                                    })
                                    .collect()
                            })
                            .unwrap_or_default()
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    /// `user_id` presses a button carrying `data` on message `message_id` in
    /// chat `chat_id` (the message as the bot sent it, when known). Returns
    /// the callback query id.
    pub fn press_in(&self, chat_id: i64, user_id: i64, message_id: i64, data: &str) -> String {
        let (qid, msg) = {
            let mut g = self.inner.lock().unwrap();
            g.next_callback_id += 1;
            let msg = g.messages.get(&message_id).cloned().unwrap_or_else(|| {
                let mut m = message(chat_id, BOT_ID, message_id);
                m["text"] = json!("…");
                m
            });
            (format!("cq{}", g.next_callback_id), msg)
        };
        self.push(json!({"callback_query": {
            "id": qid,
            "from": {"id": user_id, "is_bot": false, "first_name": "User", "language_code": "en"},
            "message": msg,
            "chat_instance": "42",
            "data": data,
        }}));
        qid
    }

    /// [`FakeTelegram::press_in`] in the user's private chat.
    pub fn press(&self, user_id: i64, message_id: i64, data: &str) -> String {
        self.press_in(user_id, user_id, message_id, data)
    }

    /// Waits for the answer to callback query `qid` and returns its text.
    pub async fn wait_answer(&self, qid: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let found = self
                .calls("answerCallbackQuery")
                .into_iter()
                .find(|c| c.params["callback_query_id"].as_str() == Some(qid))
                .map(|c| c.params["text"].as_str().unwrap_or_default().to_owned());
            if let Some(t) = found {
                return t;
            }
            assert!(
                Instant::now() < deadline,
                "callback query {qid} was not answered"
            );
            tokio::time::sleep(Duration::from_micros(200)).await;
        }
    }

    /// Updates not yet confirmed by the bot.
    pub fn pending_updates(&self) -> usize {
        self.inner.lock().unwrap().updates.len()
    }
}

impl Drop for FakeTelegram {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn ok(result: Value) -> Response {
    Json(json!({"ok": true, "result": result})).into_response()
}

fn err(code: u16, description: &str, params: Option<Value>) -> Response {
    let mut body = json!({"ok": false, "error_code": code, "description": description});
    if let Some(p) = params {
        body["parameters"] = p;
    }
    (
        StatusCode::from_u16(code).unwrap_or(StatusCode::BAD_REQUEST),
        Json(body),
    )
        .into_response()
}

/// Waits while sends to `chat` are held (see [`FakeTelegram::hold`]).
async fn hold_while_held(st: &AppState, chat: i64) {
    let mut counted = false;
    loop {
        let released = st.released.notified();
        tokio::pin!(released);
        released.as_mut().enable();
        {
            let mut g = st.inner.lock().unwrap();
            match g.held.get_mut(&chat) {
                Some(n) => {
                    if !counted {
                        *n += 1;
                        counted = true;
                    }
                }
                None => return,
            }
        }
        released.await;
    }
}

async fn api(
    State(st): State<AppState>,
    Path((bot, method)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let params: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    if bot != format!("bot{TOKEN}") {
        return err(401, "Unauthorized", None);
    }
    let lower = method.to_ascii_lowercase();
    if lower == "sendmessage" {
        hold_while_held(&st, params["chat_id"].as_i64().unwrap_or(0)).await;
    }
    let script = {
        let mut g = st.inner.lock().unwrap();
        let script = if g.down {
            Some(Script::Error(502, "Bad Gateway".into()))
        } else {
            let chat = params["chat_id"].as_i64();
            g.scripts
                .iter()
                .position(|(m, c, _)| *m == lower && c.is_none_or(|c| Some(c) == chat))
                .map(|i| g.scripts.remove(i).2)
        };
        let mut recorded = params.clone();
        if script.is_some() && recorded.is_object() {
            // Mark calls that were answered with a scripted failure.
            recorded["_status"] = json!("scripted");
        }
        // An accepted message gets its id in the same locked section that
        // records the call: a test that sees the call also sees its id and
        // can look the message up.
        let sent = (lower == "sendmessage" && script.is_none()).then(|| {
            g.next_message_id += 1;
            let id = g.next_message_id;
            let chat_id = params["chat_id"].as_i64().unwrap_or(0);
            let mut m = json!({
                "message_id": id,
                "date": chrono_now(),
                "chat": {"id": chat_id, "type": "private", "first_name": "User"},
                "from": {"id": BOT_ID, "is_bot": true, "first_name": "mnemo", "username": "mnemo_test_bot"},
                "text": params["text"].clone(),
            });
            if !params["reply_markup"].is_null() {
                m["reply_markup"] = params["reply_markup"].clone();
            }
            g.messages.insert(id, m.clone());
            (id, m)
        });
        g.calls.push(Call {
            method: method.clone(),
            params: recorded,
            at: Instant::now(),
            message_id: sent.as_ref().map(|(id, _)| *id),
        });
        (script, sent)
    };
    let (script, sent) = script;
    match script {
        Some(Script::RetryAfter(s)) => {
            return err(
                429,
                &format!("Too Many Requests: retry after {s}"),
                Some(json!({"retry_after": s})),
            )
        }
        Some(Script::Error(code, d)) => return err(code, &d, None),
        Some(Script::Hang) => {
            tokio::time::sleep(Duration::from_secs(3600)).await;
            return err(500, "Internal Server Error", None);
        }
        None => {}
    }
    match lower.as_str() {
        "getme" => ok(json!({
            "id": BOT_ID, "is_bot": true, "first_name": "mnemo", "username": "mnemo_test_bot",
            "can_join_groups": false, "can_read_all_group_messages": false,
            "supports_inline_queries": false, "has_main_web_app": false
        })),
        "deletewebhook"
        | "setmycommands"
        | "sendchataction"
        | "answercallbackquery"
        | "leavechat" => ok(json!(true)),
        "getwebhookinfo" => {
            ok(json!({"url": "", "has_custom_certificate": false, "pending_update_count": 0}))
        }
        "getupdates" => get_updates(&st, &params).await,
        "sendmessage" => match sent {
            Some((_, m)) => ok(m),
            None => err(500, "Internal Server Error", None),
        },
        "getfile" => {
            let g = st.inner.lock().unwrap();
            let id = params["file_id"].as_str().unwrap_or_default();
            match g.files.get(id) {
                Some(b) => ok(json!({
                    "file_id": id, "file_unique_id": format!("u{id}"), "file_size": b.len(),
                    "file_path": format!("voice/{id}.oga"),
                })),
                None => err(400, "Bad Request: invalid file_id", None),
            }
        }
        "editmessagereplymarkup" => {
            let mut g = st.inner.lock().unwrap();
            let id = params["message_id"].as_i64().unwrap_or(0);
            match g.messages.get_mut(&id) {
                Some(m) => {
                    m["reply_markup"] = params["reply_markup"].clone();
                    ok(m.clone())
                }
                None => err(400, "Bad Request: message to edit not found", None),
            }
        }
        _ => err(404, "Not Found: method not found", None),
    }
}

/// File downloads. teloxide sends the file path percent-encoded as one
/// segment (`voice%2Fv1.oga`), which axum decodes.
async fn file(State(st): State<AppState>, Path((bot, path)): Path<(String, String)>) -> Response {
    let Some(id) = path
        .strip_prefix("voice/")
        .and_then(|p| p.strip_suffix(".oga"))
    else {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    };
    if bot != format!("bot{TOKEN}") {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let mut g = st.inner.lock().unwrap();
    g.calls.push(Call {
        method: "download".into(),
        params: json!({"file": id}),
        at: Instant::now(),
        message_id: None,
    });
    match (g.files.get(id), g.slow.get(id)) {
        (Some(b), Some(rate)) => slow_body(b.clone(), *rate),
        (Some(b), None) => b.clone().into_response(),
        (None, _) => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}

/// `bytes` sent a tenth of `rate` every 100 ms.
fn slow_body(bytes: Vec<u8>, rate: u64) -> Response {
    let piece = (rate / 10).max(1) as usize;
    let len = bytes.len();
    let chunks = futures::stream::unfold(0usize, move |at| {
        let bytes = bytes.clone();
        async move {
            if at >= bytes.len() {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
            let end = (at + piece).min(bytes.len());
            Some((
                Ok::<_, std::io::Error>(Bytes::copy_from_slice(&bytes[at..end])),
                end,
            ))
        }
    });
    (
        [(axum::http::header::CONTENT_LENGTH, len.to_string())],
        axum::body::Body::from_stream(chunks),
    )
        .into_response()
}

async fn get_updates(st: &AppState, params: &Value) -> Response {
    let offset = params["offset"].as_i64().unwrap_or(0);
    let limit = params["limit"].as_u64().unwrap_or(100) as usize;
    let timeout = params["timeout"].as_u64().unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(timeout);
    loop {
        let notified = st.new_update.notified();
        {
            let mut g = st.inner.lock().unwrap();
            if !g.ignore_confirmations {
                g.updates
                    .retain(|u| u["update_id"].as_i64().unwrap_or(0) >= offset);
            }
            let ready: Vec<Value> = g
                .updates
                .iter()
                .filter(|u| {
                    g.ignore_confirmations || u["update_id"].as_i64().unwrap_or(0) >= offset
                })
                .take(limit)
                .cloned()
                .collect();
            if !ready.is_empty() || Instant::now() >= deadline {
                return ok(Value::Array(ready));
            }
        }
        let left = deadline.saturating_duration_since(Instant::now());
        let _ = tokio::time::timeout(left, notified).await;
    }
}

fn chrono_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

// ---- update builders ------------------------------------------------------

fn message(chat_id: i64, user_id: i64, message_id: i64) -> Value {
    json!({
        "message_id": message_id,
        "date": chrono_now(),
        "chat": {"id": chat_id, "type": "private", "first_name": "User"},
        "from": {"id": user_id, "is_bot": false, "first_name": "User", "language_code": "en"},
    })
}

/// A text message from `user_id` in their private chat (chat id = user id).
pub fn text(user_id: i64, message_id: i64, text: &str) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["text"] = json!(text);
    json!({"message": m})
}

/// Like [`text`], replying to message `reply_to`.
pub fn text_reply(user_id: i64, message_id: i64, body: &str, reply_to: i64) -> Value {
    let mut u = text(user_id, message_id, body);
    let mut quoted = message(user_id, user_id, reply_to);
    quoted["text"] = json!("…");
    u["message"]["reply_to_message"] = quoted;
    u
}

/// Message `message_id` edited to `text`.
pub fn edited(user_id: i64, message_id: i64, text: &str) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["text"] = json!(text);
    m["edit_date"] = json!(chrono_now());
    json!({"edited_message": m})
}

pub fn photo(user_id: i64, message_id: i64) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["photo"] = json!([{"file_id": "AgAD", "file_unique_id": "AQAD", "width": 90, "height": 90, "file_size": 1000}]);
    json!({"message": m})
}

pub fn sticker(user_id: i64, message_id: i64) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["sticker"] = json!({
        "file_id": "CAAC", "file_unique_id": "AgAD", "type": "regular",
        "width": 512, "height": 512, "is_animated": false, "is_video": false
    });
    json!({"message": m})
}

/// An update kind mnemo does not handle at all.
pub fn poll_answer(user_id: i64) -> Value {
    json!({"poll_answer": {"poll_id": "1", "user": {"id": user_id, "is_bot": false, "first_name": "U"}, "option_ids": [0]}})
}

/// A voice note (`file_id` must be registered with [`FakeTelegram::add_file`]
/// to be downloadable). `size` is what Telegram reports.
pub fn voice(user_id: i64, message_id: i64, file_id: &str, duration: u32, size: u64) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["voice"] = json!({
        "file_id": file_id, "file_unique_id": format!("u{file_id}"),
        "duration": duration, "mime_type": "audio/ogg", "file_size": size
    });
    json!({"message": m})
}

/// A file attachment with mime type `mime`.
pub fn document(user_id: i64, message_id: i64, file_id: &str, size: u64, mime: &str) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["document"] = json!({
        "file_id": file_id, "file_unique_id": format!("u{file_id}"),
        "file_name": "memo.wav", "mime_type": mime, "file_size": size
    });
    json!({"message": m})
}

/// An audio file (sent as music/file rather than recorded).
pub fn audio(
    user_id: i64,
    message_id: i64,
    file_id: &str,
    duration: u32,
    size: u64,
    mime: &str,
) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["audio"] = json!({
        "file_id": file_id, "file_unique_id": format!("u{file_id}"),
        "duration": duration, "mime_type": mime, "file_size": size
    });
    json!({"message": m})
}

/// A text message from `user_id` in the supergroup `chat_id` (negative).
pub fn group_text(chat_id: i64, user_id: i64, message_id: i64, text: &str) -> Value {
    let mut m = message(chat_id, user_id, message_id);
    m["chat"] = json!({"id": chat_id, "type": "supergroup", "title": "A group"});
    m["text"] = json!(text);
    json!({"message": m})
}

/// `user_id` added the bot to the group `chat_id` (a `my_chat_member` update).
pub fn bot_added(chat_id: i64, user_id: i64) -> Value {
    let bot =
        json!({"id": BOT_ID, "is_bot": true, "first_name": "mnemo", "username": "mnemo_test_bot"});
    json!({"my_chat_member": {
        "chat": {"id": chat_id, "type": "group", "title": "A group"},
        "from": {"id": user_id, "is_bot": false, "first_name": "User", "language_code": "en"},
        "date": chrono_now(),
        "old_chat_member": {"user": bot.clone(), "status": "left"},
        "new_chat_member": {"user": bot, "status": "member"},
    }})
}

/// A post in the channel `chat_id` (no sender).
pub fn channel_post(chat_id: i64, message_id: i64, text: &str) -> Value {
    json!({"channel_post": {
        "message_id": message_id,
        "date": chrono_now(),
        "chat": {"id": chat_id, "type": "channel", "title": "A channel"},
        "text": text,
    }})
}

/// An inline query from `user_id`.
pub fn inline_query(user_id: i64, query: &str) -> Value {
    json!({"inline_query": {
        "id": "iq1",
        "from": {"id": user_id, "is_bot": false, "first_name": "User"},
        "query": query,
        "offset": "",
    }})
}

/// A message from `user_id` through a business connection.
pub fn business_message(user_id: i64, message_id: i64, text: &str) -> Value {
    let mut m = message(user_id, user_id, message_id);
    m["text"] = json!(text);
    m["business_connection_id"] = json!("bc1");
    json!({"business_message": m})
}
