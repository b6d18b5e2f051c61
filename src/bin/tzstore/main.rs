//! The tzstore command-line tool: `demo` exercises every store in a fresh
//! directory and prints what it did; `info` and `check` inspect a block store.

mod demo;
mod inspect;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "tzstore",
    version,
    about = "Crash-safe storage for blockchain nodes"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run an end-to-end demo of every store in a fresh directory.
    Demo {
        /// Directory to use (created). Default: a new temporary directory,
        /// removed afterwards.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Blocks in the sample chain.
        #[arg(long, default_value_t = 50_000)]
        blocks: u32,
    },
    /// Print the state of a block store (opened read-only).
    Info {
        /// The block store's directory.
        dir: PathBuf,
    },
    /// Check every invariant of a block store.
    Check {
        /// The block store's directory.
        dir: PathBuf,
        /// Fix what can be fixed (needs the store not to be open elsewhere).
        #[arg(long)]
        repair: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir, blocks } => demo::run(dir, blocks),
        Command::Info { dir } => inspect::info(&dir),
        Command::Check { dir, repair } => inspect::check(&dir, repair),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tzstore: {e}");
            ExitCode::FAILURE
        }
    }
}
