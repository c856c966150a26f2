//! Image references: `[host[:port]/]repository[:tag][@sha256:…]`, parsed the way docker does.
//!
//! Names are kept in their familiar form in the store (`alpine:3.19`, not
//! `docker.io/library/alpine:3.19`), so `rsafe images` reads like `docker images`, while
//! [`Reference::registry_host`] and [`Reference::remote_repository`] give what the registry needs.

use std::fmt;
use std::str::FromStr;

use super::digest::{Digest, DigestError};

/// Docker Hub's name in references.
pub const DOCKER_HUB: &str = "docker.io";

/// Why a reference was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("invalid reference {0:?}: empty")]
    Empty(String),
    #[error("invalid reference {reference:?}: {why}")]
    Invalid {
        reference: String,
        why: &'static str,
    },
    #[error("invalid reference {reference:?}: {source}")]
    Digest {
        reference: String,
        source: DigestError,
    },
}

/// A parsed image reference.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    /// `host[:port]`; `None` means Docker Hub.
    pub registry: Option<String>,
    /// Path in the registry, e.g. `rsafe/busybox` (`library/` is implied for Docker Hub).
    pub repository: String,
    pub tag: Option<String>,
    pub digest: Option<Digest>,
}

impl Reference {
    /// The tag to use: the given one, or `latest` when there is neither tag nor digest.
    pub fn tag_or_latest(&self) -> Option<&str> {
        match (&self.tag, &self.digest) {
            (Some(t), _) => Some(t),
            (None, Some(_)) => None,
            (None, None) => Some("latest"),
        }
    }

    /// The registry host to contact (`registry-1.docker.io` for Docker Hub).
    pub fn registry_host(&self) -> &str {
        match self.registry.as_deref() {
            None | Some(DOCKER_HUB) | Some("index.docker.io") => "registry-1.docker.io",
            Some(h) => h,
        }
    }

    /// The repository path as the registry API wants it (`library/alpine` on Docker Hub).
    pub fn remote_repository(&self) -> String {
        let hub = matches!(self.registry.as_deref(), None | Some(DOCKER_HUB));
        if hub && !self.repository.contains('/') {
            format!("library/{}", self.repository)
        } else {
            self.repository.clone()
        }
    }

    /// What the manifest is fetched by: the digest when pinned, else the tag.
    pub fn manifest_reference(&self) -> String {
        match (&self.digest, self.tag_or_latest()) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.to_string(),
            (None, None) => "latest".to_string(),
        }
    }

    /// Whether the registry is on this machine (plain HTTP is allowed only then, or with
    /// `--insecure`).
    pub fn is_loopback(&self) -> bool {
        let Some(host) = self.registry.as_deref() else {
            return false;
        };
        let host = match host.rsplit_once(':') {
            Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
            _ => host,
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback())
    }

    /// The familiar name without tag or digest (`alpine`, `127.0.0.1:5000/app`).
    pub fn familiar_repository(&self) -> String {
        match self.registry.as_deref() {
            // As docker/distribution's FamiliarName: `library/` only goes when one component is
            // left, and `docker.io/` stays when the first component would read as a registry;
            // otherwise the familiar name would parse back as another image.
            None | Some(DOCKER_HUB) => {
                let repo = &self.repository;
                if let Some(rest) = repo.strip_prefix("library/")
                    && !rest.contains('/')
                {
                    return rest.to_string();
                }
                let first = repo.split('/').next().unwrap_or("");
                let hostlike = first.contains(['.', ':']) || first == "localhost";
                if repo.contains('/') && hostlike {
                    format!("{DOCKER_HUB}/{repo}")
                } else {
                    repo.clone()
                }
            }
            Some(host) => format!("{host}/{}", self.repository),
        }
    }

    /// The name the store files the image under: familiar repository plus tag (or digest).
    pub fn store_name(&self) -> String {
        let repo = self.familiar_repository();
        match (self.tag_or_latest(), &self.digest) {
            (Some(t), _) => format!("{repo}:{t}"),
            (None, Some(d)) => format!("{repo}@{d}"),
            (None, None) => format!("{repo}:latest"),
        }
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let invalid = |why| ReferenceError::Invalid {
            reference: s.to_string(),
            why,
        };
        if s.is_empty() {
            return Err(ReferenceError::Empty(s.to_string()));
        }
        if s.len() > 512 {
            return Err(invalid("longer than 512 characters"));
        }
        let (rest, digest) = match s.split_once('@') {
            Some((r, d)) => (
                r,
                Some(
                    d.parse::<Digest>()
                        .map_err(|source| ReferenceError::Digest {
                            reference: s.to_string(),
                            source,
                        })?,
                ),
            ),
            None => (s, None),
        };
        // A tag is after the last ':' that follows the last '/' (a ':' before it is a port).
        let last_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[last_slash..].rfind(':') {
            Some(i) => (
                &rest[..last_slash + i],
                Some(rest[last_slash + i + 1..].to_string()),
            ),
            None => (rest, None),
        };
        if let Some(t) = &tag {
            let ok = !t.is_empty()
                && t.len() <= 128
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
                && !t.starts_with(['.', '-']);
            if !ok {
                return Err(invalid(
                    "tag must be 1-128 of [A-Za-z0-9_.-], not starting with . or -",
                ));
            }
        }
        let (registry, repository) = match name.split_once('/') {
            Some((first, path))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (Some(first.to_string()), path)
            }
            _ => (None, name),
        };
        if repository.is_empty() {
            return Err(invalid("missing repository name"));
        }
        for component in repository.split('/') {
            let ok = !component.is_empty()
                && component.bytes().all(|b| {
                    b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-')
                })
                && component.as_bytes()[0].is_ascii_alphanumeric()
                && component.as_bytes()[component.len() - 1].is_ascii_alphanumeric();
            if !ok {
                return Err(invalid(
                    "repository components must be lowercase letters, digits and . _ - separators",
                ));
            }
        }
        if let Some(host) = &registry
            && !valid_host(host)
        {
            return Err(invalid(
                "registry host must be a domain (dot-separated names of letters, digits and -) or [IPv6], with an optional :port",
            ));
        }
        Ok(Reference {
            registry,
            repository: repository.to_string(),
            tag,
            digest,
        })
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.familiar_repository())?;
        if let Some(t) = &self.tag {
            write!(f, ":{t}")?;
        }
        if let Some(d) = &self.digest {
            write!(f, "@{d}")?;
        }
        Ok(())
    }
}

/// The distribution spec's domain grammar: `name(.name)*[:port]`, each name letters, digits and
/// inner `-`; or a bracketed IPv6 address. `.` and `..` (a path's `./app`) are no host.
fn valid_host(host: &str) -> bool {
    let port_ok = |p: &str| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit());
    if let Some(rest) = host.strip_prefix('[') {
        let Some((addr, tail)) = rest.split_once(']') else {
            return false;
        };
        let addr_ok = !addr.is_empty() && addr.bytes().all(|b| b.is_ascii_hexdigit() || b == b':');
        return addr_ok && (tail.is_empty() || tail.strip_prefix(':').is_some_and(port_ok));
    }
    let (name, port) = match host.split_once(':') {
        Some((n, p)) => (n, Some(p)),
        None => (host, None),
    };
    port.is_none_or(port_ok)
        && !name.is_empty()
        && name.split('.').all(|c| {
            let b = c.as_bytes();
            !b.is_empty()
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter().all(|x| x.is_ascii_alphanumeric() || *x == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_hosts_follow_the_domain_grammar() {
        for ok in [
            "localhost:5000",
            "ghcr.io",
            "127.0.0.1:5000",
            "[::1]:5000",
            "[fe80::1]",
            "my-reg.example.com",
        ] {
            assert!(valid_host(ok), "{ok}");
        }
        for bad in [
            ".", "..", "-a.io", "a..io", "a.io:", "a.io:x", "[::1", "[]:1", "a_b.io",
        ] {
            assert!(!valid_host(bad), "{bad}");
        }
        // A relative path is no reference with registry ".".
        assert!("./app".parse::<Reference>().is_err());
        assert!("../x/app:1".parse::<Reference>().is_err());
    }

    fn r(s: &str) -> Reference {
        s.parse().unwrap()
    }

    #[test]
    fn docker_hub_names() {
        let a = r("alpine");
        assert_eq!(a.registry, None);
        assert_eq!(a.remote_repository(), "library/alpine");
        assert_eq!(a.store_name(), "alpine:latest");
        assert_eq!(a.registry_host(), "registry-1.docker.io");
        assert_eq!(r("docker.io/library/alpine:3").store_name(), "alpine:3");
        assert_eq!(r("rsafe/busybox:root").remote_repository(), "rsafe/busybox");
    }

    #[test]
    fn registry_with_port_and_digest() {
        let d = "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        let x = r(&format!("127.0.0.1:5000/app/web:1.0@{d}"));
        assert_eq!(x.registry.as_deref(), Some("127.0.0.1:5000"));
        assert_eq!(x.repository, "app/web");
        assert_eq!(x.tag.as_deref(), Some("1.0"));
        assert_eq!(x.manifest_reference(), d);
        assert!(x.is_loopback());
        assert_eq!(x.store_name(), "127.0.0.1:5000/app/web:1.0");
        let y = r(&format!("localhost:5000/app@{d}"));
        assert_eq!(y.tag, None);
        assert_eq!(y.store_name(), format!("localhost:5000/app@{d}"));
        assert!(y.is_loopback());
        assert!(!r("registry.example.com/app").is_loopback());
        assert!(r("[::1]:5000/app").is_loopback());
    }

    #[test]
    fn rejects_bad_references() {
        for bad in [
            "",
            "UPPER/case",
            "app:",
            "app:-x",
            "a//b",
            "app@sha256:1234",
            "/app",
            "app/",
        ] {
            assert!(
                bad.parse::<Reference>().is_err(),
                "{bad} should be rejected"
            );
        }
    }
}
