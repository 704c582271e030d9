//! `mnemo repair`: damaged records (values that no longer decode, see
//! `store/damaged.rs`). By default it only lists them; `--export FILE`
//! writes each one's raw bytes as a JSON line (`table`, `key`, `error`,
//! `hex`; the file 0600); `--remove` deletes them, in one transaction, with
//! the index entries that point at them. Both can be given (export first).
//!
//! A command of its own rather than `doctor --fix`: doctor only reads and
//! also runs beside a serving mnemo, while this one writes and must have the
//! database to itself — refused while a mnemo answers on the control socket
//! or holds the database lock (like `restore`).

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::PathBuf;

use anyhow::Context;
use serde::Serialize;

use crate::config::Config;
use crate::i18n::Line;
use crate::store::{DamagedRecord, Store};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Write the damaged records' raw bytes to FILE (JSON lines, hex; mode 0600).
    #[arg(long, value_name = "FILE")]
    export: Option<PathBuf>,
    /// Delete the damaged records (they cannot be read; export them first to keep their bytes).
    #[arg(long)]
    remove: bool,
    /// Print JSON: {"damaged": [{"table", "key", "error", "bytes"}], "exported": FILE|null, "removed": N}.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Report {
    damaged: Vec<DamagedRecord>,
    exported: Option<String>,
    removed: usize,
}

#[derive(Serialize)]
struct ExportLine<'a> {
    table: &'a str,
    key: &'a str,
    error: &'a str,
    hex: String,
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let data = cfg.data_dir()?;
    if std::os::unix::net::UnixStream::connect(data.join(crate::app::control::SOCKET)).is_ok() {
        anyhow::bail!(
            "mnemo is running on {} (its control socket answers); stop it before repairing",
            data.display()
        );
    }
    // A second process gets "in use" here, naming the serving pid.
    let store = Store::open(&data)?;
    let found = store.damaged_raw()?;
    if let Some(path) = &args.export {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        for (rec, bytes) in &found {
            let line = ExportLine {
                table: rec.table,
                key: &rec.key,
                error: &rec.error,
                hex: bytes.iter().map(|b| format!("{b:02x}")).collect(),
            };
            serde_json::to_writer(&mut f, &line)?;
            f.write_all(b"\n")?;
        }
        f.sync_all()?;
    }
    let removed = if args.remove {
        store.remove_damaged()?.len()
    } else {
        0
    };
    let report = Report {
        damaged: found.into_iter().map(|(r, _)| r).collect(),
        exported: args.export.as_ref().map(|p| p.display().to_string()),
        removed,
    };
    if args.json {
        return super::print_json(&report);
    }
    if report.damaged.is_empty() {
        super::say(cfg, Line::new("cli-repair-none"));
    }
    for r in &report.damaged {
        super::say(
            cfg,
            Line::new("cli-repair-record")
                .text("table", r.table)
                .text("key", r.key.clone())
                .text("error", r.error.clone()),
        );
    }
    if let Some(p) = &report.exported {
        super::say(
            cfg,
            Line::new("cli-repair-exported")
                .num("count", report.damaged.len() as u64)
                .text("path", p.clone()),
        );
    }
    if args.remove {
        super::say(
            cfg,
            Line::new("cli-repair-removed").num("count", removed as u64),
        );
    }
    Ok(())
}
