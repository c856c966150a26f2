//! Entry names: turning the bytes a tar header gives into a path that can only name something
//! inside the layer, and printing names safely in error messages.
//!
//! A name is split on `/`; empty and `.` components are dropped; `..` anywhere and a leading
//! `/` are refused outright (a layer entry is relative to the layer root, and no real tool
//! writes either). Nothing here touches the filesystem: that the *existing* tree cannot
//! redirect a name (symlinks) is enforced where names are resolved, in [`super::target`].

use std::fmt;
use std::ops::Bound;

use super::Problem;

/// Linux's PATH_MAX: longer names cannot be passed to a system call anyway.
pub const PATH_MAX: usize = 4096;
/// Linux's NAME_MAX for one component.
pub const NAME_MAX: usize = 255;

/// A validated entry path: normal components joined by `/`, no leading or trailing slash.
/// The empty path is the layer root.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EntryPath(Vec<u8>);

impl EntryPath {
    /// Validates and normalises a raw entry name.
    pub fn parse(raw: &[u8]) -> Result<EntryPath, Problem> {
        if raw.contains(&0) {
            return Err(Problem::Nul);
        }
        if raw.len() > PATH_MAX {
            return Err(Problem::NameTooLong(raw.len()));
        }
        if raw.first() == Some(&b'/') {
            return Err(Problem::Absolute);
        }
        let mut out = Vec::with_capacity(raw.len());
        for component in raw.split(|&b| b == b'/') {
            match component {
                b"" | b"." => continue,
                b".." => return Err(Problem::DotDot),
                c if c.len() > NAME_MAX => return Err(Problem::ComponentTooLong(c.len())),
                c => {
                    if !out.is_empty() {
                        out.push(b'/');
                    }
                    out.extend_from_slice(c);
                }
            }
        }
        Ok(EntryPath(out))
    }

    /// Whether this names the layer root (`./`, `.`).
    pub fn is_root(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalised path, as the key of per-layer bookkeeping and for `*at` calls.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// (parent, last component); `None` for the root.
    pub fn split_last(&self) -> Option<(&[u8], &[u8])> {
        if self.0.is_empty() {
            return None;
        }
        Some(match self.0.iter().rposition(|&b| b == b'/') {
            Some(i) => (&self.0[..i], &self.0[i + 1..]),
            None => (&b""[..], &self.0[..]),
        })
    }

    /// `parent/name` for a validated single component.
    pub fn join(parent: &[u8], name: &[u8]) -> EntryPath {
        let mut out = Vec::with_capacity(parent.len() + name.len() + 1);
        out.extend_from_slice(parent);
        if !parent.is_empty() {
            out.push(b'/');
        }
        out.extend_from_slice(name);
        EntryPath(out)
    }
}

/// The key range of everything strictly below `path` in a map keyed by path bytes:
/// `[path + "/", path + "0")` (`'0'` is the byte after `'/'`). For the root: everything.
pub fn below(path: &[u8]) -> (Bound<Vec<u8>>, Bound<Vec<u8>>) {
    if path.is_empty() {
        return (Bound::Unbounded, Bound::Unbounded);
    }
    let mut start = path.to_vec();
    start.push(b'/');
    let mut end = path.to_vec();
    end.push(b'0');
    (Bound::Included(start), Bound::Excluded(end))
}

/// An entry name for messages: quoted, control characters escaped, invalid UTF-8 replaced,
/// and cut after 200 characters (a 1 MiB name must not become a 1 MiB error line).
#[derive(Clone, PartialEq, Eq)]
pub struct EntryName(pub Vec<u8>);

impl fmt::Display for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = String::from_utf8_lossy(&self.0);
        let shown: String = text.chars().take(200).collect();
        write!(f, "\"{}", shown.escape_debug())?;
        if shown.len() < text.len() {
            write!(f, "…\" ({} bytes)", self.0.len())
        } else {
            write!(f, "\"")
        }
    }
}

impl fmt::Debug for EntryName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ops::RangeBounds;

    #[test]
    fn normalises_harmless_forms() {
        let p = |s: &str| EntryPath::parse(s.as_bytes()).unwrap();
        assert_eq!(p("./a//b/./c/").as_bytes(), b"a/b/c");
        assert!(p("./").is_root());
        assert!(p(".").is_root());
        assert_eq!(p("a/b/c").split_last(), Some((&b"a/b"[..], &b"c"[..])));
        assert_eq!(p("c").split_last(), Some((&b""[..], &b"c"[..])));
        assert_eq!(EntryPath::join(b"", b"x").as_bytes(), b"x");
        assert_eq!(EntryPath::join(b"a", b"x").as_bytes(), b"a/x");
    }

    #[test]
    fn refuses_escapes_and_oversized_names() {
        let e = |s: &[u8]| EntryPath::parse(s).unwrap_err();
        assert!(matches!(e(b"../x"), Problem::DotDot));
        assert!(matches!(e(b"a/../../x"), Problem::DotDot));
        assert!(matches!(e(b"a/.."), Problem::DotDot));
        assert!(matches!(e(b"/etc/passwd"), Problem::Absolute));
        assert!(matches!(e(b"a\0b"), Problem::Nul));
        assert!(matches!(e(&[b'a'; 300]), Problem::ComponentTooLong(300)));
        let deep = "a/".repeat(2100);
        assert!(matches!(e(deep.as_bytes()), Problem::NameTooLong(_)));
    }

    #[test]
    fn below_covers_exactly_the_subtree() {
        let range = below(b"a");
        for inside in [&b"a/b"[..], b"a/b/c", b"a/\xff"] {
            assert!(range.contains(&inside.to_vec()));
        }
        for outside in [&b"a"[..], b"a-b", b"ab", b"b", b"a0"] {
            assert!(!range.contains(&outside.to_vec()));
        }
        assert!(below(b"").contains(&b"x/y".to_vec()));
    }

    #[test]
    fn names_print_escaped_and_bounded() {
        assert_eq!(EntryName(b"a\nb".to_vec()).to_string(), r#""a\nb""#);
        let long = EntryName(vec![b'x'; 5000]).to_string();
        assert!(long.len() < 300 && long.ends_with("(5000 bytes)"), "{long}");
    }
}
