//! Containers of the OCI runtime interface on disk: one directory per id under the runtime's
//! root (`--root`, default `/run/rsafe-runtime`), holding `state.json` and, until `start`, the
//! socket the container's first process waits on.
//!
//! The status is never stored, it is read from the world: no process (or another process with
//! the same pid, told apart by its start time) → `stopped`; its cgroup frozen → `paused`; the
//! start socket still there → `created`; otherwise `running`. A runtime killed at any point leaves nothing `list` and
//! `delete` cannot see.

use std::collections::BTreeMap;
use std::io;
use std::path::{Path, PathBuf};

use super::bundle::Hook;
use crate::runtime::cgroups::Cgroup;
use crate::runtime::idmap::IdMap;
use crate::runtime::landlock::FsAccess;
use crate::runtime::signal::FirstProcess;
use crate::runtime::spec::Confinement;
#[cfg(test)]
use crate::runtime::state::process_start_time;

/// The runtime-spec version rsafe implements.
pub const OCI_VERSION: &str = "1.2.0";

/// Why a container's state cannot be had.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("container {0} does not exist")]
    NotFound(String),
    #[error("container {0} already exists")]
    Exists(String),
    #[error("invalid container id {0:?}: use letters, digits, '_', '-' and '.', at most 1024")]
    BadId(String),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: damaged state: {message}")]
    Damaged { path: PathBuf, message: String },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StateError + '_ {
    move |source| StateError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The status the runtime-spec defines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Creating,
    Created,
    Running,
    /// Frozen by `pause` (the cgroup freezer), until `resume`.
    Paused,
    Stopped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Creating => "creating",
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopped => "stopped",
        }
    }
}

/// What `create` records.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub id: String,
    pub pid: i32,
    /// The pid's start time (clock ticks after boot): a recycled pid is not the container.
    pub start_time: u64,
    pub bundle: PathBuf,
    pub annotations: BTreeMap<String, String>,
    /// RFC 3339 creation time.
    pub created: String,
    pub owner: u32,
    pub cgroup: Option<Cgroup>,
    /// The limits written to the cgroup (the bundle's, then `update`'s on top).
    #[serde(default)]
    pub resources: super::bundle::Resources,
    /// Where rsafe's floor changed the bundle (see [`super::bundle::Bundle::floor`]).
    pub floor: Vec<String>,
    /// Whether the container runs startContainer hooks (`start` waits for them).
    #[serde(default)]
    pub start_hooks: bool,
    /// The poststart hooks, run by `start` (as the bundle said at `create`).
    #[serde(default)]
    pub poststart: Vec<Hook>,
    /// The poststop hooks, run by `delete`.
    #[serde(default)]
    pub poststop: Vec<Hook>,
    /// Whether the container's first process said it is set up (until then: `creating`).
    #[serde(default)]
    pub ready: bool,
    /// What `exec` gives a new process: the container's id map, confinement and landlock
    /// file access, never more.
    pub idmap: IdMap,
    pub confinement: Confinement,
    /// rsafe's default profile stacked on the bundle's (see [`super::bundle::Bundle`]).
    #[serde(default)]
    pub floor_seccomp: Option<crate::runtime::seccomp::SeccompProfile>,
    /// The profile of the policy the bundle named (`rsafe.policy=NAME`), stacked too.
    #[serde(default)]
    pub policy_seccomp: Option<crate::runtime::seccomp::SeccompProfile>,
    pub landlock_fs: FsAccess,
    /// The bundle's notified syscalls: an `exec`'d process gets their filter too.
    #[serde(default)]
    pub seccomp_notify: Option<super::bundle::SeccompNotify>,
    /// The denial reporter of a policy that reports its denials ([`super::reporter`]):
    /// `delete` kills it if it still runs.
    #[serde(default)]
    pub reporter: Option<super::reporter::ReporterRecord>,
}

/// The runtime-spec state document (`rsafe-runtime state ID`), plus rsafe's own fields.
#[derive(Debug, Clone, serde::Serialize)]
pub struct OciState {
    #[serde(rename = "ociVersion")]
    pub oci_version: String,
    pub id: String,
    pub status: Status,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    pub bundle: PathBuf,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// runc's extra fields, which podman and the containerd shim read.
    #[serde(rename = "rootfs", skip_serializing_if = "Option::is_none")]
    pub rootfs: Option<PathBuf>,
    pub created: String,
    pub owner: String,
    /// Where the bundle got other confinement than it asked for.
    #[serde(rename = "rsafe.floor")]
    pub floor: Vec<String>,
}

/// The runtime's root directory.
#[derive(Debug, Clone)]
pub struct RuntimeRoot {
    pub path: PathBuf,
}

/// A container's directory under the root.
#[derive(Debug, Clone)]
pub struct ContainerDir {
    pub id: String,
    pub path: PathBuf,
}

impl RuntimeRoot {
    /// `--root`, or `/run/rsafe-runtime` for root and `$XDG_RUNTIME_DIR/rsafe-runtime` (else
    /// `/tmp/rsafe-runtime-UID`) for others, as runc does.
    pub fn new(flag: Option<&Path>) -> RuntimeRoot {
        let path = match flag {
            Some(p) => p.to_path_buf(),
            None if super::host_root() => PathBuf::from("/run/rsafe-runtime"),
            None => match std::env::var_os("XDG_RUNTIME_DIR") {
                Some(d) if !d.is_empty() => PathBuf::from(d).join("rsafe-runtime"),
                _ => PathBuf::from(format!("/tmp/rsafe-runtime-{}", nix::unistd::geteuid())),
            },
        };
        RuntimeRoot { path }
    }

    /// The directory of container `id` (which must be a valid id).
    pub fn container(&self, id: &str) -> Result<ContainerDir, StateError> {
        check_id(id)?;
        Ok(ContainerDir {
            id: id.to_string(),
            path: self.path.join(id),
        })
    }

    /// Makes the directory of a new container `id`; fails if it exists.
    pub fn create(&self, id: &str) -> Result<ContainerDir, StateError> {
        let dir = self.container(id)?;
        if !self.path.exists() {
            std::fs::create_dir_all(&self.path).map_err(io_err(&self.path))?;
            set_mode(&self.path, 0o711)?;
        }
        match std::fs::create_dir(&dir.path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(StateError::Exists(id.to_string()));
            }
            Err(e) => return Err(io_err(&dir.path)(e)),
        }
        // The container's first process (an unprivileged host id) passes through to its mount
        // point, `rootfs/`; it can read or write nothing here (the start socket reaches it as a
        // descriptor).
        set_mode(&dir.path, 0o711)?;
        let mount_point = dir.mount_point();
        std::fs::create_dir(&mount_point).map_err(io_err(&mount_point))?;
        set_mode(&mount_point, 0o755)?;
        Ok(dir)
    }

    /// Every container directory, by id.
    pub fn list(&self) -> Result<Vec<ContainerDir>, StateError> {
        let entries = match std::fs::read_dir(&self.path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.path)(e)),
        };
        let mut out: Vec<ContainerDir> = entries
            .filter_map(Result::ok)
            .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
            .filter_map(|e| {
                let id = e.file_name().to_str()?.to_string();
                check_id(&id).ok()?;
                Some(ContainerDir { id, path: e.path() })
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

fn set_mode(path: &Path, mode: u32) -> Result<(), StateError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(io_err(path))
}

/// runc's rule for ids: they become file names.
pub fn check_id(id: &str) -> Result<(), StateError> {
    let ok = !id.is_empty()
        && id.len() <= 1024
        && id != "."
        && id != ".."
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b'+'));
    if ok {
        Ok(())
    } else {
        Err(StateError::BadId(id.to_string()))
    }
}

impl ContainerDir {
    pub fn state_file(&self) -> PathBuf {
        self.path.join("state.json")
    }

    /// The socket the container's first process waits on until `start`.
    pub fn start_socket(&self) -> PathBuf {
        self.path.join("start.sock")
    }

    /// Listens on the start socket. Named through a descriptor of the directory
    /// (`/proc/self/fd/N/start.sock`): a socket's path may have only 107 bytes, and a runtime
    /// root like `$XDG_RUNTIME_DIR/rsafe-runtime/<64 hex>/` can be longer.
    pub fn bind_start_socket(&self) -> io::Result<std::os::unix::net::UnixListener> {
        self.bind_socket("start.sock")
    }

    /// Connects to the start socket (named as in [`Self::bind_start_socket`]).
    pub fn connect_start_socket(&self) -> io::Result<std::os::unix::net::UnixStream> {
        self.connect_socket("start.sock")
    }

    /// Listens on the socket `name` in this directory (named as the start socket is).
    pub fn bind_socket(&self, name: &str) -> io::Result<std::os::unix::net::UnixListener> {
        let dir = std::fs::File::open(&self.path)?;
        let path = format!(
            "/proc/self/fd/{}/{name}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        );
        std::os::unix::net::UnixListener::bind(path)
    }

    /// Connects to the socket `name` in this directory.
    pub fn connect_socket(&self, name: &str) -> io::Result<std::os::unix::net::UnixStream> {
        let dir = std::fs::File::open(&self.path)?;
        let path = format!(
            "/proc/self/fd/{}/{name}",
            std::os::fd::AsRawFd::as_raw_fd(&dir)
        );
        std::os::unix::net::UnixStream::connect(path)
    }

    /// Where the container's first process mounts its root filesystem (in its own mount
    /// namespace; on the host it stays an empty directory).
    pub fn mount_point(&self) -> PathBuf {
        self.path.join("rootfs")
    }

    /// Whether the container has been created far enough to have a state.
    pub fn exists(&self) -> bool {
        self.path.is_dir()
    }

    /// Writes the record atomically.
    pub fn save(&self, record: &Record) -> Result<(), StateError> {
        let path = self.state_file();
        let tmp = self.path.join(".state.json.tmp");
        let bytes = serde_json::to_vec_pretty(record).map_err(|e| StateError::Damaged {
            path: path.clone(),
            message: e.to_string(),
        })?;
        std::fs::write(&tmp, bytes).map_err(io_err(&tmp))?;
        std::fs::rename(&tmp, &path).map_err(io_err(&path))
    }

    /// The record `create` wrote; `None` while `create` is still working (or was killed
    /// before it got that far).
    pub fn load(&self) -> Result<Option<Record>, StateError> {
        let path = self.state_file();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                if self.exists() {
                    return Ok(None);
                }
                return Err(StateError::NotFound(self.id.clone()));
            }
            Err(e) => return Err(io_err(&path)(e)),
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| StateError::Damaged {
                path,
                message: e.to_string(),
            })
    }

    /// The status, read from the world (see the module documentation).
    pub fn status(&self, record: Option<&Record>) -> Status {
        let Some(record) = record else {
            return Status::Creating;
        };
        if !record.is_alive() {
            return Status::Stopped;
        }
        if !record.ready {
            return Status::Creating;
        }
        if record.cgroup.as_ref().is_some_and(Cgroup::frozen) {
            return Status::Paused;
        }
        if self.start_socket().exists() {
            Status::Created
        } else {
            Status::Running
        }
    }

    /// The runtime-spec state document.
    pub fn oci_state(&self) -> Result<OciState, StateError> {
        let record = self.load()?;
        let status = self.status(record.as_ref());
        let Some(r) = record else {
            return Ok(OciState {
                oci_version: OCI_VERSION.to_string(),
                id: self.id.clone(),
                status,
                pid: None,
                bundle: PathBuf::new(),
                annotations: BTreeMap::new(),
                rootfs: None,
                created: String::new(),
                owner: String::new(),
                floor: Vec::new(),
            });
        };
        Ok(OciState {
            oci_version: OCI_VERSION.to_string(),
            id: self.id.clone(),
            status,
            pid: (status != Status::Stopped).then_some(r.pid),
            rootfs: None,
            bundle: r.bundle,
            annotations: r.annotations,
            created: r.created,
            owner: nix::unistd::User::from_uid(r.owner.into())
                .ok()
                .flatten()
                .map_or_else(|| r.owner.to_string(), |u| u.name),
            floor: r.floor,
        })
    }

    /// Removes the directory.
    pub fn remove(&self) -> Result<(), StateError> {
        match std::fs::remove_dir_all(&self.path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(&self.path)(e)),
        }
    }
}

impl Record {
    /// A record of a container `id` whose first process is `pid` (started at `start_time`).
    #[cfg(test)]
    pub fn for_test(id: &str, pid: i32, start_time: u64) -> Record {
        Record {
            id: id.into(),
            pid,
            start_time,
            bundle: "/b".into(),
            annotations: BTreeMap::new(),
            created: rfc3339_now(),
            owner: 0,
            cgroup: None,
            resources: Default::default(),
            floor: vec![],
            start_hooks: false,
            poststart: vec![],
            poststop: vec![],
            ready: true,
            idmap: super::test_root_map(),
            confinement: Confinement::from_policy(
                &crate::runtime::policy::Policy::default_policy(),
                false,
            ),
            floor_seccomp: None,
            policy_seccomp: None,
            landlock_fs: FsAccess::default(),
            seccomp_notify: None,
            reporter: None,
        }
    }

    /// Whether the container's first process is still the one `create` started (and not a
    /// zombie: its parent, the caller, reaps it).
    pub fn is_alive(&self) -> bool {
        self.first_process().is_alive()
    }

    /// The container's first process as `create` recorded it (what `kill` and `delete`
    /// signal through [`crate::runtime::signal`]).
    pub fn first_process(&self) -> FirstProcess {
        FirstProcess {
            pid: self.pid,
            start: self.start_time,
        }
    }
}

/// Now as RFC 3339 UTC with nanoseconds, as runc writes `created`.
pub fn rfc3339_now() -> String {
    crate::runtime::clock::rfc3339(std::time::SystemTime::now())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_file_names() {
        for ok in ["abc", "6debf3f0e2ff", "k8s_pod-1.x", "a+b"] {
            check_id(ok).unwrap();
        }
        for bad in ["", ".", "..", "a/b", "a b", "x\n"] {
            assert!(check_id(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_container_being_created_has_no_record_and_a_missing_one_is_not_found() {
        let root = tempfile::tempdir().unwrap();
        let rt = RuntimeRoot {
            path: root.path().join("rt"),
        };
        let dir = rt.create("c1").unwrap();
        assert!(matches!(rt.create("c1"), Err(StateError::Exists(_))));
        assert!(dir.load().unwrap().is_none());
        assert_eq!(dir.oci_state().unwrap().status, Status::Creating);
        let missing = rt.container("nope").unwrap();
        assert!(matches!(missing.load(), Err(StateError::NotFound(_))));
        assert_eq!(rt.list().unwrap().len(), 1);
    }

    #[test]
    fn a_dead_pid_is_stopped() {
        let root = tempfile::tempdir().unwrap();
        let rt = RuntimeRoot {
            path: root.path().to_path_buf(),
        };
        let dir = rt.create("c").unwrap();
        let record = Record::for_test("c", std::process::id() as i32, 1);
        dir.save(&record).unwrap();
        // This process, with another start time: a recycled pid.
        let s = dir.oci_state().unwrap();
        assert_eq!(s.status, Status::Stopped);
        assert_eq!(s.pid, None);
        let alive = Record {
            start_time: process_start_time(std::process::id() as i32).unwrap(),
            ..record
        };
        dir.save(&alive).unwrap();
        assert_eq!(dir.oci_state().unwrap().status, Status::Running);
    }
}
