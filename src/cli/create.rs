//! `rsafe create`: make a container without starting it, as `docker create` and `podman
//! create` do; `rsafe start` starts it.
#![forbid(unsafe_code)]

use anyhow::{Result, bail};

use super::Global;
use super::run::{self, Prepared, RunArgs, chown_sources, notes_to_stderr};
use crate::runtime::process;
use crate::runtime::state;

/// Create a container without starting it
///
/// Takes `rsafe run`'s flags and checks everything `run` checks (the image, its gate, the
/// policy, the flags, that the name is free), then records the container as `Created`, with
/// no process, and prints its full id. `rsafe start` starts it (in the background; -a/-i to
/// attach), the way a stopped container is started again; `rsafe rm` removes it. With --rm it
/// is removed when its first run ends. Exit 125 when it cannot be created (nothing is
/// recorded then).
#[derive(Debug, clap::Args)]
#[command(trailing_var_arg = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub run: RunArgs,
}

/// Creates the container and prints its id.
pub fn run(args: CreateArgs, global: &Global) -> Result<i32> {
    let args = args.run;
    if args.detach {
        bail!(
            "create: -d is run's: a created container starts in the background with `rsafe start`"
        );
    }
    if args.learn.is_some() {
        bail!("create: --learn records a run as it happens: use `rsafe run --learn`");
    }
    let store = global.store()?;
    let Prepared {
        request,
        warnings,
        claims,
        ..
    } = run::prepare(&args, global, &store)?;
    let mut notify = notes_to_stderr(args.verbose || global.verbose);
    for w in warnings {
        notify(process::Note::Warning(w));
    }
    let created = (|| -> Result<String> {
        // A name already taken is said before `:U` changes anything on the host (checked
        // again under the names lock by `create`).
        if let Some(name) = &request.name {
            state::check_name(name)?;
            state::ensure_name_free(store.root(), name)?;
        }
        chown_sources(&request.spec.mounts, &request.idmap, &mut notify)?;
        Ok(process::create(&request, &mut notify)?)
    })();
    // Its anonymous volumes are kept by the container, or removed when it could not be made.
    claims.release(store.root());
    let id = created?;
    println!("{id}");
    Ok(0)
}
