//! sha256 digests: computing them while bytes stream past, and checking them.

use std::io::{self, Read, Write};
use std::str::FromStr;

use oci_spec::image::Digest;
use sha2::{Digest as _, Sha256};

use crate::error::{ExportError, Result};

/// `sha256:<hex>` of a byte slice.
pub fn sha256_digest(bytes: &[u8]) -> Digest {
    digest_from_hasher(Sha256::new_with_prefix(bytes))
}

pub(crate) fn digest_from_hasher(hasher: Sha256) -> Digest {
    let text = format!("sha256:{}", hex::encode(hasher.finalize()));
    // A freshly formatted sha256 is always a valid digest.
    Digest::from_str(&text).unwrap_or_else(|_| unreachable!("sha256 digest {text}"))
}

/// Parses `sha256:<64 hex>`; other algorithms are refused because blobs are stored by sha256.
pub fn parse_sha256(text: &str) -> Result<Digest> {
    let hex_part = text
        .strip_prefix("sha256:")
        .ok_or_else(|| ExportError::InvalidDigest(text.to_owned()))?;
    let valid = hex_part.len() == 64
        && hex_part
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !valid {
        return Err(ExportError::InvalidDigest(text.to_owned()));
    }
    Digest::from_str(text).map_err(|_| ExportError::InvalidDigest(text.to_owned()))
}

/// The hex part of a sha256 digest; refuses anything that could escape a blob directory.
pub(crate) fn sha256_hex(digest: &Digest) -> Result<&str> {
    let text: &str = digest.as_ref();
    parse_sha256(text)?;
    Ok(&text["sha256:".len()..])
}

/// Passes writes through while hashing and counting them.
pub(crate) struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    count: u64,
}

impl<W: Write> HashingWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            count: 0,
        }
    }

    pub(crate) fn finish(self) -> (W, Digest, u64) {
        (self.inner, digest_from_hasher(self.hasher), self.count)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads a blob through, failing at its end unless the bytes match the expected digest and
/// size, so nothing unverified is taken as complete.
pub(crate) struct VerifyingReader<R> {
    inner: R,
    hasher: Sha256,
    count: u64,
    what: String,
    expected: Digest,
    expected_size: u64,
}

impl<R: Read> VerifyingReader<R> {
    pub(crate) fn new(inner: R, what: String, expected: Digest, expected_size: u64) -> Self {
        VerifyingReader {
            inner,
            hasher: Sha256::new(),
            count: 0,
            what,
            expected,
            expected_size,
        }
    }
}

impl<R: Read> Read for VerifyingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        self.count += n as u64;
        if self.count > self.expected_size || (n == 0 && !buf.is_empty()) {
            let actual = digest_from_hasher(self.hasher.clone());
            check_blob(
                &self.what,
                &self.expected,
                self.expected_size,
                &actual,
                self.count,
            )
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        }
        Ok(n)
    }
}

/// Fails unless `actual` matches what a descriptor promised.
pub(crate) fn check_blob(
    what: &str,
    expected: &Digest,
    expected_size: u64,
    actual: &Digest,
    actual_size: u64,
) -> Result<()> {
    if expected_size != actual_size {
        return Err(ExportError::SizeMismatch {
            what: what.to_owned(),
            expected: expected_size,
            actual: actual_size,
        });
    }
    if expected != actual {
        return Err(ExportError::DigestMismatch {
            what: what.to_owned(),
            expected: expected.to_string(),
            actual: actual.to_string(),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_input_has_the_well_known_digest() {
        assert_eq!(
            sha256_digest(b"").to_string(),
            "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parse_refuses_paths_and_other_algorithms() {
        assert!(parse_sha256("sha256:../../etc/passwd").is_err());
        assert!(parse_sha256("sha512:abcd").is_err());
        assert!(parse_sha256(&format!("sha256:{}", "A".repeat(64))).is_err());
        assert!(parse_sha256(&format!("sha256:{}", "a".repeat(64))).is_ok());
    }

    #[test]
    fn verifying_reader_rejects_tampered_bytes() {
        let good = sha256_digest(b"abc");
        let mut ok = VerifyingReader::new(&b"abc"[..], "blob".into(), good.clone(), 3);
        assert_eq!(io::copy(&mut ok, &mut io::sink()).unwrap(), 3);
        let mut bad = VerifyingReader::new(&b"abd"[..], "blob".into(), good.clone(), 3);
        assert!(io::copy(&mut bad, &mut io::sink()).is_err());
        let mut long = VerifyingReader::new(&b"abcd"[..], "blob".into(), good, 3);
        assert!(io::copy(&mut long, &mut io::sink()).is_err());
    }

    #[test]
    fn hashing_writer_matches_one_shot_digest() {
        let mut w = HashingWriter::new(Vec::new());
        w.write_all(b"hello ").unwrap();
        w.write_all(b"world").unwrap();
        let (inner, digest, count) = w.finish();
        assert_eq!(inner, b"hello world");
        assert_eq!(count, 11);
        assert_eq!(digest, sha256_digest(b"hello world"));
    }
}
