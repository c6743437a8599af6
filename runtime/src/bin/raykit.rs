//! The `raykit` command: start, inspect and stop cluster daemons (see `raykit --help`).

fn main() -> std::process::ExitCode {
    raykit::cluster::cli::main()
}
