//! Who owns the extracted files, and which extended attributes an image may set.
//!
//! The image says "this file belongs to uid 33". What that becomes on disk depends on who
//! extracts and who will use the files ([`Ownership`]): root unpacking for root keeps ids as
//! they are; a runner with a subordinate id range shifts them into the range (so overlayfs
//! copy-up inside the user namespace never meets an unmapped id, the EOVERFLOW trap); an
//! unprivileged user gets everything and records the image's owner in the xattr
//! [`OWNER_XATTR`] (`"uid:gid"`) on regular files and directories, the only kinds Linux allows
//! `user.*` xattrs on.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use super::tar::Kind;
use super::whiteout::reserved_xattr;

/// Where the image's owner of a file is recorded when the file cannot carry it.
pub const OWNER_XATTR: &str = "user.rsafe.owner";

/// What the image's uids and gids become on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ownership {
    /// Image ids as they are (root only): what `umoci unpack` and `tar -p` do.
    Preserve,
    /// Image id `n` becomes host id `uid + n` / `gid + n` for `n < count`; any other id becomes
    /// the range's `nobody` (`min(65534, count - 1)`), with the real owner recorded. For a
    /// container whose user namespace maps 0..count onto that host range.
    Shift { uid: u32, gid: u32, count: u32 },
    /// Everything owned by the calling user, the image's owner recorded in [`OWNER_XATTR`].
    /// What an unprivileged user gets; a single-id user namespace maps it to container root.
    Caller,
}

impl Ownership {
    /// The natural choice for this process: [`Ownership::Preserve`] for root,
    /// [`Ownership::Caller`] for everyone else.
    pub fn for_current_user() -> Ownership {
        if rustix::process::geteuid().is_root() {
            Ownership::Preserve
        } else {
            Ownership::Caller
        }
    }

    /// A directory name for the layer cache: layers extracted under different ownerships differ
    /// on disk, so they are cached apart.
    pub fn cache_key(&self) -> String {
        match *self {
            Ownership::Preserve => "preserve".into(),
            Ownership::Shift { uid, gid, count } => format!("shift-{uid}-{gid}-{count}"),
            Ownership::Caller => format!(
                "caller-{}-{}",
                rustix::process::geteuid().as_raw(),
                rustix::process::getegid().as_raw()
            ),
        }
    }
}

impl fmt::Display for Ownership {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Ownership::Preserve => write!(f, "preserve"),
            Ownership::Caller => write!(f, "caller"),
            Ownership::Shift { uid, gid, count } => write!(f, "shift:{uid}:{gid}:{count}"),
        }
    }
}

impl FromStr for Ownership {
    type Err = String;
    /// `preserve`, `caller`, or `shift:UID:GID:COUNT`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "preserve" => return Ok(Ownership::Preserve),
            "caller" => return Ok(Ownership::Caller),
            _ => {}
        }
        let bad = || {
            format!("invalid ownership {s:?} (expected preserve, caller or shift:UID:GID:COUNT)")
        };
        let rest = s.strip_prefix("shift:").ok_or_else(bad)?;
        let parts: Vec<u32> = rest
            .split(':')
            .map(|p| p.parse::<u32>())
            .collect::<Result<_, _>>()
            .map_err(|_| bad())?;
        match parts.as_slice() {
            [uid, gid, count]
                if *count > 0
                    && uid.checked_add(*count - 1).is_some()
                    && gid.checked_add(*count - 1).is_some() =>
            {
                Ok(Ownership::Shift {
                    uid: *uid,
                    gid: *gid,
                    count: *count,
                })
            }
            _ => Err(bad()),
        }
    }
}

/// Whether this process is in the host's (initial) user namespace, the only one whose root may
/// make device nodes: there, and only there, `uid_map` maps the whole 32-bit id space onto
/// itself. Unreadable means no (an unknown namespace gets the unprivileged path).
fn in_initial_user_namespace() -> bool {
    std::fs::read_to_string("/proc/self/uid_map").is_ok_and(|map| is_identity_map(&map))
}

/// `uid_map` text of the initial user namespace: one line `0 0 4294967295`.
fn is_identity_map(map: &str) -> bool {
    let mut lines = map.lines().filter(|l| !l.trim().is_empty());
    let first = lines
        .next()
        .map(|l| l.split_whitespace().collect::<Vec<_>>());
    lines.next().is_none() && first.as_deref() == Some(&["0", "0", "4294967295"][..])
}

/// What to do about one file's owner.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owner {
    /// Host ids to chown to; `None` when the file, as created, already has them.
    pub chown: Option<(u32, u32)>,
    /// Record the image's `uid:gid` in [`OWNER_XATTR`].
    pub record: bool,
}

/// [`Ownership`] applied: maps image ids and filters xattrs for the extracting process.
#[derive(Debug, Clone)]
pub struct Owners {
    pub ownership: Ownership,
    euid: u32,
    egid: u32,
    root: bool,
    devices: bool,
}

impl Owners {
    /// The policy for this process (its effective ids decide what "caller" and "root" mean).
    pub fn new(ownership: Ownership) -> Owners {
        let euid = rustix::process::geteuid().as_raw();
        Owners {
            ownership,
            euid,
            egid: rustix::process::getegid().as_raw(),
            root: euid == 0,
            devices: euid == 0 && in_initial_user_namespace(),
        }
    }

    /// Refuses an ownership this process cannot carry out (chown to other ids needs root).
    pub fn check(&self) -> Result<(), super::UnpackError> {
        let possible = match self.ownership {
            Ownership::Caller => true,
            Ownership::Preserve => self.root,
            Ownership::Shift { uid, gid, count } => {
                self.root || (count == 1 && uid == self.euid && gid == self.egid)
            }
        };
        if possible {
            Ok(())
        } else {
            Err(super::UnpackError::NeedsRoot(self.ownership))
        }
    }

    /// Whether device nodes can be created: only by root of the host's user namespace. Root
    /// of any other one (rootless extraction runs as the root of a user namespace that maps
    /// the caller's subordinate ids) may chown but never `mknod` a device.
    pub fn may_make_devices(&self) -> bool {
        self.devices
    }

    /// What image owner `uid:gid` becomes.
    pub fn map(&self, uid: u32, gid: u32) -> Owner {
        let (host, record) = match self.ownership {
            Ownership::Preserve => ((uid, gid), false),
            Ownership::Caller => ((self.euid, self.egid), true),
            Ownership::Shift {
                uid: base_uid,
                gid: base_gid,
                count,
            } => {
                let shift = |id: u32, base: u32| match id < count {
                    true => base + id,
                    false => base + (count - 1).min(65534),
                };
                (
                    (shift(uid, base_uid), shift(gid, base_gid)),
                    uid >= count || gid >= count,
                )
            }
        };
        Owner {
            chown: (host != (self.euid, self.egid)).then_some(host),
            record,
        }
    }

    /// The value to set for an image xattr on a `kind` entry, or `None` to drop it: overlayfs
    /// and rsafe namespaces never; `user.*` on files and directories; `security.capability` on
    /// files when root (re-targeted at the shifted root id for [`Ownership::Shift`]); ACLs only
    /// when ids are preserved (they name ids); `trusted.*` and other `security.*` never (they
    /// belong to the host, not to an image).
    pub fn xattr<'v>(&self, name: &[u8], value: &'v [u8], kind: Kind) -> Option<Cow<'v, [u8]>> {
        let file_or_dir = matches!(kind, Kind::Regular | Kind::Directory);
        if reserved_xattr(name) {
            return None;
        }
        if name.starts_with(b"user.") {
            return file_or_dir.then_some(Cow::Borrowed(value));
        }
        if name == b"security.capability" {
            if !self.root || kind != Kind::Regular {
                return None;
            }
            return match self.ownership {
                Ownership::Shift { uid, count, .. } => capability_for_root(value, |image_root| {
                    (image_root < count).then(|| uid + image_root)
                })
                .map(Cow::Owned),
                _ => Some(Cow::Borrowed(value)),
            };
        }
        if name == b"system.posix_acl_access" || name == b"system.posix_acl_default" {
            return (self.root && self.ownership == Ownership::Preserve && file_or_dir)
                .then_some(Cow::Borrowed(value));
        }
        None
    }
}

const CAP_REVISION_MASK: u32 = 0xFF00_0000;
const CAP_REVISION_1: u32 = 0x0100_0000;
const CAP_REVISION_2: u32 = 0x0200_0000;
const CAP_REVISION_3: u32 = 0x0300_0000;

/// Rewrites a `security.capability` value as a revision-3 ("namespaced") value whose root id is
/// `map(image root id)`, so the capabilities apply to the container's root, whose host id is
/// not 0. Revision 1/2 values belong to image root 0. `None` if the value is malformed or its
/// root id does not map.
fn capability_for_root(value: &[u8], map: impl Fn(u32) -> Option<u32>) -> Option<Vec<u8>> {
    let word = |i: usize| -> Option<u32> {
        Some(u32::from_le_bytes(
            value.get(i * 4..i * 4 + 4)?.try_into().ok()?,
        ))
    };
    let magic = word(0)?;
    let (data, image_root): (Vec<u32>, u32) = match (magic & CAP_REVISION_MASK, value.len()) {
        (CAP_REVISION_1, 12) => (vec![word(1)?, word(2)?, 0, 0], 0),
        (CAP_REVISION_2, 20) => (vec![word(1)?, word(2)?, word(3)?, word(4)?], 0),
        (CAP_REVISION_3, 24) => (vec![word(1)?, word(2)?, word(3)?, word(4)?], word(5)?),
        _ => return None,
    };
    let root = map(image_root)?;
    let mut out = Vec::with_capacity(24);
    out.extend_from_slice(&(CAP_REVISION_3 | (magic & !CAP_REVISION_MASK)).to_le_bytes());
    for w in data {
        out.extend_from_slice(&w.to_le_bytes());
    }
    out.extend_from_slice(&root.to_le_bytes());
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owners(ownership: Ownership) -> Owners {
        Owners {
            ownership,
            euid: 1000,
            egid: 1000,
            root: false,
            devices: false,
        }
    }

    #[test]
    fn only_the_host_namespace_maps_every_id_onto_itself() {
        assert!(is_identity_map("         0          0 4294967295\n"));
        // Root of a rootless container's namespace: uid 0 there, but no devices.
        assert!(!is_identity_map("0 1000 1\n"));
        assert!(!is_identity_map("0 1000 1\n1 200000 65536\n"));
        assert!(!is_identity_map("0 0 4294967294\n"));
        assert!(!is_identity_map(""));
    }

    #[test]
    fn maps_ids_per_ownership() {
        let preserve = owners(Ownership::Preserve);
        assert_eq!(preserve.map(0, 0).chown, Some((0, 0)));
        assert_eq!(preserve.map(1000, 1000).chown, None);
        let caller = owners(Ownership::Caller);
        assert_eq!(
            caller.map(0, 33),
            Owner {
                chown: None,
                record: true
            }
        );
        let shift = owners(Ownership::Shift {
            uid: 100_000,
            gid: 200_000,
            count: 65536,
        });
        assert_eq!(
            shift.map(33, 0),
            Owner {
                chown: Some((100_033, 200_000)),
                record: false
            }
        );
        assert_eq!(
            shift.map(70_000, 1),
            Owner {
                chown: Some((165_534, 200_001)),
                record: true
            }
        );
        let single = owners(Ownership::Shift {
            uid: 1000,
            gid: 1000,
            count: 1,
        });
        assert_eq!(
            single.map(5, 0),
            Owner {
                chown: None,
                record: true
            }
        );
    }

    #[test]
    fn parses_ownership() {
        assert_eq!("preserve".parse(), Ok(Ownership::Preserve));
        assert_eq!(
            "shift:100000:100000:65536".parse(),
            Ok(Ownership::Shift {
                uid: 100000,
                gid: 100000,
                count: 65536
            })
        );
        assert!("shift:1:2".parse::<Ownership>().is_err());
        assert!("shift:1:2:0".parse::<Ownership>().is_err());
        assert!("shift:4294967295:0:2".parse::<Ownership>().is_err());
        let s = Ownership::Shift {
            uid: 1,
            gid: 2,
            count: 3,
        };
        assert_eq!(s.to_string().parse(), Ok(s));
    }

    #[test]
    fn filters_xattrs() {
        let o = owners(Ownership::Caller);
        assert!(
            o.xattr(b"user.overlay.opaque", b"y", Kind::Directory)
                .is_none()
        );
        assert!(
            o.xattr(b"user.rsafe.owner", b"0:0", Kind::Regular)
                .is_none()
        );
        assert!(o.xattr(b"user.mime", b"x", Kind::Regular).is_some());
        assert!(o.xattr(b"user.mime", b"x", Kind::Symlink).is_none());
        assert!(o.xattr(b"trusted.x", b"x", Kind::Regular).is_none());
        assert!(
            o.xattr(b"security.capability", b"x", Kind::Regular)
                .is_none()
        );
        assert!(o.xattr(b"security.selinux", b"x", Kind::Regular).is_none());
    }

    #[test]
    fn capabilities_are_retargeted_at_the_shifted_root() {
        // cap_net_raw+ep, revision 2.
        let mut v2 = Vec::new();
        for w in [CAP_REVISION_2 | 1, 1 << 13, 0, 0, 0] {
            v2.extend_from_slice(&w.to_le_bytes());
        }
        let v3 = capability_for_root(&v2, |r| Some(100_000 + r)).unwrap();
        assert_eq!(v3.len(), 24);
        assert_eq!(&v3[0..4], &(CAP_REVISION_3 | 1).to_le_bytes());
        assert_eq!(&v3[4..20], &v2[4..20]);
        assert_eq!(&v3[20..24], &100_000u32.to_le_bytes());
        assert!(capability_for_root(&v2[..19], Some).is_none());
        assert!(capability_for_root(&v3, |_| None).is_none());
    }
}
