//! The report for code scanning: SARIF 2.1.0 as GitHub code scanning accepts it.
//!
//! One run; `tool.driver.rules` describes every rule a result refers to (with GitHub's
//! `security-severity` so alerts get a severity), each result points at its rule by id and
//! index. Image paths become relative artifact URIs (`root/.aws/credentials`), config fields the
//! artifact `image-config` with a logical location (`Env.DB_PASSWORD`); the layer provenance
//! goes in the result's properties. `partialFingerprints` hash rule, place and secret
//! fingerprint (not the layer digest), so an alert survives a rebuild that keeps the leak.

use std::collections::BTreeMap;
use std::io::{self, Write};

use serde::Serialize;
use sha2::{Digest as _, Sha256};

use super::Report;
use crate::audit::{Finding, LayerProvenance, Location, RuleInfo, Severity};

/// The schema URI GitHub documents for uploads.
pub const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";

#[derive(Serialize)]
struct Sarif {
    #[serde(rename = "$schema")]
    schema: &'static str,
    version: &'static str,
    runs: Vec<Run>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Run {
    tool: Tool,
    results: Vec<SarifResult>,
    properties: RunProperties,
}

#[derive(Serialize)]
struct RunProperties {
    target: super::Target,
}

#[derive(Serialize)]
struct Tool {
    driver: Driver,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Driver {
    name: &'static str,
    version: &'static str,
    semantic_version: &'static str,
    rules: Vec<Rule>,
}

#[derive(Serialize)]
struct Text {
    text: String,
}

#[derive(Serialize)]
struct Help {
    text: String,
    markdown: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    id: String,
    name: String,
    short_description: Text,
    full_description: Text,
    help: Help,
    default_configuration: Configuration,
    properties: RuleProperties,
}

#[derive(Serialize)]
struct Configuration {
    level: &'static str,
}

#[derive(Serialize)]
struct RuleProperties {
    tags: Vec<&'static str>,
    precision: &'static str,
    #[serde(rename = "security-severity", skip_serializing_if = "Option::is_none")]
    security_severity: Option<&'static str>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifResult {
    rule_id: String,
    rule_index: usize,
    level: &'static str,
    message: Text,
    locations: Vec<SarifLocation>,
    partial_fingerprints: BTreeMap<&'static str, String>,
    properties: ResultProperties,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ResultProperties {
    severity: Severity,
    #[serde(skip_serializing_if = "Option::is_none")]
    layer: Option<LayerProvenance>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fingerprint: Option<String>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct SarifLocation {
    physical_location: PhysicalLocation,
    logical_locations: Vec<LogicalLocation>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhysicalLocation {
    artifact_location: ArtifactLocation,
    region: Region,
}

#[derive(Serialize)]
struct ArtifactLocation {
    uri: String,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Region {
    start_line: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    start_column: Option<u32>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct LogicalLocation {
    fully_qualified_name: String,
    kind: &'static str,
}

/// SARIF `level` for a severity.
pub fn level(s: Severity) -> &'static str {
    match s {
        Severity::Critical | Severity::High => "error",
        Severity::Medium => "warning",
        Severity::Low | Severity::Info => "note",
    }
}

/// GitHub's `security-severity` score (critical > 9, high 7–8.9, medium 4–6.9, low < 4).
pub fn security_severity(s: Severity) -> Option<&'static str> {
    match s {
        Severity::Critical => Some("9.5"),
        Severity::High => Some("8.0"),
        Severity::Medium => Some("5.5"),
        Severity::Low => Some("3.0"),
        Severity::Info => None,
    }
}

/// `secret.aws-access-key` → `SecretAwsAccessKey`.
fn pascal(id: &str) -> String {
    id.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut c = w.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// A path as a relative URI reference: percent-encoded, `..` parts neutralised (a crafted
/// member name must not become a URI that climbs out of the repository).
pub fn relative_uri(path: &str) -> String {
    let mut out = String::new();
    for (i, part) in path
        .split('/')
        .filter(|p| !p.is_empty() && *p != ".")
        .enumerate()
    {
        if i > 0 {
            out.push('/');
        }
        if part == ".." {
            out.push_str("%2E%2E");
            continue;
        }
        for b in part.bytes() {
            if b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=@".contains(&b) {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    if out.is_empty() { "%2F".into() } else { out }
}

/// The URI of a source file the audit read (a Dockerfile, a manifest): relative to the root
/// of the git repository that holds it, which is what code scanning matches alerts against,
/// wherever rsafe was run from and however the path was given. Outside a repository: a
/// relative path as given, an absolute one as a `file://` URI.
fn file_uri(path: &str) -> String {
    let given = std::path::Path::new(path);
    let absolute = match given.is_absolute() {
        true => Some(given.to_path_buf()),
        false => std::env::current_dir().ok().map(|d| d.join(given)),
    };
    let in_repo = absolute.as_deref().and_then(|abs| {
        let root = abs.ancestors().skip(1).find(|d| d.join(".git").exists())?;
        abs.strip_prefix(root)
            .ok()
            .map(|rel| rel.to_string_lossy().into_owned())
    });
    match in_repo {
        Some(rel) => relative_uri(&rel),
        None if given.is_absolute() => format!("file:///{}", relative_uri(path)),
        None => relative_uri(path),
    }
}

fn sarif_rule(r: &RuleInfo) -> Rule {
    Rule {
        id: r.id.clone(),
        name: pascal(&r.id),
        short_description: Text {
            text: r.title.clone(),
        },
        full_description: Text {
            text: r.description.clone(),
        },
        help: Help {
            text: format!("{}\n\nFix: {}", r.description, r.remediation),
            markdown: format!(
                "**{}**\n\n{}\n\n**Fix:** {}",
                r.title, r.description, r.remediation
            ),
        },
        default_configuration: Configuration {
            level: level(r.severity),
        },
        properties: RuleProperties {
            tags: vec!["security"],
            precision: if r.id.starts_with("secret.") {
                "high"
            } else {
                "very-high"
            },
            security_severity: security_severity(r.severity),
        },
    }
}

fn sarif_location(f: &Finding) -> SarifLocation {
    let (uri, line, column, logical, kind) = match &f.location {
        Location::ImageFile { path, line, layer } => {
            let name = match layer {
                Some(l) => format!("layer {}:{path}", l.index + 1),
                None => path.clone(),
            };
            (
                relative_uri(path),
                line.unwrap_or(1).max(1),
                None,
                name,
                "member",
            )
        }
        Location::ImageConfig { field } => {
            ("image-config".to_string(), 1, None, field.clone(), "member")
        }
        Location::File { path, line, column } => (
            file_uri(path),
            line.unwrap_or(1).max(1),
            *column,
            path.clone(),
            "module",
        ),
        Location::Container {
            container,
            pid,
            detail,
        } => {
            let mut name = container.clone();
            if let Some(p) = pid {
                name.push_str(&format!(" pid {p}"));
            }
            if let Some(d) = detail {
                name.push_str(&format!(" {d}"));
            }
            (
                format!("container/{}", relative_uri(container)),
                1,
                None,
                name,
                "object",
            )
        }
    };
    SarifLocation {
        physical_location: PhysicalLocation {
            artifact_location: ArtifactLocation { uri },
            region: Region {
                start_line: line,
                start_column: column,
            },
        },
        logical_locations: vec![LogicalLocation {
            fully_qualified_name: logical,
            kind,
        }],
    }
}

/// A fingerprint of the finding that survives rebuilds: rule, place (not the layer) and the
/// secret's own fingerprint.
fn stable_hash(f: &Finding) -> String {
    let place = match &f.location {
        Location::ImageFile { path, .. } | Location::File { path, .. } => path.clone(),
        other => other.to_string(),
    };
    let secret = f
        .evidence
        .as_ref()
        .and_then(|e| e.fingerprint.clone())
        .unwrap_or_default();
    let h = Sha256::digest(format!("{}\0{place}\0{secret}", f.rule).as_bytes());
    hex::encode(&h[..16])
}

/// Writes the report as a SARIF 2.1.0 log, newline-terminated.
pub fn write(report: &Report, out: &mut dyn Write) -> io::Result<()> {
    let mut rules: Vec<RuleInfo> = Vec::new();
    let mut results = Vec::new();
    for f in &report.findings {
        let rule_index = match rules.iter().position(|r| r.id == f.rule) {
            Some(i) => i,
            None => {
                rules.push(report.rule_for(f));
                rules.len() - 1
            }
        };
        let mut text = format!("{}: {}", f.title, f.location);
        if let Some(ev) = &f.evidence {
            text.push_str(&format!(" — {}", ev.excerpt));
        }
        let layer = match &f.location {
            Location::ImageFile { layer, .. } => layer.clone(),
            _ => None,
        };
        results.push(SarifResult {
            rule_id: f.rule.clone(),
            rule_index,
            level: level(f.severity),
            message: Text { text },
            locations: vec![sarif_location(f)],
            partial_fingerprints: BTreeMap::from([("rsafeFinding/v1", stable_hash(f))]),
            properties: ResultProperties {
                severity: f.severity,
                layer,
                fingerprint: f.evidence.as_ref().and_then(|e| e.fingerprint.clone()),
            },
        });
    }
    let log = Sarif {
        schema: SCHEMA,
        version: "2.1.0",
        runs: vec![Run {
            tool: Tool {
                driver: Driver {
                    name: "rsafe",
                    version: env!("CARGO_PKG_VERSION"),
                    semantic_version: env!("CARGO_PKG_VERSION"),
                    rules: rules.iter().map(sarif_rule).collect(),
                },
            },
            results,
            properties: RunProperties {
                target: report.target.clone(),
            },
        }],
    };
    serde_json::to_writer_pretty(&mut *out, &log)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::report::tests::sample;

    #[test]
    fn results_point_at_described_rules() {
        let mut out = Vec::new();
        write(&sample(), &mut out).unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["version"], "2.1.0");
        let run = &v["runs"][0];
        let rules = run["tool"]["driver"]["rules"].as_array().unwrap();
        let results = run["results"].as_array().unwrap();
        assert_eq!(results.len(), 3);
        for r in results {
            let idx = r["ruleIndex"].as_u64().unwrap() as usize;
            assert_eq!(rules[idx]["id"], r["ruleId"]);
            assert!(
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .is_some()
            );
            assert!(
                r["locations"][0]["physicalLocation"]["region"]["startLine"].as_u64() >= Some(1)
            );
        }
        // A rule not in the catalogue (the secret engine's) is described from the finding.
        let secret = rules
            .iter()
            .find(|r| r["id"] == "secret.aws-access-key")
            .unwrap();
        assert_eq!(secret["shortDescription"]["text"], "AWS access key");
        assert_eq!(secret["properties"]["security-severity"], "9.5");
        let uris: Vec<&str> = results
            .iter()
            .map(|r| {
                r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"]
                    .as_str()
                    .unwrap()
            })
            .collect();
        assert!(uris.contains(&"root/.aws/credentials"));
        // An image file's line becomes the region; without one the region is line 1.
        let region = |uri: &str| {
            results
                .iter()
                .find(|r| r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri)
                .map(|r| r["locations"][0]["physicalLocation"]["region"]["startLine"].clone())
                .unwrap()
        };
        assert_eq!(region("root/.aws/credentials"), 3);
        assert_eq!(region("%2E%2E/evil"), 1);
        assert!(uris.contains(&"%2E%2E/evil"));
        assert!(uris.contains(&"image-config"));
    }

    #[test]
    fn source_files_are_named_from_their_repository_root() {
        let repo = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(repo.path().join(".git")).unwrap();
        std::fs::create_dir_all(repo.path().join("deploy/app")).unwrap();
        let file = repo.path().join("deploy/app/Dockerfile");
        assert_eq!(file_uri(file.to_str().unwrap()), "deploy/app/Dockerfile");
        let outside = tempfile::tempdir().unwrap();
        let lone = outside.path().join("a b/Dockerfile");
        let uri = file_uri(lone.to_str().unwrap());
        assert!(uri.starts_with("file:///"), "{uri}");
        assert!(uri.ends_with("/a%20b/Dockerfile"), "{uri}");
    }

    #[test]
    fn uris_and_names() {
        assert_eq!(relative_uri("/usr/bin/a b"), "usr/bin/a%20b");
        assert_eq!(relative_uri("/"), "%2F");
        assert_eq!(pascal("fs.symlink-at-mount-point"), "FsSymlinkAtMountPoint");
    }
}
