//! Resolving `USER name[:group]` and `--chown user:group` against the image's own
//! `/etc/passwd` and `/etc/group` (read inside the rootfs, never the host's).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, Result, io_err};
use crate::rootpath::resolve_in_root;

/// Who a RUN step runs as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    pub uid: u32,
    pub gid: u32,
    /// Supplementary groups: every group in `/etc/group` listing the user by name.
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, `/` when the user has no entry.
    pub home: String,
}

impl ResolvedUser {
    pub fn root() -> Self {
        Self {
            uid: 0,
            gid: 0,
            additional_gids: Vec::new(),
            home: "/root".into(),
        }
    }
}

struct PasswdEntry {
    name: String,
    uid: u32,
    gid: u32,
    home: String,
}

struct GroupEntry {
    name: String,
    gid: u32,
    members: Vec<String>,
}

/// Resolves a `USER` value. Numeric ids pass through even without an entry (then the
/// group defaults to 0, as Docker does); names must exist. An empty spec means root.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser> {
    let (user_part, group_part) = split_spec(spec)?;
    if user_part.is_empty() && group_part.is_none() {
        return Ok(ResolvedUser::root());
    }
    let passwd = read_passwd(rootfs)?;
    let groups = read_groups(rootfs)?;
    let entry = find_user(&passwd, user_part)?;
    let (uid, mut gid, home, name) = match entry {
        Some(e) => (e.uid, e.gid, e.home.clone(), Some(e.name.clone())),
        None => (
            parse_id(user_part).ok_or_else(|| Error::UnknownUser {
                name: user_part.into(),
            })?,
            0,
            "/".into(),
            None,
        ),
    };
    if let Some(g) = group_part {
        gid = resolve_group(&groups, g)?;
    }
    let mut additional_gids: Vec<u32> = match &name {
        Some(n) => groups
            .iter()
            .filter(|g| g.members.iter().any(|m| m == n))
            .map(|g| g.gid)
            .collect(),
        None => Vec::new(),
    };
    additional_gids.retain(|g| *g != gid);
    additional_gids.sort_unstable();
    additional_gids.dedup();
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home,
    })
}

/// Resolves a `--chown` value to `(uid, gid)`. Without a group, a named user gets its
/// primary group and a bare number is used for both.
pub fn resolve_chown(rootfs: &Path, spec: &str) -> Result<(u32, u32)> {
    let (user_part, group_part) = split_spec(spec)?;
    if user_part.is_empty() {
        return Err(Error::InvalidUserSpec(spec.into()));
    }
    let numeric = parse_id(user_part);
    let passwd = if numeric.is_some() && group_part.is_none_or(|g| parse_id(g).is_some()) {
        Vec::new() // all numeric: no need for the files (and they may not exist)
    } else {
        read_passwd(rootfs)?
    };
    let (uid, primary) = match (numeric, find_user(&passwd, user_part)?) {
        (_, Some(e)) => (e.uid, e.gid),
        (Some(n), None) => (n, n),
        (None, None) => {
            return Err(Error::UnknownUser {
                name: user_part.into(),
            });
        }
    };
    let gid = match group_part {
        Some(g) => match parse_id(g) {
            Some(n) => n,
            None => resolve_group(&read_groups(rootfs)?, g)?,
        },
        None => primary,
    };
    Ok((uid, gid))
}

fn split_spec(spec: &str) -> Result<(&str, Option<&str>)> {
    let spec = spec.trim();
    match spec.split_once(':') {
        Some((_, g)) if g.is_empty() || g.contains(':') => Err(Error::InvalidUserSpec(spec.into())),
        Some((u, g)) => Ok((u, Some(g))),
        None => Ok((spec, None)),
    }
}

fn parse_id(s: &str) -> Option<u32> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Looks a user up by name, or by uid when `user` is numeric.
fn find_user<'a>(passwd: &'a [PasswdEntry], user: &str) -> Result<Option<&'a PasswdEntry>> {
    if user.is_empty() {
        return Ok(passwd.iter().find(|e| e.uid == 0));
    }
    match parse_id(user) {
        Some(uid) => Ok(passwd.iter().find(|e| e.uid == uid)),
        None => passwd
            .iter()
            .find(|e| e.name == user)
            .map(Some)
            .ok_or_else(|| Error::UnknownUser { name: user.into() }),
    }
}

fn resolve_group(groups: &[GroupEntry], group: &str) -> Result<u32> {
    if let Some(n) = parse_id(group) {
        return Ok(n);
    }
    groups
        .iter()
        .find(|g| g.name == group)
        .map(|g| g.gid)
        .ok_or_else(|| Error::UnknownGroup { name: group.into() })
}

/// Reads `/etc/<name>` of the rootfs; a missing file reads as empty.
fn read_etc(rootfs: &Path, name: &str) -> Result<String> {
    let path = resolve_in_root(rootfs, &Path::new("etc").join(name), true)?;
    match std::fs::read(&path) {
        Ok(bytes) => Ok(String::from_utf8_lossy(&bytes).into_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(String::new()),
        Err(e) => Err(io_err("read", &path)(e)),
    }
}

fn read_passwd(rootfs: &Path) -> Result<Vec<PasswdEntry>> {
    Ok(read_etc(rootfs, "passwd")?
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if line.starts_with('#') || f.len() < 6 {
                return None; // malformed lines are skipped, as libc does
            }
            Some(PasswdEntry {
                name: f[0].into(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
                home: f[5].into(),
            })
        })
        .collect())
}

fn read_groups(rootfs: &Path) -> Result<Vec<GroupEntry>> {
    Ok(read_etc(rootfs, "group")?
        .lines()
        .filter_map(|line| {
            let f: Vec<&str> = line.split(':').collect();
            if line.starts_with('#') || f.len() < 3 {
                return None;
            }
            let members = f.get(3).map(|m| {
                m.split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            });
            Some(GroupEntry {
                name: f[0].into(),
                gid: f[2].parse().ok()?,
                members: members.unwrap_or_default(),
            })
        })
        .collect())
}

/// Creates the working directory (and missing parents) in the rootfs, owned by the user
/// that will run in it. Existing directories are left as they are.
pub fn ensure_workdir(rootfs: &Path, workdir: &Path, uid: u32, gid: u32) -> Result<()> {
    let mut walked = std::path::PathBuf::new();
    for comp in workdir.components() {
        let std::path::Component::Normal(name) = comp else {
            continue;
        };
        walked.push(name);
        // Re-resolve each prefix so symlinks inside the image stay inside it.
        let current = resolve_in_root(rootfs, &walked, true)?;
        match std::fs::symlink_metadata(&current) {
            Ok(m) if m.is_dir() => continue,
            Ok(_) => {
                return Err(Error::InvalidProcess(format!(
                    "working directory {} is not a directory",
                    workdir.display()
                )));
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir(&current).map_err(io_err("mkdir", &current))?;
                std::os::unix::fs::chown(&current, Some(uid), Some(gid))
                    .map_err(io_err("chown", &current))?;
                std::fs::set_permissions(&current, std::fs::Permissions::from_mode(0o755))
                    .map_err(io_err("chmod", &current))?;
            }
            Err(e) => return Err(io_err("stat", &current)(e)),
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn rootfs() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::create_dir(dir.path().join("etc")).unwrap();
        fs::write(
            dir.path().join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\n# comment\nbroken line\napp:x:1000:1000::/home/app:/bin/sh\nnobody:x:65534:65534::/nonexistent:/bin/false\n",
        )
        .unwrap();
        fs::write(
            dir.path().join("etc/group"),
            "root:x:0:\napp:x:1000:\nwheel:x:10:app,other\naudio:x:29:app\nnogroup:x:65534:\n",
        )
        .unwrap();
        dir
    }

    #[test]
    fn user_names_numbers_and_groups() {
        let r = rootfs();
        let app = resolve_user(r.path(), "app").unwrap();
        assert_eq!(
            (app.uid, app.gid, app.additional_gids.clone()),
            (1000, 1000, vec![10, 29])
        );
        assert_eq!(app.home, "/home/app");
        let by_uid = resolve_user(r.path(), "1000").unwrap();
        assert_eq!((by_uid.uid, by_uid.gid), (1000, 1000));
        let unknown_uid = resolve_user(r.path(), "4242").unwrap();
        assert_eq!(
            (
                unknown_uid.uid,
                unknown_uid.gid,
                unknown_uid.additional_gids.len()
            ),
            (4242, 0, 0)
        );
        let with_group = resolve_user(r.path(), "app:wheel").unwrap();
        assert_eq!((with_group.gid, with_group.additional_gids), (10, vec![29]));
        assert_eq!(resolve_user(r.path(), "").unwrap(), ResolvedUser::root());
        assert_eq!(resolve_user(r.path(), "nobody:5").unwrap().gid, 5);
    }

    #[test]
    fn unknown_names_are_clear_errors() {
        let r = rootfs();
        assert!(
            matches!(resolve_user(r.path(), "ghost"), Err(Error::UnknownUser { name }) if name == "ghost")
        );
        assert!(
            matches!(resolve_user(r.path(), "app:ghosts"), Err(Error::UnknownGroup { name }) if name == "ghosts")
        );
        assert!(matches!(
            resolve_user(r.path(), "app:"),
            Err(Error::InvalidUserSpec(_))
        ));
    }

    #[test]
    fn chown_specs() {
        let r = rootfs();
        assert_eq!(resolve_chown(r.path(), "app").unwrap(), (1000, 1000));
        assert_eq!(resolve_chown(r.path(), "app:wheel").unwrap(), (1000, 10));
        assert_eq!(resolve_chown(r.path(), "77").unwrap(), (77, 77));
        assert_eq!(resolve_chown(r.path(), "77:88").unwrap(), (77, 88));
        assert_eq!(
            resolve_chown(Path::new("/nonexistent-root"), "5:6").unwrap(),
            (5, 6)
        );
        assert!(resolve_chown(r.path(), "ghost:app").is_err());
    }

    #[test]
    fn passwd_through_symlink_stays_in_rootfs() {
        let r = rootfs();
        fs::rename(
            r.path().join("etc/passwd"),
            r.path().join("etc/passwd.real"),
        )
        .unwrap();
        std::os::unix::fs::symlink("/etc/passwd.real", r.path().join("etc/passwd")).unwrap();
        assert_eq!(resolve_user(r.path(), "app").unwrap().uid, 1000);
    }

    #[test]
    fn workdir_created_with_owner_and_existing_left_alone() {
        use std::os::unix::fs::MetadataExt;
        let r = rootfs();
        // Without root only our own ids can be given away.
        let me = fs::metadata(r.path()).unwrap();
        let (uid, gid) = if crate::sys::is_root() {
            (1000, 1000)
        } else {
            (me.uid(), me.gid())
        };
        ensure_workdir(r.path(), Path::new("/home/app/src"), uid, gid).unwrap();
        let m = fs::metadata(r.path().join("home/app/src")).unwrap();
        assert!(m.is_dir());
        assert_eq!((m.uid(), m.gid()), (uid, gid));
        let etc = fs::metadata(r.path().join("etc")).unwrap();
        ensure_workdir(r.path(), Path::new("/etc"), uid, gid).unwrap();
        assert_eq!(fs::metadata(r.path().join("etc")).unwrap().uid(), etc.uid());
        fs::write(r.path().join("file"), "").unwrap();
        assert!(ensure_workdir(r.path(), Path::new("/file/sub"), uid, gid).is_err());
    }
}
