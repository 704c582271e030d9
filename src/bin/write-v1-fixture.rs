//! Writes the v1 database fixture the migration tests read:
//!
//! ```text
//! cargo run --bin write-v1-fixture -- tests/data/schema_v1.redb
//! ```
//!
//! The file at the path is replaced. The committed fixture is frozen on
//! purpose (it is what a v1 mnemo left on disk); regenerate it only when the
//! fixture notes themselves change.

use std::path::PathBuf;
use std::process::ExitCode;

use mnemo::store::schema::{write_v1_fixture, V1_FIXTURE_NOTES};

fn main() -> ExitCode {
    let mut args = std::env::args_os().skip(1);
    let (Some(path), None) = (args.next().map(PathBuf::from), args.next()) else {
        eprintln!("usage: write-v1-fixture <output.redb>");
        return ExitCode::from(2);
    };
    if let Err(e) = std::fs::remove_file(&path) {
        if e.kind() != std::io::ErrorKind::NotFound {
            eprintln!("cannot replace {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Err(e) = write_v1_fixture(&path, V1_FIXTURE_NOTES) {
        eprintln!("cannot write {}: {e}", path.display());
        return ExitCode::FAILURE;
    }
    println!(
        "wrote {} v1 notes to {}",
        V1_FIXTURE_NOTES.len(),
        path.display()
    );
    ExitCode::SUCCESS
}
