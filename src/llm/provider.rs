//! One HTTP call to one provider, and its bounded retries.
//!
//! Two wire formats: OpenAI-compatible `POST {base}/chat/completions`
//! (Bearer key; `usage.prompt_tokens/completion_tokens`) and Anthropic
//! `POST {host}/v1/messages` (`x-api-key`, `anthropic-version`;
//! `usage.input_tokens/output_tokens`). Only the fields mnemo reads are
//! modelled.
//!
//! The key is sent in a header and nowhere else: errors carry the status and
//! a short, scrubbed piece of the body, never the key or the request.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::prompt::Prompt;
use crate::config::{LlmPrice, LlmProvider, LlmProviderConfig, Secret};

const OPENAI_DEFAULT: &str = "https://api.openai.com/v1";
const ANTHROPIC_DEFAULT: &str = "https://api.anthropic.com";
const ANTHROPIC_VERSION: &str = "2023-06-01";
/// No single wait between retries is longer; a provider asking for more
/// (`retry-after`) is left for the next one.
pub const MAX_BACKOFF: Duration = Duration::from_secs(10);

/// A configured provider, ready to call.
pub struct Provider {
    pub kind: LlmProvider,
    pub model: String,
    url: String,
    key: Secret,
    pub price: Option<LlmPrice>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider")
            .field("kind", &self.kind)
            .field("model", &self.model)
            .field("url", &self.url)
            .field("key", &self.key)
            .finish()
    }
}

/// A provider's answer.
#[derive(Debug, Clone)]
pub struct Answer {
    pub text: String,
    /// From `usage`; None when the server sent none.
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
}

/// Why a call failed. Its `Display` never contains the key.
#[derive(Debug, Clone, PartialEq)]
pub enum CallError {
    Timeout,
    Connect(String),
    Http {
        status: u16,
        retry_after: Option<Duration>,
        /// A 429 that reports a spend limit, exhausted quota or billing
        /// problem: waiting does not help.
        spend_limit: bool,
        detail: String,
    },
    Malformed(String),
}

impl std::fmt::Display for CallError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallError::Timeout => f.write_str("timed out"),
            CallError::Connect(e) => write!(f, "connection failed: {e}"),
            CallError::Http {
                status,
                spend_limit,
                detail,
                ..
            } => {
                write!(f, "HTTP {status}")?;
                if *spend_limit {
                    f.write_str(" (spend limit)")?;
                }
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            CallError::Malformed(e) => write!(f, "malformed answer: {e}"),
        }
    }
}

impl CallError {
    /// Worth trying again on the same provider: a timeout, a connection
    /// error, 5xx (529 "overloaded" included) or a 429 that is a rate limit.
    pub fn retryable(&self) -> bool {
        match self {
            CallError::Timeout | CallError::Connect(_) => true,
            CallError::Http {
                status,
                spend_limit,
                ..
            } => *status >= 500 || (*status == 429 && !spend_limit),
            CallError::Malformed(_) => false,
        }
    }
}

/// Words providers use when a 429 is about money, not speed.
const SPEND_WORDS: &[&str] = &[
    "insufficient_quota",
    "exceeded your current quota",
    "spend limit",
    "spending limit",
    "usage limit",
    "billing",
    "credit balance",
    "quota exceeded",
];

pub fn is_spend_limit(body: &str) -> bool {
    let b = body.to_ascii_lowercase();
    SPEND_WORDS.iter().any(|w| b.contains(w))
}

/// The delay before retry `attempt` (0-based): `base · 2^attempt`, with
/// "equal jitter" (half fixed, half random), at least the server's
/// `retry-after`, at most [`MAX_BACKOFF`]. None when the server asks for more
/// than that: then the next provider is better than waiting.
pub fn backoff(base: Duration, attempt: u32, retry_after: Option<Duration>) -> Option<Duration> {
    if retry_after.is_some_and(|r| r > MAX_BACKOFF) {
        return None;
    }
    let exp = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(MAX_BACKOFF);
    let half = exp / 2;
    let jitter = half.mul_f64(unit_random());
    Some((half + jitter).max(retry_after.unwrap_or_default()))
}

fn unit_random() -> f64 {
    (getrandom::u32().unwrap_or(u32::MAX / 2) as f64) / (u32::MAX as f64)
}

fn retry_after(h: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| {
        h.get(name)
            .and_then(|v| v.to_str().ok())?
            .trim()
            .parse::<f64>()
            .ok()
    };
    if let Some(ms) = get("retry-after-ms") {
        return Some(Duration::from_secs_f64(ms.max(0.0) / 1000.0));
    }
    // An HTTP date is not parsed: then only the backoff applies.
    get("retry-after").map(|s| Duration::from_secs_f64(s.clamp(0.0, 86_400.0)))
}

impl Provider {
    /// `key`: the configured one, else the kind's usual variable.
    pub fn new(cfg: &LlmProviderConfig, price: Option<LlmPrice>) -> Provider {
        let base = cfg.base_url.trim().trim_end_matches('/');
        let (url, env) = match cfg.provider {
            LlmProvider::Anthropic => {
                let host = if base.is_empty() {
                    ANTHROPIC_DEFAULT
                } else {
                    base.strip_suffix("/v1").unwrap_or(base)
                };
                (format!("{host}/v1/messages"), "ANTHROPIC_API_KEY")
            }
            _ => {
                let b = if base.is_empty() {
                    OPENAI_DEFAULT
                } else {
                    base
                };
                (format!("{b}/chat/completions"), "OPENAI_API_KEY")
            }
        };
        let key = if cfg.api_key.is_empty() {
            Secret::new(std::env::var(env).unwrap_or_default().trim())
        } else {
            Secret::new(cfg.api_key.expose().trim())
        };
        Provider {
            kind: cfg.provider,
            model: cfg.model.trim().to_owned(),
            url,
            key,
            price,
        }
    }

    /// "openai/gpt-4o-mini".
    pub fn label(&self) -> String {
        format!("{}/{}", self.kind.name(), self.model)
    }

    pub fn cost(&self, input: u64, output: u64) -> Option<f64> {
        self.price.map(|p| {
            (input as f64 * p.input_per_mtok + output as f64 * p.output_per_mtok) / 1_000_000.0
        })
    }

    /// One HTTP call, no retries.
    pub async fn call(
        &self,
        http: &reqwest::Client,
        prompt: &Prompt,
        max_output: usize,
        timeout: Duration,
    ) -> Result<Answer, CallError> {
        let mut rb = http.post(&self.url).timeout(timeout);
        rb = match self.kind {
            LlmProvider::Anthropic => {
                let body = AnthropicRequest {
                    model: &self.model,
                    max_tokens: max_output,
                    temperature: 0.2,
                    system: &prompt.system,
                    messages: vec![Msg {
                        role: "user",
                        content: &prompt.user,
                    }],
                };
                let rb = rb
                    .json(&body)
                    .header("anthropic-version", ANTHROPIC_VERSION);
                if self.key.is_empty() {
                    rb
                } else {
                    rb.header("x-api-key", self.key.expose())
                }
            }
            _ => {
                let body = OpenAiRequest {
                    model: &self.model,
                    max_tokens: max_output,
                    temperature: 0.2,
                    messages: vec![
                        Msg {
                            role: "system",
                            content: &prompt.system,
                        },
                        Msg {
                            role: "user",
                            content: &prompt.user,
                        },
                    ],
                };
                let rb = rb.json(&body);
                if self.key.is_empty() {
                    rb
                } else {
                    rb.bearer_auth(self.key.expose())
                }
            }
        };
        let resp = rb.send().await.map_err(|e| self.transport(e))?;
        let status = resp.status();
        let after = retry_after(resp.headers());
        let body = resp.text().await.map_err(|e| self.transport(e))?;
        if !status.is_success() {
            let code = status.as_u16();
            return Err(CallError::Http {
                status: code,
                retry_after: after,
                spend_limit: code == 429 && is_spend_limit(&body),
                detail: self.scrub(&error_detail(&body)),
            });
        }
        self.parse(&body)
    }

    fn parse(&self, body: &str) -> Result<Answer, CallError> {
        let bad = |e: serde_json::Error| CallError::Malformed(e.to_string());
        match self.kind {
            LlmProvider::Anthropic => {
                let r: AnthropicResponse = serde_json::from_str(body).map_err(bad)?;
                let text = r
                    .content
                    .iter()
                    .filter(|b| b.kind == "text")
                    .filter_map(|b| b.text.as_deref())
                    .collect::<Vec<_>>()
                    .join("");
                Ok(Answer {
                    text,
                    input_tokens: r.usage.as_ref().and_then(|u| u.input_tokens),
                    output_tokens: r.usage.as_ref().and_then(|u| u.output_tokens),
                })
            }
            _ => {
                let r: OpenAiResponse = serde_json::from_str(body).map_err(bad)?;
                let text = r
                    .choices
                    .into_iter()
                    .next()
                    .ok_or_else(|| CallError::Malformed("no choices".into()))?
                    .message
                    .content
                    .unwrap_or_default();
                Ok(Answer {
                    text,
                    input_tokens: r.usage.as_ref().and_then(|u| u.prompt_tokens),
                    output_tokens: r.usage.as_ref().and_then(|u| u.completion_tokens),
                })
            }
        }
    }

    fn transport(&self, e: reqwest::Error) -> CallError {
        if e.is_timeout() {
            CallError::Timeout
        } else if e.is_decode() || e.is_body() {
            CallError::Malformed(self.scrub(&e.to_string()))
        } else {
            // The URL is in the message; the key never is (it is a header).
            let mut msg = e.to_string();
            let mut src = std::error::Error::source(&e);
            while let Some(s) = src {
                msg.push_str(": ");
                msg.push_str(&s.to_string());
                src = s.source();
            }
            CallError::Connect(self.scrub(&msg))
        }
    }

    /// A server may echo what it was sent; the key is cut out all the same.
    fn scrub(&self, s: &str) -> String {
        let k = self.key.expose();
        if k.len() >= 4 {
            s.replace(k, "<redacted>")
        } else {
            s.to_owned()
        }
    }
}

/// The provider's error message if the body has one, else its start.
fn error_detail(body: &str) -> String {
    let msg = serde_json::from_str::<Value>(body).ok().and_then(|v| {
        let e = v.get("error")?;
        e.get("message")
            .and_then(Value::as_str)
            .or_else(|| e.as_str())
            .map(str::to_owned)
    });
    let s = msg.unwrap_or_else(|| body.trim().to_owned());
    s.chars().take(200).collect()
}

#[derive(Serialize)]
struct Msg<'a> {
    role: &'static str,
    content: &'a str,
}

#[derive(Serialize)]
struct OpenAiRequest<'a> {
    model: &'a str,
    messages: Vec<Msg<'a>>,
    max_tokens: usize,
    temperature: f32,
}

#[derive(Deserialize)]
struct OpenAiResponse {
    choices: Vec<OpenAiChoice>,
    usage: Option<OpenAiUsage>,
}

#[derive(Deserialize)]
struct OpenAiChoice {
    message: OpenAiMessage,
}

#[derive(Deserialize)]
struct OpenAiMessage {
    content: Option<String>,
}

#[derive(Deserialize)]
struct OpenAiUsage {
    prompt_tokens: Option<u64>,
    completion_tokens: Option<u64>,
}

#[derive(Serialize)]
struct AnthropicRequest<'a> {
    model: &'a str,
    max_tokens: usize,
    temperature: f32,
    system: &'a str,
    messages: Vec<Msg<'a>>,
}

#[derive(Deserialize)]
struct AnthropicResponse {
    content: Vec<AnthropicBlock>,
    usage: Option<AnthropicUsage>,
}

#[derive(Deserialize)]
struct AnthropicBlock {
    #[serde(rename = "type")]
    kind: String,
    text: Option<String>,
}

#[derive(Deserialize)]
struct AnthropicUsage {
    input_tokens: Option<u64>,
    output_tokens: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spend_limit_429s_are_told_from_rate_limits() {
        assert!(is_spend_limit(
            r#"{"error":{"message":"You exceeded your current quota, please check your plan and billing details.","type":"insufficient_quota"}}"#
        ));
        assert!(is_spend_limit(
            r#"{"type":"error","error":{"type":"rate_limit_error","message":"You have reached your specified API usage limits."}}"#
        ));
        assert!(!is_spend_limit(
            r#"{"error":{"message":"Rate limit reached for requests","type":"requests"}}"#
        ));
        let e = |status, spend_limit| CallError::Http {
            status,
            retry_after: None,
            spend_limit,
            detail: String::new(),
        };
        assert!(
            e(429, false).retryable() && e(500, false).retryable() && e(529, false).retryable()
        );
        assert!(
            !e(429, true).retryable() && !e(401, false).retryable() && !e(400, false).retryable()
        );
        assert!(CallError::Timeout.retryable());
        assert!(!CallError::Malformed("x".into()).retryable());
    }

    #[test]
    fn backoff_doubles_with_jitter_honours_retry_after_and_is_capped() {
        let base = Duration::from_millis(400);
        for attempt in 0..6 {
            let d = backoff(base, attempt, None).unwrap();
            let exp = (base * (1 << attempt)).min(MAX_BACKOFF);
            assert!(d >= exp / 2 && d <= exp, "{attempt}: {d:?}");
        }
        let d = backoff(base, 0, Some(Duration::from_secs(3))).unwrap();
        assert!(d >= Duration::from_secs(3) && d <= MAX_BACKOFF);
        assert_eq!(backoff(base, 0, Some(Duration::from_secs(60))), None);
    }

    #[test]
    fn urls_and_keys_by_kind() {
        let cfg = |provider, base_url: &str| LlmProviderConfig {
            provider,
            base_url: base_url.into(),
            model: " m ".into(),
            api_key: Secret::new("sk-configured"),
        };
        let p = Provider::new(&cfg(LlmProvider::Openai, "http://127.0.0.1:8080/v1/"), None);
        assert_eq!(p.url, "http://127.0.0.1:8080/v1/chat/completions");
        assert_eq!(p.label(), "openai/m");
        let p = Provider::new(&cfg(LlmProvider::Anthropic, ""), None);
        assert_eq!(p.url, "https://api.anthropic.com/v1/messages");
        let p = Provider::new(&cfg(LlmProvider::Anthropic, "http://h:1/v1"), None);
        assert_eq!(p.url, "http://h:1/v1/messages");
        assert!(!format!("{p:?}").contains("sk-configured"));
        assert_eq!(
            p.scrub("bad key sk-configured given"),
            "bad key <redacted> given"
        );
        let price = LlmPrice {
            input_per_mtok: 1.0,
            output_per_mtok: 4.0,
        };
        let p = Provider::new(&cfg(LlmProvider::Openai, ""), Some(price));
        assert_eq!(p.cost(1_000_000, 500_000), Some(3.0));
    }

    #[test]
    fn error_detail_prefers_the_message() {
        assert_eq!(
            error_detail(r#"{"error":{"message":"overloaded","type":"overloaded_error"}}"#),
            "overloaded"
        );
        assert_eq!(
            error_detail("<html>bad gateway</html>"),
            "<html>bad gateway</html>"
        );
    }
}
