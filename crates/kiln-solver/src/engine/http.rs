//! `ADD URL`: the file fetched into a fresh snapshot, checked against `--checksum`.

use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use kiln_graph::HttpSource;
use sha2::{Digest as _, Sha256, Sha384, Sha512};

use super::files::ScratchDir;
use super::{Engine, EngineError, Output, io_error};

/// Largest download ADD accepts; a build context file is never this big either.
const MAX_DOWNLOAD: u64 = 8 << 30;

pub(crate) fn fetch(
    engine: &Engine,
    source: &HttpSource,
    label: &str,
) -> Result<Output, EngineError> {
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(600))
        .build()
        .map_err(|e| EngineError::Input(format!("ADD {}: {e}", source.url)))?;
    let response = client
        .get(&source.url)
        .send()
        .and_then(|r| r.error_for_status())
        .map_err(|e| EngineError::Input(format!("ADD {}: {e}", source.url)))?;
    let modified = response
        .headers()
        .get(reqwest::header::LAST_MODIFIED)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| httpdate::parse_http_date(v).ok());
    let mut body = Vec::new();
    response
        .take(MAX_DOWNLOAD)
        .read_to_end(&mut body)
        .map_err(io_error(format!("ADD {}: read body", source.url)))?;
    if let Some(expected) = &source.checksum {
        verify(&body, expected).map_err(|actual| {
            EngineError::Input(format!(
                "ADD {}: checksum mismatch: expected {expected}, got {actual}",
                source.url
            ))
        })?;
    }
    let dir = ScratchDir::create(engine, "http")?;
    let file = dir.path.join(&source.filename);
    std::fs::write(&file, &body).map_err(io_error(format!("write {}", file.display())))?;
    // BuildKit gives downloaded files mode 0600 and the server's modification time.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600))
        .map_err(io_error(format!("chmod {}", file.display())))?;
    if let Some(time) = modified {
        let handle = std::fs::File::options()
            .write(true)
            .open(&file)
            .map_err(io_error("open download"))?;
        handle
            .set_modified(time)
            .map_err(io_error("set download mtime"))?;
    }
    let record = engine.snapshotter().import_dir(None, &dir.path, label)?;
    Ok(Output::Fs(Some(record.id)))
}

/// `Ok` when `body` has digest `expected` (`sha256:`, `sha384:` or `sha512:`); else the
/// digest it does have.
fn verify(body: &[u8], expected: &str) -> Result<(), String> {
    let (algorithm, _) = expected.split_once(':').unwrap_or(("sha256", expected));
    let actual = match algorithm {
        "sha384" => format!("sha384:{}", hex::encode(Sha384::digest(body))),
        "sha512" => format!("sha512:{}", hex::encode(Sha512::digest(body))),
        _ => format!("sha256:{}", hex::encode(Sha256::digest(body))),
    };
    if actual == expected {
        Ok(())
    } else {
        Err(actual)
    }
}

#[cfg(test)]
mod tests {
    use super::verify;

    #[test]
    fn checksums() {
        let sha = "sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";
        assert!(verify(b"hello", sha).is_ok());
        assert!(verify(b"hellO", sha).is_err());
        assert!(verify(b"hello", "sha512:00").is_err());
    }
}
