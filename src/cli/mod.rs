//! The command line: clap definitions (one file per command), the global options, and the one
//! place where errors become a single `rsafe: …` line and an exit code.
#![forbid(unsafe_code)]

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::image::store::Store;

pub mod run;

/// rsafe — a rootless, hardened container runner and an image leak auditor.
#[derive(Debug, Parser)]
#[command(name = "rsafe", version, about, long_about = None, propagate_version = true)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

/// Options every command takes.
#[derive(Debug, Clone, clap::Args)]
pub struct Global {
    /// The image store (an OCI image layout). Default: /var/lib/rsafe for root,
    /// $XDG_DATA_HOME/rsafe otherwise.
    #[arg(long, global = true, env = "RSAFE_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,
    /// No progress bars or chatter on stderr.
    #[arg(long, short, global = true)]
    pub quiet: bool,
    /// Say more about what is done (and what protection was enforced). No short form: `-v`
    /// is `run`'s `--volume`, as in Docker.
    #[arg(long, global = true)]
    pub verbose: bool,
}

impl Global {
    /// Opens (creating if needed) the store these options point at.
    pub fn store(&self) -> anyhow::Result<Store> {
        let root = self.root.clone().unwrap_or_else(Store::default_root);
        Store::open(&root).map_err(|e| anyhow::anyhow!("cannot open store {}: {e}", root.display()))
    }
}

#[derive(Debug, Subcommand)]
pub enum Command {
    Run(run::RunArgs),
}

impl Command {
    /// The exit code for rsafe's own failure in this command: docker's 125 for `run`, the CI
    /// gate's 2 for `audit`, 1 otherwise.
    fn failure_code(&self) -> i32 {
        match self {
            Command::Run(_) => 125,
        }
    }
}

/// Parses the command line, runs the command and returns the process exit code.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let code = cli.command.failure_code();
    match dispatch(cli) {
        Ok(code) => code,
        Err(err) => {
            eprintln!("rsafe: {}", one_line(&err));
            code
        }
    }
}

fn dispatch(cli: Cli) -> anyhow::Result<i32> {
    let Cli { global, command } = cli;
    match command {
        Command::Run(args) => run::run(args, &global),
    }
}

/// An error chain as one line: `what failed: why: why`.
pub fn one_line(err: &anyhow::Error) -> String {
    format!("{err:#}").replace('\n', " ")
}
