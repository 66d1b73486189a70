//! The `rcfops` binary: parses the command line and reports errors the ripgrep way (one clear
//! line, exit code 2 for usage or configuration problems, 1 for a failed operation).

use clap::Parser;

fn main() {
    // Behave like other Unix tools when the reader goes away (`rcfops logs | head`).
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of SIGPIPE before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = rcfops::cli::Cli::parse();
    match rcfops::cli::main_with(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rcfops: {e:#}");
            std::process::exit(rcfops::cli::exit_code(&e));
        }
    }
}
