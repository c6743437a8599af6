//! The `raykit` command line, built inside the test crate so that the multi-process tests can
//! run it as `env!("CARGO_BIN_EXE_raykit-cli")`.

fn main() -> std::process::ExitCode {
    raykit::cluster::cli::main()
}
