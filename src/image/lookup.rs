//! Finding an image in the store from what a user typed: a name in any docker spelling
//! (`busybox`, `docker.io/library/busybox:latest`), a `name@sha256:…`, a digest, or a unique
//! prefix of one (`3f2a9c`), as `docker inspect`/`docker rmi` accept them.

use oci_spec::image::Descriptor;

use super::digest::Digest;
use super::reference::Reference;
use super::store::{Store, StoreError};

/// Shortest digest prefix accepted, so that a short word is not taken for a digest by accident.
pub const MIN_PREFIX: usize = 4;

/// Why nothing (or too much) was found.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("no image {0:?} in the store")]
    NotFound(String),
    #[error("{input:?} matches {count} images by digest prefix; give more of the digest")]
    Ambiguous { input: String, count: usize },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How the user's input matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Matched {
    /// A store name (after normalizing the input): that one name.
    Name(String),
    /// A digest or digest prefix: every entry with that digest.
    Digest,
}

/// An image found in the store.
#[derive(Debug, Clone)]
pub struct Found {
    /// What the image entry points at (manifest or index).
    pub descriptor: Descriptor,
    pub digest: Digest,
    /// Every name pointing at that digest (empty for an image kept by digest only).
    pub names: Vec<String>,
    pub matched: Matched,
}

impl Found {
    /// The name to show for it: the matched name, else its first name, else its digest.
    pub fn display_name(&self) -> String {
        match &self.matched {
            Matched::Name(n) => n.clone(),
            Matched::Digest => self
                .names
                .first()
                .cloned()
                .unwrap_or_else(|| self.digest.to_string()),
        }
    }
}

/// Finds `input` in the store: exact name, normalized name, `name@digest`, digest, digest prefix
/// (at least [`MIN_PREFIX`] hex characters), in that order.
pub fn find(store: &Store, input: &str) -> Result<Found, LookupError> {
    let entries = store.entries()?;
    // The entry for `digest` (the one named `name` when given), and all names it has.
    let found = |name: Option<&str>, digest: &Digest, matched: Matched| {
        let same: Vec<&(Option<String>, Descriptor)> = entries
            .iter()
            .filter(|(_, d)| Digest::try_from(d.digest()).is_ok_and(|x| &x == digest))
            .collect();
        let entry = same
            .iter()
            .find(|(n, _)| name.is_some() && n.as_deref() == name)
            .or(same.first())
            .ok_or_else(|| LookupError::NotFound(input.to_string()))?;
        Ok(Found {
            descriptor: crate::image::import::bare_descriptor(&entry.1),
            digest: digest.clone(),
            names: same.iter().filter_map(|(n, _)| n.clone()).collect(),
            matched,
        })
    };
    let by_name = |name: &str| {
        entries.iter().find_map(|(n, d)| {
            (n.as_deref() == Some(name))
                .then(|| Digest::try_from(d.digest()).ok())
                .flatten()
        })
    };

    let reference = input.parse::<Reference>().ok();
    let normalized = reference.as_ref().map(Reference::store_name);
    for name in std::iter::once(input).chain(normalized.as_deref()) {
        if let Some(digest) = by_name(name) {
            return found(Some(name), &digest, Matched::Name(name.to_string()));
        }
    }
    if let Some(digest) = reference.as_ref().and_then(|r| r.digest.clone()) {
        return found(None, &digest, Matched::Digest);
    }
    let prefix = input.strip_prefix("sha256:").unwrap_or(input);
    let is_hex = prefix
        .bytes()
        .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
    if !is_hex || prefix.len() < MIN_PREFIX || prefix.len() > 64 {
        return Err(LookupError::NotFound(input.to_string()));
    }
    let mut digests: Vec<Digest> = entries
        .iter()
        .filter_map(|(_, d)| Digest::try_from(d.digest()).ok())
        .filter(|d| d.hex().starts_with(prefix))
        .collect();
    digests.sort();
    digests.dedup();
    match digests.as_slice() {
        [] => Err(LookupError::NotFound(input.to_string())),
        [one] => found(None, one, Matched::Digest),
        many => Err(LookupError::Ambiguous {
            input: input.to_string(),
            count: many.len(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use oci_spec::image::MediaType;

    fn image(store: &Store, seed: &[u8]) -> Descriptor {
        let d = store.put_bytes(seed).unwrap();
        Descriptor::new(MediaType::ImageManifest, seed.len() as u64, &d)
    }

    #[test]
    fn names_digests_and_prefixes() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let a = image(&store, b"a");
        let b = image(&store, b"b");
        store.tag("busybox:latest", &a).unwrap();
        store.tag("busybox:1", &a).unwrap();
        store.tag("latest", &b).unwrap();
        let da = Digest::try_from(a.digest()).unwrap();
        let db = Digest::try_from(b.digest()).unwrap();

        let f = find(&store, "docker.io/library/busybox").unwrap();
        assert_eq!(f.matched, Matched::Name("busybox:latest".into()));
        assert_eq!(f.names, ["busybox:latest", "busybox:1"]);
        assert_eq!(f.digest, da);
        // A ref name that is not a docker reference (another tool's layout) is found as is.
        assert_eq!(find(&store, "latest").unwrap().digest, db);
        assert_eq!(find(&store, &da.hex()[..8]).unwrap().digest, da);
        assert_eq!(
            find(&store, &format!("sha256:{}", &db.hex()[..12]))
                .unwrap()
                .display_name(),
            "latest"
        );
        assert_eq!(find(&store, &format!("busybox@{da}")).unwrap().digest, da);
        assert!(matches!(
            find(&store, "alpine"),
            Err(LookupError::NotFound(_))
        ));
        assert!(matches!(
            find(&store, &da.hex()[..3]),
            Err(LookupError::NotFound(_))
        ));
    }

    #[test]
    fn ambiguous_prefixes_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        // Find two blobs whose digests share a 4-hex-character prefix.
        let mut seen = std::collections::HashMap::new();
        let (x, y) = (0u32..)
            .find_map(|i| {
                let bytes = i.to_le_bytes().to_vec();
                let p = Digest::of_bytes(&bytes).hex()[..4].to_string();
                seen.insert(p, bytes.clone()).map(|other| (other, bytes))
            })
            .unwrap();
        let (dx, dy) = (image(&store, &x), image(&store, &y));
        store.tag("x:1", &dx).unwrap();
        store.keep_unnamed(&dy).unwrap();
        let digest = Digest::try_from(dx.digest()).unwrap();
        assert!(matches!(
            find(&store, &digest.hex()[..4]),
            Err(LookupError::Ambiguous { count: 2, .. })
        ));
    }
}
