//! The console channel (`mnemo chat`): one line in, one event to the core,
//! replies printed as plain text. Works interactively and with piped stdin.
//!
//! The person at the terminal is trusted (they can read the data dir anyway),
//! so console events skip the allowlist. Notes land in chat
//! [`CONSOLE_CHAT_ID`].

use std::io::{BufRead, IsTerminal, Write};

use crate::core::{now_ms, Body, Core, Inbound, Origin, Outcome, CONSOLE_CHAT_ID};
use crate::i18n::{I18n, Line};

/// Reads lines from `input` until end of input, answering each on `out`.
/// Blank lines are skipped. Input that is not UTF-8 is decoded lossily.
pub fn run(
    core: &Core,
    i18n: &I18n,
    mut input: impl BufRead,
    mut out: impl Write,
    interactive: bool,
) -> anyhow::Result<()> {
    let lang = core.settings().default_lang.clone();
    if interactive {
        let banner =
            Line::new("console-banner").text("dir", core.store().dir().display().to_string());
        writeln!(out, "{}", i18n.render_plain(&lang, &banner))?;
    }
    let mut buf = Vec::new();
    loop {
        if interactive {
            write!(out, "› ")?;
            out.flush()?;
        }
        buf.clear();
        if input.read_until(b'\n', &mut buf)? == 0 {
            break;
        }
        let line = String::from_utf8_lossy(&buf);
        let line = line.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        let ev = Inbound {
            origin: Origin::console(),
            chat_id: CONSOLE_CHAT_ID,
            user_id: 0,
            user_lang: None,
            message_id: None,
            reply_to: None,
            at: now_ms(),
            body: Body::Text(line.to_owned()),
        };
        match core.handle(ev) {
            Ok(outcomes) => {
                // The console has no buttons to press, so replies carry none.
                for o in outcomes {
                    let Outcome::Reply(r) = o else { continue };
                    writeln!(out, "{}", i18n.render_all_plain(&r.lang, &r.lines))?;
                }
            }
            Err(e) => {
                let msg = i18n.render_plain(&lang, &Line::new("storage-error"));
                writeln!(out, "{msg}")?;
                tracing::error!(error = %e, "console event failed");
            }
        }
        out.flush()?;
    }
    Ok(())
}

/// Runs on the process's stdin and stdout.
pub fn run_stdio(core: &Core, i18n: &I18n) -> anyhow::Result<()> {
    let stdin = std::io::stdin();
    let interactive = stdin.is_terminal();
    run(
        core,
        i18n,
        stdin.lock(),
        std::io::stdout().lock(),
        interactive,
    )
}
