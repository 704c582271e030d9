//! The checks themselves: one function each, a [`Reading`] out.
//!
//! Each reads what it needs and nothing is changed, except the database
//! check's probe commit (the proof that a write goes through). The
//! [`Cache`] keeps what is costly or needs memory across passes: the model
//! files' hashes (recomputed only when a file's size or mtime changed) and
//! the head of the embed queue (how long it has not moved).

use std::path::Path;

use super::{signals, CheckId, Level, Reading};
use crate::core::Core;
use crate::i18n::Line;
use crate::store::Store;

pub(super) struct Cx<'a> {
    pub cfg: &'a crate::config::Health,
    pub data_dir: &'a Path,
    pub models: &'a crate::models::ModelSet,
    pub backups_on: bool,
    pub store: &'a Store,
    pub core: Option<&'a Core>,
    pub now: i64,
}

/// (size, mtime) of each model file, and what the embedding, speech and
/// reranking model checks said.
type ModelCheck = (
    Vec<(u64, i64)>,
    Result<(), String>,
    Result<(), String>,
    Result<(), String>,
);

#[derive(Default)]
pub(super) struct Cache {
    models: Option<ModelCheck>,
    /// The embed queue's first entry and when it was first seen there.
    embed_head: Option<(u64, i64)>,
}

const MB: u64 = 1024 * 1024;

pub(super) fn run(id: CheckId, cx: &Cx, cache: &mut Cache) -> Reading {
    let now = cx.now;
    if id.needs_process() && cx.core.is_none() {
        return Reading::not_here(id, Line::new("health-needs-serve"), now);
    }
    let out = match id {
        CheckId::Disk => disk(cx),
        CheckId::Database => database(cx),
        CheckId::Index => index(cx),
        CheckId::Models => models(cx, cache),
        CheckId::Telegram => telegram(cx),
        CheckId::Queues => queues(cx, cache),
        CheckId::Transcription => transcription(cx),
        CheckId::Memory => memory(cx),
        CheckId::Backup => backup(cx),
        CheckId::Digests => digests(cx),
    };
    match out {
        Ok(r) => r,
        // A check that cannot even look is itself a finding.
        Err(e) => Reading::new(
            id,
            Level::Warn,
            Line::new("health-check-failed").text("error", e),
            now,
        ),
    }
}

type Out = Result<Reading, String>;

fn disk(cx: &Cx) -> Out {
    let (free, total) = free_space(cx.data_dir)?;
    let pct = if total == 0 {
        100.0
    } else {
        free as f64 * 100.0 / total as f64
    };
    let c = cx.cfg;
    // The store refuses writes for lack of space now. The owner was told
    // directly (the alert could not be queued in the failing store; see
    // `channels/telegram/alarm.rs`), and is told when it works again, so a
    // pass that commits afterwards does not alert for it a second time.
    let refused = cx.store.failure().is_some_and(|f| f.disk_full);
    let level =
        if refused || free < c.disk_free_critical_mb * MB || pct < c.disk_free_critical_percent {
            Level::Critical
        } else if free < c.disk_free_warn_mb * MB || pct < c.disk_free_warn_percent {
            Level::Warn
        } else {
            Level::Ok
        };
    let key = if refused {
        "health-disk-refused"
    } else {
        "health-disk"
    };
    let mut r = Reading::new(
        CheckId::Disk,
        level,
        Line::new(key)
            .num("free_mb", (free / MB) as i64)
            .text("percent", format!("{pct:.1}")),
        cx.now,
    );
    r.immediate = refused;
    Ok(r)
}

pub use crate::store::free_space;

fn database(cx: &Cx) -> Out {
    let id = CheckId::Database;
    // `serve` holds the database: its own store proves a commit; doctor
    // outside it opened the store itself, which proves the same.
    match cx.store.write(|tx| tx.health_probe(cx.now)) {
        Ok(()) => Ok(Reading::new(
            id,
            Level::Ok,
            Line::new("health-database-ok").num("mb", (cx.store.file_size() / MB) as i64),
            cx.now,
        )),
        Err(e) => {
            if e.is_disk_full() {
                signals().disk_full(cx.now);
            }
            let mut r = Reading::new(
                id,
                Level::Critical,
                Line::new("health-database-failed").text("error", e.to_string()),
                cx.now,
            );
            r.immediate = e.is_disk_full();
            Ok(r)
        }
    }
}

fn index(cx: &Cx) -> Out {
    let core = cx.core.expect("needs_process");
    let (lexical, vectors) = core.index_counts();
    let notes = cx.store.count_notes().map_err(|e| e.to_string())?;
    let stored = cx.store.vector_count().map_err(|e| e.to_string())?;
    let line = Line::new("health-index")
        .num("notes", notes as i64)
        .num("lexical", lexical as i64)
        .num("stored", stored as i64)
        .num("vectors", vectors as i64);
    // A vector may be stored and not yet taken into memory for a moment;
    // a gap that lasts two passes is what alerts (`for_secs`).
    let level = if lexical as u64 != notes || vectors as u64 != stored {
        Level::Warn
    } else {
        Level::Ok
    };
    Ok(Reading::new(CheckId::Index, level, line, cx.now))
}

fn models(cx: &Cx, cache: &mut Cache) -> Out {
    let m = cx.models;
    let files = [
        m.embed_model(),
        m.tokenizer(),
        m.ort_lib(),
        m.speech_model(),
        m.reranker_model(),
        m.reranker_tokenizer(),
    ];
    let stamp: Vec<(u64, i64)> = files
        .iter()
        .map(|p| {
            std::fs::metadata(p).map_or((0, 0), |md| {
                use std::os::unix::fs::MetadataExt;
                (md.len(), md.mtime())
            })
        })
        .collect();
    let fresh = matches!(&cache.models, Some((s, ..)) if *s == stamp);
    if !fresh {
        let embed = m.verify().map_err(|e| format!("{e:#}"));
        let speech = m.verify_speech().map_err(|e| format!("{e:#}"));
        // Only where recall asks it: `recall.rerank` on, and a model
        // calibrated with it (the core's weights say both).
        let used = cx.core.map_or(m.embed.rerank.is_some(), |c| {
            c.settings().weights.rerank > 0.0
        });
        let rerank = if used {
            m.verify_reranker().map_err(|e| format!("{e:#}"))
        } else {
            Ok(())
        };
        cache.models = Some((stamp, embed, speech, rerank));
    }
    let (_, embed, speech, rerank) = cache.models.as_ref().expect("just filled");
    // Without the models mnemo still stores everything: recall is lexical
    // and voice notes wait. A warning, until a voice note fails for it
    // (the transcription check is critical then).
    // Without the cross-encoder recall still answers, with the plainer
    // relevance floor.
    let (level, line) = match (embed, speech, rerank) {
        (Ok(()), Ok(()), Ok(())) => (Level::Ok, Line::new("health-models-ok")),
        (Err(e), _, _) => (
            Level::Warn,
            Line::new("health-models-embed").text("error", e.clone()),
        ),
        (Ok(()), Err(e), _) => (
            Level::Warn,
            Line::new("health-models-speech").text("error", e.clone()),
        ),
        (Ok(()), Ok(()), Err(e)) => (
            Level::Warn,
            Line::new("health-models-rerank").text("error", e.clone()),
        ),
    };
    Ok(Reading::new(CheckId::Models, level, line, cx.now))
}

fn telegram(cx: &Cx) -> Out {
    let id = CheckId::Telegram;
    let s = signals();
    if !s.telegram_on() {
        return Ok(Reading::not_here(
            id,
            Line::new("health-telegram-off"),
            cx.now,
        ));
    }
    let stale = cx.cfg.telegram_stale_secs as i64 * 1000;
    let last = s.telegram_last_ok();
    // Since the start when it never answered yet.
    let age = cx.now - if last > 0 { last } else { s.started() };
    let errors = s.telegram_errors_since(cx.now - 600_000);
    let level = if age > stale * 10 {
        Level::Critical
    } else if age > stale {
        Level::Warn
    } else {
        Level::Ok
    };
    let line = Line::new(if last > 0 {
        "health-telegram"
    } else {
        "health-telegram-never"
    })
    .num("age", age / 1000)
    .num("server", errors.server as i64)
    .num("throttled", errors.throttled as i64)
    .num("network", errors.network as i64);
    Ok(Reading::new(id, level, line, cx.now))
}

fn queues(cx: &Cx, cache: &mut Cache) -> Out {
    let st = cx.store;
    let depth = st.embed_queue_len().map_err(|e| e.to_string())?;
    // The embed queue has no receipt times (an import queues notes written
    // years ago): its age is how long its first entry has not moved.
    let head = st
        .embed_queue(1)
        .map_err(|e| e.to_string())?
        .first()
        .map(|(id, _, _)| *id);
    let embed_age = match (head, cache.embed_head) {
        (None, _) => {
            cache.embed_head = None;
            0
        }
        (Some(h), Some((seen, at))) if seen == h => cx.now - at,
        (Some(h), _) => {
            cache.embed_head = Some((h, cx.now));
            0
        }
    };
    signals().set_embed_age(embed_age);
    let voice: Vec<crate::store::VoiceJob> = [
        crate::store::VoiceState::Fetch,
        crate::store::VoiceState::Ready,
    ]
    .into_iter()
    .map(|s| st.voice_jobs(s))
    .collect::<Result<Vec<_>, _>>()
    .map_err(|e| e.to_string())?
    .into_iter()
    .flatten()
    .collect();
    let voice_age = voice.iter().map(|j| cx.now - j.at).max().unwrap_or(0);
    let oldest = embed_age.max(voice_age) / 1000;
    let c = cx.cfg;
    let level = if oldest as u64 > c.queue_critical_secs {
        Level::Critical
    } else if oldest as u64 > c.queue_warn_secs {
        Level::Warn
    } else {
        Level::Ok
    };
    let line = Line::new("health-queues")
        .num("embed", depth as i64)
        .num("embed_age", embed_age / 1000)
        .num("voice", voice.len() as i64)
        .num("voice_age", voice_age / 1000);
    Ok(Reading::new(CheckId::Queues, level, line, cx.now))
}

fn transcription(cx: &Cx) -> Out {
    let (all, model) = signals().voice_failures_since(cx.now - 3_600_000);
    let level = if model > 0 {
        Level::Critical
    } else if all >= cx.cfg.transcription_failures_warn.max(1) {
        Level::Warn
    } else {
        Level::Ok
    };
    let key = if model > 0 {
        "health-transcription-model"
    } else {
        "health-transcription"
    };
    Ok(Reading::new(
        CheckId::Transcription,
        level,
        Line::new(key).num("failed", all as i64),
        cx.now,
    ))
}

fn memory(cx: &Cx) -> Out {
    let rss = super::rss_bytes();
    let limit = cx.cfg.rss_limit_mb * MB;
    let level = if limit > 0 && rss > limit {
        Level::Critical
    } else if limit > 0 && rss > limit / 10 * 8 {
        Level::Warn
    } else {
        Level::Ok
    };
    Ok(Reading::new(
        CheckId::Memory,
        level,
        Line::new("health-memory")
            .num("mb", (rss / MB) as i64)
            .num("limit", cx.cfg.rss_limit_mb as i64),
        cx.now,
    ))
}

fn backup(cx: &Cx) -> Out {
    let id = CheckId::Backup;
    if !cx.backups_on {
        return Ok(Reading::not_here(
            id,
            Line::new("health-backup-off"),
            cx.now,
        ));
    }
    let st = cx.store;
    let verified = st.last_verified_backup().map_err(|e| e.to_string())?;
    let last = st.last_backup().map_err(|e| e.to_string())?;
    let max = cx.cfg.backup_max_age_hours as i64 * 3_600_000;
    let failed = last.as_ref().is_some_and(|l| !l.verified);
    Ok(match verified {
        Some(v) => {
            let age = cx.now - v.at;
            let level = if failed || age > max {
                Level::Warn
            } else {
                Level::Ok
            };
            let key = if failed {
                "health-backup-failed"
            } else {
                "health-backup"
            };
            Reading::new(
                id,
                level,
                Line::new(key).num("hours", age / 3_600_000),
                cx.now,
            )
        }
        None => {
            // A new mnemo has none yet: late only once it ran long enough to
            // have made one.
            let level = if failed || cx.now - signals().started() > max {
                Level::Warn
            } else {
                Level::Ok
            };
            Reading::new(id, level, Line::new("health-backup-none"), cx.now)
        }
    })
}

fn digests(cx: &Cx) -> Out {
    use crate::store::SlotState;
    let since = cx.now - 86_400_000;
    let rows = cx.store.ledger(None, 100_000).map_err(|e| e.to_string())?;
    let (mut missed, mut failed) = (0i64, 0i64);
    for (_, r) in rows.iter().filter(|(_, r)| r.at >= since) {
        match r.state {
            SlotState::Missed => missed += 1,
            SlotState::Failed | SlotState::Uncertain => failed += 1,
            _ => {}
        }
    }
    let level = if missed + failed > 0 {
        Level::Warn
    } else {
        Level::Ok
    };
    Ok(Reading::new(
        CheckId::Digests,
        level,
        Line::new("health-digests")
            .num("missed", missed)
            .num("failed", failed),
        cx.now,
    ))
}
