//! A fake LLM server on 127.0.0.1 for the real reqwest client of `mnemo::llm`.
//!
//! It speaks both wire formats: OpenAI-compatible `POST /v1/chat/completions`
//! (base URL `http://addr/v1`) and Anthropic `POST /v1/messages` (base URL
//! `http://addr`). Every request is recorded with the pass it belongs to
//! (draft, critique, refine, repair: told apart by the prompt's marks) and
//! the headers that matter. Answers are scripted per request, in order; with
//! the script used up, the standing reply answers (by default [`Reply::Auto`]:
//! a summary citing the first notes of the request, "OK" to a critique).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::Router;
use serde_json::{json, Value};

/// The wire format of a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    OpenAi,
    Anthropic,
}

/// How to answer one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// A summary citing the first two note ids of the request ("OK" to a
    /// critique), in the route's shape.
    Auto,
    /// This text, in the route's shape.
    Text(String),
    /// Answer after a delay (longer than the client's timeout: a timeout).
    Delay(Duration, Box<Reply>),
    /// This status and JSON body, with `retry-after` seconds if given.
    Status(u16, Value, Option<u64>),
    /// 200 with a body that is not JSON.
    Malformed,
}

impl Reply {
    pub fn text(s: &str) -> Reply {
        Reply::Text(s.to_owned())
    }

    pub fn hang() -> Reply {
        Reply::Delay(Duration::from_secs(30), Box::new(Reply::Auto))
    }

    /// An error in the provider's usual shape.
    pub fn error(status: u16, kind: &str, message: &str) -> Reply {
        Reply::Status(
            status,
            json!({"type": "error", "error": {"type": kind, "message": message}}),
            None,
        )
    }
}

/// A request the client made.
#[derive(Debug, Clone)]
pub struct Seen {
    pub route: Route,
    /// "draft", "critique", "refine", "repair" (or "invalid": not JSON).
    pub pass: &'static str,
    pub body: Value,
    pub headers: HeaderMap,
    pub at: Instant,
}

impl Seen {
    pub fn system(&self) -> String {
        match self.route {
            Route::Anthropic => self.body["system"].as_str().unwrap_or("").to_owned(),
            Route::OpenAi => self.body["messages"][0]["content"]
                .as_str()
                .unwrap_or("")
                .to_owned(),
        }
    }

    pub fn user(&self) -> String {
        let msgs = self.body["messages"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        msgs.iter()
            .filter(|m| m["role"] == "user")
            .filter_map(|m| m["content"].as_str())
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }
}

struct Inner {
    script: VecDeque<Reply>,
    standing: Reply,
    seen: Vec<Seen>,
    /// `usage` reported for every answer: (input, output).
    usage: (u64, u64),
}

pub struct FakeLlm {
    pub addr: SocketAddr,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FakeLlm {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Shared = Arc<Mutex<Inner>>;

impl FakeLlm {
    pub async fn start() -> FakeLlm {
        let inner = Arc::new(Mutex::new(Inner {
            script: VecDeque::new(),
            standing: Reply::Auto,
            seen: Vec::new(),
            usage: (100, 20),
        }));
        let app = Router::new()
            .route(
                "/v1/chat/completions",
                post(|s: State<Shared>, h: HeaderMap, b: Bytes| answer(s, h, b, Route::OpenAi)),
            )
            .route(
                "/v1/messages",
                post(|s: State<Shared>, h: HeaderMap, b: Bytes| answer(s, h, b, Route::Anthropic)),
            )
            .with_state(inner.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.expect("fake llm server");
        });
        FakeLlm { addr, inner, task }
    }

    /// The base URL for an OpenAI-compatible provider.
    pub fn openai_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The base URL for an Anthropic provider.
    pub fn anthropic_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Answers for the next requests, in order.
    pub fn script(&self, replies: impl IntoIterator<Item = Reply>) {
        self.inner.lock().unwrap().script.extend(replies);
    }

    /// The answer once the script is used up.
    pub fn always(&self, reply: Reply) {
        self.inner.lock().unwrap().standing = reply;
    }

    pub fn set_usage(&self, input: u64, output: u64) {
        self.inner.lock().unwrap().usage = (input, output);
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.inner.lock().unwrap().seen.clone()
    }

    pub fn count(&self) -> usize {
        self.inner.lock().unwrap().seen.len()
    }

    pub fn passes(&self) -> Vec<&'static str> {
        self.seen().iter().map(|s| s.pass).collect()
    }
}

fn pass_of(route: Route, body: &Value) -> &'static str {
    let seen = Seen {
        route,
        pass: "",
        body: body.clone(),
        headers: HeaderMap::new(),
        at: Instant::now(),
    };
    let (system, user) = (seen.system(), seen.user());
    if system.starts_with(mnemo::llm::CRITIQUE_MARK) {
        "critique"
    } else if user.contains(mnemo::llm::REPAIR_MARK) {
        "repair"
    } else if user.contains(mnemo::llm::REVIEW_MARK) {
        "refine"
    } else {
        "draft"
    }
}

/// The ids of the notes in a prompt ("#12 (2026-…)" lines).
pub fn note_ids(user: &str) -> Vec<u64> {
    user.lines()
        .filter_map(|l| l.strip_prefix('#'))
        .filter_map(|l| l.split_once(" ("))
        .filter_map(|(id, _)| id.parse().ok())
        .collect()
}

async fn answer(
    State(inner): State<Shared>,
    headers: HeaderMap,
    body: Bytes,
    route: Route,
) -> Response {
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let pass = parsed.as_ref().map_or("invalid", |b| pass_of(route, b));
    let body = parsed.unwrap_or(Value::Null);
    let (mut reply, usage) = {
        let mut g = inner.lock().unwrap();
        g.seen.push(Seen {
            route,
            pass,
            body: body.clone(),
            headers,
            at: Instant::now(),
        });
        let r = g.script.pop_front().unwrap_or_else(|| g.standing.clone());
        (r, g.usage)
    };
    loop {
        match reply {
            Reply::Delay(d, next) => {
                tokio::time::sleep(d).await;
                reply = *next;
            }
            Reply::Auto => {
                let text = if pass == "critique" {
                    "OK".to_owned()
                } else {
                    let user = Seen {
                        route,
                        pass,
                        body: body.clone(),
                        headers: HeaderMap::new(),
                        at: Instant::now(),
                    }
                    .user();
                    let ids: Vec<String> = note_ids(&user)
                        .iter()
                        .take(2)
                        .map(|i| format!("#{i}"))
                        .collect();
                    format!("- What the period held ({}).", ids.join(", "))
                };
                return ok(route, &text, usage);
            }
            Reply::Text(t) => return ok(route, &t, usage),
            Reply::Malformed => {
                return (
                    StatusCode::OK,
                    [("content-type", "application/json")],
                    "{\"choices\": [",
                )
                    .into_response()
            }
            Reply::Status(code, v, after) => {
                let code = StatusCode::from_u16(code).expect("status");
                let mut r = (code, axum::Json(v)).into_response();
                if let Some(s) = after {
                    r.headers_mut()
                        .insert("retry-after", s.to_string().parse().unwrap());
                }
                return r;
            }
        }
    }
}

fn ok(route: Route, text: &str, (input, output): (u64, u64)) -> Response {
    let v = match route {
        Route::OpenAi => json!({
            "id": "chatcmpl-fake",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": input, "completion_tokens": output, "total_tokens": input + output},
        }),
        Route::Anthropic => json!({
            "id": "msg_fake",
            "type": "message",
            "role": "assistant",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": input, "output_tokens": output},
        }),
    };
    axum::Json(v).into_response()
}
