//! `guichet` binary: parse the command line, hand over to [`guichet::cli`].

fn main() -> std::process::ExitCode {
    guichet::cli::main()
}
