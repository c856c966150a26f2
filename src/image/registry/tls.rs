//! Which certificate authorities rsafe trusts for a registry's HTTPS.
//!
//! By default, Mozilla's roots built into the binary (webpki-roots): the same answer on every
//! machine, whatever is in its CA store. A registry with its own CA is configured the way docker
//! and podman do it: `*.crt` files in `/etc/containers/certs.d/<host[:port]>/` or
//! `/etc/docker/certs.d/<host[:port]>/`, or in the directory given with `--cert-dir`. Then the
//! system bundle (which holds whatever CA the administrator installed) plus those files are
//! trusted, so a registry that redirects blobs to public object storage still works.
//! Verification is never switched off, `--insecure` included.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use ureq::tls::{Certificate, PemItem, RootCerts, TlsConfig, parse_pem};

/// Per-registry CA directories, as docker and podman lay them out (`<dir>/<host[:port]>/*.crt`).
pub const CERTS_D: [&str; 2] = ["/etc/containers/certs.d", "/etc/docker/certs.d"];

/// The system CA bundle, where Debian, Fedora and Alpine keep it (`$SSL_CERT_FILE` first).
const SYSTEM_BUNDLES: [&str; 3] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
];

/// A certificate file that could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("certificate directory {path}: {source}")]
    Dir { path: PathBuf, source: io::Error },
    #[error("certificate file {path}: {detail}")]
    File { path: PathBuf, detail: String },
}

/// The TLS configuration for one registry, and the files it trusts beyond the built-in roots
/// (empty: the built-in roots only).
#[derive(Debug)]
pub struct Trust {
    pub config: TlsConfig,
    pub extra_files: Vec<PathBuf>,
}

/// The trust for `host` (`host[:port]`): the CA files in `cert_dir` when given, else in the
/// registry's certs.d directories; none found means the built-in roots.
pub fn trust_for(host: &str, cert_dir: Option<&Path>) -> Result<Trust, TlsError> {
    let dirs: Vec<PathBuf> = match cert_dir {
        Some(d) => vec![d.to_path_buf()],
        None => CERTS_D
            .iter()
            .map(|base| Path::new(base).join(host))
            .filter(|d| d.is_dir())
            .collect(),
    };
    let mut files = Vec::new();
    for dir in &dirs {
        let entries = fs::read_dir(dir).map_err(|source| TlsError::Dir {
            path: dir.clone(),
            source,
        })?;
        let mut crts: Vec<PathBuf> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "crt"))
            .collect();
        crts.sort();
        files.extend(crts);
    }
    if files.is_empty() {
        return Ok(Trust {
            config: TlsConfig::default(),
            extra_files: Vec::new(),
        });
    }
    let mut roots = Vec::new();
    if let Some(bundle) = system_bundle() {
        // The system bundle may hold odd entries; what parses is used, the rest ignored.
        if let Ok(bytes) = fs::read(&bundle) {
            roots.extend(certificates(&bytes));
        }
    }
    for file in &files {
        let bytes = fs::read(file).map_err(|e| TlsError::File {
            path: file.clone(),
            detail: e.to_string(),
        })?;
        let found = certificates(&bytes);
        if found.is_empty() {
            return Err(TlsError::File {
                path: file.clone(),
                detail: "holds no PEM certificate".into(),
            });
        }
        roots.extend(found);
    }
    Ok(Trust {
        config: TlsConfig::builder()
            .root_certs(RootCerts::from(roots))
            .build(),
        extra_files: files,
    })
}

fn system_bundle() -> Option<PathBuf> {
    std::env::var_os("SSL_CERT_FILE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .into_iter()
        .chain(SYSTEM_BUNDLES.iter().map(PathBuf::from))
        .find(|p| p.is_file())
}

fn certificates(pem: &[u8]) -> Vec<Certificate<'static>> {
    parse_pem(pem)
        .filter_map(|item| match item {
            Ok(PemItem::Certificate(c)) => Some(c),
            _ => None,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ca_files_means_the_built_in_roots() {
        let dir = tempfile::tempdir().unwrap();
        let t = trust_for("127.0.0.1:1", Some(dir.path())).unwrap();
        assert!(t.extra_files.is_empty());
        assert!(matches!(t.config.root_certs(), RootCerts::WebPki));
    }

    #[test]
    fn a_crt_without_certificates_is_named() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("ca.crt"), "not a certificate").unwrap();
        fs::write(dir.path().join("notes.txt"), "ignored").unwrap();
        let err = trust_for("r:1", Some(dir.path())).unwrap_err().to_string();
        assert!(
            err.contains("ca.crt") && err.contains("no PEM certificate"),
            "{err}"
        );
        let missing = trust_for("r:1", Some(&dir.path().join("nope"))).unwrap_err();
        assert!(missing.to_string().contains("nope"), "{missing}");
    }
}
