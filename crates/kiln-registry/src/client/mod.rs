//! The registry client: options, shared state and URL building. Transfers live in
//! `manifests` and `blobs`; retries and authentication in `transport`.

mod blobs;
mod manifests;
mod transport;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::auth::{AuthConfig, Challenge, Credentials};
use crate::{Reference, RegistryError};

pub use blobs::PushedBlob;
pub(crate) use transport::Call;

/// Blobs up to this size are uploaded in one request, larger ones in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 8 * 1024 * 1024;

#[derive(Clone, Debug)]
pub struct ClientOptions {
    pub auth: AuthConfig,
    /// Registries (`host` or `host:port`) spoken to over plain HTTP. Loopback hosts
    /// (localhost, 127.0.0.0/8, ::1) always are, as with Docker.
    pub insecure: Vec<String>,
    /// How often a failed request (connection error, timeout, 5xx, 429) or a corrupt
    /// download is tried again.
    pub max_retries: u32,
    /// First retry delay; doubles on each retry up to `retry_max_delay`.
    pub retry_base_delay: Duration,
    pub retry_max_delay: Duration,
    pub user_agent: String,
    /// Monolithic upload threshold and chunk size for larger blobs.
    pub chunk_size: u64,
    /// Limit for requests that carry no blob (manifests, tokens, tag lists).
    pub request_timeout: Duration,
    pub connect_timeout: Duration,
    /// Longest wait for the next bytes of any response; a stalled transfer fails (and is
    /// retried) instead of hanging. Blob transfers have no overall limit.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            auth: AuthConfig::anonymous(),
            insecure: Vec::new(),
            max_retries: 4,
            retry_base_delay: Duration::from_millis(100),
            retry_max_delay: Duration::from_secs(5),
            user_agent: format!("kiln/{}", env!("CARGO_PKG_VERSION")),
            chunk_size: DEFAULT_CHUNK_SIZE,
            request_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(60),
        }
    }
}

/// A client for OCI distribution registries. Cheap to clone; clones share connections,
/// learned auth challenges and cached tokens.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::blocking::Client,
    options: ClientOptions,
    /// The challenge each registry answered with, so later requests authenticate up front.
    challenges: Mutex<HashMap<String, Challenge>>,
    /// Bearer tokens by (registry, scopes).
    tokens: Mutex<HashMap<(String, String), transport::CachedToken>>,
    /// Credentials by registry, resolved once (helpers are slow).
    credentials: Mutex<HashMap<String, Option<Credentials>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("insecure", &self.inner.options.insecure)
            .finish_non_exhaustive()
    }
}

impl Client {
    pub fn new(options: ClientOptions) -> Result<Client, RegistryError> {
        if options.chunk_size == 0 {
            return Err(RegistryError::Setup(
                "chunk_size must be at least 1 byte".into(),
            ));
        }
        // A blocking client's own timeout bounds each wait separately: for the response
        // head and then for every read of the body. That makes it a stall timeout, so blob
        // transfers may take as long as they need while they make progress. Small requests
        // add an overall limit of their own (`request_timeout`).
        let http = reqwest::blocking::Client::builder()
            .user_agent(options.user_agent.clone())
            .connect_timeout(options.connect_timeout)
            .timeout(options.read_timeout)
            .build()
            .map_err(|e| RegistryError::Setup(e.to_string()))?;
        Ok(Client {
            inner: Arc::new(Inner {
                http,
                options,
                challenges: Mutex::default(),
                tokens: Mutex::default(),
                credentials: Mutex::default(),
            }),
        })
    }

    pub fn options(&self) -> &ClientOptions {
        &self.inner.options
    }

    /// Whether a registry is spoken to over plain HTTP.
    pub fn is_insecure(&self, registry: &str) -> bool {
        is_loopback(registry)
            || self
                .inner
                .options
                .insecure
                .iter()
                .any(|h| h.trim() == registry || h.trim() == host_part(registry))
    }

    /// Checks that the registry answers `GET /v2/`, authenticating as it asks (this is
    /// how `login` verifies credentials).
    pub fn ping(&self, registry: &str) -> Result<(), RegistryError> {
        let r = Reference {
            registry: registry.to_string(),
            repository: String::new(),
            tag: None,
            digest: None,
        };
        let mut call = Call::pull(self, &r, "checking the registry API (GET /v2/)".into());
        call.scopes.clear();
        let url = self.base_url(&r);
        let reply = self.send_read(&call, &|http| http.get(&url))?;
        if !reply.status.is_success() {
            return Err(self.status_error(&call, reply.status, &reply.body));
        }
        Ok(())
    }

    /// `http(s)://HOST/v2/`.
    pub(crate) fn base_url(&self, r: &Reference) -> String {
        let scheme = if self.is_insecure(&r.registry) {
            "http"
        } else {
            "https"
        };
        format!("{scheme}://{}/v2/", r.api_host())
    }

    pub(crate) fn repo_url(&self, r: &Reference, rest: &str) -> String {
        format!("{}{}/{rest}", self.base_url(r), r.repository)
    }

    /// Resolves a `Location` or `Link` target against the registry's base URL.
    pub(crate) fn resolve(
        &self,
        r: &Reference,
        target: &str,
    ) -> Result<reqwest::Url, RegistryError> {
        let base = reqwest::Url::parse(&self.base_url(r))
            .map_err(|e| RegistryError::Setup(format!("bad registry URL: {e}")))?;
        base.join(target)
            .map_err(|e| RegistryError::InvalidManifest {
                what: r.name(),
                reason: format!("the registry sent an unusable URL {target:?}: {e}"),
            })
    }
}

/// `host` of `host:port`, `[v6]:port` or a bare host.
fn host_part(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((h, p)) if p.chars().all(|c| c.is_ascii_digit()) => h,
        _ => registry,
    }
}

fn is_loopback(registry: &str) -> bool {
    let host = host_part(registry);
    host == "localhost" || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_can_be_shared_between_threads() {
        fn shareable<T: Send + Sync + Clone>() {}
        shareable::<Client>();
    }

    #[test]
    fn loopback_and_listed_hosts_are_plain_http() {
        let c = Client::new(ClientOptions {
            insecure: vec!["reg.lan:5000".into(), "other.lan".into()],
            ..ClientOptions::default()
        })
        .unwrap();
        for h in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5000",
            "127.1.2.3",
            "[::1]:5000",
            "reg.lan:5000",
            "other.lan:80",
        ] {
            assert!(c.is_insecure(h), "{h}");
        }
        for h in [
            "reg.lan",
            "reg.lan:5001",
            "example.com",
            "docker.io",
            "10.0.0.1:5000",
        ] {
            assert!(!c.is_insecure(h), "{h}");
        }
        let r = Reference::parse("busybox").unwrap();
        assert_eq!(c.base_url(&r), "https://registry-1.docker.io/v2/");
        let r = Reference::parse("127.0.0.1:5000/a/b").unwrap();
        assert_eq!(
            c.repo_url(&r, "tags/list"),
            "http://127.0.0.1:5000/v2/a/b/tags/list"
        );
        assert_eq!(
            c.resolve(&r, "/v2/a/b/blobs/uploads/x?_state=1")
                .unwrap()
                .as_str(),
            "http://127.0.0.1:5000/v2/a/b/blobs/uploads/x?_state=1"
        );
    }
}
