//! The one error type of the crate. Every variant names what was being done and where, so
//! the CLI can print it as is.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("invalid image reference {input:?}: {reason}")]
    InvalidReference { input: String, reason: String },

    #[error("invalid platform {input:?}: {reason} (expected os/arch[/variant], e.g. linux/amd64)")]
    InvalidPlatform { input: String, reason: String },

    #[error("invalid digest {digest:?}: expected sha256:<64 lowercase hex digits>")]
    InvalidDigest { digest: String },

    #[error(
        "{registry}/{repository}: {operation}: HTTP {status}{}",
        registry_message(code, message)
    )]
    Http {
        registry: String,
        repository: String,
        operation: String,
        status: u16,
        /// `code` of the first entry of the registry's `{"errors": [...]}` body.
        code: Option<String>,
        message: Option<String>,
    },

    #[error(
        "{}: {operation}: unauthorized{}; log in with `kiln login {registry}` or check the credentials for it",
        place(registry, repository),
        registry_message(code, message)
    )]
    Unauthorized {
        registry: String,
        repository: String,
        operation: String,
        code: Option<String>,
        message: Option<String>,
    },

    /// The registry could not be reached or the connection failed (after retries).
    #[error("{}: {operation}: {detail}", place(registry, repository))]
    Transport {
        registry: String,
        repository: String,
        operation: String,
        /// The whole cause chain in one line (reqwest's own message alone is vague).
        detail: String,
        #[source]
        source: reqwest::Error,
    },

    #[error(
        "{}: {operation}: reading the response: {source}",
        place(registry, repository)
    )]
    BodyRead {
        registry: String,
        repository: String,
        operation: String,
        #[source]
        source: std::io::Error,
    },

    #[error("{reference}: {what} not found in the registry")]
    NotFound { reference: String, what: String },

    #[error("{what}: content does not match its digest: expected {expected}, got {actual}")]
    DigestMismatch {
        what: String,
        expected: String,
        actual: String,
    },

    #[error("{what}: expected {expected} bytes, got {actual}")]
    SizeMismatch {
        what: String,
        expected: u64,
        actual: u64,
    },

    #[error(
        "{reference}: no image for platform {wanted}; available platforms: {}",
        list_or_none(available)
    )]
    NoMatchingPlatform {
        reference: String,
        wanted: String,
        available: Vec<String>,
    },

    #[error("{what}: {reason}")]
    InvalidManifest { what: String, reason: String },

    #[error("{what}: unsupported media type {media_type:?}")]
    UnsupportedMediaType { what: String, media_type: String },

    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("credentials for {registry}: {reason}")]
    Credentials { registry: String, reason: String },

    #[error("docker config {}: {reason}", path.display())]
    DockerConfig { path: PathBuf, reason: String },

    #[error("setting up the HTTP client: {0}")]
    Setup(String),
}

impl RegistryError {
    /// Whether trying the same thing again may succeed: network failures, server errors
    /// and rate limiting. Client errors never are.
    pub fn is_transient(&self) -> bool {
        match self {
            RegistryError::Transport { .. } | RegistryError::BodyRead { .. } => true,
            RegistryError::Http { status, .. } => *status == 429 || *status >= 500,
            _ => false,
        }
    }

    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> RegistryError {
        RegistryError::Io {
            path: path.into(),
            source,
        }
    }
}

/// `registry/repository`, or just the registry for registry-wide requests.
fn place(registry: &str, repository: &str) -> String {
    if repository.is_empty() {
        registry.to_string()
    } else {
        format!("{registry}/{repository}")
    }
}

fn registry_message(code: &Option<String>, message: &Option<String>) -> String {
    match (code, message) {
        (Some(c), Some(m)) => format!(": {c}: {m}"),
        (Some(c), None) => format!(": {c}"),
        (None, Some(m)) => format!(": {m}"),
        (None, None) => String::new(),
    }
}

fn list_or_none(items: &[String]) -> String {
    if items.is_empty() {
        "none".to_string()
    } else {
        items.join(", ")
    }
}
