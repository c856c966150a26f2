//! Who a final stage without `USER` runs as: that is decided by its base image, which the
//! Dockerfile does not show. rsafe reads the base image's config when the image is in the local
//! store; otherwise it knows the Docker Official Images that set no `USER` (they run as root),
//! and says "unknown" for the rest instead of guessing "root" (jupyter's and bitnami's images run
//! as an unprivileged user).
//!
//! It also sees the official-image pattern of starting as root and dropping to a service user in
//! the entrypoint (`gosu`, `su-exec`, `setpriv`), which is not the same risk as running the
//! service as root.

use std::path::{Path, PathBuf};

use crate::image::config::{Image, Platform};
use crate::image::lookup;
use crate::image::store::Store;

/// What rsafe can learn about base images.
pub trait BaseImages {
    /// The `User` of `image`'s config (empty for an image that sets none), or `None` when the
    /// image is not known here.
    fn user(&self, image: &str) -> Option<String>;
}

/// No image store: every base image is unknown unless it is an official image.
pub struct NoBaseImages;

impl BaseImages for NoBaseImages {
    fn user(&self, _image: &str) -> Option<String> {
        None
    }
}

/// Base images looked up in rsafe's local image store.
pub struct StoreBaseImages {
    store: Option<Store>,
}

impl StoreBaseImages {
    /// The store at `root`, if there is one (a missing or unreadable store knows no image).
    pub fn open(root: &Path) -> Self {
        StoreBaseImages {
            store: Store::open_read_only(root).ok(),
        }
    }

    /// The store the CLI uses: `$RSAFE_ROOT`, else [`Store::default_root`].
    pub fn from_env() -> Self {
        let root = std::env::var_os("RSAFE_ROOT")
            .filter(|v| !v.is_empty())
            .map_or_else(Store::default_root, PathBuf::from);
        Self::open(&root)
    }
}

impl BaseImages for StoreBaseImages {
    fn user(&self, image: &str) -> Option<String> {
        let store = self.store.as_ref()?;
        let found = lookup::find(store, image).ok()?;
        let opened = Image::from_descriptor(store, &found.descriptor, &Platform::host()).ok()?;
        Some(
            opened
                .config
                .config()
                .as_ref()
                .and_then(|c| c.user().clone())
                .unwrap_or_default(),
        )
    }
}

/// Docker Official Images whose Dockerfiles set no `USER`: they run as root unless the
/// Dockerfile built on them switches.
const OFFICIAL_ROOT_IMAGES: &[&str] = &[
    "alpine",
    "almalinux",
    "amazoncorretto",
    "amazonlinux",
    "archlinux",
    "bash",
    "buildpack-deps",
    "busybox",
    "caddy",
    "centos",
    "clojure",
    "composer",
    "debian",
    "docker",
    "drupal",
    "eclipse-temurin",
    "elixir",
    "erlang",
    "fedora",
    "gcc",
    "ghost",
    "golang",
    "gradle",
    "haskell",
    "httpd",
    "julia",
    "mariadb",
    "maven",
    "mongo",
    "mysql",
    "nextcloud",
    "nginx",
    "node",
    "openjdk",
    "oraclelinux",
    "perl",
    "php",
    "postgres",
    "python",
    "redis",
    "registry",
    "rockylinux",
    "ruby",
    "rust",
    "swift",
    "tomcat",
    "traefik",
    "ubuntu",
    "wordpress",
];

/// The Docker Hub official-image name of a reference (`python:3.12-slim`,
/// `docker.io/library/node:20`), or `None` for any other image.
pub fn official_name(image: &str) -> Option<&str> {
    let no_digest = image.split('@').next().unwrap_or(image);
    let path = no_digest
        .strip_prefix("docker.io/")
        .or_else(|| no_digest.strip_prefix("index.docker.io/"))
        .unwrap_or(no_digest);
    let path = path.strip_prefix("library/").unwrap_or(path);
    let name = path.split(':').next().unwrap_or(path);
    (!name.contains('/')).then_some(name)
}

/// Official images that start as root and whose `docker-entrypoint.sh` drops to the service's
/// user before running it: an image built on one inherits that, unless it replaces the
/// entrypoint.
const OFFICIAL_ENTRYPOINT_DROPS: &[(&str, &str)] = &[
    ("postgres", "gosu (su-exec on alpine)"),
    ("redis", "gosu (su-exec on alpine)"),
    ("mysql", "gosu"),
    ("mariadb", "gosu"),
    ("mongo", "gosu"),
    ("ghost", "gosu"),
];

/// The tool an official image's entrypoint drops root with, if it does.
pub fn official_entrypoint_drops_root(image: &str) -> Option<&'static str> {
    let name = official_name(image)?;
    OFFICIAL_ENTRYPOINT_DROPS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, tool)| *tool)
}

/// Whether an official image is known to run as root.
pub fn official_runs_as_root(image: &str) -> bool {
    official_name(image).is_some_and(|n| OFFICIAL_ROOT_IMAGES.contains(&n))
}

/// Programs that start a command as another user: the entrypoint of an image that starts as
/// root and drops to a service user uses one of them.
const DROP_TOOLS: &[&str] = &["gosu", "su-exec", "setpriv", "chroot --userspec", "runuser"];

/// Whether the image drops root at start: its entrypoint script (read from the build context
/// when it is there) or the Dockerfile itself uses gosu, su-exec, setpriv or runuser.
pub fn drops_root(dockerfile_text: &str, entrypoint_files: &[PathBuf]) -> Option<&'static str> {
    let uses = |text: &str| DROP_TOOLS.iter().copied().find(|t| text.contains(t));
    entrypoint_files
        .iter()
        .filter_map(|p| std::fs::read(p).ok())
        .find_map(|bytes| uses(&String::from_utf8_lossy(&bytes)))
        .or_else(|| uses(dockerfile_text))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn official_names() {
        assert_eq!(official_name("python:3.12-slim"), Some("python"));
        assert_eq!(
            official_name("docker.io/library/node:20@sha256:00"),
            Some("node")
        );
        assert_eq!(official_name("jupyter/base-notebook:2024"), None);
        assert_eq!(official_name("ghcr.io/x/y:1"), None);
        assert!(official_runs_as_root("debian:bookworm-slim"));
        assert!(!official_runs_as_root("haproxy:3.0"));
        assert!(!official_runs_as_root("bitnami/redis:7.2"));
        assert!(!official_runs_as_root("memcached:1.6"));
        assert_eq!(official_entrypoint_drops_root("mysql:8.4"), Some("gosu"));
        assert_eq!(official_entrypoint_drops_root("python:3.12"), None);
    }
    /// A store holding `name` with a config whose `User` is `user`.
    fn store_with(dir: &Path, name: &str, user: &str) {
        let store = Store::open(dir).unwrap();
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"User": user},
            "rootfs": {"type": "layers", "diff_ids": []}}))
        .unwrap();
        let config_d = store.put_bytes(&config).unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_d.to_string(), "size": config.len()},
            "layers": []}))
        .unwrap();
        let m = store.put_bytes(&manifest).unwrap();
        let desc: oci_spec::image::Descriptor = serde_json::from_value(serde_json::json!({
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": m.to_string(), "size": manifest.len()}))
        .unwrap();
        store.tag(name, &desc).unwrap();
    }

    #[test]
    fn base_image_users_come_from_the_store() {
        let dir = tempfile::tempdir().unwrap();
        let jupyter = "quay.io/jupyter/base-notebook:2024-05-27";
        store_with(dir.path(), jupyter, "1000");
        let base = StoreBaseImages::open(dir.path());
        assert_eq!(base.user(jupyter).as_deref(), Some("1000"));
        assert_eq!(base.user("quay.io/jupyter/other:1"), None);
        let missing = StoreBaseImages::open(&dir.path().join("nothing-here"));
        assert_eq!(missing.user(jupyter), None);

        // The final stage inherits the base image's non-root user: no finding. Without the
        // store the user is unknown: a low finding that says so.
        let ctx = tempfile::tempdir().unwrap();
        let df = ctx.path().join("Dockerfile");
        std::fs::write(
            &df,
            format!("FROM {jupyter}\nRUN pip install --no-cache-dir altair\n"),
        )
        .unwrap();
        let scanner = crate::audit::secrets::SecretScanner::builtin().unwrap();
        let users = |base: &dyn BaseImages| -> Vec<(crate::audit::Severity, String)> {
            super::super::audit_dockerfile_with(&df, &scanner, base)
                .unwrap()
                .into_iter()
                .filter(|f| f.rule == "dockerfile.user-root")
                .map(|f| (f.severity, f.title))
                .collect()
        };
        assert_eq!(users(&base), vec![]);
        let unknown = users(&NoBaseImages);
        assert_eq!(unknown.len(), 1);
        assert_eq!(unknown[0].0, crate::audit::Severity::Low);
        assert!(unknown[0].1.contains("unknown"), "{}", unknown[0].1);
        store_with(dir.path(), "python:3.12", "");
        std::fs::write(
            &df,
            "FROM python:3.12\nRUN pip install --no-cache-dir altair\n",
        )
        .unwrap();
        let root = users(&StoreBaseImages::open(dir.path()));
        assert_eq!(root.len(), 1);
        assert_eq!(root[0].0, crate::audit::Severity::High);
        assert!(root[0].1.contains("local image store"), "{}", root[0].1);
    }
}
