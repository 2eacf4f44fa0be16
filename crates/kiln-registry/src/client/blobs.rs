//! Blobs: existence checks, verified downloads and uploads (mount, monolithic, chunked).

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, LOCATION};
use sha2::{Digest as _, Sha256, Sha512};

use super::{Call, Client};
use crate::media::Descriptor;
use crate::reference::validate_digest;
use crate::{Reference, RegistryError};

/// How `push_blob` got the blob into the repository.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushedBlob {
    /// The repository already had it.
    Existed,
    /// Mounted from another repository of the same registry; nothing was sent.
    Mounted,
    /// Uploaded.
    Uploaded,
}

const OCTET_STREAM: &str = "application/octet-stream";

impl Client {
    /// Whether the repository has a blob.
    pub fn blob_exists(&self, r: &Reference, digest: &str) -> Result<bool, RegistryError> {
        validate_digest(digest)?;
        self.blob_exists_for(
            r,
            digest,
            Call::pull(self, r, format!("checking blob {digest}")),
        )
    }

    fn blob_exists_for(
        &self,
        r: &Reference,
        digest: &str,
        call: Call,
    ) -> Result<bool, RegistryError> {
        let url = self.repo_url(r, &format!("blobs/{digest}"));
        let reply = self.send_read(&call, &|http| http.head(&url))?;
        match reply.status {
            s if s.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            s => Err(self.status_error(&call, s, &reply.body)),
        }
    }

    /// Downloads a blob to `dest`, verified against the descriptor's digest and size.
    /// The data goes to a temporary file beside `dest` that is synced and renamed into
    /// place, so `dest` never holds partial or wrong content. Corrupt downloads are
    /// tried again; if they stay corrupt the error is `DigestMismatch`.
    pub fn fetch_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        validate_digest(&desc.digest)?;
        let mut attempt = 0;
        loop {
            match self.fetch_blob_once(r, desc, dest) {
                Ok(()) => return Ok(()),
                Err(e) if retry_download(&e) && attempt < self.inner.options.max_retries => {
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn fetch_blob_once(
        &self,
        r: &Reference,
        desc: &Descriptor,
        dest: &Path,
    ) -> Result<(), RegistryError> {
        let call = Call::pull(self, r, format!("fetching blob {}", desc.digest)).blob_transfer();
        let url = self.repo_url(r, &format!("blobs/{}", desc.digest));
        let mut response = self.send(&call, &|http| http.get(&url))?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
            return Err(self.status_error(&call, status, &body));
        }
        let temp = TempFile::beside(dest)?;
        let mut file = File::create(&temp.path).map_err(|e| RegistryError::io(&temp.path, e))?;
        let mut hasher = ContentHasher::for_digest(&desc.digest);
        let mut buf = vec![0u8; 256 * 1024];
        let mut received: u64 = 0;
        let what = || format!("blob {} of {}", desc.digest, r.name());
        loop {
            let n = match response.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    return Err(RegistryError::BodyRead {
                        registry: r.registry.clone(),
                        repository: r.repository.clone(),
                        operation: call.operation.clone(),
                        source: e,
                    });
                }
            };
            received += n as u64;
            if received > desc.size {
                return Err(RegistryError::SizeMismatch {
                    what: what(),
                    expected: desc.size,
                    actual: received,
                });
            }
            hasher.update(&buf[..n]);
            file.write_all(&buf[..n])
                .map_err(|e| RegistryError::io(&temp.path, e))?;
        }
        if received != desc.size {
            return Err(RegistryError::SizeMismatch {
                what: what(),
                expected: desc.size,
                actual: received,
            });
        }
        let actual = hasher.finish();
        if actual != desc.digest {
            return Err(RegistryError::DigestMismatch {
                what: what(),
                expected: desc.digest.clone(),
                actual,
            });
        }
        file.sync_all()
            .map_err(|e| RegistryError::io(&temp.path, e))?;
        drop(file);
        temp.persist(dest)
    }

    /// Downloads a small blob into memory, verified like `fetch_blob`.
    pub fn fetch_blob_bytes(
        &self,
        r: &Reference,
        desc: &Descriptor,
        limit: u64,
    ) -> Result<Vec<u8>, RegistryError> {
        validate_digest(&desc.digest)?;
        let what = format!("blob {} of {}", desc.digest, r.name());
        if desc.size > limit {
            return Err(RegistryError::InvalidManifest {
                what,
                reason: format!("its size {} exceeds the limit of {limit} bytes", desc.size),
            });
        }
        let call = Call::pull(self, r, format!("fetching blob {}", desc.digest));
        let url = self.repo_url(r, &format!("blobs/{}", desc.digest));
        let mut attempt = 0;
        loop {
            let result = self
                .send_read(&call, &|http| http.get(&url))
                .and_then(|reply| {
                    if !reply.status.is_success() {
                        return Err(self.status_error(&call, reply.status, &reply.body));
                    }
                    if reply.body.len() as u64 != desc.size {
                        return Err(RegistryError::SizeMismatch {
                            what: what.clone(),
                            expected: desc.size,
                            actual: reply.body.len() as u64,
                        });
                    }
                    let mut h = ContentHasher::for_digest(&desc.digest);
                    h.update(&reply.body);
                    let actual = h.finish();
                    if actual != desc.digest {
                        return Err(RegistryError::DigestMismatch {
                            what: what.clone(),
                            expected: desc.digest.clone(),
                            actual,
                        });
                    }
                    Ok(reply.body)
                });
            match result {
                Err(e) if retry_download(&e) && attempt < self.inner.options.max_retries => {
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                other => return other,
            }
        }
    }

    /// Puts a blob into a repository: nothing if it is there, a cross-repository mount
    /// when one of `mount_from` (same registry) has it, else an upload of `path`.
    pub fn push_blob(
        &self,
        r: &Reference,
        desc: &Descriptor,
        path: &Path,
        mount_from: &[Reference],
    ) -> Result<PushedBlob, RegistryError> {
        validate_digest(&desc.digest)?;
        let size = std::fs::metadata(path)
            .map_err(|e| RegistryError::io(path, e))?
            .len();
        if size != desc.size {
            return Err(RegistryError::SizeMismatch {
                what: format!("local file {} for blob {}", path.display(), desc.digest),
                expected: desc.size,
                actual: size,
            });
        }
        let exists_call = Call::push(self, r, format!("checking blob {}", desc.digest));
        if self.blob_exists_for(r, &desc.digest, exists_call)? {
            return Ok(PushedBlob::Existed);
        }
        let mut session = None;
        for source in mount_from {
            if source.registry != r.registry || source.repository == r.repository {
                continue;
            }
            match self.try_mount(r, desc, source)? {
                Mount::Done => return Ok(PushedBlob::Mounted),
                Mount::Session(location) => {
                    session = Some(location);
                    break;
                }
                Mount::Refused => {}
            }
        }
        let mut attempt = 0;
        loop {
            // Starting a session is one request that `run` retries; only a transfer
            // failing part way (whose requests are sent once) starts over here.
            let location = match session.take() {
                Some(location) => location,
                None => self.start_upload(r, desc)?,
            };
            match self.upload(r, desc, path, location) {
                Ok(()) => return Ok(PushedBlob::Uploaded),
                Err(e) if e.is_transient() && attempt < self.inner.options.max_retries => {
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    fn try_mount(
        &self,
        r: &Reference,
        desc: &Descriptor,
        source: &Reference,
    ) -> Result<Mount, RegistryError> {
        let mut call = Call::push(
            self,
            r,
            format!("mounting blob {} from {}", desc.digest, source.repository),
        );
        call.scopes
            .push(format!("repository:{}:pull", source.repository));
        let mut url = self.resolve(r, &format!("{}/blobs/uploads/", r.repository))?;
        url.query_pairs_mut()
            .append_pair("mount", &desc.digest)
            .append_pair("from", &source.repository);
        let reply = match self.send_read(&call, &|http| {
            http.post(url.clone()).header(CONTENT_LENGTH, "0")
        }) {
            Ok(reply) => reply,
            // No pull access to the source: a plain upload still works.
            Err(RegistryError::Unauthorized { .. }) => return Ok(Mount::Refused),
            Err(e) => return Err(e),
        };
        match reply.status {
            StatusCode::CREATED => Ok(Mount::Done),
            StatusCode::ACCEPTED => Ok(match location_header(&reply.headers) {
                Some(l) => Mount::Session(l),
                None => Mount::Refused,
            }),
            _ => Ok(Mount::Refused),
        }
    }

    /// Opens an upload session; its location.
    fn start_upload(&self, r: &Reference, desc: &Descriptor) -> Result<String, RegistryError> {
        let call = Call::push(self, r, format!("starting upload of blob {}", desc.digest));
        let url = self.repo_url(r, "blobs/uploads/");
        let reply = self.send_read(&call, &|http| http.post(&url).header(CONTENT_LENGTH, "0"))?;
        if reply.status != StatusCode::ACCEPTED {
            return Err(self.status_error(&call, reply.status, &reply.body));
        }
        location_header(&reply.headers).ok_or_else(|| missing_location(&call))
    }

    /// The blob's bytes sent into the session at `location`, to its end; a failure part
    /// way restarts with a new session.
    fn upload(
        &self,
        r: &Reference,
        desc: &Descriptor,
        path: &Path,
        mut location: String,
    ) -> Result<(), RegistryError> {
        let digest = &desc.digest;
        let chunk_size = self.inner.options.chunk_size;
        if desc.size > chunk_size {
            let mut file = File::open(path).map_err(|e| RegistryError::io(path, e))?;
            let mut offset = 0u64;
            while offset < desc.size {
                let len = chunk_size.min(desc.size - offset);
                let mut chunk = vec![0u8; len as usize];
                file.read_exact(&mut chunk)
                    .map_err(|e| RegistryError::io(path, e))?;
                let call = Call::push(
                    self,
                    r,
                    format!(
                        "uploading blob {digest} (bytes {offset}-{})",
                        offset + len - 1
                    ),
                )
                .blob_transfer()
                .no_retry();
                let url = self.resolve(r, &location)?;
                let range = format!("{offset}-{}", offset + len - 1);
                let reply = self.send_read(&call, &|http| {
                    http.patch(url.clone())
                        .header(CONTENT_TYPE, OCTET_STREAM)
                        .header("Content-Range", &range)
                        .body(chunk.clone())
                })?;
                if reply.status != StatusCode::ACCEPTED {
                    return Err(self.status_error(&call, reply.status, &reply.body));
                }
                location =
                    location_header(&reply.headers).ok_or_else(|| missing_location(&call))?;
                offset += len;
            }
        }
        let call = Call::push(self, r, format!("finishing upload of blob {digest}"))
            .blob_transfer()
            .no_retry();
        let mut url = self.resolve(r, &location)?;
        url.query_pairs_mut().append_pair("digest", digest);
        let monolithic = desc.size <= chunk_size;
        let reply = self.send_read(&call, &|http| {
            let request = http.put(url.clone()).header(CONTENT_TYPE, OCTET_STREAM);
            if monolithic {
                match File::open(path) {
                    Ok(f) => request.body(reqwest::blocking::Body::sized(f, desc.size)),
                    // Surfaces as a request error; the file was there a moment ago.
                    Err(_) => request.body(Vec::new()),
                }
            } else {
                request.header(CONTENT_LENGTH, "0")
            }
        })?;
        if reply.status != StatusCode::CREATED {
            return Err(self.status_error(&call, reply.status, &reply.body));
        }
        Ok(())
    }
}

enum Mount {
    Done,
    /// The registry did not mount but opened an upload session instead.
    Session(String),
    Refused,
}

fn location_header(headers: &reqwest::header::HeaderMap) -> Option<String> {
    headers
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .filter(|l| !l.is_empty())
        .map(str::to_string)
}

fn missing_location(call: &Call) -> RegistryError {
    RegistryError::Http {
        registry: call.reference.registry.clone(),
        repository: call.reference.repository.clone(),
        operation: call.operation.clone(),
        status: 202,
        code: None,
        message: Some("the registry did not say where to upload (no Location header)".into()),
    }
}

/// Download failures worth another try that `Client::run` cannot see, as it only sends
/// requests: bad content, or a body cut off while it streamed. Network failures and
/// server errors were already retried there.
fn retry_download(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::DigestMismatch { .. }
            | RegistryError::SizeMismatch { .. }
            | RegistryError::BodyRead { .. }
    )
}

enum ContentHasher {
    Sha256(Sha256),
    Sha512(Sha512),
}

impl ContentHasher {
    fn for_digest(digest: &str) -> ContentHasher {
        if digest.starts_with("sha512:") {
            ContentHasher::Sha512(Sha512::new())
        } else {
            ContentHasher::Sha256(Sha256::new())
        }
    }

    fn update(&mut self, data: &[u8]) {
        match self {
            ContentHasher::Sha256(h) => h.update(data),
            ContentHasher::Sha512(h) => h.update(data),
        }
    }

    fn finish(self) -> String {
        match self {
            ContentHasher::Sha256(h) => format!("sha256:{}", hex::encode(h.finalize())),
            ContentHasher::Sha512(h) => format!("sha512:{}", hex::encode(h.finalize())),
        }
    }
}

/// A file beside its destination that is removed unless it is renamed into place.
struct TempFile {
    path: PathBuf,
    persisted: bool,
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

impl TempFile {
    fn beside(dest: &Path) -> Result<TempFile, RegistryError> {
        let dir = match dest.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        std::fs::create_dir_all(&dir).map_err(|e| RegistryError::io(&dir, e))?;
        let name = dest
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "blob".into());
        let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
        Ok(TempFile {
            // Named after the destination (no leading dot): a store that cleans up its
            // own `blob-*` temp files after a killed process also removes these.
            path: dir.join(format!("{name}.{}.{n}.partial", std::process::id())),
            persisted: false,
        })
    }

    fn persist(mut self, dest: &Path) -> Result<(), RegistryError> {
        std::fs::rename(&self.path, dest).map_err(|e| RegistryError::io(dest, e))?;
        self.persisted = true;
        // The rename is only durable once the directory is synced.
        if let Some(dir) = dest.parent().filter(|p| !p.as_os_str().is_empty())
            && let Ok(d) = File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.persisted {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::TempFile;

    #[test]
    fn partial_downloads_are_named_after_their_destination() {
        // A store removes its own `blob-*` temp files left by killed processes: a partial
        // download for `blob-…` must match that, not hide behind a leading dot.
        let dir = tempfile::tempdir().unwrap();
        let temp = TempFile::beside(&dir.path().join("blob-pull-abc")).unwrap();
        let name = temp
            .path
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(name.starts_with("blob-pull-abc."), "{name}");
        assert!(name.ends_with(".partial"), "{name}");
    }
}
