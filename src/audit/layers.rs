//! The layer walk: every layer read once as a tar stream, never extracted, with the provenance of
//! every file.
//!
//! An image is a stack of tar layers. Deleting a file in a later layer writes a *whiteout*
//! (`dir/.wh.name`, or `dir/.wh..wh..opq` for "hide everything below in `dir`"); overwriting it
//! writes a new copy. Either way the old bytes stay in the older layer blob, and anyone who pulls
//! the image can read them. So the walk keeps, for every entry of every layer, which layer added
//! it and which later layer (if any) deleted or replaced it:
//!
//! - pass 1 ([`scan_layers`]) streams all layers in parallel and records each entry's metadata,
//!   the secrets in the files the secret engine wants (spread over the cores), the ELF hardening
//!   of privileged binaries, and the whiteouts;
//! - pass 2 ([`MergedView::build`]) replays the layers in order — cheap, metadata only — to find
//!   the final file system and the layer that removed everything else.
//!
//! The tar stream itself is audited too: member names that are absolute or contain `..`, members
//! written through a symlink, and hard links to files of another layer are what naive extractors
//! turn into writes outside the root.

use std::collections::{BTreeMap, HashSet};
use std::io::{self, Read};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use rayon::prelude::*;

use super::elf::{self, Binary};
use super::{
    AuditError, AuditOptions, Evidence, Finding, LayerProvenance, Location, Progress, Rule,
    SecretDetector, Severity,
};
use crate::image::config::{Image, LayerInfo};
use crate::image::layer::LayerError;
use crate::image::prefetch::Prefetch;
use crate::image::{Digest, Store};

/// A tar member whose name leaves the root.
pub const TAR_TRAVERSAL: Rule = Rule {
    id: "layer.path-traversal",
    severity: Severity::Critical,
    title: "Layer member name escapes the root (absolute or `..`)",
    description: "A tar member (or a hard link's target) in a layer is absolute or contains a \
        `..` component. An extractor that does not confine paths writes it outside the \
        container's root file system — on the host. No legitimate build tool produces such \
        names; the layer was crafted or corrupted. rsafe never extracts it.",
    remediation: "Do not run or unpack this image with tools you do not trust to confine paths; \
        rebuild the layer from source with a standard builder.",
};

/// A tar member written below a path that is a symlink at that point.
pub const THROUGH_SYMLINK: Rule = Rule {
    id: "layer.write-through-symlink",
    severity: Severity::High,
    title: "Layer member is written through a symlink",
    description: "A member's parent directory is a symlink (created in this layer or a lower \
        one). Build tools record the real path, so this is crafted: an extractor that follows \
        the link writes wherever it points. Critical when the link is absolute or climbs out of \
        the root (a host write with a naive extractor), high otherwise.",
    remediation: "Rebuild the layer with a standard builder; unpack only with an extractor that \
        resolves paths inside the root (openat2 RESOLVE_IN_ROOT).",
};

/// A hard link to a file this layer does not contain.
pub const HARDLINK_ACROSS_LAYERS: Rule = Rule {
    id: "layer.hardlink-across-layers",
    severity: Severity::Medium,
    title: "Hard link to a file outside its layer",
    description: "A hard link in a layer points at a path the layer itself does not contain, so \
        its meaning depends on what lower layers (or the extraction target) hold there. \
        Extractors disagree on such links; some have linked to host files this way.",
    remediation: "Rebuild so the layer carries the file itself (or a symlink) instead of a hard \
        link into a lower layer.",
};

/// The rules the layer walk reports (secrets come from the secret engine).
pub static RULES: &[Rule] = &[TAR_TRAVERSAL, THROUGH_SYMLINK, HARDLINK_ACROSS_LAYERS];

/// What a tar member is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryKind {
    File,
    Dir,
    Symlink,
    Hardlink,
    CharDevice,
    BlockDevice,
    Fifo,
    Other,
}

/// One member of a layer, as recorded by pass 1 (everything but the content).
#[derive(Debug, Clone)]
pub struct Entry {
    /// Absolute, normalised (`/etc/passwd`; the root is `/`).
    pub path: String,
    pub kind: EntryKind,
    /// Permission bits including setuid (0o4000), setgid (0o2000) and sticky (0o1000).
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub size: u64,
    /// Symlink target as written, or a hard link's target path (normalised).
    pub link: Option<String>,
    /// (major, minor) of a device node.
    pub device: Option<(u32, u32)>,
    /// The raw `security.capability` xattr (file capabilities), from the PAX header.
    pub capability: Option<Vec<u8>>,
    /// For setuid/setgid/capability files: what the binary is, read from its content.
    pub binary: Option<Binary>,
}

impl Entry {
    /// Whether running this file grants privileges (setuid, setgid or file capabilities).
    pub fn is_privileged(&self) -> bool {
        self.kind == EntryKind::File && (self.mode & 0o6000 != 0 || self.capability.is_some())
    }
}

/// Counters of one layer's walk.
#[derive(Debug, Clone, Copy, Default)]
pub struct LayerStats {
    pub entries: u64,
    pub expanded: u64,
    pub files_read: u64,
    pub bytes_read: u64,
}

/// A finding from a file's content, tied to the entry so pass 2 can say whether it was deleted
/// (`entry` is None for members whose name escapes the root: they have no place in the tree).
#[derive(Debug, Clone)]
pub struct ContentFinding {
    pub entry: Option<usize>,
    pub finding: Finding,
}

/// Everything pass 1 learnt about one layer.
#[derive(Debug, Clone)]
pub struct LayerScan {
    /// 0-based position, bottom first.
    pub index: usize,
    pub digest: Digest,
    /// The history `created_by` of the step that made the layer.
    pub created_by: Option<String>,
    pub entries: Vec<Entry>,
    /// Paths a `.wh.<name>` deletes from lower layers.
    pub whiteouts: Vec<String>,
    /// Directories whose lower-layer content a `.wh..wh..opq` hides.
    pub opaque_dirs: Vec<String>,
    /// Secrets found in file contents.
    pub secrets: Vec<ContentFinding>,
    /// Findings about the tar stream itself (names escaping the root).
    pub findings: Vec<Finding>,
    /// `/etc/passwd` if this layer writes it: (entry, content), to resolve `User` names.
    pub passwd: Option<(usize, Vec<u8>)>,
    pub stats: LayerStats,
}

impl LayerScan {
    /// The provenance of content this layer added, removed in `removed_in`.
    pub fn provenance(&self, removed_in: Option<usize>) -> LayerProvenance {
        LayerProvenance {
            index: self.index,
            digest: self.digest.to_string(),
            created_by: self.created_by.clone(),
            removed_in,
        }
    }

    /// The location of something at `path` in this layer.
    pub fn location(&self, path: &str, removed_in: Option<usize>) -> Location {
        Location::ImageFile {
            path: path.to_string(),
            line: None,
            layer: Some(self.provenance(removed_in)),
        }
    }
}

/// Pass 1: streams every layer of `img` (in parallel) and records what is in it.
pub fn scan_layers(
    store: &Store,
    img: &Image,
    detector: &dyn SecretDetector,
    options: &AuditOptions,
    progress: &dyn Progress,
) -> Result<Vec<LayerScan>, AuditError> {
    // One budget for all layers: they stream at the same time, and what bounds the memory is
    // the sum of what every layer has waiting.
    let inflight = AtomicU64::new(0);
    img.layers()
        .par_iter()
        .map(|layer| {
            let scan = scan_layer(store, img, layer, detector, options, &inflight, progress)?;
            progress.layer_done(layer.index);
            Ok(scan)
        })
        .collect()
}

/// A tar member name made absolute and normalised, or the reason it cannot be.
fn normalize(name: &[u8]) -> Result<String, &'static str> {
    let name = String::from_utf8_lossy(name);
    if name.starts_with('/') {
        return Err("absolute member name");
    }
    let mut out = String::with_capacity(name.len() + 1);
    for part in name.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err("`..` in member name"),
            p => {
                out.push('/');
                out.push_str(p);
            }
        }
    }
    if out.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// Splits `/a/b` into (`/a`, `b`).
fn split_parent(path: &str) -> (&str, &str) {
    match path.rfind('/') {
        Some(0) => ("/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => ("/", path),
    }
}

/// `dir` + `name` as an absolute path.
fn join(dir: &str, name: &str) -> String {
    if dir == "/" {
        format!("/{name}")
    } else {
        format!("{dir}/{name}")
    }
}

/// Reports streamed bytes to a [`Progress`] in chunks.
struct Counted<'p, R> {
    inner: R,
    progress: &'p dyn Progress,
    pending: u64,
}

impl<R: Read> Read for Counted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.pending += n as u64;
        if self.pending >= 1 << 20 || n == 0 {
            self.progress.bytes(self.pending);
            self.pending = 0;
        }
        Ok(n)
    }
}

/// Metadata of a member taken from its headers, before its content is read.
struct Member {
    raw_name: String,
    path: Result<String, &'static str>,
    kind: EntryKind,
    mode: u32,
    uid: u64,
    gid: u64,
    size: u64,
    link: Option<Vec<u8>>,
    device: Option<(u32, u32)>,
    capability: Option<Vec<u8>>,
}

fn read_member<R: Read>(entry: &mut tar::Entry<'_, R>) -> io::Result<Member> {
    use tar::EntryType as T;
    let mut uid = entry.header().uid().unwrap_or(0);
    let mut gid = entry.header().gid().unwrap_or(0);
    let mut capability = None;
    if let Some(pax) = entry.pax_extensions()? {
        for ext in pax {
            let ext = ext?;
            match ext.key_bytes() {
                b"SCHILY.xattr.security.capability" => {
                    capability = Some(ext.value_bytes().to_vec());
                }
                b"uid" => uid = ext.value().ok().and_then(|v| v.parse().ok()).unwrap_or(uid),
                b"gid" => gid = ext.value().ok().and_then(|v| v.parse().ok()).unwrap_or(gid),
                _ => {}
            }
        }
    }
    let header = entry.header();
    let kind = match header.entry_type() {
        T::Regular | T::Continuous | T::GNUSparse => EntryKind::File,
        T::Directory => EntryKind::Dir,
        T::Symlink => EntryKind::Symlink,
        T::Link => EntryKind::Hardlink,
        T::Char => EntryKind::CharDevice,
        T::Block => EntryKind::BlockDevice,
        T::Fifo => EntryKind::Fifo,
        _ => EntryKind::Other,
    };
    let device = match kind {
        EntryKind::CharDevice | EntryKind::BlockDevice => Some((
            header.device_major().ok().flatten().unwrap_or(0),
            header.device_minor().ok().flatten().unwrap_or(0),
        )),
        _ => None,
    };
    let raw = entry.path_bytes();
    Ok(Member {
        raw_name: String::from_utf8_lossy(&raw).into_owned(),
        path: normalize(&raw),
        kind,
        mode: header.mode().unwrap_or(0),
        uid,
        gid,
        size: entry.size(),
        link: entry.link_name_bytes().map(|l| l.into_owned()),
        device,
        capability,
    })
}

/// Scans one layer: reads the tar sequentially, hands file contents to the pool for secret
/// scanning, and verifies the layer digest at the end.
fn scan_layer(
    store: &Store,
    img: &Image,
    layer: &LayerInfo,
    detector: &dyn SecretDetector,
    options: &AuditOptions,
    inflight: &AtomicU64,
    progress: &dyn Progress,
) -> Result<LayerScan, AuditError> {
    let stream = img.open_layer(store, layer, options.max_layer_expanded)?;
    // Inflating and hashing run on their own thread: a single big layer then keeps both cores
    // busy (one inflates, the other parses the tar and scans).
    let stream = Prefetch::spawn(stream, layer.digest.clone()).map_err(|source| {
        AuditError::Layer(LayerError::Io {
            digest: layer.digest.clone(),
            source,
        })
    })?;
    let mut archive = tar::Archive::new(Counted {
        inner: stream,
        progress,
        pending: 0,
    });
    let mut scan = LayerScan {
        index: layer.index,
        digest: layer.digest.clone(),
        created_by: layer.history.as_ref().and_then(|h| h.created_by().clone()),
        entries: Vec::new(),
        whiteouts: Vec::new(),
        opaque_dirs: Vec::new(),
        secrets: Vec::new(),
        findings: Vec::new(),
        passwd: None,
        stats: LayerStats::default(),
    };
    let tar_err = |source: io::Error| AuditError::Tar {
        number: layer.index + 1,
        digest: layer.digest.clone(),
        source,
    };
    let found: Mutex<Vec<ContentFinding>> = Mutex::new(Vec::new());
    let jobs = SecretJobs {
        detector,
        found: &found,
        inflight,
        budget: options.inflight_budget,
    };
    let scan_ref = &mut scan;
    rayon::scope(|pool| -> Result<(), AuditError> {
        let scan = scan_ref;
        for entry in archive.entries().map_err(tar_err)? {
            let mut entry = entry.map_err(tar_err)?;
            let member = read_member(&mut entry).map_err(tar_err)?;
            scan.stats.entries += 1;
            let Some((mut record, entry_index)) = scan.admit(member) else {
                continue;
            };
            if record.kind == EntryKind::File {
                scan.read_file(&mut entry, &mut record, entry_index, options, &jobs, pool)
                    .map_err(tar_err)?;
            }
            if entry_index.is_some() {
                scan.entries.push(record);
            }
        }
        Ok(())
    })?;
    scan.secrets = found.into_inner().unwrap_or_else(|e| e.into_inner());
    let counted = archive.into_inner();
    counted.progress.bytes(counted.pending);
    let (_, expanded) = counted.inner.finish()?;
    scan.stats.expanded = expanded;
    Ok(scan)
}

impl LayerScan {
    /// The entry a tar member becomes, with its index in `entries` (None when its name escapes
    /// the root: it is reported, and its content still scanned, but it is not in the tree).
    /// Whiteouts and opaque markers are recorded here and make no entry.
    fn admit(&mut self, member: Member) -> Option<(Entry, Option<usize>)> {
        let path = match &member.path {
            Ok(p) => p.clone(),
            Err(why) => {
                self.findings.push(TAR_TRAVERSAL.finding(
                    self.location(&member.raw_name, None),
                    Some(Evidence::plain(format!("{why}: {:?}", member.raw_name))),
                ));
                member.raw_name.clone()
            }
        };
        let (dir, base) = split_parent(&path);
        if member.path.is_ok() {
            if base == ".wh..wh..opq" {
                self.opaque_dirs.push(dir.to_string());
                return None;
            }
            if let Some(hidden) = base.strip_prefix(".wh.") {
                // `.wh..wh.*` other than the opaque marker is aufs bookkeeping, not a deletion.
                if !hidden.starts_with(".wh.") {
                    self.whiteouts.push(join(dir, hidden));
                }
                return None;
            }
        }
        let link = self.link_target(&member, &path);
        let entry_index = member.path.is_ok().then_some(self.entries.len());
        let record = Entry {
            path,
            kind: member.kind,
            mode: member.mode,
            uid: member.uid,
            gid: member.gid,
            size: member.size,
            link,
            device: member.device,
            capability: member.capability,
            binary: None,
        };
        Some((record, entry_index))
    }

    /// A member's link target; a hard link's is a path in the layer and is reported when it
    /// escapes the root.
    fn link_target(&mut self, member: &Member, path: &str) -> Option<String> {
        match (member.kind, &member.link) {
            (EntryKind::Hardlink, Some(l)) => match normalize(l) {
                Ok(p) => Some(p),
                Err(why) => {
                    let target = String::from_utf8_lossy(l).into_owned();
                    self.findings.push(TAR_TRAVERSAL.finding(
                        self.location(path, None),
                        Some(Evidence::plain(format!(
                            "hard link target: {why}: {target:?}"
                        ))),
                    ));
                    Some(target)
                }
            },
            (_, Some(l)) => Some(String::from_utf8_lossy(l).into_owned()),
            (_, None) => None,
        }
    }

    /// Reads as much of a regular file as its consumers look at (the secret detector, the
    /// `/etc/passwd` reader, the ELF inspection of privileged binaries) and hands it to them.
    fn read_file<'s>(
        &mut self,
        content_of: &mut impl Read,
        record: &mut Entry,
        entry_index: Option<usize>,
        options: &AuditOptions,
        jobs: &SecretJobs<'s>,
        pool: &rayon::Scope<'s>,
    ) -> io::Result<()> {
        let wants_secrets = jobs.detector.wants_path(&record.path, record.size);
        let is_passwd = entry_index.is_some() && record.path == "/etc/passwd";
        let privileged = record.is_privileged();
        if privileged && record.size > options.max_file_size {
            record.binary = Some(Binary::Unread);
        }
        let inspect_binary = privileged && record.size <= options.max_file_size;
        let mut want = 0;
        if wants_secrets {
            want = want.max(jobs.detector.max_scan_bytes());
        }
        if is_passwd {
            want = want.max(1 << 20);
        }
        if inspect_binary {
            want = want.max(options.max_file_size);
        }
        let want = want.min(record.size);
        if want == 0 {
            return Ok(());
        }
        let mut content = Vec::with_capacity(want as usize);
        content_of.take(want).read_to_end(&mut content)?;
        self.stats.files_read += 1;
        self.stats.bytes_read += content.len() as u64;
        if inspect_binary {
            record.binary = Some(elf::inspect(&content));
        }
        if is_passwd {
            self.passwd = entry_index.map(|i| (i, content.clone()));
        }
        if wants_secrets {
            let location = self.location(&record.path, None);
            jobs.submit(pool, record.path.clone(), content, location, entry_index);
        }
        Ok(())
    }
}

/// Where the layers' file contents go to be scanned for secrets.
struct SecretJobs<'a> {
    detector: &'a dyn SecretDetector,
    found: &'a Mutex<Vec<ContentFinding>>,
    /// Bytes handed to the pool and not scanned yet, over all layers.
    inflight: &'a AtomicU64,
    budget: u64,
}

impl<'a> SecretJobs<'a> {
    /// Scans `content` on another core unless too much is already waiting; then scans it here,
    /// which slows the reader down to the scanners' pace.
    fn submit(
        &self,
        pool: &rayon::Scope<'a>,
        path: String,
        content: Vec<u8>,
        location: Location,
        entry: Option<usize>,
    ) {
        let (detector, found, inflight) = (self.detector, self.found, self.inflight);
        let size = content.len() as u64;
        let job = move || {
            let hits = detector.scan_file(&path, &content, &location);
            if !hits.is_empty() {
                let mut found = found.lock().unwrap_or_else(|e| e.into_inner());
                found.extend(
                    hits.into_iter()
                        .map(|finding| ContentFinding { entry, finding }),
                );
            }
        };
        if inflight.fetch_add(size, Ordering::AcqRel) + size <= self.budget {
            pool.spawn(move |_| {
                job();
                inflight.fetch_sub(size, Ordering::AcqRel);
            });
        } else {
            inflight.fetch_sub(size, Ordering::AcqRel);
            job();
        }
    }
}

/// Where one entry ended up after the layers above it were applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Slot {
    layer: usize,
    entry: usize,
}

/// An entry whose path went through a symlink present at that point of the replay.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ThroughSymlink {
    pub layer: usize,
    pub entry: usize,
    pub link_layer: usize,
    pub link_entry: usize,
}

/// Pass 2: the layers replayed in order. Knows the final file system and, for every entry of
/// every layer, the layer that deleted or replaced it.
#[derive(Debug)]
pub struct MergedView<'a> {
    removed_in: Vec<Vec<Option<usize>>>,
    visible: BTreeMap<&'a str, Slot>,
    through_symlink: Vec<ThroughSymlink>,
}

impl<'a> MergedView<'a> {
    /// Replays `scans` (bottom layer first): whiteouts and opaque markers of a layer remove from
    /// the layers below, then its entries are laid over them. A non-directory replacing anything,
    /// or anything replacing a non-directory, removes the old entry (and a replaced directory's
    /// whole subtree); a directory over a directory only changes its metadata.
    pub fn build(scans: &'a [LayerScan]) -> MergedView<'a> {
        let mut removed_in: Vec<Vec<Option<usize>>> =
            scans.iter().map(|s| vec![None; s.entries.len()]).collect();
        let mut visible: BTreeMap<&'a str, Slot> = BTreeMap::new();
        let mut through_symlink = Vec::new();
        for scan in scans {
            let layer = scan.index;
            let remove_under =
                |visible: &mut BTreeMap<&'a str, Slot>,
                 dir: &str,
                 removed_in: &mut Vec<Vec<Option<usize>>>| {
                    let prefix = if dir == "/" {
                        "/".to_string()
                    } else {
                        format!("{dir}/")
                    };
                    let doomed: Vec<&'a str> = visible
                        .range::<str, _>((
                            std::ops::Bound::Included(prefix.as_str()),
                            std::ops::Bound::Unbounded,
                        ))
                        .take_while(|(p, _)| p.starts_with(&prefix))
                        .filter(|(p, _)| **p != "/")
                        .map(|(p, _)| *p)
                        .collect();
                    for p in doomed {
                        if let Some(slot) = visible.remove(p) {
                            removed_in[slot.layer][slot.entry] = Some(layer);
                        }
                    }
                };
            for dir in &scan.opaque_dirs {
                remove_under(&mut visible, dir, &mut removed_in);
            }
            for path in &scan.whiteouts {
                if let Some(slot) = visible.remove(path.as_str()) {
                    removed_in[slot.layer][slot.entry] = Some(layer);
                }
                remove_under(&mut visible, path, &mut removed_in);
            }
            for (i, entry) in scan.entries.iter().enumerate() {
                if let Some(link) = symlinked_ancestor(&visible, scans, &entry.path) {
                    through_symlink.push(ThroughSymlink {
                        layer,
                        entry: i,
                        link_layer: link.layer,
                        link_entry: link.entry,
                    });
                }
                let path = entry.path.as_str();
                if let Some(old) = visible.get(path).copied() {
                    let old_kind = scans[old.layer].entries[old.entry].kind;
                    let both_dirs = old_kind == EntryKind::Dir && entry.kind == EntryKind::Dir;
                    if !both_dirs {
                        removed_in[old.layer][old.entry] = Some(layer);
                        if old_kind == EntryKind::Dir {
                            remove_under(&mut visible, path, &mut removed_in);
                        }
                    }
                }
                visible.insert(path, Slot { layer, entry: i });
            }
        }
        MergedView {
            removed_in,
            visible,
            through_symlink,
        }
    }

    /// The layer that deleted or replaced entry `entry` of layer `layer`, if any.
    pub fn removed_in(&self, layer: usize, entry: usize) -> Option<usize> {
        self.removed_in
            .get(layer)
            .and_then(|l| l.get(entry))
            .copied()
            .flatten()
    }

    /// The final file system: every visible path with (layer index, entry index), sorted.
    pub fn visible(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        self.visible.values().map(|s| (s.layer, s.entry))
    }

    /// The visible entry at `path` as (layer index, entry index).
    pub fn lookup(&self, path: &str) -> Option<(usize, usize)> {
        self.visible.get(path).map(|s| (s.layer, s.entry))
    }

    /// Entries written below a symlink, in replay order.
    pub fn through_symlink(&self) -> &[ThroughSymlink] {
        &self.through_symlink
    }

    /// The content of the `/etc/passwd` the container sees, if a layer carried it.
    pub fn passwd<'s>(&self, scans: &'s [LayerScan]) -> Option<&'s [u8]> {
        let (layer, entry) = self.lookup("/etc/passwd")?;
        scans[layer]
            .passwd
            .as_ref()
            .filter(|(i, _)| *i == entry)
            .map(|(_, c)| c.as_slice())
    }
}

/// The nearest ancestor directory of `path` that is a symlink in the replay so far.
fn symlinked_ancestor(
    visible: &BTreeMap<&str, Slot>,
    scans: &[LayerScan],
    path: &str,
) -> Option<Slot> {
    let mut end = path.len();
    while let Some(i) = path[..end].rfind('/') {
        if i == 0 {
            return None;
        }
        if let Some(slot) = visible.get(&path[..i])
            && scans[slot.layer].entries[slot.entry].kind == EntryKind::Symlink
        {
            return Some(*slot);
        }
        end = i;
    }
    None
}

/// Secrets found in file contents, each with where it was added and where (if anywhere) it was
/// deleted. The same value at the same path in several layers is reported once, at the earliest
/// layer, naming the others; it counts as deleted only if every copy was.
pub fn secret_findings(scans: &[LayerScan], view: &MergedView<'_>) -> Vec<Finding> {
    // (rule, path, fingerprint) -> (representative, other layers, any copy still visible)
    type Key = (String, String, String);
    let mut groups: BTreeMap<Key, (Finding, Vec<usize>, bool)> = BTreeMap::new();
    let mut unique = Vec::new();
    for scan in scans {
        for hit in &scan.secrets {
            let removed_in = hit.entry.and_then(|e| view.removed_in(scan.index, e));
            let mut finding = hit.finding.clone();
            let path = match &mut finding.location {
                Location::ImageFile {
                    path,
                    layer: Some(prov),
                    ..
                } => {
                    prov.removed_in = removed_in;
                    path.clone()
                }
                _ => String::new(),
            };
            let Some(fp) = finding
                .evidence
                .as_ref()
                .and_then(|e| e.fingerprint.clone())
            else {
                unique.push(finding);
                continue;
            };
            let visible = hit.entry.is_some() && removed_in.is_none();
            match groups.entry((finding.rule.clone(), path, fp)) {
                std::collections::btree_map::Entry::Vacant(v) => {
                    v.insert((finding, Vec::new(), visible));
                }
                std::collections::btree_map::Entry::Occupied(mut o) => {
                    let (first, others, any_visible) = o.get_mut();
                    if first_layer(first) != Some(scan.index) && !others.contains(&scan.index) {
                        others.push(scan.index);
                    }
                    *any_visible |= visible;
                }
            }
        }
    }
    for (_, (mut finding, others, any_visible)) in groups {
        if !others.is_empty() {
            if any_visible
                && let Location::ImageFile {
                    layer: Some(prov), ..
                } = &mut finding.location
            {
                prov.removed_in = None;
            }
            let layers: Vec<String> = others.iter().map(|i| format!("layer {}", i + 1)).collect();
            if let Some(ev) = &mut finding.evidence {
                ev.excerpt = format!("{} (same value also in {})", ev.excerpt, layers.join(", "));
            }
        }
        unique.push(finding);
    }
    unique
}

fn first_layer(f: &Finding) -> Option<usize> {
    match &f.location {
        Location::ImageFile {
            layer: Some(prov), ..
        } => Some(prov.index),
        _ => None,
    }
}

/// Findings about the layer streams: names escaping the root (pass 1), members written through
/// a symlink and hard links into other layers (pass 2).
pub fn layer_findings(scans: &[LayerScan], view: &MergedView<'_>) -> Vec<Finding> {
    let mut out: Vec<Finding> = scans.iter().flat_map(|s| s.findings.clone()).collect();
    // One finding per (layer, symlink): a crafted layer may write thousands of files through it.
    let mut seen = HashSet::new();
    for t in view.through_symlink() {
        if !seen.insert((t.layer, t.link_layer, t.link_entry)) {
            continue;
        }
        let scan = &scans[t.layer];
        let entry = &scan.entries[t.entry];
        let link = &scans[t.link_layer].entries[t.link_entry];
        let target = link.link.as_deref().unwrap_or_default();
        let severity = if super::fs::escapes_root(&link.path, target) || target.starts_with('/') {
            Severity::Critical
        } else {
            THROUGH_SYMLINK.severity
        };
        out.push(THROUGH_SYMLINK.finding_at(
            severity,
            scan.location(&entry.path, view.removed_in(t.layer, t.entry)),
            Some(Evidence::plain(format!(
                "{} is a symlink to {target:?} (layer {})",
                link.path,
                t.link_layer + 1
            ))),
        ));
    }
    for scan in scans {
        let own: HashSet<&str> = scan.entries.iter().map(|e| e.path.as_str()).collect();
        for (i, e) in scan.entries.iter().enumerate() {
            if e.kind != EntryKind::Hardlink {
                continue;
            }
            let Some(target) = e.link.as_deref() else {
                continue;
            };
            if target.starts_with('/') && !own.contains(target) {
                out.push(HARDLINK_ACROSS_LAYERS.finding(
                    scan.location(&e.path, view.removed_in(scan.index, i)),
                    Some(Evidence::plain(format!("hard link to {target}"))),
                ));
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(path: &str, kind: EntryKind) -> Entry {
        Entry {
            path: path.into(),
            kind,
            mode: 0o644,
            uid: 0,
            gid: 0,
            size: 0,
            link: None,
            device: None,
            capability: None,
            binary: None,
        }
    }

    fn layer(index: usize, entries: Vec<Entry>, whiteouts: &[&str], opaque: &[&str]) -> LayerScan {
        LayerScan {
            index,
            digest: Digest::of_bytes(format!("layer{index}").as_bytes()),
            created_by: Some(format!("step {index}")),
            entries,
            whiteouts: whiteouts.iter().map(|s| s.to_string()).collect(),
            opaque_dirs: opaque.iter().map(|s| s.to_string()).collect(),
            secrets: Vec::new(),
            findings: Vec::new(),
            passwd: None,
            stats: LayerStats::default(),
        }
    }

    use EntryKind::*;

    #[test]
    fn names_are_normalised_and_escapes_refused() {
        assert_eq!(normalize(b"./etc/passwd").unwrap(), "/etc/passwd");
        assert_eq!(normalize(b"etc//x/").unwrap(), "/etc/x");
        assert_eq!(normalize(b"./").unwrap(), "/");
        assert!(normalize(b"../evil").is_err());
        assert!(normalize(b"a/../../b").is_err());
        assert!(normalize(b"/etc/shadow").is_err());
    }

    #[test]
    fn whiteout_deletes_file_and_subtree_from_lower_layers_only() {
        let scans = vec![
            layer(
                0,
                vec![entry("/root", Dir), entry("/root/.aws", Dir)],
                &[],
                &[],
            ),
            layer(
                1,
                vec![
                    entry("/root/.aws/credentials", File),
                    entry("/root/id_rsa", File),
                ],
                &[],
                &[],
            ),
            layer(2, vec![entry("/root/new", File)], &["/root/.aws"], &[]),
            layer(3, vec![], &["/root/id_rsa"], &[]),
        ];
        let v = MergedView::build(&scans);
        assert_eq!(v.removed_in(1, 0), Some(2), "credentials went with its dir");
        assert_eq!(v.removed_in(0, 1), Some(2));
        assert_eq!(v.removed_in(1, 1), Some(3));
        assert_eq!(v.removed_in(0, 0), None);
        assert_eq!(v.lookup("/root/new"), Some((2, 0)));
        assert_eq!(v.lookup("/root/.aws/credentials"), None);
    }

    #[test]
    fn opaque_dir_hides_lower_content_but_keeps_its_own() {
        let scans = vec![
            layer(
                0,
                vec![entry("/app", Dir), entry("/app/secret", File)],
                &[],
                &[],
            ),
            layer(
                1,
                vec![entry("/app", Dir), entry("/app/main", File)],
                &[],
                &["/app"],
            ),
        ];
        let v = MergedView::build(&scans);
        assert_eq!(v.removed_in(0, 1), Some(1));
        assert_eq!(
            v.removed_in(0, 0),
            None,
            "a dir over a dir only updates metadata"
        );
        assert_eq!(v.lookup("/app"), Some((1, 0)));
        assert_eq!(v.lookup("/app/main"), Some((1, 1)));
    }

    #[test]
    fn overwrite_replaces_and_a_file_over_a_dir_removes_the_subtree() {
        let scans = vec![
            layer(
                0,
                vec![
                    entry("/etc/app.conf", File),
                    entry("/data", Dir),
                    entry("/data/x", File),
                ],
                &[],
                &[],
            ),
            layer(
                1,
                vec![entry("/etc/app.conf", File), entry("/data", Symlink)],
                &[],
                &[],
            ),
        ];
        let v = MergedView::build(&scans);
        assert_eq!(v.removed_in(0, 0), Some(1));
        assert_eq!(v.removed_in(0, 2), Some(1));
        assert_eq!(v.lookup("/data"), Some((1, 1)));
        assert_eq!(v.visible().count(), 2);
    }

    #[test]
    fn members_below_a_symlink_are_caught_across_layers() {
        let mut link = entry("/lib", Symlink);
        link.link = Some("/usr/lib".into());
        let scans = vec![
            layer(0, vec![link], &[], &[]),
            layer(1, vec![entry("/lib/evil.so", File)], &[], &[]),
        ];
        let v = MergedView::build(&scans);
        assert_eq!(
            v.through_symlink(),
            &[ThroughSymlink {
                layer: 1,
                entry: 0,
                link_layer: 0,
                link_entry: 0
            }]
        );
        let f = layer_findings(&scans, &v);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].severity, Severity::Critical, "absolute link target");
    }

    #[test]
    fn same_secret_in_several_layers_is_reported_once_at_the_earliest() {
        let secret = |scan: &LayerScan, entry| ContentFinding {
            entry: Some(entry),
            finding: Finding {
                rule: "secret.test".into(),
                severity: Severity::High,
                title: "t".into(),
                location: scan.location("/app/.env", None),
                evidence: Some(Evidence::secret("s3cr3t-value-0123456789")),
                remediation: "r".into(),
            },
        };
        let mut scans = vec![
            layer(0, vec![entry("/app/.env", File)], &[], &[]),
            layer(1, vec![], &["/app/.env"], &[]),
            layer(2, vec![entry("/app/.env", File)], &[], &[]),
        ];
        let s0 = secret(&scans[0], 0);
        let s2 = secret(&scans[2], 0);
        scans[0].secrets.push(s0);
        scans[2].secrets.push(s2);
        let v = MergedView::build(&scans);
        let f = secret_findings(&scans, &v);
        assert_eq!(f.len(), 1);
        let Location::ImageFile {
            layer: Some(prov), ..
        } = &f[0].location
        else {
            panic!("{:?}", f[0].location)
        };
        assert_eq!(prov.index, 0);
        assert_eq!(prov.removed_in, None, "a copy is still visible in layer 3");
        let excerpt = &f[0].evidence.as_ref().unwrap().excerpt;
        assert!(
            excerpt.ends_with("(same value also in layer 3)"),
            "{excerpt}"
        );

        // Only the deleted copy: reported as deleted.
        scans[2].secrets.clear();
        let v = MergedView::build(&scans);
        let f = secret_findings(&scans, &v);
        assert_eq!(
            f[0].location.to_string(),
            "layer 1 /app/.env (deleted in layer 2, still present in layer 1)"
        );
    }
}
