// A proxy allocates and frees a little for every call on every thread; mimalloc's per-thread
// heaps do that at a fraction of the system allocator's cost (see README, "Benchmark").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    creditmesh::cli::main()
}
