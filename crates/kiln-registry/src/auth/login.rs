//! `login` checks credentials against a registry and stores them where docker would;
//! `logout` removes them.

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::config::{normalise_host, server_key};
use super::{AuthConfig, Credentials};
use crate::{Client, ClientOptions, RegistryError};

/// Where `login` put the credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Stored {
    ConfigFile(PathBuf),
    /// Name of the credential helper (`docker-credential-NAME`).
    Helper(String),
}

/// Verifies `username`/`password` against `server` (`docker.io`, `host:port` or a URL)
/// and stores them in the credential helper configured for it, else in `config.json` of
/// `options.auth`'s config directory.
pub fn login(
    options: &ClientOptions,
    server: &str,
    username: &str,
    password: &str,
) -> Result<Stored, RegistryError> {
    let registry = normalise_host(server);
    if registry.is_empty() {
        return Err(RegistryError::Credentials {
            registry: server.to_string(),
            reason: "no registry host given".into(),
        });
    }
    if username.is_empty() {
        return Err(RegistryError::Credentials {
            registry,
            reason: "the username is empty".into(),
        });
    }
    let credentials = Credentials::Basic {
        username: username.to_string(),
        password: password.to_string(),
    };
    let checking = Client::new(ClientOptions {
        auth: options
            .auth
            .clone()
            .with_credentials(&registry, credentials),
        ..options.clone()
    })?;
    checking.ping(&registry)?;

    let auth = &options.auth;
    if let Some(helper) = auth.helper_for(&registry) {
        let request = serde_json::json!({
            "ServerURL": server_key(&registry),
            "Username": username,
            "Secret": password,
        });
        let out = auth.run_helper(helper, &registry, "store", request.to_string().as_bytes())?;
        if !out.status.success() {
            return Err(RegistryError::Credentials {
                registry,
                reason: format!(
                    "docker-credential-{helper} store failed: {}",
                    String::from_utf8_lossy(&out.stdout).trim()
                ),
            });
        }
        return Ok(Stored::Helper(helper.to_string()));
    }
    let path = config_path(auth, &registry)?;
    let key = server_key(&registry);
    let entry = BASE64.encode(format!("{username}:{password}"));
    update_config(&path, |auths| {
        auths.retain(|k, _| normalise_host(k) != registry);
        auths.insert(key.clone(), serde_json::json!({ "auth": entry }));
    })?;
    Ok(Stored::ConfigFile(path))
}

/// Removes stored credentials for `server`. Returns whether there were any.
pub fn logout(auth: &AuthConfig, server: &str) -> Result<bool, RegistryError> {
    let registry = normalise_host(server);
    let mut removed = false;
    if let Some(helper) = auth.helper_for(&registry) {
        let out = auth.run_helper(helper, &registry, "erase", server_key(&registry).as_bytes())?;
        removed |= out.status.success();
    }
    let path = config_path(auth, &registry)?;
    if path.exists() {
        let mut found = false;
        update_config(&path, |auths| {
            let before = auths.len();
            auths.retain(|k, _| normalise_host(k) != registry);
            found = auths.len() != before;
        })?;
        removed |= found;
    }
    Ok(removed)
}

fn config_path(auth: &AuthConfig, registry: &str) -> Result<PathBuf, RegistryError> {
    auth.config_path().ok_or_else(|| RegistryError::Credentials {
        registry: registry.to_string(),
        reason: "there is no docker config directory to store credentials in; set DOCKER_CONFIG or HOME".into(),
    })
}

/// Rewrites config.json changing only `auths`; everything else is kept as it was.
fn update_config(
    path: &Path,
    change: impl FnOnce(&mut serde_json::Map<String, serde_json::Value>),
) -> Result<(), RegistryError> {
    let invalid = |reason: String| RegistryError::DockerConfig {
        path: path.to_path_buf(),
        reason,
    };
    // Two logins at once (parallel CI jobs) must not each rewrite what the other read.
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
    // The lock is on the directory itself, so nothing is added beside docker's files.
    let lock = std::fs::File::open(dir).map_err(|e| RegistryError::io(dir, e))?;
    lock.lock().map_err(|e| RegistryError::io(dir, e))?;
    let mut doc = match std::fs::read(path) {
        Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => serde_json::json!({}),
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .map_err(|e| invalid(format!("not valid JSON: {e}")))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(RegistryError::io(path, e)),
    };
    let object = doc
        .as_object_mut()
        .ok_or_else(|| invalid("the top level is not a JSON object".into()))?;
    let auths = object
        .entry("auths")
        .or_insert_with(|| serde_json::json!({}));
    if auths.is_null() {
        *auths = serde_json::json!({});
    }
    let auths = auths
        .as_object_mut()
        .ok_or_else(|| invalid("\"auths\" is not a JSON object".into()))?;
    change(auths);
    let mut bytes = serde_json::to_vec_pretty(&doc).expect("a JSON value serialises");
    bytes.push(b'\n');
    write_private_atomically(path, &bytes)
}

/// Writes mode 0600 content through a temporary file and a rename.
fn write_private_atomically(path: &Path, bytes: &[u8]) -> Result<(), RegistryError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| RegistryError::io(dir, e))?;
    // The config lock serialises writers of one process's threads too: pid is enough.
    let temp = dir.join(format!(".config.json.{}.tmp", std::process::id()));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temp)?;
        // The mode above only applies to a new file; a stale temp file keeps its own.
        f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&temp, path)
    })();
    if let Err(e) = result {
        let _ = std::fs::remove_file(&temp);
        return Err(RegistryError::io(path, e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_update_keeps_other_keys_and_is_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(
            &path,
            r#"{"auths": {"https://h:5000/v1/": {"auth": "old"}, "k": {"auth": "x"}}, "proxies": {"default": {}}, "credsStore": ""}"#,
        )
        .unwrap();
        update_config(&path, |a| {
            a.retain(|k, _| normalise_host(k) != "h:5000");
            a.insert("h:5000".into(), serde_json::json!({"auth": "new"}));
        })
        .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"]["h:5000"]["auth"], "new");
        assert!(v["auths"].get("https://h:5000/v1/").is_none());
        assert_eq!(v["auths"]["k"]["auth"], "x");
        assert!(v["proxies"]["default"].is_object());
        assert_eq!(v["credsStore"], "");
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            1,
            "no temp file left"
        );
    }

    #[test]
    fn parallel_updates_keep_every_entry() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::thread::scope(|scope| {
            for i in 0..16 {
                let path = &path;
                scope.spawn(move || {
                    update_config(path, |a| {
                        a.insert(format!("r{i}.example"), serde_json::json!({"auth": "x"}));
                    })
                    .unwrap();
                });
            }
        });
        let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["auths"].as_object().unwrap().len(), 16, "{v}");
    }

    #[test]
    fn config_that_is_not_an_object_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, "[1]").unwrap();
        let err = update_config(&path, |_| {}).unwrap_err().to_string();
        assert!(err.contains("not a JSON object"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "[1]");
    }
}
