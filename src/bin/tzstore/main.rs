//! The tzstore command-line tool, for operators (like LMDB's `mdb_stat`,
//! `mdb_dump` and `mdb_copy`, or RocksDB's `ldb`): `info`, `check`, `get`,
//! `dump` and `copy` work on every store kind, told from the files in the
//! path; `demo` exercises every store in a fresh directory.

mod check;
mod copy;
mod demo;
mod detect;
mod dump;
mod fields;
mod fmt;
mod get;
mod info;
mod open;
mod progress;
mod walk;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tzstore::Error;

/// Exit status of a failed operation or of damage found.
const EXIT_FAILED: u8 = 1;
/// Exit status of a usage error (clap uses 2 for its own).
const EXIT_USAGE: u8 = 2;

#[derive(Parser)]
#[command(
    name = "tzstore",
    version,
    about = "Inspect, check, read, dump and copy tzstore stores (block stores, cemented and \
             floating stores, indexes, indexed files, key/value stores, singletons)",
    after_help = "The store kind is told from the files in PATH; a path that holds no store is \
                  refused (never created).\n\n\
                  Exit status:\n  \
                  0  success (check: no problem found)\n  \
                  1  damage found, a record not found, or the operation failed\n  \
                  2  usage error: bad arguments, a missing PATH or one that holds no store"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print what a store holds (opened read-only: safe beside its writer).
    Info {
        /// The store's directory (or a singleton's file).
        path: PathBuf,
        /// One JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Verify every record of a store; damage is reported with its file and
    /// offset, and exit status 1.
    Check {
        /// The store's directory (or a singleton's file).
        path: PathBuf,
        /// Salvage a damaged store: keep every intact record and move what
        /// is dropped into the store's `.tzs-quarantine/<time>/` folder;
        /// every change is listed. Needs the store not to be open
        /// read-write elsewhere.
        #[arg(long)]
        repair: bool,
        /// One JSON object (ok, records_checked, stopped_early, problems,
        /// repaired, quarantined) instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print one record: a block (by hash, hash and distance, or level), an
    /// index or indexed-file key (hex), a key/value key (path), a
    /// singleton's value (no key). Values print as hex.
    Get {
        /// The store's directory (or a singleton's file).
        path: PathBuf,
        /// Block hash (64 hex digits), index key (hex) or kv key (a/b/c).
        key: Option<String>,
        /// Blocks: the (cemented, else floating) block at this level.
        #[arg(long, allow_negative_numbers = true)]
        level: Option<i32>,
        /// Blocks: the ancestor this many blocks below KEY.
        #[arg(long, default_value_t = 0)]
        distance: u32,
        /// Blocks: include the metadata (with --raw: write it instead of
        /// the contents).
        #[arg(long)]
        metadata: bool,
        /// Write the value's bytes (a block's contents) to stdout, nothing
        /// else.
        #[arg(long, conflicts_with = "json")]
        raw: bool,
        /// One JSON object per record instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print every record: index and indexed-file entries, the key/value
    /// tree, cemented chunks and floating blocks, a singleton's value.
    #[command(visible_alias = "list")]
    Dump {
        /// The store's directory (or a singleton's file).
        path: PathBuf,
        /// One JSON document instead of one text line a record.
        #[arg(long)]
        json: bool,
    },
    /// Copy a store consistently while its writer runs (the source is
    /// opened read-only), check the copy, then move it to DST (which must
    /// not exist).
    ///
    /// What the copy holds: block, cemented and floating stores: the chunks
    /// and blocks of the state the read-only open saw (every block stored
    /// before the copy started), with the same chunk boundaries, history
    /// mode and metadata; index: every entry flushed before the copy
    /// started; indexed file: the keys of the generation it opened, each
    /// with its value when read; key/value store: one state the store had
    /// (the copy's root digest equals the source's just before or just after
    /// copying; retried 5 times, then exit 1); singleton: its value. A
    /// failed copy leaves no DST.
    Copy {
        /// The store to copy.
        src: PathBuf,
        /// Where the copy goes (created).
        dst: PathBuf,
    },
    /// Run an end-to-end demo of every store in a fresh directory.
    Demo {
        /// Directory to use: new or empty (created). Default: a new
        /// temporary directory, removed afterwards.
        #[arg(long)]
        dir: Option<PathBuf>,
        /// Blocks in the sample chain (at least 1).
        #[arg(long, default_value_t = 50_000,
              value_parser = clap::value_parser!(u32).range(1..))]
        blocks: u32,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info { path, json } => info::run(&path, json),
        Command::Check { path, repair, json } => check::run(&path, repair, json),
        Command::Get {
            path,
            key,
            level,
            distance,
            metadata,
            raw,
            json,
        } => get::run(
            &path,
            &get::Query {
                key,
                level,
                distance,
                metadata,
                raw,
                json,
            },
        ),
        Command::Dump { path, json } => dump::run(&path, json),
        Command::Copy { src, dst } => copy::run(&src, &dst),
        Command::Demo { dir, blocks } => demo::run(dir, blocks),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tzstore: {e}");
            ExitCode::from(exit_code(&e))
        }
    }
}

/// Bad arguments (a key of the wrong size, a path that holds no store,
/// flags that do not apply) are usage errors; everything else failed.
fn exit_code(e: &Error) -> u8 {
    match e {
        Error::InvalidArgument(_) => EXIT_USAGE,
        _ => EXIT_FAILED,
    }
}
