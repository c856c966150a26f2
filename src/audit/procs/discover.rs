//! Grouping a host's processes into containers, from procfs alone.
//!
//! A process is in a container when its cgroup is named after one ([`super::runtime`]), or when
//! its pid, mount, user or network namespace is not the host's ([`super::host`]). Processes are
//! grouped by the strongest identity they have:
//!
//! 1. the container id of their cgroup (every process of a docker container, including ones
//!    `docker exec` added and sandboxes nested inside, shares it);
//! 2. otherwise their pid namespace (everything a runtime started in one pid namespace);
//! 3. otherwise the set of their mount, user and network namespaces, when they have users or
//!    a root directory of their own (a chroot'ed mount namespace, a bare user namespace).
//!    systemd's sandboxed services, `ip netns exec` and a bare `unshare -m` keep the host's
//!    root and are not containers.
//!
//! Then nested groups are folded: a sandbox started inside a container (its first process's
//! parent is in the container) belongs to that container; and the launcher that `unshare -m -p
//! --fork` leaves in a mount namespace of its own, holding only the container's first process,
//! joins that container. The container's init is pid 1 of its pid namespace, or else its
//! oldest process.
//!
//! Runtimes' state files ([`super::state`]) and the processes themselves (`bwrap`, `rsafe`,
//! `unshare` as the first process or its parent) then put a runtime, an id, a name and an image
//! on each group.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::host::Host;
use super::process::{NsKind, Process, ProcessError, container_uid, list_pids, split_nul};
use super::runtime::{self, Runtime};
use super::state::{self, StateRecord};
use super::{Container, Discovery, ProcsError};

/// Where to look.
#[derive(Debug, Clone)]
pub struct DiscoverOptions {
    /// The procfs to read (`/proc`).
    pub proc_root: PathBuf,
    /// Prefix under which runtimes keep their state (`/`: `/run/runc`, `/var/lib/docker`, …).
    pub host_root: PathBuf,
    /// rsafe stores to read container state from, besides the ones found from the `rsafe run`
    /// processes themselves.
    pub rsafe_stores: Vec<PathBuf>,
}

impl DiscoverOptions {
    /// The defaults for `proc_root`: state under `/`, rsafe's system store and the caller's.
    pub fn new(proc_root: &Path) -> DiscoverOptions {
        let mut stores = vec![PathBuf::from("/var/lib/rsafe")];
        let own = crate::image::store::Store::default_root();
        if !stores.contains(&own) {
            stores.push(own);
        }
        DiscoverOptions {
            proc_root: proc_root.to_path_buf(),
            host_root: PathBuf::from("/"),
            rsafe_stores: stores,
        }
    }
}

/// The identity a group of processes is keyed by, strongest first.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Cgroup(Runtime, String, Option<String>),
    PidNs(u64),
    OtherNs {
        mnt: Option<u64>,
        user: Option<u64>,
        net: Option<u64>,
    },
}

impl Key {
    fn strength(&self) -> u8 {
        match self {
            Key::Cgroup(..) => 3,
            Key::PidNs(_) => 2,
            Key::OtherNs { .. } => 1,
        }
    }
}

/// The key of a process, or `None` for a host process (or one that cannot be told apart).
fn key_of(p: &Process, host: &Host) -> Option<Key> {
    // The first recognised hierarchy wins; they agree on any real host.
    if let Some(m) = p
        .cgroups
        .iter()
        .find_map(|c| runtime::from_cgroup_path(&c.path))
    {
        return Some(Key::Cgroup(m.runtime, m.id, m.pod));
    }
    let ns = p.namespaces?;
    let differs = |kind| !ns.same(&host.namespaces, kind);
    if differs(NsKind::Pid) {
        return ns.get(NsKind::Pid).map(Key::PidNs);
    }
    // Without a pid namespace, a process is only a container when it has users of its own or
    // a root filesystem of its own: systemd's sandboxed services (PrivateTmp, ProtectSystem,
    // PrivateNetwork), `ip netns exec` and a bare `unshare -m` keep the host's root.
    let own_root = || differs(NsKind::Mnt) && host.same_root(p.pid) != Some(true);
    if differs(NsKind::User) || own_root() {
        return Some(Key::OtherNs {
            mnt: ns.get(NsKind::Mnt),
            user: ns.get(NsKind::User),
            net: ns.get(NsKind::Net),
        });
    }
    None
}

struct Group {
    key: Key,
    pids: Vec<u32>,
}

/// Finds every container visible through `opts.proc_root`.
pub fn discover_with(opts: &DiscoverOptions) -> Result<Discovery, ProcsError> {
    let proc_root = &opts.proc_root;
    let pids = list_pids(proc_root).map_err(|source| ProcsError::Read {
        path: proc_root.clone(),
        source,
    })?;
    let mut procs: HashMap<u32, Process> = HashMap::new();
    let mut kernel_threads = Vec::new();
    let mut inaccessible = Vec::new();
    for pid in pids {
        match Process::read(proc_root, pid) {
            Ok(p) if p.kernel_thread => kernel_threads.push(pid),
            Ok(p) => {
                procs.insert(pid, p);
            }
            Err(ProcessError::Vanished { .. }) => {}
            Err(e) => inaccessible.push((pid, e.to_string())),
        }
    }
    let host = Arc::new(Host::resolve(proc_root, &kernel_threads)?);

    let mut by_key: BTreeMap<Key, Vec<u32>> = BTreeMap::new();
    let mut sorted: Vec<&Process> = procs.values().collect();
    sorted.sort_by_key(|p| p.pid);
    for p in sorted {
        match key_of(p, &host) {
            Some(k) => by_key.entry(k).or_default().push(p.pid),
            None => {
                if let Some(why) = &p.namespaces_error {
                    inaccessible.push((p.pid, why.clone()));
                }
            }
        }
    }
    let mut groups: Vec<Group> = by_key
        .into_iter()
        .map(|(key, pids)| Group { key, pids })
        .collect();
    fold_nested(&mut groups, &procs);

    let mut records = state::read_all(&opts.host_root);
    for store in &opts.rsafe_stores {
        records.extend(state::read_rsafe_store(store));
    }
    let mut containers: Vec<Container> = groups
        .into_iter()
        .filter(|g| !g.pids.is_empty())
        .filter_map(|g| build(g, &procs, &records, &host))
        .collect();
    containers.sort_by_key(|c| c.init_pid);
    inaccessible.sort();
    Ok(Discovery {
        containers,
        inaccessible,
        host: host.reference,
        proc_root: proc_root.clone(),
        hidden: host.hidepid.as_ref().map(|v| {
            format!(
                "{} is mounted with hidepid={v}: other users' processes are invisible",
                proc_root.display()
            )
        }),
    })
}

/// The processes of a group whose parent is outside it, oldest first.
fn tops<'a>(g: &Group, procs: &'a HashMap<u32, Process>) -> Vec<&'a Process> {
    let mut t: Vec<&Process> = g
        .pids
        .iter()
        .filter_map(|pid| procs.get(pid))
        .filter(|p| !g.pids.contains(&p.ppid))
        .collect();
    t.sort_by_key(|p| (p.start_time, p.pid));
    t
}

/// Folds sandboxes nested in a container into it, and `unshare`-style launchers into the
/// container they launched (see the module doc).
fn fold_nested(groups: &mut [Group], procs: &HashMap<u32, Process>) {
    loop {
        let owner: HashMap<u32, usize> = groups
            .iter()
            .enumerate()
            .flat_map(|(i, g)| g.pids.iter().map(move |&p| (p, i)))
            .collect();
        let mut merge: Option<(usize, usize)> = None; // (from, into)
        for (gi, g) in groups.iter().enumerate() {
            if g.pids.is_empty() || matches!(g.key, Key::Cgroup(..)) {
                continue;
            }
            let Some(top) = tops(g, procs).into_iter().next() else {
                continue;
            };
            let Some(&hi) = owner.get(&top.ppid) else {
                continue;
            };
            let h = &groups[hi];
            let launcher = procs.get(&top.ppid);
            let same_mnt = launcher
                .zip(top.namespaces.as_ref())
                .and_then(|(l, tns)| l.namespaces.map(|lns| lns.same(tns, NsKind::Mnt)))
                .unwrap_or(false);
            if matches!(g.key, Key::PidNs(_))
                && matches!(h.key, Key::OtherNs { .. })
                && h.pids.len() == 1
                && same_mnt
            {
                merge = Some((hi, gi));
                break;
            }
            if h.key.strength() >= g.key.strength() {
                merge = Some((gi, hi));
                break;
            }
        }
        let Some((from, into)) = merge else {
            return;
        };
        let moved = std::mem::take(&mut groups[from].pids);
        groups[into].pids.extend(moved);
        groups[into].pids.sort_unstable();
    }
}

/// Whether a process runs the program `name` (by its executable, or its command name). rsafe's
/// init names itself `rsafe-init`, and its executable link is unreadable to anyone but root.
fn runs(p: Option<&Process>, name: &str) -> bool {
    p.is_some_and(|p| p.program() == name || (name == "rsafe" && p.comm == RSAFE_INIT))
}

/// The command name rsafe's init gives itself.
const RSAFE_INIT: &str = "rsafe-init";

/// The `rsafe run` process a container descends from: the nearest ancestor of its init that
/// is rsafe and not rsafe's own init.
fn rsafe_runner<'a>(procs: &'a HashMap<u32, Process>, init: &Process) -> Option<&'a Process> {
    let mut pid = init.ppid;
    for _ in 0..3 {
        let p = procs.get(&pid)?;
        if p.comm != RSAFE_INIT && p.program() == "rsafe" {
            return Some(p);
        }
        pid = p.ppid;
    }
    None
}

/// Turns a group into a container: init, runtime, id, name, image, user.
fn build(
    g: Group,
    procs: &HashMap<u32, Process>,
    records: &[StateRecord],
    host: &Arc<Host>,
) -> Option<Container> {
    let mut processes: Vec<Process> = g
        .pids
        .iter()
        .filter_map(|p| procs.get(p).cloned())
        .collect();
    processes.sort_by_key(|p| p.pid);
    let init = init_of(&processes)?.clone();
    let parent = procs.get(&init.ppid);
    let mut who = identity_of(&g.key, &init, host);
    // A state record is this container's when it names one of its processes, or its init's
    // parent (rsafe's init, when an unprivileged reader cannot see into it), alive.
    let alive = |r: &&StateRecord| {
        processes
            .iter()
            .chain(parent)
            .any(|p| p.pid == r.pid && r.start_time.is_none_or(|t| t == p.start_time))
    };
    let mut found: Vec<StateRecord> = records.iter().filter(alive).cloned().collect();

    let launcher = launcher_of(&g, &processes, &init, parent);
    if let Some(runtime) = launcher {
        who.offer(runtime, None);
    }
    if launcher == Some(Runtime::Rsafe)
        && let Some(store) =
            rsafe_runner(procs, &init).and_then(|r| runner_store(&host.proc_root, r))
    {
        let records = state::read_rsafe_store(&store);
        found.extend(records.iter().filter(alive).cloned());
    }
    // rsafe's and bwrap's init stays as the container's pid 1 and supervises the workload.
    let supervisor = match launcher {
        Some(r @ (Runtime::Rsafe | Runtime::Bwrap)) => {
            let name = if r == Runtime::Rsafe {
                "rsafe"
            } else {
                "bwrap"
            };
            (runs(Some(&init), name) && processes.len() > 1).then_some(init.pid)
        }
        _ => None,
    };

    found.sort_by_key(|r| std::cmp::Reverse(r.runtime.rank()));
    let (mut name, mut image, mut rootfs) = (None, None, None);
    for r in &found {
        who.offer(r.runtime, Some(&r.id));
        name = name.or_else(|| r.name.clone());
        image = image.or_else(|| r.image.clone());
        rootfs = rootfs.or_else(|| r.rootfs.clone());
        who.pod = who.pod.take().or_else(|| r.pod.clone());
    }

    let workload = workload_of(&processes, init.pid, supervisor).unwrap_or(&init);
    let host_uid = workload.uid.effective;
    let uid = container_uid(&host.proc_root, workload.pid, host_uid);
    let user =
        uid.map(|u| user_name(&host.proc_root, workload.pid, u).unwrap_or_else(|| u.to_string()));
    Some(Container {
        id: who.id,
        name,
        runtime: who.runtime,
        pids: processes.iter().map(|p| p.pid).collect(),
        init_pid: init.pid,
        image,
        user,
        uid,
        host_uid,
        rootfs,
        pod: who.pod,
        supervisor,
        processes,
        host: Arc::clone(host),
    })
}

/// The group's first process: pid 1 of its pid namespace where one is seen, else the one
/// nearest the host's namespace, then the oldest.
fn init_of(processes: &[Process]) -> Option<&Process> {
    processes.iter().min_by_key(|p| {
        let ns_init = p.nspid.len() >= 2 && p.nspid.last() == Some(&1);
        (!ns_init, p.nspid.len(), p.start_time, p.pid)
    })
}

/// Who the group is by what grouped it: a runtime's cgroup names it; a namespace alone gives
/// a made-up id (`pidns-…`, `mntns-…`, `userns-…`).
fn identity_of(key: &Key, init: &Process, host: &Host) -> Identity {
    match key {
        Key::Cgroup(r, id, pod) => Identity {
            runtime: *r,
            id: id.clone(),
            made_up: false,
            pod: pod.clone(),
        },
        Key::PidNs(ino) => Identity::made_up(format!("pidns-{ino}")),
        Key::OtherNs { mnt, user, .. } => {
            let ns = init.namespaces.unwrap_or_default();
            let (kind, ino) = if host.namespaces.same(&ns, NsKind::Mnt) {
                ("userns", user)
            } else {
                ("mntns", mnt)
            };
            Identity::made_up(format!("{kind}-{}", ino.unwrap_or_default()))
        }
    }
}

/// Evidence from the processes themselves: the launcher (rsafe, bwrap, unshare) that is the
/// container's first process, its parent, or a process folded into the group.
fn launcher_of(
    g: &Group,
    processes: &[Process],
    init: &Process,
    parent: Option<&Process>,
) -> Option<Runtime> {
    let launched_by = |name: &str| {
        runs(Some(init), name)
            || runs(parent, name)
            || processes
                .iter()
                .any(|p| p.program() == name && !g.pids.contains(&p.ppid))
    };
    [
        ("rsafe", Runtime::Rsafe),
        ("bwrap", Runtime::Bwrap),
        ("unshare", Runtime::Unshare),
    ]
    .into_iter()
    .find(|(name, _)| launched_by(name))
    .map(|(_, r)| r)
}

/// The workload's first process: `init`, unless it is the `supervisor`; then the oldest other.
pub(crate) fn workload_of(
    processes: &[Process],
    init: u32,
    supervisor: Option<u32>,
) -> Option<&Process> {
    if supervisor != Some(init)
        && let Some(p) = processes.iter().find(|p| p.pid == init)
    {
        return Some(p);
    }
    processes
        .iter()
        .filter(|p| Some(p.pid) != supervisor)
        .min_by_key(|p| (p.start_time, p.pid))
}

/// What a container is called and who made it, as the evidence comes in.
struct Identity {
    runtime: Runtime,
    id: String,
    /// The id is made up from a namespace (`pidns-…`): any real one replaces it.
    made_up: bool,
    pod: Option<String>,
}

impl Identity {
    fn made_up(id: String) -> Identity {
        Identity {
            runtime: Runtime::Unknown,
            id,
            made_up: true,
            pod: None,
        }
    }

    /// Takes `runtime` when it says more than the current one, and its id (if any) then, or
    /// when the current id is made up.
    fn offer(&mut self, runtime: Runtime, id: Option<&str>) {
        let better = runtime.rank() > self.runtime.rank();
        if better {
            self.runtime = runtime;
        }
        if let Some(id) = id.filter(|_| better || self.made_up) {
            self.id = id.to_owned();
            self.made_up = false;
        }
    }
}

/// The store an `rsafe run` process uses, as a path this process can read (through the
/// runner's root): `--root DIR`, else `RSAFE_ROOT`, else the runner's default store.
fn runner_store(proc_root: &Path, runner: &Process) -> Option<PathBuf> {
    let dir = runner.dir(proc_root);
    let args = &runner.cmdline;
    let flag = args.iter().enumerate().find_map(|(i, a)| {
        if a == "--root" {
            args.get(i + 1).cloned()
        } else {
            a.strip_prefix("--root=").map(str::to_owned)
        }
    });
    let env = std::fs::read(dir.join("environ"))
        .map(|b| split_nul(&b))
        .unwrap_or_default();
    let var = |k: &str| {
        env.iter()
            .find_map(|e| e.strip_prefix(k)?.strip_prefix('=').map(str::to_owned))
            .filter(|v| !v.is_empty())
    };
    let store = flag.or_else(|| var("RSAFE_ROOT")).or_else(|| {
        if runner.uid.effective == 0 {
            Some("/var/lib/rsafe".into())
        } else if let Some(x) = var("XDG_DATA_HOME") {
            Some(format!("{x}/rsafe"))
        } else {
            let home = var("HOME").or_else(|| home_of(&dir, runner.uid.effective))?;
            Some(format!("{home}/.local/share/rsafe"))
        }
    })?;
    let store = PathBuf::from(store);
    Some(if store.is_absolute() {
        dir.join("root").join(store.strip_prefix("/").ok()?)
    } else {
        dir.join("cwd").join(store)
    })
}

/// The home directory of `uid` in the `/etc/passwd` process directory `dir` sees.
fn home_of(dir: &Path, uid: u32) -> Option<String> {
    let text = std::fs::read_to_string(dir.join("root/etc/passwd")).ok()?;
    text.lines().find_map(|l| {
        let f: Vec<&str> = l.split(':').collect();
        (f.get(2)?.parse::<u32>().ok()? == uid).then(|| f.get(5).map(|h| (*h).to_owned()))?
    })
}

/// The name of `uid` in the container's `/etc/passwd`.
fn user_name(proc_root: &Path, pid: u32, uid: u32) -> Option<String> {
    let path = proc_root.join(pid.to_string()).join("root/etc/passwd");
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find_map(|l| {
        let mut f = l.split(':');
        let name = f.next()?;
        let id: u32 = f.nth(1)?.parse().ok()?;
        (id == uid).then(|| name.to_owned())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;
    use std::os::unix::fs::symlink;

    /// A fake procfs: each process gets stat, status, cgroup and ns links.
    struct FakeProc {
        dir: tempfile::TempDir,
    }

    const HOST_NS: u64 = 4026531000;

    impl FakeProc {
        fn new() -> FakeProc {
            let f = FakeProc {
                dir: tempfile::tempdir().unwrap(),
            };
            f.add(1, 0, "init", 0, &[], "/");
            f
        }

        fn root(&self) -> &Path {
            self.dir.path()
        }

        /// Process `pid` with parent `ppid`, namespaces = host's except `own` (kind, inode),
        /// started at tick `start`, pid 1 of its own pid namespace when it has one.
        fn add(
            &self,
            pid: u32,
            ppid: u32,
            comm: &str,
            start: u64,
            own: &[(NsKind, u64)],
            cgroup: &str,
        ) {
            let d = self.root().join(pid.to_string());
            fs::create_dir_all(d.join("ns")).unwrap();
            fs::write(
                d.join("stat"),
                format!("{pid} ({comm}) S {ppid} 0 0 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 {start} 0 0\n"),
            )
            .unwrap();
            let own_pid = own.iter().find(|(k, _)| *k == NsKind::Pid);
            let nspid = match own_pid {
                Some(_) if comm.ends_with("-child") => format!("{pid}\t2"),
                Some(_) => format!("{pid}\t1"),
                None => pid.to_string(),
            };
            fs::write(
                d.join("status"),
                format!("Name:\t{comm}\nUid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nNSpid:\t{nspid}\nCapEff:\t0\nCapBnd:\t0\n"),
            )
            .unwrap();
            fs::write(d.join("cgroup"), format!("0::{cgroup}\n")).unwrap();
            fs::write(d.join("cmdline"), format!("{comm}\0")).unwrap();
            for (i, kind) in NsKind::ALL.iter().enumerate() {
                let ino = own
                    .iter()
                    .find(|(k, _)| k == kind)
                    .map_or(HOST_NS + i as u64, |(_, n)| *n);
                symlink(format!("{kind}:[{ino}]"), d.join("ns").join(kind.as_str())).unwrap();
            }
        }

        fn discover(&self) -> Discovery {
            let opts = DiscoverOptions {
                proc_root: self.root().to_path_buf(),
                host_root: self.root().join("no-host"),
                rsafe_stores: vec![],
            };
            discover_with(&opts).unwrap()
        }
    }

    fn summary(d: &Discovery) -> Vec<(Runtime, String, u32, Vec<u32>)> {
        d.containers
            .iter()
            .map(|c| (c.runtime, c.id.clone(), c.init_pid, c.pids.clone()))
            .collect()
    }

    const ID: &str = "3f4e8b0c1d2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";

    #[test]
    fn host_processes_are_not_containers() {
        let f = FakeProc::new();
        f.add(10, 1, "sshd", 5, &[], "/system.slice/ssh.service");
        assert!(f.discover().containers.is_empty());
    }

    #[test]
    fn docker_by_cgroup_with_exec_and_nested_sandbox() {
        let f = FakeProc::new();
        let cg = format!("/system.slice/docker-{ID}.scope");
        f.add(
            100,
            1,
            "containerd-shim",
            10,
            &[],
            "/system.slice/containerd.service",
        );
        f.add(
            101,
            100,
            "nginx",
            11,
            &[(NsKind::Pid, 900), (NsKind::Mnt, 901)],
            &cg,
        );
        f.add(
            102,
            101,
            "nginx-worker",
            12,
            &[(NsKind::Pid, 900), (NsKind::Mnt, 901)],
            &cg,
        );
        // docker exec: child of the shim, same namespaces.
        f.add(
            103,
            100,
            "sh",
            20,
            &[(NsKind::Pid, 900), (NsKind::Mnt, 901)],
            &cg,
        );
        let d = f.discover();
        assert_eq!(
            summary(&d),
            vec![(Runtime::Docker, ID.to_string(), 101, vec![101, 102, 103])]
        );
    }

    #[test]
    fn pid_namespace_groups_and_nested_sandboxes_fold_in() {
        let f = FakeProc::new();
        f.add(200, 1, "runc", 10, &[], "/");
        f.add(
            201,
            200,
            "sleep",
            11,
            &[(NsKind::Pid, 800), (NsKind::Mnt, 801)],
            "/probe1",
        );
        // bwrap inside it: outer bwrap in the container, inner in a nested pid namespace.
        f.add(
            202,
            201,
            "bwrap",
            12,
            &[(NsKind::Pid, 800), (NsKind::Mnt, 801)],
            "/probe1",
        );
        f.add(
            203,
            202,
            "bwrap",
            13,
            &[(NsKind::Pid, 810), (NsKind::Mnt, 811)],
            "/probe1",
        );
        let d = f.discover();
        assert_eq!(
            summary(&d),
            vec![(
                Runtime::Unknown,
                "pidns-800".into(),
                201,
                vec![201, 202, 203]
            )]
        );
    }

    #[test]
    fn unshare_launcher_joins_the_container_it_forked() {
        let f = FakeProc::new();
        // unshare -m -p --fork: the launcher has the new mount namespace, the child the pid one.
        f.add(300, 1, "unshare", 10, &[(NsKind::Mnt, 701)], "/");
        f.add(
            301,
            300,
            "sleep",
            11,
            &[(NsKind::Mnt, 701), (NsKind::Pid, 700)],
            "/",
        );
        // unshare -n alone: a network namespace on the host's root is no container.
        f.add(310, 1, "unshare", 20, &[(NsKind::Net, 750)], "/");
        let d = f.discover();
        assert_eq!(
            summary(&d),
            vec![(Runtime::Unshare, "pidns-700".into(), 301, vec![300, 301])]
        );
    }

    #[test]
    fn a_private_mount_namespace_on_the_host_root_is_no_container() {
        let f = FakeProc::new();
        std::os::unix::fs::symlink("/", f.root().join("1/root")).unwrap();
        // systemd PrivateTmp: own mount namespace, same root directory.
        f.add(
            20,
            1,
            "timesyncd",
            5,
            &[(NsKind::Mnt, 720)],
            "/system.slice/t.service",
        );
        std::os::unix::fs::symlink("/", f.root().join("20/root")).unwrap();
        // chroot'ed into another directory: a container.
        f.add(21, 1, "jail", 6, &[(NsKind::Mnt, 721)], "/");
        let jail = f.root().join("jail");
        fs::create_dir(&jail).unwrap();
        std::os::unix::fs::symlink(&jail, f.root().join("21/root")).unwrap();
        let d = f.discover();
        assert_eq!(
            summary(&d),
            vec![(Runtime::Unknown, "mntns-721".into(), 21, vec![21])]
        );
    }

    #[test]
    fn pid_reuse_does_not_borrow_a_dead_containers_name() {
        let f = FakeProc::new();
        f.add(400, 1, "sleep", 50, &[(NsKind::Pid, 600)], "/");
        let host = f.root().join("host");
        fs::create_dir_all(host.join("run/crun/old")).unwrap();
        fs::write(
            host.join("run/crun/old/status"),
            r#"{"pid":400,"process-start-time":49,"rootfs":"/r"}"#,
        )
        .unwrap();
        fs::create_dir_all(host.join("run/crun/live")).unwrap();
        let opts = DiscoverOptions {
            proc_root: f.root().to_path_buf(),
            host_root: host.clone(),
            rsafe_stores: vec![],
        };
        let d = discover_with(&opts).unwrap();
        assert_eq!(d.containers[0].id, "pidns-600");
        fs::write(
            host.join("run/crun/live/status"),
            r#"{"pid":400,"process-start-time":50,"rootfs":"/r"}"#,
        )
        .unwrap();
        let d = discover_with(&opts).unwrap();
        assert_eq!(
            (d.containers[0].runtime, d.containers[0].id.as_str()),
            (Runtime::Crun, "live")
        );
    }

    #[test]
    fn unreadable_namespaces_are_reported() {
        let f = FakeProc::new();
        f.add(500, 1, "secret", 5, &[], "/");
        fs::remove_dir_all(f.root().join("500/ns")).unwrap();
        fs::write(f.root().join("500/ns"), "").unwrap(); // readlink fails: not a directory
        let d = f.discover();
        assert!(d.containers.is_empty());
        assert_eq!(d.inaccessible.len(), 1, "{:?}", d.inaccessible);
        assert_eq!(d.inaccessible[0].0, 500);
    }

    #[test]
    fn runner_store_from_flags_env_and_defaults() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().join("42");
        fs::create_dir_all(&d).unwrap();
        fs::write(d.join("environ"), b"HOME=/home/u\0XDG_DATA_HOME=\0").unwrap();
        let mut p = Process::read(Path::new("/proc"), std::process::id()).unwrap();
        p.pid = 42;
        p.uid.effective = 1000;
        p.cmdline = vec!["rsafe".into(), "run".into(), "--root=/srv/s".into()];
        assert_eq!(runner_store(t.path(), &p), Some(d.join("root/srv/s")));
        p.cmdline = vec!["rsafe".into(), "--root".into(), "rel".into(), "run".into()];
        assert_eq!(runner_store(t.path(), &p), Some(d.join("cwd/rel")));
        p.cmdline = vec!["rsafe".into(), "run".into()];
        assert_eq!(
            runner_store(t.path(), &p),
            Some(d.join("root/home/u/.local/share/rsafe"))
        );
        p.uid.effective = 0;
        assert_eq!(
            runner_store(t.path(), &p),
            Some(d.join("root/var/lib/rsafe"))
        );
    }

    #[test]
    fn the_rsafe_runner_above_its_init() {
        let me = Process::read(Path::new("/proc"), std::process::id()).unwrap();
        let fake = |pid, ppid, comm: &str, exe: &str| Process {
            pid,
            ppid,
            comm: comm.into(),
            exe: Some(PathBuf::from(exe)),
            ..me.clone()
        };
        let procs: HashMap<u32, Process> = [
            fake(10, 1, "rsafe", "/usr/bin/rsafe"),
            fake(11, 10, RSAFE_INIT, "/usr/bin/rsafe"),
            fake(12, 11, "sleep", "/bin/busybox"),
        ]
        .into_iter()
        .map(|p| (p.pid, p))
        .collect();
        // Seen from the workload (rootless: the init is unreadable) and from the init (root).
        assert_eq!(rsafe_runner(&procs, &procs[&12]).map(|p| p.pid), Some(10));
        assert_eq!(rsafe_runner(&procs, &procs[&11]).map(|p| p.pid), Some(10));
        assert!(runs(procs.get(&11), "rsafe") && !runs(procs.get(&12), "rsafe"));
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("root/etc")).unwrap();
        fs::write(
            t.path().join("root/etc/passwd"),
            "root:x:0:0::/root:/bin/sh\nu:x:1001:1001::/home/u:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(home_of(t.path(), 1001).as_deref(), Some("/home/u"));
        assert_eq!(home_of(t.path(), 7), None);
    }

    #[test]
    fn uid_maps() {
        let t = tempfile::tempdir().unwrap();
        fs::create_dir_all(t.path().join("7")).unwrap();
        fs::write(
            t.path().join("7/uid_map"),
            "         0     100000      65536\n",
        )
        .unwrap();
        assert_eq!(container_uid(t.path(), 7, 101000), Some(1000));
        assert_eq!(container_uid(t.path(), 7, 0), None);
        fs::create_dir_all(t.path().join("7/root/etc")).unwrap();
        fs::write(
            t.path().join("7/root/etc/passwd"),
            "root:x:0:0::/:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
        )
        .unwrap();
        assert_eq!(user_name(t.path(), 7, 1000).as_deref(), Some("app"));
    }
}
