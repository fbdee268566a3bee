creditmesh::global_allocator!();

fn main() -> std::process::ExitCode {
    creditmesh_bench::main()
}
