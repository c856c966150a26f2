//! Who the workload runs as: `--user` / the image's `User` resolved against the container's own
//! `/etc/passwd` and `/etc/group` (read after `pivot_root`, so they are the image's files).
//!
//! Docker's rules: `name` or `uid`, optionally `:group` or `:gid`; a number needs no passwd
//! entry; the primary group defaults to the passwd entry's (0 without one); supplementary
//! groups come from `/etc/group` membership; `HOME` from the passwd entry, else `/`.

use std::io::Read;
use std::path::Path;

/// The image's account files are read at most this far (they are the container's own input).
const MAX_ACCOUNT_FILE: u64 = 4 << 20;

/// Why a user spec cannot be resolved.
#[derive(Debug, thiserror::Error)]
pub enum UserError {
    #[error("unable to find user {0}: no matching entry in /etc/passwd")]
    NoUser(String),
    #[error("unable to find group {0}: no matching entry in /etc/group")]
    NoGroup(String),
    #[error("{path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
}

/// The resolved identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups (without `gid`).
    pub groups: Vec<u32>,
    pub home: String,
}

struct Passwd {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct Group {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves `spec` (None = root) against the account files under `etc` (`/etc` in the
/// container). Missing account files are fine for numeric ids.
pub fn resolve(spec: Option<&str>, etc: &Path) -> Result<ExecUser, UserError> {
    let passwd_text = read_account_file(&etc.join("passwd"))?;
    let group_text = read_account_file(&etc.join("group"))?;
    resolve_in(spec, &passwd_text, &group_text)
}

/// [`resolve`] on the texts of `/etc/passwd` and `/etc/group`, for a caller that read them
/// itself (inside an image's root, never through the host's symlinks).
pub(crate) fn resolve_in(
    spec: Option<&str>,
    passwd_text: &str,
    group_text: &str,
) -> Result<ExecUser, UserError> {
    let passwd: Vec<Passwd> = passwd_text.lines().filter_map(parse_passwd).collect();
    let groups: Vec<Group> = group_text.lines().filter_map(parse_group).collect();
    let spec = spec.unwrap_or("0");
    let (user_part, group_part) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let user_part = if user_part.is_empty() { "0" } else { user_part };

    let entry = match user_part.parse::<u32>() {
        Ok(uid) => passwd.iter().find(|p| p.uid == uid),
        Err(_) => Some(
            passwd
                .iter()
                .find(|p| p.name == user_part)
                .ok_or_else(|| UserError::NoUser(user_part.to_string()))?,
        ),
    };
    let uid = match entry {
        Some(p) => p.uid,
        None => user_part
            .parse()
            .map_err(|_| UserError::NoUser(user_part.to_string()))?,
    };
    let gid = match group_part.filter(|g| !g.is_empty()) {
        Some(g) => match g.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|gr| gr.name == g)
                .map(|gr| gr.gid)
                .ok_or_else(|| UserError::NoGroup(g.to_string()))?,
        },
        None => entry.map_or(0, |p| p.gid),
    };
    // Supplementary groups only when the group was not given explicitly (as Docker does).
    let mut supplementary = Vec::new();
    if let (Some(p), None) = (entry, group_part) {
        for g in &groups {
            if g.gid != gid && g.members.contains(&p.name) && !supplementary.contains(&g.gid) {
                supplementary.push(g.gid);
            }
        }
    }
    Ok(ExecUser {
        uid,
        gid,
        groups: supplementary,
        home: entry
            .map(|p| p.home.clone())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "/".to_string()),
    })
}

/// Adds `--group-add`'s groups (names from the container's `/etc/group` under `etc`, or gids)
/// to `user`'s supplementary groups, as docker does: a name not in the file is an error.
pub fn add_groups(user: &mut ExecUser, names: &[String], etc: &Path) -> Result<(), UserError> {
    if names.is_empty() {
        return Ok(());
    }
    let group_text = read_account_file(&etc.join("group"))?;
    add_groups_in(user, names, &group_text)
}

/// [`add_groups`] on the text of `/etc/group`, for a caller that read it itself.
pub(crate) fn add_groups_in(
    user: &mut ExecUser,
    names: &[String],
    group_text: &str,
) -> Result<(), UserError> {
    let groups: Vec<Group> = group_text.lines().filter_map(parse_group).collect();
    for name in names {
        let gid = match name.parse::<u32>() {
            Ok(gid) => gid,
            Err(_) => groups
                .iter()
                .find(|g| g.name == *name)
                .map(|g| g.gid)
                .ok_or_else(|| UserError::NoGroup(name.clone()))?,
        };
        if !user.groups.contains(&gid) {
            user.groups.push(gid);
        }
    }
    Ok(())
}

fn read_account_file(path: &Path) -> Result<String, UserError> {
    let err = |source| UserError::Read {
        path: path.display().to_string(),
        source,
    };
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(String::new()),
        Err(e) => return Err(err(e)),
    };
    if !file.metadata().map_err(err)?.is_file() {
        return Ok(String::new());
    }
    let mut bytes = Vec::new();
    file.take(MAX_ACCOUNT_FILE)
        .read_to_end(&mut bytes)
        .map_err(err)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}

fn parse_passwd(line: &str) -> Option<Passwd> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 7 || f[0].starts_with('#') {
        return None;
    }
    Some(Passwd {
        name: f[0].to_string(),
        uid: f[2].parse().ok()?,
        gid: f[3].parse().ok()?,
        home: f[5].to_string(),
    })
}

fn parse_group(line: &str) -> Option<Group> {
    let f: Vec<&str> = line.split(':').collect();
    if f.len() < 4 || f[0].starts_with('#') {
        return None;
    }
    Some(Group {
        name: f[0].to_string(),
        gid: f[2].parse().ok()?,
        members: f[3]
            .split(',')
            .filter(|m| !m.is_empty())
            .map(str::to_string)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const PASSWD: &str =
        "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nbroken line\n";
    const GROUP: &str = "root:x:0:\napp:x:1000:\nstaff:x:50:app,other\nwheel:x:10:root\n";

    #[test]
    fn default_is_root_with_its_groups() {
        let u = resolve_in(None, PASSWD, GROUP).unwrap();
        assert_eq!(
            u,
            ExecUser {
                uid: 0,
                gid: 0,
                groups: vec![10],
                home: "/root".into()
            }
        );
    }

    #[test]
    fn by_name_and_number() {
        let u = resolve_in(Some("app"), PASSWD, GROUP).unwrap();
        assert_eq!(
            (u.uid, u.gid, u.groups.clone(), u.home.as_str()),
            (1000, 1000, vec![50], "/home/app")
        );
        let u = resolve_in(Some("1000:staff"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.groups.len()), (1000, 50, 0));
        let u = resolve_in(Some("4242"), PASSWD, GROUP).unwrap();
        assert_eq!((u.uid, u.gid, u.home.as_str()), (4242, 0, "/"));
        let u = resolve_in(Some("4242:4343"), "", "").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 4343));
    }

    #[test]
    fn unknown_names_are_errors() {
        assert!(
            matches!(resolve_in(Some("nobody"), PASSWD, GROUP), Err(UserError::NoUser(n)) if n == "nobody")
        );
        assert!(matches!(
            resolve_in(Some("app:nogroup"), PASSWD, GROUP),
            Err(UserError::NoGroup(_))
        ));
    }

    #[test]
    fn missing_files_are_empty() {
        let dir = tempfile::tempdir().unwrap();
        let u = resolve(Some("7:8"), dir.path()).unwrap();
        assert_eq!((u.uid, u.gid), (7, 8));
    }
}
