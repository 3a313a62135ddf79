fn main() -> std::process::ExitCode {
    mcf_ledger::cli::main()
}
