//! Pulling images from an OCI distribution registry (Docker Registry HTTP API v2) into the store.
//!
//! A small synchronous client on `ureq` (rustls) and the `oci-spec` types, rather than the async
//! `oci-client` crate: a pull is a handful of sequential requests plus a few parallel blob
//! downloads, and `oci-client` would bring tokio and a C crypto build (aws-lc) into every build
//! of a tool whose other half must stay lean.
//!
//! What a pull guarantees:
//! - every manifest is checked against the digest asked for (when pulling by digest), against the
//!   registry's `Docker-Content-Digest`, against its descriptor's size, and is size-capped before
//!   it is parsed; it is stored byte for byte, so its digest never changes;
//! - every blob streams straight into the store, which verifies digest and size before the blob
//!   becomes visible: an interrupted or tampered download leaves nothing behind;
//! - a blob the store already has is never downloaded again;
//! - plain HTTP only to a loopback registry or with `insecure`; HTTPS is verified by rustls;
//! - credentials come from the usual auth files ([`credentials`]) and are never printed;
//!   `Authorization` is dropped when a redirect leaves the registry's host.
//!
//! Modules: [`credentials`] (auth files), [`auth`] (challenges, tokens), [`tls`] (which CAs
//! are trusted), [`client`] (HTTP: scheme policy, redirects, error bodies), [`pull`]
//! (manifests → platform → blobs → tag).

pub mod auth;
pub mod client;
pub mod credentials;
pub mod pull;
pub mod tls;

use std::path::PathBuf;

use super::config::{ImageError, Platform};
use super::digest::Digest;
use super::store::StoreError;

pub use credentials::{Credentials, CredentialsError};
pub use pull::pull;

/// How to pull: which platform, whether plain HTTP is allowed, where credentials are.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// The platform whose manifest is picked out of an index (default: this host's).
    pub platform: Platform,
    /// Allow plain HTTP to a registry that is not on this machine (TLS is still tried first).
    pub insecure: bool,
    /// Keep the whole index and every platform's image, and point the name at the index.
    pub all_platforms: bool,
    /// The only credentials file to read; `None` searches the usual places
    /// ([`credentials::default_auth_files`]).
    pub auth_file: Option<PathBuf>,
    /// A directory of `*.crt` CA files to trust for this registry; `None` uses the registry's
    /// `certs.d` directories if any, else the built-in roots ([`tls`]).
    pub cert_dir: Option<PathBuf>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            platform: Platform::host(),
            insecure: false,
            all_platforms: false,
            auth_file: None,
            cert_dir: None,
        }
    }
}

/// What a pull did, for the summary line and for callers that go on to run or audit the image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pulled {
    /// The store name the image was filed under ([`super::Reference::store_name`]).
    pub name: String,
    /// What `name` points at: the platform's manifest, or the index with `all_platforms`.
    pub manifest: Digest,
    /// The index (or manifest list) the manifest was chosen from, if there was one.
    pub index: Option<Digest>,
    /// Blobs (configs and layers) downloaded by this pull.
    pub fetched_blobs: usize,
    /// Blobs the store already had, so not downloaded.
    pub reused_blobs: usize,
    /// Bytes of blobs downloaded.
    pub bytes: u64,
}

/// What a pull is doing, reported as it happens (the CLI turns these into progress bars and
/// `--verbose` lines). Events may arrive from several download threads at once.
#[derive(Debug, Clone, Copy)]
pub enum PullEvent<'a> {
    /// The registry answered at this base URL (`https://host` or `http://host`).
    Connected { base: &'a str },
    /// The registry's HTTPS is verified against these CA files as well as the system bundle.
    TrustingCa { files: &'a [PathBuf] },
    /// Requests are authenticated: `scheme` is `Basic` or `Bearer`, `realm` the token service,
    /// `credentials` the file the user name and password came from (none: anonymous).
    Authenticating {
        scheme: &'a str,
        realm: Option<&'a str>,
        credentials: Option<&'a std::path::Path>,
    },
    /// The manifest to pull was chosen (out of an index, for `platform`, when there was one).
    Resolved {
        manifest: &'a Digest,
        platform: Option<&'a Platform>,
    },
    /// A blob is already in the store: not downloaded.
    BlobReused { digest: &'a Digest, size: u64 },
    /// A blob download started.
    BlobStarted { digest: &'a Digest, size: u64 },
    /// `done` bytes of the blob have arrived so far.
    BlobProgress { digest: &'a Digest, done: u64 },
    /// A blob arrived, verified, and is in the store.
    BlobFetched { digest: &'a Digest, size: u64 },
}

/// Why a pull failed. Every variant names the registry and repository (`target`) and what was
/// being fetched; the message is one line.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    /// The registry or its token service answered with an error status.
    #[error("{target}: {what}: HTTP {status} {}{}{}", reason(*status), code_text(code.as_deref(), message.as_deref()), note_text(note.as_deref()))]
    Status {
        target: String,
        what: String,
        status: u16,
        /// The registry's error code (`MANIFEST_UNKNOWN`, `UNAUTHORIZED`, `DENIED`, …).
        code: Option<String>,
        message: Option<String>,
        /// What rsafe knows that explains it (e.g. where credentials were looked for).
        note: Option<String>,
    },
    /// The registry could not be reached or the connection broke.
    #[error("{target}: {what}: {source}")]
    Transport {
        target: String,
        what: String,
        source: Box<ureq::Error>,
    },
    /// The registry answered something rsafe refuses (oversized, malformed, unsupported,
    /// a redirect to plain HTTP…).
    #[error("{target}: {what}: {detail}")]
    Protocol {
        target: String,
        what: String,
        detail: String,
    },
    /// Content did not hash to the digest it was asked for or announced under.
    #[error(
        "{target}: {what}: digest mismatch: expected {expected}, the registry sent content hashing to {actual}"
    )]
    DigestMismatch {
        target: String,
        what: String,
        expected: Digest,
        actual: Digest,
    },
    /// The store refused or failed to keep what arrived (a blob that did not verify lands here).
    #[error("{target}: {what}: {source}")]
    Store {
        target: String,
        what: String,
        source: StoreError,
    },
    /// The index has no manifest for the platform, or the manifest is unusable.
    #[error("{target}: {source}")]
    Image {
        target: String,
        source: Box<ImageError>,
    },
    #[error(transparent)]
    Credentials(#[from] CredentialsError),
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
}

impl RegistryError {
    /// The registry's error code, when the registry sent one (`MANIFEST_UNKNOWN`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            RegistryError::Status { code, .. } => code.as_deref(),
            _ => None,
        }
    }
}

fn reason(status: u16) -> &'static str {
    ureq::http::StatusCode::from_u16(status)
        .ok()
        .and_then(|s| s.canonical_reason())
        .unwrap_or("")
}

fn code_text(code: Option<&str>, message: Option<&str>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(": {c} ({m})"),
        (Some(c), None) => format!(": {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

fn note_text(note: Option<&str>) -> String {
    note.map(|n| format!("; {n}")).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_error_is_one_line_with_code() {
        let e = RegistryError::Status {
            target: "127.0.0.1:5000/rsafe/busybox".into(),
            what: "manifest nope".into(),
            status: 404,
            code: Some("MANIFEST_UNKNOWN".into()),
            message: Some("manifest unknown".into()),
            note: None,
        };
        assert_eq!(
            e.to_string(),
            "127.0.0.1:5000/rsafe/busybox: manifest nope: HTTP 404 Not Found: MANIFEST_UNKNOWN (manifest unknown)"
        );
        assert_eq!(e.code(), Some("MANIFEST_UNKNOWN"));
        let e = RegistryError::Status {
            target: "r/x".into(),
            what: "token".into(),
            status: 401,
            code: None,
            message: None,
            note: Some("credentials from /a were refused".into()),
        };
        assert_eq!(
            e.to_string(),
            "r/x: token: HTTP 401 Unauthorized; credentials from /a were refused"
        );
    }
}
