//! The `mnemo` binary: wiring only. See `mnemo::cli`.

fn main() -> std::process::ExitCode {
    // Everything mnemo creates — the database, audio, the ANN graph,
    // backups, exports, the control socket — is for its user alone: files
    // 0600, directories 0700, whatever a library's default mode is.
    // SAFETY: umask only sets the process's file mode creation mask.
    unsafe { libc::umask(0o077) };
    mnemo::cli::main()
}
