//! Turns scanned entries into tar headers: USTAR fields where values fit, a PAX extended
//! header in front where they do not (long names, big ids and sizes, xattrs).

use std::io::{self, Read, Write};

use tar::{EntryType, Header};

use super::scan::{EntryKind, ScannedEntry};

const NAME_LEN: usize = 100;
const OCTAL7_MAX: u64 = 0o7_777_777;
const OCTAL11_MAX: u64 = 0o77_777_777_777;

/// The entry's tar metadata, independent of where it came from.
#[derive(Debug, Clone)]
pub(crate) struct TarMeta<'a> {
    pub(crate) path: Vec<u8>,
    pub(crate) kind: &'a EntryKind,
    pub(crate) mode: u32,
    pub(crate) uid: u32,
    pub(crate) gid: u32,
    pub(crate) mtime: i64,
    pub(crate) xattrs: &'a [(Vec<u8>, Vec<u8>)],
}

impl<'a> TarMeta<'a> {
    pub(crate) fn of(entry: &'a ScannedEntry, epoch: Option<i64>) -> Self {
        let mut path = entry.rel.clone();
        if entry.kind == EntryKind::Dir {
            path.push(b'/');
        }
        let mtime = match epoch {
            Some(e) if entry.mtime > e => e,
            _ => entry.mtime,
        };
        TarMeta {
            path,
            kind: &entry.kind,
            mode: entry.mode,
            uid: entry.uid,
            gid: entry.gid,
            mtime,
            xattrs: &entry.xattrs,
        }
    }
}

fn pax_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // The length prefix counts itself, so grow it until it is self-consistent.
    let rest = key.len() + value.len() + 3; // ' ', '=', '\n'
    let mut len = rest + 1;
    while len != rest + len.to_string().len() {
        len = rest + len.to_string().len();
    }
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

fn copy_truncated(field: &mut [u8], value: &[u8]) {
    let n = value.len().min(field.len());
    field.fill(0);
    field[..n].copy_from_slice(&value[..n]);
}

/// Writes the header (and PAX header when needed) then exactly `size` bytes of `data`.
pub(crate) fn append<W: Write>(
    builder: &mut tar::Builder<W>,
    meta: &TarMeta<'_>,
    data: &mut dyn Read,
) -> io::Result<()> {
    let (entry_type, size, link): (EntryType, u64, Option<&[u8]>) = match meta.kind {
        EntryKind::Dir => (EntryType::Directory, 0, None),
        EntryKind::File { size } => (EntryType::Regular, *size, None),
        EntryKind::Whiteout => (EntryType::Regular, 0, None),
        EntryKind::Symlink { target } => (EntryType::Symlink, 0, Some(target)),
        EntryKind::HardLink { target } => (EntryType::Link, 0, Some(target)),
        EntryKind::CharDevice { .. } => (EntryType::Char, 0, None),
        EntryKind::BlockDevice { .. } => (EntryType::Block, 0, None),
        EntryKind::Fifo => (EntryType::Fifo, 0, None),
    };

    let mut pax = Vec::new();
    if meta.path.len() > NAME_LEN {
        pax_record(&mut pax, b"path", &meta.path);
    }
    if let Some(target) = link
        && target.len() > NAME_LEN
    {
        pax_record(&mut pax, b"linkpath", target);
    }
    if u64::from(meta.uid) > OCTAL7_MAX {
        pax_record(&mut pax, b"uid", meta.uid.to_string().as_bytes());
    }
    if u64::from(meta.gid) > OCTAL7_MAX {
        pax_record(&mut pax, b"gid", meta.gid.to_string().as_bytes());
    }
    if size > OCTAL11_MAX {
        pax_record(&mut pax, b"size", size.to_string().as_bytes());
    }
    for (name, value) in meta.xattrs {
        pax_record(
            &mut pax,
            &[b"SCHILY.xattr.", name.as_slice()].concat(),
            value,
        );
    }
    let mtime = u64::try_from(meta.mtime).unwrap_or(0);

    if !pax.is_empty() {
        let mut h = Header::new_ustar();
        let base = meta
            .path
            .trim_ascii_end()
            .split(|&b| b == b'/')
            .rfind(|s| !s.is_empty())
            .unwrap_or(b"entry");
        let name = [b"PaxHeaders/".as_slice(), base].concat();
        if let Some(u) = h.as_ustar_mut() {
            copy_truncated(&mut u.name, &name);
        }
        h.set_entry_type(EntryType::XHeader);
        h.set_mode(0o644);
        h.set_uid(0);
        h.set_gid(0);
        h.set_mtime(mtime.min(OCTAL11_MAX));
        h.set_size(pax.len() as u64);
        h.set_cksum();
        builder.append(&h, pax.as_slice())?;
    }

    let mut h = Header::new_ustar();
    if let Some(u) = h.as_ustar_mut() {
        copy_truncated(&mut u.name, &meta.path);
        if let Some(target) = link {
            copy_truncated(&mut u.linkname, target);
        }
    }
    h.set_entry_type(entry_type);
    h.set_mode(meta.mode & 0o7777);
    h.set_uid(if u64::from(meta.uid) > OCTAL7_MAX {
        0
    } else {
        meta.uid.into()
    });
    h.set_gid(if u64::from(meta.gid) > OCTAL7_MAX {
        0
    } else {
        meta.gid.into()
    });
    h.set_mtime(mtime.min(OCTAL11_MAX));
    // Past the USTAR limit the PAX `size` record rules; the builder frames the data by
    // the bytes actually copied, so the archive stays well formed.
    h.set_size(if size > OCTAL11_MAX { 0 } else { size });
    if let EntryKind::CharDevice { major, minor } | EntryKind::BlockDevice { major, minor } =
        meta.kind
    {
        h.set_device_major(*major)?;
        h.set_device_minor(*minor)?;
    } else {
        // USTAR readers expect the device fields as octal zero rather than empty.
        h.set_device_major(0)?;
        h.set_device_minor(0)?;
    }
    h.set_cksum();
    builder.append(&h, ExactReader::new(data, size))
}

/// Yields exactly `len` bytes or fails: a file that shrank or grew while being archived
/// must not produce a tar whose header disagrees with its data.
struct ExactReader<'a> {
    inner: &'a mut dyn Read,
    left: u64,
}

impl<'a> ExactReader<'a> {
    fn new(inner: &'a mut dyn Read, len: u64) -> Self {
        ExactReader { inner, left: len }
    }
}

impl Read for ExactReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.left == 0 {
            let mut probe = [0u8; 1];
            return match self.inner.read(&mut probe)? {
                0 => Ok(0),
                _ => Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "file grew while being archived",
                )),
            };
        }
        let want = buf
            .len()
            .min(usize::try_from(self.left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "file shrank while being archived",
            ));
        }
        self.left -= n as u64;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pax_record_length_counts_itself() {
        let mut out = Vec::new();
        pax_record(&mut out, b"path", b"x");
        assert_eq!(out, b"9 path=x\n");
        let mut out = Vec::new();
        let v = vec![b'a'; 94];
        pax_record(&mut out, b"path", &v);
        // 94 + "path" + 3 separators = 101, plus 3 digits = 104
        assert!(out.starts_with(b"104 path="));
        assert_eq!(out.len(), 104);
    }

    #[test]
    fn exact_reader_rejects_short_and_long_data() {
        let mut short: &[u8] = b"abc";
        let mut r = ExactReader::new(&mut short, 5);
        assert!(io::copy(&mut r, &mut io::sink()).is_err());
        let mut long: &[u8] = b"abcdef";
        let mut r = ExactReader::new(&mut long, 5);
        assert!(io::copy(&mut r, &mut io::sink()).is_err());
        let mut exact: &[u8] = b"abcde";
        let mut r = ExactReader::new(&mut exact, 5);
        assert_eq!(io::copy(&mut r, &mut io::sink()).unwrap(), 5);
    }
}
