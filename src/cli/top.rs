//! `rsafe top`: a running container's processes, as `docker top` shows them: `ps` run on the
//! host, its lines kept for the container's pids (see [`crate::runtime::top`]).
#![forbid(unsafe_code)]

use anyhow::{Context, Result, bail};

use super::Global;
use crate::runtime::state;
use crate::runtime::top;

/// Display the running processes of a container
///
/// `ps -ef` columns by default (UID PID PPID C STIME TTY TIME CMD); other `ps` options are
/// passed to `ps` as they are (`rsafe top web -o pid,comm`) and must keep a PID column. Pids
/// and users are the host's, as docker shows them: the container's root is the host uid its
/// id map gives it (the rootless caller, or the first id of root's range), not 0. A container
/// that is not running is an error (exit 125).
#[derive(Debug, clap::Args)]
pub struct TopArgs {
    /// The container's name or id (a unique prefix of the id is enough).
    #[arg(value_name = "CONTAINER")]
    pub container: String,
    /// `ps` options (default `-ef`).
    #[arg(
        value_name = "PS_OPTIONS",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub ps_options: Vec<String>,
}

/// 125, docker's code for a container that cannot be asked (not running), for any failure.
pub fn run(args: TopArgs, global: &Global) -> Result<i32> {
    match show(&args, global) {
        Ok(()) => Ok(0),
        Err(e) => {
            eprintln!("rsafe: {}", super::one_line(&e));
            Ok(125)
        }
    }
}

fn show(args: &TopArgs, global: &Global) -> Result<()> {
    let store = global.store()?;
    let (_, st) = state::find(store.root(), &args.container)?;
    let pids = top::container_pids(&st, &args.container)?;
    let options = match args.ps_options.is_empty() {
        true => vec!["-ef".to_string()],
        false => args.ps_options.clone(),
    };
    let list = pids
        .iter()
        .map(i32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    // As docker: only the container's pids (`-q`); some options (`f`) refuse `-q`, so again
    // without it, the lines filtered by pid either way.
    let output = ps(&options, Some(&list)).or_else(|_| ps(&options, None))?;
    let Some(lines) = top::filter_ps(&output, &pids) else {
        bail!("ps {}: its output has no PID column", options.join(" "));
    };
    let mut out = std::io::stdout().lock();
    for line in lines {
        std::io::Write::write_all(&mut out, format!("{line}\n").as_bytes())?;
    }
    Ok(())
}

/// `ps OPTIONS [-q PIDS]`'s output; its own complaint when it fails.
fn ps(options: &[String], pids: Option<&str>) -> Result<String> {
    let mut cmd = std::process::Command::new("ps");
    cmd.args(options);
    if let Some(pids) = pids {
        cmd.args(["-q", pids]);
    }
    let out = cmd
        .stdin(std::process::Stdio::null())
        .output()
        .context("cannot run ps (install procps)")?;
    if !out.status.success() {
        let why = String::from_utf8_lossy(&out.stderr);
        let why = why.lines().next().unwrap_or("").trim();
        bail!("ps {}: {why}", options.join(" "));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}
