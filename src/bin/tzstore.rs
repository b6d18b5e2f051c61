//! The tzstore command-line tool: `demo` exercises every store in a fresh
//! directory and prints what it did.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use clap::{Parser, Subcommand};
use tzstore::singleton::Singleton;
use tzstore::{OpenOptions, Result};

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
        /// Directory to use (created; must be empty or absent). Default: a
        /// new temporary directory, removed afterwards.
        #[arg(long)]
        dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { dir } => run_demo(dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("tzstore: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run_demo(dir: Option<PathBuf>) -> Result<()> {
    let (root, _tmp) = match dir {
        Some(d) => {
            std::fs::create_dir_all(&d)
                .map_err(|e| tzstore::Error::io("create directory", &d, e))?;
            (d, None)
        }
        None => {
            let t = tempfile::Builder::new()
                .prefix("tzstore-demo-")
                .tempdir()
                .map_err(|e| {
                    tzstore::Error::io("create temporary directory", Path::new("/tmp"), e)
                })?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    println!("tzstore {} demo in {}", tzstore::VERSION, root.display());
    let started = Instant::now();
    demo_singleton(&root)?;
    println!("demo finished in {:.2?}", started.elapsed());
    Ok(())
}

fn demo_singleton(root: &Path) -> Result<()> {
    println!("\n== singleton (L2 SINGLETON_STORE) ==");
    let path = root.join("head");
    let s = Singleton::open(&path, &OpenOptions::read_write())?;
    println!("opened {} (unset: {})", path.display(), s.read().is_none());
    s.write(b"BLc1...head-at-level-42")?;
    println!("wrote the head durably (temp file, fsync, rename, fsync dir)");
    let ro = Singleton::open(&path, &OpenOptions::read_only())?;
    s.write(b"BLd2...head-at-level-43")?;
    ro.sync()?;
    println!(
        "read-only handle after sync sees: {}",
        String::from_utf8_lossy(&ro.read().unwrap_or_default())
    );
    match Singleton::open(&path, &OpenOptions::read_write()) {
        Err(e) => println!("a second read-write open is refused: {e}"),
        Ok(_) => return Err(tzstore::Error::Inconsistent("lock not enforced".into())),
    }
    drop((s, ro));
    let s = Singleton::open(&path, &OpenOptions::read_write())?;
    println!(
        "after reopen: {}",
        String::from_utf8_lossy(&s.read().unwrap_or_default())
    );
    s.delete()?;
    println!("deleted; unset again: {}", s.read().is_none());
    Ok(())
}
