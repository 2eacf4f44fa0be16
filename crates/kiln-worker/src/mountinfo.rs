//! Reading the mount table, to find mounts a dead kiln process left behind and to make
//! sure nothing is mounted under a directory before deleting it.

use std::ffi::OsString;
use std::os::unix::ffi::OsStringExt;
use std::path::{Path, PathBuf};

use crate::error::{Result, io_err};

/// Mount points at or under `dir`, deepest first (the order to unmount them in).
pub fn mounts_under(dir: &Path) -> Result<Vec<PathBuf>> {
    let text =
        std::fs::read("/proc/self/mountinfo").map_err(io_err("read", "/proc/self/mountinfo"))?;
    let mut found: Vec<PathBuf> = parse_mount_points(&text)
        .into_iter()
        .filter(|p| p.starts_with(dir))
        .collect();
    found.sort_by_key(|p| std::cmp::Reverse(p.components().count()));
    found.dedup();
    Ok(found)
}

pub fn is_mount_point(path: &Path) -> Result<bool> {
    Ok(mounts_under(path)?.iter().any(|p| p == path))
}

/// The fifth field of every mountinfo line, with the kernel's octal escapes undone.
fn parse_mount_points(text: &[u8]) -> Vec<PathBuf> {
    text.split(|b| *b == b'\n')
        .filter_map(|line| line.split(|b| *b == b' ').nth(4))
        .map(|field| PathBuf::from(OsString::from_vec(unescape(field))))
        .collect()
}

/// mountinfo writes space, tab, newline and backslash as `\ooo`.
fn unescape(field: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(field.len());
    let mut i = 0;
    while i < field.len() {
        if field[i] == b'\\' && i + 3 < field.len() {
            let oct = &field[i + 1..i + 4];
            if oct.iter().all(|b| (b'0'..=b'7').contains(b)) {
                let v = oct
                    .iter()
                    .fold(0u16, |acc, b| acc * 8 + u16::from(b - b'0'));
                out.push(v as u8);
                i += 4;
                continue;
            }
        }
        out.push(field[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_escaped_mount_points() {
        let text =
            b"36 35 98:0 /mnt1 /mnt/with\\040space rw,noatime master:1 - ext3 /dev/root rw\n\
                     37 35 98:0 / / rw - ext4 /dev/vda rw\n";
        assert_eq!(
            parse_mount_points(text),
            [PathBuf::from("/mnt/with space"), PathBuf::from("/")]
        );
    }

    #[test]
    fn root_is_mounted() {
        assert!(is_mount_point(Path::new("/")).unwrap());
    }
}
