//! The audit gate in front of `rsafe run`: the image audit's findings decide whether a
//! container may start, and are kept between runs so that a gated image starts as fast as an
//! ungated one.
//!
//! What is kept is the *verdict*: every finding of the image audit, before the ignore file and
//! the threshold are applied. Both are applied at every start, so a lower threshold, or an
//! edited `.rsafeignore`, takes effect at once and needs no new audit. The verdict depends only
//! on the image and on the audit itself, so it is kept per manifest digest (it names the
//! config and every layer blob) and per [`RuleSetVersion`] (rsafe's version, its checks' rule
//! ids and severities, the secret rules it was built with, and this very build of rsafe):
//! `<store>/gate/<manifest hex>-<rule-set version>.json`.
//!
//! A cached verdict lets an image run, so who could have written it matters, as for the
//! compiled seccomp filters (`runtime::seccomp::cache`):
//! - an entry is read only when its directory and the file itself are owned by the user
//!   running rsafe and writable by nobody else, opened without following symlinks and checked
//!   on the open descriptor; anything else is a miss, and the image is audited again;
//! - the entry repeats its manifest digest and rule-set version, and a SHA-256 of its findings:
//!   a truncated, corrupt or renamed entry is a miss, never a pass;
//! - entries are written to a private temporary file and renamed into place.

use std::io;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};

use super::ignore::IgnoreList;
use super::secrets::{SecretScanner, SecretsError};
use super::{AuditError, AuditOptions, Finding, NoProgress, ScanStats, Severity};
use crate::image::config::{Image, ImageError};
use crate::image::store_cache::{StoreCache, Unread, WriteError};
use crate::image::{Digest, Store};

/// The store's subdirectory for verdicts.
pub const DIR_NAME: &str = "gate";
/// Bumped when the entry format or the meaning of the key changes.
const FORMAT: &str = "rsafe gate verdict v1";
/// A verdict is a few KiB (thousands of findings for a large distribution image are a few
/// MiB); anything larger is not one of ours.
const MAX_ENTRY: u64 = 64 << 20;
/// Entries kept; the oldest go when a new one is written beyond this.
const MAX_ENTRIES: usize = 256;

/// FNV-1a of the secret rules compiled into this build (`policies/secrets.toml`), computed
/// by the compiler: hashing 240 KB at every start would cost more than the rest of a cache
/// hit.
const SECRET_RULES_HASH: u64 = fnv1a(include_bytes!("../../policies/secrets.toml"));

const fn fnv1a(bytes: &[u8]) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    let mut i = 0;
    while i < bytes.len() {
        hash ^= bytes[i] as u64;
        hash = hash.wrapping_mul(0x100_0000_01b3);
        i += 1;
    }
    hash
}

/// Why the gate could not reach a verdict (as opposed to the verdict itself).
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    #[error("{0:?} is not a gate level (off, info, low, medium, high or critical)")]
    Level(String),
    #[error(transparent)]
    Image(#[from] ImageError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("the builtin secret rules: {0}")]
    Secrets(#[from] SecretsError),
    #[error("{path}: {source}")]
    Cache { path: PathBuf, source: io::Error },
}

/// A gate setting: `off`, or the severity from which a finding refuses the image.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// No gate: the image is not audited.
    Off,
    /// Refuse an image with a finding at or above this severity.
    At(Severity),
}

impl Level {
    /// The threshold, or None when the gate is off.
    pub fn threshold(self) -> Option<Severity> {
        match self {
            Level::Off => None,
            Level::At(s) => Some(s),
        }
    }
}

impl FromStr for Level {
    type Err = GateError;

    /// `off`, or a severity name (`high`), case-insensitively.
    fn from_str(s: &str) -> Result<Level, GateError> {
        let lower = s.trim().to_ascii_lowercase();
        let severity = match lower.as_str() {
            "off" => return Ok(Level::Off),
            "info" => Severity::Info,
            "low" => Severity::Low,
            "medium" => Severity::Medium,
            "high" => Severity::High,
            "critical" => Severity::Critical,
            _ => return Err(GateError::Level(s.to_string())),
        };
        Ok(Level::At(severity))
    }
}

/// Every finding of an image audit, before the ignore file and the threshold: what is cached,
/// so that a later start with another threshold or ignore file needs no new audit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// `sha256:…` of the audited manifest.
    pub manifest: String,
    /// `os/architecture` of the image config.
    pub platform: String,
    /// Every finding, evidence redacted as in any report: the cache never holds a secret.
    pub findings: Vec<Finding>,
    /// What the audit read (shown in the refusal's table heading).
    pub stats: ScanStats,
}

/// What a verdict means for one start.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The findings at or above the threshold that no ignore entry accepts: any refuses the
    /// image. Sorted worst first.
    pub blocking: Vec<Finding>,
    /// Findings below the threshold (not ignored).
    pub below: usize,
    /// Findings the ignore file accepts.
    pub ignored: usize,
}

impl Decision {
    /// Whether the image may run.
    pub fn passes(&self) -> bool {
        self.blocking.is_empty()
    }
}

impl Verdict {
    /// Applies the ignore file, then the threshold (as `rsafe audit --fail-on` does).
    pub fn decide(&self, threshold: Severity, ignores: &IgnoreList) -> Decision {
        let (kept, ignored) = ignores.apply(self.findings.clone());
        let (mut blocking, below): (Vec<Finding>, Vec<Finding>) =
            kept.into_iter().partition(|f| f.severity >= threshold);
        super::sort_findings(&mut blocking);
        Decision {
            blocking,
            below: below.len(),
            ignored,
        }
    }
}

/// Audits the image whose manifest is `manifest` in `store` with the builtin rules and default
/// options: the same audit `rsafe audit IMAGE` makes. Starts threads (the layer walk).
pub fn audit(store: &Store, manifest: &Digest) -> Result<Verdict, GateError> {
    let image = Image::from_manifest(store, manifest.clone())?;
    let scanner = SecretScanner::builtin()?;
    let audit = super::audit_image(
        store,
        &image,
        &scanner,
        &AuditOptions::default(),
        &NoProgress,
    )?;
    Ok(Verdict {
        manifest: manifest.to_string(),
        platform: format!("{}/{}", image.config.os(), image.config.architecture()),
        findings: audit.findings,
        stats: audit.stats,
    })
}

/// Which audit produced a verdict: a verdict of another rule set is never reused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSetVersion(String);

impl RuleSetVersion {
    /// The rule set of this build: rsafe's version, its own checks (ids and severities), the
    /// secret rules compiled in, and the identity of the executable (a rebuilt rsafe may check
    /// differently under the same version number). A few microseconds: one `stat`. None when
    /// the executable cannot be identified (then nothing is cached).
    pub fn current() -> Option<RuleSetVersion> {
        let build = crate::image::store_cache::this_build()?;
        let checks: Vec<(&str, Severity)> = super::builtin_rules()
            .into_iter()
            .map(|r| (r.id, r.severity))
            .collect();
        Some(RuleSetVersion::of(
            env!("CARGO_PKG_VERSION"),
            &checks,
            SECRET_RULES_HASH,
            &build,
        ))
    }

    /// The version of a rule set made of these parts (16 hex characters of a SHA-256).
    pub fn of(
        version: &str,
        checks: &[(&str, Severity)],
        secret_rules: u64,
        build: &str,
    ) -> RuleSetVersion {
        let mut h = Sha256::new();
        let mut field = |bytes: &[u8]| {
            h.update((bytes.len() as u64).to_le_bytes());
            h.update(bytes);
        };
        field(FORMAT.as_bytes());
        field(version.as_bytes());
        for (id, severity) in checks {
            field(id.as_bytes());
            field(severity.as_str().as_bytes());
        }
        field(&secret_rules.to_le_bytes());
        field(build.as_bytes());
        RuleSetVersion(hex::encode(&h.finalize()[..8]))
    }

    /// The hex form used in entry names.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// What the cache holds for one image and rule set.
#[derive(Serialize, Deserialize)]
struct Entry {
    format: String,
    manifest: String,
    rules: String,
    /// SHA-256 of the verdict's JSON: catches damage that still parses.
    sha256: String,
    verdict: Verdict,
}

/// Why there is no usable cached verdict (said with `--verbose`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Nothing cached for this image and rule set.
    Absent,
    /// The directory or entry could be written by someone else (or is a symlink).
    Untrusted(String),
    /// The entry is truncated, corrupt, too large or for another image or rule set.
    Damaged(String),
}

impl std::fmt::Display for Miss {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Miss::Absent => f.write_str("no cached verdict"),
            Miss::Untrusted(why) => write!(f, "cached verdict not trusted: {why}"),
            Miss::Damaged(why) => write!(f, "cached verdict damaged: {why}"),
        }
    }
}

/// The verdict cache of one store.
#[derive(Debug, Clone)]
pub struct VerdictCache {
    dir: PathBuf,
}

impl VerdictCache {
    /// The cache of the store at `store_root` (nothing is created until the first write).
    pub fn in_store(store_root: &Path) -> VerdictCache {
        VerdictCache {
            dir: store_root.join(DIR_NAME),
        }
    }

    /// Where entries live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The entry file of an image and rule set.
    pub fn entry_path(&self, manifest: &Digest, rules: &RuleSetVersion) -> PathBuf {
        self.dir.join(entry_name(manifest, rules))
    }

    /// The cached verdict for `manifest` under `rules`, or why there is none rsafe can trust.
    pub fn get(&self, manifest: &Digest, rules: &RuleSetVersion) -> Result<Verdict, Miss> {
        let name = entry_name(manifest, rules);
        let bytes = self.entries().read(&name).map_err(|unread| match unread {
            Unread::Absent => Miss::Absent,
            Unread::Untrusted(why) => Miss::Untrusted(why),
            Unread::Damaged(why) => Miss::Damaged(why),
        })?;
        check_entry(&bytes, manifest, rules)
            .map_err(|why| Miss::Damaged(format!("{}: {why}", self.dir.join(&name).display())))
    }

    /// Writes the verdict under `rules`, replacing any older entry; returns the entry's path.
    /// Creates the cache directory (mode 0700) when the store has none.
    pub fn put(&self, rules: &RuleSetVersion, verdict: &Verdict) -> Result<PathBuf, GateError> {
        let manifest: Digest = verdict.manifest.parse().map_err(|e| GateError::Cache {
            path: self.dir.clone(),
            source: io::Error::new(io::ErrorKind::InvalidInput, format!("{e}")),
        })?;
        self.entries()
            .write(&entry_name(&manifest, rules), &entry_bytes(verdict, rules))
            .map_err(|WriteError { path, source }| GateError::Cache { path, source })
    }

    fn entries(&self) -> StoreCache {
        StoreCache::new(self.dir.clone(), MAX_ENTRY, MAX_ENTRIES)
    }
}

fn entry_name(manifest: &Digest, rules: &RuleSetVersion) -> String {
    format!("{}-{}.json", manifest.hex(), rules.as_str())
}

fn verdict_sha256(verdict: &Verdict) -> String {
    // Serializing plain data (strings, numbers, enums) cannot fail.
    let json = serde_json::to_vec(verdict).unwrap_or_default();
    hex::encode(Sha256::digest(&json))
}

fn entry_bytes(verdict: &Verdict, rules: &RuleSetVersion) -> Vec<u8> {
    let entry = Entry {
        format: FORMAT.to_string(),
        manifest: verdict.manifest.clone(),
        rules: rules.as_str().to_string(),
        sha256: verdict_sha256(verdict),
        verdict: verdict.clone(),
    };
    serde_json::to_vec(&entry).unwrap_or_default()
}

/// The verdict in an entry's bytes, or what is wrong with them.
fn check_entry(bytes: &[u8], manifest: &Digest, rules: &RuleSetVersion) -> Result<Verdict, String> {
    let entry: Entry = serde_json::from_slice(bytes).map_err(|e| format!("not an entry: {e}"))?;
    let manifest = manifest.to_string();
    if entry.format != FORMAT {
        return Err(format!("format {:?}", entry.format));
    }
    if entry.manifest != manifest || entry.verdict.manifest != manifest {
        return Err(format!("the verdict of {}", entry.verdict.manifest));
    }
    if entry.rules != rules.as_str() {
        return Err(format!("a verdict of rule set {}", entry.rules));
    }
    if entry.sha256 != verdict_sha256(&entry.verdict) {
        return Err("its findings do not match their checksum".into());
    }
    Ok(entry.verdict)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::{Evidence, LayerProvenance, Location};
    use std::os::unix::fs::PermissionsExt;

    fn manifest() -> Digest {
        Digest::of_bytes(b"a manifest")
    }

    fn rules() -> RuleSetVersion {
        RuleSetVersion::of(
            "0.1.0",
            &[("image.user-root", Severity::Medium)],
            7,
            "build",
        )
    }

    fn finding(rule: &str, severity: Severity, location: Location) -> Finding {
        Finding {
            rule: rule.into(),
            severity,
            title: format!("{rule} title"),
            location,
            evidence: Some(Evidence::secret("AKIAFAKEFAKEFAKEFAKE")),
            remediation: "rotate".into(),
        }
    }

    /// One finding of each severity, in every kind of location.
    fn verdict() -> Verdict {
        let layer = LayerProvenance {
            index: 1,
            digest: format!("{}", Digest::of_bytes(b"layer")),
            created_by: Some("COPY . /".into()),
            removed_in: Some(2),
        };
        let file = |path: &str| Location::ImageFile {
            path: path.into(),
            line: Some(3),
            layer: Some(layer.clone()),
        };
        Verdict {
            manifest: manifest().to_string(),
            platform: "linux/amd64".into(),
            findings: vec![
                finding(
                    "secret.aws",
                    Severity::Critical,
                    file("/root/.aws/credentials"),
                ),
                finding(
                    "image.secret-env",
                    Severity::High,
                    Location::ImageConfig {
                        field: "Env.TOKEN".into(),
                    },
                ),
                finding(
                    "image.user-root",
                    Severity::Medium,
                    Location::ImageConfig {
                        field: "User".into(),
                    },
                ),
                finding("fs.world-writable", Severity::Low, file("/srv/drop")),
                finding(
                    "other.kind",
                    Severity::Info,
                    Location::File {
                        path: "x".into(),
                        line: None,
                        column: None,
                    },
                ),
            ],
            stats: ScanStats {
                layers: 3,
                entries: 10,
                bytes: 1000,
                files_read: 2,
                bytes_read: 100,
            },
        }
    }

    #[test]
    fn levels_parse_with_off() {
        assert_eq!("off".parse::<Level>().unwrap(), Level::Off);
        assert_eq!("High".parse::<Level>().unwrap(), Level::At(Severity::High));
        assert_eq!(
            " critical".parse::<Level>().unwrap(),
            Level::At(Severity::Critical)
        );
        assert_eq!(Level::At(Severity::Low).threshold(), Some(Severity::Low));
        assert_eq!(Level::Off.threshold(), None);
        for bad in ["", "severe", "none", "hi"] {
            let err = bad.parse::<Level>().unwrap_err().to_string();
            assert!(err.contains("not a gate level"), "{err}");
        }
    }

    #[test]
    fn the_rule_set_version_changes_with_every_part() {
        let checks = [("image.user-root", Severity::Medium)];
        let base = RuleSetVersion::of("0.1.0", &checks, 1, "b");
        assert_eq!(base, RuleSetVersion::of("0.1.0", &checks, 1, "b"));
        assert_eq!(base.as_str().len(), 16);
        let others = [
            RuleSetVersion::of("0.1.1", &checks, 1, "b"),
            RuleSetVersion::of("0.1.0", &[("image.user-root", Severity::High)], 1, "b"),
            RuleSetVersion::of("0.1.0", &[("image.user-rooT", Severity::Medium)], 1, "b"),
            RuleSetVersion::of("0.1.0", &[], 1, "b"),
            RuleSetVersion::of("0.1.0", &checks, 2, "b"),
            RuleSetVersion::of("0.1.0", &checks, 1, "c"),
        ];
        for other in &others {
            assert_ne!(&base, other);
        }
        // Fields are length-prefixed: moving a byte between two of them is another version.
        assert_ne!(
            RuleSetVersion::of("0.1.0", &[("ab", Severity::Low)], 1, "b"),
            RuleSetVersion::of("0.1.0a", &[("b", Severity::Low)], 1, "b"),
        );
        let now = RuleSetVersion::current().unwrap();
        assert_eq!(
            now,
            RuleSetVersion::current().unwrap(),
            "stable in one build"
        );
        assert_ne!(SECRET_RULES_HASH, fnv1a(b""));
        assert_ne!(fnv1a(b"rule a"), fnv1a(b"rule b"));
    }

    #[test]
    fn the_threshold_and_the_ignore_file_decide() {
        let v = verdict();
        let none = IgnoreList::default();
        let high = v.decide(Severity::High, &none);
        assert!(!high.passes());
        let rules: Vec<&str> = high.blocking.iter().map(|f| f.rule.as_str()).collect();
        assert_eq!(rules, ["secret.aws", "image.secret-env"]);
        assert_eq!((high.below, high.ignored), (3, 0));
        assert_eq!(v.decide(Severity::Info, &none).blocking.len(), 5);

        let ignores = IgnoreList::parse(
            "secret.* /root/**   # rotated\nimage.secret-env  # test image\n",
            Path::new(".rsafeignore"),
        )
        .unwrap();
        let d = v.decide(Severity::High, &ignores);
        assert!(d.passes(), "{d:?}");
        assert_eq!((d.below, d.ignored), (3, 2));
        assert!(!v.decide(Severity::Medium, &ignores).passes());
    }

    #[test]
    fn a_verdict_is_read_back_as_written() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = VerdictCache::in_store(tmp.path());
        assert_eq!(cache.get(&manifest(), &rules()), Err(Miss::Absent));
        let path = cache.put(&rules(), &verdict()).unwrap();
        assert_eq!(path, cache.entry_path(&manifest(), &rules()));
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(cache.get(&manifest(), &rules()), Ok(verdict()));
        // Another rule set or another image has no verdict yet.
        let other = RuleSetVersion::of("0.2.0", &[], 7, "build");
        assert_eq!(cache.get(&manifest(), &other), Err(Miss::Absent));
        assert_eq!(
            cache.get(&Digest::of_bytes(b"other"), &rules()),
            Err(Miss::Absent)
        );
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), 1);
    }

    fn damaged(cache: &VerdictCache) -> bool {
        matches!(cache.get(&manifest(), &rules()), Err(Miss::Damaged(_)))
    }

    #[test]
    fn damaged_entries_are_misses_never_passes() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = VerdictCache::in_store(tmp.path());
        let path = cache.put(&rules(), &verdict()).unwrap();
        let good = std::fs::read(&path).unwrap();
        let text = String::from_utf8(good.clone()).unwrap();
        let write = |bytes: &[u8]| std::fs::write(&path, bytes).unwrap();

        for cut in [0, 1, good.len() / 2, good.len() - 1] {
            write(&good[..cut]);
            assert!(damaged(&cache), "truncated to {cut} bytes");
        }
        // Findings removed, the rest intact: the checksum no longer matches.
        let mut entry: serde_json::Value = serde_json::from_slice(&good).unwrap();
        entry["verdict"]["findings"] = serde_json::json!([]);
        write(entry.to_string().as_bytes());
        assert!(damaged(&cache));
        // A severity lowered.
        write(text.replacen("\"critical\"", "\"info\"", 1).as_bytes());
        assert!(damaged(&cache));
        // Another image's clean verdict copied under this image's name.
        let mut clean = verdict();
        clean.manifest = Digest::of_bytes(b"clean image").to_string();
        clean.findings.clear();
        let other = cache.put(&rules(), &clean).unwrap();
        std::fs::copy(&other, &path).unwrap();
        assert!(damaged(&cache));
        // Another format.
        write(text.replace(FORMAT, "rsafe gate verdict v0").as_bytes());
        assert!(damaged(&cache));

        write(&good);
        assert_eq!(cache.get(&manifest(), &rules()), Ok(verdict()));
    }

    fn untrusted(cache: &VerdictCache) -> bool {
        matches!(cache.get(&manifest(), &rules()), Err(Miss::Untrusted(_)))
    }

    #[test]
    fn entries_anyone_else_could_write_are_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = VerdictCache::in_store(tmp.path());
        let path = cache.put(&rules(), &verdict()).unwrap();
        let chmod = |p: &Path, mode| {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap()
        };
        chmod(&path, 0o666);
        assert!(untrusted(&cache));
        chmod(&path, 0o620);
        assert!(untrusted(&cache));
        chmod(&path, 0o644);
        assert!(cache.get(&manifest(), &rules()).is_ok(), "readable is fine");
        chmod(cache.dir(), 0o777);
        assert!(untrusted(&cache));
        assert!(
            cache.put(&rules(), &verdict()).is_err(),
            "nor written there"
        );
        chmod(cache.dir(), 0o700);

        // A symlink in the entry's place, to a valid entry.
        let elsewhere = tmp.path().join("elsewhere.json");
        std::fs::rename(&path, &elsewhere).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &path).unwrap();
        assert!(untrusted(&cache));
        // The directory itself a symlink to a directory of good entries.
        std::fs::remove_file(&path).unwrap();
        std::fs::rename(&elsewhere, &path).unwrap();
        let real = tmp.path().join("real");
        std::fs::rename(cache.dir(), &real).unwrap();
        std::os::unix::fs::symlink(&real, cache.dir()).unwrap();
        assert!(untrusted(&cache));

        if rustix::process::geteuid().is_root() {
            std::fs::remove_file(cache.dir()).unwrap();
            std::fs::rename(&real, cache.dir()).unwrap();
            assert!(cache.get(&manifest(), &rules()).is_ok());
            std::os::unix::fs::chown(&path, Some(65534), None).unwrap();
            assert!(untrusted(&cache), "an entry planted by another user");
            std::os::unix::fs::chown(&path, Some(0), None).unwrap();
            std::os::unix::fs::chown(cache.dir(), Some(65534), None).unwrap();
            assert!(untrusted(&cache), "a directory of another user");
        }
    }

    #[test]
    fn an_unwritable_store_is_an_error_for_put_only() {
        let tmp = tempfile::tempdir().unwrap();
        let missing = tmp.path().join("no/such/store");
        let cache = VerdictCache::in_store(&missing);
        let err = cache.put(&rules(), &verdict()).unwrap_err().to_string();
        assert!(err.contains("no/such/store/gate"), "{err}");
        assert_eq!(cache.get(&manifest(), &rules()), Err(Miss::Absent));
    }

    #[test]
    fn old_entries_are_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = VerdictCache::in_store(tmp.path());
        let mut v = verdict();
        v.findings.truncate(1);
        for i in 0..MAX_ENTRIES + 3 {
            v.manifest = Digest::of_bytes(format!("image {i}").as_bytes()).to_string();
            cache.put(&rules(), &v).unwrap();
        }
        assert_eq!(std::fs::read_dir(cache.dir()).unwrap().count(), MAX_ENTRIES);
    }
}
