//! `mnemo import <result.json>`: Telegram Desktop chat history.
//!
//! Two streaming passes ([`crate::import::parse_each`]), so memory does not
//! grow with the file: the first only checks the whole export (a malformed
//! file, a bad date, anything, and nothing is written), the second writes
//! it in batches. A file over `notes.import_max_bytes` is refused from its
//! metadata before it is read; input that is not a regular file (a pipe,
//! `/dev/stdin`) is read at most that far, into an unlinked private spool
//! file the second pass reads.

use std::io::{BufReader, Read, Seek, Write};

use anyhow::Context;
use serde::Serialize;

use crate::config::Config;
use crate::import::ImportedMessage;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The export's result.json.
    file: std::path::PathBuf,
    /// Messages per transaction.
    #[arg(long, default_value_t = 1000)]
    batch: usize,
    /// Import only; leave embedding to the running bot (or the next command).
    #[arg(long)]
    no_embed: bool,
    /// Print a JSON summary.
    #[arg(long)]
    json: bool,
}

#[derive(Serialize)]
struct Summary {
    chats: u64,
    imported: u64,
    skipped: u64,
    duplicates: u64,
    /// Messages longer than `notes.max_chars`, stored as linked parts.
    split: u64,
    /// The notes those messages became.
    parts: u64,
    embedded: u64,
    seconds: f64,
}

/// Copies what it reads into `w` (the spool of a non-regular input).
struct Tee<R, W> {
    r: R,
    w: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.r.read(buf)?;
        self.w.write_all(&buf[..n])?;
        Ok(n)
    }
}

pub fn run(cfg: &Config, args: &Args) -> anyhow::Result<()> {
    let t0 = std::time::Instant::now();
    let shown = args.file.display().to_string();
    let cap = cfg.notes.import_max_bytes;
    let (mut input, regular) = super::open_capped(&args.file, cap, "notes.import_max_bytes")?;
    // Pass 1: check everything, write nothing.
    let (counts, mut input) = if regular {
        let c = crate::import::parse_each(BufReader::new((&input).take(cap)), |_| Ok(()));
        (c, input)
    } else {
        let spool = tempfile::tempfile().context("cannot create a spool file")?;
        let mut tee = Tee {
            r: (&mut input).take(cap + 1),
            w: std::io::BufWriter::new(spool),
        };
        let c = crate::import::parse_each(BufReader::new(&mut tee), |_| Ok(()));
        let read = tee.r.limit();
        let spool = tee.w.into_inner().map_err(|e| e.into_error())?;
        if read == 0 {
            anyhow::bail!(
                "{shown}: more than {cap} bytes (notes.import_max_bytes); nothing was imported"
            );
        }
        (c, spool)
    };
    let counts = counts.map_err(|e| anyhow::anyhow!("{shown}: {e}; nothing was imported"))?;
    input.rewind()?;

    // Pass 2: the same stream, written in batches.
    let app = crate::app::App::open_bulk(cfg)?;
    let core = app.core();
    let bar = super::progress_bar(!args.json, counts.messages, "importing");
    let batch = args.batch.max(1);
    let mut sum = crate::core::ImportSummary::default();
    let mut buf: Vec<ImportedMessage> = Vec::with_capacity(batch);
    let mut done = 0u64;
    let mut flush = |buf: &mut Vec<ImportedMessage>| -> Result<(), String> {
        let s = core
            .import(buf, batch, |_, _| {})
            .map_err(|e| e.to_string())?;
        done += buf.len() as u64;
        bar.set_position(done);
        // Each batch is one commit: what this line counts survives a crash.
        tracing::debug!(done, total = counts.messages, "import batch committed");
        sum.imported += s.imported;
        sum.duplicates += s.duplicates;
        sum.split += s.split;
        sum.parts += s.parts;
        buf.clear();
        Ok(())
    };
    crate::import::parse_each(BufReader::new((&input).take(cap)), |m| {
        buf.push(m);
        if buf.len() >= batch {
            flush(&mut buf)?;
        }
        Ok(())
    })
    .and_then(|_| flush(&mut buf).map_err(crate::import::ImportError::Sink))
    .map_err(|e| anyhow::anyhow!("{shown}: {e}; the batches before it were imported, run the same import again to finish it"))?;
    bar.finish_and_clear();
    let mut embedded = 0;
    if !args.no_embed && core.embedder().is_some() {
        let pending = core.store().embed_queue_len()?;
        let bar = super::progress_bar(!args.json, pending, "embedding");
        embedded = core.embed_all_pending(super::track(&bar))?;
        bar.finish_and_clear();
    }
    let s = Summary {
        chats: counts.chats,
        imported: sum.imported,
        skipped: counts.skipped,
        duplicates: sum.duplicates,
        split: sum.split,
        parts: sum.parts,
        embedded,
        seconds: t0.elapsed().as_secs_f64(),
    };
    if args.json {
        return super::print_json(&s);
    }
    super::say(
        cfg,
        crate::i18n::Line::new("cli-imported")
            .num("imported", s.imported)
            .num("chats", s.chats)
            .num("skipped", s.skipped)
            .num("dups", s.duplicates)
            .num("embedded", s.embedded)
            .text("secs", format!("{:.1}", s.seconds)),
    );
    if s.split > 0 {
        super::say(
            cfg,
            crate::i18n::Line::new("cli-imported-split")
                .num("messages", s.split)
                .num("parts", s.parts),
        );
    }
    Ok(())
}
