//! Pruning: which containers, volumes and networks nothing uses, how much room they take, and
//! their removal, for `rsafe container prune`, `volume prune`, `network prune`, `system prune`
//! and `system df` (the images and the layer cache are the image store's: see `cli::prune`).
//!
//! A container is removed only while its rsafe is provably done with it: prune takes the
//! container's start lock (the one its rsafe or monitor holds for its whole life, and that
//! `rsafe start` and `rsafe create` take before anything else), reads its state again under
//! that lock, and moves the directory out of `containers/` (to `containers/.prune-<id>`) before
//! removing it, so that `ps -a`, `rm` and `start` see the whole container or nothing. A removal
//! that fails is moved back, for `ps -a` to show and `rm` to finish; one whose prune was
//! killed is finished by the next prune.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use super::helper;
use super::idmap::IdMap;
use super::netstore::{HolderRecord, NetStore, NetStoreError, NetworkDef};
use super::state::{self, ContainerDir, Phase, State, StateError, Status};
use super::volume::{VolumeError, Volumes};

/// What can go wrong while pruning.
#[derive(Debug, thiserror::Error)]
pub enum PruneError {
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Volume(#[from] VolumeError),
    #[error(transparent)]
    Network(#[from] NetStoreError),
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
}

type Result<T, E = PruneError> = std::result::Result<T, E>;

/// A container directory without `state.json` younger than this is being made: its rsafe
/// makes the directory and takes its start lock a moment later, and prune must not take the
/// lock in between. (An older one is what a `kill -9` of rsafe left.)
pub const MAKING_GRACE: Duration = Duration::from_secs(30);

/// Where a container being removed by prune lies meanwhile (not a container id: [`state::list`]
/// does not see it).
const PRUNING_PREFIX: &str = ".prune-";

/// One thing prune removed, and the bytes it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Removed {
    pub name: String,
    pub bytes: u64,
}

/// What a prune removed, and what it could not (each with the reason, in one line).
#[derive(Debug, Default)]
pub struct Report {
    pub removed: Vec<Removed>,
    pub failed: Vec<String>,
}

impl Report {
    /// The bytes of everything removed.
    pub fn bytes(&self) -> u64 {
        self.removed.iter().map(|r| r.bytes).sum()
    }
}

/// A container as `system df` weighs it.
#[derive(Debug, Clone)]
pub struct ContainerUsage {
    pub state: State,
    pub phase: Phase,
    /// Bytes of its directory (writable layer, log, state), as [`dir_bytes`] counts them.
    pub bytes: u64,
    /// `container prune` would remove it now.
    pub prunable: bool,
}

/// Whether `container prune` takes this container, at a glance (it checks again under the
/// container's lock): stopped (exited, created and never started, or dead: its rsafe was
/// killed), created before `until` (seconds since the epoch) when given, and not being made.
pub fn is_prunable(dir: &ContainerDir, state: &State, until: Option<u64>) -> bool {
    let stopped = matches!(
        dir.phase(state),
        Phase::Exited(_) | Phase::Created | Phase::Dead
    ) && !dir.is_locked();
    stopped && until.is_none_or(|t| state.created < t) && !being_made(dir)
}

/// Whether `dir` has no `state.json` yet and was made less than [`MAKING_GRACE`] ago.
fn being_made(dir: &ContainerDir) -> bool {
    if dir.state_file().symlink_metadata().is_ok() {
        return false;
    }
    let modified = dir.path.symlink_metadata().and_then(|m| m.modified());
    modified.is_ok_and(|t| {
        SystemTime::now()
            .duration_since(t)
            .is_ok_and(|age| age < MAKING_GRACE)
            || t > SystemTime::now()
    })
}

/// Whether a container whose start lock this process holds may go: nothing runs it.
fn stopped_under_lock(state: &State) -> bool {
    match state.status {
        Status::Exited { .. } | Status::Created if state.damaged.is_none() => true,
        _ => !state.is_alive(),
    }
}

/// Every container of the store with its size and whether prune would take it.
pub fn container_usage(store_root: &Path) -> Result<Vec<ContainerUsage>> {
    state::sweep(store_root)?;
    let mut out = Vec::new();
    for (dir, state) in state::list(store_root)? {
        out.push(ContainerUsage {
            phase: dir.phase(&state),
            prunable: is_prunable(&dir, &state, None),
            bytes: dir_bytes(&dir.path, &state.idmap),
            state,
        });
    }
    Ok(out)
}

/// Removes every stopped container created before `until` (see [`is_prunable`]) with its
/// writable layer and cgroup; a running or starting one is never touched. First finishes the
/// removals of a prune that was killed.
pub fn prune_containers(store_root: &Path, until: Option<u64>) -> Result<Report> {
    let mut report = Report::default();
    finish_killed_prunes(store_root, &mut report);
    // A dead `--rm` container is removed, as its rsafe would have done; it is not reported.
    state::sweep(store_root)?;
    for (dir, state) in state::list(store_root)? {
        if !is_prunable(&dir, &state, until) {
            continue;
        }
        match prune_one(store_root, &dir, until) {
            Ok(Some(removed)) => report.removed.push(removed),
            Ok(None) => {}
            Err(e) => report
                .failed
                .push(format!("container {}: {e}", state.short_id())),
        }
    }
    Ok(report)
}

/// Removes one container if, once its start lock is held, it is still stopped; `None` when
/// it is not (it was started, is being made or removed meanwhile).
fn prune_one(store_root: &Path, dir: &ContainerDir, until: Option<u64>) -> Result<Option<Removed>> {
    let Some(lock) = dir.try_lock_existing()? else {
        return Ok(None);
    };
    let Some(state) = dir.load_state() else {
        return Ok(None);
    };
    let still =
        stopped_under_lock(&state) && until.is_none_or(|t| state.created < t) && !being_made(dir);
    if !still {
        return Ok(None);
    }
    let bytes = dir_bytes(&dir.path, &state.idmap);
    let aside = ContainerDir {
        id: dir.id.clone(),
        path: state::containers_dir(store_root).join(format!("{PRUNING_PREFIX}{}", dir.id)),
    };
    std::fs::rename(&dir.path, &aside.path).map_err(|source| PruneError::Io {
        path: dir.path.clone(),
        source,
    })?;
    if let Err(e) = state::remove_container(&aside, &state) {
        // Back where `ps -a` shows it and `rm` removes the rest.
        let _ = std::fs::rename(&aside.path, &dir.path);
        return Err(e.into());
    }
    drop(lock);
    Ok(Some(Removed {
        name: state.id,
        bytes,
    }))
}

/// What a killed prune left in `containers/.prune-<id>` (hidden from `ps -a`), removed:
/// `ps -a` calls this beside its sweep, so it never waits for the next prune.
pub fn finish_killed(store_root: &Path) {
    finish_killed_prunes(store_root, &mut Report::default());
}

/// Removes what a killed prune left in `containers/.prune-<id>` (unless its prune still runs:
/// it holds the lock inside).
fn finish_killed_prunes(store_root: &Path, report: &mut Report) {
    let Ok(entries) = std::fs::read_dir(state::containers_dir(store_root)) else {
        return;
    };
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(id) = name.strip_prefix(PRUNING_PREFIX) else {
            continue;
        };
        let dir = ContainerDir {
            id: id.to_string(),
            path: entry.path(),
        };
        let Ok(Some(_lock)) = dir.try_lock_existing() else {
            continue;
        };
        let Some(state) = dir.load_state() else {
            continue;
        };
        if let Err(e) = state::remove_container(&dir, &state) {
            report.failed.push(format!("{}: {e}", dir.path.display()));
        }
    }
}

/// Bytes of file data under `path`, as `du --apparent-size` counts regular files (overlayfs's
/// scratch `work/` left out: it is empty but for its own marker). Read as the caller, or, when
/// some of it is closed to the caller (files of a rootless container's other ids), as the
/// container's root through `idmap`.
pub fn dir_bytes(path: &Path, idmap: &IdMap) -> u64 {
    let (bytes, complete) = walk_bytes(path);
    if complete || idmap.is_single() || nix::unistd::geteuid().is_root() {
        return bytes;
    }
    let path = path.to_path_buf();
    match helper::as_container_root(idmap, move || Ok(walk_bytes(&path).0)) {
        Ok(Ok(all)) => all,
        _ => bytes,
    }
}

/// The bytes [`dir_bytes`] counts, and whether every directory could be read.
fn walk_bytes(path: &Path) -> (u64, bool) {
    let mut bytes = 0;
    let mut complete = true;
    let walk = walkdir::WalkDir::new(path)
        .follow_links(false)
        .into_iter()
        .filter_entry(|e| !(e.depth() == 1 && e.file_name() == "work"));
    for entry in walk {
        match entry {
            Ok(e) if e.file_type().is_file() => match e.metadata() {
                Ok(m) => bytes += m.len(),
                Err(_) => complete = false,
            },
            Ok(_) => {}
            Err(e)
                if e.io_error()
                    .is_some_and(|e| e.kind() == io::ErrorKind::NotFound) => {}
            Err(_) => complete = false,
        }
    }
    (bytes, complete)
}

/// A volume as `system df` weighs it.
#[derive(Debug, Clone)]
pub struct VolumeUsage {
    pub name: String,
    /// How many containers of the store (running or stopped) mount it.
    pub links: usize,
    pub bytes: u64,
    /// Made for a container with no name given: plain `volume prune` removes it once unused.
    pub anonymous: bool,
}

/// Every volume with the containers mounting it and its size.
pub fn volume_usage(store_root: &Path) -> Result<Vec<VolumeUsage>> {
    let volumes = Volumes::of_store(store_root);
    let containers: Vec<State> = state::list(store_root)?
        .into_iter()
        .map(|(_, s)| s)
        .collect();
    let idmap = IdMap::for_this_process();
    let mut out = Vec::new();
    for volume in volumes.list()? {
        out.push(VolumeUsage {
            links: containers
                .iter()
                .filter(|s| s.volumes.contains(&volume.name))
                .count(),
            bytes: dir_bytes(&volume.dir, &idmap),
            anonymous: volume.anonymous,
            name: volume.name,
        });
    }
    Ok(out)
}

/// Removes the anonymous volumes no container of the store mounts, running or stopped, and
/// with `all` the named ones too: docker's (23+) plain `volume prune` and `volume prune -a`. A
/// `--rm` container whose rsafe was killed is removed first, as its rsafe would have done, so
/// its anonymous volumes go. One a container claims meanwhile is left, as `volume rm` leaves it.
pub fn prune_volumes(store_root: &Path, all: bool) -> Result<Report> {
    let volumes = Volumes::of_store(store_root);
    let idmap = IdMap::for_this_process();
    let mut report = Report::default();
    state::sweep(store_root)?;
    for usage in volume_usage(store_root)? {
        if usage.links > 0 || !(all || usage.anonymous) {
            continue;
        }
        match volumes.remove(store_root, &usage.name, &idmap) {
            Ok(()) => report.removed.push(Removed {
                name: usage.name,
                bytes: usage.bytes,
            }),
            Err(
                VolumeError::InUse { .. } | VolumeError::Starting(_) | VolumeError::NotFound(_),
            ) => {}
            Err(e) => report.failed.push(e.to_string()),
        }
    }
    Ok(report)
}

/// Removes the networks no running container is on (what `network rm` allows: docker's
/// `network prune` too keeps only those with a running container), and returns each with its
/// recorded holder: its bridge and rules, or its rootless holder, are the caller's to remove.
pub fn prune_networks(store_root: &Path) -> Result<Vec<(NetworkDef, Option<HolderRecord>)>> {
    let nets = NetStore::new(store_root);
    let mut out = Vec::new();
    for def in nets.list()? {
        match nets.remove(&def.name) {
            Ok(removed) => out.push(removed),
            Err(NetStoreError::InUse { .. } | NetStoreError::NotFound(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Ok(out)
}

/// The cached layers containers of the store run on, running or stopped: `rsafe start`
/// needs them again.
pub fn layers_in_use(store_root: &Path) -> Result<BTreeSet<crate::image::Digest>> {
    Ok(state::list(store_root)?
        .iter()
        .flat_map(|(_, s)| s.layers.iter())
        .filter_map(|l| crate::image::unpack::LayerCache::diff_id_of(l))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::idmap::{IdRange, MapWriter};

    fn idmap() -> IdMap {
        let me = nix::unistd::geteuid().as_raw();
        let one = IdRange {
            container: 0,
            host: me,
            size: 1,
        };
        IdMap {
            uids: vec![one],
            gids: vec![one],
            writer: MapWriter::Direct,
            setgroups: false,
        }
    }

    fn container(store: &Path, status: Status, created: u64) -> ContainerDir {
        let dir = ContainerDir::create(store, (0, 0)).unwrap();
        let state = State {
            id: dir.id.clone(),
            name: None,
            image: "./rootfs".into(),
            command: vec!["true".into()],
            created,
            status,
            pid: None,
            owner: nix::unistd::geteuid().as_raw(),
            idmap: idmap(),
            cgroup: None,
            boot_id: None,
            volumes: Vec::new(),
            layers: Vec::new(),
            oom_killed: false,
            auto_remove: false,
            ports: Vec::new(),
            damaged: None,
        };
        // As `run` and `create` leave it: a lock file, released.
        drop(dir.lock("c").unwrap());
        dir.save(&state).unwrap();
        dir
    }

    #[test]
    fn stopped_containers_go_with_their_bytes_and_locked_ones_stay() {
        let store = tempfile::tempdir().unwrap();
        let exited = container(store.path(), Status::Exited { code: 0 }, 10);
        std::fs::write(exited.upper().join("big"), vec![7u8; 5000]).unwrap();
        let created = container(store.path(), Status::Created, 10);
        let starting = container(store.path(), Status::Created, 10);
        let _held = starting.lock("starting").unwrap();
        // A dead run: status running, no process (its rsafe was killed).
        let dead = container(store.path(), Status::Running, 10);
        let usage = container_usage(store.path()).unwrap();
        let reclaimable: u64 = usage.iter().filter(|u| u.prunable).map(|u| u.bytes).sum();
        let report = prune_containers(store.path(), None).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        let mut ids: Vec<&str> = report.removed.iter().map(|r| r.name.as_str()).collect();
        ids.sort();
        let mut want = vec![exited.id.as_str(), created.id.as_str(), dead.id.as_str()];
        want.sort();
        assert_eq!(ids, want);
        assert_eq!(report.bytes(), reclaimable);
        let big = report.removed.iter().find(|r| r.name == exited.id).unwrap();
        assert!(big.bytes >= 5000, "{big:?}");
        assert!(starting.path.exists());
        assert_eq!(state::list(store.path()).unwrap().len(), 1);
        // Nothing left aside.
        let left: Vec<_> = std::fs::read_dir(state::containers_dir(store.path()))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left.len(), 1, "{left:?}");
    }

    #[test]
    fn until_keeps_newer_containers() {
        let store = tempfile::tempdir().unwrap();
        let old = container(store.path(), Status::Exited { code: 0 }, 100);
        let new = container(store.path(), Status::Exited { code: 0 }, 300);
        let report = prune_containers(store.path(), Some(200)).unwrap();
        assert_eq!(report.removed.len(), 1);
        assert_eq!(report.removed[0].name, old.id);
        assert!(new.path.exists() && !old.path.exists());
    }

    #[test]
    fn a_directory_being_made_is_left_and_a_killed_prune_is_finished() {
        let store = tempfile::tempdir().unwrap();
        // Made a moment ago, no lock and no state yet: its rsafe is about to lock it.
        let making = ContainerDir::create(store.path(), (0, 0)).unwrap();
        let (dir, st) = state::find(store.path(), &making.id).unwrap();
        assert_eq!(dir.phase(&st), Phase::Dead);
        assert!(!is_prunable(&dir, &st, None));
        assert!(
            prune_containers(store.path(), None)
                .unwrap()
                .removed
                .is_empty()
        );
        assert!(making.path.exists());
        // A prune killed after moving a container aside: the next one finishes it, unless
        // that prune still holds the lock.
        let gone = container(store.path(), Status::Exited { code: 0 }, 1);
        let aside = state::containers_dir(store.path()).join(format!(".prune-{}", gone.id));
        std::fs::rename(&gone.path, &aside).unwrap();
        let held = std::fs::File::open(aside.join(".lock")).unwrap();
        held.lock().unwrap();
        prune_containers(store.path(), None).unwrap();
        assert!(aside.exists());
        drop(held);
        let report = prune_containers(store.path(), None).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert!(!aside.exists());
        assert!(making.path.exists());
    }

    #[test]
    fn what_a_killed_prune_left_is_finished_outside_a_prune_too() {
        let store = tempfile::tempdir().unwrap();
        let kept = container(store.path(), Status::Exited { code: 0 }, 1);
        let gone = container(store.path(), Status::Exited { code: 0 }, 2);
        let aside = state::containers_dir(store.path()).join(format!(".prune-{}", gone.id));
        std::fs::rename(&gone.path, &aside).unwrap();
        finish_killed(store.path());
        assert!(!aside.exists());
        assert!(kept.path.exists(), "only what a prune moved aside goes");
    }

    #[test]
    fn byte_counts_skip_overlay_scratch_and_do_not_follow_links() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("upper/a")).unwrap();
        std::fs::create_dir_all(dir.path().join("work/work")).unwrap();
        std::fs::write(dir.path().join("upper/a/f"), vec![0u8; 1234]).unwrap();
        std::fs::write(dir.path().join("work/work/x"), vec![0u8; 99]).unwrap();
        std::fs::write(dir.path().join("log"), b"hello").unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("huge"), vec![0u8; 100_000]).unwrap();
        std::os::unix::fs::symlink(outside.path(), dir.path().join("upper/link")).unwrap();
        assert_eq!(dir_bytes(dir.path(), &idmap()), 1239);
    }

    #[test]
    fn plain_prune_takes_unused_anonymous_volumes_and_all_the_named_ones_too() {
        let store = tempfile::tempdir().unwrap();
        let volumes = Volumes::of_store(store.path());
        let owner = (
            nix::unistd::geteuid().as_raw(),
            nix::unistd::getegid().as_raw(),
        );
        let (free, _) = volumes.ensure("free", owner).unwrap();
        std::fs::write(free.data().join("f"), vec![1u8; 300]).unwrap();
        volumes.ensure("used", owner).unwrap();
        let (loose, claim) = volumes.create_anonymous(owner).unwrap();
        drop(claim);
        std::fs::write(loose.data().join("f"), vec![1u8; 200]).unwrap();
        let (kept, claim) = volumes.create_anonymous(owner).unwrap();
        drop(claim);
        let user = container(store.path(), Status::Exited { code: 0 }, 1);
        let mut st = user.load_state().unwrap();
        st.volumes = vec!["used".into(), kept.name.clone()];
        user.save(&st).unwrap();
        let usage = volume_usage(store.path()).unwrap();
        assert_eq!(usage.len(), 4);
        let bytes = |name: &str| usage.iter().find(|u| u.name == name).unwrap().bytes;
        assert!(
            bytes("free") >= 300 && bytes(&loose.name) >= 200,
            "{usage:?}"
        );
        // Plain: the unused anonymous volume only.
        let report = prune_volumes(store.path(), false).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            report.removed,
            [Removed {
                name: loose.name.clone(),
                bytes: bytes(&loose.name),
            }]
        );
        // -a: the unused named one too; what the container mounts stays.
        let report = prune_volumes(store.path(), true).unwrap();
        assert!(report.failed.is_empty(), "{:?}", report.failed);
        assert_eq!(
            report.removed,
            [Removed {
                name: "free".into(),
                bytes: bytes("free"),
            }]
        );
        let left: Vec<String> = volumes
            .list()
            .unwrap()
            .into_iter()
            .map(|v| v.name)
            .collect();
        let mut want = vec!["used".to_string(), kept.name.clone()];
        want.sort();
        assert_eq!(left, want);
        // An anonymous volume's lock file goes with it; a named one's stays.
        let locks = store.path().join("volumes/.locks");
        assert!(!locks.join(&loose.name).exists());
        assert!(locks.join(&kept.name).exists());
    }
}
