//! Proxies in front of a real registry: one that injects faults, one that demands
//! bearer tokens it issued itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use super::http::{Action, ProxyRequest, Server, response};
use crate::Reference;

#[derive(Default)]
struct FaultState {
    drop_next: AtomicU32,
    fail_next: AtomicU32,
    fail_status: AtomicU32,
    /// Seconds for `Retry-After`; `u32::MAX` for none.
    fail_retry_after: AtomicU32,
    corrupt_next: AtomicU32,
    stall_next: AtomicU32,
    paginate_tags: std::sync::atomic::AtomicBool,
    /// Faults hit only requests whose `METHOD target` contains this.
    path_filter: Mutex<String>,
    log: Mutex<Vec<String>>,
}

/// Takes one unit from a fault counter; `u32::MAX` never runs out.
fn take(counter: &AtomicU32) -> bool {
    counter
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| match n {
            0 => None,
            u32::MAX => Some(u32::MAX),
            n => Some(n - 1),
        })
        .is_ok()
}

/// A proxy that passes requests to a registry unless told to misbehave. Faults are
/// applied in this order: dropped connection, stalled response, error status, corrupted
/// blob body.
pub struct FaultProxy {
    server: Server,
    state: Arc<FaultState>,
}

impl FaultProxy {
    /// A proxy for `upstream` (`127.0.0.1:PORT`).
    pub fn start(upstream: &str) -> FaultProxy {
        let state = Arc::new(FaultState {
            fail_retry_after: AtomicU32::new(u32::MAX),
            ..FaultState::default()
        });
        let s = state.clone();
        let up = upstream.to_string();
        let server = Server::start(upstream.to_string(), move |req| {
            if s.paginate_tags.load(Ordering::SeqCst)
                && req.method == "GET"
                && req.path().ends_with("/tags/list")
                && let Some(answer) = paginated_tags(&up, req)
            {
                s.log
                    .lock()
                    .unwrap()
                    .push(format!("{} {}", req.method, req.target));
                return Action::Respond(answer);
            }
            s.log
                .lock()
                .unwrap()
                .push(format!("{} {}", req.method, req.target));
            let filter = s.path_filter.lock().unwrap().clone();
            if !format!("{} {}", req.method, req.target).contains(&filter) {
                return Action::Forward;
            }
            if take(&s.drop_next) {
                return Action::Drop;
            }
            if take(&s.stall_next) {
                return Action::ForwardStalled;
            }
            if take(&s.fail_next) {
                let status = s.fail_status.load(Ordering::SeqCst) as u16;
                let mut headers = vec![("Content-Type", "application/json".to_string())];
                let retry_after = s.fail_retry_after.load(Ordering::SeqCst);
                if retry_after != u32::MAX {
                    headers.push(("Retry-After", retry_after.to_string()));
                }
                let body = br#"{"errors":[{"code":"UNAVAILABLE","message":"injected fault"}]}"#;
                return Action::Respond(response(status, "Injected", &headers, body));
            }
            if req.method == "GET" && req.path().contains("/blobs/sha") && take(&s.corrupt_next) {
                return Action::ForwardCorrupted;
            }
            Action::Forward
        });
        FaultProxy { server, state }
    }

    /// `127.0.0.1:PORT` of the proxy.
    pub fn host(&self) -> &str {
        &self.server.addr
    }

    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse(&format!("{}/{name}", self.host())).expect("valid test reference")
    }

    /// Faults only hit requests whose `METHOD target` contains `part`, e.g.
    /// `"PATCH /v2/app/blobs/uploads/"` (default: all).
    pub fn only_requests_containing(&self, part: &str) {
        *self.state.path_filter.lock().unwrap() = part.to_string();
    }

    /// Closes the next `n` connections after reading the request, without answering.
    pub fn drop_connections(&self, n: u32) {
        self.state.drop_next.store(n, Ordering::SeqCst);
    }

    /// Answers the next `n` requests with `status`, and `Retry-After` if given.
    pub fn fail_requests(&self, n: u32, status: u16, retry_after: Option<u32>) {
        self.state
            .fail_status
            .store(status as u32, Ordering::SeqCst);
        self.state
            .fail_retry_after
            .store(retry_after.unwrap_or(u32::MAX), Ordering::SeqCst);
        self.state.fail_next.store(n, Ordering::SeqCst);
    }

    /// Sends half of each of the next `n` responses and then nothing for 30 seconds.
    pub fn stall_requests(&self, n: u32) {
        self.state.stall_next.store(n, Ordering::SeqCst);
    }

    /// Flips a byte in the next `n` blob downloads; `u32::MAX` for all of them.
    pub fn corrupt_blobs(&self, n: u32) {
        self.state.corrupt_next.store(n, Ordering::SeqCst);
    }

    /// Answers tag lists page by page (`?n=` and `?last=`, with a `Link` header to the
    /// next page) from the registry's full, sorted list. docker-registry 2.8 ignores `n`
    /// for tags; newer registries and Docker Hub paginate like this.
    pub fn paginate_tags(&self, on: bool) {
        self.state.paginate_tags.store(on, Ordering::SeqCst);
    }

    /// `METHOD target` of every request seen so far.
    pub fn requests(&self) -> Vec<String> {
        self.state.log.lock().unwrap().clone()
    }
}

fn paginated_tags(upstream: &str, req: &ProxyRequest) -> Option<Vec<u8>> {
    let query = req.query();
    let n: usize = query.iter().find(|(k, _)| k == "n")?.1.parse().ok()?;
    let last = query
        .iter()
        .find(|(k, _)| k == "last")
        .map(|(_, v)| v.clone());
    let full = ProxyRequest {
        target: req.path().to_string(),
        ..req.clone()
    };
    let raw = super::http::forward(upstream, &full).ok()?;
    if super::http::status_of(&raw) != 200 {
        return Some(raw);
    }
    let body_start = raw.windows(4).position(|w| w == b"\r\n\r\n")? + 4;
    let mut list: serde_json::Value = serde_json::from_slice(&raw[body_start..]).ok()?;
    let mut tags: Vec<String> = serde_json::from_value(list["tags"].take()).unwrap_or_default();
    tags.sort();
    let rest: Vec<String> = tags
        .into_iter()
        .filter(|t| last.as_ref().is_none_or(|l| t > l))
        .collect();
    let page: Vec<String> = rest.iter().take(n).cloned().collect();
    list["tags"] = serde_json::json!(page);
    let mut headers = vec![("Content-Type", "application/json".to_string())];
    if rest.len() > n
        && let Some(l) = page.last()
    {
        headers.push((
            "Link",
            format!("<{}?n={n}&last={l}>; rel=\"next\"", req.path()),
        ));
    }
    Some(response(200, "OK", &headers, list.to_string().as_bytes()))
}

struct TokenState {
    addr: Mutex<String>,
    credentials: Option<(String, String)>,
    issued: Mutex<HashMap<String, Vec<String>>>,
    token_requests: AtomicUsize,
    registry_requests: AtomicUsize,
    unauthorized: AtomicUsize,
    next: AtomicUsize,
}

/// A bearer-token registry built from a plain one: it answers `/token` itself and passes
/// `/v2/` requests on only with a token it issued for the right scope, else it answers
/// 401 with a `Bearer realm=...,service=...,scope=...` challenge.
pub struct TokenProxy {
    server: Server,
    state: Arc<TokenState>,
}

pub const TOKEN_SERVICE: &str = "kiln-test-registry";

impl TokenProxy {
    /// Issues tokens to anyone.
    pub fn start(upstream: &str) -> TokenProxy {
        TokenProxy::launch(upstream, None)
    }

    /// Issues tokens only to this user (basic auth at the token endpoint).
    pub fn start_with_user(upstream: &str, user: &str, password: &str) -> TokenProxy {
        TokenProxy::launch(upstream, Some((user.to_string(), password.to_string())))
    }

    fn launch(upstream: &str, credentials: Option<(String, String)>) -> TokenProxy {
        let state = Arc::new(TokenState {
            addr: Mutex::new(String::new()),
            credentials,
            issued: Mutex::default(),
            token_requests: AtomicUsize::new(0),
            registry_requests: AtomicUsize::new(0),
            unauthorized: AtomicUsize::new(0),
            next: AtomicUsize::new(1),
        });
        let s = state.clone();
        let server = Server::start(upstream.to_string(), move |req| s.handle(req));
        *state.addr.lock().unwrap() = server.addr.clone();
        TokenProxy { server, state }
    }

    pub fn host(&self) -> &str {
        &self.server.addr
    }

    pub fn reference(&self, name: &str) -> Reference {
        Reference::parse(&format!("{}/{name}", self.host())).expect("valid test reference")
    }

    /// Requests to the token endpoint so far.
    pub fn token_requests(&self) -> usize {
        self.state.token_requests.load(Ordering::SeqCst)
    }

    /// Requests to `/v2/` so far, authorised or not.
    pub fn registry_requests(&self) -> usize {
        self.state.registry_requests.load(Ordering::SeqCst)
    }

    /// `/v2/` requests answered 401.
    pub fn unauthorized_answers(&self) -> usize {
        self.state.unauthorized.load(Ordering::SeqCst)
    }

    /// Scopes of every token issued, in order.
    pub fn issued_scopes(&self) -> Vec<Vec<String>> {
        let issued = self.state.issued.lock().unwrap();
        let mut tokens: Vec<(&String, &Vec<String>)> = issued.iter().collect();
        tokens.sort_by_key(|(t, _)| t[4..].parse::<usize>().unwrap_or(0));
        tokens.into_iter().map(|(_, s)| s.clone()).collect()
    }
}

impl TokenState {
    fn handle(&self, req: &ProxyRequest) -> Action {
        if req.path() == "/token" {
            return self.issue(req);
        }
        self.registry_requests.fetch_add(1, Ordering::SeqCst);
        let needed = needed_scope(req);
        let token = req
            .header("authorization")
            .and_then(|a| a.strip_prefix("Bearer "))
            .map(str::to_string);
        let allowed = token.is_some_and(|t| {
            self.issued
                .lock()
                .unwrap()
                .get(&t)
                .is_some_and(|scopes| match &needed {
                    None => true,
                    Some((repo, action)) => scopes.iter().any(|s| grants(s, repo, action)),
                })
        });
        if allowed {
            return Action::Forward;
        }
        self.unauthorized.fetch_add(1, Ordering::SeqCst);
        let addr = self.addr.lock().unwrap().clone();
        let mut challenge =
            format!("Bearer realm=\"http://{addr}/token\",service=\"{TOKEN_SERVICE}\"");
        if let Some((repo, action)) = &needed {
            let actions = if action == "push" {
                "pull,push"
            } else {
                "pull"
            };
            challenge.push_str(&format!(",scope=\"repository:{repo}:{actions}\""));
        }
        Action::Respond(response(
            401,
            "Unauthorized",
            &[
                ("WWW-Authenticate", challenge),
                ("Content-Type", "application/json".into()),
            ],
            br#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#,
        ))
    }

    fn issue(&self, req: &ProxyRequest) -> Action {
        self.token_requests.fetch_add(1, Ordering::SeqCst);
        if let Some((user, password)) = &self.credentials {
            let expected = format!("Basic {}", BASE64.encode(format!("{user}:{password}")));
            if req.header("authorization") != Some(expected.as_str()) {
                return Action::Respond(response(
                    401,
                    "Unauthorized",
                    &[("Content-Type", "application/json".into())],
                    br#"{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials for the token server"}]}"#,
                ));
            }
        }
        let query = req.query();
        if !query
            .iter()
            .any(|(k, v)| k == "service" && v == TOKEN_SERVICE)
        {
            return Action::Respond(response(400, "Bad Request", &[], b"wrong service"));
        }
        let scopes: Vec<String> = query
            .into_iter()
            .filter(|(k, _)| k == "scope")
            .map(|(_, v)| v)
            .collect();
        let token = format!("tok-{}", self.next.fetch_add(1, Ordering::SeqCst));
        self.issued.lock().unwrap().insert(token.clone(), scopes);
        let body = format!(r#"{{"access_token":"{token}","expires_in":300}}"#);
        Action::Respond(response(
            200,
            "OK",
            &[("Content-Type", "application/json".into())],
            body.as_bytes(),
        ))
    }
}

/// `(repository, "pull" | "push")` a `/v2/...` request needs; `None` for `/v2/` itself.
fn needed_scope(req: &ProxyRequest) -> Option<(String, String)> {
    let rest = req.path().strip_prefix("/v2/")?;
    let repo_end = ["/manifests/", "/blobs/", "/tags/"]
        .iter()
        .filter_map(|m| rest.find(m))
        .min()?;
    let action = if req.method == "GET" || req.method == "HEAD" {
        "pull"
    } else {
        "push"
    };
    Some((rest[..repo_end].to_string(), action.to_string()))
}

/// Whether scope `repository:NAME:ACTIONS` grants `action` on `repo`.
fn grants(scope: &str, repo: &str, action: &str) -> bool {
    let Some(rest) = scope.strip_prefix("repository:") else {
        return false;
    };
    let Some((name, actions)) = rest.rsplit_once(':') else {
        return false;
    };
    name == repo && actions.split(',').any(|a| a == action || a == "*")
}
