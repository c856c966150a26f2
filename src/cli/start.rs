//! `rsafe start`: run a created or stopped container, in the background as `docker start`
//! and `podman start` do, or attached with `-a`/`-i`.
#![forbid(unsafe_code)]

use std::path::Path;

use anyhow::{Result, bail};

use super::Global;
use super::run::{detached_code, exit_code, notes_to_stderr};
use crate::runtime::detach;
use crate::runtime::process;
use crate::runtime::state::{self, ContainerDir};

/// Start a created or stopped container
///
/// It runs its command with the spec `rsafe create` or `rsafe run` gave it (image layers,
/// environment, volumes, limits, policy) on its writable layer, so what it wrote before is
/// still there. Containers made with --rm are gone when they stop. As docker and podman
/// do, it starts the container in the background and prints its name (its output goes to
/// `rsafe logs`), under its --restart policy again as docker's and podman's start do (the
/// stop of an earlier `rsafe stop` forgotten, the restart count back to 0); with -a or -i it
/// stays attached, runs the command once and exits with its exit code.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// Stay attached: stdout and stderr here, signals passed on, and the command's exit code.
    #[arg(short, long, conflicts_with = "detach")]
    pub attach: bool,
    /// Run in the background: the default (kept for scripts written for rsafe's older
    /// attached default).
    #[arg(short, long)]
    pub detach: bool,
    /// Attach stdin too (implies -a, as in docker).
    #[arg(short, long, conflicts_with = "detach")]
    pub interactive: bool,
    /// Say what was set up and enforced, as `rsafe run --verbose` does.
    #[arg(long)]
    pub verbose: bool,
    /// Every container that is not running (podman's; with --filter, those it selects), as
    /// podman-restart.service starts them at boot: `--all --filter restart-policy=always`.
    #[arg(long, conflicts_with_all = ["attach", "interactive", "containers"])]
    pub all: bool,
    /// With --all: ps's filters (name, id, label, status, ancestor, restart-policy, …).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// The containers' names or ids (a unique prefix of an id is enough).
    #[arg(value_name = "CONTAINER", required_unless_present = "all")]
    pub containers: Vec<String>,
}

/// Starts the container: in the background (0 once it runs, or its start failure's code), or
/// attached with `-a`/`-i`, returning the workload's exit code.
pub fn run(args: StartArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let verbose = args.verbose || global.verbose;
    if !args.filter.is_empty() && !args.all {
        bail!("--filter selects containers for --all: give --all, or name the containers");
    }
    if args.all {
        let names = super::ps::select_by_filters(global, &args.filter)?;
        let stopped = names.into_iter().filter(|(_, up)| !up).map(|(n, _)| n);
        return start_each(store.root(), stopped.collect(), verbose);
    }
    if let [container] = args.containers.as_slice() {
        let container = container.clone();
        let mut notify = notes_to_stderr(verbose);
        let auto_removed = AutoRemoved::of(store.root(), &container);
        if !args.attach && !args.interactive {
            let ended = |result| {
                let code = exit_code(result);
                auto_removed.finish(store.root());
                code
            };
            let outcome = detach::start_detached(store.root(), &container, notify, ended)?;
            // docker and podman print the name as it was given.
            let outcome = match outcome {
                detach::Detached::Started(_) => detach::Detached::Started(container),
                failed => failed,
            };
            return Ok(detached_code(outcome));
        }
        let code = exit_code(process::start(
            store.root(),
            &container,
            Some(args.interactive),
            process::Output::Tee,
            &mut notify,
        ));
        auto_removed.finish(store.root());
        return Ok(code);
    }
    if args.attach || args.interactive {
        bail!("you cannot start and attach multiple containers at once");
    }
    start_each(store.root(), args.containers, verbose)
}

/// Starts each container in the background in turn, printing its name; one that cannot start
/// is said on stderr and the others are still started (exit code 1 then), as docker's.
fn start_each(store_root: &Path, names: Vec<String>, verbose: bool) -> Result<i32> {
    let mut code = 0;
    for name in names {
        let notify = notes_to_stderr(verbose);
        let auto_removed = AutoRemoved::of(store_root, &name);
        let ended = |result| {
            let code = exit_code(result);
            auto_removed.finish(store_root);
            code
        };
        match detach::start_detached(store_root, &name, notify, ended) {
            Ok(detach::Detached::Started(_)) => println!("{name}"),
            Ok(detach::Detached::Failed { message, .. }) => {
                eprintln!("rsafe: {name}: {message}");
                code = 1;
            }
            Err(e) => {
                eprintln!("rsafe: {name}: {}", super::one_line(&e.into()));
                code = 1;
            }
        }
    }
    Ok(code)
}

/// A `--rm` container's (`create --rm`) directory and volumes, read before it starts: when it
/// has ended and is gone, its anonymous volumes go too, as docker's auto-remove takes them.
struct AutoRemoved(Option<(ContainerDir, Vec<String>)>);

impl AutoRemoved {
    /// What container `name` would leave, if it is a `--rm` one (one not found is start's to
    /// report).
    fn of(store_root: &Path, name: &str) -> AutoRemoved {
        AutoRemoved(
            state::find(store_root, name)
                .ok()
                .filter(|(_, st)| st.auto_remove)
                .and_then(|(dir, _)| {
                    let spec = dir.load_spec(name).ok()?;
                    Some((dir, spec.options.anonymous_volumes))
                }),
        )
    }

    /// Removes the anonymous volumes of the container once it is gone.
    fn finish(self, store_root: &Path) {
        let Some((dir, names)) = self.0 else {
            return;
        };
        if dir.exists() {
            return;
        }
        super::rm::remove_anonymous(store_root, &names);
    }
}
