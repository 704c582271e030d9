//! [`Settings`]: the tunables the core reads, taken once from [`Config`].

use crate::config::Config;
use crate::memory::recall::Weights;

/// Tunables the core needs from [`Config`].
#[derive(Debug, Clone)]
pub struct Settings {
    pub default_lang: String,
    pub allowed_user_ids: Vec<i64>,
    /// The chat health alerts go to (0: the owner's private chat).
    pub admin_chat_id: i64,
    pub max_note_chars: usize,
    pub recall_default_k: usize,
    pub recall_max_k: usize,
    pub recent_default: usize,
    pub recent_max: usize,
    pub weights: Weights,
    /// Above this many vectors, search goes through the ANN graph.
    pub ann_threshold: usize,
    /// Load a large memory's vectors and graph on a background thread, so
    /// the first questions are answered (by words) before they are in. Not
    /// from config: a serving process sets it (`App::open_serving`); one-shot
    /// commands wait for the vectors.
    pub vectors_in_background: bool,
    /// Cosine at or above which a new note repeats an older one (> 1 turns
    /// the check off).
    pub duplicate_threshold: f32,
    /// How long an acknowledgement may wait for the model to look for a
    /// repeat (zero: never; the embed worker checks later).
    pub repeat_check: std::time::Duration,
    /// How far one 👍/👎 moves a memory for an identical question.
    pub feedback_weight: f32,
    /// Score factor for memories marked outdated.
    pub outdated_factor: f32,
    /// Buttons older than this are refused.
    pub button_max_age_secs: i64,
    /// Longest voice note accepted.
    pub max_voice_secs: u64,
    /// Digest schedules and the default zone (`None` when `[digest]` does
    /// not parse; config validation rejects that, so only in tests).
    pub digest: Option<crate::digest::Schedules>,
    /// Which group chats are served (`telegram.groups`).
    pub groups: crate::config::GroupPolicy,
    /// How long a pairing code is valid.
    pub pairing_ttl: std::time::Duration,
}

impl Settings {
    pub fn from_config(c: &Config) -> Settings {
        // An unknown model name is refused by `Config::validate`.
        let spec = crate::models::embed_spec(&c.models.embed).unwrap_or(&crate::models::MINILM);
        Settings {
            default_lang: c.general.default_lang.clone(),
            allowed_user_ids: c.telegram.allowed_user_ids.clone(),
            admin_chat_id: c.telegram.admin_chat_id,
            max_note_chars: c.notes.max_chars,
            recall_default_k: c.recall.default_k,
            recall_max_k: c.recall.max_k,
            recent_default: c.recall.recent_default,
            recent_max: c.recall.recent_max,
            weights: Weights {
                lexical: c.recall.weight_lexical,
                vector: c.recall.weight_vector,
                recency: c.recall.weight_recency,
                recency_half_life_days: c.recall.recency_half_life_days,
                date: c.recall.weight_date,
                when: c.recall.weight_when,
                floor: c.recall.relevance_floor.unwrap_or(spec.relevance_floor),
                beside_floor: c.recall.beside_floor.unwrap_or(spec.beside_floor),
                ..Weights::default().calibrated(spec, c.recall.rerank)
            },
            ann_threshold: c.recall.ann_threshold,
            vectors_in_background: false,
            duplicate_threshold: c.notes.duplicate_threshold,
            repeat_check: std::time::Duration::from_millis(c.notes.repeat_check_ms),
            feedback_weight: c.recall.feedback_weight,
            outdated_factor: c.recall.outdated_factor,
            button_max_age_secs: i64::from(c.buttons.max_age_days) * 86_400,
            max_voice_secs: c.voice.max_duration_secs,
            digest: crate::digest::Schedules::from_config(c)
                .inspect_err(|e| tracing::error!(error = %e, "digests are off"))
                .ok(),
            groups: c.telegram.groups,
            pairing_ttl: std::time::Duration::from_secs(c.telegram.pairing_ttl_secs),
        }
    }
}
