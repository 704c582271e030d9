//! LLM summaries end to end: the real reqwest client of `mnemo::llm` talks to
//! fake providers on 127.0.0.1 (tests/support/fake_llm.rs).

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mnemo::config::{Config, LlmConfig, LlmPrice, LlmProvider, LlmProviderConfig, Secret};
use mnemo::llm::{citations, tokens, Llm, Outcome, Request, SourceNote, Summary};
use mnemo::store::Store;
use serde_json::json;

use support::fake_llm::{note_ids, FakeLlm, Reply};

const KEY: &str = "sk-test-7f3a9c1e5b2d4f6a8c0e";
const MODEL: &str = "test-model";

fn config(kind: LlmProvider, url: &str, passes: u8) -> LlmConfig {
    let mut c = Config::defaults().llm;
    c.provider = kind;
    c.base_url = url.to_owned();
    c.model = MODEL.to_owned();
    c.api_key = Secret::new(KEY);
    c.passes = passes;
    c.timeout_secs = 1;
    c.max_retries = 2;
    c.backoff_ms = 5;
    c
}

fn fallback(c: &mut LlmConfig, kind: LlmProvider, url: &str) {
    c.fallback.push(LlmProviderConfig {
        provider: kind,
        base_url: url.to_owned(),
        model: "second-model".to_owned(),
        api_key: Secret::new("sk-second"),
    });
}

fn note(id: u64, text: &str) -> SourceNote {
    SourceNote {
        id,
        at_ms: 1_779_000_000_000 + id as i64 * 60_000,
        text: text.to_owned(),
        priority: false,
        decision: false,
        todo: false,
        score: 0,
    }
}

fn request(notes: Vec<SourceNote>) -> Request {
    Request {
        chat_id: 42,
        period: "day".into(),
        from_ms: 1_779_000_000_000,
        to_ms: 1_779_086_400_000,
        lang: "en".into(),
        notes,
    }
}

fn day() -> Request {
    let mut v = vec![
        note(11, "dentist on Tuesday at 10"),
        note(12, "decided: we take the flat on Elm Street"),
        note(15, "todo: call Anna about the deposit"),
    ];
    v[1].decision = true;
    v[2].todo = true;
    request(v)
}

struct Env {
    _dir: tempfile::TempDir,
    store: Store,
}

fn env() -> Env {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    Env { _dir: dir, store }
}

fn llm(e: &Env, c: &LlmConfig) -> Llm {
    Llm::from_config(c, e.store.clone())
        .unwrap()
        .expect("provider set")
}

#[track_caller]
fn summary(o: Outcome) -> Summary {
    match o {
        Outcome::Summary(s) => s,
        other => panic!("expected a summary, got {other:?}"),
    }
}

/// Every id the final text cites is one of the request's notes.
#[track_caller]
fn cites_only_real_ids(s: &Summary, req: &Request) {
    let cited = citations(&s.text);
    assert!(!cited.is_empty(), "{}", s.text);
    for id in cited {
        assert!(req.notes.iter().any(|n| n.id == id), "#{id} in {}", s.text);
    }
}

#[tokio::test]
async fn three_passes_draft_critique_refine_and_cite_only_real_ids() {
    let e = env();
    let fake = FakeLlm::start().await;
    fake.script([
        Reply::text("- Dentist on Tuesday (#11)."),
        Reply::text("Missing: the decision about the flat (#12)."),
    ]);
    let req = day();
    let s = summary(
        llm(&e, &config(LlmProvider::Openai, &fake.openai_url(), 3))
            .summarize(&req)
            .await,
    );
    assert_eq!(fake.passes(), ["draft", "critique", "refine"]);
    cites_only_real_ids(&s, &req);
    assert_eq!(s.source, "llm:openai/test-model");
    assert_eq!((s.left_out, s.calls), (0, 3));
    assert_eq!((s.tokens.input, s.tokens.output), (300, 60));
    assert!(s.tokens.estimated_input > 0);
    let seen = fake.seen();
    // The wire format: bearer key, the model, the answer cap, the notes with ids.
    assert_eq!(
        seen[0].header("authorization").unwrap(),
        format!("Bearer {KEY}")
    );
    assert_eq!(seen[0].body["model"], MODEL);
    assert_eq!(seen[0].body["max_tokens"], 800);
    assert_eq!(note_ids(&seen[0].user()), [11, 12, 15]);
    assert!(seen[0].user().contains("[decision]") && seen[0].system().contains("English"));
    // The critique sees the draft; the refine sees draft and critique.
    assert!(seen[1].user().contains("- Dentist on Tuesday (#11)."));
    assert!(seen[2]
        .user()
        .contains("Missing: the decision about the flat"));
    assert!(seen[2].user().contains("- Dentist on Tuesday (#11)."));
    // Every call is in the spend record, with both counts.
    let calls = e.store.llm_calls(0).unwrap();
    let p: Vec<&str> = calls.iter().map(|c| c.pass.as_str()).collect();
    assert_eq!(p, ["draft", "critique", "refine"]);
    assert!(calls
        .iter()
        .all(|c| c.input_tokens == 100 && c.estimated_input > 0));
}

#[tokio::test]
async fn one_pass_in_anthropic_shape() {
    let e = env();
    let fake = FakeLlm::start().await;
    fake.script([Reply::text(
        "- Take the flat on Elm Street (#12); call Anna (#15).",
    )]);
    let mut req = day();
    req.lang = "de".into();
    let s = summary(
        llm(
            &e,
            &config(LlmProvider::Anthropic, &fake.anthropic_url(), 1),
        )
        .summarize(&req)
        .await,
    );
    assert_eq!(
        s.text,
        "- Take the flat on Elm Street (#12); call Anna (#15)."
    );
    assert_eq!(
        (s.source.as_str(), s.calls),
        ("llm:anthropic/test-model", 1)
    );
    assert_eq!(fake.passes(), ["draft"]);
    let seen = &fake.seen()[0];
    assert_eq!(seen.header("x-api-key").unwrap(), KEY);
    assert_eq!(seen.header("anthropic-version").unwrap(), "2023-06-01");
    assert!(seen.header("authorization").is_none());
    assert!(seen.system().contains("German"));
    assert_eq!(seen.body["messages"][0]["role"], "user");
    assert_eq!(seen.body["messages"].as_array().unwrap().len(), 1);
}

/// First provider fails with `first`; the second answers.
async fn falls_back(first: Reply, kind: LlmProvider, retries: u32) -> (FakeLlm, FakeLlm, Summary) {
    let e = env();
    let (a, b) = (FakeLlm::start().await, FakeLlm::start().await);
    a.always(first);
    let url = match kind {
        LlmProvider::Anthropic => a.anthropic_url(),
        _ => a.openai_url(),
    };
    let mut c = config(kind, &url, 3);
    c.max_retries = retries;
    fallback(&mut c, LlmProvider::Openai, &b.openai_url());
    let s = summary(llm(&e, &c).summarize(&day()).await);
    assert_eq!(s.source, "llm:openai/second-model");
    assert_eq!(b.passes(), ["draft", "critique", "refine"]);
    assert_eq!(
        b.seen()[0].header("authorization").unwrap(),
        "Bearer sk-second"
    );
    (a, b, s)
}

#[tokio::test]
async fn a_500_is_retried_a_bounded_number_of_times_then_the_next_provider_answers() {
    let (a, _, _) = falls_back(
        Reply::error(500, "server_error", "boom"),
        LlmProvider::Openai,
        2,
    )
    .await;
    assert_eq!(a.passes(), ["draft"; 3], "one call and two retries");
}

#[tokio::test]
async fn a_timeout_goes_to_the_next_provider() {
    let t0 = Instant::now();
    let (a, _, _) = falls_back(Reply::hang(), LlmProvider::Openai, 1).await;
    assert_eq!(a.count(), 2);
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(10),
        "{took:?}"
    );
}

#[tokio::test]
async fn the_deadline_bounds_a_whole_summary() {
    let e = env();
    let (a, b) = (FakeLlm::start().await, FakeLlm::start().await);
    a.always(Reply::hang());
    let mut c = config(LlmProvider::Openai, &a.openai_url(), 3);
    c.max_retries = 5;
    c.deadline_secs = 2;
    fallback(&mut c, LlmProvider::Openai, &b.openai_url());
    let t0 = Instant::now();
    let out = llm(&e, &c).summarize(&day()).await;
    let took = t0.elapsed();
    let Outcome::Unavailable { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("deadline_secs (2 s)"), "{reason}");
    assert!(
        took >= Duration::from_secs(2) && took < Duration::from_secs(4),
        "{took:?}"
    );
    assert_eq!((a.count(), b.count()), (2, 0));
}

#[tokio::test]
async fn an_overloaded_529_goes_to_the_next_provider() {
    let (a, _, _) = falls_back(
        Reply::error(529, "overloaded_error", "Overloaded"),
        LlmProvider::Anthropic,
        2,
    )
    .await;
    assert_eq!(a.count(), 3);
}

#[tokio::test]
async fn a_429_with_a_spend_limit_skips_the_provider_without_retrying() {
    let body = json!({"error": {"message": "You exceeded your current quota, please check your plan and billing details.", "type": "insufficient_quota", "code": "insufficient_quota"}});
    let (a, _, _) = falls_back(Reply::Status(429, body, Some(1)), LlmProvider::Openai, 2).await;
    assert_eq!(a.count(), 1, "no retry on a spend limit");
}

#[tokio::test]
async fn malformed_json_goes_to_the_next_provider() {
    let (a, _, _) = falls_back(Reply::Malformed, LlmProvider::Openai, 2).await;
    assert_eq!(a.count(), 1);
}

#[tokio::test]
async fn a_rate_limit_429_waits_for_retry_after_and_stays() {
    let e = env();
    let fake = FakeLlm::start().await;
    let rate = json!({"error": {"message": "Rate limit reached for requests", "type": "requests"}});
    fake.script([Reply::Status(429, rate, Some(1))]);
    let t0 = Instant::now();
    let s = summary(
        llm(&e, &config(LlmProvider::Openai, &fake.openai_url(), 1))
            .summarize(&day())
            .await,
    );
    assert_eq!(s.source, "llm:openai/test-model");
    assert_eq!(fake.count(), 2);
    let seen = fake.seen();
    assert!(
        seen[1].at - seen[0].at >= Duration::from_secs(1),
        "retry-after honoured"
    );
    assert!(t0.elapsed() < Duration::from_secs(5));
}

#[tokio::test]
async fn a_retry_after_beyond_the_cap_is_not_waited_for() {
    let e = env();
    let (a, b) = (FakeLlm::start().await, FakeLlm::start().await);
    let rate = json!({"error": {"message": "Rate limit reached", "type": "requests"}});
    a.always(Reply::Status(429, rate, Some(3600)));
    let mut c = config(LlmProvider::Openai, &a.openai_url(), 1);
    fallback(&mut c, LlmProvider::Openai, &b.openai_url());
    let t0 = Instant::now();
    summary(llm(&e, &c).summarize(&day()).await);
    assert_eq!(a.count(), 1);
    assert!(t0.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn when_every_provider_fails_the_outcome_is_unavailable() {
    let e = env();
    let (a, b) = (FakeLlm::start().await, FakeLlm::start().await);
    a.always(Reply::error(500, "server_error", "down"));
    b.always(Reply::error(503, "unavailable", "maintenance"));
    let mut c = config(LlmProvider::Openai, &a.openai_url(), 3);
    fallback(&mut c, LlmProvider::Anthropic, &b.anthropic_url());
    let t0 = Instant::now();
    let out = llm(&e, &c).summarize(&day()).await;
    let Outcome::Unavailable { reason } = out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("openai/test-model") && reason.contains("HTTP 500"),
        "{reason}"
    );
    assert!(
        reason.contains("anthropic/second-model") && reason.contains("HTTP 503"),
        "{reason}"
    );
    assert!(reason.contains("maintenance"), "{reason}");
    // Bounded: three attempts each, and quick with a small backoff.
    assert_eq!((a.count(), b.count()), (3, 3));
    assert!(t0.elapsed() < Duration::from_secs(3));
    assert!(
        e.store.llm_calls(0).unwrap().is_empty(),
        "failed calls cost nothing"
    );
}

#[tokio::test]
async fn an_invented_id_is_sent_back_once_for_repair() {
    let e = env();
    let fake = FakeLlm::start().await;
    fake.script([
        Reply::Auto,
        Reply::Auto,
        Reply::text("- The flat (#12), the boat (#999)."),
    ]);
    let req = day();
    let s = summary(
        llm(&e, &config(LlmProvider::Openai, &fake.openai_url(), 3))
            .summarize(&req)
            .await,
    );
    assert_eq!(fake.passes(), ["draft", "critique", "refine", "repair"]);
    let repair = &fake.seen()[3];
    assert!(
        repair
            .user()
            .contains("#999, which is not one of the notes"),
        "{}",
        repair.user()
    );
    assert!(repair.user().contains("- The flat (#12), the boat (#999)."));
    cites_only_real_ids(&s, &req);
    assert_eq!(s.calls, 4);
}

#[tokio::test]
async fn an_invented_id_that_stays_is_a_provider_failure() {
    let e = env();
    let (a, b) = (FakeLlm::start().await, FakeLlm::start().await);
    a.always(Reply::text("- Lunch with Bob (#999)."));
    let mut c = config(LlmProvider::Openai, &a.openai_url(), 3);
    fallback(&mut c, LlmProvider::Openai, &b.openai_url());
    let req = day();
    let s = summary(llm(&e, &c).summarize(&req).await);
    assert_eq!(a.passes(), ["draft", "critique", "refine", "repair"]);
    // The critique was told about the draft's invented id.
    assert!(a.seen()[1]
        .user()
        .contains("Automatic check: the draft: it cites #999"));
    assert_eq!(s.source, "llm:openai/second-model");
    cites_only_real_ids(&s, &req);
    // With one pass there is no repair: straight to the next provider, and
    // with no next one, no summary at all.
    let e = env();
    let one = FakeLlm::start().await;
    one.always(Reply::text("- Lunch with Bob (#999)."));
    let out = llm(&e, &config(LlmProvider::Openai, &one.openai_url(), 1))
        .summarize(&req)
        .await;
    let Outcome::Unavailable { reason } = out else {
        panic!("{out:?}")
    };
    assert!(reason.contains("#999"), "{reason}");
    assert_eq!(one.count(), 1);
}

#[tokio::test]
async fn an_empty_or_uncited_answer_is_never_a_summary() {
    for bad in ["", "   ", "- A fine day with many plans."] {
        let e = env();
        let fake = FakeLlm::start().await;
        fake.always(Reply::text(bad));
        let out = llm(&e, &config(LlmProvider::Openai, &fake.openai_url(), 1))
            .summarize(&day())
            .await;
        assert!(
            matches!(out, Outcome::Unavailable { .. }),
            "{bad:?}: {out:?}"
        );
    }
}

#[tokio::test]
async fn many_long_notes_are_cut_to_the_budget_and_the_cut_is_said() {
    let e = env();
    let fake = FakeLlm::start().await;
    let text = "the quarterly planning meeting moved again and the slides need the new numbers "
        .repeat(12);
    let mut notes: Vec<SourceNote> = (1..=200).map(|i| note(i, &text)).collect();
    notes[150].priority = true;
    notes[3].score = 5;
    let req = request(notes);
    let mut c = config(LlmProvider::Openai, &fake.openai_url(), 3);
    c.max_input_tokens = 3000;
    c.max_output_tokens = 400;
    // The critique and refine carry answers as long as the cap allows.
    let long = format!("- {} (#151)", "word ".repeat(380));
    fake.script([Reply::text(&long), Reply::text(&long)]);
    let s = summary(llm(&e, &c).summarize(&req).await);
    assert!(s.left_out > 150 && s.left_out < 200, "{}", s.left_out);
    let seen = fake.seen();
    assert_eq!(seen.len(), 3);
    for r in &seen {
        let t = tokens(&r.system()) + tokens(&r.user());
        assert!(t <= 3000, "{} request: {t} tokens", r.pass);
    }
    let ids = note_ids(&seen[0].user());
    assert_eq!(ids.len(), 200 - s.left_out);
    assert!(
        ids.contains(&151) && ids.contains(&4),
        "priority and score first: {ids:?}"
    );
    assert!(seen[0].user().contains(&format!(
        "{} more notes of this period were left out",
        s.left_out
    )));
}

#[tokio::test]
async fn spend_is_recorded_and_the_daily_cost_limit_stops_calls() {
    let e = env();
    let fake = FakeLlm::start().await;
    let mut c = config(LlmProvider::Openai, &fake.openai_url(), 3);
    // 100 input tokens per call at $10,000 per million: $1 a call.
    c.prices.insert(
        MODEL.into(),
        LlmPrice {
            input_per_mtok: 10_000.0,
            output_per_mtok: 0.0,
        },
    );
    c.daily_cost_limit_usd = 2.0;
    let now = 1_779_278_400_000; // 2026-05-20 12:00 UTC
    let s = summary(llm(&e, &c).with_clock(move || now).summarize(&day()).await);
    assert_eq!(s.cost_usd, Some(3.0));
    let spend = e.store.llm_spend(now).unwrap();
    assert_eq!(
        (
            spend.today.calls,
            spend.today.input_tokens,
            spend.today.output_tokens
        ),
        (3, 300, 60)
    );
    assert_eq!(
        (spend.today.cost_usd, spend.month.cost_usd),
        (Some(3.0), Some(3.0))
    );
    // Over the limit: no HTTP call at all.
    let out = llm(&e, &c)
        .with_clock(move || now + 3_600_000)
        .summarize(&day())
        .await;
    assert_eq!(out, Outcome::LimitReached);
    assert_eq!(fake.count(), 3);
    // The next UTC day starts afresh.
    let tomorrow = now + 12 * 3_600_000;
    summary(
        llm(&e, &c)
            .with_clock(move || tomorrow)
            .summarize(&day())
            .await,
    );
    assert_eq!(fake.count(), 6);
    assert_eq!(e.store.llm_spend(tomorrow).unwrap().month.calls, 6);
}

#[tokio::test]
async fn without_a_price_the_token_limit_is_the_limit() {
    let e = env();
    let fake = FakeLlm::start().await;
    let mut c = config(LlmProvider::Openai, &fake.openai_url(), 1);
    c.daily_token_limit = 200;
    let s = summary(llm(&e, &c).summarize(&day()).await);
    assert_eq!(s.cost_usd, None, "no price for test-model");
    summary(llm(&e, &c).summarize(&day()).await); // 120 tokens < 200
    assert_eq!(llm(&e, &c).summarize(&day()).await, Outcome::LimitReached); // 240
    assert_eq!(fake.count(), 2);
    let today = e
        .store
        .llm_spend(chrono::Utc::now().timestamp_millis())
        .unwrap()
        .today;
    assert_eq!(
        (today.cost_usd, today.unpriced_calls, today.tokens()),
        (None, 2, 240)
    );
}

#[tokio::test]
async fn provider_none_is_off_and_no_notes_make_no_call() {
    let e = env();
    assert!(Llm::from_config(&Config::defaults().llm, e.store.clone())
        .unwrap()
        .is_none());
    let fake = FakeLlm::start().await;
    let out = llm(&e, &config(LlmProvider::Openai, &fake.openai_url(), 3))
        .summarize(&request(Vec::new()))
        .await;
    assert!(matches!(out, Outcome::Unavailable { .. }), "{out:?}");
    assert_eq!(fake.count(), 0);
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_api_key_is_never_logged_nor_in_errors_or_debug_output() {
    let logs = Captured::default();
    let sink = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_writer(move || sink.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let e = env();
    let (a, b) = (FakeLlm::start().await, FakeLlm::start().await);
    // A server that echoes the key it was given in its error.
    a.always(Reply::error(
        401,
        "invalid_request_error",
        &format!("Incorrect API key provided: {KEY}"),
    ));
    b.always(Reply::error(
        500,
        "server_error",
        &format!("upstream rejected {KEY}"),
    ));
    let mut c = config(LlmProvider::Openai, &a.openai_url(), 3);
    c.fallback.push(LlmProviderConfig {
        provider: LlmProvider::Anthropic,
        base_url: b.anthropic_url(),
        model: "m2".into(),
        api_key: Secret::new(KEY),
    });
    let llm = llm(&e, &c);
    let out = llm.summarize(&day()).await;
    assert_eq!(
        a.seen()[0].header("authorization").unwrap(),
        format!("Bearer {KEY}")
    );
    assert_eq!(b.seen()[0].header("x-api-key").unwrap(), KEY);
    let Outcome::Unavailable { reason } = &out else {
        panic!("{out:?}")
    };
    assert!(
        reason.contains("HTTP 401") && reason.contains("<redacted>"),
        "{reason}"
    );
    assert_eq!(a.count(), 1, "a 401 is not retried");
    let logs = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(logs.contains("llm provider failed"), "{logs}");
    for (what, text) in [
        ("outcome", format!("{out:?}")),
        ("logs", logs),
        ("config", format!("{c:?}")),
        ("llm", format!("{llm:?}")),
        ("serialised config", serde_json::to_string(&c).unwrap()),
    ] {
        assert!(!text.contains(KEY), "the key is in the {what}: {text}");
    }
}
