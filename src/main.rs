//! The `mnemo` binary: wiring only. See `mnemo::cli`.

fn main() -> std::process::ExitCode {
    mnemo::cli::main()
}
