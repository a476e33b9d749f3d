fn main() -> std::process::ExitCode {
    percept_cli::main()
}
