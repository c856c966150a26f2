//! Registry credentials from the files docker, podman and skopeo already write.
//!
//! rsafe has no login command of its own: it reads `auths.<key>.auth` (base64 `user:password`,
//! or `username`/`password` fields) from, in order,
//! 1. the file given with `--authfile`, else `$REGISTRY_AUTH_FILE` (then only that file),
//! 2. `$XDG_RUNTIME_DIR/containers/auth.json` (podman, skopeo),
//! 3. `$XDG_CONFIG_HOME/containers/auth.json` (or `~/.config/containers/auth.json`),
//! 4. `~/.docker/config.json` (docker).
//!
//! The first file with an entry for the registry wins; within a file the most specific key wins
//! (`host/namespace/repo` before `host/namespace` before `host`), as in containers/image.
//! Credential helpers (`credsStore`, `credHelpers`) and identity tokens are not run or used.
//!
//! A password never leaves this module in printable form: [`Credentials`]'s `Debug` redacts it.

use std::fmt;
use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use base64::Engine as _;

use crate::image::reference::{DOCKER_HUB, Reference};

/// The environment variable podman and skopeo read for an auth file path.
pub const AUTH_FILE_ENV: &str = "REGISTRY_AUTH_FILE";

/// Why a credentials file could not be used. Never carries the secret itself.
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("credentials file {path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    /// serde's own message is left out (not even kept as the source): for a value of the
    /// wrong type it quotes the value, which here may be a password.
    #[error("credentials file {path}: not valid JSON ({what} at line {line}, column {column})")]
    Json {
        path: PathBuf,
        what: &'static str,
        line: usize,
        column: usize,
    },
    #[error("credentials file {path}: entry {key:?}: {why}")]
    Entry {
        path: PathBuf,
        key: String,
        why: &'static str,
    },
}

/// A user name and password for one registry. `Debug` shows the user, never the password.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    password: String,
    /// The file they came from (for `--verbose` and error messages).
    pub source: PathBuf,
}

impl Credentials {
    /// Credentials given directly (not read from a file); `source` names where they came from.
    pub fn new(username: String, password: String, source: PathBuf) -> Self {
        Credentials {
            username,
            password,
            source,
        }
    }

    /// The `Authorization` header value for HTTP Basic authentication.
    pub(crate) fn basic_header(&self) -> String {
        let raw = format!("{}:{}", self.username, self.password);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(raw)
        )
    }
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("source", &self.source)
            .finish()
    }
}

/// The files searched, in order, when no auth file is named explicitly.
pub fn default_auth_files() -> Vec<PathBuf> {
    let env = |k: &str| {
        std::env::var_os(k)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(file) = env(AUTH_FILE_ENV) {
        return vec![file];
    }
    let mut files = Vec::new();
    if let Some(run) = env("XDG_RUNTIME_DIR") {
        files.push(run.join("containers/auth.json"));
    }
    let home = env("HOME");
    match (env("XDG_CONFIG_HOME"), &home) {
        (Some(config), _) => files.push(config.join("containers/auth.json")),
        (None, Some(h)) => files.push(h.join(".config/containers/auth.json")),
        (None, None) => {}
    }
    if let Some(h) = home {
        files.push(h.join(".docker/config.json"));
    }
    files
}

/// Finds credentials for `reference`'s registry: in `auth_file` only when given, else in
/// [`default_auth_files`]. Missing files are skipped; an unreadable or malformed one is an error.
pub fn lookup(
    reference: &Reference,
    auth_file: Option<&Path>,
) -> Result<Option<Credentials>, CredentialsError> {
    let files = match auth_file {
        Some(f) => vec![f.to_path_buf()],
        None => default_auth_files(),
    };
    for file in files {
        let bytes = match fs::read(&file) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound && auth_file.is_none() => continue,
            Err(source) => return Err(CredentialsError::Io { path: file, source }),
        };
        if let Some(found) = lookup_in(&bytes, &file, reference)? {
            return Ok(Some(found));
        }
    }
    Ok(None)
}

/// Looks `reference` up in the contents of one auth file.
fn lookup_in(
    bytes: &[u8],
    path: &Path,
    reference: &Reference,
) -> Result<Option<Credentials>, CredentialsError> {
    #[derive(serde::Deserialize)]
    struct File {
        #[serde(default)]
        auths: std::collections::BTreeMap<String, Entry>,
    }
    #[derive(serde::Deserialize)]
    struct Entry {
        auth: Option<String>,
        username: Option<String>,
        password: Option<String>,
    }
    let file: File = serde_json::from_slice(bytes).map_err(|e| CredentialsError::Json {
        path: path.to_path_buf(),
        what: match e.classify() {
            serde_json::error::Category::Data => "a value of the wrong type or shape",
            serde_json::error::Category::Eof => "unexpected end of file",
            _ => "syntax error",
        },
        line: e.line(),
        column: e.column(),
    })?;
    for wanted in candidate_keys(reference) {
        let Some((key, entry)) = file.auths.iter().find(|(k, _)| normalize_key(k) == wanted) else {
            continue;
        };
        let entry_err = |why| CredentialsError::Entry {
            path: path.to_path_buf(),
            key: key.clone(),
            why,
        };
        let (username, password) = match (&entry.auth, &entry.username, &entry.password) {
            (Some(auth), _, _) if !auth.is_empty() => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| entry_err("\"auth\" is not valid base64"))?;
                let decoded = String::from_utf8(decoded)
                    .map_err(|_| entry_err("\"auth\" does not decode to UTF-8 text"))?;
                let (u, p) = decoded
                    .split_once(':')
                    .ok_or_else(|| entry_err("\"auth\" does not decode to user:password"))?;
                (u.to_string(), p.to_string())
            }
            (_, Some(u), Some(p)) => (u.clone(), p.clone()),
            // An entry without a usable secret (e.g. only an identity token): keep looking.
            _ => continue,
        };
        return Ok(Some(Credentials {
            username,
            password,
            source: path.to_path_buf(),
        }));
    }
    Ok(None)
}

/// The keys that may hold credentials for `reference`, most specific first:
/// `host/a/b/c`, `host/a/b`, `host/a`, `host`.
fn candidate_keys(reference: &Reference) -> Vec<String> {
    let host = canonical_host(reference.registry.as_deref().unwrap_or(DOCKER_HUB));
    let repo = reference.remote_repository();
    let mut keys = Vec::new();
    let mut path = format!("{host}/{repo}");
    loop {
        keys.push(path.clone());
        match path.rfind('/') {
            Some(i) => path.truncate(i),
            None => break,
        }
    }
    keys
}

/// A key as written by docker (`https://index.docker.io/v1/`, `http://host:5000`) or podman
/// (`host/namespace`), reduced to `host[/path]` with Docker Hub's aliases folded to docker.io.
fn normalize_key(key: &str) -> String {
    let had_scheme = key.starts_with("https://") || key.starts_with("http://");
    let mut k = key
        .trim_start_matches("https://")
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    if had_scheme {
        // docker's legacy keys carry the API path: https://index.docker.io/v1/
        for api in ["/v1", "/v2"] {
            if let Some(stripped) = k.strip_suffix(api) {
                k = stripped.to_string();
            }
        }
    }
    match k.split_once('/') {
        Some((host, rest)) => format!("{}/{rest}", canonical_host(host)),
        None => canonical_host(&k),
    }
}

fn canonical_host(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            DOCKER_HUB.to_string()
        }
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b64(s: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(s)
    }

    fn find(json: &str, reference: &str) -> Option<Credentials> {
        let r: Reference = reference.parse().unwrap();
        lookup_in(json.as_bytes(), Path::new("auth.json"), &r).unwrap()
    }

    #[test]
    fn docker_config_host_keys() {
        let json = format!(
            r#"{{"auths": {{"127.0.0.1:5000": {{"auth": "{}"}},
                 "https://index.docker.io/v1/": {{"auth": "{}"}}}}}}"#,
            b64("alice:s3cr:et"),
            b64("hub:pw")
        );
        let c = find(&json, "127.0.0.1:5000/app:1").unwrap();
        assert_eq!(c.username, "alice");
        assert_eq!(c.password, "s3cr:et", "only the first ':' separates");
        assert_eq!(find(&json, "alpine").unwrap().username, "hub");
        assert_eq!(
            find(&json, "docker.io/library/alpine").unwrap().username,
            "hub"
        );
        assert!(find(&json, "127.0.0.1:5001/app").is_none());
    }

    #[test]
    fn most_specific_key_wins_and_plain_fields_work() {
        let json = format!(
            r#"{{"auths": {{"quay.io": {{"auth": "{}"}},
                 "quay.io/team": {{"username": "team", "password": "pw"}},
                 "http://quay.io/team/app": {{"auth": "{}"}}}}}}"#,
            b64("any:1"),
            b64("app:2")
        );
        assert_eq!(find(&json, "quay.io/team/app:x").unwrap().username, "app");
        assert_eq!(find(&json, "quay.io/team/other").unwrap().username, "team");
        assert_eq!(find(&json, "quay.io/solo").unwrap().username, "any");
    }

    #[test]
    fn entries_without_a_secret_are_skipped_and_bad_ones_named() {
        let json = r#"{"auths": {"ghcr.io": {"identitytoken": "x"}}, "credsStore": "desktop"}"#;
        assert!(find(json, "ghcr.io/a/b").is_none());
        let bad = format!(
            r#"{{"auths": {{"ghcr.io": {{"auth": "{}"}}}}}}"#,
            b64("nocolon")
        );
        let r: Reference = "ghcr.io/a/b".parse().unwrap();
        let err = lookup_in(bad.as_bytes(), Path::new("/x/auth.json"), &r).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("/x/auth.json") && msg.contains("ghcr.io"),
            "{msg}"
        );
        assert!(!msg.contains("nocolon"), "{msg}");
    }

    #[test]
    fn debug_never_shows_the_password() {
        let c = Credentials::new("bob".into(), "hunter2".into(), "f".into());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("bob") && !shown.contains("hunter2"),
            "{shown}"
        );
        assert_eq!(c.basic_header(), format!("Basic {}", b64("bob:hunter2")));
    }

    #[test]
    fn explicit_missing_file_is_an_error() {
        let r: Reference = "ghcr.io/a/b".parse().unwrap();
        let err = lookup(&r, Some(Path::new("/nonexistent/auth.json"))).unwrap_err();
        assert!(err.to_string().contains("/nonexistent/auth.json"), "{err}");
    }
}
