//! Auditing: images, Dockerfiles, compose files and running containers all produce [`Finding`]s
//! in one model, so one report writer and one `--fail-on` gate serve them all.
//!
//! The image audit ([`audit_image`]) works in two passes:
//! 1. every layer is read as a stream (never extracted), all layers at once and the files inside
//!    a layer spread over the cores: each entry's metadata is recorded, secrets are searched in
//!    the files the secret engine wants, ELF hardening is read for privileged binaries
//!    ([`layers`]);
//! 2. in layer order, whiteouts and overwrites decide which version of each path the container
//!    finally sees and which layer deleted the rest ([`layers::MergedView`]); file-system checks
//!    ([`fs`]) run on what is visible, secrets are reported wherever they are, deleted or not.
//!
//! Config checks ([`image`]) read the image config and history. What is reported is decided by
//! the rules declared next to each check ([`Rule`]); `rsafe rules` lists them.
#![forbid(unsafe_code)]

pub mod compose;
pub mod context;
pub mod dockerfile;
pub mod elf;
pub mod finding;
pub mod fs;
pub mod gate;
pub mod ignore;
pub mod image;
pub mod k8s;
pub mod layers;
pub mod procs;
pub mod secrets;

use std::io;

use serde::{Deserialize, Serialize};

use crate::image::config::{Image, ImageError};
use crate::image::layer::{DEFAULT_MAX_EXPANDED, LayerError};
use crate::image::{Digest, Store};

pub use finding::{Evidence, Finding, LayerProvenance, Location, Severity};

/// A check rsafe itself makes (secret rules come from the secret engine): its stable id, how bad
/// a hit usually is, and what to tell the user. Checks build their findings from these, so ids,
/// titles and fixes never drift from what `rsafe rules` prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rule {
    pub id: &'static str,
    /// The usual severity; a check may raise or lower it for a given hit (said in `description`).
    pub severity: Severity,
    pub title: &'static str,
    pub description: &'static str,
    pub remediation: &'static str,
}

impl Rule {
    /// A finding of this rule at its usual severity.
    pub fn finding(&self, location: Location, evidence: Option<Evidence>) -> Finding {
        self.finding_at(self.severity, location, evidence)
    }

    /// A finding of this rule at a severity the check decided for this hit.
    pub fn finding_at(
        &self,
        severity: Severity,
        location: Location,
        evidence: Option<Evidence>,
    ) -> Finding {
        Finding {
            rule: self.id.to_string(),
            severity,
            title: self.title.to_string(),
            location,
            evidence,
            remediation: self.remediation.to_string(),
        }
    }
}

/// A rule as reports and `rsafe rules` show it, whoever defines it (rsafe's checks or the secret
/// engine's data-driven rules, which build it straight from `policies/secrets.toml`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleInfo {
    /// Stable id (`image.user-root`, `secret.aws-access-key-id`, `secret.file.…`).
    pub id: String,
    pub severity: Severity,
    /// One line for a person.
    pub title: String,
    /// What the rule detects and why it matters.
    pub description: String,
    /// How to fix a finding of this rule.
    pub remediation: String,
}

impl From<&Rule> for RuleInfo {
    fn from(r: &Rule) -> Self {
        RuleInfo {
            id: r.id.to_string(),
            severity: r.severity,
            title: r.title.to_string(),
            description: r.description.to_string(),
            remediation: r.remediation.to_string(),
        }
    }
}

/// Every rule of rsafe's own checks (image config, layers, file system, ELF, running
/// containers), in a stable order.
pub fn builtin_rules() -> Vec<&'static Rule> {
    image::RULES
        .iter()
        .chain(layers::RULES)
        .chain(fs::RULES)
        .chain(elf::RULES)
        .chain(procs::RULES)
        .collect()
}

/// What the image audit needs from a secret detector: which files are worth reading, and the
/// secrets in a file or a piece of config text as findings at the location the engine gives.
/// Kept as a trait so the layer walk does not care how secrets are recognised (and can be tested
/// with a fake).
pub trait SecretDetector: Sync {
    /// Whether the file at `path` (absolute in the image) of `size` bytes should be read.
    fn wants_path(&self, path: &str, size: u64) -> bool;
    /// Secrets in a file's content.
    fn scan_file(&self, path: &str, content: &[u8], location: &Location) -> Vec<Finding>;
    /// Secrets in a config value (an `Env` entry, a history `created_by`, a label).
    fn scan_text(&self, text: &str, location: &Location) -> Vec<Finding>;
    /// How many leading bytes of a file the detector looks at: the walk reads no more.
    fn max_scan_bytes(&self) -> u64;
}

impl SecretDetector for secrets::SecretScanner {
    fn wants_path(&self, path: &str, size: u64) -> bool {
        secrets::SecretScanner::wants_path(self, path, size)
    }

    fn scan_file(&self, path: &str, content: &[u8], location: &Location) -> Vec<Finding> {
        secrets::SecretScanner::scan_file(self, path, content)
            .into_iter()
            .map(|hit| hit.into_finding(location.clone()))
            .collect()
    }

    fn scan_text(&self, text: &str, location: &Location) -> Vec<Finding> {
        secrets::SecretScanner::scan_text(self, text)
            .into_iter()
            .map(|hit| hit.into_finding(location.clone()))
            .collect()
    }

    fn max_scan_bytes(&self) -> u64 {
        secrets::SecretScanner::max_scan_bytes(self)
    }
}

/// Knobs of an image audit.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    /// Privileged (setuid, setgid, capability) binaries are read up to this size to inspect
    /// their ELF hardening; larger ones are reported without it. (How much of other files is
    /// read for secrets is the detector's [`SecretDetector::max_scan_bytes`].)
    pub max_file_size: u64,
    /// Cap on one layer's expanded size (decompression bombs).
    pub max_layer_expanded: u64,
    /// Bytes of file content allowed in flight between the tar readers and the scanning
    /// threads, all layers together; past it a reader scans the file itself (back-pressure
    /// without blocking). It bounds the audit's memory.
    pub inflight_budget: u64,
}

impl Default for AuditOptions {
    fn default() -> Self {
        AuditOptions {
            max_file_size: 32 << 20,
            max_layer_expanded: DEFAULT_MAX_EXPANDED,
            inflight_budget: 16 << 20,
        }
    }
}

/// Told how an audit advances, so a CLI can draw a progress bar without the engine knowing how.
pub trait Progress: Sync {
    /// `n` more uncompressed layer bytes were read.
    fn bytes(&self, n: u64);
    /// Layer `index` was read to the end and verified.
    fn layer_done(&self, index: usize);
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;

impl Progress for NoProgress {
    fn bytes(&self, _: u64) {}
    fn layer_done(&self, _: usize) {}
}

/// Why an audit could not be completed (as opposed to what it found).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Layer(#[from] LayerError),
    #[error("layer {number} ({digest}): not a readable tar stream: {source}")]
    Tar {
        /// 1-based, as people count layers.
        number: usize,
        digest: Digest,
        source: io::Error,
    },
}

/// How much an image audit read.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanStats {
    pub layers: usize,
    /// Tar entries seen in all layers.
    pub entries: u64,
    /// Uncompressed layer bytes streamed.
    pub bytes: u64,
    /// Files whose content was read (secrets, ELF headers).
    pub files_read: u64,
    /// Bytes of file content read.
    pub bytes_read: u64,
}

/// The findings of an image audit and what it read to get them.
#[derive(Debug, Clone)]
pub struct ImageAudit {
    pub findings: Vec<Finding>,
    pub stats: ScanStats,
}

/// Audits an image: config, history and labels, then every layer as a stream (see the module
/// docs). Layers are verified against their digests while read; a mismatch is an error, not a
/// finding, because nothing read from such a layer can be trusted.
pub fn audit_image(
    store: &Store,
    img: &Image,
    detector: &dyn SecretDetector,
    options: &AuditOptions,
    progress: &dyn Progress,
) -> Result<ImageAudit, AuditError> {
    let scans = layers::scan_layers(store, img, detector, options, progress)?;
    let view = layers::MergedView::build(&scans);
    let mut findings = image::check_config(img, detector, view.passwd(&scans));
    findings.extend(layers::secret_findings(&scans, &view));
    findings.extend(layers::layer_findings(&scans, &view));
    findings.extend(fs::check_visible(&scans, &view, &fs::MountPoints::of(img)));
    let stats = ScanStats {
        layers: scans.len(),
        entries: scans.iter().map(|s| s.stats.entries).sum(),
        bytes: scans.iter().map(|s| s.stats.expanded).sum(),
        files_read: scans.iter().map(|s| s.stats.files_read).sum(),
        bytes_read: scans.iter().map(|s| s.stats.bytes_read).sum(),
    };
    Ok(ImageAudit { findings, stats })
}

/// Orders findings for every report: worst first, then by rule, then by where.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.rule.cmp(&b.rule))
            .then_with(|| a.location.to_string().cmp(&b.location.to_string()))
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn builtin_rule_ids_are_unique_and_namespaced() {
        let rules = builtin_rules();
        let ids: BTreeSet<&str> = rules.iter().map(|r| r.id).collect();
        assert_eq!(ids.len(), rules.len(), "duplicate rule id");
        for r in rules {
            let ns = r.id.split('.').next().unwrap_or_default();
            assert!(
                ["image", "layer", "fs", "elf", "container"].contains(&ns),
                "{} is outside rsafe's namespaces",
                r.id
            );
            assert!(!r.title.is_empty() && !r.remediation.is_empty() && !r.description.is_empty());
        }
    }

    /// Finds `TOKEN=<value>` lines; wants every file.
    struct FakeDetector;

    impl SecretDetector for FakeDetector {
        fn wants_path(&self, _: &str, size: u64) -> bool {
            size > 0
        }
        fn scan_file(&self, _: &str, content: &[u8], location: &Location) -> Vec<Finding> {
            self.scan_text(&String::from_utf8_lossy(content), location)
        }
        fn scan_text(&self, text: &str, location: &Location) -> Vec<Finding> {
            text.lines()
                .filter_map(|l| l.strip_prefix("TOKEN="))
                .map(|v| Finding {
                    rule: "secret.fake".into(),
                    severity: Severity::High,
                    title: "fake token".into(),
                    location: location.clone(),
                    evidence: Some(Evidence::secret(v)),
                    remediation: "rotate".into(),
                })
                .collect()
        }
        fn max_scan_bytes(&self) -> u64 {
            1 << 20
        }
    }

    fn tar_layer(build: impl FnOnce(&mut tar::Builder<Vec<u8>>)) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        build(&mut b);
        b.into_inner().unwrap()
    }

    fn file(b: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32, data: &[u8]) {
        let mut h = tar::Header::new_gnu();
        h.set_size(data.len() as u64);
        h.set_mode(mode);
        h.set_entry_type(tar::EntryType::Regular);
        b.append_data(&mut h, path, data).unwrap();
    }

    /// A store holding one image made of `layers` (gzip-compressed), with history.
    fn image_of(dir: &std::path::Path, layers: &[Vec<u8>]) -> (Store, Image) {
        use std::io::Write;
        let store = Store::open(dir).unwrap();
        let mut descs = Vec::new();
        let mut diff_ids = Vec::new();
        let mut history = Vec::new();
        for (i, l) in layers.iter().enumerate() {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(l).unwrap();
            let blob = gz.finish().unwrap();
            let d = store.put_bytes(&blob).unwrap();
            descs.push(serde_json::json!({
                "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                "digest": d.to_string(), "size": blob.len()}));
            diff_ids.push(Digest::of_bytes(l).to_string());
            history.push(serde_json::json!({"created_by": format!("step {}", i + 1)}));
        }
        // Two RUN steps after `ARG DB_PASSWORD`: the value is recorded in both.
        for _ in 0..2 {
            history.push(serde_json::json!({
                "created_by": "|1 DB_PASSWORD=hunter2-hunter2 /bin/sh -c make",
                "empty_layer": true}));
        }
        let config = serde_json::to_vec(&serde_json::json!({
            "architecture": "amd64", "os": "linux",
            "config": {"User": "app",
                       "Env": ["TOKEN=from-the-config-0123456789", "API_KEY=abcd1234efgh",
                               "API_KEY_FILE=/run/secrets/api"],
                       "ExposedPorts": {"22/tcp": {}, "8080/tcp": {}}},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": history}))
        .unwrap();
        let config_d = store.put_bytes(&config).unwrap();
        let manifest = serde_json::to_vec(&serde_json::json!({
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                       "digest": config_d.to_string(), "size": config.len()},
            "layers": descs}))
        .unwrap();
        let m = store.put_bytes(&manifest).unwrap();
        let img = Image::from_manifest(&store, m).unwrap();
        (store, img)
    }

    #[test]
    fn the_engine_streams_every_layer_and_knows_what_was_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let l1 = tar_layer(|b| {
            for i in 0..200 {
                file(
                    b,
                    &format!("app/f{i}.txt"),
                    0o644,
                    format!("line {i}\n").as_bytes(),
                );
            }
            file(
                b,
                "app/.env",
                0o600,
                b"TOKEN=leaked-in-layer-one-0123456789\n",
            );
            file(
                b,
                "etc/passwd",
                0o644,
                b"root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n",
            );
        });
        let l2 = tar_layer(|b| {
            file(b, "app/.wh..env", 0o644, b"");
            file(b, "app/run", 0o4755, b"#!/bin/sh\n");
        });
        let (store, img) = image_of(dir.path(), &[l1, l2]);
        let run = |budget| {
            let options = AuditOptions {
                inflight_budget: budget,
                ..AuditOptions::default()
            };
            let mut r = audit_image(&store, &img, &FakeDetector, &options, &NoProgress).unwrap();
            sort_findings(&mut r.findings);
            r
        };
        let parallel = run(64 << 20);
        let inline = run(0);
        assert_eq!(
            parallel.findings, inline.findings,
            "back-pressure changes nothing"
        );
        assert_eq!(parallel.stats.layers, 2);
        assert_eq!(parallel.stats.entries, 204);
        let shown: Vec<String> = parallel
            .findings
            .iter()
            .map(|f| format!("{} {}", f.rule, f.location))
            .collect();
        assert_eq!(
            shown,
            [
                "image.secret-build-arg config history[2].created_by",
                "image.secret-env config Env.API_KEY",
                "secret.fake config Env.TOKEN",
                "secret.fake layer 1 /app/.env (deleted in layer 2, still present in layer 1)",
                "image.ssh-exposed config ExposedPorts",
                "fs.setuid layer 2 /app/run",
            ]
        );
        let arg = &parallel.findings[0].evidence.as_ref().unwrap().excerpt;
        assert_eq!(
            arg,
            "DB_PASSWORD=…[redacted 15 chars]; same value in 1 later history entry"
        );
    }

    #[test]
    fn a_layer_that_does_not_match_its_digest_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let l1 = tar_layer(|b| file(b, "a", 0o644, b"a"));
        let (store, img) = image_of(dir.path(), &[l1]);
        // Corrupt the blob behind the store's back.
        let path = store.blob_path(&img.layers()[0].digest);
        let mut perms = std::fs::metadata(&path).unwrap().permissions();
        #[allow(clippy::permissions_set_readonly_false)]
        perms.set_readonly(false);
        std::fs::set_permissions(&path, perms).unwrap();
        let mut bytes = std::fs::read(&path).unwrap();
        let n = bytes.len();
        bytes[n - 5] ^= 0xff;
        std::fs::write(&path, bytes).unwrap();
        let err = audit_image(
            &store,
            &img,
            &FakeDetector,
            &AuditOptions::default(),
            &NoProgress,
        )
        .unwrap_err();
        assert!(err.to_string().contains("layer"), "{err}");
    }

    #[test]
    fn findings_sort_worst_first() {
        let loc = |p: &str| Location::ImageFile {
            path: p.into(),
            line: None,
            layer: None,
        };
        let mut f = vec![
            layers::TAR_TRAVERSAL.finding_at(Severity::Low, loc("/b"), None),
            layers::TAR_TRAVERSAL.finding(loc("/a"), None),
            layers::TAR_TRAVERSAL.finding_at(Severity::Low, loc("/a"), None),
        ];
        sort_findings(&mut f);
        assert_eq!(f[0].severity, Severity::Critical);
        assert_eq!(f[1].location, loc("/a"));
    }
}
