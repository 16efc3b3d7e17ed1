fn main() -> std::process::ExitCode {
    hejnal::cli::main()
}
