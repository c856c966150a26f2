//! Container runtimes' own state files: where a container's id, name and image are written down,
//! with the host pid of its first process. Read when present, never required: they only put
//! names on what the namespaces and cgroups already show.
//!
//! ```text
//! run/runc/<id>/state.json                          runc (also under run/docker/runtime-runc/<ns>/
//!                                                   and run/containerd/runc/<ns>/)
//! run/crun/<id>/status                              crun
//! run/containerd/io.containerd.runtime.v2.task/<ns>/<id>/{init.pid,config.json}
//! var/lib/docker/containers/<id>/config.v2.json     docker: name, image, pid
//! run/containers/storage/overlay-containers/<id>/userdata/{pidfile,config.json}
//! var/lib/containers/storage/overlay-{containers/containers,images/images}.json
//!                                                   podman and CRI-O: names and images
//! <rsafe store>/containers/<id>/state.json          rsafe run
//! ```
//!
//! A file that is missing, unreadable or in a format this version does not know is skipped:
//! a newer runtime must not break `rsafe ps`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::runtime::Runtime;

/// A container as a runtime's state describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateRecord {
    pub runtime: Runtime,
    pub id: String,
    pub name: Option<String>,
    pub image: Option<String>,
    /// The root filesystem on the host, when the state says.
    pub rootfs: Option<PathBuf>,
    /// Host pid of the container's first process.
    pub pid: u32,
    /// Its start time in clock ticks since boot, when recorded (guards against pid reuse).
    pub start_time: Option<u64>,
    /// `namespace/name` of the Kubernetes pod.
    pub pod: Option<String>,
    /// The file this came from.
    pub source: PathBuf,
}

/// Every container described under `host_root` (normally `/`), from all known runtimes.
pub fn read_all(host_root: &Path) -> Vec<StateRecord> {
    let mut out = Vec::new();
    for root in runc_roots(host_root) {
        out.extend(read_runc_root(&root));
    }
    for root in crun_roots(host_root) {
        out.extend(read_crun_root(&root));
    }
    out.extend(read_containerd(
        &host_root.join("run/containerd/io.containerd.runtime.v2.task"),
    ));
    out.extend(read_docker(&host_root.join("var/lib/docker/containers")));
    out.extend(read_containers_storage(host_root));
    out
}

/// Subdirectories of `dir` (names and paths), empty when it cannot be listed.
fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .map(|e| (e.file_name().to_string_lossy().into_owned(), e.path()))
        .collect();
    out.sort();
    out
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Option<T> {
    let bytes = std::fs::read(path).ok()?;
    serde_json::from_slice(&bytes).ok()
}

fn read_pid_file(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// runc's state roots: its default, and the ones docker and containerd give it.
fn runc_roots(host_root: &Path) -> Vec<PathBuf> {
    let mut roots = vec![host_root.join("run/runc")];
    for base in ["run/docker/runtime-runc", "run/containerd/runc"] {
        roots.extend(subdirs(&host_root.join(base)).into_iter().map(|(_, p)| p));
    }
    for (_, user) in subdirs(&host_root.join("run/user")) {
        roots.push(user.join("runc"));
    }
    roots
}

fn crun_roots(host_root: &Path) -> Vec<PathBuf> {
    let mut roots = vec![host_root.join("run/crun")];
    for (_, user) in subdirs(&host_root.join("run/user")) {
        roots.push(user.join("crun"));
    }
    roots
}

#[derive(Deserialize)]
struct RuncState {
    id: String,
    init_process_pid: u32,
    #[serde(default)]
    init_process_start: Option<u64>,
    #[serde(default)]
    config: RuncConfig,
}

#[derive(Deserialize, Default)]
struct RuncConfig {
    #[serde(default)]
    rootfs: Option<PathBuf>,
}

fn read_runc_root(root: &Path) -> Vec<StateRecord> {
    subdirs(root)
        .into_iter()
        .filter_map(|(_, dir)| {
            let source = dir.join("state.json");
            let s: RuncState = read_json(&source)?;
            Some(StateRecord {
                runtime: Runtime::Runc,
                name: Some(s.id.clone()),
                id: s.id,
                image: None,
                rootfs: s.config.rootfs,
                pid: s.init_process_pid,
                start_time: s.init_process_start,
                pod: None,
                source,
            })
        })
        .collect()
}

#[derive(Deserialize)]
struct CrunStatus {
    pid: u32,
    #[serde(rename = "process-start-time", default)]
    start_time: Option<u64>,
    #[serde(default)]
    rootfs: Option<PathBuf>,
    #[serde(default)]
    bundle: Option<PathBuf>,
}

fn read_crun_root(root: &Path) -> Vec<StateRecord> {
    subdirs(root)
        .into_iter()
        .filter_map(|(id, dir)| {
            let source = dir.join("status");
            let s: CrunStatus = read_json(&source)?;
            // crun keeps the spec's root path, relative to the bundle unless absolute.
            let rootfs = match (s.rootfs, s.bundle) {
                (Some(r), Some(b)) if r.is_relative() => Some(b.join(r)),
                (r, _) => r,
            };
            Some(StateRecord {
                runtime: Runtime::Crun,
                name: Some(id.clone()),
                id,
                image: None,
                rootfs,
                pid: s.pid,
                start_time: s.start_time,
                pod: None,
                source,
            })
        })
        .collect()
}

/// The annotations of an OCI runtime spec (`config.json`).
#[derive(Deserialize, Default)]
struct SpecAnnotations {
    #[serde(default)]
    annotations: HashMap<String, String>,
    #[serde(default)]
    root: Option<SpecRoot>,
}

#[derive(Deserialize)]
struct SpecRoot {
    path: PathBuf,
}

fn read_containerd(task_root: &Path) -> Vec<StateRecord> {
    let mut out = Vec::new();
    for (namespace, ns_dir) in subdirs(task_root) {
        for (id, dir) in subdirs(&ns_dir) {
            let source = dir.join("init.pid");
            let Some(pid) = read_pid_file(&source) else {
                continue;
            };
            let spec: SpecAnnotations = read_json(&dir.join("config.json")).unwrap_or_default();
            let a = &spec.annotations;
            let get = |k: &str| a.get(k).cloned();
            let pod = match (
                get("io.kubernetes.cri.sandbox-namespace"),
                get("io.kubernetes.cri.sandbox-name"),
            ) {
                (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
                _ => None,
            };
            let runtime = if a.contains_key("io.kubernetes.cri.container-type") {
                Runtime::Kubernetes
            } else if namespace == "moby" {
                Runtime::Docker
            } else {
                Runtime::Containerd
            };
            let rootfs = spec.root.map(|r| {
                if r.path.is_relative() {
                    dir.join(r.path)
                } else {
                    r.path
                }
            });
            out.push(StateRecord {
                runtime,
                name: get("io.kubernetes.cri.container-name").or_else(|| get("nerdctl/name")),
                image: get("io.kubernetes.cri.image-name"),
                id,
                rootfs,
                pid,
                start_time: None,
                pod,
                source,
            });
        }
    }
    out
}

#[derive(Deserialize)]
struct DockerConfig {
    #[serde(rename = "ID")]
    id: String,
    #[serde(rename = "Name", default)]
    name: String,
    #[serde(rename = "Config", default)]
    config: DockerContainerConfig,
    #[serde(rename = "State", default)]
    state: DockerState,
}

#[derive(Deserialize, Default)]
struct DockerContainerConfig {
    #[serde(rename = "Image", default)]
    image: Option<String>,
}

#[derive(Deserialize, Default)]
struct DockerState {
    #[serde(rename = "Running", default)]
    running: bool,
    #[serde(rename = "Pid", default)]
    pid: u32,
}

fn read_docker(containers: &Path) -> Vec<StateRecord> {
    subdirs(containers)
        .into_iter()
        .filter_map(|(_, dir)| {
            let source = dir.join("config.v2.json");
            let c: DockerConfig = read_json(&source)?;
            (c.state.running && c.state.pid > 0).then(|| StateRecord {
                runtime: Runtime::Docker,
                id: c.id,
                name: Some(c.name.trim_start_matches('/').to_owned()).filter(|n| !n.is_empty()),
                image: c.config.image,
                rootfs: None,
                pid: c.state.pid,
                start_time: None,
                pod: None,
                source,
            })
        })
        .collect()
}

/// An entry of containers/storage's `containers.json` or `images.json`.
#[derive(Deserialize)]
struct StorageEntry {
    id: String,
    #[serde(default)]
    names: Vec<String>,
    #[serde(default)]
    image: Option<String>,
}

/// podman and CRI-O: pids from the run directory, names and images from the storage metadata
/// (podman) or the spec's annotations (CRI-O).
fn read_containers_storage(host_root: &Path) -> Vec<StateRecord> {
    let lib = host_root.join("var/lib/containers/storage");
    let containers: Vec<StorageEntry> =
        read_json(&lib.join("overlay-containers/containers.json")).unwrap_or_default();
    let images: Vec<StorageEntry> =
        read_json(&lib.join("overlay-images/images.json")).unwrap_or_default();
    let run = host_root.join("run/containers/storage/overlay-containers");
    subdirs(&run)
        .into_iter()
        .filter_map(|(id, dir)| {
            let userdata = dir.join("userdata");
            let source = userdata.join("pidfile");
            let pid = read_pid_file(&source)?;
            let spec: SpecAnnotations =
                read_json(&userdata.join("config.json")).unwrap_or_default();
            let a = &spec.annotations;
            let stored = containers.iter().find(|c| c.id == id);
            let image_of = |image_id: &str| {
                images
                    .iter()
                    .find(|i| i.id == image_id)
                    .and_then(|i| i.names.first().cloned())
                    .or_else(|| Some(image_id.to_owned()))
            };
            let crio = a.contains_key("io.kubernetes.cri-o.ContainerName");
            let pod = match (
                a.get("io.kubernetes.pod.namespace"),
                a.get("io.kubernetes.pod.name"),
            ) {
                (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
                _ => None,
            };
            Some(StateRecord {
                runtime: match (crio, pod.is_some()) {
                    (true, true) => Runtime::Kubernetes,
                    (true, false) => Runtime::CriO,
                    _ => Runtime::Podman,
                },
                name: a
                    .get("io.kubernetes.container.name")
                    .cloned()
                    .or_else(|| stored.and_then(|c| c.names.first().cloned())),
                image: a
                    .get("io.kubernetes.cri-o.ImageName")
                    .cloned()
                    .or_else(|| stored.and_then(|c| c.image.as_deref()).and_then(image_of)),
                rootfs: spec.root.map(|r| r.path),
                id,
                pid,
                start_time: None,
                pod,
                source,
            })
        })
        .collect()
}

/// rsafe's `state.json` (written by `rsafe run`): the fields read here.
#[derive(Deserialize)]
struct RsafeState {
    id: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    image: Option<String>,
    #[serde(default)]
    status: Option<String>,
    /// `[host pid, start time]` of the container's first process.
    #[serde(default)]
    pid: Option<(u32, u64)>,
}

/// The running containers of one rsafe store (`<store>/containers/<id>/state.json`).
pub fn read_rsafe_store(store: &Path) -> Vec<StateRecord> {
    subdirs(&store.join("containers"))
        .into_iter()
        .filter_map(|(_, dir)| {
            let source = dir.join("state.json");
            let s: RsafeState = read_json(&source)?;
            let (pid, start) = s.pid?;
            if s.status.as_deref() == Some("exited") {
                return None;
            }
            Some(StateRecord {
                runtime: Runtime::Rsafe,
                id: s.id,
                name: s.name,
                image: s.image,
                rootfs: None,
                pid,
                start_time: Some(start),
                pod: None,
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn write(root: &Path, rel: &str, text: &str) {
        let p = root.join(rel);
        fs::create_dir_all(p.parent().unwrap()).unwrap();
        fs::write(p, text).unwrap();
    }

    const ID: &str = "3f4e8b0c1d2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4";

    #[test]
    fn every_runtime_layout() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        // As runc 1.1 and crun 1.8 write them on this machine (trimmed).
        write(
            r,
            "run/runc/probe1/state.json",
            r#"{"id":"probe1","init_process_pid":7400,"init_process_start":265299,
                "config":{"rootfs":"/tmp/b/rootfs","labels":["bundle=/tmp/b"]}}"#,
        );
        write(
            r,
            "run/crun/probe2/status",
            r#"{"pid":8477,"process-start-time":266676,"cgroup-path":"/probe2","rootfs":"rootfs",
                "bundle":"/tmp/b","owner":"root","detached":true}"#,
        );
        write(
            r,
            &format!("run/docker/runtime-runc/moby/{ID}/state.json"),
            &format!(r#"{{"id":"{ID}","init_process_pid":9001,"config":{{}}}}"#),
        );
        write(
            r,
            &format!("var/lib/docker/containers/{ID}/config.v2.json"),
            &format!(
                r#"{{"ID":"{ID}","Name":"/web","Config":{{"Image":"nginx:1.25"}},"State":{{"Running":true,"Pid":9001}}}}"#
            ),
        );
        write(
            r,
            "run/containerd/io.containerd.runtime.v2.task/k8s.io/c1/init.pid",
            "4321\n",
        );
        write(
            r,
            "run/containerd/io.containerd.runtime.v2.task/k8s.io/c1/config.json",
            r#"{"root":{"path":"rootfs"},"annotations":{"io.kubernetes.cri.container-type":"container",
                "io.kubernetes.cri.container-name":"api","io.kubernetes.cri.image-name":"registry/api:2",
                "io.kubernetes.cri.sandbox-namespace":"prod","io.kubernetes.cri.sandbox-name":"api-7d9"}}"#,
        );
        write(
            r,
            "run/containers/storage/overlay-containers/p1/userdata/pidfile",
            "5555",
        );
        write(
            r,
            "var/lib/containers/storage/overlay-containers/containers.json",
            r#"[{"id":"p1","names":["db"],"image":"img1"}]"#,
        );
        write(
            r,
            "var/lib/containers/storage/overlay-images/images.json",
            r#"[{"id":"img1","names":["docker.io/library/postgres:16"]}]"#,
        );
        write(r, "run/runc/broken/state.json", "{not json");

        let mut all = read_all(r);
        all.sort_by_key(|s| s.pid);
        let brief: Vec<_> = all
            .iter()
            .map(|s| {
                (
                    s.runtime,
                    s.pid,
                    s.name.as_deref().unwrap_or("-"),
                    s.image.as_deref().unwrap_or("-"),
                )
            })
            .collect();
        assert_eq!(
            brief,
            vec![
                (Runtime::Kubernetes, 4321, "api", "registry/api:2"),
                (Runtime::Podman, 5555, "db", "docker.io/library/postgres:16"),
                (Runtime::Runc, 7400, "probe1", "-"),
                (Runtime::Crun, 8477, "probe2", "-"),
                (Runtime::Runc, 9001, ID, "-"),
                (Runtime::Docker, 9001, "web", "nginx:1.25"),
            ]
        );
        let crun = all.iter().find(|s| s.runtime == Runtime::Crun).unwrap();
        assert_eq!(crun.rootfs.as_deref(), Some(Path::new("/tmp/b/rootfs")));
        assert_eq!(crun.start_time, Some(266676));
        let k8s = &all[0];
        assert_eq!(k8s.pod.as_deref(), Some("prod/api-7d9"));
    }

    #[test]
    fn rsafe_store_running_only() {
        let t = tempfile::tempdir().unwrap();
        write(
            t.path(),
            "containers/aaa/state.json",
            r#"{"id":"aaa","name":"web","image":"busybox:latest","command":["sh"],"created":1,
                "status":"running","pid":[777,12345],"owner":1000}"#,
        );
        write(
            t.path(),
            "containers/bbb/state.json",
            r#"{"id":"bbb","name":null,"image":"x","status":"exited","code":0,"pid":[778,1]}"#,
        );
        let got = read_rsafe_store(t.path());
        assert_eq!(got.len(), 1);
        assert_eq!(
            (got[0].pid, got[0].start_time, got[0].name.as_deref()),
            (777, Some(12345), Some("web"))
        );
        assert!(read_rsafe_store(&t.path().join("missing")).is_empty());
    }
}
