//! Optional LLM summaries of a digest period's notes.
//!
//! Digests are extractive by default; with `[llm] provider` set, the digest
//! asks [`Llm::summarize`] for a summary and uses it only when the answer is
//! [`Outcome::Summary`]. Everything else (no provider, the daily limit, every
//! provider failing) leaves the extractive digest in charge, and the outcome
//! says which, so the digest can say it.
//!
//! What holds for every summary:
//! - **Only the notes.** The notes are sent with their ids; every statement
//!   must cite them (`#12`). The final text is checked here: an answer that
//!   is empty, cites no note, or cites an id that was not sent is never
//!   returned (three passes: it gets one repair request naming the problem;
//!   then, or with one pass, the provider counts as failed).
//! - **A budget.** No request is larger than `max_input_tokens` (tiktoken,
//!   o200k): the notes are ranked and cut, and the prompt says how many were
//!   left out ([`Summary::left_out`]).
//! - **Bounded calls.** Each call has a timeout; a timeout, connection error,
//!   5xx, 529 or rate-limit 429 is retried at most `max_retries` times with
//!   jittered exponential backoff (honouring `retry-after`, capped at 10 s),
//!   then the next provider is tried from its draft. A 429 about a spend
//!   limit or quota, any other 4xx and a malformed answer skip to the next
//!   provider at once.
//! - **A deadline.** A whole summary (every pass, retry and provider) ends
//!   after `deadline_secs`, as `Unavailable`.
//! - **Spend recorded.** Every answered call is written to the store
//!   (`llm_calls`) right away, with the provider's token counts and the
//!   estimate; the daily limit is checked against them before any call.
//! - **The key stays secret.** It is sent in a header only; errors and logs
//!   carry status codes and scrubbed provider messages.

mod prompt;
mod provider;

use std::sync::Arc;
use std::time::{Duration, Instant};

pub use prompt::{citations, tokens, CRITIQUE_MARK, REPAIR_MARK, REVIEW_MARK};
pub use provider::MAX_BACKOFF;

use crate::config::LlmConfig;
use crate::store::{LlmCall, Store};
use prompt::{Material, Pass};
use provider::{Answer, CallError, Provider};

/// A note of the period, as the digest hands it over.
#[derive(Debug, Clone, PartialEq)]
pub struct SourceNote {
    pub id: u64,
    pub at_ms: i64,
    pub text: String,
    pub priority: bool,
    pub decision: bool,
    pub todo: bool,
    /// Net feedback votes.
    pub score: i32,
}

/// What to summarise.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub chat_id: i64,
    /// "hour", "day" or "week".
    pub period: String,
    pub from_ms: i64,
    pub to_ms: i64,
    /// "en" or "de": the language of the summary.
    pub lang: String,
    pub notes: Vec<SourceNote>,
}

/// Tokens of all calls made for one summary (failed providers included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    /// As the providers counted them (`usage`; the estimate where a server
    /// sent none).
    pub input: u64,
    pub output: u64,
    /// Counted here with tiktoken before sending.
    pub estimated_input: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    /// Plain text citing notes as `#<id>`; every cited id is one of the
    /// request's notes.
    pub text: String,
    /// "llm:<provider>/<model>" of the provider that wrote it.
    pub source: String,
    pub tokens: Tokens,
    /// What the calls for it cost; None when some model had no price.
    pub cost_usd: Option<f64>,
    /// Notes of the request that did not fit the budget.
    pub left_out: usize,
    /// The passes made by the provider that wrote it (1 or 3, plus a repair).
    pub calls: u32,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Summary(Summary),
    /// Every provider failed: the extractive digest must say the summary
    /// service was unavailable.
    Unavailable {
        reason: String,
    },
    /// The daily cost or token limit is reached: extractive instead, say so.
    LimitReached,
    /// No provider configured (`provider = none`): what the digest uses
    /// when [`Llm::from_config`] gave None; `summarize` never returns it.
    Off,
}

/// What the input budget lets through, without calling anyone.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    /// The notes that fit, by id.
    pub ids: Vec<u64>,
    pub left_out: usize,
    /// Estimated input tokens of the first request (the draft).
    pub draft_tokens: usize,
}

/// Ranks and cuts `req`'s notes as a summary would (for `mnemo digest`
/// estimates and the benchmarks). None when not even one note fits.
pub fn budget(req: &Request, passes: u8, max_input: usize, max_output: usize) -> Option<Budget> {
    let m = prompt::material(req, passes, max_input, max_output)?;
    Some(Budget {
        draft_tokens: m.prompt(Pass::Draft, "", "", &[]).tokens(),
        ids: m.ids.into_iter().collect(),
        left_out: m.left_out,
    })
}

type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The configured providers, the HTTP client and the spend record.
pub struct Llm {
    providers: Vec<Provider>,
    passes: u8,
    max_input: usize,
    max_output: usize,
    cost_limit: f64,
    token_limit: u64,
    timeout: Duration,
    deadline: Duration,
    max_retries: u32,
    backoff: Duration,
    store: Store,
    http: reqwest::Client,
    now: Clock,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("providers", &self.providers)
            .field("passes", &self.passes)
            .field("max_input", &self.max_input)
            .finish_non_exhaustive()
    }
}

/// A provider's failure, for the log and [`Outcome::Unavailable`].
struct Failed {
    provider: String,
    why: String,
}

impl Llm {
    /// None when `provider = "none"`. Keys left empty in the config come
    /// from `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` (sent to whatever
    /// `base_url` the provider has, as the vendors' own clients do).
    pub fn from_config(cfg: &LlmConfig, store: Store) -> anyhow::Result<Option<Llm>> {
        let providers: Vec<Provider> = cfg
            .providers()
            .iter()
            .map(|p| Provider::new(p, cfg.prices.get(p.model.trim()).copied()))
            .collect();
        if providers.is_empty() {
            return Ok(None);
        }
        if let Some(p) = providers.iter().find(|p| p.model.is_empty()) {
            anyhow::bail!("llm: provider {} has no model", p.kind.name());
        }
        let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
        let http = reqwest::Client::builder()
            .user_agent(concat!("mnemo/", env!("CARGO_PKG_VERSION")))
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .build()?;
        for p in &providers {
            tracing::info!(
                provider = %p.label(),
                priced = p.price.is_some(),
                "llm summaries on"
            );
        }
        Ok(Some(Llm {
            providers,
            passes: if cfg.passes == 1 { 1 } else { 3 },
            max_input: cfg.max_input_tokens,
            max_output: cfg.max_output_tokens.max(1),
            cost_limit: cfg.daily_cost_limit_usd,
            token_limit: cfg.daily_token_limit,
            timeout,
            deadline: Duration::from_secs(cfg.deadline_secs.max(1)),
            max_retries: cfg.max_retries,
            backoff: Duration::from_millis(cfg.backoff_ms),
            store,
            http,
            now: Arc::new(|| chrono::Utc::now().timestamp_millis()),
        }))
    }

    /// Replaces the wall clock (unix ms) used for the daily limit and the
    /// spend record.
    pub fn with_clock(mut self, now: impl Fn() -> i64 + Send + Sync + 'static) -> Llm {
        self.now = Arc::new(now);
        self
    }

    /// "openai/gpt-4o-mini, anthropic/claude-haiku-4-5": the providers in
    /// the order they are tried.
    pub fn describe(&self) -> String {
        let v: Vec<String> = self.providers.iter().map(Provider::label).collect();
        v.join(", ")
    }

    /// Whether today's spend (UTC day) has reached a daily limit: the cost
    /// limit against the calls with a known price, and, once some call of
    /// the day had no price, the token limit against all of the day's tokens.
    pub fn limit_reached(&self) -> Result<bool, crate::store::StoreError> {
        let today = self.store.llm_spend((self.now)())?.today;
        let cost = self.cost_limit > 0.0 && today.priced_cost_usd >= self.cost_limit;
        let tokens =
            self.token_limit > 0 && today.unpriced_calls > 0 && today.tokens() >= self.token_limit;
        Ok(cost || tokens)
    }

    /// A summary of `req`'s notes, or why there is none. Never fails in
    /// another way and never returns an empty or unchecked summary.
    pub async fn summarize(&self, req: &Request) -> Outcome {
        match self.limit_reached() {
            Ok(false) => {}
            Ok(true) => {
                tracing::info!(chat = req.chat_id, "llm daily limit reached; no call made");
                return Outcome::LimitReached;
            }
            Err(e) => {
                return Outcome::Unavailable {
                    reason: format!("cannot read the spend record: {e}"),
                }
            }
        }
        if req.notes.is_empty() {
            return Outcome::Unavailable {
                reason: "no notes to summarise".into(),
            };
        }
        let Some(m) = prompt::material(req, self.passes, self.max_input, self.max_output) else {
            return Outcome::Unavailable {
                reason: format!(
                    "llm.max_input_tokens ({}) leaves no room for a single note",
                    self.max_input
                ),
            };
        };
        let mut spent = Spent::default();
        let mut failures = Vec::new();
        let deadline = tokio::time::Instant::now() + self.deadline;
        for p in &self.providers {
            let tried =
                tokio::time::timeout_at(deadline, self.with_provider(p, req, &m, &mut spent)).await;
            let Ok(tried) = tried else {
                let why = format!(
                    "no summary within llm.deadline_secs ({} s)",
                    self.deadline.as_secs()
                );
                tracing::warn!(provider = %p.label(), error = %why, "llm provider failed");
                failures.push(Failed {
                    provider: p.label(),
                    why,
                });
                break;
            };
            match tried {
                Ok((text, calls)) => {
                    tracing::info!(
                        chat = req.chat_id,
                        provider = %p.label(),
                        notes = m.ids.len(),
                        left_out = m.left_out,
                        input = spent.tokens.input,
                        output = spent.tokens.output,
                        "llm summary written"
                    );
                    return Outcome::Summary(Summary {
                        text,
                        source: format!("llm:{}", p.label()),
                        tokens: spent.tokens,
                        cost_usd: spent.cost(),
                        left_out: m.left_out,
                        calls,
                    });
                }
                Err(why) => {
                    tracing::warn!(provider = %p.label(), error = %why, "llm provider failed");
                    failures.push(Failed {
                        provider: p.label(),
                        why,
                    });
                }
            }
        }
        let reason = failures
            .iter()
            .map(|f| format!("{}: {}", f.provider, f.why))
            .collect::<Vec<_>>()
            .join("; ");
        Outcome::Unavailable { reason }
    }

    /// The passes on one provider: the checked final text and the calls it
    /// took, or why this provider failed.
    async fn with_provider(
        &self,
        p: &Provider,
        req: &Request,
        m: &Material,
        spent: &mut Spent,
    ) -> Result<(String, u32), String> {
        let clip = |s: &str| prompt::clip(s.trim(), self.max_output);
        let draft = self
            .pass(p, req, m, Pass::Draft, "", "", &[], spent)
            .await?;
        let mut calls = 1;
        let mut text = draft.clone();
        if self.passes == 3 {
            let draft = clip(&draft);
            if draft.is_empty() {
                return Err("empty draft".into());
            }
            let problems: Vec<String> = prompt::check(&draft, &m.ids)
                .err()
                .map(|e| format!("the draft: {e}"))
                .into_iter()
                .collect();
            let critique = self
                .pass(p, req, m, Pass::Critique, &draft, "", &problems, spent)
                .await?;
            let critique = clip(&critique);
            text = self
                .pass(p, req, m, Pass::Refine, &draft, &critique, &problems, spent)
                .await?;
            calls += 2;
            if let Err(problem) = prompt::check(&text, &m.ids) {
                tracing::info!(provider = %p.label(), %problem, "llm answer rejected; asking once more");
                let rejected = clip(&text);
                text = self
                    .pass(p, req, m, Pass::Repair, &rejected, "", &[problem], spent)
                    .await?;
                calls += 1;
            }
        }
        let text = text.trim().to_owned();
        prompt::check(&text, &m.ids).map_err(|e| format!("answer rejected: {e}"))?;
        Ok((text, calls))
    }

    /// One pass: the call with its retries; every answer is recorded.
    #[allow(clippy::too_many_arguments)]
    async fn pass(
        &self,
        p: &Provider,
        req: &Request,
        m: &Material,
        pass: Pass,
        draft: &str,
        critique: &str,
        problems: &[String],
        spent: &mut Spent,
    ) -> Result<String, String> {
        let prompt = m.prompt(pass, draft, critique, problems);
        let estimate = prompt.tokens() as u64;
        let mut attempt = 0;
        loop {
            let t0 = Instant::now();
            let err = match p
                .call(&self.http, &prompt, self.max_output, self.timeout)
                .await
            {
                Ok(answer) => {
                    self.record(p, req, pass, estimate, &answer, spent).await;
                    tracing::debug!(
                        provider = %p.label(),
                        pass = pass.name(),
                        ms = t0.elapsed().as_millis() as u64,
                        estimate,
                        "llm call answered"
                    );
                    if answer.text.trim().is_empty() {
                        return Err(format!("{}: empty answer", pass.name()));
                    }
                    return Ok(answer.text);
                }
                Err(e) => e,
            };
            let wait = if err.retryable() && attempt < self.max_retries {
                let after = match &err {
                    CallError::Http { retry_after, .. } => *retry_after,
                    _ => None,
                };
                provider::backoff(self.backoff, attempt, after)
            } else {
                None
            };
            let Some(wait) = wait else {
                return Err(format!("{}: {err}", pass.name()));
            };
            tracing::info!(
                provider = %p.label(),
                pass = pass.name(),
                error = %err,
                attempt = attempt + 1,
                wait_ms = wait.as_millis() as u64,
                "llm call failed; retrying"
            );
            tokio::time::sleep(wait).await;
            attempt += 1;
        }
    }

    async fn record(
        &self,
        p: &Provider,
        req: &Request,
        pass: Pass,
        estimate: u64,
        a: &Answer,
        spent: &mut Spent,
    ) {
        let input = a.input_tokens.unwrap_or(estimate);
        let output = a
            .output_tokens
            .unwrap_or_else(|| prompt::tokens(&a.text) as u64);
        let call = LlmCall {
            at: (self.now)(),
            chat_id: req.chat_id,
            provider: p.kind.name().to_owned(),
            model: p.model.clone(),
            pass: pass.name().to_owned(),
            input_tokens: input,
            output_tokens: output,
            estimated_input: estimate,
            cost_usd: p.cost(input, output),
        };
        spent.add(&call);
        let store = self.store.clone();
        let written =
            tokio::task::spawn_blocking(move || store.write(|tx| tx.record_llm_call(&call))).await;
        match written {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!(error = %e, "cannot record an llm call"),
            Err(e) => tracing::error!(error = %e, "cannot record an llm call"),
        }
    }
}

/// What the calls of one summary added up to.
#[derive(Default)]
struct Spent {
    tokens: Tokens,
    cost: f64,
    unpriced: bool,
}

impl Spent {
    fn add(&mut self, c: &LlmCall) {
        self.tokens.input += c.input_tokens;
        self.tokens.output += c.output_tokens;
        self.tokens.estimated_input += c.estimated_input;
        match c.cost_usd {
            Some(usd) => self.cost += usd,
            None => self.unpriced = true,
        }
    }

    fn cost(&self) -> Option<f64> {
        (!self.unpriced).then_some(self.cost)
    }
}
