//! `mnemo doctor`: checks that mnemo can run here, and says why not.
//!
//! Checks: configuration, data dir (exists or can be made, private, writable),
//! database (opens, schema current; "in use by serve" is fine), model files
//! (present, sha256 as pinned), bot token
//! (present and shaped like one — never printed) and the Bot API URL.
//! Then the health checks of `serve` (`crate::health`): asked of the
//! running bot over the control socket, else run here (those that need the
//! process are `skipped`). Without a token mnemo is console-only: a
//! warning, not a failure. Exit status 0 when nothing failed, 1 otherwise.

use std::os::unix::fs::PermissionsExt;
use std::process::ExitCode;

use serde::Serialize;

use crate::config::{bot_token, Config};
use crate::i18n::{I18n, Line};
use crate::store::{schema::CURRENT_VERSION, Store, StoreError};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Print JSON: {"healthy": bool, "checks": [{"name", "status", "detail"}]}.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Status {
    Ok,
    Warn,
    Fail,
    /// Does not apply here (a health check that needs the running bot).
    Skipped,
}

#[derive(Debug, Serialize)]
struct Check {
    name: &'static str,
    status: Status,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Report {
    healthy: bool,
    checks: Vec<Check>,
    /// Where the `health.*` checks ran: "serve" (asked the running bot over
    /// its control socket), "local" (this command, without the process's
    /// own observations) or "none" (no database yet).
    health_from: &'static str,
    /// Records that no longer decode (kept, skipped; `mnemo repair`).
    damaged: Vec<crate::store::DamagedRecord>,
}

pub fn run(cfg: &Config, args: &Args) -> ExitCode {
    let mut checks = vec![Check {
        name: "config",
        status: Status::Ok,
        detail: "loaded".into(),
    }];
    let mut damaged = Vec::new();
    checks.extend(check_data_dir(cfg, &mut damaged));
    checks.push(check_models(cfg));
    checks.push(check_speech_model(cfg));
    checks.push(check_reranker(cfg));
    checks.push(check_token());
    checks.push(Check {
        name: "api_url",
        status: Status::Ok,
        detail: cfg.telegram.api_url.clone(),
    });
    let (health, from) = health_checks(cfg);
    checks.extend(health);
    report(checks, damaged, args, &cfg.general.default_lang, from)
}

/// The health checks `serve` runs every minute (`crate::health`): asked of
/// the running bot when there is one, else run here — where those that
/// need the process (Telegram, indexes, memory, transcription) are skipped.
fn health_checks(cfg: &Config) -> (Vec<Check>, &'static str) {
    use crate::health::{Level, Reading};
    let Ok(dir) = cfg.data_dir() else {
        return (Vec::new(), "none");
    };
    let now = crate::core::now_ms();
    let asked = crate::app::control::ask(&dir, &crate::app::control::Request::Health)
        .ok()
        .flatten()
        .and_then(|v| serde_json::from_value::<Vec<Reading>>(v).ok());
    let (readings, from) = match asked {
        Some(r) => (r, "serve"),
        None if !dir.join(crate::store::DB_FILE).exists() => return (Vec::new(), "none"),
        None => {
            let (Ok(store), Ok(monitor)) = (Store::open(&dir), crate::health::Monitor::new(cfg))
            else {
                return (Vec::new(), "none");
            };
            (monitor.readings(None, &store, now), "local")
        }
    };
    let i18n = I18n::new();
    let lang = &cfg.general.default_lang;
    let checks = readings
        .iter()
        .map(|r| Check {
            name: health_name(r.check),
            status: match (r.applies, r.level) {
                (false, _) => Status::Skipped,
                (true, Level::Ok) => Status::Ok,
                (true, Level::Warn) => Status::Warn,
                (true, Level::Critical) => Status::Fail,
            },
            detail: i18n.render_plain(lang, &r.reason).trim().to_owned(),
        })
        .collect();
    (checks, from)
}

fn health_name(c: crate::health::CheckId) -> &'static str {
    use crate::health::CheckId;
    match c {
        CheckId::Disk => "health.disk",
        CheckId::Database => "health.database",
        CheckId::Index => "health.index",
        CheckId::Models => "health.models",
        CheckId::Telegram => "health.telegram",
        CheckId::Queues => "health.queues",
        CheckId::Transcription => "health.transcription",
        CheckId::Memory => "health.memory",
        CheckId::Backup => "health.backup",
        CheckId::Digests => "health.digests",
    }
}

pub fn run_without_config(args: &Args, err: &anyhow::Error) -> ExitCode {
    let checks = vec![
        Check {
            name: "config",
            status: Status::Fail,
            detail: format!("{err:#}"),
        },
        check_token(),
    ];
    report(checks, Vec::new(), args, crate::i18n::LOCALES[0], "none")
}

fn check_data_dir(cfg: &Config, damaged: &mut Vec<crate::store::DamagedRecord>) -> Vec<Check> {
    let dir = match cfg.data_dir() {
        Ok(d) => d,
        Err(e) => {
            return vec![Check {
                name: "data_dir",
                status: Status::Fail,
                detail: format!("{e:#}"),
            }]
        }
    };
    let mut out = Vec::new();
    let shown = dir.display().to_string();
    match std::fs::metadata(&dir) {
        Ok(m) if !m.is_dir() => {
            out.push(Check {
                name: "data_dir",
                status: Status::Fail,
                detail: format!("{shown} is not a directory"),
            });
            return out;
        }
        Ok(m) => {
            let mode = m.permissions().mode() & 0o777;
            let private = mode & 0o077 == 0;
            let probe = dir.join(".doctor-probe");
            let writable = std::fs::write(&probe, b"ok").and_then(|_| std::fs::remove_file(&probe));
            out.push(match (writable, private) {
                (Err(e), _) => Check {
                    name: "data_dir",
                    status: Status::Fail,
                    detail: format!("{shown} is not writable: {e}"),
                },
                (Ok(()), false) => Check {
                    name: "data_dir",
                    status: Status::Warn,
                    detail: format!("{shown} has mode {mode:o}; others can read it (chmod 700)"),
                },
                (Ok(()), true) => Check {
                    name: "data_dir",
                    status: Status::Ok,
                    detail: shown.clone(),
                },
            });
        }
        Err(_) => {
            out.push(Check {
                name: "data_dir",
                status: Status::Ok,
                detail: format!("{shown} (created on first start)"),
            });
            return out;
        }
    }
    let mut extra = None;
    out.push(match Store::open(&dir) {
        Ok(store) => {
            *damaged = store.damaged().unwrap_or_default();
            extra = Some(check_damaged(damaged));
            Check {
                name: "database",
                status: Status::Ok,
                detail: format!(
                    "{} notes, schema v{}",
                    store.count_notes().unwrap_or(0),
                    store.schema_version().unwrap_or(CURRENT_VERSION)
                ),
            }
        }
        Err(e @ StoreError::InUse { .. }) => Check {
            name: "database",
            status: Status::Ok,
            detail: format!("{e}"),
        },
        Err(e) => Check {
            name: "database",
            status: Status::Fail,
            detail: e.to_string(),
        },
    });
    out.extend(extra);
    out
}

/// Damaged records are a warning: mnemo runs without them.
fn check_damaged(damaged: &[crate::store::DamagedRecord]) -> Check {
    if damaged.is_empty() {
        return Check {
            name: "damaged_records",
            status: Status::Ok,
            detail: "none".into(),
        };
    }
    let list: Vec<String> = damaged
        .iter()
        .map(|d| format!("{} {}", d.table, d.key))
        .collect();
    Check {
        name: "damaged_records",
        status: Status::Warn,
        detail: format!(
            "{} record(s) do not decode and are skipped: {} (`mnemo repair` exports or removes them)",
            damaged.len(),
            list.join(", ")
        ),
    }
}

fn check_models(cfg: &Config) -> Check {
    let res = cfg.model_set().and_then(|m| {
        m.verify()?;
        Ok(m)
    });
    match res {
        Ok(m) => Check {
            name: "models",
            status: Status::Ok,
            detail: format!("{} in {}", m.embed.id, m.dir.display()),
        },
        Err(e) => Check {
            name: "models",
            status: Status::Fail,
            detail: format!("{e:#} (without them recall is lexical only)"),
        },
    }
}

/// A missing cross-encoder only makes the relevance floor of imported
/// conversations plainer: a warning (none when recall does not ask it:
/// `recall.rerank` off, or an embedding model not calibrated with it).
fn check_reranker(cfg: &Config) -> Check {
    let models = cfg.model_set();
    let calibrated = models.as_ref().map_or(true, |m| m.embed.rerank.is_some());
    let (status, detail) = match models.and_then(|m| m.verify_reranker()) {
        _ if !cfg.recall.rerank => (Status::Ok, "off (recall.rerank = false)".into()),
        _ if !calibrated => (
            Status::Ok,
            format!("not used with models.embed = {:?}", cfg.models.embed),
        ),
        Ok(()) => (Status::Ok, crate::models::RERANKER.model.name.into()),
        Err(e) => (
            Status::Warn,
            format!("{e:#} (without it the relevance floor is plainer)"),
        ),
    };
    Check {
        name: "reranker",
        status,
        detail,
    }
}

/// A missing speech model only disables voice notes: a warning.
fn check_speech_model(cfg: &Config) -> Check {
    let res = crate::voice::whisper::Settings::from_config(cfg).and_then(|s| {
        match &s.expected_sha256 {
            Some(_) => crate::models::ModelSet::new(cfg.models_dir()?).verify_speech()?,
            None if !s.model.is_file() => {
                anyhow::bail!("{} does not exist ([voice] model)", s.model.display())
            }
            None => {}
        }
        Ok(s.model)
    });
    match res {
        Ok(p) => Check {
            name: "speech_model",
            status: Status::Ok,
            detail: p.display().to_string(),
        },
        Err(e) => Check {
            name: "speech_model",
            status: Status::Warn,
            detail: format!("{e:#} (voice notes cannot be transcribed)"),
        },
    }
}

fn check_token() -> Check {
    match bot_token() {
        // The console alone is a healthy mnemo.
        None => Check {
            name: "telegram_token",
            status: Status::Warn,
            detail: "TELEGRAM_BOT_TOKEN is not set: console only (`mnemo chat`); set it to serve Telegram"
                .into(),
        },
        Some(t) if looks_like_token(&t) => Check {
            name: "telegram_token",
            status: Status::Ok,
            detail: "set".into(),
        },
        Some(_) => Check {
            name: "telegram_token",
            status: Status::Fail,
            detail: "TELEGRAM_BOT_TOKEN does not look like a bot token (<digits>:<secret>)".into(),
        },
    }
}

/// `123456:ABC-…`: digits, a colon, then at least 20 URL-safe characters.
fn looks_like_token(t: &str) -> bool {
    let Some((id, secret)) = t.split_once(':') else {
        return false;
    };
    !id.is_empty()
        && id.bytes().all(|b| b.is_ascii_digit())
        && secret.len() >= 20
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn report(
    checks: Vec<Check>,
    damaged: Vec<crate::store::DamagedRecord>,
    args: &Args,
    lang: &str,
    health_from: &'static str,
) -> ExitCode {
    let failed = checks.iter().filter(|c| c.status == Status::Fail).count();
    if args.json {
        let r = Report {
            healthy: failed == 0,
            checks,
            health_from,
            damaged,
        };
        println!(
            "{}",
            serde_json::to_string_pretty(&r).expect("serialisable")
        );
    } else {
        let i18n = I18n::new();
        let say = |line: Line| println!("{}", i18n.render_plain(lang, &line));
        for c in &checks {
            let key = match c.status {
                Status::Ok => "doctor-ok",
                Status::Warn => "doctor-warn",
                Status::Fail => "doctor-fail",
                Status::Skipped => "doctor-skipped",
            };
            say(Line::new(key)
                .text("check", c.name)
                .text("detail", c.detail.clone()));
        }
        if failed == 0 {
            say(Line::new("doctor-summary-ok"));
        } else {
            say(Line::new("doctor-summary-fail").num("count", failed as i64));
        }
    }
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn token_shape() {
        assert!(super::looks_like_token(
            "123456:ABCdefGHIjklMNOpqrSTUvwx_-1"
        ));
        assert!(!super::looks_like_token("123456"));
        assert!(!super::looks_like_token("abc:ABCdefGHIjklMNOpqrSTUvwx"));
        assert!(!super::looks_like_token("1:short"));
    }
}
