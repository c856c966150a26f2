//! The finding model shared by every audit (image, Dockerfile, compose, running containers) and
//! every report format. One model, so one `--fail-on` gate and one SARIF writer serve them all.

use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

/// How bad a finding is. Ordered: `Info < Low < Medium < High < Critical`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    clap::ValueEnum,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    /// Lowercase name, as in JSON, flags and rule files.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where in a layered image a file finding comes from, so a reviewer can tell which build step
/// leaked it and whether deleting it later actually removed it (it does not).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LayerProvenance {
    /// 0-based index of the layer that added this content.
    pub index: usize,
    /// Digest of that layer blob.
    pub digest: String,
    /// The history `created_by` of the step that made the layer, when the image records it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
    /// The layer that deleted (whiteout) or replaced the file, if any. The content is still in
    /// the image: anyone who pulls it can read layer `index`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub removed_in: Option<usize>,
}

/// Where a finding is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Location {
    /// A path inside an image, with the layer it came from.
    ImageFile {
        path: String,
        /// 1-based line in the file, when the finding is a place in its text (a secret on
        /// line 3 of `/app/.env`); absent when the whole file is the finding.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        line: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        layer: Option<LayerProvenance>,
    },
    /// A field of the image config (`Env[3]`, `User`, `history[2].created_by`, `Labels.x`).
    ImageConfig { field: String },
    /// A line (and optional column) of a file on disk: Dockerfile, compose file, build context.
    File {
        path: String,
        line: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        column: Option<u32>,
    },
    /// A running container, optionally a process in it and a detail (mount point, env var).
    Container {
        container: String,
        #[serde(skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
        #[serde(skip_serializing_if = "Option::is_none")]
        detail: Option<String>,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::ImageFile { path, line, layer } => {
                if let Some(l) = layer {
                    write!(f, "layer {} ", l.index + 1)?;
                }
                write!(f, "{path}")?;
                if let Some(n) = line {
                    write!(f, ":{n}")?;
                }
                if let Some(l) = layer
                    && let Some(r) = l.removed_in
                {
                    write!(
                        f,
                        " (deleted in layer {}, still present in layer {})",
                        r + 1,
                        l.index + 1
                    )?;
                }
                Ok(())
            }
            Location::ImageConfig { field } => write!(f, "config {field}"),
            Location::File { path, line, column } => {
                write!(f, "{path}")?;
                if let Some(l) = line {
                    write!(f, ":{l}")?;
                    if let Some(c) = column {
                        write!(f, ":{c}")?;
                    }
                }
                Ok(())
            }
            Location::Container {
                container,
                pid,
                detail,
            } => {
                write!(f, "container {container}")?;
                if let Some(p) = pid {
                    write!(f, " pid {p}")?;
                }
                if let Some(d) = detail {
                    write!(f, " {d}")?;
                }
                Ok(())
            }
        }
    }
}

/// Evidence for a finding that never carries a secret: a short prefix and a fingerprint that
/// identifies the value (for ignore files and de-duplication) without revealing it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Evidence {
    /// A redacted excerpt, safe to print in any log.
    pub excerpt: String,
    /// `sha256` of the secret value, first 16 hex characters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl Evidence {
    /// Evidence that holds no secret (a path, a mode, a config value that is not sensitive).
    pub fn plain(text: impl Into<String>) -> Self {
        Evidence {
            excerpt: text.into(),
            fingerprint: None,
        }
    }

    /// Evidence for a secret value: at most 4 leading characters (fewer for short values), then
    /// `…` and the length; the fingerprint lets two reports be compared without the value.
    pub fn secret(value: &str) -> Self {
        Evidence {
            excerpt: redact(value),
            fingerprint: Some(fingerprint(value)),
        }
    }
}

/// A secret shown as a short prefix and its length. Values under 16 characters show no prefix at
/// all: a prefix of a short password is a large part of it.
pub fn redact(value: &str) -> String {
    let n = value.chars().count();
    let shown = match n {
        0..16 => 0,
        16..32 => 3,
        _ => 4,
    };
    let prefix: String = value.chars().take(shown).collect();
    format!("{prefix}…[redacted {n} chars]")
}

/// First 16 hex characters of the value's sha256.
pub fn fingerprint(value: &str) -> String {
    let h = Sha256::digest(value.as_bytes());
    hex::encode(&h[..8])
}

/// One thing an audit found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// Stable rule id (`secret.aws-access-key`, `image.user-root`, `dockerfile.curl-pipe-shell`…).
    pub rule: String,
    pub severity: Severity,
    /// One line for a person.
    pub title: String,
    pub location: Location,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub evidence: Option<Evidence>,
    /// How to fix it.
    pub remediation: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redaction_never_shows_the_whole_secret() {
        let key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzzzzzzzzzz";
        let e = Evidence::secret(key);
        assert!(!e.excerpt.contains(&key[4..]));
        assert!(e.excerpt.starts_with("wJal…"));
        assert_eq!(redact("hunter2"), "…[redacted 7 chars]");
        assert_eq!(e.fingerprint.as_deref().map(str::len), Some(16));
    }

    #[test]
    fn severities_order_for_the_gate() {
        assert!(Severity::Critical > Severity::High && Severity::Low > Severity::Info);
    }

    #[test]
    fn location_reads_like_a_sentence() {
        let mut l = Location::ImageFile {
            path: "/root/.aws/credentials".into(),
            line: None,
            layer: Some(LayerProvenance {
                index: 2,
                digest: "sha256:x".into(),
                created_by: None,
                removed_in: Some(3),
            }),
        };
        assert_eq!(
            l.to_string(),
            "layer 3 /root/.aws/credentials (deleted in layer 4, still present in layer 3)"
        );
        if let Location::ImageFile { line, .. } = &mut l {
            *line = Some(3);
        }
        assert_eq!(
            l.to_string(),
            "layer 3 /root/.aws/credentials:3 (deleted in layer 4, still present in layer 3)"
        );
        let bare = Location::ImageFile {
            path: "/app/.env".into(),
            line: Some(2),
            layer: None,
        };
        assert_eq!(bare.to_string(), "/app/.env:2");
    }

    #[test]
    fn image_file_line_is_optional_in_json() {
        let without: Location =
            serde_json::from_str(r#"{"kind":"image_file","path":"/app/.env"}"#).expect("parses");
        assert_eq!(
            without,
            Location::ImageFile {
                path: "/app/.env".into(),
                line: None,
                layer: None
            }
        );
        assert_eq!(
            serde_json::to_string(&without).expect("serializes"),
            r#"{"kind":"image_file","path":"/app/.env"}"#
        );
        let with = Location::ImageFile {
            path: "/app/.env".into(),
            line: Some(3),
            layer: None,
        };
        let json = serde_json::to_string(&with).expect("serializes");
        assert_eq!(json, r#"{"kind":"image_file","path":"/app/.env","line":3}"#);
        assert_eq!(
            serde_json::from_str::<Location>(&json).expect("parses"),
            with
        );
    }
}
