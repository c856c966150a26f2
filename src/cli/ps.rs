//! `rsafe ps`: the containers running on this host, whatever started them, found from /proc;
//! with `-a`, `-q`, `--filter`, `-n`, `-l` or `--no-trunc`, rsafe's own containers from its
//! store, as `docker ps` lists and selects them (see [`super::ps_filter`]).

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result};
use serde::Serialize;

use super::Global;
use super::format::{seconds_ago, table, truncate};
use super::images::OutputFormat;
use super::ps_filter::{Candidate, Filters, ImageLayers};
use crate::audit::procs::{Container, DiscoverOptions, Discovery, discover_with};
use crate::audit::secrets::SecretScanner;
use crate::image::lookup::{self, LookupError};
use crate::image::{Image, Platform, Store};
use crate::runtime::spec::{MountSpec, RestartPolicy, Spec};
use crate::runtime::state::{self, Phase, State};

/// List the containers running on this host
///
/// Containers of any runtime (rsafe, docker, containerd, CRI-O, podman, runc, crun, LXC,
/// Kubernetes, bubblewrap, unshare) are found from /proc alone, without asking a daemon:
/// processes are grouped by cgroup and namespaces, and named from the runtimes' state files.
/// Columns: RUNTIME ID NAME PID PROCS USER IMAGE COMMAND. USER is the workload's user inside the
/// container, with its host uid when that differs. As another user than root, other users'
/// processes cannot be inspected: ps says so on stderr only for those in a pid namespace of
/// their own (others' containers), and counts them all with --verbose.
///
/// With -a, -q, --filter, -n, -l or --no-trunc, ps lists rsafe's own containers from its store
/// instead, as docker ps does: running ones (-a: all; a status filter, -n or -l: any state).
/// The host-wide scan has no names or labels of other runtimes' containers to select by.
#[derive(Debug, clap::Args)]
pub struct PsArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = OutputFormat::Table)]
    pub format: OutputFormat,
    /// The procfs to read: the host's /proc mounted elsewhere when rsafe runs in a container.
    #[arg(long, value_name = "DIR", default_value = "/proc")]
    pub proc: PathBuf,
    /// rsafe's own containers from the store (--root), stopped and dead ones included:
    /// CONTAINER ID, NAME, IMAGE, COMMAND, CREATED, STATUS, PORTS (a running container's
    /// published ports, as docker's: 127.0.0.1:8080->80/tcp) (with -q, only the ids).
    #[arg(short, long)]
    pub all: bool,
    /// Select rsafe's containers, docker's keys: name (regex), id (prefix), label=KEY[=VALUE],
    /// status, ancestor (an image's name, name:tag, name@digest, digest or digest prefix: its
    /// containers and those of images built on it), exited, before, since, volume, network,
    /// publish, expose; and podman's restart-policy. Filters of one key OR, of different keys
    /// AND (labels AND).
    #[arg(short, long, value_name = "KEY=VALUE")]
    pub filter: Vec<String>,
    /// The N last created of rsafe's containers, in any state.
    #[arg(short = 'n', long = "last", value_name = "N")]
    pub last: Option<usize>,
    /// The last created of rsafe's containers, in any state (-n 1).
    #[arg(short, long)]
    pub latest: bool,
    /// Whole ids, images and commands in rsafe's container listing.
    #[arg(long)]
    pub no_trunc: bool,
}

impl PsArgs {
    /// Whether ps lists rsafe's own store (docker's ps) rather than scanning the host.
    fn store_view(&self, quiet: bool) -> bool {
        self.all
            || quiet
            || !self.filter.is_empty()
            || self.last.is_some()
            || self.latest
            || self.no_trunc
    }
}

/// One container, as the listing shows it (also its JSON form).
#[derive(Debug, Serialize)]
struct Row<'a> {
    runtime: &'a str,
    id: &'a str,
    name: Option<&'a str>,
    pid: u32,
    pids: &'a [u32],
    user: Option<&'a str>,
    uid: Option<u32>,
    host_uid: u32,
    image: Option<&'a str>,
    rootfs: Option<String>,
    pod: Option<&'a str>,
    command: String,
}

impl<'a> Row<'a> {
    fn of(c: &'a Container, scanner: &SecretScanner) -> Row<'a> {
        Row {
            runtime: c.runtime.as_str(),
            id: &c.id,
            name: c.name.as_deref().filter(|n| *n != c.id),
            pid: c.init_pid,
            pids: &c.pids,
            user: c.user.as_deref(),
            uid: c.uid,
            host_uid: c.host_uid,
            image: c.image.as_deref(),
            rootfs: c.rootfs.as_ref().map(|p| p.display().to_string()),
            pod: c.pod.as_deref(),
            command: c
                .workload()
                .map(|p| redact_command(&p.command(), scanner))
                .unwrap_or_default(),
        }
    }
}

#[derive(Serialize)]
struct Listing<'a> {
    containers: Vec<Row<'a>>,
    inaccessible: Vec<Inaccessible<'a>>,
    /// Set when the procfs hides other users' processes altogether.
    hidden: Option<&'a str>,
    /// Which process stood for the host's namespaces.
    host_reference: String,
}

#[derive(Serialize)]
struct Inaccessible<'a> {
    pid: u32,
    reason: &'a str,
}

/// Prints the listing.
pub fn run(args: PsArgs, global: &Global) -> Result<i32> {
    if args.store_view(global.quiet) {
        return list_store_containers(&args, global);
    }
    let mut opts = DiscoverOptions::new(&args.proc);
    if let Some(root) = &global.root
        && !opts.rsafe_stores.contains(root)
    {
        opts.rsafe_stores.push(root.clone());
    }
    let discovery = discover_with(&opts)
        .with_context(|| format!("cannot list containers in {}", args.proc.display()))?;
    let scanner = SecretScanner::builtin().context("cannot load the builtin secret rules")?;
    match args.format {
        OutputFormat::Json => {
            let listing = Listing {
                containers: discovery
                    .containers
                    .iter()
                    .map(|c| Row::of(c, &scanner))
                    .collect(),
                inaccessible: discovery
                    .inaccessible
                    .iter()
                    .map(|(pid, reason)| Inaccessible { pid: *pid, reason })
                    .collect(),
                hidden: discovery.hidden.as_deref(),
                host_reference: discovery.host.to_string(),
            };
            emit(&format!("{}\n", serde_json::to_string_pretty(&listing)?))?;
        }
        OutputFormat::Table => {
            emit(&render_table(&discovery, &scanner))?;
            if !global.quiet {
                if let Some(hidden) = &discovery.hidden {
                    eprintln!("rsafe: {hidden}");
                }
                for note in inaccessible_notes(&discovery, &args.proc, global.verbose) {
                    eprintln!("{note}");
                }
            }
        }
    }
    Ok(0)
}

/// Writes to stdout; a reader that went away (`rsafe ps | head`) is not an error.
fn emit(text: &str) -> Result<()> {
    match io::stdout().lock().write_all(text.as_bytes()) {
        Err(e) if e.kind() != io::ErrorKind::BrokenPipe => Err(e).context("cannot write to stdout"),
        _ => Ok(()),
    }
}

fn render_table(d: &Discovery, scanner: &SecretScanner) -> String {
    let rows: Vec<Vec<String>> = d
        .containers
        .iter()
        .map(|c| {
            let r = Row::of(c, scanner);
            let user = match (r.user, r.uid) {
                (Some(u), Some(uid)) if uid != r.host_uid => format!("{u} (host {})", r.host_uid),
                (Some(u), _) => u.to_owned(),
                (None, _) => format!("host {}", r.host_uid),
            };
            vec![
                r.runtime.to_owned(),
                truncate(c.short_id(), 24),
                truncate(r.name.unwrap_or("-"), 24),
                r.pid.to_string(),
                r.pids.len().to_string(),
                truncate(&user, 24),
                truncate(r.image.unwrap_or("-"), 40),
                truncate(&r.command, 40),
            ]
        })
        .collect();
    table(
        &[
            "RUNTIME", "ID", "NAME", "PID", "PROCS", "USER", "IMAGE", "COMMAND",
        ],
        &rows,
    )
}

/// A command line with every argument that holds a secret replaced by `[redacted]`: a command
/// line is readable by every user of the host, but rsafe does not repeat the secret.
fn redact_command(command: &str, scanner: &SecretScanner) -> String {
    let hits = scanner.scan_text(command);
    if hits.is_empty() {
        return command.to_owned();
    }
    if hits
        .iter()
        .any(|h| h.line.is_some_and(|l| l > 1) || h.column.is_none())
    {
        return "[command redacted: it holds a secret]".to_owned();
    }
    let columns: Vec<usize> = hits
        .iter()
        .filter_map(|h| h.column.map(|c| c as usize))
        .collect();
    // Columns are 1-based character positions; an argument covers [start, start + len).
    let mut start = 1;
    let mut out = Vec::new();
    for arg in command.split(' ') {
        let len = arg.chars().count();
        let secret = columns.iter().any(|c| (start..start + len).contains(c));
        out.push(if secret { "[redacted]" } else { arg });
        start += len + 1;
    }
    out.join(" ")
}

/// What to say about processes that could not be inspected. As root (who may inspect every
/// process) each is unexpected: always said. As another user, other users' processes are the
/// common case, and podman's `ps` lists a user's own containers without a word about anyone
/// else's: only those that run in a pid namespace below ps's own (a container of another
/// user, or root's) are said, with the hint to run as root; the plain count only with
/// `--verbose`.
fn inaccessible_notes(d: &Discovery, proc: &Path, verbose: bool) -> Vec<String> {
    let Some((first, reason)) = d.inaccessible.first() else {
        return Vec::new();
    };
    let n = d.inaccessible.len();
    let count = format!(
        "rsafe: {n} process{} could not be inspected (pid {first}: {})",
        if n == 1 { "" } else { "es" },
        truncate(reason, 80)
    );
    if rustix::process::geteuid().is_root() {
        return vec![count];
    }
    let own = nspid_depth(proc, "self").unwrap_or(1);
    let contained: Vec<u32> = d
        .inaccessible
        .iter()
        .map(|(pid, _)| *pid)
        .filter(|pid| nspid_depth(proc, &pid.to_string()).is_some_and(|depth| depth > own))
        .collect();
    let mut notes = Vec::new();
    if verbose {
        notes.push(count);
    }
    if let Some(first) = contained.first() {
        let m = contained.len();
        notes.push(format!(
            "rsafe: {m} process{} of other users {} in containers rsafe may not inspect (pid {first}{}); run as root to see every container",
            if m == 1 { "" } else { "es" },
            if m == 1 { "runs" } else { "run" },
            if m == 1 { "" } else { ", …" }
        ));
    }
    notes
}

/// How many pid namespaces deep process `pid` of procfs `proc` is: the number of pids on its
/// `NSpid` line (`/proc/PID/status` is readable whoever owns the process).
fn nspid_depth(proc: &Path, pid: &str) -> Option<usize> {
    let status = std::fs::read_to_string(proc.join(pid).join("status")).ok()?;
    let line = status.lines().find_map(|l| l.strip_prefix("NSpid:"))?;
    Some(line.split_whitespace().count())
}

/// What `ps -a` calls a container's state. A container whose rsafe was killed before it could
/// record the exit shows as `Dead` (`rsafe rm` cleans it up), and so does a directory rsafe
/// was killed while making; one whose exit could not be saved for lack of room says so, as
/// `wait` does (`unrecorded`: its `exit-unrecorded` marker), not to be taken for a kill.
fn status_text(phase: Phase, state: &State, unrecorded: bool) -> String {
    match phase {
        Phase::Dead if unrecorded => "Dead (exit not recorded: the store is full)".to_string(),
        Phase::Exited(code) if state.oom_killed => format!("Exited ({code}, out of memory)"),
        Phase::Exited(code) => format!("Exited ({code})"),
        // As docker's `Up … (Paused)`.
        Phase::Up if crate::runtime::pause::is_paused(state) => "Up (Paused)".to_string(),
        Phase::Up => "Up".to_string(),
        Phase::Created => "Created".to_string(),
        Phase::Dead => "Dead".to_string(),
    }
}

/// docker's one-word `State` (what `status=` selects by).
fn status_word(phase: Phase, state: &State) -> &'static str {
    match phase {
        Phase::Up if crate::runtime::pause::is_paused(state) => "paused",
        Phase::Up => "running",
        Phase::Exited(_) => "exited",
        Phase::Created => "created",
        Phase::Dead => "dead",
    }
}

/// One container of the store, with what the filters and the listing need.
struct Entry {
    state: State,
    phase: Phase,
    /// Dead because its exit could not be saved, the store full.
    unrecorded: bool,
    spec: Option<Spec>,
}

impl Entry {
    fn candidate(&self, order: usize) -> Candidate<'_> {
        let s = &self.state;
        let spec = self.spec.as_ref();
        let mut volumes: Vec<&str> = s.volumes.iter().map(String::as_str).collect();
        for m in spec.map(|sp| sp.mounts.as_slice()).unwrap_or_default() {
            volumes.push(m.target());
            if let MountSpec::Bind { source, .. } = m {
                volumes.extend(source.to_str());
            }
        }
        Candidate {
            id: &s.id,
            name: s.name.as_deref(),
            image: &s.image,
            layers: s
                .layers
                .iter()
                .filter_map(|l| crate::image::unpack::LayerCache::diff_id_of(l))
                .collect(),
            restart_policy: spec.map_or("", |sp| restart_policy_name(sp.options.restart)),
            status: status_word(self.phase, s),
            exit_code: match self.phase {
                Phase::Exited(code) => Some(code),
                _ => None,
            },
            labels: spec.map(|sp| &sp.options.labels),
            volumes,
            network: spec.map(network_name),
            ports: &s.ports,
            order,
        }
    }

    /// The ports a running container holds, as docker's (a stopped one holds none).
    fn ports(&self) -> String {
        let s = &self.state;
        s.ports
            .iter()
            .filter(|_| s.is_alive())
            .map(|p| p.short())
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A `--restart` policy as podman's `restart-policy=` filter names it.
fn restart_policy_name(policy: Option<RestartPolicy>) -> &'static str {
    match policy {
        None => "no",
        Some(RestartPolicy::OnFailure { .. }) => "on-failure",
        Some(RestartPolicy::Always) => "always",
        Some(RestartPolicy::UnlessStopped) => "unless-stopped",
    }
}

/// The layers of the image `value` names in the store (a name, `name@digest`, a digest or a
/// unique prefix of one, as `rsafe inspect` takes it); `None` when the store has no such image.
fn stored_image_layers(store: &Store, value: &str) -> Result<Option<ImageLayers>> {
    let found = match lookup::find(store, value) {
        Ok(found) => found,
        Err(LookupError::NotFound(_)) => return Ok(None),
        Err(e) => {
            return Err(anyhow::anyhow!(
                "bad value for filter ancestor={value:?}: {e}"
            ));
        }
    };
    let image = Image::from_descriptor(store, &found.descriptor, &Platform::host())
        .with_context(|| format!("cannot read image {value} (in an ancestor filter)"))?;
    let diff_ids = image.layers().iter().map(|l| l.diff_id.clone());
    Ok(Some(ImageLayers::new(diff_ids)))
}

/// The named network, or the mode as docker's `HostConfig.NetworkMode` says it.
fn network_name(spec: &Spec) -> &str {
    use crate::runtime::policy::NetworkMode;
    match (&spec.net.named, spec.network) {
        (Some(n), _) => n,
        (None, NetworkMode::None) => "none",
        (None, NetworkMode::Host) => "host",
        (None, NetworkMode::Slirp4netns) => "slirp4netns",
    }
}

/// The store's containers, oldest first, and their phases (specs when `with_spec`).
fn load_entries(global: &Global, with_spec: bool) -> Result<Vec<Entry>> {
    let store = global.store()?;
    // Containers run with --rm whose rsafe was killed are removed, as it would have done, so
    // is what a killed `container prune` was removing, and the network addresses of any killed
    // one are freed.
    state::sweep(store.root())?;
    crate::runtime::prune::finish_killed(store.root());
    crate::runtime::netstore::NetStore::new(store.root()).reclaim_all()?;
    Ok(state::list(store.root())?
        .into_iter()
        .map(|(dir, state)| Entry {
            phase: dir.phase(&state),
            unrecorded: dir.phase(&state) == Phase::Dead && dir.exit_unrecorded(),
            spec: with_spec.then(|| dir.load_spec(&state.id).ok()).flatten(),
            state,
        })
        .collect())
}

/// The creation position of the container named or id'd (a unique id prefix) `reference`.
fn order_of(entries: &[Entry], reference: &str) -> Option<usize> {
    if let Some(i) = entries
        .iter()
        .position(|e| e.state.name.as_deref() == Some(reference) || e.state.id == reference)
    {
        return Some(i);
    }
    let mut by_prefix = entries
        .iter()
        .enumerate()
        .filter(|(_, e)| e.state.id.starts_with(reference));
    match (by_prefix.next(), by_prefix.next()) {
        (Some((i, _)), None) => Some(i),
        _ => None,
    }
}

/// The containers `ps` shows, newest first: running ones (all with -a, a status filter, -n
/// or -l), those the filters pass, then the first -n of them.
fn select<'a>(args: &PsArgs, filters: &Filters, entries: &'a [Entry]) -> Result<Vec<&'a Entry>> {
    for r in filters.references() {
        if order_of(entries, r).is_none() {
            anyhow::bail!("no such container: {r:?} (in a before or since filter)");
        }
    }
    let limit = if args.latest { Some(1) } else { args.last };
    let any_state = args.all || filters.has_status() || limit.is_some_and(|n| n > 0);
    let at = |r: &str| order_of(entries, r);
    let chosen = entries
        .iter()
        .enumerate()
        .rev()
        .filter(|(_, e)| any_state || e.phase == Phase::Up)
        .filter(|(i, e)| filters.matches(&e.candidate(*i), &at))
        .map(|(_, e)| e);
    Ok(match limit {
        Some(n) if n > 0 => chosen.take(n).collect(),
        _ => chosen.collect(),
    })
}

/// The store's containers, in any state, that ps's `--filter`s `specs` select, oldest first:
/// each one's name (its id when unnamed) and whether it runs. What `start --all` starts.
pub(super) fn select_by_filters(global: &Global, specs: &[String]) -> Result<Vec<(String, bool)>> {
    let mut filters = Filters::parse(specs)?;
    let store = global.store()?;
    filters.resolve_ancestors(&|value| stored_image_layers(&store, value))?;
    let entries = load_entries(global, filters.needs_spec())?;
    for r in filters.references() {
        if order_of(&entries, r).is_none() {
            anyhow::bail!("no such container: {r:?} (in a before or since filter)");
        }
    }
    let at = |r: &str| order_of(&entries, r);
    Ok(entries
        .iter()
        .enumerate()
        .filter(|(i, e)| filters.matches(&e.candidate(*i), &at))
        .map(|(_, e)| {
            let name = e.state.name.clone().unwrap_or_else(|| e.state.id.clone());
            (name, e.phase == Phase::Up)
        })
        .collect())
}

/// The store view: `ps -a`, and `ps` with -q, --filter, -n, -l or --no-trunc.
fn list_store_containers(args: &PsArgs, global: &Global) -> Result<i32> {
    let mut filters = Filters::parse(&args.filter)?;
    let store = global.store()?;
    filters.resolve_ancestors(&|value| stored_image_layers(&store, value))?;
    let json = matches!(args.format, OutputFormat::Json);
    let entries = load_entries(global, json || filters.needs_spec())?;
    let chosen = select(args, &filters, &entries)?;
    let scanner = SecretScanner::builtin().context("cannot load the builtin secret rules")?;
    let now = SystemTime::now();
    if global.quiet {
        let ids: String = chosen
            .iter()
            .map(|e| format!("{}\n", shown_id(&e.state, args.no_trunc)))
            .collect();
        return emit(&ids).map(|()| 0);
    }
    if json {
        let lines: String = chosen
            .iter()
            .map(|e| json_line(e, args.no_trunc, &scanner, now))
            .collect::<Result<_>>()?;
        return emit(&lines).map(|()| 0);
    }
    let cut = |s: &str, n: usize| {
        if args.no_trunc {
            s.to_string()
        } else {
            truncate(s, n)
        }
    };
    let rows: Vec<Vec<String>> = chosen
        .iter()
        .map(|e| {
            let s = &e.state;
            vec![
                shown_id(s, args.no_trunc).to_string(),
                s.name.clone().unwrap_or_default(),
                cut(&s.image, 30),
                cut(&format!("\"{}\"", command(s, &scanner)), 30),
                seconds_ago(s.created as i64, now),
                status_text(e.phase, s, e.unrecorded),
                e.ports(),
            ]
        })
        .collect();
    let headers = [
        "CONTAINER ID",
        "NAME",
        "IMAGE",
        "COMMAND",
        "CREATED",
        "STATUS",
        "PORTS",
    ];
    emit(&table(&headers, &rows))?;
    Ok(0)
}

fn shown_id(s: &State, no_trunc: bool) -> &str {
    if no_trunc { &s.id } else { s.short_id() }
}

/// docker's `CreatedAt`: `2026-01-02 15:04:05 +0000 UTC`.
fn created_at(secs: u64) -> String {
    let t = crate::runtime::clock::rfc3339(UNIX_EPOCH + Duration::from_secs(secs));
    format!("{} +0000 UTC", t[..19].replace('T', " "))
}

/// The command line, its secrets redacted.
fn command(s: &State, scanner: &SecretScanner) -> String {
    redact_command(&s.command.join(" "), scanner)
}

/// One container as a line of `docker ps --format json`: its keys, a label value that looks
/// secret redacted as `inspect` does.
fn json_line(
    e: &Entry,
    no_trunc: bool,
    scanner: &SecretScanner,
    now: SystemTime,
) -> Result<String> {
    let s = &e.state;
    let labels: Vec<String> = e
        .spec
        .iter()
        .flat_map(|sp| sp.options.labels.iter())
        .map(|(k, v)| {
            let shown = if scanner.scan_text(v).is_empty() {
                v
            } else {
                "[redacted]"
            };
            format!("{k}={shown}")
        })
        .collect();
    let line = serde_json::json!({
        "ID": shown_id(s, no_trunc),
        "Names": s.name.clone().unwrap_or_default(),
        "Image": s.image,
        "Command": format!("\"{}\"", command(s, scanner)),
        "CreatedAt": created_at(s.created),
        "RunningFor": seconds_ago(s.created as i64, now),
        "State": status_word(e.phase, s),
        "Status": status_text(e.phase, s, e.unrecorded),
        "Ports": e.ports(),
        "Labels": labels.join(","),
        "Networks": e.spec.as_ref().map(network_name).unwrap_or_default(),
        "Mounts": s.volumes.join(","),
    });
    Ok(format!("{}\n", serde_json::to_string(&line)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nspid_depth_counts_pid_namespaces() {
        let proc = tempfile::tempdir().unwrap();
        for (pid, nspid) in [
            ("7", "NSpid:\t7\n"),
            ("8", "NSpid:\t8\t1\n"),
            ("9", "Name:\tx\n"),
        ] {
            std::fs::create_dir(proc.path().join(pid)).unwrap();
            let status = format!("Name:\tsleep\n{nspid}Uid:\t0\n");
            std::fs::write(proc.path().join(pid).join("status"), status).unwrap();
        }
        assert_eq!(nspid_depth(proc.path(), "7"), Some(1));
        assert_eq!(nspid_depth(proc.path(), "8"), Some(2));
        assert_eq!(nspid_depth(proc.path(), "9"), None);
        assert_eq!(nspid_depth(proc.path(), "10"), None);
        assert!(nspid_depth(Path::new("/proc"), "self").is_some());
    }

    #[test]
    fn created_at_is_dockers_shape() {
        assert_eq!(created_at(1_767_366_245), "2026-01-02 15:04:05 +0000 UTC");
    }

    #[test]
    fn secrets_in_commands_are_redacted() {
        let scanner = SecretScanner::builtin().unwrap();
        let key = "HVJWDBt2hWdQZUm14QhoxhLPAbQcEFUV2fsjGHb6";
        let cmd = format!("deploy --region eu aws_secret_access_key={key} --verbose");
        let shown = redact_command(&cmd, &scanner);
        assert!(!shown.contains(key), "{shown}");
        assert_eq!(shown, "deploy --region eu [redacted] --verbose");
        assert_eq!(redact_command("sleep 1000", &scanner), "sleep 1000");
    }
}
