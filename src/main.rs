//! The `rcfops` binary: parses the command line and reports errors the ripgrep way (one clear
//! line, exit code 2 for usage or configuration problems, 1 for a failed operation).

use clap::Parser;

fn main() {
    let cli = rcfops::cli::Cli::parse();
    // Printing commands behave like other Unix tools when the reader goes away (`rcfops logs |
    // head`). The agent keeps SIGPIPE ignored: a notification program that exits without
    // reading its input must not kill it.
    #[cfg(unix)]
    if !matches!(
        cli.command,
        rcfops::cli::Command::Up | rcfops::cli::Command::Serve(_)
    ) {
        // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
        unsafe {
            libc::signal(libc::SIGPIPE, libc::SIG_DFL);
        }
    }
    match rcfops::cli::main_with(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rcfops: {e:#}");
            std::process::exit(rcfops::cli::exit_code(&e));
        }
    }
}
