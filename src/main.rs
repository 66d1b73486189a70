//! The `rcfops` binary: parses the command line and reports errors the ripgrep way (one clear
//! line, exit code 2 for usage or configuration problems, 1 for a failed operation).

use clap::Parser;

fn main() {
    let cli = rcfops::cli::Cli::parse();
    match rcfops::cli::main_with(cli) {
        Ok(code) => std::process::exit(code),
        Err(e) => {
            eprintln!("rcfops: {e:#}");
            std::process::exit(2);
        }
    }
}
