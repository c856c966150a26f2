//! Compiled filters kept between runs, so that a container starts without running libseccomp.
//!
//! libseccomp needs about 3 ms of CPU to compile the default profile, and on a 2-core machine
//! that CPU competes with the container's own set-up: it was a fifth of `rsafe run --rm IMAGE
//! true`. What it produces depends only on the profile, the capabilities kept (Docker's
//! `includes.caps`), the kernel (`minKernel`, the actions it supports), libseccomp's version and
//! rsafe itself. So the first run compiles and writes the programs to
//! `<store>/seccomp-cache/<key>.json`, `<key>` being a SHA-256 of all those inputs, and later
//! runs read them back.
//!
//! A cached filter is the container's confinement, so who could have written it matters:
//! - The cache is trusted exactly as far as the store it lives in. Whoever can write the store
//!   can already replace the layers a container runs and rsafe's state; as root the store is
//!   root's, rootless it is the user's own (and the user's processes could as well run without
//!   any sandbox).
//! - An entry is read only when its directory and the file itself are owned by the user running
//!   rsafe and writable by nobody else, the rule OpenSSH applies to `~/.ssh`; both are opened
//!   without following symlinks and checked on the open descriptor. A store shared with, or
//!   planted by, another user is never a source of filters: rsafe compiles instead.
//! - The entry repeats its key, and must parse into programs the kernel would accept (the same
//!   decoding the sync channel applies). Anything else is a miss: rsafe compiles, and replaces
//!   the entry.
//! - Entries are written to a private temporary file and renamed into place, so a reader never
//!   sees half a filter.

use std::io;
use std::path::{Path, PathBuf};

use ::caps::Capability;
use sha2::{Digest, Sha256};

use super::{CompiledFilter, SeccompProfile};
use crate::image::store_cache::StoreCache;

/// The store's subdirectory for compiled filters.
const DIR_NAME: &str = "seccomp-cache";
/// Bumped when the entry format or the meaning of the key changes.
const FORMAT: &str = "rsafe seccomp cache v2";
/// An entry is a few KiB; anything much larger is not one of ours.
const MAX_ENTRY: u64 = 1 << 20;
/// Entries kept; the oldest go when a new one is written beyond this.
const MAX_ENTRIES: usize = 32;

/// The compiled-filter cache of one store.
#[derive(Debug, Clone)]
pub struct FilterCache {
    dir: PathBuf,
}

/// What the cache holds for one key.
#[derive(serde::Serialize, serde::Deserialize)]
struct Entry {
    key: String,
    filter: CompiledFilter,
}

impl FilterCache {
    /// The cache of the store at `store_root` (nothing is created until the first write).
    pub fn in_store(store_root: &Path) -> FilterCache {
        FilterCache {
            dir: store_root.join(DIR_NAME),
        }
    }

    /// Where entries live.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The filter for `profile` and `caps_kept`: from the cache when a trusted entry is there
    /// (`true`), or compiled now and written back for the next run (`false`). Failing to read
    /// or write the cache never fails the run; failing to compile does.
    pub fn get_or_compile(
        &self,
        profile: &SeccompProfile,
        caps_kept: &[Capability],
    ) -> Result<(CompiledFilter, bool), super::SeccompError> {
        if profile.profile().is_none() {
            return super::compile(profile, caps_kept).map(|f| (f, false));
        }
        let key = cache_key(profile, caps_kept);
        if let Some(filter) = key.as_deref().and_then(|k| self.get(k)) {
            return Ok((filter, true));
        }
        let filter = super::compile(profile, caps_kept)?;
        if let Some(key) = &key {
            let _ = self.put(key, &filter);
        }
        Ok((filter, false))
    }

    /// The entry for `key`, if there is one rsafe can trust.
    pub fn get(&self, key: &str) -> Option<CompiledFilter> {
        let bytes = self.entries().read(&entry_name(key)).ok()?;
        let entry: Entry = serde_json::from_slice(&bytes).ok()?;
        (entry.key == key).then_some(entry.filter)
    }

    /// Writes the entry for `key`, replacing any older one. Creates the cache directory
    /// (mode 0700) when the store has none.
    pub fn put(&self, key: &str, filter: &CompiledFilter) -> io::Result<()> {
        let body = serde_json::to_vec(&Entry {
            key: key.to_string(),
            filter: filter.clone(),
        })
        .map_err(io::Error::other)?;
        self.entries()
            .write(&entry_name(key), &body)
            .map(|_| ())
            .map_err(|e| e.source)
    }

    fn entries(&self) -> StoreCache {
        StoreCache::new(self.dir.clone(), MAX_ENTRY, MAX_ENTRIES)
    }
}

fn entry_name(key: &str) -> String {
    format!("{key}.json")
}

/// SHA-256 of everything the compiled programs depend on; `None` when one of those cannot be
/// known (then nothing is cached).
fn cache_key(profile: &SeccompProfile, caps_kept: &[Capability]) -> Option<String> {
    let mut h = Sha256::new();
    let mut field = |bytes: &[u8]| {
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(bytes);
    };
    field(FORMAT.as_bytes());
    field(env!("CARGO_PKG_VERSION").as_bytes());
    // This very build of rsafe: a rebuilt binary gets new entries even without a new version.
    field(crate::image::store_cache::this_build()?.as_bytes());
    let lib = libseccomp::ScmpVersion::current().ok()?;
    field(format!("{}.{}.{}", lib.major, lib.minor, lib.micro).as_bytes());
    field(
        std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()?
            .trim()
            .as_bytes(),
    );
    field(&serde_json::to_vec(profile).ok()?);
    let mut caps: Vec<String> = caps_kept.iter().map(|c| c.to_string()).collect();
    caps.sort();
    field(caps.join(",").as_bytes());
    Some(hex::encode(h.finalize()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn default_caps() -> Vec<Capability> {
        vec![Capability::CAP_CHOWN, Capability::CAP_SETUID]
    }

    #[test]
    fn a_second_run_reads_what_the_first_compiled() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FilterCache::in_store(tmp.path());
        let profile = SeccompProfile::builtin_default();
        let (first, cached) = cache.get_or_compile(&profile, &default_caps()).unwrap();
        assert!(!cached);
        let mode = std::fs::metadata(cache.dir()).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        let (second, cached) = cache.get_or_compile(&profile, &default_caps()).unwrap();
        assert!(cached);
        assert_eq!(first, second);
        // Other capabilities are another filter (Docker's includes.caps).
        let (_, cached) = cache
            .get_or_compile(&profile, &[Capability::CAP_SYS_ADMIN])
            .unwrap();
        assert!(!cached);
    }

    #[test]
    fn unconfined_is_never_cached() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FilterCache::in_store(tmp.path());
        let (f, cached) = cache
            .get_or_compile(&SeccompProfile::unconfined(), &[])
            .unwrap();
        assert!(f.is_unconfined() && !cached);
        assert!(!cache.dir().exists());
    }

    fn only_entry(cache: &FilterCache) -> PathBuf {
        let entries: Vec<PathBuf> = std::fs::read_dir(cache.dir())
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        assert_eq!(entries.len(), 1, "{entries:?}");
        entries[0].clone()
    }

    #[test]
    fn entries_anyone_else_could_write_are_not_read() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FilterCache::in_store(tmp.path());
        let profile = SeccompProfile::builtin_default();
        cache.get_or_compile(&profile, &default_caps()).unwrap();
        let entry = only_entry(&cache);

        // A group- or world-writable entry is ignored, compiled again and replaced.
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o666)).unwrap();
        let (_, cached) = cache.get_or_compile(&profile, &default_caps()).unwrap();
        assert!(!cached);
        let mode = std::fs::metadata(&entry).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600, "the entry was rewritten privately");
        assert!(cache.get_or_compile(&profile, &default_caps()).unwrap().1);

        // So is everything in a directory others can write to.
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o777)).unwrap();
        assert!(!cache.get_or_compile(&profile, &default_caps()).unwrap().1);
        std::fs::set_permissions(cache.dir(), std::fs::Permissions::from_mode(0o700)).unwrap();
        assert!(cache.get_or_compile(&profile, &default_caps()).unwrap().1);
    }

    #[test]
    fn an_entry_owned_by_another_user_is_not_read() {
        if !rustix::process::geteuid().is_root() {
            eprintln!("needs root to chown: checked in the root run of the suite");
            return;
        }
        let tmp = tempfile::tempdir().unwrap();
        let cache = FilterCache::in_store(tmp.path());
        let profile = SeccompProfile::builtin_default();
        cache.get_or_compile(&profile, &default_caps()).unwrap();
        let entry = only_entry(&cache);
        std::os::unix::fs::chown(&entry, Some(65534), Some(65534)).unwrap();
        assert!(!cache.get_or_compile(&profile, &default_caps()).unwrap().1);
        std::os::unix::fs::chown(cache.dir(), Some(65534), Some(65534)).unwrap();
        assert!(!cache.get_or_compile(&profile, &default_caps()).unwrap().1);
    }

    #[test]
    fn symlinks_and_damaged_entries_are_misses() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FilterCache::in_store(tmp.path());
        let profile = SeccompProfile::builtin_default();
        let (good, _) = cache.get_or_compile(&profile, &default_caps()).unwrap();
        let entry = only_entry(&cache);
        let name = entry.file_name().unwrap().to_owned();

        // A truncated entry.
        let bytes = std::fs::read(&entry).unwrap();
        std::fs::write(&entry, &bytes[..bytes.len() / 2]).unwrap();
        assert!(!cache.get_or_compile(&profile, &default_caps()).unwrap().1);

        // An entry whose key says it is for something else, under this key's name: e.g. the
        // filter of a looser profile copied over.
        let text = String::from_utf8(std::fs::read(&entry).unwrap()).unwrap();
        let key = name.to_string_lossy().trim_end_matches(".json").to_string();
        std::fs::write(&entry, text.replace(&key, &"0".repeat(64))).unwrap();
        assert!(!cache.get_or_compile(&profile, &default_caps()).unwrap().1);

        // A symlink in the entry's place, to a file that is itself a valid entry.
        let elsewhere = tmp.path().join("elsewhere.json");
        std::fs::copy(&entry, &elsewhere).unwrap();
        std::fs::remove_file(&entry).unwrap();
        std::os::unix::fs::symlink(&elsewhere, &entry).unwrap();
        assert!(cache.get(&key).is_none());

        // The cache directory itself a symlink to a directory of good entries.
        std::fs::remove_file(&entry).unwrap();
        cache.put(&key, &good).unwrap();
        let real = tmp.path().join("real-cache");
        std::fs::rename(cache.dir(), &real).unwrap();
        std::os::unix::fs::symlink(&real, cache.dir()).unwrap();
        assert!(cache.get(&key).is_none());
    }

    #[test]
    fn old_entries_are_pruned() {
        let tmp = tempfile::tempdir().unwrap();
        let cache = FilterCache::in_store(tmp.path());
        let (filter, _) = cache
            .get_or_compile(&SeccompProfile::builtin_default(), &default_caps())
            .unwrap();
        for i in 0..MAX_ENTRIES + 5 {
            cache.put(&format!("{i:064x}"), &filter).unwrap();
        }
        let n = std::fs::read_dir(cache.dir()).unwrap().count();
        assert_eq!(n, MAX_ENTRIES);
    }
}
