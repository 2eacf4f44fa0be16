//! Credentials from docker's `config.json`: `auths`, `credHelpers` and `credsStore`,
//! looked up the way the docker CLI does.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde::Deserialize;

use crate::RegistryError;
use crate::reference::DOCKER_HUB;

/// The key docker stores Docker Hub credentials under.
pub const DOCKER_HUB_KEY: &str = "https://index.docker.io/v1/";

/// What a registry is told to prove who we are.
#[derive(Clone, PartialEq, Eq)]
pub enum Credentials {
    Basic {
        username: String,
        password: String,
    },
    /// An OAuth2 refresh token (`identitytoken`), exchanged at the token server.
    IdentityToken {
        username: String,
        token: String,
    },
}

impl std::fmt::Debug for Credentials {
    // Secrets never reach logs or error messages.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::Basic { username, .. } => write!(f, "Basic({username}, <redacted>)"),
            Credentials::IdentityToken { username, .. } => {
                write!(f, "IdentityToken({username}, <redacted>)")
            }
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize)]
struct ConfigFile {
    #[serde(default)]
    auths: BTreeMap<String, AuthEntry>,
    #[serde(default, rename = "credHelpers")]
    cred_helpers: BTreeMap<String, String>,
    #[serde(default, rename = "credsStore")]
    creds_store: Option<String>,
}

#[derive(Clone, Debug, Default, Deserialize)]
struct AuthEntry {
    #[serde(default)]
    auth: Option<String>,
    #[serde(default)]
    username: Option<String>,
    #[serde(default)]
    password: Option<String>,
    #[serde(default)]
    identitytoken: Option<String>,
}

/// Where credentials come from: a docker config directory (or none: anonymous), plus
/// credentials given explicitly, which win over the file.
#[derive(Clone, Debug, Default)]
pub struct AuthConfig {
    config_dir: Option<PathBuf>,
    file: ConfigFile,
    helper_path: Option<OsString>,
    explicit: BTreeMap<String, Credentials>,
}

impl AuthConfig {
    /// No credentials at all.
    pub fn anonymous() -> AuthConfig {
        AuthConfig::default()
    }

    /// The directory docker uses: `$DOCKER_CONFIG`, else `~/.docker`.
    pub fn default_dir() -> Option<PathBuf> {
        if let Some(dir) = std::env::var_os("DOCKER_CONFIG").filter(|d| !d.is_empty()) {
            return Some(PathBuf::from(dir));
        }
        std::env::var_os("HOME")
            .filter(|h| !h.is_empty())
            .map(|h| PathBuf::from(h).join(".docker"))
    }

    /// Reads `config.json` from [`AuthConfig::default_dir`]; a missing file is anonymous.
    pub fn from_env() -> Result<AuthConfig, RegistryError> {
        match AuthConfig::default_dir() {
            Some(dir) => AuthConfig::from_dir(&dir),
            None => Ok(AuthConfig::anonymous()),
        }
    }

    /// Reads `DIR/config.json`; a missing file means no credentials.
    pub fn from_dir(dir: &Path) -> Result<AuthConfig, RegistryError> {
        let path = dir.join("config.json");
        let file = match std::fs::read(&path) {
            Ok(bytes) if bytes.iter().all(u8::is_ascii_whitespace) => ConfigFile::default(),
            Ok(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| RegistryError::DockerConfig {
                    path: path.clone(),
                    reason: format!("not valid JSON: {e}"),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => ConfigFile::default(),
            Err(e) => return Err(RegistryError::io(&path, e)),
        };
        Ok(AuthConfig {
            config_dir: Some(dir.to_path_buf()),
            file,
            ..AuthConfig::default()
        })
    }

    /// Uses these credentials for `registry` whatever the config file says.
    pub fn with_credentials(mut self, registry: &str, credentials: Credentials) -> AuthConfig {
        self.explicit.insert(normalise_host(registry), credentials);
        self
    }

    /// Looks for `docker-credential-*` helpers in these directories instead of `$PATH`.
    pub fn with_helper_path(mut self, path: impl Into<OsString>) -> AuthConfig {
        self.helper_path = Some(path.into());
        self
    }

    pub fn config_dir(&self) -> Option<&Path> {
        self.config_dir.as_deref()
    }

    pub fn config_path(&self) -> Option<PathBuf> {
        self.config_dir.as_ref().map(|d| d.join("config.json"))
    }

    /// The credential helper responsible for `registry`, if any (`credHelpers` first,
    /// then `credsStore`).
    pub fn helper_for(&self, registry: &str) -> Option<&str> {
        let host = normalise_host(registry);
        self.file
            .cred_helpers
            .iter()
            .find(|(k, _)| normalise_host(k) == host)
            .map(|(_, v)| v.as_str())
            .or(self.file.creds_store.as_deref())
            .filter(|h| !h.is_empty())
    }

    /// Credentials for a registry (`docker.io` or `host[:port]`), or `None` to go anonymous.
    pub fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        let host = normalise_host(registry);
        if let Some(c) = self.explicit.get(&host) {
            return Ok(Some(c.clone()));
        }
        if let Some(helper) = self.helper_for(registry)
            && let Some(c) = self.run_helper_get(helper, registry)?
        {
            return Ok(Some(c));
        }
        let entry = self.file.auths.get(&server_key(registry)).or_else(|| {
            self.file
                .auths
                .iter()
                .find(|(k, _)| normalise_host(k) == host)
                .map(|(_, v)| v)
        });
        match entry {
            Some(e) => self.entry_credentials(registry, e),
            None => Ok(None),
        }
    }

    fn entry_credentials(
        &self,
        registry: &str,
        e: &AuthEntry,
    ) -> Result<Option<Credentials>, RegistryError> {
        let bad = |reason: String| RegistryError::Credentials {
            registry: registry.to_string(),
            reason: format!(
                "{reason} in {}",
                self.config_path().unwrap_or_default().display()
            ),
        };
        let (mut username, mut password) = (e.username.clone(), e.password.clone());
        if let Some(auth) = e.auth.as_deref().filter(|a| !a.is_empty()) {
            let decoded = BASE64
                .decode(auth.trim())
                .map_err(|_| bad("the \"auth\" value is not base64".to_string()))?;
            let decoded = String::from_utf8(decoded)
                .map_err(|_| bad("the \"auth\" value is not UTF-8".to_string()))?;
            let (u, p) = decoded.split_once(':').ok_or_else(|| {
                bad("the \"auth\" value is not base64 of user:password".to_string())
            })?;
            username = Some(u.to_string());
            password = Some(p.to_string());
        }
        if let Some(token) = e.identitytoken.as_deref().filter(|t| !t.is_empty()) {
            return Ok(Some(Credentials::IdentityToken {
                username: username.unwrap_or_default(),
                token: token.to_string(),
            }));
        }
        match (username, password) {
            (Some(u), Some(p)) if !u.is_empty() => Ok(Some(Credentials::Basic {
                username: u,
                password: p,
            })),
            _ => Ok(None),
        }
    }

    pub(crate) fn find_helper(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<PathBuf, RegistryError> {
        let name = format!("docker-credential-{helper}");
        let search = self
            .helper_path
            .clone()
            .or_else(|| std::env::var_os("PATH"))
            .unwrap_or_default();
        std::env::split_paths(&search)
            .map(|dir| dir.join(&name))
            .find(|p| p.is_file())
            .ok_or_else(|| RegistryError::Credentials {
                registry: registry.to_string(),
                reason: format!(
                    "the credential helper {name} configured in {} is not installed (not found on PATH); install it or remove it from the config",
                    self.config_path().unwrap_or_default().display()
                ),
            })
    }

    /// Runs `docker-credential-HELPER ACTION` with `input` on stdin.
    pub(crate) fn run_helper(
        &self,
        helper: &str,
        registry: &str,
        action: &str,
        input: &[u8],
    ) -> Result<std::process::Output, RegistryError> {
        let program = self.find_helper(helper, registry)?;
        let failed = |reason: String| RegistryError::Credentials {
            registry: registry.to_string(),
            reason: format!("{} {action}: {reason}", program.display()),
        };
        let mut child = Command::new(&program)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| failed(e.to_string()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading its input is not our failure to report.
            let _ = stdin.write_all(input);
        }
        child.wait_with_output().map_err(|e| failed(e.to_string()))
    }

    fn run_helper_get(
        &self,
        helper: &str,
        registry: &str,
    ) -> Result<Option<Credentials>, RegistryError> {
        let out = self.run_helper(helper, registry, "get", server_key(registry).as_bytes())?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        if !out.status.success() {
            if stdout.contains("credentials not found") {
                return Ok(None);
            }
            let stderr = String::from_utf8_lossy(&out.stderr);
            return Err(RegistryError::Credentials {
                registry: registry.to_string(),
                reason: format!(
                    "docker-credential-{helper} get failed ({}): {}",
                    out.status,
                    format!("{} {}", stdout.trim(), stderr.trim()).trim()
                ),
            });
        }
        #[derive(Deserialize)]
        struct HelperReply {
            #[serde(rename = "Username", default)]
            username: String,
            #[serde(rename = "Secret", default)]
            secret: String,
        }
        let reply: HelperReply =
            serde_json::from_str(&stdout).map_err(|e| RegistryError::Credentials {
                registry: registry.to_string(),
                reason: format!("docker-credential-{helper} get printed invalid JSON: {e}"),
            })?;
        if reply.secret.is_empty() {
            return Ok(None);
        }
        Ok(Some(if reply.username == "<token>" {
            Credentials::IdentityToken {
                username: String::new(),
                token: reply.secret,
            }
        } else {
            Credentials::Basic {
                username: reply.username,
                password: reply.secret,
            }
        }))
    }
}

/// The key a registry's credentials are stored under, as docker does.
pub fn server_key(registry: &str) -> String {
    if normalise_host(registry) == DOCKER_HUB {
        DOCKER_HUB_KEY.to_string()
    } else {
        registry.to_string()
    }
}

/// `https://host/v1/`, `host` and Docker Hub's aliases reduced to one comparable host.
pub fn normalise_host(key: &str) -> String {
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or("");
    match host {
        "index.docker.io" | "registry-1.docker.io" | "docker.io" => DOCKER_HUB.to_string(),
        h => h.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_config(json: &str) -> (tempfile::TempDir, AuthConfig) {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), json).unwrap();
        let cfg = AuthConfig::from_dir(dir.path())
            .unwrap()
            .with_helper_path(dir.path().as_os_str());
        (dir, cfg)
    }

    fn basic(u: &str, p: &str) -> Option<Credentials> {
        Some(Credentials::Basic {
            username: u.into(),
            password: p.into(),
        })
    }

    #[test]
    fn auths_are_found_by_docker_keys() {
        let auth = BASE64.encode("hub:secret");
        let (_d, cfg) = with_config(&format!(
            r#"{{"auths": {{
                "https://index.docker.io/v1/": {{"auth": "{auth}"}},
                "https://reg.example:5000": {{"username": "u", "password": "p"}},
                "tok.example": {{"identitytoken": "refresh"}}
            }}, "other": 1}}"#
        ));
        assert_eq!(
            cfg.credentials("docker.io").unwrap(),
            basic("hub", "secret")
        );
        assert_eq!(
            cfg.credentials("reg.example:5000").unwrap(),
            basic("u", "p")
        );
        assert!(matches!(
            cfg.credentials("tok.example").unwrap(),
            Some(Credentials::IdentityToken { token, .. }) if token == "refresh"
        ));
        assert_eq!(cfg.credentials("reg.example").unwrap(), None);
    }

    #[test]
    fn missing_or_empty_file_is_anonymous() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            AuthConfig::from_dir(dir.path())
                .unwrap()
                .credentials("x.io")
                .unwrap(),
            None
        );
        let (_d, cfg) = with_config("");
        assert_eq!(cfg.credentials("x.io").unwrap(), None);
    }

    #[test]
    fn broken_config_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("config.json"), "{").unwrap();
        let err = AuthConfig::from_dir(dir.path()).unwrap_err().to_string();
        assert!(err.contains("config.json") && err.contains("JSON"), "{err}");
        let (_d, cfg) = with_config(r#"{"auths": {"x.io": {"auth": "!!"}}}"#);
        let err = cfg.credentials("x.io").unwrap_err().to_string();
        assert!(err.contains("base64"), "{err}");
    }

    #[test]
    fn missing_helper_is_a_clear_error() {
        let (_d, cfg) = with_config(r#"{"credHelpers": {"x.io": "nosuch"}}"#);
        let err = cfg.credentials("x.io").unwrap_err().to_string();
        assert!(
            err.contains("docker-credential-nosuch") && err.contains("not installed"),
            "{err}"
        );
        // Other registries do not use the helper.
        assert_eq!(cfg.credentials("y.io").unwrap(), None);
    }

    #[test]
    fn explicit_credentials_win() {
        let (_d, cfg) = with_config(r#"{"auths": {"x.io": {"username": "a", "password": "b"}}}"#);
        let cfg = cfg.with_credentials("https://x.io", basic("c", "d").unwrap());
        assert_eq!(cfg.credentials("x.io").unwrap(), basic("c", "d"));
        assert_eq!(
            format!("{:?}", basic("c", "d").unwrap()),
            "Basic(c, <redacted>)"
        );
    }

    #[test]
    fn keys_normalise() {
        assert_eq!(server_key("docker.io"), DOCKER_HUB_KEY);
        assert_eq!(server_key("h:5000"), "h:5000");
        assert_eq!(normalise_host("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalise_host("http://h:5000/v2/"), "h:5000");
    }
}
