//! `rsafe rename`: a container's new name, as `docker rename` gives it (see
//! [`crate::runtime::state::rename`]).
#![forbid(unsafe_code)]

use anyhow::{Context, Result};

use super::Global;
use crate::runtime::netstore::NetStore;
use crate::runtime::state;

/// Rename a container
///
/// The container, running or stopped, keeps its id, its writable layer and, if running, its
/// processes; `ps`, `logs`, `exec`, `stop` and the rest find it by the new name at once. NEW
/// must be free: no other container, running or stopped, may have it. On a named network its
/// new name is in the other containers' hosts files and answered by their name servers.
#[derive(Debug, clap::Args)]
pub struct RenameArgs {
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// Its new name: letters, digits, `_`, `.`, `-`, starting with a letter or digit.
    #[arg(value_name = "NEW_NAME")]
    pub new_name: String,
}

pub fn run(args: RenameArgs, global: &Global) -> Result<i32> {
    let store = global.store()?;
    let (dir, _) = state::rename(store.root(), &args.container, &args.new_name)
        .with_context(|| format!("cannot rename {} to {}", args.container, args.new_name))?;
    NetStore::new(store.root())
        .rename(&dir.id, &args.new_name)
        .with_context(|| {
            format!(
                "renamed {} to {}, but its name on its networks was not changed",
                args.container, args.new_name
            )
        })?;
    Ok(0)
}
