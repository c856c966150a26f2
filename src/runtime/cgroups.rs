//! Resource limits through cgroups, v2 or v1, and the rlimit fallback when no cgroup is
//! writable.
//!
//! A container's cgroup is created under the cgroup rsafe itself runs in (so the caller's own
//! limits still bound it): `<own>/rsafe/<id>` in each v1 hierarchy, `<own>/rsafe-<id>` in v2.
//! Each controller is looked up on its own, because hosts differ: pure v2 (everything in
//! `/sys/fs/cgroup`), or hybrid (memory, pids and cpu on v1 while a controller-less v2 sits in
//! `/sys/fs/cgroup/unified`). v2 needs the controllers enabled in the parent's
//! `cgroup.subtree_control` (a delegated cgroup); v1 needs root.
//!
//! When a controller's cgroup cannot be written (rootless on v1, or v2 without delegation), the
//! runner says so on every run, with that controller's reason: the pid limit falls back to
//! `RLIMIT_NPROC` (counted per user inside the container's user namespace, so a fork bomb still
//! stops, but once per user), memory and CPU limits are not enforced. `RLIMIT_AS` is no
//! substitute for a memory limit: it caps address space, which Go and Java runtimes reserve
//! far beyond what they use, so they die at start under it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

use super::policy::Limits;

/// The CFS period rsafe uses for `--cpus`, in microseconds (the kernel's default).
pub const CPU_PERIOD_US: u64 = 100_000;

/// What can go wrong with cgroups.
#[derive(Debug, thiserror::Error)]
pub enum CgroupError {
    /// No cgroup for this controller may be created by this user: fall back.
    #[error("{controller}: {reason}")]
    Unavailable {
        controller: &'static str,
        reason: String,
    },
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> CgroupError + '_ {
    move |source| CgroupError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cgroup controllers rsafe uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Controller {
    Memory,
    Pids,
    Cpu,
}

impl Controller {
    pub fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Pids => "pids",
            Controller::Cpu => "cpu",
        }
    }

    /// The controllers `limits` need.
    pub fn needed(limits: &Limits) -> Vec<Controller> {
        let mut c = Vec::new();
        if limits.memory.is_some() {
            c.push(Controller::Memory);
        }
        if limits.pids.is_some() {
            c.push(Controller::Pids);
        }
        if limits.cpus.is_some() {
            c.push(Controller::Cpu);
        }
        c
    }
}

/// cgroup v1 or v2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Version {
    V1,
    V2,
}

/// Where cgroups are on this host: the mount table and this process's own cgroups.
#[derive(Debug, Clone)]
pub struct CgroupFs {
    /// `/proc/self/mountinfo`.
    pub mountinfo: String,
    /// `/proc/self/cgroup`.
    pub own: String,
}

impl CgroupFs {
    /// Reads this process's view.
    pub fn current() -> Result<CgroupFs, CgroupError> {
        let read = |p: &str| std::fs::read_to_string(p).map_err(io_err(Path::new(p)));
        Ok(CgroupFs {
            mountinfo: read("/proc/self/mountinfo")?,
            own: read("/proc/self/cgroup")?,
        })
    }

    /// The directory this process's cgroup is for `controller`, and the hierarchy's version.
    fn own_dir(&self, controller: Controller) -> Result<(PathBuf, Version), CgroupError> {
        self.own_dir_of(controller.name())
    }

    /// [`CgroupFs::own_dir`] for a controller by its name (`freezer` too, which sets no
    /// limit).
    fn own_dir_of(&self, name: &'static str) -> Result<(PathBuf, Version), CgroupError> {
        let unavailable = |reason: String| CgroupError::Unavailable {
            controller: name,
            reason,
        };
        let mounts: Vec<CgroupMount> = self.mountinfo.lines().filter_map(parse_mount).collect();
        // A v1 hierarchy carrying the controller wins (on a hybrid host the v2 one lacks it).
        let v1 = mounts
            .iter()
            .find(|m| m.version == Version::V1 && m.options.iter().any(|o| o == name));
        let (mount, own) = match v1 {
            Some(m) => {
                let own = self
                    .own
                    .lines()
                    .filter_map(|l| l.split_once(':'))
                    .filter_map(|(_, rest)| rest.split_once(':'))
                    .find(|(ctrls, _)| ctrls.split(',').any(|c| c == name))
                    .map(|(_, path)| path)
                    .ok_or_else(|| unavailable("not in /proc/self/cgroup".into()))?;
                (m, own)
            }
            None => {
                let m = mounts
                    .iter()
                    .find(|m| m.version == Version::V2)
                    .ok_or_else(|| unavailable("no cgroup hierarchy has it".into()))?;
                let available = std::fs::read_to_string(m.mount_point.join("cgroup.controllers"))
                    .unwrap_or_default();
                if !available.split_whitespace().any(|c| c == name) {
                    return Err(unavailable(format!(
                        "the cgroup v2 hierarchy at {} does not have it",
                        m.mount_point.display()
                    )));
                }
                let own = self
                    .own
                    .lines()
                    .find_map(|l| l.strip_prefix("0::"))
                    .ok_or_else(|| unavailable("no cgroup v2 entry in /proc/self/cgroup".into()))?;
                (m, own)
            }
        };
        let relative = own.strip_prefix(mount.root.as_str()).unwrap_or(own);
        let dir = mount.mount_point.join(relative.trim_start_matches('/'));
        Ok((dir, mount.version))
    }
}

/// A mounted cgroup hierarchy: where, which version, which controllers (v1 mount options).
#[derive(Debug, Clone)]
pub struct Hierarchy {
    pub mount_point: PathBuf,
    pub version: Version,
    pub controllers: Vec<String>,
}

/// Every cgroup hierarchy mounted in this process's mount namespace (the OCI runtime makes a
/// container's cgroup in each, as runc does).
pub fn hierarchies() -> Result<Vec<Hierarchy>, CgroupError> {
    let path = Path::new("/proc/self/mountinfo");
    let text = std::fs::read_to_string(path).map_err(io_err(path))?;
    Ok(text
        .lines()
        .filter_map(parse_mount)
        .map(|m| Hierarchy {
            mount_point: m.mount_point,
            version: m.version,
            controllers: m.options,
        })
        .collect())
}

#[derive(Debug)]
struct CgroupMount {
    root: String,
    mount_point: PathBuf,
    version: Version,
    options: Vec<String>,
}

/// One `/proc/self/mountinfo` line, if it is a cgroup mount.
fn parse_mount(line: &str) -> Option<CgroupMount> {
    let (left, right) = line.split_once(" - ")?;
    let fields: Vec<&str> = left.split(' ').collect();
    let mut right = right.split(' ');
    let version = match right.next()? {
        "cgroup" => Version::V1,
        "cgroup2" => Version::V2,
        _ => return None,
    };
    let _source = right.next()?;
    let options = right
        .next()
        .unwrap_or("")
        .split(',')
        .map(str::to_string)
        .collect();
    Some(CgroupMount {
        root: unescape_mountinfo(fields.get(3)?),
        mount_point: PathBuf::from(unescape_mountinfo(fields.get(4)?)),
        version,
        options,
    })
}

/// mountinfo escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mountinfo(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let octal = bytes
            .get(i + 1..i + 4)
            .filter(|d| d.iter().all(|b| (b'0'..=b'7').contains(b)));
        if let (b'\\', Some(d)) = (bytes[i], octal) {
            out.push(
                d.iter()
                    .fold(0u8, |acc, b| acc.wrapping_mul(8).wrapping_add(b - b'0')),
            );
            i += 4;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A container's cgroup: one directory per hierarchy it uses.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Cgroup {
    pub dirs: Vec<(PathBuf, Version)>,
}

/// A container's cgroup as far as this user may have one: the controllers it could not get
/// (each with its own reason) are the caller's to report and stand in for ([`Fallback`]).
#[derive(Debug)]
pub struct Created {
    /// The cgroup, when at least one controller could be had.
    pub cgroup: Option<Cgroup>,
    /// The controllers without a writable cgroup, and why.
    pub unavailable: Vec<(Controller, String)>,
}

impl Cgroup {
    /// Creates the cgroup of container `id` with `limits`, controller by controller: a
    /// controller this user cannot have here (rootless on v1, v2 without delegation) is listed
    /// in [`Created::unavailable`] with its own reason; any other error is a real failure and
    /// leaves nothing behind.
    pub fn create(fs: &CgroupFs, id: &str, limits: &Limits) -> Result<Created, CgroupError> {
        let mut cg = Cgroup { dirs: Vec::new() };
        let mut unavailable = Vec::new();
        for controller in Controller::needed(limits) {
            match cg.add_controller(fs, id, controller, limits) {
                Ok(()) => {}
                Err(CgroupError::Unavailable { reason, .. }) => {
                    unavailable.push((controller, reason))
                }
                Err(e) => {
                    cg.remove();
                    return Err(e);
                }
            }
        }
        if !cg.dirs.is_empty() {
            cg.add_v1_freezer(fs, id);
        }
        Ok(Created {
            cgroup: (!cg.dirs.is_empty()).then_some(cg),
            unavailable,
        })
    }

    /// The v1 freezer hierarchy's `<own>/rsafe/<id>`, when that hierarchy is mounted (a
    /// hybrid or v1 host) and this user may make it (root): what `rsafe pause` freezes. The
    /// container's first process joins it with the other v1 directories ([`SelfJoin`]).
    /// Without it (rootless on v1), a container with a v2 directory still freezes there
    /// (`cgroup.freeze`), and any other cannot be paused; it runs the same either way, so a
    /// failure here only leaves it out.
    fn add_v1_freezer(&mut self, fs: &CgroupFs, id: &str) {
        let Ok((own, Version::V1)) = fs.own_dir_of("freezer") else {
            return;
        };
        let dir = own.join("rsafe").join(id);
        if std::fs::create_dir_all(&dir).is_ok() {
            self.dirs.push((dir, Version::V1));
        }
    }

    fn add_controller(
        &mut self,
        fs: &CgroupFs,
        id: &str,
        controller: Controller,
        limits: &Limits,
    ) -> Result<(), CgroupError> {
        let (own, version) = fs.own_dir(controller)?;
        let dir = match version {
            Version::V1 => own.join("rsafe").join(id),
            Version::V2 => {
                enable_v2_controller(&own, controller)?;
                own.join(format!("rsafe-{id}"))
            }
        };
        if !self.dirs.iter().any(|(d, _)| *d == dir) {
            create_dir(&dir, controller)?;
            self.dirs.push((dir.clone(), version));
        }
        write_limit(&dir, version, controller, limits)
    }

    /// The cgroup directories a container `id` left behind without recording them (its rsafe
    /// was killed between making them and writing `state.json`): `rsafe/<id>` (v1) and
    /// `rsafe-<id>` (v2), looked for in every cgroup hierarchy, since the rsafe that made them
    /// may have run in another cgroup than this process. `None` when there are none.
    pub fn leftover(id: &str) -> Option<Cgroup> {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let mut dirs = Vec::new();
        for mount in mountinfo.lines().filter_map(parse_mount) {
            let walk = walkdir::WalkDir::new(&mount.mount_point)
                .max_depth(12)
                .follow_links(false)
                .same_file_system(true);
            for entry in walk.into_iter().filter_map(|e| e.ok()) {
                let path = entry.path();
                let ours = match mount.version {
                    Version::V1 => {
                        entry.file_name() == id
                            && path.parent().and_then(Path::file_name) == Some("rsafe".as_ref())
                    }
                    Version::V2 => entry.file_name().to_str() == Some(&format!("rsafe-{id}")),
                };
                if ours && entry.file_type().is_dir() && !dirs.iter().any(|(d, _)| d == path) {
                    dirs.push((path.to_path_buf(), mount.version));
                }
            }
        }
        (!dirs.is_empty()).then_some(Cgroup { dirs })
    }

    /// The container's own way into its v1 cgroups: each hierarchy's `tasks` file, opened
    /// here, for the container's first process to write `0` to (see [`SelfJoin`]).
    pub fn self_join(&self) -> Result<SelfJoin, CgroupError> {
        let mut files = Vec::new();
        for (dir, version) in &self.dirs {
            if *version == Version::V1 {
                let tasks = dir.join("tasks");
                let file = std::fs::OpenOptions::new()
                    .write(true)
                    .open(&tasks)
                    .map_err(io_err(&tasks))?;
                files.push((tasks, file));
            }
        }
        Ok(SelfJoin { files })
    }

    /// Whether the container must be moved in from outside (v2), with [`Cgroup::add_v2`].
    pub fn has_v2(&self) -> bool {
        self.dirs.iter().any(|(_, v)| *v == Version::V2)
    }

    /// Moves process `pid` (and so its future children) into the cgroup's v2 directory.
    /// Moving a whole process waits for an RCU grace period (milliseconds): do it while the
    /// container builds its root filesystem.
    pub fn add_v2(&self, pid: i32) -> Result<(), CgroupError> {
        for (dir, version) in &self.dirs {
            if *version == Version::V2 {
                let procs = dir.join("cgroup.procs");
                std::fs::write(&procs, pid.to_string()).map_err(io_err(&procs))?;
            }
        }
        Ok(())
    }

    /// Removes the cgroup directories of one of rsafe's own containers ([`remove_dirs`]),
    /// and v1's shared `rsafe` parent with its last container (others keep it busy).
    ///
    /// [`remove_dirs`]: Cgroup::remove_dirs
    pub fn remove(&self) -> Vec<CgroupError> {
        let errors = self.remove_dirs();
        for (dir, version) in self.dirs.iter().rev() {
            if let (Version::V1, Some(parent)) = (version, dir.parent()) {
                let _ = std::fs::remove_dir(parent);
            }
        }
        errors
    }

    /// Removes the cgroup's own directories, never their parents (an OCI caller owns those:
    /// podman's `libpod_parent`, containerd's namespace): `rsafe rm` and `rsafe-runtime
    /// delete` both remove a cgroup through this. The kernel refuses while a process is
    /// still inside (exiting processes linger a moment, longer on a loaded host: a second
    /// was once not enough at load 10), so it retries for up to five seconds; what cannot be
    /// removed is left, and reported (the container stays in `ps -a` for `rm` to retry).
    pub fn remove_dirs(&self) -> Vec<CgroupError> {
        let mut errors = Vec::new();
        for (dir, _) in self.dirs.iter().rev() {
            let mut attempt = 0;
            loop {
                match std::fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(e) if e.raw_os_error() == Some(libc::EBUSY) && attempt < 500 => {
                        attempt += 1;
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                    Err(e) => {
                        errors.push(io_err(dir)(e));
                        break;
                    }
                }
            }
        }
        errors
    }

    /// Every process in the cgroup, each once, in any of its hierarchies: what `kill --all`
    /// and a forced removal signal.
    pub fn pids(&self) -> Vec<i32> {
        let mut out: Vec<i32> = self
            .dirs
            .iter()
            .flat_map(|(dir, _)| {
                std::fs::read_to_string(dir.join("cgroup.procs"))
                    .unwrap_or_default()
                    .lines()
                    .filter_map(|l| l.trim().parse().ok())
                    .collect::<Vec<i32>>()
            })
            .collect();
        out.sort_unstable();
        out.dedup();
        out
    }
}

/// The file that freezes a container's processes: the v1 freezer controller's `freezer.state`
/// (preferred on a hybrid host, where it is the freezer), else v2's `cgroup.freeze`. `rsafe
/// pause` and `rsafe-runtime pause` both freeze through it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Freezer {
    V1(PathBuf),
    V2(PathBuf),
}

impl Cgroup {
    fn freezer(&self) -> Option<Freezer> {
        let v1 = self.dirs.iter().find_map(|(d, v)| {
            let file = d.join("freezer.state");
            (*v == Version::V1 && file.exists()).then_some(Freezer::V1(file))
        });
        v1.or_else(|| {
            self.dirs.iter().find_map(|(d, v)| {
                let file = d.join("cgroup.freeze");
                (*v == Version::V2 && file.exists()).then_some(Freezer::V2(d.clone()))
            })
        })
    }

    /// Whether the cgroup can be frozen here (a freezer in some hierarchy it is in).
    pub fn has_freezer(&self) -> bool {
        self.freezer().is_some()
    }

    /// Whether the container is frozen (paused): what the freezer was told (v1 `FROZEN` or
    /// still `FREEZING`, v2 `cgroup.freeze` 1), as runc reads it.
    pub fn frozen(&self) -> bool {
        match self.freezer() {
            Some(Freezer::V1(file)) => std::fs::read_to_string(file)
                .is_ok_and(|s| matches!(s.trim(), "FROZEN" | "FREEZING")),
            Some(Freezer::V2(dir)) => {
                std::fs::read_to_string(dir.join("cgroup.freeze")).is_ok_and(|s| s.trim() == "1")
            }
            None => false,
        }
    }

    /// Freezes (`on`) or thaws every process of the cgroup and waits (up to 10 s) until the
    /// kernel says it is done: a v1 freezer may stay `FREEZING` while a task is in an
    /// uninterruptible sleep, so `FROZEN` is written again until it holds. A freeze that does
    /// not finish is undone (half frozen is worse than running), as runc does.
    pub fn freeze(&self, on: bool) -> Result<(), CgroupError> {
        let Some(freezer) = self.freezer() else {
            return Err(CgroupError::Unavailable {
                controller: "freezer",
                reason: "the container's cgroup has no freezer".into(),
            });
        };
        let (file, value, done_file, done, thaw) = match &freezer {
            Freezer::V1(f) => {
                let v = if on { "FROZEN" } else { "THAWED" };
                (f.clone(), v, f.clone(), v, "THAWED")
            }
            Freezer::V2(d) => (
                d.join("cgroup.freeze"),
                if on { "1" } else { "0" },
                d.join("cgroup.events"),
                if on { "frozen 1" } else { "frozen 0" },
                "0",
            ),
        };
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            std::fs::write(&file, value).map_err(io_err(&file))?;
            let now = std::fs::read_to_string(&done_file).map_err(io_err(&done_file))?;
            if now.lines().any(|l| l.trim() == done) {
                return Ok(());
            }
            if std::time::Instant::now() > deadline {
                if on {
                    let _ = std::fs::write(&file, thaw);
                }
                return Err(io_err(&done_file)(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("still not {done} after 10 s"),
                )));
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }
}

/// A container's first process moving itself into its v1 cgroups, with `tasks` files rsafe
/// opened (the kernel checks the opener's credentials, so the container's unprivileged root
/// needs no access to the host's cgroup tree).
///
/// Why the container moves itself: moving *another* process, or a whole thread group, takes
/// the kernel's global threadgroup lock for writing, which waits for an RCU grace period: 4 to
/// 16 ms on this 2-core host when it was idle, the largest and most variable part of a
/// container's start. A single-threaded process writing `0` (itself) to `tasks` skips that
/// lock (the kernel's `cgroup_procs_write_start`): 0.04 ms. v2 has no such path (its
/// `cgroup.threads` cannot cross domains), so v2 directories are joined from outside.
#[derive(Debug)]
pub struct SelfJoin {
    files: Vec<(PathBuf, std::fs::File)>,
}

impl SelfJoin {
    /// The files, for the process that joins: `tasks` paths (for messages) and open files.
    pub fn new(files: Vec<(PathBuf, std::fs::File)>) -> SelfJoin {
        SelfJoin { files }
    }

    /// The files, to hand them to the process that joins.
    pub fn files(&self) -> &[(PathBuf, std::fs::File)] {
        &self.files
    }

    /// Moves the calling thread into every cgroup: call it from the container's first process
    /// while it is still single-threaded, before it forks.
    pub fn join(self) -> io::Result<()> {
        for (path, mut file) in self.files {
            io::Write::write_all(&mut file, b"0")
                .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
        }
        Ok(())
    }
}

/// What the memory cgroup's OOM killer did to a container: read from the cgroup before it is
/// removed, because an exit status of 137 alone cannot tell an OOM kill from any SIGKILL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OomKills {
    /// Processes the OOM killer ended in the container (at least 1).
    pub count: u64,
    /// The memory limit they ran into, in bytes.
    pub limit: u64,
}

impl fmt::Display for OomKills {
    /// `out of memory (limit 64 MiB)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "out of memory (limit {})", human_bytes(self.limit))
    }
}

impl Cgroup {
    /// How many of the container's processes the memory cgroup's OOM killer ended, or `None`
    /// when none was (or the cgroup has no memory controller). Must run before [`Cgroup::remove`].
    ///
    /// The kernel counts OOM kills in v2 `memory.events` and, since 4.13, in v1
    /// `memory.oom_control` (`oom_kill N`), raising the count before it sends the SIGKILL, so
    /// it is there by the time the container's exit is seen. On older v1 kernels, a failure
    /// to charge memory (`memory.failcnt`) with the peak usage at the limit
    /// (`memory.max_usage_in_bytes`) stands in for it: one kill, at least.
    pub fn oom_kills(&self, limit: u64) -> Option<OomKills> {
        let read = |dir: &Path, file: &str| std::fs::read_to_string(dir.join(file)).ok();
        let count = self.dirs.iter().find_map(|(dir, version)| match version {
            Version::V2 => read(dir, "memory.events").and_then(|t| keyed_counter(&t, "oom_kill")),
            Version::V1 => {
                let control = read(dir, "memory.oom_control")?;
                keyed_counter(&control, "oom_kill").or_else(|| {
                    let failures = read(dir, "memory.failcnt")?;
                    let peak = read(dir, "memory.max_usage_in_bytes")?;
                    limit_was_hit(&failures, &peak, limit).then_some(1)
                })
            }
        })?;
        (count > 0).then_some(OomKills { count, limit })
    }
}

/// The value of `key` in a flat-keyed cgroup file (`key value` lines, as `memory.events` and
/// `memory.oom_control` are).
fn keyed_counter(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// Whether v1 `memory.failcnt` and `memory.max_usage_in_bytes` say the usage reached `limit`
/// and a charge failed there.
fn limit_was_hit(failcnt: &str, max_usage: &str, limit: u64) -> bool {
    let failures: u64 = failcnt.trim().parse().unwrap_or(0);
    let peak: u64 = max_usage.trim().parse().unwrap_or(0);
    // The kernel's limit is rounded down to whole pages.
    failures > 0 && peak.saturating_add(4096) > limit
}

/// `64 MiB`, `1.5 GiB`, `512 bytes`: a size as people write limits.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [(&str, u64); 4] = [
        ("TiB", 1 << 40),
        ("GiB", 1 << 30),
        ("MiB", 1 << 20),
        ("KiB", 1 << 10),
    ];
    for (unit, size) in UNITS {
        if bytes >= size {
            let whole = bytes / size;
            let tenths = (bytes % size) * 10 / size;
            return if tenths == 0 {
                format!("{whole} {unit}")
            } else {
                format!("{whole}.{tenths} {unit}")
            };
        }
    }
    format!("{bytes} bytes")
}

fn create_dir(dir: &Path, controller: Controller) -> Result<(), CgroupError> {
    match std::fs::create_dir_all(dir) {
        Ok(()) => Ok(()),
        Err(e)
            if matches!(
                e.raw_os_error(),
                Some(libc::EACCES) | Some(libc::EPERM) | Some(libc::EROFS)
            ) =>
        {
            Err(CgroupError::Unavailable {
                controller: controller.name(),
                reason: format!("cannot create {}: {e}", dir.display()),
            })
        }
        Err(e) => Err(io_err(dir)(e)),
    }
}

/// Makes sure `parent`'s children may use `controller` (cgroup v2 delegation).
fn enable_v2_controller(parent: &Path, controller: Controller) -> Result<(), CgroupError> {
    let control = parent.join("cgroup.subtree_control");
    let enabled = std::fs::read_to_string(&control).map_err(io_err(&control))?;
    if enabled.split_whitespace().any(|c| c == controller.name()) {
        return Ok(());
    }
    std::fs::write(&control, format!("+{}", controller.name())).map_err(|e| {
        CgroupError::Unavailable {
            controller: controller.name(),
            reason: format!(
                "not delegated to {} (enabling it in cgroup.subtree_control: {e})",
                parent.display()
            ),
        }
    })
}

fn write_limit(
    dir: &Path,
    version: Version,
    controller: Controller,
    limits: &Limits,
) -> Result<(), CgroupError> {
    let write = |file: &str, value: String| {
        let path = dir.join(file);
        std::fs::write(&path, value).map_err(io_err(&path))
    };
    let exists = |file: &str| dir.join(file).exists();
    match (controller, version) {
        (Controller::Memory, v) => {
            let Some(bytes) = limits.memory else {
                return Ok(());
            };
            let (limit, swap, swap_value) = match v {
                Version::V1 => (
                    "memory.limit_in_bytes",
                    "memory.memsw.limit_in_bytes",
                    bytes,
                ),
                Version::V2 => ("memory.max", "memory.swap.max", 0),
            };
            write(limit, bytes.to_string())?;
            // No swapping past the limit, where swap accounting exists.
            if exists(swap) {
                write(swap, swap_value.to_string())?;
            }
        }
        (Controller::Pids, _) => {
            if let Some(n) = limits.pids {
                write("pids.max", n.to_string())?;
            }
        }
        (Controller::Cpu, v) => {
            if let Some(cpus) = limits.cpus {
                let quota = cpu_quota(cpus);
                match v {
                    Version::V1 => {
                        write("cpu.cfs_period_us", CPU_PERIOD_US.to_string())?;
                        write("cpu.cfs_quota_us", quota.to_string())?;
                    }
                    Version::V2 => write("cpu.max", format!("{quota} {CPU_PERIOD_US}"))?,
                }
            }
        }
    }
    Ok(())
}

/// Microseconds of CPU time per [`CPU_PERIOD_US`] for `cpus` CPUs (at least the kernel's 1 ms).
pub fn cpu_quota(cpus: f64) -> u64 {
    ((cpus * CPU_PERIOD_US as f64).round() as u64).max(1000)
}

/// What stands in for the limits no cgroup could take, and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FallbackPlan {
    pub rlimits: Fallback,
    /// One line per limit that is weakened or not enforced: said on every run, not only
    /// with `--verbose`.
    pub warnings: Vec<String>,
    /// The policy's own pid limit enforced per user: said with `--verbose` (it still stops a
    /// fork bomb, which is what the policy asks of it).
    pub notes: Vec<String>,
}

/// The rlimits that stand in for a cgroup, set in the workload before it starts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Fallback {
    /// `RLIMIT_NPROC`: processes of each user inside the container.
    pub nproc: Option<u64>,
}

impl Fallback {
    /// What to do for the `limits` whose controllers are `unavailable`, each said with its
    /// own controller's reason:
    /// - pids: `RLIMIT_NPROC`, which the kernel counts per user inside the container's user
    ///   namespace: a fork bomb of one user stops, but a workload that runs as several users
    ///   gets the limit once per user (said so);
    /// - memory: nothing. `RLIMIT_AS` would cap each process's address space, which is not
    ///   memory: Go and Java runtimes reserve gigabytes of it at start and die under any
    ///   useful value, while several processes could still use the limit each;
    /// - CPU: nothing (no rlimit rations CPU time per second).
    ///
    /// `pids_from_policy`: the pid limit is the policy's default, not the user's.
    pub fn for_limits(
        limits: &Limits,
        unavailable: &[(Controller, String)],
        pids_from_policy: bool,
    ) -> FallbackPlan {
        let mut warnings = Vec::new();
        let mut notes = Vec::new();
        let mut rlimits = Fallback::default();
        for (controller, why) in unavailable {
            match controller {
                Controller::Pids => {
                    let Some(n) = limits.pids else { continue };
                    rlimits.nproc = Some(n);
                    let line = format!(
                        "pids limit {n} is enforced per user, not for the whole container: no writable pids cgroup ({why}); each user in the container may have {n} processes (RLIMIT_NPROC)"
                    );
                    match pids_from_policy {
                        true => notes.push(format!("policy {line}")),
                        false => warnings.push(line),
                    }
                }
                Controller::Memory => {
                    let Some(m) = limits.memory else { continue };
                    warnings.push(format!(
                        "memory limit {} is NOT enforced: no writable memory cgroup ({why})",
                        human_bytes(m)
                    ));
                }
                Controller::Cpu => {
                    let Some(c) = limits.cpus else { continue };
                    warnings.push(format!(
                        "cpu limit {c} is NOT enforced: no writable cpu cgroup ({why})"
                    ));
                }
            }
        }
        FallbackPlan {
            rlimits,
            warnings,
            notes,
        }
    }

    /// Applies the rlimits to the calling process (inherited by its children).
    pub fn apply(&self) -> io::Result<()> {
        use nix::sys::resource::{Resource, setrlimit};
        if let Some(n) = self.nproc {
            setrlimit(Resource::RLIMIT_NPROC, n, n).map_err(io::Error::from)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HYBRID_MOUNTS: &str = "\
24 1 0:22 / /sys rw - sysfs sysfs rw
30 24 0:26 / /sys/fs/cgroup rw - tmpfs tmpfs rw
31 30 0:27 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw
33 30 0:29 / /sys/fs/cgroup/cpu rw - cgroup cgroup rw,cpu
35 30 0:31 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
39 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids
";
    const HYBRID_OWN: &str = "8:pids:/\n4:memory:/job/42\n1:cpu:/\n0::/\n";

    fn limits() -> Limits {
        Limits {
            memory: Some(64 << 20),
            pids: Some(50),
            cpus: Some(1.5),
        }
    }

    #[test]
    fn hybrid_host_uses_v1_per_controller() {
        let fs = CgroupFs {
            mountinfo: HYBRID_MOUNTS.into(),
            own: HYBRID_OWN.into(),
        };
        assert_eq!(
            fs.own_dir(Controller::Memory).unwrap(),
            (PathBuf::from("/sys/fs/cgroup/memory/job/42"), Version::V1)
        );
        assert_eq!(
            fs.own_dir(Controller::Pids).unwrap(),
            (PathBuf::from("/sys/fs/cgroup/pids/"), Version::V1)
        );
    }

    /// A fake v2 hierarchy in a temp dir, mounted (per the fake mountinfo) at `dir`.
    fn fake_v2(subtree: &str) -> (tempfile::TempDir, CgroupFs) {
        let dir = tempfile::tempdir().unwrap();
        let own = dir.path().join("user/app");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(dir.path().join("cgroup.controllers"), "cpu memory pids").unwrap();
        std::fs::write(own.join("cgroup.subtree_control"), subtree).unwrap();
        let fs = CgroupFs {
            mountinfo: format!(
                "40 30 0:27 / {} rw - cgroup2 cgroup2 rw\n",
                dir.path().display()
            ),
            own: "0::/user/app\n".into(),
        };
        (dir, fs)
    }

    #[test]
    fn v2_delegated_cgroup_gets_the_limits() {
        let (dir, fs) = fake_v2("cpu memory pids");
        let created = Cgroup::create(&fs, "abc", &limits()).unwrap();
        assert!(created.unavailable.is_empty());
        let cg = created.cgroup.unwrap();
        let cdir = dir.path().join("user/app/rsafe-abc");
        assert_eq!(cg.dirs, vec![(cdir.clone(), Version::V2)]);
        let read = |f: &str| std::fs::read_to_string(cdir.join(f)).unwrap();
        assert_eq!(read("memory.max"), (64u64 << 20).to_string());
        assert_eq!(read("pids.max"), "50");
        assert_eq!(read("cpu.max"), "150000 100000");
        // A fake directory is not a cgroup: the knob files keep it from being removed, so
        // clear them first, as the kernel would.
        for f in ["memory.max", "pids.max", "cpu.max"] {
            std::fs::remove_file(cdir.join(f)).unwrap();
        }
        assert!(cg.remove().is_empty());
        assert!(!cdir.exists());
    }

    #[test]
    fn v2_without_delegation_is_unavailable() {
        let (dir, fs) = fake_v2("");
        // Writing subtree_control "works" on a plain file, so make it read-only to act like a
        // kernel refusing it; as root the permission bits do not stop us, so use a directory.
        let control = dir.path().join("user/app/cgroup.subtree_control");
        std::fs::remove_file(&control).unwrap();
        std::fs::create_dir(&control).unwrap();
        let err = enable_v2_controller(&dir.path().join("user/app"), Controller::Pids);
        assert!(matches!(err, Err(CgroupError::Io { .. })));
        std::fs::remove_dir(&control).unwrap();
        std::fs::write(&control, "").unwrap();
        assert!(Cgroup::create(&fs, "x", &limits()).is_ok());
    }

    #[test]
    fn missing_controller_is_unavailable() {
        let fs = CgroupFs {
            mountinfo: "31 30 0:27 / /nonexistent/unified rw - cgroup2 cgroup2 rw\n".into(),
            own: "0::/\n".into(),
        };
        let created = Cgroup::create(&fs, "x", &limits()).unwrap();
        assert!(created.cgroup.is_none());
        let names: Vec<&str> = created.unavailable.iter().map(|(c, _)| c.name()).collect();
        assert_eq!(names, ["memory", "pids", "cpu"]);
    }

    #[test]
    fn each_controller_is_had_or_reported_on_its_own() {
        // Delegated memory and pids, but not cpu: the cgroup gets two limits, and the cpu
        // limit is reported with cpu's own reason.
        let (dir, fs) = fake_v2("memory pids");
        std::fs::write(dir.path().join("cgroup.controllers"), "memory pids").unwrap();
        let created = Cgroup::create(&fs, "abc", &limits()).unwrap();
        let cg = created.cgroup.unwrap();
        assert_eq!(created.unavailable.len(), 1, "{:?}", created.unavailable);
        let (controller, why) = &created.unavailable[0];
        assert_eq!(*controller, Controller::Cpu);
        assert!(why.contains("does not have it"), "{why}");
        let plan = Fallback::for_limits(&limits(), &created.unavailable, false);
        assert_eq!(plan.warnings.len(), 1);
        assert!(
            plan.warnings[0].starts_with("cpu limit 1.5 is NOT enforced: no writable cpu cgroup")
        );
        let cdir = dir.path().join("user/app/rsafe-abc");
        for f in ["memory.max", "pids.max"] {
            std::fs::remove_file(cdir.join(f)).unwrap();
        }
        assert!(cg.remove().is_empty());
    }

    #[test]
    fn quota_and_fallback() {
        assert_eq!(cpu_quota(1.5), 150_000);
        assert_eq!(cpu_quota(0.001), 1000);
        let unavailable: Vec<(Controller, String)> =
            [Controller::Memory, Controller::Pids, Controller::Cpu]
                .into_iter()
                .map(|c| (c, format!("{} not delegated", c.name())))
                .collect();
        let plan = Fallback::for_limits(&limits(), &unavailable, false);
        assert_eq!(plan.rlimits.nproc, Some(50));
        assert_eq!(plan.warnings.len(), 3, "{:?}", plan.warnings);
        assert!(plan.warnings[0].contains("memory limit 64 MiB is NOT enforced"));
        assert!(plan.warnings[0].contains("(memory not delegated)"));
        assert!(plan.warnings[1].contains("per user, not for the whole container"));
        assert!(plan.warnings[1].contains("(pids not delegated)"));
        assert!(plan.warnings[2].contains("cpu limit 1.5 is NOT enforced"));
        assert!(plan.warnings[2].contains("(cpu not delegated)"));
        let none = Fallback::for_limits(&Limits::default(), &unavailable, false);
        assert!(none.warnings.is_empty() && none.rlimits == Fallback::default());
        // The policy's own fork-bomb guard, enforced per user: said with --verbose only.
        let guard = Fallback::for_limits(&limits(), &unavailable, true);
        assert_eq!(guard.rlimits.nproc, Some(50));
        assert_eq!(guard.warnings.len(), 2);
        assert_eq!(guard.notes.len(), 1);
        assert!(guard.notes[0].starts_with("policy pids limit 50"));
    }

    #[test]
    fn oom_counters_v1_and_v2() {
        let v1 = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
        assert_eq!(keyed_counter(v1, "oom_kill"), Some(2));
        assert_eq!(keyed_counter(v1, "oom_kill_disable"), Some(0));
        // Before 4.13 v1 has no counter at all.
        assert_eq!(
            keyed_counter("oom_kill_disable 0\nunder_oom 0\n", "oom_kill"),
            None
        );
        let v2 = "low 0\nhigh 0\nmax 12\noom 1\noom_kill 1\noom_group_kill 0\n";
        assert_eq!(keyed_counter(v2, "oom_kill"), Some(1));
        assert_eq!(keyed_counter("oom_kill x\n", "oom_kill"), None);
        let limit = 64 << 20;
        assert!(limit_was_hit("3\n", &format!("{limit}\n"), limit));
        assert!(limit_was_hit("1", &(limit - 4095).to_string(), limit));
        assert!(!limit_was_hit("0", &limit.to_string(), limit));
        assert!(!limit_was_hit("5", &(limit / 2).to_string(), limit));
    }

    #[test]
    fn oom_kills_read_from_the_cgroup_directory() {
        let dir = tempfile::tempdir().unwrap();
        let (v1, v2, old) = (
            dir.path().join("v1"),
            dir.path().join("v2"),
            dir.path().join("old"),
        );
        for d in [&v1, &v2, &old] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(v1.join("memory.oom_control"), "under_oom 0\noom_kill 1\n").unwrap();
        std::fs::write(v2.join("memory.events"), "oom 0\noom_kill 0\n").unwrap();
        std::fs::write(old.join("memory.oom_control"), "under_oom 0\n").unwrap();
        std::fs::write(old.join("memory.failcnt"), "7\n").unwrap();
        std::fs::write(old.join("memory.max_usage_in_bytes"), "1048576\n").unwrap();
        let cg = |d: &Path, v| Cgroup {
            dirs: vec![(d.to_path_buf(), v)],
        };
        let kills = cg(&v1, Version::V1).oom_kills(64 << 20).unwrap();
        assert_eq!(kills.count, 1);
        assert_eq!(kills.to_string(), "out of memory (limit 64 MiB)");
        assert_eq!(cg(&v2, Version::V2).oom_kills(64 << 20), None);
        assert_eq!(cg(&old, Version::V1).oom_kills(1 << 20).unwrap().count, 1);
        assert_eq!(cg(&old, Version::V1).oom_kills(2 << 20), None);
        // A pids-only cgroup has no memory files.
        assert_eq!(cg(dir.path(), Version::V1).oom_kills(1), None);
    }

    #[test]
    fn sizes_for_people() {
        assert_eq!(human_bytes(64 << 20), "64 MiB");
        assert_eq!(human_bytes(1536 << 20), "1.5 GiB");
        assert_eq!(human_bytes(4096), "4 KiB");
        assert_eq!(human_bytes(1000), "1000 bytes");
        assert_eq!(human_bytes(2 << 40), "2 TiB");
    }

    #[test]
    fn mountinfo_escapes() {
        assert_eq!(unescape_mountinfo(r"/a\040b\\"), "/a b\\\\");
        assert_eq!(unescape_mountinfo(r"/x\134y"), "/x\\y");
    }

    #[test]
    fn the_v1_freezer_is_preferred_to_cgroup_freeze() {
        let v1 = tempfile::tempdir().unwrap();
        let v2 = tempfile::tempdir().unwrap();
        std::fs::write(v2.path().join("cgroup.freeze"), "0").unwrap();
        let only_v2 = Cgroup {
            dirs: vec![
                (v1.path().to_path_buf(), Version::V1),
                (v2.path().to_path_buf(), Version::V2),
            ],
        };
        assert_eq!(
            only_v2.freezer(),
            Some(Freezer::V2(v2.path().to_path_buf()))
        );
        std::fs::write(v1.path().join("freezer.state"), "THAWED\n").unwrap();
        assert_eq!(
            only_v2.freezer(),
            Some(Freezer::V1(v1.path().join("freezer.state")))
        );
        assert!(!only_v2.frozen());
        std::fs::write(v1.path().join("freezer.state"), "FROZEN\n").unwrap();
        assert!(only_v2.frozen());
        let none = Cgroup {
            dirs: vec![(
                tempfile::tempdir().unwrap().path().to_path_buf(),
                Version::V1,
            )],
        };
        assert!(!none.has_freezer() && !none.frozen());
        assert!(none.freeze(true).is_err());
    }

    /// The cumulative CPU time (user + system ticks) of `pid`.
    fn cpu_ticks(pid: u32) -> u64 {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
        let after = &stat[stat.rfind(')').unwrap() + 2..];
        let fields: Vec<&str> = after.split(' ').collect();
        fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap()
    }

    /// A real cgroup v2 directory (the unified hierarchy, beside v1 ones on a hybrid host)
    /// frozen through `cgroup.freeze`: a busy process gets no CPU until thawed.
    #[test]
    fn a_v2_cgroup_freezes_and_thaws() {
        let required = std::env::var("RSAFE_TEST_REQUIRE").is_ok_and(|v| v == "1");
        let mount = hierarchies()
            .unwrap_or_default()
            .into_iter()
            .find(|h| h.version == Version::V2)
            .map(|h| h.mount_point);
        let (Some(mount), true) = (mount, nix::unistd::geteuid().is_root()) else {
            assert!(!required, "root and a cgroup v2 hierarchy are required");
            eprintln!("skipping: needs root and a cgroup v2 hierarchy");
            return;
        };
        let dir = mount.join(format!("rsafe-freeze-test-{}", std::process::id()));
        std::fs::create_dir(&dir).unwrap();
        let cg = Cgroup {
            dirs: vec![(dir.clone(), Version::V2)],
        };
        let mut busy = std::process::Command::new("sh")
            .args(["-c", "while :; do :; done"])
            .spawn()
            .unwrap();
        std::fs::write(dir.join("cgroup.procs"), busy.id().to_string()).unwrap();
        cg.freeze(true).unwrap();
        assert!(cg.frozen());
        let before = cpu_ticks(busy.id());
        std::thread::sleep(std::time::Duration::from_millis(300));
        let still = cpu_ticks(busy.id()) == before;
        cg.freeze(false).unwrap();
        let thawed = !cg.frozen();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let ran = cpu_ticks(busy.id()) > before;
        let _ = busy.kill();
        let _ = busy.wait();
        assert!(cg.remove().is_empty());
        assert!(still, "a frozen process used CPU");
        assert!(thawed && ran, "the thawed process did not run");
        assert!(!dir.exists());
    }
}
