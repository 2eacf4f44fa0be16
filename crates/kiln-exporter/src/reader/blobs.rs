//! Random access to the files of an image layout, whether a directory or a tar archive
//! (indexed once; member data is then read in place, never extracted).

use std::collections::HashMap;
use std::fs::{self, File};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};

use crate::error::{ExportError, IoContext, Result};

/// Manifests, configs and indexes are small; refuse to buffer anything claiming to be huge.
pub(crate) const MAX_JSON_BLOB: u64 = 32 << 20;

#[derive(Debug, Clone)]
pub(crate) enum Member {
    File { offset: u64, size: u64 },
    Symlink(String),
}

#[derive(Debug)]
pub(crate) enum Files {
    Dir(PathBuf),
    Tar {
        path: PathBuf,
        members: HashMap<String, Member>,
        /// A compressed archive is expanded here first; kept alive as long as `path` is read.
        _expanded: Option<tempfile::NamedTempFile>,
    },
}

fn normalize(path: &str) -> Option<String> {
    let mut parts: Vec<&str> = Vec::new();
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            _ => parts.push(c),
        }
    }
    Some(parts.join("/"))
}

impl Files {
    pub(crate) fn dir(path: &Path) -> Self {
        Files::Dir(path.to_path_buf())
    }

    pub(crate) fn tar(path: &Path) -> Result<Self> {
        let mut head = [0u8; 4];
        let n = File::open(path)
            .and_then(|mut f| f.read(&mut head))
            .ctx("open archive", path)?;
        if head[..n].starts_with(&[0x1f, 0x8b]) || head[..n].starts_with(&[0x28, 0xb5, 0x2f, 0xfd])
        {
            // `docker save | gzip` and friends: random access needs the plain tar.
            let mut expanded =
                tempfile::NamedTempFile::new().ctx("create temporary file", "/tmp")?;
            let source = File::open(path).ctx("open archive", path)?;
            std::io::copy(
                &mut crate::unpack::decompressed(source)?,
                expanded.as_file_mut(),
            )
            .ctx("decompress", path)?;
            let mut files = Files::tar(expanded.path())?;
            if let Files::Tar { _expanded, .. } = &mut files {
                *_expanded = Some(expanded);
            }
            return Ok(files);
        }
        let file = File::open(path).ctx("open archive", path)?;
        let mut archive = tar::Archive::new(file);
        let mut members = HashMap::new();
        for entry in archive.entries_with_seek().ctx("read archive", path)? {
            let entry = entry.ctx("read archive", path)?;
            let raw = String::from_utf8_lossy(&entry.path_bytes()).into_owned();
            let Some(name) = normalize(&raw) else {
                continue;
            };
            let h = entry.header();
            match h.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => {
                    members.insert(
                        name,
                        Member::File {
                            offset: entry.raw_file_position(),
                            size: entry.size(),
                        },
                    );
                }
                tar::EntryType::Symlink | tar::EntryType::Link => {
                    if let Some(target) = entry.link_name_bytes() {
                        let target = String::from_utf8_lossy(&target).into_owned();
                        // Symlinks are relative to their directory, hard links to the root.
                        let resolved = if h.entry_type() == tar::EntryType::Symlink {
                            let dir = name.rsplit_once('/').map_or("", |(d, _)| d);
                            format!("{dir}/{target}")
                        } else {
                            target
                        };
                        if let Some(t) = normalize(&resolved) {
                            members.insert(name, Member::Symlink(t));
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(Files::Tar {
            path: path.to_path_buf(),
            members,
            _expanded: None,
        })
    }

    pub(crate) fn exists(&self, rel: &str) -> bool {
        match self {
            Files::Dir(root) => root.join(rel).is_file(),
            Files::Tar { members, .. } => normalize(rel).is_some_and(|n| members.contains_key(&n)),
        }
    }

    /// Opens a member for reading, with its size.
    pub(crate) fn open(&self, rel: &str) -> Result<(Box<dyn Read + Send>, u64)> {
        let Some(mut name) = normalize(rel) else {
            return Err(ExportError::UnsafePath(rel.to_owned()));
        };
        match self {
            Files::Dir(root) => {
                let path = root.join(&name);
                let file = File::open(&path).map_err(|e| match e.kind() {
                    std::io::ErrorKind::NotFound => ExportError::BlobNotFound(rel.to_owned()),
                    _ => ExportError::Io {
                        op: "open",
                        path: path.clone(),
                        source: e,
                    },
                })?;
                let size = file.metadata().ctx("stat", &path)?.len();
                Ok((Box::new(file), size))
            }
            Files::Tar { path, members, .. } => {
                for _ in 0..16 {
                    match members.get(&name) {
                        Some(Member::File { offset, size }) => {
                            let mut file = File::open(path).ctx("open archive", path)?;
                            file.seek(SeekFrom::Start(*offset)).ctx("seek", path)?;
                            return Ok((Box::new(file.take(*size)), *size));
                        }
                        Some(Member::Symlink(target)) => name = target.clone(),
                        None => break,
                    }
                }
                Err(ExportError::BlobNotFound(rel.to_owned()))
            }
        }
    }

    /// Reads a small member whole.
    pub(crate) fn read_small(&self, rel: &str) -> Result<Vec<u8>> {
        let (reader, size) = self.open(rel)?;
        if size > MAX_JSON_BLOB {
            return Err(ExportError::InvalidImage(format!(
                "{rel} is {size} bytes, too large for metadata"
            )));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        reader.take(MAX_JSON_BLOB).read_to_end(&mut bytes)?;
        Ok(bytes)
    }

    pub(crate) fn is_dir_layout(path: &Path) -> bool {
        fs::metadata(path).is_ok_and(|m| m.is_dir())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_clamps_nothing_and_refuses_escapes() {
        assert_eq!(normalize("./a//b/./c").as_deref(), Some("a/b/c"));
        assert_eq!(normalize("a/../b").as_deref(), Some("b"));
        assert_eq!(normalize("../x"), None);
    }
}
