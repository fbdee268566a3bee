//! The `creditmesh-bench` binary, built inside this package so that the end-to-end tests can
//! run it as a child process; with the same allocator.

creditmesh::global_allocator!();

fn main() -> std::process::ExitCode {
    creditmesh_bench::main()
}
