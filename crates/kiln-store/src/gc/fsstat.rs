//! Size and free space of the filesystem holding the store, for `minFreeSpace` and
//! percentage sizes. The store crate has no libc binding, so statvfs(3) from the C library
//! std already links is declared here.

use std::ffi::CString;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use super::GcError;

/// Bytes of the filesystem and bytes available to unprivileged users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FsSpace {
    pub total: u64,
    pub free: u64,
}

#[cfg(all(target_os = "linux", target_pointer_width = "64"))]
pub fn fs_space(path: &Path) -> Result<FsSpace, GcError> {
    unsafe extern "C" {
        fn statvfs(path: *const std::ffi::c_char, buf: *mut u64) -> std::ffi::c_int;
    }
    let c_path = CString::new(path.as_os_str().as_bytes()).map_err(|_| GcError::FsStat {
        path: path.to_path_buf(),
        source: std::io::ErrorKind::InvalidInput.into(),
    })?;
    // On 64-bit Linux (glibc and musl) struct statvfs starts with f_bsize, f_frsize,
    // f_blocks, f_bfree, f_bavail, each 8 bytes, and is smaller than this buffer.
    let mut buf = [0u64; 32];
    // SAFETY: the path is NUL-terminated and the buffer is larger than struct statvfs.
    let rc = unsafe { statvfs(c_path.as_ptr(), buf.as_mut_ptr()) };
    if rc != 0 {
        return Err(GcError::FsStat {
            path: path.to_path_buf(),
            source: std::io::Error::last_os_error(),
        });
    }
    let frsize = if buf[1] == 0 { buf[0] } else { buf[1] };
    Ok(FsSpace {
        total: buf[2].saturating_mul(frsize),
        free: buf[4].saturating_mul(frsize),
    })
}

#[cfg(not(all(target_os = "linux", target_pointer_width = "64")))]
pub fn fs_space(path: &Path) -> Result<FsSpace, GcError> {
    let _ = CString::new(path.as_os_str().as_bytes());
    Err(GcError::FsStat {
        path: path.to_path_buf(),
        source: std::io::ErrorKind::Unsupported.into(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_a_plausible_filesystem() {
        let dir = tempfile::tempdir().unwrap();
        let space = fs_space(dir.path()).unwrap();
        assert!(space.total > 0 && space.free <= space.total, "{space:?}");
        assert!(fs_space(&dir.path().join("missing")).is_err());
    }
}
