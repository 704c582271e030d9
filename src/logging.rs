//! tracing setup: human-readable or JSON lines on stderr.
//!
//! Secrets are never passed to tracing macros: the token goes straight from
//! the environment to the client, and the client's URLs (which contain it)
//! are not logged by mnemo. teloxide's own request logging is kept at `warn`
//! unless asked for explicitly, and so are whisper.cpp's model-loading lines
//! (target `whisper_rs`).
//!
//! Colours only on a terminal, and never with `NO_COLOR` set: a redirected
//! log holds no escape codes.

use std::io::IsTerminal;

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` wins over `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},teloxide=warn,teloxide_core=warn,reqwest=warn,hyper=warn,whisper_rs=warn"
        ))
    });
    let builder = fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal_without_no_color() {
        assert!(colour(true, None));
        assert!(colour(true, Some("".into())));
        assert!(!colour(true, Some("1".into())));
        assert!(!colour(false, None));
    }
}
