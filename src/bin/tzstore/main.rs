//! The tzstore command-line tool: `demo` exercises every store in a fresh
//! directory and prints what it did; `info` inspects a block store and
//! `check` verifies (and with `--repair` salvages) a store of any kind.

mod demo;
mod detect;
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
    /// Check a store of any kind (block store, cemented or floating store,
    /// index, indexed file, key/value store, singleton file): every record
    /// is read and verified; damage is reported with its file and offset.
    Check {
        /// The store's directory (or the singleton's file).
        dir: PathBuf,
        /// Salvage a damaged store: keep every intact record and move what
        /// is dropped into the store's `.tzs-quarantine/<time>/` folder
        /// (needs the store not to be open read-write elsewhere).
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
