//! Thin safe wrappers over the Linux calls std does not offer: mount, device nodes,
//! extended attributes and timestamps that must not follow symlinks.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::Path;

fn cstr(p: &OsStr) -> io::Result<CString> {
    CString::new(p.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains NUL"))
}

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Mounts overlayfs on `target`. With `cwd`, relative paths in `options` are resolved from
/// that directory: the mount happens in a forked child that changes directory first, so
/// the process-wide working directory of this (multi-threaded) process never moves.
pub fn mount_overlay(target: &Path, options: &str, cwd: Option<&Path>) -> io::Result<()> {
    let source = c"overlay";
    let fstype = c"overlay";
    let target = cstr(target.as_os_str())?;
    let data = CString::new(options)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "NUL in options"))?;
    let Some(cwd) = cwd else {
        // SAFETY: all pointers are valid NUL-terminated strings that outlive the call.
        return check(unsafe {
            libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            )
        });
    };
    let cwd = cstr(cwd.as_os_str())?;
    // SAFETY: between fork and _exit the child only calls async-signal-safe functions
    // (chdir, mount, _exit) on memory prepared before the fork.
    let pid = unsafe { libc::fork() };
    if pid < 0 {
        return Err(io::Error::last_os_error());
    }
    if pid == 0 {
        // SAFETY: see above; the child never returns into Rust code.
        unsafe {
            if libc::chdir(cwd.as_ptr()) != 0 {
                libc::_exit(*libc::__errno_location() & 0x7f);
            }
            let rc = libc::mount(
                source.as_ptr(),
                target.as_ptr(),
                fstype.as_ptr(),
                0,
                data.as_ptr().cast(),
            );
            libc::_exit(if rc == 0 {
                0
            } else {
                *libc::__errno_location() & 0x7f
            });
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waiting for our own child; status is a valid out pointer.
        let rc = unsafe { libc::waitpid(pid, &mut status, 0) };
        if rc == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    if libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0 {
        Ok(())
    } else if libc::WIFEXITED(status) {
        Err(io::Error::from_raw_os_error(libc::WEXITSTATUS(status)))
    } else {
        Err(io::Error::other("mount helper child died"))
    }
}

/// Unmounts `target`; `detach` makes it lazy (gone from the namespace now, freed when
/// no longer busy).
pub fn unmount(target: &Path, detach: bool) -> io::Result<()> {
    let t = cstr(target.as_os_str())?;
    let flags = if detach { libc::MNT_DETACH } else { 0 };
    // SAFETY: valid NUL-terminated path.
    check(unsafe { libc::umount2(t.as_ptr(), flags) })
}

/// Creates a device node, fifo (`S_IFIFO`) or the overlay whiteout (char 0/0).
pub fn mknod(path: &Path, mode: libc::mode_t, major: u32, minor: u32) -> io::Result<()> {
    let p = cstr(path.as_os_str())?;
    // SAFETY: valid NUL-terminated path; mknod has no other preconditions.
    check(unsafe { libc::mknod(p.as_ptr(), mode, libc::makedev(major, minor)) })
}

/// Sets an extended attribute on the path itself, never on a symlink's target.
pub fn lsetxattr(path: &Path, name: &OsStr, value: &[u8]) -> io::Result<()> {
    let p = cstr(path.as_os_str())?;
    let n = cstr(name)?;
    // SAFETY: valid strings; value pointer/length describe a live slice.
    check(unsafe {
        libc::lsetxattr(
            p.as_ptr(),
            n.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    })
}

/// Reads an extended attribute; `Ok(None)` when it is not set.
pub fn lgetxattr(path: &Path, name: &OsStr) -> io::Result<Option<Vec<u8>>> {
    let p = cstr(path.as_os_str())?;
    let n = cstr(name)?;
    let mut buf = vec![0u8; 256];
    loop {
        // SAFETY: buf is a live writable buffer of the given length.
        let rc =
            unsafe { libc::lgetxattr(p.as_ptr(), n.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            return Ok(Some(buf));
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ENODATA) => return Ok(None),
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            _ => return Err(err),
        }
    }
}

/// Names of all extended attributes of the path itself.
pub fn llistxattr(path: &Path) -> io::Result<Vec<OsString>> {
    let p = cstr(path.as_os_str())?;
    let mut buf = vec![0u8; 1024];
    loop {
        // SAFETY: buf is a live writable buffer of the given length.
        let rc = unsafe { libc::llistxattr(p.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
        if rc >= 0 {
            buf.truncate(rc as usize);
            break;
        }
        let err = io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::ERANGE) if buf.len() < 1 << 20 => buf.resize(buf.len() * 4, 0),
            Some(libc::ENOTSUP) => return Ok(Vec::new()),
            _ => return Err(err),
        }
    }
    Ok(buf
        .split(|b| *b == 0)
        .filter(|n| !n.is_empty())
        .map(|n| OsString::from_vec(n.to_vec()))
        .collect())
}

/// Sets access and modification times (seconds, nanoseconds) without following symlinks.
pub fn set_times_nofollow(path: &Path, atime: (i64, i64), mtime: (i64, i64)) -> io::Result<()> {
    let p = cstr(path.as_os_str())?;
    let ts = [
        libc::timespec {
            tv_sec: atime.0,
            tv_nsec: atime.1,
        },
        libc::timespec {
            tv_sec: mtime.0,
            tv_nsec: mtime.1,
        },
    ];
    // SAFETY: valid path and a two-element timespec array as utimensat requires.
    check(unsafe {
        libc::utimensat(
            libc::AT_FDCWD,
            p.as_ptr(),
            ts.as_ptr(),
            libc::AT_SYMLINK_NOFOLLOW,
        )
    })
}

/// Flushes the whole filesystem holding `path` to disk.
pub fn syncfs(path: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path)?;
    // SAFETY: the descriptor is open for the duration of the call.
    check(unsafe { libc::syncfs(f.as_raw_fd()) })
}

/// Sends `signal` to a process we started.
pub fn kill(pid: u32, signal: libc::c_int) -> io::Result<()> {
    let pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "pid"))?;
    // SAFETY: kill has no memory preconditions.
    check(unsafe { libc::kill(pid, signal) })
}

pub fn is_root() -> bool {
    // SAFETY: geteuid cannot fail and touches no memory.
    unsafe { libc::geteuid() == 0 }
}
