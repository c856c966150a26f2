//! `rsafe update --restart POLICY CONTAINER…`: a container's restart policy changed, as
//! `docker update --restart` changes it (docker's other `update` flags are not rsafe's).
#![forbid(unsafe_code)]

use anyhow::{Result, bail};

use super::Global;
use crate::runtime::spec::{self, RestartPolicy};
use crate::runtime::state;

/// Update a container's restart policy
///
/// The policy is saved with the container: a running detached container's monitor follows it
/// from the container's next exit on (`no` ends its restarts), and `rsafe start`,
/// `restart` and `system restart` use it. As `run --restart`, refused for a container run
/// with --rm (docker's conflict) or -t (its terminal goes to the log relay once). Prints each
/// container; one that cannot be updated is said and the rest are still updated (exit 1).
#[derive(Debug, clap::Args)]
pub struct UpdateArgs {
    /// The new policy: no, on-failure[:N], always or unless-stopped.
    #[arg(long, value_name = "POLICY", required = true, value_parser = parse_policy)]
    pub restart: Option<Policy>,
    /// Container names or ids (a unique prefix of an id is enough).
    #[arg(required = true, value_name = "CONTAINER")]
    pub containers: Vec<String>,
}

/// `--restart`'s value: a policy, or `no` (`None`).
#[derive(Debug, Clone, Copy)]
pub struct Policy(Option<RestartPolicy>);

fn parse_policy(s: &str) -> Result<Policy, String> {
    spec::parse_restart(s)
        .map(Policy)
        .map_err(|e| e.to_string())
}

/// Updates each container in turn.
pub fn run(args: UpdateArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let policy = args.restart.and_then(|p| p.0);
    super::each_container(&args.containers, |name| {
        set_policy(store.root(), name, policy)?;
        Ok(name.to_string())
    })
}

/// Saves `policy` in container `name`'s spec, unless the container cannot restart.
fn set_policy(
    store_root: &std::path::Path,
    name: &str,
    policy: Option<RestartPolicy>,
) -> Result<()> {
    let (dir, st) = state::find(store_root, name)?;
    let mut spec = dir.load_spec(name)?;
    if policy.is_some() && st.auto_remove {
        bail!(
            "cannot update {name}'s restart policy: it was run with --rm (it is removed when it ends)"
        );
    }
    if policy.is_some() && spec.process.terminal {
        bail!(
            "cannot update {name}'s restart policy: it was run with -t (its terminal is handed to its log relay once)"
        );
    }
    spec.options.restart = policy;
    dir.save_spec(&spec)?;
    Ok(())
}
