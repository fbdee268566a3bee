fn main() -> std::process::ExitCode {
    creditmesh::cli::main()
}
