//! Layered configuration, typed and validated once at start.
//!
//! Three layers, last wins:
//!
//! 1. `config/default.toml`, embedded in the binary with `include_str!` so that
//!    mnemo runs on a machine with no config file at all;
//! 2. a user file named by `--config FILE` or `MNEMO_CONFIG`;
//! 3. environment variables `MNEMO_<SECTION>__<KEY>` (`MNEMO_DATA_DIR` for the
//!    top-level `data_dir`).
//!
//! Secrets are not part of [`Config`]: the bot token is read from
//! `TELEGRAM_BOT_TOKEN` by [`bot_token`] and handed straight to the client, so
//! it can never be printed by a `Debug` of the config. The one exception, an
//! LLM API key (`MNEMO_LLM__API_KEY`), is a [`Secret`]: its `Debug` shows
//! `<redacted>` and it is never serialised.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use serde::{Deserialize, Deserializer, Serialize};

/// The committed defaults, compiled in.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Environment variables that are read elsewhere and must not be mistaken for
/// config keys by the `MNEMO_` prefix scan.
const NON_CONFIG_ENV: &[&str] = &["config", "callback_secret"];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    /// Empty means the platform data dir; see [`Config::data_dir`].
    #[serde(default)]
    pub data_dir: String,
    pub general: General,
    pub log: Log,
    pub telegram: Telegram,
    pub notes: Notes,
    pub recall: Recall,
    pub buttons: Buttons,
    pub models: Models,
    pub voice: Voice,
    pub jobs: Jobs,
    pub digest: Digest,
    pub llm: LlmConfig,
    pub backup: Backup,
    pub health: Health,
    pub http: Http,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct General {
    pub default_lang: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Log {
    pub format: LogFormat,
    pub level: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Text,
    Json,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Telegram {
    pub api_url: String,
    #[serde(deserialize_with = "ids_from_list_or_csv")]
    pub allowed_user_ids: Vec<i64>,
    pub admin_chat_id: i64,
    pub poll_timeout_secs: u64,
    pub per_chat_burst: u32,
    pub per_chat_per_sec: f64,
    pub global_per_sec: f64,
    /// Whether mnemo serves group chats (`MNEMO_TELEGRAM__GROUPS`).
    #[serde(default)]
    pub groups: GroupPolicy,
    /// Seconds a pairing code is valid (`MNEMO_TELEGRAM__PAIRING_TTL_SECS`).
    #[serde(default = "default_pairing_ttl")]
    pub pairing_ttl_secs: u64,
}

fn default_pairing_ttl() -> u64 {
    3600
}

/// `telegram.groups`: which group chats mnemo stays in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupPolicy {
    /// mnemo leaves every group it is added to, without a word.
    #[default]
    Off,
    /// mnemo stays in a group an allowed user added it to, and serves only
    /// allowed users there (strangers are ignored silently).
    Allowlisted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Notes {
    pub max_chars: usize,
    pub duplicate_threshold: f32,
    /// How long an acknowledgement may wait for a free model session to
    /// look for the note a new one repeats (0: the embed worker checks later).
    pub repeat_check_ms: u64,
    /// Largest export file `mnemo import` reads (bytes).
    #[serde(default = "default_import_max_bytes")]
    pub import_max_bytes: u64,
}

fn yes() -> bool {
    true
}

fn default_import_max_bytes() -> u64 {
    4 << 30
}

fn default_transcribe_max_bytes() -> u64 {
    200 << 20
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Recall {
    pub default_k: usize,
    pub max_k: usize,
    pub recent_default: usize,
    pub recent_max: usize,
    pub weight_lexical: f32,
    pub weight_vector: f32,
    pub weight_recency: f32,
    pub recency_half_life_days: f32,
    pub weight_date: f32,
    pub weight_when: f32,
    /// `None`: the selected embedding model's own ([`crate::models::EmbedSpec::relevance_floor`]).
    pub relevance_floor: Option<f32>,
    /// `None`: the selected embedding model's own ([`crate::models::EmbedSpec::beside_floor`]).
    pub beside_floor: Option<f32>,
    /// Ask the cross-encoder how well the first hits answer the question
    /// (`memory::rerank`; its model comes with `mnemo models fetch`).
    #[serde(default = "yes")]
    pub rerank: bool,
    pub ann_threshold: usize,
    pub feedback_weight: f32,
    pub outdated_factor: f32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Buttons {
    pub max_age_days: u32,
    pub key_grace_days: u32,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Models {
    /// Empty means the platform cache dir (~/.cache/mnemo/models).
    pub dir: String,
    /// The embedding model: "minilm" (English, the default) or "e5-small"
    /// (multilingual); `models::EMBED_MODELS`.
    #[serde(default = "default_embed")]
    pub embed: String,
    pub embed_threads: usize,
}

fn default_embed() -> String {
    crate::models::MINILM.key.to_owned()
}

/// `[voice]`: the speech-to-text engine (see `voice::whisper`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Voice {
    /// A ggml Whisper model; empty means the pinned tiny.en in the models dir.
    pub model: String,
    /// A Whisper language code, or "auto" (multilingual models only).
    pub language: String,
    pub threads: usize,
    pub idle_unload_secs: u64,
    pub queue: usize,
    pub max_duration_secs: u64,
    pub low_confidence: f32,
    /// Days the original audio of a voice note is kept (0 = forever).
    pub keep_audio_days: u32,
    /// A download may take `download_base_secs` plus its size at
    /// `download_min_bytes_per_sec`; it is tried `download_attempts` times.
    #[serde(default = "default_download_base_secs")]
    pub download_base_secs: f64,
    #[serde(default = "default_download_min_rate")]
    pub download_min_bytes_per_sec: u64,
    #[serde(default = "default_download_attempts")]
    pub download_attempts: u32,
    /// Largest file `mnemo transcribe` reads (bytes).
    #[serde(default = "default_transcribe_max_bytes")]
    pub transcribe_max_bytes: u64,
}

fn default_download_base_secs() -> f64 {
    30.0
}

fn default_download_min_rate() -> u64 {
    16 * 1024
}

fn default_download_attempts() -> u32 {
    4
}

/// `[jobs]`: when the background upkeep runs (see `jobs::Schedule`): a cron
/// expression in UTC (5 fields, or 6 with seconds first), `every 30s` /
/// `every 5m` / `every 2h`, or `""` for off. Checked at load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Jobs {
    pub prune: String,
    pub audio_retention: String,
    pub voice_retry: String,
    pub graph_save: String,
    pub backup: String,
}

/// `[backup]`: where archives go and how many the daily job keeps.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Backup {
    /// Empty means `<data dir>/backups`; see [`Config::backup_dir`].
    pub dir: String,
    pub keep: usize,
}

/// `[health]`: the checks mnemo runs on itself and its alert rules (see
/// `crate::health`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Health {
    pub interval_secs: u64,
    pub for_secs: u64,
    pub recover_secs: u64,
    pub repeat_secs: u64,
    pub group_secs: u64,
    pub flap_window_secs: u64,
    pub flap_changes: usize,
    pub disk_free_warn_mb: u64,
    pub disk_free_critical_mb: u64,
    pub disk_free_warn_percent: f64,
    pub disk_free_critical_percent: f64,
    pub telegram_stale_secs: u64,
    pub queue_warn_secs: u64,
    pub queue_critical_secs: u64,
    pub transcription_failures_warn: u64,
    pub rss_limit_mb: u64,
    pub backup_max_age_hours: u64,
    /// Dead-man switch: GET each interval while healthy (`/fail` appended
    /// when critical). Empty: off.
    pub heartbeat_url: String,
}

/// `[http]`: the optional listener for `/healthz`, `/readyz`, `/metrics`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Http {
    /// `host:port`, e.g. `127.0.0.1:9464`; empty: off.
    pub listen: String,
    /// Allow a listen address that is not loopback.
    pub allow_remote: bool,
}

impl Http {
    /// The address to listen on, `None` when off. A non-loopback address is
    /// refused unless `allow_remote`.
    pub fn addr(&self) -> anyhow::Result<Option<std::net::SocketAddr>> {
        let s = self.listen.trim();
        if s.is_empty() {
            return Ok(None);
        }
        let addr: std::net::SocketAddr = s
            .parse()
            .with_context(|| format!("http.listen {s:?} is not an address like 127.0.0.1:9464"))?;
        if !addr.ip().is_loopback() && !self.allow_remote {
            bail!("http.listen {s} is not a loopback address: metrics and readiness would be open to the network; set http.allow_remote = true (MNEMO_HTTP__ALLOW_REMOTE) if that is meant");
        }
        Ok(Some(addr))
    }
}

/// `[digest]`: scheduled digests, in local time (see `digest::slots`).
/// Checked at load.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Digest {
    /// IANA zone used for chats that did not set one with /tz; `""` is the
    /// machine's zone (UTC when unknown).
    pub timezone: String,
    pub daily: String,
    pub weekly: String,
    pub hourly: String,
    /// `"08:00-22:00"`: local hours the hourly summary is sent in.
    pub active_hours: String,
}

/// `[llm]`: optional LLM summaries of digests (see `crate::llm`). The
/// top-level `provider`, `base_url`, `model` and `api_key` are the first
/// provider; `[[llm.fallback]]` entries (same shape) are tried after it, in
/// order. `provider = "none"` turns the whole layer off.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmConfig {
    pub provider: LlmProvider,
    /// Empty: the provider's own API (`https://api.openai.com/v1`,
    /// `https://api.anthropic.com`).
    pub base_url: String,
    pub model: String,
    /// Empty: `OPENAI_API_KEY` / `ANTHROPIC_API_KEY` by provider kind.
    #[serde(default, skip_serializing)]
    pub api_key: Secret,
    /// 3 (draft, critique, refine) or 1 (draft only).
    pub passes: u8,
    /// Largest input of any one request, in tokens (prompt included).
    pub max_input_tokens: usize,
    /// Cap on each answer, in tokens (`max_tokens` of the request).
    pub max_output_tokens: usize,
    /// Spend per UTC day that stops LLM use (0 = no limit).
    pub daily_cost_limit_usd: f64,
    /// Tokens per UTC day that stop LLM use once some call of the day had
    /// no known price (0 = no limit).
    pub daily_token_limit: u64,
    /// Per HTTP call, seconds.
    pub timeout_secs: u64,
    /// For a whole summary (every pass, retry and provider), seconds.
    pub deadline_secs: u64,
    /// Retries of one call on the same provider before the next one is tried.
    pub max_retries: u32,
    /// First retry delay, ms; doubled per retry, with jitter, at most 10 s.
    pub backoff_ms: u64,
    #[serde(default)]
    pub fallback: Vec<LlmProviderConfig>,
    /// Model name → price; a model without one has an unknown cost.
    #[serde(default)]
    pub prices: std::collections::BTreeMap<String, LlmPrice>,
}

/// One entry of `[[llm.fallback]]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LlmProviderConfig {
    pub provider: LlmProvider,
    pub base_url: String,
    pub model: String,
    #[serde(default, skip_serializing)]
    pub api_key: Secret,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LlmProvider {
    None,
    /// Any OpenAI-compatible `/chat/completions` (hosted or a local server).
    Openai,
    /// Anthropic's `/v1/messages`.
    Anthropic,
}

impl LlmProvider {
    pub fn name(self) -> &'static str {
        match self {
            LlmProvider::None => "none",
            LlmProvider::Openai => "openai",
            LlmProvider::Anthropic => "anthropic",
        }
    }
}

/// US dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct LlmPrice {
    pub input_per_mtok: f64,
    pub output_per_mtok: f64,
}

/// A secret string: its `Debug` and `Display` never show it.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    /// The secret itself, for the one place that sends it.
    pub fn expose(&self) -> &str {
        &self.0
    }
    pub fn is_empty(&self) -> bool {
        self.0.trim().is_empty()
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(if self.is_empty() {
            "\"\""
        } else {
            "\"<redacted>\""
        })
    }
}

impl LlmConfig {
    /// The providers in the order they are tried (empty when off).
    pub fn providers(&self) -> Vec<LlmProviderConfig> {
        if self.provider == LlmProvider::None {
            return Vec::new();
        }
        let first = LlmProviderConfig {
            provider: self.provider,
            base_url: self.base_url.clone(),
            model: self.model.clone(),
            api_key: self.api_key.clone(),
        };
        std::iter::once(first)
            .chain(
                self.fallback
                    .iter()
                    .filter(|p| p.provider != LlmProvider::None)
                    .cloned(),
            )
            .collect()
    }

    fn validate(&self) -> anyhow::Result<()> {
        if !matches!(self.passes, 1 | 3) {
            bail!(
                "llm.passes must be 3 (draft, critique, refine) or 1, got {}",
                self.passes
            );
        }
        if self.max_input_tokens < 500 || self.max_output_tokens == 0 {
            bail!("llm.max_input_tokens must be at least 500 and llm.max_output_tokens at least 1");
        }
        if self.timeout_secs == 0 || self.deadline_secs == 0 {
            bail!("llm.timeout_secs and llm.deadline_secs must be at least 1");
        }
        if self.daily_cost_limit_usd < 0.0 || !self.daily_cost_limit_usd.is_finite() {
            bail!("llm.daily_cost_limit_usd must be 0 (no limit) or positive");
        }
        for p in self.providers() {
            let what = format!("llm provider {} ({})", p.provider.name(), p.model);
            if p.model.trim().is_empty() {
                bail!("{what}: model is empty");
            }
            let url = p.base_url.trim();
            if !(url.is_empty() || url.starts_with("http://") || url.starts_with("https://")) {
                bail!(
                    "{what}: base_url must start with http:// or https://, got {:?}",
                    p.base_url
                );
            }
        }
        for (model, price) in &self.prices {
            if !(price.input_per_mtok >= 0.0 && price.output_per_mtok >= 0.0) {
                bail!("llm.prices.{model:?}: prices must not be negative");
            }
        }
        Ok(())
    }
}

impl Config {
    /// Loads the layers described in the module docs. `file` is the `--config`
    /// argument; without it `MNEMO_CONFIG` is consulted.
    pub fn load(file: Option<&Path>) -> anyhow::Result<Config> {
        let mut fig = Figment::from(Toml::string(DEFAULT_TOML));
        let file = file
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("MNEMO_CONFIG").map(PathBuf::from));
        if let Some(path) = file {
            if !path.is_file() {
                bail!("config file {} does not exist", path.display());
            }
            fig = fig.merge(Toml::file_exact(&path));
        }
        fig = fig.merge(
            Env::prefixed("MNEMO_")
                .split("__")
                .filter(|k| !NON_CONFIG_ENV.contains(&k.as_str().to_ascii_lowercase().as_str())),
        );
        let cfg: Config = fig.extract().context("invalid configuration")?;
        cfg.validate()?;
        Ok(cfg)
    }

    /// The embedded defaults alone, ignoring files and the environment.
    pub fn defaults() -> Config {
        Figment::from(Toml::string(DEFAULT_TOML))
            .extract()
            .expect("embedded defaults are valid")
    }

    fn validate(&self) -> anyhow::Result<()> {
        crate::models::embed_spec(&self.models.embed)?;
        if !(self.voice.download_base_secs > 0.0 && self.voice.download_base_secs.is_finite())
            || self.voice.download_min_bytes_per_sec == 0
            || self.voice.download_attempts == 0
        {
            bail!("voice.download_base_secs, download_min_bytes_per_sec and download_attempts must be positive");
        }
        if !(1..17).contains(&self.telegram.poll_timeout_secs) {
            bail!("telegram.poll_timeout_secs must be between 1 and 16 (the HTTP client gives up at 17 s)");
        }
        if self.notes.max_chars == 0 {
            bail!("notes.max_chars must be at least 1");
        }
        if self.recall.max_k == 0 || self.recall.default_k > self.recall.max_k {
            bail!("recall.default_k must be between 1 and recall.max_k");
        }
        if self.recall.recent_max == 0 || self.recall.recent_default > self.recall.recent_max {
            bail!("recall.recent_default must be between 1 and recall.recent_max");
        }
        if self.telegram.per_chat_burst == 0
            || self.telegram.per_chat_per_sec <= 0.0
            || self.telegram.global_per_sec <= 0.0
        {
            bail!("telegram rate limits must be positive");
        }
        if !crate::i18n::is_supported(&self.general.default_lang) {
            bail!(
                "general.default_lang {:?} is not one of the shipped locales ({})",
                self.general.default_lang,
                crate::i18n::LOCALES.join(", ")
            );
        }
        if !(0.0..=1.0).contains(&self.recall.outdated_factor) || self.recall.feedback_weight < 0.0
        {
            bail!("recall.outdated_factor must be between 0 and 1 and recall.feedback_weight not negative");
        }
        if self.buttons.max_age_days == 0 {
            bail!("buttons.max_age_days must be at least 1");
        }
        url_ok(&self.telegram.api_url)?;
        crate::digest::Schedules::from_config(self)?;
        let v = &self.voice;
        if v.threads == 0 || v.queue == 0 || v.max_duration_secs == 0 || v.idle_unload_secs == 0 {
            bail!("voice.threads, voice.queue, voice.max_duration_secs and voice.idle_unload_secs must be at least 1");
        }
        if !(0.0..=1.0).contains(&v.low_confidence) {
            bail!(
                "voice.low_confidence must be between 0 and 1, got {}",
                v.low_confidence
            );
        }
        let known = (0..=whisper_rs::get_lang_max_id())
            .any(|i| whisper_rs::get_lang_str(i) == Some(v.language.as_str()));
        if v.language != "auto" && !known {
            bail!(
                "voice.language {:?} is not a Whisper language code (e.g. en, de) or \"auto\"",
                v.language
            );
        }
        if self.backup.keep == 0 {
            bail!("backup.keep must be at least 1");
        }
        crate::jobs::catalog(self)?;
        self.llm.validate()?;
        self.http.addr()?;
        let h = &self.health;
        if h.interval_secs == 0 {
            bail!("health.interval_secs must be at least 1");
        }
        if h.disk_free_critical_mb > h.disk_free_warn_mb {
            bail!("health.disk_free_critical_mb must not be above health.disk_free_warn_mb");
        }
        let hb = h.heartbeat_url.trim();
        if !(hb.is_empty() || hb.starts_with("http://") || hb.starts_with("https://")) {
            bail!("health.heartbeat_url must start with http:// or https://");
        }
        Ok(())
    }

    /// The model files of the selected embedding model (`models.embed`) in
    /// [`Config::models_dir`].
    pub fn model_set(&self) -> anyhow::Result<crate::models::ModelSet> {
        let embed = crate::models::embed_spec(&self.models.embed)?;
        Ok(crate::models::ModelSet::new(self.models_dir()?).with_embed(embed))
    }

    /// The models folder: `models.dir` when set, else the platform cache dir.
    pub fn models_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.models.dir.trim().is_empty() {
            return Ok(PathBuf::from(self.models.dir.trim()));
        }
        let dirs = directories::ProjectDirs::from("", "", "mnemo")
            .context("cannot find a home directory for the models dir; set MNEMO_MODELS__DIR")?;
        Ok(dirs.cache_dir().join("models"))
    }

    /// Where archives go: `backup.dir` when set, else `<data dir>/backups`.
    pub fn backup_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.backup.dir.trim().is_empty() {
            return Ok(PathBuf::from(self.backup.dir.trim()));
        }
        Ok(crate::backup::default_dir(&self.data_dir()?))
    }

    /// The data folder: `data_dir` when set, else the platform data dir.
    pub fn data_dir(&self) -> anyhow::Result<PathBuf> {
        if !self.data_dir.trim().is_empty() {
            return Ok(PathBuf::from(self.data_dir.trim()));
        }
        let dirs = directories::ProjectDirs::from("", "", "mnemo")
            .context("cannot find a home directory for the default data dir; set MNEMO_DATA_DIR")?;
        Ok(dirs.data_dir().to_path_buf())
    }
}

fn url_ok(url: &str) -> anyhow::Result<()> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        bail!("telegram.api_url must start with http:// or https://, got {url:?}");
    }
    Ok(())
}

/// The bot token, from `TELEGRAM_BOT_TOKEN` only. Empty counts as unset.
pub fn bot_token() -> Option<String> {
    std::env::var("TELEGRAM_BOT_TOKEN")
        .ok()
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty())
}

/// The secret buttons are signed with, from `MNEMO_CALLBACK_SECRET` only.
/// Without it a key is generated once and kept in the data dir.
pub fn callback_secret() -> Option<String> {
    std::env::var("MNEMO_CALLBACK_SECRET")
        .ok()
        .filter(|t| !t.trim().is_empty())
}

/// Accepts `[1, 2]` from TOML and `"1,2"` (or a single number) from the environment.
fn ids_from_list_or_csv<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<i64>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        List(Vec<i64>),
        One(i64),
        Csv(String),
    }
    match Ids::deserialize(d)? {
        Ids::List(v) => Ok(v),
        Ids::One(n) => Ok(vec![n]),
        Ids::Csv(s) => s
            .split(',')
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(|p| {
                p.parse::<i64>()
                    .map_err(|_| serde::de::Error::custom(format!("not a user id: {p:?}")))
            })
            .collect(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's closures return its own large error type
mod tests {
    use super::*;

    #[test]
    fn embedded_defaults_are_valid() {
        let cfg: Config = Figment::from(Toml::string(DEFAULT_TOML)).extract().unwrap();
        cfg.validate().unwrap();
        assert!(cfg.telegram.allowed_user_ids.is_empty());
        assert_eq!(cfg.telegram.api_url, "https://api.telegram.org");
    }

    #[test]
    fn embed_model_by_name() {
        figment::Jail::expect_with(|jail| {
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.models.embed, "minilm");
            assert_eq!(
                cfg.model_set().unwrap().embed.id,
                crate::models::EMBED_MODEL_ID
            );
            jail.set_env("MNEMO_MODELS__EMBED", "e5-small");
            let cfg = Config::load(None).unwrap();
            let set = cfg.model_set().unwrap();
            assert_eq!(set.embed.key, "e5-small");
            assert!(set.embed_model().ends_with("e5-small-nbits4.onnx"));
            jail.set_env("MNEMO_MODELS__EMBED", "e5-large");
            let e = format!("{:#}", Config::load(None).unwrap_err());
            assert!(
                e.contains("models.embed \"e5-large\"") && e.contains("minilm, e5-small"),
                "{e}"
            );
            std::env::remove_var("MNEMO_MODELS__EMBED");
            jail.create_file("f.toml", "[models]\nembed = \"MiniLM\"\n")?;
            assert!(Config::load(Some(Path::new("f.toml"))).is_err());
            Ok(())
        });
    }

    #[test]
    fn env_overrides_and_csv_ids() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("MNEMO_TELEGRAM__ALLOWED_USER_IDS", "11, 22");
            jail.set_env("MNEMO_TELEGRAM__API_URL", "http://127.0.0.1:9");
            jail.set_env("MNEMO_DATA_DIR", "/tmp/x");
            jail.set_env("MNEMO_CONFIG", "");
            let cfg = Config::load(None).map_err(|e| e.to_string());
            // An empty MNEMO_CONFIG names no file, which must be an error.
            assert!(cfg.is_err());
            std::env::remove_var("MNEMO_CONFIG");
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.telegram.allowed_user_ids, vec![11, 22]);
            assert_eq!(cfg.telegram.api_url, "http://127.0.0.1:9");
            assert_eq!(cfg.data_dir().unwrap(), PathBuf::from("/tmp/x"));
            Ok(())
        });
    }

    #[test]
    fn llm_env_is_the_first_provider_and_the_key_stays_hidden() {
        figment::Jail::expect_with(|jail| {
            let cfg = Config::load(None).unwrap();
            assert_eq!(cfg.llm.provider, LlmProvider::None);
            assert!(cfg.llm.providers().is_empty());
            assert_eq!(cfg.llm.max_input_tokens, 6000);
            assert!(cfg.llm.prices.contains_key("gpt-4o-mini"));
            jail.set_env("MNEMO_LLM__PROVIDER", "openai");
            jail.set_env("MNEMO_LLM__BASE_URL", "http://127.0.0.1:8080/v1");
            jail.set_env("MNEMO_LLM__MODEL", "qwen2.5-7b");
            jail.set_env("MNEMO_LLM__PASSES", "1");
            jail.set_env("MNEMO_LLM__API_KEY", "sk-very-secret-1234");
            jail.set_env("MNEMO_LLM__MAX_INPUT_TOKENS", "4000");
            jail.set_env("MNEMO_LLM__DAILY_COST_LIMIT_USD", "0.5");
            jail.set_env("MNEMO_LLM__DAILY_TOKEN_LIMIT", "50000");
            jail.create_file(
                "f.toml",
                "[[llm.fallback]]\nprovider = \"anthropic\"\nbase_url = \"https://api.anthropic.com\"\nmodel = \"claude-haiku-4-5\"\n",
            )?;
            let cfg = Config::load(Some(Path::new("f.toml"))).unwrap();
            let l = &cfg.llm;
            assert_eq!(
                (l.passes, l.max_input_tokens, l.daily_token_limit),
                (1, 4000, 50000)
            );
            assert_eq!(l.daily_cost_limit_usd, 0.5);
            let p = l.providers();
            assert_eq!(p.len(), 2);
            assert_eq!(
                (p[0].provider, p[0].model.as_str()),
                (LlmProvider::Openai, "qwen2.5-7b")
            );
            assert_eq!(p[0].base_url, "http://127.0.0.1:8080/v1");
            assert_eq!(p[0].api_key.expose(), "sk-very-secret-1234");
            assert_eq!(p[1].provider, LlmProvider::Anthropic);
            assert!(p[1].api_key.is_empty());
            assert!(!format!("{cfg:?}").contains("sk-very-secret"));
            jail.set_env("MNEMO_LLM__PASSES", "2");
            let err = Config::load(None).unwrap_err();
            assert!(format!("{err:#}").contains("llm.passes"), "{err:#}");
            jail.set_env("MNEMO_LLM__PASSES", "3");
            jail.set_env("MNEMO_LLM__MODEL", "");
            let err = Config::load(None).unwrap_err();
            assert!(format!("{err:#}").contains("model is empty"), "{err:#}");
            Ok(())
        });
    }

    #[test]
    fn user_file_layer_and_validation() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("u.toml", "[telegram]\npoll_timeout_secs = 30\n")?;
            let err = Config::load(Some(Path::new("u.toml"))).unwrap_err();
            assert!(format!("{err:#}").contains("poll_timeout_secs"), "{err:#}");
            jail.create_file("w.toml", "[voice]\nlanguage = \"klingon\"\n")?;
            let err = Config::load(Some(Path::new("w.toml"))).unwrap_err();
            assert!(format!("{err:#}").contains("voice.language"), "{err:#}");
            jail.create_file("w.toml", "[voice]\nthreads = 0\n")?;
            let err = Config::load(Some(Path::new("w.toml"))).unwrap_err();
            assert!(format!("{err:#}").contains("voice.threads"), "{err:#}");
            jail.create_file("w.toml", "[voice]\nlow_confidence = 1.5\n")?;
            let err = Config::load(Some(Path::new("w.toml"))).unwrap_err();
            assert!(
                format!("{err:#}").contains("voice.low_confidence"),
                "{err:#}"
            );
            jail.create_file(
                "w.toml",
                "[voice]\nlanguage = \"de\"\nmodel = \"/m/ggml-base.bin\"\n",
            )?;
            let v = Config::load(Some(Path::new("w.toml"))).unwrap().voice;
            assert_eq!(
                (v.language.as_str(), v.model.as_str()),
                ("de", "/m/ggml-base.bin")
            );
            jail.create_file("v.toml", "[general]\ndefault_lang = \"de\"\n")?;
            assert_eq!(
                Config::load(Some(Path::new("v.toml")))
                    .unwrap()
                    .general
                    .default_lang,
                "de"
            );
            Ok(())
        });
    }
}
