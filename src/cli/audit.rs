//! `rsafe audit TARGET`: find what an image leaks and what makes it risky, then report it as a
//! table, JSON or SARIF and turn it into an exit code for CI (0 clean, 1 findings at
//! `--fail-on`, 2 rsafe could not finish).
//!
//! Targets are resolved in [`target::resolve`], in one documented order (explicit `--type`, an
//! existing path, the local store, then a registry; a path or digest that is not there is an
//! error, never a pull), each kind a variant with its own function returning findings; everything after that — ignore file, severity filter,
//! rendering, exit code — is shared ([`report_findings`]). Images are never written into the
//! user's store by an audit ([`open_image`]).

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::Global;
use crate::audit::ignore::IgnoreList;
use crate::audit::secrets::SecretScanner;
use crate::audit::{
    self, AuditOptions, Finding, ImageAudit, Progress, RuleInfo, ScanStats, SecretDetector,
    Severity,
};
use crate::audit::{compose, context, dockerfile, k8s, procs};
use crate::image::config::Image;
use crate::image::layer::DEFAULT_MAX_EXPANDED;
use crate::image::lookup;
use crate::image::resolve::{self, ResolveOptions};
use crate::image::store::{self, Store};
use crate::image::{Platform, load};
use crate::report::table::human_bytes;
use crate::report::{self, Format, Report, Style};
pub use target::{Resolution, Target, TargetType};

/// The ignore file read from the current directory when `--ignore-file` is not given.
pub const DEFAULT_IGNORE_FILE: &str = ".rsafeignore";

pub mod target;

/// Images whose layers are smaller than this (compressed) get no progress bar.
const PROGRESS_THRESHOLD: u64 = 32 << 20;

/// Arguments of `rsafe audit`.
#[derive(Debug, clap::Args)]
#[command(
    after_help = "Exit status: 0 no finding at or above --fail-on (or no --fail-on), \
1 findings at or above it, 2 the audit could not be completed."
)]
pub struct AuditArgs {
    /// What to audit: an image in the store (`app:1.0`, a digest or id), an OCI layout
    /// directory (`./layout`, `./layout:tag`, read in place), a `docker save` tarball or OCI
    /// archive (`./app.tar`, `-` for stdin), a registry reference (`registry.example/app:1.0`),
    /// a Dockerfile, a compose file, Kubernetes manifests (a file or a directory; `-` reads a
    /// manifest stream such as `helm template` output), a build-context directory, or a running
    /// container (`pid:N`, `container:NAME`). Archives and pulled images go to a temporary
    /// store, never into yours.
    ///
    /// Resolved in this order (`--verbose` says which rule decided): 1. `--type`; 2. `-` is
    /// stdin (text: manifests, else an archive); 3. an existing path, a file recognised by its
    /// content (archive, Dockerfile, compose `services:`, Kubernetes `apiVersion`+`kind`), then
    /// by its name; 4. a name, digest or id in the store; 5. something spelled as a path
    /// (`./x`, `/x`, `~/x`, `*.tar`, `*.yaml`, `*.json`, `Dockerfile`, `dir/x` under an
    /// existing dir) that does not exist is an error, never a pull; 6. so is a digest or id the
    /// store does not hold; 7. anything else is pulled from its registry.
    #[arg(value_name = "TARGET", required_unless_present = "running")]
    pub target: Option<String>,
    /// What TARGET is, when its spelling or content is not enough: `image` (store, then
    /// registry), `archive`, `layout`, `dockerfile`, `compose`, `k8s`, `dir` (build context).
    #[arg(
        long = "type",
        value_enum,
        value_name = "KIND",
        conflicts_with = "running"
    )]
    pub kind: Option<TargetType>,
    /// Audit every container running on this host (found from /proc, no daemon needed).
    #[arg(long, conflicts_with = "target")]
    pub running: bool,
    /// Output format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Exit with 1 when a finding is at or above this severity (counted whatever
    /// --min-severity shows; findings accepted in the ignore file do not count).
    #[arg(long, value_enum, value_name = "SEVERITY")]
    pub fail_on: Option<Severity>,
    /// Leave out findings below this severity (they are counted in the summary).
    #[arg(long, value_enum, value_name = "SEVERITY", default_value_t = Severity::Info)]
    pub min_severity: Severity,
    /// Accepted findings (rule / path glob / fingerprint, each with a reason); repeatable.
    /// Default: ./.rsafeignore when it exists.
    #[arg(long, value_name = "FILE")]
    pub ignore_file: Vec<PathBuf>,
    /// Platform to audit when the image is multi-platform.
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<Platform>,
    /// Privileged (setuid, setgid, capability) binaries larger than this many bytes are not
    /// inspected for ELF hardening.
    #[arg(long, value_name = "BYTES", default_value_t = AuditOptions::default().max_file_size)]
    pub max_binary_size: u64,
    /// Allow plain HTTP to a registry that is not on loopback.
    #[arg(long)]
    pub insecure: bool,
    /// Refuse a layer that expands past this many bytes (decompression bombs).
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_EXPANDED)]
    pub max_layer_size: u64,
    /// Kubernetes manifests: the Pod Security Standards level whose violations are failures
    /// (restricted-only violations are reported low under baseline).
    #[arg(long, value_enum, value_name = "LEVEL", default_value_t = k8s::PssLevel::Baseline)]
    pub pss: k8s::PssLevel,
}

/// The first bytes of standard input when they are text rather than an image archive (tar,
/// gzip, zstd hold NUL bytes or magic numbers in their first bytes): what `rsafe audit -`
/// uses to tell a Dockerfile or a manifest stream from `docker save` output. Only peeks: the
/// bytes stay in stdin's buffer for whichever reader comes next.
fn stdin_head_text() -> Option<String> {
    use std::io::BufRead;
    let mut lock = io::stdin().lock();
    match lock.fill_buf() {
        Ok(buf) if !buf.is_empty() && looks_like_text(buf) => {
            Some(String::from_utf8_lossy(buf).into_owned())
        }
        _ => None,
    }
}

/// UTF-8 without NUL bytes or a compression magic (a character cut at the end is fine).
fn looks_like_text(buf: &[u8]) -> bool {
    const GZIP: &[u8] = &[0x1f, 0x8b];
    const ZSTD: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
    if buf.starts_with(GZIP) || buf.starts_with(ZSTD) || buf.contains(&0) {
        return false;
    }
    match std::str::from_utf8(buf) {
        Ok(_) => true,
        Err(e) => e.error_len().is_none(),
    }
}

/// Reads a manifest stream or a Dockerfile from standard input, refusing one past the manifest
/// size limit.
fn read_stdin_text() -> anyhow::Result<String> {
    use std::io::Read;
    let mut bytes = Vec::new();
    io::stdin()
        .lock()
        .take(k8s::MAX_MANIFEST_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    if bytes.len() as u64 > k8s::MAX_MANIFEST_BYTES {
        bail!(
            "standard input: more than the {} bytes a manifest stream or Dockerfile may have",
            k8s::MAX_MANIFEST_BYTES
        );
    }
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

/// Audits Kubernetes manifests (a file, a directory, or stdin); the notes (documents skipped:
/// invalid YAML, not an object, kinds rsafe does not audit) go to stderr.
fn audit_k8s(
    target: &Target,
    scanner: &SecretScanner,
    pss: k8s::PssLevel,
) -> anyhow::Result<Vec<Finding>> {
    let options = k8s::K8sOptions { pss };
    let audit = match target {
        Target::K8sStdin => k8s::audit_text(&read_stdin_text()?, "-", scanner, &options),
        Target::K8s(path) => k8s::audit_path(path, scanner, &options)?,
        _ => bail!("not a Kubernetes manifest target"),
    };
    for note in &audit.notes {
        eprintln!("rsafe: note: {note}");
    }
    if audit.objects == 0 {
        bail!(
            "{}: no Kubernetes object found",
            match target {
                Target::K8s(p) => p.display().to_string(),
                _ => "standard input".to_string(),
            }
        );
    }
    Ok(audit.findings)
}

/// Runs `rsafe audit` and returns the exit code.
pub fn run(args: AuditArgs, global: &Global) -> anyhow::Result<i32> {
    // A broken ignore file is an error before any work: silently reporting everything (or
    // nothing) would both be wrong in CI.
    let ignores = load_ignores(&args.ignore_file)?;
    let detector = secret_detector()?;
    let spec = args.target.clone().unwrap_or_default();
    let running = match procs::Target::parse(&spec) {
        Some(t) => Some(t),
        None if args.running => Some(procs::Target::All),
        None => None,
    };
    if let Some(which) = running {
        return audit_running_containers(&which, &args, global, &ignores, &detector);
    }
    let store_root = global.root.clone().unwrap_or_else(Store::default_root);
    let resolution = resolve_target(&spec, args.kind, &store_root)?;
    if global.verbose {
        eprintln!("rsafe: audit target {spec}: {}", resolution.how);
    }
    if let (Some(note), false) = (&resolution.note, global.quiet) {
        eprintln!("rsafe: note: {note}");
    }
    let target = resolution.target;
    let platform = args.platform.clone().unwrap_or_else(Platform::host);
    let started = Instant::now();
    // A Dockerfile's base images are looked up in the store these options name.
    if let Some((kind, result)) = audit_source(&target, &detector, &store_root, args.pss) {
        let context = ReportContext {
            target: report::Target {
                kind: kind.to_string(),
                name: spec.clone(),
                digest: None,
                platform: None,
                resolved: Some(resolution.how.clone()),
            },
            stats: None,
            elapsed: Some(started.elapsed()),
        };
        return report_findings(result?, context, &ignores, &args, all_rules(&detector));
    }
    let opened = open_image(&target, &platform, args.insecure, global)?;
    let (description, ImageAudit { findings, stats }) =
        audit_opened(&opened, &args, global, &detector)?;
    drop(opened);
    let context = ReportContext {
        target: report::Target {
            resolved: Some(resolution.how),
            ..description
        },
        stats: Some(stats),
        elapsed: Some(started.elapsed()),
    };
    report_findings(findings, context, &ignores, &args, all_rules(&detector))
}

/// Resolves the target against the user's store (read only; a missing store holds nothing).
fn resolve_target(
    spec: &str,
    kind: Option<TargetType>,
    store_root: &Path,
) -> anyhow::Result<Resolution> {
    let store = Store::open_read_only(store_root).ok();
    Ok(target::resolve(
        spec,
        kind,
        store.as_ref(),
        stdin_head_text,
    )?)
}

/// `rsafe audit --running | pid:N | container:NAME`: containers found from /proc alone.
fn audit_running_containers(
    which: &procs::Target,
    args: &AuditArgs,
    global: &Global,
    ignores: &IgnoreList,
    scanner: &SecretScanner,
) -> anyhow::Result<i32> {
    let started = Instant::now();
    let mut opts = procs::DiscoverOptions::new(Path::new("/proc"));
    if let Some(root) = &global.root
        && !opts.rsafe_stores.contains(root)
    {
        opts.rsafe_stores.push(root.clone());
    }
    let audit = procs::audit_running(&opts, which, scanner)
        .context("cannot audit the running containers")?;
    let name = match which {
        procs::Target::All => format!("{} running containers", audit.containers.len()),
        _ => audit
            .containers
            .iter()
            .map(|c| c.name.clone().unwrap_or_else(|| c.id.clone()))
            .collect::<Vec<_>>()
            .join(", "),
    };
    let context = ReportContext {
        target: report::Target {
            kind: "container".to_string(),
            name,
            digest: None,
            platform: None,
            resolved: Some("running containers, found in /proc".to_string()),
        },
        stats: None,
        elapsed: Some(started.elapsed()),
    };
    report_findings(audit.findings, context, ignores, args, all_rules(scanner))
}

/// Audits a target that is source rather than an image (Dockerfile, compose file, build
/// context); `None` for image targets.
fn audit_source(
    target: &Target,
    scanner: &SecretScanner,
    store_root: &Path,
    pss: k8s::PssLevel,
) -> Option<(&'static str, anyhow::Result<Vec<Finding>>)> {
    Some(match target {
        Target::Dockerfile(path) => {
            let base = dockerfile::base::StoreBaseImages::open(store_root);
            (
                "dockerfile",
                dockerfile::audit_dockerfile_with(path, scanner, &base)
                    .map_err(anyhow::Error::from),
            )
        }
        Target::DockerfileStdin => {
            let base = dockerfile::base::StoreBaseImages::open(store_root);
            (
                "dockerfile",
                read_stdin_text().and_then(|text| {
                    dockerfile::audit_dockerfile_text(text, scanner, &base)
                        .map_err(anyhow::Error::from)
                }),
            )
        }
        Target::Compose(path) => (
            "compose",
            compose::audit_compose(path, scanner).map_err(anyhow::Error::from),
        ),
        Target::Context(path) => (
            "directory",
            context::audit_context(path, scanner).map_err(anyhow::Error::from),
        ),
        Target::K8s(_) | Target::K8sStdin => ("kubernetes", audit_k8s(target, scanner, pss)),
        Target::Layout { .. } | Target::Stored(_) | Target::Archive(_) | Target::Remote(_) => {
            return None;
        }
    })
}

/// What a report says besides its findings.
pub struct ReportContext {
    pub target: report::Target,
    pub stats: Option<ScanStats>,
    pub elapsed: Option<Duration>,
}

/// The secret engine with rsafe's builtin rules (`policies/secrets.toml`, compiled in).
pub fn secret_detector() -> anyhow::Result<SecretScanner> {
    SecretScanner::builtin().context("cannot load the builtin secret rules")
}

/// Every rule a report may refer to: rsafe's own checks, then the secret engine's.
pub fn all_rules(scanner: &SecretScanner) -> Vec<RuleInfo> {
    audit::builtin_rules()
        .into_iter()
        .map(RuleInfo::from)
        .chain(dockerfile::rules())
        .chain(k8s::rules().map(RuleInfo::from))
        .chain(scanner.rules())
        .collect()
}

/// The shared tail of every audit: apply the ignore file and `--min-severity`, sort, render to
/// stdout, and decide the exit code from `--fail-on` (on every finding not ignored, shown or
/// not).
pub fn report_findings(
    findings: Vec<Finding>,
    context: ReportContext,
    ignores: &IgnoreList,
    args: &AuditArgs,
    rules: Vec<RuleInfo>,
) -> anyhow::Result<i32> {
    let (kept, ignored) = ignores.apply(findings);
    // The gate sees every finding the ignore file did not accept, whatever `--min-severity`
    // leaves out of the display: a CI job that shows only high findings still fails on a
    // medium one when it gates on medium.
    let fails = args
        .fail_on
        .is_some_and(|gate| kept.iter().any(|f| f.severity >= gate));
    let before = kept.len();
    let mut findings: Vec<Finding> = kept
        .into_iter()
        .filter(|f| f.severity >= args.min_severity)
        .collect();
    let below_threshold = before - findings.len();
    audit::sort_findings(&mut findings);
    let report = Report {
        target: context.target,
        findings,
        ignored,
        below_threshold,
        rules,
        stats: context.stats,
        elapsed: context.elapsed,
    };
    let stdout = io::stdout();
    let color = args.format == Format::Table
        && stdout.is_terminal()
        && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
    let width = table_width(&stdout);
    let mut out = io::BufWriter::new(stdout.lock());
    let style = Style { color };
    let written = match args.format {
        Format::Table => report::table::write_fitted(&report, &mut out, style, width),
        other => report::render_styled(other, &report, &mut out, style),
    }
    .and_then(|()| out.flush());
    quiet_on_broken_pipe(written).context("cannot write the report")?;
    Ok(if fails { 1 } else { 0 })
}

/// How wide the table may be: the terminal's width when stdout is one, else `$COLUMNS` when
/// set; `None` (every line whole) for a pipe or a file, so CI logs keep every character.
fn table_width(stdout: &io::Stdout) -> Option<usize> {
    use std::os::fd::AsFd;
    let terminal = stdout
        .is_terminal()
        .then(|| crate::runtime::tty::window_size(stdout.as_fd()))
        .flatten()
        .map(|size| usize::from(size.cols));
    terminal.or_else(|| columns(std::env::var("COLUMNS").ok().as_deref()))
}

/// `$COLUMNS` as a width, when it is a sane one.
fn columns(value: Option<&str>) -> Option<usize> {
    value?
        .trim()
        .parse::<usize>()
        .ok()
        .filter(|w| (20..=10_000).contains(w))
}

/// A reader that went away (`rsafe audit … | head`) is not an error: stop writing, keep the
/// exit code.
pub fn quiet_on_broken_pipe(result: io::Result<()>) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        other => other,
    }
}

/// The ignore files to apply: those given, or `./.rsafeignore` when it exists.
fn load_ignores(files: &[PathBuf]) -> anyhow::Result<IgnoreList> {
    let default = PathBuf::from(DEFAULT_IGNORE_FILE);
    let files: Vec<PathBuf> = if files.is_empty() {
        default.is_file().then_some(default).into_iter().collect()
    } else {
        files.to_vec()
    };
    let mut list = IgnoreList::default();
    for f in files {
        list.entries.extend(
            IgnoreList::load(&f)
                .context("cannot use the ignore file")?
                .entries,
        );
    }
    Ok(list)
}

/// An image opened for auditing, with the store it lives in. A temporary store (an archive
/// loaded, an image pulled) is removed when this is dropped.
pub struct Opened {
    pub store: Store,
    pub image: Image,
    /// The name to show for it.
    pub name: String,
    _scratch: Option<tempfile::TempDir>,
}

/// Opens the image `target` names without writing to the user's store:
/// - a layout directory is read in place;
/// - a store name or digest is read from the store (`--root`);
/// - an archive (`FILE[:REF]`, `-` for stdin) or a registry reference is loaded or pulled into a temporary store under the store's `tmp/` (same file system as
///   the blobs) or `$TMPDIR`, removed afterwards.
pub fn open_image(
    target: &Target,
    platform: &Platform,
    insecure: bool,
    global: &Global,
) -> anyhow::Result<Opened> {
    match target {
        Target::Dockerfile(path)
        | Target::Compose(path)
        | Target::Context(path)
        | Target::K8s(path) => {
            bail!("{} is not an image", path.display())
        }
        Target::K8sStdin => bail!("standard input holds manifests, not an image"),
        Target::DockerfileStdin => bail!("standard input holds a Dockerfile, not an image"),
        Target::Layout { dir, reference } => open_layout(dir, reference.as_deref(), platform),
        Target::Stored(spec) => open_stored(spec, platform, global),
        Target::Archive(spec) => open_archive(spec, platform, global),
        Target::Remote(spec) => open_remote(spec, platform, insecure, global),
    }
}

/// A layout directory, read in place; without a reference, its only image.
fn open_layout(dir: &Path, reference: Option<&str>, platform: &Platform) -> anyhow::Result<Opened> {
    let store = Store::open_read_only(dir)
        .with_context(|| format!("cannot open the OCI layout {}", dir.display()))?;
    let name = match reference {
        Some(r) => r.to_string(),
        None => only_ref(&store, dir)?,
    };
    let shown = format!("{}:{name}", dir.display());
    let image = Image::open(&store, &name, platform)
        .with_context(|| format!("cannot open image {shown}"))?;
    Ok(Opened {
        store,
        image,
        name: shown,
        _scratch: None,
    })
}

/// A name, digest or id in the user's store (`--root`), opened read-only.
fn open_stored(spec: &str, platform: &Platform, global: &Global) -> anyhow::Result<Opened> {
    let root = global.root.clone().unwrap_or_else(Store::default_root);
    let store = Store::open_read_only(&root)
        .with_context(|| format!("cannot open the store {}", root.display()))?;
    let found = lookup::find(&store, spec).with_context(|| format!("cannot look up {spec}"))?;
    let image = Image::from_descriptor(&store, &found.descriptor, platform)
        .with_context(|| format!("cannot open image {spec}"))?;
    Ok(Opened {
        store,
        image,
        name: found.display_name(),
        _scratch: None,
    })
}

/// An archive (`FILE[:REF]`, `-` for stdin) loaded into a scratch store; it must hold one image.
fn open_archive(spec: &str, platform: &Platform, global: &Global) -> anyhow::Result<Opened> {
    let (scratch, store) = scratch_store(global)?;
    let shown = if spec == load::STDIN {
        "standard input"
    } else {
        spec
    };
    let loaded = load::load_path(&store, spec, platform)
        .with_context(|| format!("cannot load the archive {shown}"))?;
    let [one] = loaded.as_slice() else {
        bail!(
            "{shown} holds {} images; audit one at a time (FILE:REF)",
            loaded.len()
        );
    };
    let image = Image::from_descriptor(&store, &one.descriptor, platform)
        .with_context(|| format!("cannot open the image in {shown}"))?;
    Ok(Opened {
        store,
        image,
        name: if spec == load::STDIN {
            one.name.clone()
        } else {
            spec.to_string()
        },
        _scratch: Some(scratch),
    })
}

/// A registry reference, pulled into a scratch store.
fn open_remote(
    spec: &str,
    platform: &Platform,
    insecure: bool,
    global: &Global,
) -> anyhow::Result<Opened> {
    let (scratch, store) = scratch_store(global)?;
    let opts = ResolveOptions {
        platform: platform.clone(),
        pull: true,
        insecure,
    };
    let r = resolve::resolve(&store, spec, &opts)
        .with_context(|| format!("cannot get image {spec}"))?;
    Ok(Opened {
        store,
        image: r.image,
        name: r.name,
        _scratch: Some(scratch),
    })
}

/// A temporary store for an archive or a pulled image, removed when the directory is dropped.
fn scratch_store(global: &Global) -> anyhow::Result<(tempfile::TempDir, Store)> {
    let root = global.root.clone().unwrap_or_else(Store::default_root);
    let scratch = scratch_dir(&root)?;
    let store = Store::open(scratch.path()).with_context(|| {
        format!(
            "cannot create a scratch store in {}",
            scratch.path().display()
        )
    })?;
    Ok((scratch, store))
}

/// A directory for a temporary store: under the user's store `tmp/` when it is writable (big
/// images stay on the store's file system), else under `$TMPDIR`.
pub(crate) fn scratch_dir(root: &Path) -> anyhow::Result<tempfile::TempDir> {
    let builder = || {
        let mut b = tempfile::Builder::new();
        b.prefix("audit-");
        b
    };
    if let Ok(dir) = builder().tempdir_in(root.join("tmp")) {
        return Ok(dir);
    }
    builder()
        .tempdir()
        .context("cannot create a temporary directory for the image")
}

/// Audits an opened image.
fn audit_opened(
    opened: &Opened,
    args: &AuditArgs,
    global: &Global,
    detector: &dyn SecretDetector,
) -> anyhow::Result<(report::Target, ImageAudit)> {
    let img = &opened.image;
    let options = AuditOptions {
        max_file_size: args.max_binary_size,
        max_layer_expanded: args.max_layer_size,
        ..AuditOptions::default()
    };
    let bar = Bar::new(img, global.quiet);
    let result = audit::audit_image(&opened.store, img, detector, &options, &bar);
    bar.finish();
    let audit = result.with_context(|| format!("cannot audit {}", opened.name))?;
    let description = report::Target {
        kind: "image".into(),
        name: opened.name.clone(),
        digest: Some(img.manifest_digest.to_string()),
        platform: Some(format!("{}/{}", img.config.os(), img.config.architecture())),
        resolved: None,
    };
    Ok((description, audit))
}

/// The one ref of a layout, or an error listing them.
fn only_ref(store: &Store, dir: &Path) -> anyhow::Result<String> {
    let refs = store
        .refs()
        .with_context(|| format!("cannot read {}", dir.display()))?;
    match refs.as_slice() {
        [(name, _)] => Ok(name.clone()),
        [] => bail!(
            "{}: the layout names no image ({} annotations)",
            dir.display(),
            store::REF_NAME
        ),
        many => bail!(
            "{}: the layout has several images, pick one with {}:REF (refs: {})",
            dir.display(),
            dir.display(),
            many.iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// The progress bar on stderr: layers done, bytes streamed. Hidden with `--quiet`, when stderr
/// is not a terminal (indicatif's own check), and for small images.
struct Bar {
    bar: ProgressBar,
    bytes: AtomicU64,
}

impl Bar {
    fn new(img: &Image, quiet: bool) -> Bar {
        let layers = img.layers().len() as u64;
        let target = if quiet || img.size() < PROGRESS_THRESHOLD {
            ProgressDrawTarget::hidden()
        } else {
            ProgressDrawTarget::stderr()
        };
        let bar = ProgressBar::with_draw_target(Some(layers), target);
        if let Ok(style) = ProgressStyle::with_template(
            "{spinner} auditing [{bar:30}] {pos}/{len} layers, {msg} ({elapsed})",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message("0 B read");
        bar.enable_steady_tick(Duration::from_millis(120));
        Bar {
            bar,
            bytes: AtomicU64::new(0),
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

impl Progress for Bar {
    fn bytes(&self, n: u64) {
        let total = self.bytes.fetch_add(n, Ordering::Relaxed) + n;
        self.bar.set_message(format!("{} read", human_bytes(total)));
    }

    fn layer_done(&self, _index: usize) {
        self.bar.inc(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_is_a_width_only_when_sane() {
        assert_eq!(columns(Some("80")), Some(80));
        assert_eq!(columns(Some(" 132\n")), Some(132));
        assert_eq!(columns(Some("5")), None, "too narrow for any table");
        assert_eq!(columns(Some("wide")), None);
        assert_eq!(columns(None), None);
    }

    #[test]
    fn stdin_text_is_told_from_archives() {
        assert!(looks_like_text(b"apiVersion: v1\nkind: Pod\n"));
        assert!(looks_like_text("caf\u{e9}".as_bytes()));
        assert!(
            looks_like_text(&"caf\u{e9}".as_bytes()[..4]),
            "a character cut at the end"
        );
        assert!(!looks_like_text(&[0x1f, 0x8b, 8]));
        assert!(!looks_like_text(b"layer.tar\0\0\0"));
    }
}
