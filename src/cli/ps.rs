//! `rsafe ps`: the containers of the store, like `docker ps`.
#![forbid(unsafe_code)]

use std::time::SystemTime;

use anyhow::Result;

use super::Global;
use super::format::{seconds_ago, table, truncate};
use crate::runtime::state::{self, State, Status};

/// List containers: running ones, or all with -a
///
/// Columns: CONTAINER ID, NAME, IMAGE, COMMAND, CREATED, STATUS. A container whose rsafe was
/// killed before it could record the exit shows as `Dead` (`rsafe rm` cleans it up). With the
/// global -q, only container ids are printed.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Show all containers, not only running ones.
    #[arg(short, long)]
    pub all: bool,
}

/// What `ps` calls a container's state.
pub fn status_text(state: &State) -> String {
    match state.status {
        Status::Exited { code } => format!("Exited ({code})"),
        Status::Running if state.is_alive() => "Up".to_string(),
        Status::Running => "Dead".to_string(),
    }
}

/// Prints the listing.
pub fn run(args: PsArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let now = SystemTime::now();
    let rows: Vec<Vec<String>> = state::list(store.root())?
        .into_iter()
        .rev()
        .map(|(_, s)| s)
        .filter(|s| args.all || s.is_alive())
        .map(|s| {
            vec![
                s.short_id().to_string(),
                s.name.clone().unwrap_or_default(),
                truncate(&s.image, 30),
                truncate(&format!("\"{}\"", s.command.join(" ")), 30),
                seconds_ago(s.created as i64, now),
                status_text(&s),
            ]
        })
        .collect();
    if global.quiet {
        for r in &rows {
            println!("{}", r[0]);
        }
    } else {
        print!(
            "{}",
            table(
                &[
                    "CONTAINER ID",
                    "NAME",
                    "IMAGE",
                    "COMMAND",
                    "CREATED",
                    "STATUS"
                ],
                &rows
            )
        );
    }
    Ok(0)
}
