//! `rsafe system restart`: what docker's daemon does with restart policies when it starts
//! (after a reboot), for rsafe, which has no daemon: a boot unit runs it (README).
#![forbid(unsafe_code)]

use anyhow::Result;

use super::Global;
use super::run::{exit_code, notes_to_stderr};
use crate::runtime::detach::{self, Detached};
use crate::runtime::state::{self, Phase};

/// Start the stopped containers whose restart policy says so, as docker's daemon does at its
/// start
///
/// For a boot unit (see the README): `--restart always` containers are started, even those
/// `rsafe stop` stopped; `unless-stopped` ones unless `rsafe stop` stopped them since their
/// last start; `on-failure[:N]` ones likewise, when their last run failed (within N
/// restarts). A container whose monitor was told to end (SIGTERM at a
/// shutdown) was not stopped by the user. Each runs in the background under its policy
/// again, as `rsafe start` does; its name is printed. Running and never-started containers
/// are left alone. Exit code 0, or 1 when one could not be started (each said on stderr).
#[derive(Debug, clap::Args)]
pub struct SystemRestartArgs {}

/// One container the restart considers: its name (or id), and whether to start it.
struct Candidate {
    name: String,
    starts: bool,
}

/// The store's containers, oldest first, with whether each is started.
fn candidates(store_root: &std::path::Path) -> Result<Vec<Candidate>> {
    Ok(state::list(store_root)?
        .into_iter()
        .map(|(dir, st)| {
            // A container cut off (its monitor killed) ended as by SIGKILL.
            let last_exit = match dir.phase(&st) {
                Phase::Exited(code) => Some(code),
                Phase::Dead => Some(137),
                Phase::Up | Phase::Created => None,
            };
            let policy = dir.load_spec(&st.id).ok().and_then(|s| s.options.restart);
            let starts = policy.is_some_and(|p| {
                let by_user = detach::stopped_by_user(&dir);
                detach::starts_at_boot(p, by_user, last_exit, detach::restart_count(&dir))
            });
            Candidate {
                name: st.name.clone().unwrap_or_else(|| st.id.clone()),
                starts,
            }
        })
        .collect())
}

/// Starts each container [`candidates`] picks; 1 if one could not be started.
pub fn run(_args: SystemRestartArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    state::sweep(store.root())?;
    let mut code = 0;
    for c in candidates(store.root())?.into_iter().filter(|c| c.starts) {
        let notify = notes_to_stderr(global.verbose);
        match detach::start_detached(store.root(), &c.name, notify, exit_code) {
            Ok(Detached::Started(_)) => println!("{}", c.name),
            Ok(Detached::Failed { message, .. }) => {
                eprintln!("rsafe: {}: {message}", c.name);
                code = 1;
            }
            Err(e) => {
                eprintln!("rsafe: {}: {}", c.name, super::one_line(&e.into()));
                code = 1;
            }
        }
    }
    Ok(code)
}
