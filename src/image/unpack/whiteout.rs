//! Whiteouts: how a layer says "this file from the layers below is deleted", in the tar
//! (AUFS-style names) and on disk (what overlayfs understands).
//!
//! In a layer tar (OCI image spec, "Whiteouts"):
//! - `dir/.wh.name` deletes `dir/name` from the layers below;
//! - `dir/.wh..wh..opq` makes `dir` opaque: everything the layers below put in it is hidden;
//! - other `.wh..wh.*` names are AUFS bookkeeping (hard-link directories) and carry nothing.
//!
//! On disk, a flattened root filesystem simply has the deleted files removed. A cached layer
//! directory, stacked as an overlayfs lowerdir, must say it in a form overlayfs honours when it
//! is mounted with `userxattr` inside a user namespace by an unprivileged user, *and* that an
//! unprivileged user can create (no `mknod` of a 0/0 character device). Since Linux 6.7:
//! - a deleted name is an empty regular file carrying the xattr [`XATTR_WHITEOUT`]
//!   ("xwhiteout"), and its directory carries [`XATTR_OPAQUE`] = `"x"` so overlayfs knows to
//!   look for them;
//! - an opaque directory carries [`XATTR_OPAQUE`] = `"y"`.
//!
//! Overlayfs ignores an opaque mark on a layer's *root* directory, so a layer whose root is
//! opaque keeps the mark there and [`super::LayerCache::ensure`] drops the layers below it from
//! the stack instead.

use super::Problem;

/// A whiteout file in a lowerdir: empty regular file with this xattr (any value).
pub const XATTR_WHITEOUT: &str = "user.overlay.whiteout";
/// On a directory: `"y"` opaque, `"x"` contains xwhiteouts.
pub const XATTR_OPAQUE: &str = "user.overlay.opaque";
/// Value of [`XATTR_OPAQUE`] for an opaque directory.
pub const OPAQUE: &[u8] = b"y";
/// Value of [`XATTR_OPAQUE`] for a directory that contains xwhiteouts.
pub const HAS_XWHITEOUTS: &[u8] = b"x";

const PREFIX: &[u8] = b".wh.";
const META_PREFIX: &[u8] = b".wh..wh.";
const OPAQUE_MARKER: &[u8] = b".wh..wh..opq";

/// What an entry's last path component means as a whiteout.
#[derive(Debug, PartialEq, Eq)]
pub enum Whiteout<'a> {
    /// `.wh..wh..opq`: the parent directory is opaque.
    Opaque,
    /// `.wh.<name>`: `<name>` in the parent directory is deleted.
    Delete(&'a [u8]),
    /// Other `.wh..wh.*` names: AUFS metadata, skipped.
    AufsMeta,
}

/// Classifies a file name; `None` for ordinary names. A whiteout naming `.`, `..` or nothing is
/// refused (it would delete the directory itself or its parent).
pub fn classify(name: &[u8]) -> Result<Option<Whiteout<'_>>, Problem> {
    if !name.starts_with(PREFIX) {
        return Ok(None);
    }
    if name == OPAQUE_MARKER {
        return Ok(Some(Whiteout::Opaque));
    }
    if name.starts_with(META_PREFIX) {
        return Ok(Some(Whiteout::AufsMeta));
    }
    match &name[PREFIX.len()..] {
        b"" | b"." | b".." => Err(Problem::BadWhiteout(
            String::from_utf8_lossy(&name[PREFIX.len()..]).into_owned(),
        )),
        target => Ok(Some(Whiteout::Delete(target))),
    }
}

/// The reserved xattr namespaces: overlayfs's own (an image must not be able to turn its
/// files into whiteouts or redirects of our cache) and rsafe's record of owners.
pub fn reserved_xattr(name: &[u8]) -> bool {
    name.starts_with(b"user.overlay.")
        || name.starts_with(b"trusted.overlay.")
        || name.starts_with(b"user.rsafe.")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_whiteout_names() {
        assert_eq!(classify(b"file").unwrap(), None);
        assert_eq!(classify(b".wh").unwrap(), None);
        assert_eq!(
            classify(b".wh.file").unwrap(),
            Some(Whiteout::Delete(b"file"))
        );
        assert_eq!(classify(b".wh..wh..opq").unwrap(), Some(Whiteout::Opaque));
        assert_eq!(classify(b".wh..wh.plnk").unwrap(), Some(Whiteout::AufsMeta));
        for bad in [&b".wh."[..], b".wh..", b".wh..."] {
            assert!(matches!(classify(bad), Err(Problem::BadWhiteout(_))));
        }
    }

    #[test]
    fn overlay_and_rsafe_xattrs_are_reserved() {
        assert!(reserved_xattr(b"user.overlay.opaque"));
        assert!(reserved_xattr(b"trusted.overlay.redirect"));
        assert!(reserved_xattr(b"user.rsafe.owner"));
        assert!(!reserved_xattr(b"user.mime_type"));
    }
}
