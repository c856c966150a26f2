//! `rsafe export`: a container's filesystem as a tar, as `docker export` writes it (see
//! [`crate::runtime::export`]).
#![forbid(unsafe_code)]

use std::io::IsTerminal;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::export;
use crate::runtime::layered::Source;
use crate::runtime::state;

/// Export a container's filesystem as a tar archive
///
/// The image's files with the container's changes (running or stopped), owned as the
/// container sees them (its root is 0). Symlinks are archived as symlinks; what is mounted
/// into the container (volumes, /proc, /dev) is not in it. With -o, the archive is written
/// to a temporary file beside FILE (mode 0600: a container's files may hold secrets) and
/// renamed to FILE when whole: a failed export leaves no FILE. Without -o, it goes to stdout,
/// which must not be a terminal.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
}

pub fn run(args: ExportArgs, global: &Global) -> Result<i32> {
    if args.output.is_none() && std::io::stdout().is_terminal() {
        bail!("cowardly refusing to write an archive to a terminal: use -o FILE or redirect");
    }
    let store = global.store()?;
    let (dir, st) = state::find(store.root(), &args.container)?;
    let source = super::diff::source(&dir, &st, &args.container)?;
    let fail = || format!("cannot export container {}", args.container);
    match &args.output {
        Some(path) => {
            let (tmp, file) = temp_beside(path)?;
            write(&source, file).with_context(fail)?;
            tmp.as_file().sync_all().with_context(fail)?;
            tmp.persist(path)
                .map_err(|e| e.error)
                .with_context(|| format!("{}: cannot write the archive", path.display()))?;
        }
        None => {
            let stdout = std::io::stdout().as_fd().try_clone_to_owned()?;
            write(&source, std::fs::File::from(stdout)).with_context(fail)?;
        }
    }
    Ok(0)
}

/// The container's merged tree as a tar on `file`, written where its layers can be read.
fn write(source: &Source, file: std::fs::File) -> Result<()> {
    source
        .read(move |s| {
            let stack = s.merged_stack().map_err(|e| e.to_string())?;
            let out = std::io::BufWriter::with_capacity(1 << 20, file);
            export::write_tar(&stack, out).map_err(|e| e.to_string())
        })
        .map_err(anyhow::Error::msg)?;
    Ok(())
}

/// A temporary file (mode 0600) in `path`'s directory, and a second handle of it for the
/// writer.
fn temp_beside(path: &Path) -> Result<(tempfile::NamedTempFile, std::fs::File)> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let fail = || format!("{}: cannot write the archive", path.display());
    let tmp = tempfile::Builder::new()
        .prefix(".rsafe-export-")
        .tempfile_in(dir)
        .with_context(fail)?;
    let file = tmp.reopen().with_context(fail)?;
    Ok((tmp, file))
}
