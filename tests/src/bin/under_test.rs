//! The `creditmesh` binary, built inside this package so that the end-to-end tests can run it
//! as a child process (and kill it).

fn main() -> std::process::ExitCode {
    creditmesh::cli::main()
}
