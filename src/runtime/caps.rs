//! Capabilities: the container keeps exactly the policy's short list, and nothing can give
//! more back.
//!
//! Linux keeps five capability sets per thread. rsafe sets them like this:
//! - **bounding** := keep. The ceiling for everything gained at execve (root's automatic
//!   capabilities, file capabilities); dropping needs CAP_SETPCAP, so it goes first.
//! - **permitted**, **effective** := keep. What the process holds now; a root workload gets
//!   the bounding set again at execve, a non-root one gets nothing.
//! - **inheritable** := empty, **ambient** := empty. Both pass capabilities across execve to
//!   non-root programs. Docker once filled inheritable and let a non-root user with file
//!   inheritable capabilities gain them (CVE-2022-24769); empty is the fixed behaviour.
//!
//! Raw capget/capset/prctl rather than the `caps` crate's helpers: this runs after fork in
//! the container child, where it must not allocate, and it must drop bounding-set entries the
//! crate does not know about (anything up to the kernel's `cap_last_cap`).

use ::caps::Capability;

/// Why the capability sets could not be set.
#[derive(Debug, thiserror::Error)]
pub enum CapsError {
    #[error("cannot read the capability sets: {0}")]
    Get(std::io::Error),
    #[error("cannot set the capability sets ({what}): {source}")]
    Set {
        what: &'static str,
        source: std::io::Error,
    },
    #[error("cannot drop {cap} from the bounding set: {source} (needs CAP_SETPCAP)")]
    BoundingDrop { cap: String, source: std::io::Error },
    #[error("cannot keep {caps}: not in the permitted set of this process")]
    NotPermitted { caps: String },
    #[error("cannot clear the ambient capability set: {0}")]
    Ambient(std::io::Error),
    #[error("cannot set no_new_privs: {0}")]
    NoNewPrivs(std::io::Error),
    #[error(
        "capabilities not as requested after setting them: {set} is {actual:#x}, expected {expected:#x}"
    )]
    Verify {
        set: &'static str,
        actual: u64,
        expected: u64,
    },
}

/// `struct __user_cap_header_struct`.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

/// `struct __user_cap_data_struct`; version 3 uses two of them (low and high 32 bits).
#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// The three per-thread sets capget/capset handle, as 64-bit masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Sets {
    effective: u64,
    permitted: u64,
    inheritable: u64,
}

/// Makes the calling thread's capabilities exactly `keep` (see the module docs): bounding,
/// permitted and effective := keep; inheritable and ambient := empty.
///
/// Works while uid 0 in a user namespace, and after setresuid() to a non-zero uid with
/// `PR_SET_KEEPCAPS` set (the effective set is empty then, so it is first raised from the
/// permitted set to make CAP_SETPCAP usable). Fails, rather than leaving more than asked, when
/// the process cannot drop its bounding set or does not hold a capability it is asked to keep.
pub fn apply(keep: &[Capability]) -> Result<(), CapsError> {
    let keep_mask = keep.iter().fold(0u64, |m, c| m | c.bitmask());
    let current = get()?;
    if current.effective != current.permitted {
        set(
            Sets {
                effective: current.permitted,
                ..current
            },
            "raise effective to permitted",
        )?;
    }
    let last = last_cap();
    for cap in 0..=last {
        if keep_mask & (1 << cap) != 0 || !in_bounding_set(cap) {
            continue;
        }
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) } != 0 {
            return Err(CapsError::BoundingDrop {
                cap: cap_name(cap),
                source: std::io::Error::last_os_error(),
            });
        }
    }
    let missing = keep_mask & !current.permitted;
    if missing != 0 {
        return Err(CapsError::NotPermitted {
            caps: names(missing),
        });
    }
    let wanted = Sets {
        effective: keep_mask,
        permitted: keep_mask,
        inheritable: 0,
    };
    set(wanted, "effective, permitted, inheritable")?;
    // SAFETY: prctl with integer arguments only.
    if unsafe {
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL,
            0,
            0,
            0,
        )
    } != 0
    {
        return Err(CapsError::Ambient(std::io::Error::last_os_error()));
    }
    verify(keep_mask, last)
}

/// Sets `no_new_privs`: execve can no longer grant privileges (setuid/setgid bits and file
/// capabilities are ignored), and it is inherited by every child and cannot be unset. Needed
/// for unprivileged seccomp and landlock.
pub fn set_no_new_privs() -> Result<(), CapsError> {
    // SAFETY: prctl with integer arguments only.
    if unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) } != 0 {
        return Err(CapsError::NoNewPrivs(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Parses a capability as users write it: `NET_BIND_SERVICE`, `CAP_NET_BIND_SERVICE` or
/// `net_bind_service`. None for unknown names.
pub fn parse_name(name: &str) -> Option<Capability> {
    let upper = name.trim().to_ascii_uppercase();
    let full = if upper.starts_with("CAP_") {
        upper
    } else {
        format!("CAP_{upper}")
    };
    full.parse().ok()
}

/// `NET_BIND_SERVICE` for CAP_NET_BIND_SERVICE: the short form policies and flags use.
pub fn short_name(cap: Capability) -> String {
    let full = cap.to_string();
    full.strip_prefix("CAP_").unwrap_or(&full).to_string()
}

fn verify(keep_mask: u64, last: u8) -> Result<(), CapsError> {
    let now = get()?;
    let check = |set: &'static str, actual: u64, expected: u64| {
        if actual == expected {
            Ok(())
        } else {
            Err(CapsError::Verify {
                set,
                actual,
                expected,
            })
        }
    };
    check("effective", now.effective, keep_mask)?;
    check("permitted", now.permitted, keep_mask)?;
    check("inheritable", now.inheritable, 0)?;
    let bounding = (0..=last)
        .filter(|&c| in_bounding_set(c))
        .fold(0u64, |m, c| m | 1 << c);
    check("bounding", bounding, keep_mask)
}

fn get() -> Result<Sets, CapsError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let mut data = [CapData::default(); 2];
    // SAFETY: header and data are valid for the kernel to read and write (two v3 records).
    let rc = unsafe { libc::syscall(libc::SYS_capget, &mut header, data.as_mut_ptr()) };
    if rc != 0 {
        return Err(CapsError::Get(std::io::Error::last_os_error()));
    }
    let join = |lo: u32, hi: u32| u64::from(lo) | u64::from(hi) << 32;
    Ok(Sets {
        effective: join(data[0].effective, data[1].effective),
        permitted: join(data[0].permitted, data[1].permitted),
        inheritable: join(data[0].inheritable, data[1].inheritable),
    })
}

fn set(sets: Sets, what: &'static str) -> Result<(), CapsError> {
    let mut header = CapHeader {
        version: LINUX_CAPABILITY_VERSION_3,
        pid: 0,
    };
    let split = |m: u64| (m as u32, (m >> 32) as u32);
    let (e0, e1) = split(sets.effective);
    let (p0, p1) = split(sets.permitted);
    let (i0, i1) = split(sets.inheritable);
    let data = [
        CapData {
            effective: e0,
            permitted: p0,
            inheritable: i0,
        },
        CapData {
            effective: e1,
            permitted: p1,
            inheritable: i1,
        },
    ];
    // SAFETY: header and data are valid for the kernel to read (two v3 records).
    let rc = unsafe { libc::syscall(libc::SYS_capset, &mut header, data.as_ptr()) };
    if rc != 0 {
        return Err(CapsError::Set {
            what,
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(())
}

/// Whether `cap` is in the bounding set. False past the kernel's last capability.
fn in_bounding_set(cap: u8) -> bool {
    // SAFETY: prctl with integer arguments only.
    unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) == 1 }
}

/// The kernel's highest capability number (`/proc/sys/kernel/cap_last_cap`), found without
/// touching the filesystem: PR_CAPBSET_READ fails with EINVAL past it.
fn last_cap() -> u8 {
    let mut last = 0u8;
    for cap in 0..64u8 {
        // SAFETY: prctl with integer arguments only.
        if unsafe { libc::prctl(libc::PR_CAPBSET_READ, libc::c_ulong::from(cap), 0, 0, 0) } < 0 {
            break;
        }
        last = cap;
    }
    last
}

fn cap_name(cap: u8) -> String {
    ::caps::all()
        .into_iter()
        .find(|c| c.index() == cap)
        .map_or_else(|| format!("capability {cap}"), |c| c.to_string())
}

fn names(mask: u64) -> String {
    (0..64u8)
        .filter(|c| mask & (1 << c) != 0)
        .map(cap_name)
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capability_names_parse_with_or_without_prefix() {
        assert_eq!(
            parse_name("NET_BIND_SERVICE"),
            Some(Capability::CAP_NET_BIND_SERVICE)
        );
        assert_eq!(
            parse_name("CAP_NET_BIND_SERVICE"),
            Some(Capability::CAP_NET_BIND_SERVICE)
        );
        assert_eq!(parse_name("cap_chown"), Some(Capability::CAP_CHOWN));
        assert_eq!(parse_name("NET_BIND"), None);
        assert_eq!(parse_name("ALL"), None);
        assert_eq!(short_name(Capability::CAP_SYS_ADMIN), "SYS_ADMIN");
    }

    #[test]
    fn the_kernel_reports_a_plausible_last_capability() {
        // CAP_CHECKPOINT_RESTORE (40) exists since Linux 5.9.
        assert!(last_cap() >= 40);
        assert_eq!(cap_name(21), "CAP_SYS_ADMIN");
        assert_eq!(cap_name(63), "capability 63");
        assert_eq!(names(1 | 1 << 10), "CAP_CHOWN, CAP_NET_BIND_SERVICE");
    }
}
