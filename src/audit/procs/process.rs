//! One process as procfs shows it: identity (pid, parent, start time), credentials, capability
//! sets, `no_new_privs`, seccomp mode, namespace identities and cgroup membership.
//!
//! Everything here comes from world-readable files (`stat`, `status`, `cgroup`) except the
//! namespace links, which need ptrace-read access to the process: when those cannot be read the
//! process is still returned, with [`Process::namespaces`] unset and the reason kept, so callers
//! can report it instead of skipping it.

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};

/// Reading a process failed. `Vanished` is the normal race of a process exiting while procfs is
/// walked; everything else is worth telling the user.
#[derive(Debug, thiserror::Error)]
pub enum ProcessError {
    #[error("process {pid} exited")]
    Vanished { pid: u32 },
    #[error("{}: permission denied", path.display())]
    Denied { path: PathBuf },
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: io::Error },
    #[error("{}: unexpected content: {what}", path.display())]
    Malformed { path: PathBuf, what: String },
}

impl ProcessError {
    /// Classifies an I/O error on a file of process `pid`.
    pub fn from_io(pid: u32, path: &Path, err: io::Error) -> ProcessError {
        // ESRCH: the task died between opening its directory and reading a file of it.
        if err.kind() == io::ErrorKind::NotFound || err.raw_os_error() == Some(libc::ESRCH) {
            ProcessError::Vanished { pid }
        } else if err.kind() == io::ErrorKind::PermissionDenied {
            ProcessError::Denied {
                path: path.to_path_buf(),
            }
        } else {
            ProcessError::Io {
                path: path.to_path_buf(),
                source: err,
            }
        }
    }
}

/// The namespace types procfs exposes under `/proc/PID/ns/`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum NsKind {
    Pid,
    Mnt,
    Net,
    Ipc,
    Uts,
    User,
    Cgroup,
    Time,
}

impl NsKind {
    /// Every kind, in the order reports list them.
    pub const ALL: [NsKind; 8] = [
        NsKind::Pid,
        NsKind::Mnt,
        NsKind::Net,
        NsKind::Ipc,
        NsKind::Uts,
        NsKind::User,
        NsKind::Cgroup,
        NsKind::Time,
    ];

    /// The link name under `/proc/PID/ns/` (also the prefix of the link's target).
    pub fn as_str(self) -> &'static str {
        match self {
            NsKind::Pid => "pid",
            NsKind::Mnt => "mnt",
            NsKind::Net => "net",
            NsKind::Ipc => "ipc",
            NsKind::Uts => "uts",
            NsKind::User => "user",
            NsKind::Cgroup => "cgroup",
            NsKind::Time => "time",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for NsKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The namespaces of one process, as inode numbers of their `nsfs` files. Two processes are in
/// the same namespace exactly when the inodes are equal (one nsfs instance per boot).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct Namespaces {
    inodes: [Option<u64>; 8],
}

impl Namespaces {
    /// The inode of namespace `kind`, or `None` when this kernel lacks it.
    pub fn get(&self, kind: NsKind) -> Option<u64> {
        self.inodes[kind.index()]
    }

    /// Sets one namespace (used when reading, and by tests).
    pub fn set(&mut self, kind: NsKind, inode: u64) {
        self.inodes[kind.index()] = Some(inode);
    }

    /// Whether both have namespace `kind` and it is the same one.
    pub fn same(&self, other: &Namespaces, kind: NsKind) -> bool {
        matches!((self.get(kind), other.get(kind)), (Some(a), Some(b)) if a == b)
    }

    /// Reads every `/proc/PID/ns/*` link. Kinds the kernel lacks are left unset; a link that
    /// exists but cannot be read fails the whole read (the caller lacks ptrace access).
    pub fn read(proc_dir: &Path, pid: u32) -> Result<Namespaces, ProcessError> {
        let mut ns = Namespaces::default();
        for kind in NsKind::ALL {
            let path = proc_dir.join("ns").join(kind.as_str());
            match std::fs::read_link(&path) {
                Ok(target) => {
                    let inode =
                        parse_ns_link(&target.to_string_lossy(), kind).ok_or_else(|| {
                            ProcessError::Malformed {
                                path: path.clone(),
                                what: format!("link target {}", target.display()),
                            }
                        })?;
                    ns.set(kind, inode);
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound && proc_dir.exists() => {}
                Err(e) => return Err(ProcessError::from_io(pid, &path, e)),
            }
        }
        Ok(ns)
    }
}

/// `pid:[4026531836]` → 4026531836.
fn parse_ns_link(target: &str, kind: NsKind) -> Option<u64> {
    target
        .strip_prefix(kind.as_str())?
        .strip_prefix(":[")?
        .strip_suffix(']')?
        .parse()
        .ok()
}

/// Real and effective ids (as the reader's user namespace sees them: host ids when rsafe runs
/// in the initial user namespace).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Ids {
    pub real: u32,
    pub effective: u32,
}

/// The capability sets of a process (bit `n` = capability number `n`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CapSets {
    pub effective: u64,
    pub permitted: u64,
    pub bounding: u64,
    pub ambient: u64,
}

/// A process's seccomp mode (`Seccomp:` in status).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SeccompMode {
    Disabled,
    Strict,
    Filter,
}

/// One line of `/proc/PID/cgroup`: `hierarchy-id:controllers:path`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CgroupEntry {
    /// 0 for the v2 hierarchy.
    pub hierarchy: u32,
    /// Controllers of a v1 hierarchy (`memory`, `pids`, `name=systemd`); empty for v2.
    pub controllers: Vec<String>,
    /// Path relative to the reader's cgroup namespace root.
    pub path: String,
}

/// A process as procfs shows it.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: u32,
    pub ppid: u32,
    /// Clock ticks since boot when the process started: tells a live process from a reused pid.
    pub start_time: u64,
    /// The kernel's short command name (`comm`).
    pub comm: String,
    pub cmdline: Vec<String>,
    /// Target of `/proc/PID/exe` (unset when unreadable, e.g. for another user's process).
    pub exe: Option<PathBuf>,
    pub uid: Ids,
    pub gid: Ids,
    pub caps: CapSets,
    /// `None` on kernels too old to say.
    pub no_new_privs: Option<bool>,
    pub seccomp: Option<SeccompMode>,
    /// The process's pid in each pid namespace it is in, outermost (this procfs's) first.
    pub nspid: Vec<u32>,
    /// Unset when the links could not be read (see `namespaces_error`).
    pub namespaces: Option<Namespaces>,
    /// Why the namespace links could not be read.
    pub namespaces_error: Option<String>,
    pub cgroups: Vec<CgroupEntry>,
    /// A kernel thread (no user space, always in the initial namespaces).
    pub kernel_thread: bool,
}

/// `PF_KTHREAD` in the `flags` field of `/proc/PID/stat`.
const PF_KTHREAD: u64 = 0x0020_0000;

impl Process {
    /// Reads process `pid` under `proc_root`.
    pub fn read(proc_root: &Path, pid: u32) -> Result<Process, ProcessError> {
        let dir = proc_root.join(pid.to_string());
        let read = |name: &str| -> Result<String, ProcessError> {
            let path = dir.join(name);
            std::fs::read(&path)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .map_err(|e| ProcessError::from_io(pid, &path, e))
        };
        let stat_path = dir.join("stat");
        let stat = parse_stat(&read("stat")?).ok_or_else(|| ProcessError::Malformed {
            path: stat_path,
            what: "not a stat line".into(),
        })?;
        let status_path = dir.join("status");
        let status = parse_status(&read("status")?).ok_or_else(|| ProcessError::Malformed {
            path: status_path,
            what: "no Uid/Gid/Cap lines".into(),
        })?;
        let cgroups = match read("cgroup") {
            Ok(text) => parse_cgroup(&text),
            Err(ProcessError::Vanished { pid }) => return Err(ProcessError::Vanished { pid }),
            Err(_) => Vec::new(),
        };
        // argv of another user's process is readable; of a non-dumpable one it may be empty.
        let cmdline = match read("cmdline") {
            Ok(text) => text
                .split('\0')
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
            Err(ProcessError::Vanished { pid }) => return Err(ProcessError::Vanished { pid }),
            Err(_) => Vec::new(),
        };
        let exe = std::fs::read_link(dir.join("exe")).ok();
        let kernel_thread = stat.flags & PF_KTHREAD != 0;
        let (namespaces, namespaces_error) = if kernel_thread {
            (None, None)
        } else {
            match Namespaces::read(&dir, pid) {
                Ok(ns) => (Some(ns), None),
                Err(ProcessError::Vanished { pid }) => {
                    return Err(ProcessError::Vanished { pid });
                }
                Err(e) => (None, Some(e.to_string())),
            }
        };
        Ok(Process {
            pid,
            ppid: stat.ppid,
            start_time: stat.start_time,
            comm: stat.comm,
            cmdline,
            exe,
            uid: status.uid,
            gid: status.gid,
            caps: status.caps,
            no_new_privs: status.no_new_privs,
            seccomp: status.seccomp,
            nspid: status.nspid,
            namespaces,
            namespaces_error,
            cgroups,
            kernel_thread,
        })
    }

    /// The process's directory under `proc_root`.
    pub fn dir(&self, proc_root: &Path) -> PathBuf {
        proc_root.join(self.pid.to_string())
    }

    /// The file name of the executable, or the command name when the exe link is unreadable.
    pub fn program(&self) -> String {
        self.exe
            .as_deref()
            .and_then(Path::file_name)
            .map(|n| {
                n.to_string_lossy()
                    .trim_end_matches(" (deleted)")
                    .to_owned()
            })
            .unwrap_or_else(|| self.comm.clone())
    }

    /// The command line for a person: argv joined, or `[comm]` for a process without one.
    pub fn command(&self) -> String {
        if self.cmdline.is_empty() {
            format!("[{}]", self.comm)
        } else {
            self.cmdline.join(" ")
        }
    }
}

/// The fields of `/proc/PID/stat` used here.
#[derive(Debug, PartialEq, Eq)]
struct Stat {
    comm: String,
    ppid: u32,
    flags: u64,
    start_time: u64,
}

/// Parses `pid (comm) state ppid … flags … starttime …`. The command name may hold spaces and
/// parentheses, so fields are counted from its last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 1..)?.split_whitespace().collect();
    // fields[0] is field 3 (state): field n is fields[n - 3].
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        flags: fields.get(6)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The fields of `/proc/PID/status` used here.
#[derive(Debug, Default, PartialEq, Eq)]
struct Status {
    uid: Ids,
    gid: Ids,
    caps: CapSets,
    no_new_privs: Option<bool>,
    seccomp: Option<SeccompMode>,
    nspid: Vec<u32>,
}

fn parse_status(text: &str) -> Option<Status> {
    let mut s = Status::default();
    let (mut have_uid, mut have_gid, mut have_caps) = (false, false, false);
    let ids = |v: &str| -> Option<Ids> {
        let mut it = v.split_whitespace().map(|x| x.parse::<u32>());
        Some(Ids {
            real: it.next()?.ok()?,
            effective: it.next()?.ok()?,
        })
    };
    let hex = |v: &str| u64::from_str_radix(v.trim(), 16).ok();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let value = value.trim();
        match key {
            "Uid" => {
                s.uid = ids(value)?;
                have_uid = true;
            }
            "Gid" => {
                s.gid = ids(value)?;
                have_gid = true;
            }
            "CapEff" => {
                s.caps.effective = hex(value)?;
                have_caps = true;
            }
            "CapPrm" => s.caps.permitted = hex(value)?,
            "CapBnd" => s.caps.bounding = hex(value)?,
            "CapAmb" => s.caps.ambient = hex(value)?,
            "NoNewPrivs" => s.no_new_privs = Some(value == "1"),
            "Seccomp" => {
                s.seccomp = match value {
                    "0" => Some(SeccompMode::Disabled),
                    "1" => Some(SeccompMode::Strict),
                    "2" => Some(SeccompMode::Filter),
                    _ => None,
                }
            }
            "NSpid" => {
                s.nspid = value
                    .split_whitespace()
                    .filter_map(|p| p.parse().ok())
                    .collect()
            }
            _ => {}
        }
    }
    (have_uid && have_gid && have_caps).then_some(s)
}

/// Parses `/proc/PID/cgroup`.
pub fn parse_cgroup(text: &str) -> Vec<CgroupEntry> {
    text.lines()
        .filter_map(|line| {
            let mut parts = line.splitn(3, ':');
            let hierarchy = parts.next()?.parse().ok()?;
            let controllers = parts
                .next()?
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect();
            let path = parts.next()?.to_owned();
            Some(CgroupEntry {
                hierarchy,
                controllers,
                path,
            })
        })
        .collect()
}

/// The uid inside the container of host uid `host_uid`, through process `pid`'s uid map.
pub fn container_uid(proc_root: &Path, pid: u32, host_uid: u32) -> Option<u32> {
    let map = std::fs::read_to_string(proc_root.join(pid.to_string()).join("uid_map")).ok()?;
    map.lines().find_map(|line| {
        let mut f = line.split_whitespace().map(|x| x.parse::<u64>().ok());
        let (inside, outside, count) = (f.next()??, f.next()??, f.next()??);
        let h = u64::from(host_uid);
        (outside <= h && h < outside + count)
            .then(|| u32::try_from(inside + (h - outside)).ok())
            .flatten()
    })
}

/// Every pid under `proc_root` (numeric directory names), ascending.
pub fn list_pids(proc_root: &Path) -> io::Result<Vec<u32>> {
    let mut pids: Vec<u32> = std::fs::read_dir(proc_root)?
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable();
    Ok(pids)
}

/// The NUL-separated entries of `/proc/PID/environ` (or any such file).
pub fn split_nul(bytes: &[u8]) -> Vec<String> {
    bytes
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s).into_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_with_a_hostile_command_name() {
        let line = "4242 (a) b (c)) S 17 4242 4242 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 98765 1 2";
        let s = parse_stat(line).unwrap();
        assert_eq!(s.comm, "a) b (c)");
        assert_eq!((s.ppid, s.start_time), (17, 98765));
        assert_eq!(s.flags & PF_KTHREAD, 0);
        let kthread = "2 (kthreadd) S 0 0 0 0 -1 2129984 0 0 0 0 0 0 0 0 20 0 1 0 11 0 0";
        assert_ne!(parse_stat(kthread).unwrap().flags & PF_KTHREAD, 0);
        assert_eq!(parse_stat("42 (x) S 1"), None);
    }

    #[test]
    fn status_fields() {
        let text = "Name:\tsleep\nUid:\t0\t0\t0\t0\nGid:\t1000\t1000\t1000\t1000\n\
                    NSpid:\t7400\t1\nCapInh:\t0000000000000000\nCapPrm:\t0000000020000420\n\
                    CapEff:\t0000000020000420\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n\
                    NoNewPrivs:\t1\nSeccomp:\t2\nSeccomp_filters:\t1\n";
        let s = parse_status(text).unwrap();
        assert_eq!(
            s.uid,
            Ids {
                real: 0,
                effective: 0
            }
        );
        assert_eq!(s.gid.effective, 1000);
        assert_eq!(s.caps.effective, 0x2000_0420);
        assert_eq!(s.caps.bounding, 0x1ff_ffff_ffff);
        assert_eq!(s.no_new_privs, Some(true));
        assert_eq!(s.seccomp, Some(SeccompMode::Filter));
        assert_eq!(s.nspid, vec![7400, 1]);
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn cgroup_lines_v1_and_v2() {
        let e = parse_cgroup("4:memory:/docker/abc\n1:name=systemd:/x\n0::/a:b\n");
        assert_eq!(e.len(), 3);
        assert_eq!(e[0].controllers, vec!["memory"]);
        assert_eq!(e[1].controllers, vec!["name=systemd"]);
        assert_eq!((e[2].hierarchy, e[2].path.as_str()), (0, "/a:b"));
        assert!(e[2].controllers.is_empty());
    }

    #[test]
    fn namespace_links() {
        assert_eq!(
            parse_ns_link("pid:[4026531836]", NsKind::Pid),
            Some(4026531836)
        );
        assert_eq!(parse_ns_link("net:[1]", NsKind::Pid), None);
        let dir = tempfile::tempdir().unwrap();
        let ns = dir.path().join("ns");
        std::fs::create_dir(&ns).unwrap();
        std::os::unix::fs::symlink("pid:[7]", ns.join("pid")).unwrap();
        std::os::unix::fs::symlink("mnt:[8]", ns.join("mnt")).unwrap();
        let read = Namespaces::read(dir.path(), 1).unwrap();
        assert_eq!(read.get(NsKind::Pid), Some(7));
        assert_eq!(read.get(NsKind::Net), None);
        let mut other = read;
        other.set(NsKind::Pid, 9);
        assert!(read.same(&read, NsKind::Mnt) && !read.same(&other, NsKind::Pid));
        assert!(!read.same(&read, NsKind::Net), "unknown is never the same");
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        let p = Process::read(Path::new("/proc"), me).unwrap();
        assert_eq!(p.pid, me);
        assert!(!p.kernel_thread);
        assert_eq!(p.nspid.first(), Some(&me));
        assert!(p.namespaces.is_some(), "{:?}", p.namespaces_error);
        assert!(matches!(
            Process::read(Path::new("/proc"), u32::MAX),
            Err(ProcessError::Vanished { .. })
        ));
    }
}
