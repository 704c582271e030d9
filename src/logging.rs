//! tracing setup: human-readable or JSON lines on stderr.
//!
//! The default filter is `warn` for every dependency (hnsw_rs and anndists
//! narrate each index load at `info`, teloxide its polling, whisper.cpp its
//! model loading under `whisper_rs`) and mnemo's own level for `mnemo`.
//! `RUST_LOG` replaces that filter entirely. Colours only on a terminal, and
//! never with `NO_COLOR` set: a redirected log holds no escape codes.
//!
//! Secrets are never passed to tracing macros: the token goes straight from
//! the environment to the client, and the client's URLs (which contain it)
//! are not logged by mnemo. Nor by the dependencies, even at `trace`:
//! reqwest and hyper-util log scheme and host only, and teloxide strips the
//! URL from request errors; `tests/process.rs` checks it at `RUST_LOG=trace`.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// The levels from quietest to loudest; `-v` moves mnemo's one step right.
const LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Installs the global subscriber. `level` is mnemo's level (or a whole
/// filter such as `mnemo=debug,teloxide=info`), raised one step per
/// `verbose`; `RUST_LOG`, when set and valid, wins over both.
pub fn init(format: LogFormat, level: &str, verbose: u8) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_directives(level, verbose)));
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A line stderr does not take (it goes to a file on a full disk) is
        // dropped: reporting that on stderr (the default) panics the task
        // that logged — the health job, a handler.
        .log_internal_errors(false)
        .with_ansi(colour(
            std::io::stderr().is_terminal(),
            std::env::var_os("NO_COLOR"),
        ));
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}

/// Colours on a terminal, unless `NO_COLOR` is set to something
/// (<https://no-color.org>: an empty value does not count).
fn colour(terminal: bool, no_color: Option<std::ffi::OsString>) -> bool {
    terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The filter without `RUST_LOG`: dependencies at `warn`, mnemo at `level`
/// raised by `verbose` steps. A `level` that is a filter of its own is kept
/// after the `warn` default (so it can raise a dependency), and `-v` then
/// sets mnemo to `debug`, `-vv` to `trace`.
pub fn default_directives(level: &str, verbose: u8) -> String {
    let level = level.trim();
    match LEVELS.iter().position(|l| l.eq_ignore_ascii_case(level)) {
        Some(i) => {
            let raised = LEVELS[(i + usize::from(verbose)).min(LEVELS.len() - 1)];
            format!("warn,mnemo={raised}")
        }
        None => match verbose {
            0 => format!("warn,{level}"),
            1 => format!("warn,{level},mnemo=debug"),
            _ => format!("warn,{level},mnemo=trace"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dependencies_stay_at_warn_and_mnemo_gets_its_level() {
        assert_eq!(default_directives("info", 0), "warn,mnemo=info");
        assert_eq!(default_directives("warn", 0), "warn,mnemo=warn");
        assert_eq!(default_directives(" DEBUG ", 0), "warn,mnemo=debug");
    }

    #[test]
    fn verbose_raises_mnemo_one_step_at_a_time_up_to_trace() {
        assert_eq!(default_directives("warn", 1), "warn,mnemo=info");
        assert_eq!(default_directives("warn", 2), "warn,mnemo=debug");
        assert_eq!(default_directives("info", 1), "warn,mnemo=debug");
        assert_eq!(default_directives("info", 2), "warn,mnemo=trace");
        assert_eq!(default_directives("info", 9), "warn,mnemo=trace");
    }

    #[test]
    fn a_configured_filter_is_kept_after_the_warn_default() {
        let d = "mnemo=debug,teloxide=info";
        assert_eq!(default_directives(d, 0), format!("warn,{d}"));
        assert_eq!(default_directives(d, 1), format!("warn,{d},mnemo=debug"));
        assert_eq!(default_directives(d, 3), format!("warn,{d},mnemo=trace"));
    }

    /// What a subscriber with `directives` prints for an `info` and a
    /// `warn` line of hnsw_rs and of mnemo.
    fn printed(directives: &str) -> String {
        use std::sync::{Arc, Mutex};
        let out = Arc::new(Mutex::new(Vec::new()));
        let sink = out.clone();
        let subscriber = fmt()
            .with_env_filter(EnvFilter::new(directives))
            .with_ansi(false)
            .with_writer(move || Sink(sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "hnsw_rs::hnswio", "dep info");
            tracing::warn!(target: "hnsw_rs::hnswio", "dep warn");
            tracing::info!(target: "mnemo::cli::recall", "own info");
            tracing::warn!(target: "mnemo::cli::recall", "own warn");
        });
        let text = String::from_utf8(out.lock().unwrap().clone()).unwrap();
        text
    }

    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

    impl std::io::Write for Sink {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn the_directives_select_what_they_say() {
        let one_shot = printed(&default_directives("warn", 0));
        assert!(one_shot.contains("dep warn") && one_shot.contains("own warn"));
        assert!(!one_shot.contains("info"), "{one_shot}");
        let served = printed(&default_directives("info", 0));
        assert!(
            served.contains("own info") && !served.contains("dep info"),
            "{served}"
        );
        let verbose = printed(&default_directives("warn", 1));
        assert!(
            verbose.contains("own info") && !verbose.contains("dep info"),
            "{verbose}"
        );
    }

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
