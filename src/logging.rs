//! tracing setup: human-readable or JSON lines on stderr.
//!
//! Secrets are never passed to tracing macros: the token goes straight from
//! the environment to the client, and the client's URLs (which contain it)
//! are not logged by mnemo. teloxide's own request logging is kept at `warn`
//! unless asked for explicitly, and so are whisper.cpp's model-loading lines
//! (target `whisper_rs`).

use tracing_subscriber::{fmt, EnvFilter};

use crate::config::LogFormat;

/// Installs the global subscriber. `RUST_LOG` wins over `level`.
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        EnvFilter::new(format!(
            "{level},teloxide=warn,teloxide_core=warn,reqwest=warn,hyper=warn,whisper_rs=warn"
        ))
    });
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.with_target(false).try_init(),
    };
}
