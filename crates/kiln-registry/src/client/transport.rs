//! Sending requests: authentication (challenges, basic credentials, bearer tokens with a
//! cache) and retries with exponential backoff.

use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use reqwest::StatusCode;
use reqwest::blocking::{RequestBuilder, Response};
use reqwest::header::{AUTHORIZATION, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use serde::Deserialize;

use super::Client;
use crate::auth::{Challenge, Credentials, parse_challenges};
use crate::{Reference, RegistryError};

/// What a request is for: where errors point and which token scopes it needs.
pub(crate) struct Call<'a> {
    pub reference: &'a Reference,
    pub operation: String,
    /// Token scopes, e.g. `repository:app:pull,push`.
    pub scopes: Vec<String>,
    /// Whether the request may simply be sent again (false for upload chunks).
    pub retry: bool,
    /// Whole-request limit; `None` for blob transfers.
    pub timeout: Option<Duration>,
}

impl<'a> Call<'a> {
    pub fn pull(client: &Client, r: &'a Reference, operation: String) -> Call<'a> {
        Call {
            reference: r,
            operation,
            scopes: vec![format!("repository:{}:pull", r.repository)],
            retry: true,
            timeout: Some(client.inner.options.request_timeout),
        }
    }

    pub fn push(client: &Client, r: &'a Reference, operation: String) -> Call<'a> {
        Call {
            scopes: vec![format!("repository:{}:pull,push", r.repository)],
            ..Call::pull(client, r, operation)
        }
    }

    pub fn blob_transfer(mut self) -> Call<'a> {
        self.timeout = None;
        self
    }

    pub fn no_retry(mut self) -> Call<'a> {
        self.retry = false;
        self
    }
}

/// A response read in full.
pub(crate) struct Reply {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

pub(crate) struct CachedToken {
    value: String,
    valid_until: Instant,
}

#[derive(Deserialize)]
struct TokenReply {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

/// Tokens that do not say how long they last are good for 60 seconds (distribution spec).
const DEFAULT_TOKEN_LIFETIME: u64 = 60;

enum Got {
    Streaming(Response),
    Read(Reply),
}

impl Client {
    /// Sends a request, authenticating and retrying as needed, and reads the whole body.
    /// Any status comes back except 401 (an `Unauthorized` error) and, once retries are
    /// spent, 429 and 5xx come back too.
    pub(crate) fn send_read(
        &self,
        call: &Call,
        build: &dyn Fn(&reqwest::blocking::Client) -> RequestBuilder,
    ) -> Result<Reply, RegistryError> {
        match self.run(call, build, true)? {
            Got::Read(r) => Ok(r),
            Got::Streaming(_) => unreachable!("run reads the body when asked to"),
        }
    }

    /// Like `send_read`, leaving the body to stream.
    pub(crate) fn send(
        &self,
        call: &Call,
        build: &dyn Fn(&reqwest::blocking::Client) -> RequestBuilder,
    ) -> Result<Response, RegistryError> {
        match self.run(call, build, false)? {
            Got::Streaming(r) => Ok(r),
            Got::Read(_) => unreachable!("run streams when asked to"),
        }
    }

    fn run(
        &self,
        call: &Call,
        build: &dyn Fn(&reqwest::blocking::Client) -> RequestBuilder,
        read_body: bool,
    ) -> Result<Got, RegistryError> {
        let options = &self.inner.options;
        let mut attempt = 0u32;
        let mut auth_refreshed = false;
        loop {
            let auth = self.authorization(call)?;
            let mut request = build(&self.inner.http);
            if let Some(a) = &auth {
                request = request.header(AUTHORIZATION, a);
            }
            if let Some(t) = call.timeout {
                request = request.timeout(t);
            }
            let may_retry = call.retry && attempt < options.max_retries;
            let response = match request.send() {
                Ok(r) => r,
                // A request that could not even be built fails the same way every time.
                Err(e) if may_retry && !e.is_builder() => {
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                    continue;
                }
                Err(e) => return Err(self.transport_error(call, e)),
            };
            let status = response.status();
            if status == StatusCode::UNAUTHORIZED {
                let challenges: Vec<Challenge> = response
                    .headers()
                    .get_all(WWW_AUTHENTICATE)
                    .iter()
                    .filter_map(|v| v.to_str().ok())
                    .flat_map(parse_challenges)
                    .collect();
                if !auth_refreshed && let Some(challenge) = challenges.into_iter().next() {
                    auth_refreshed = true;
                    if self.learn_challenge(call, challenge)? {
                        continue;
                    }
                }
                let body = response.bytes().map(|b| b.to_vec()).unwrap_or_default();
                let (code, message) = error_message(&body);
                return Err(RegistryError::Unauthorized {
                    registry: call.reference.registry.clone(),
                    repository: call.reference.repository.clone(),
                    operation: call.operation.clone(),
                    code,
                    message,
                });
            }
            if (status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error()) && may_retry {
                let delay = retry_after(response.headers())
                    .map(|d| d.min(options.retry_max_delay))
                    .unwrap_or_else(|| self.backoff(attempt));
                drop(response);
                std::thread::sleep(delay);
                attempt += 1;
                continue;
            }
            if !read_body {
                return Ok(Got::Streaming(response));
            }
            let headers = response.headers().clone();
            match response.bytes() {
                Ok(body) => {
                    return Ok(Got::Read(Reply {
                        status,
                        headers,
                        body: body.to_vec(),
                    }));
                }
                Err(_) if may_retry => {
                    std::thread::sleep(self.backoff(attempt));
                    attempt += 1;
                }
                Err(e) => return Err(self.transport_error(call, e)),
            }
        }
    }

    /// Delay before retry number `attempt + 1`: base * 2^attempt, capped.
    pub(crate) fn backoff(&self, attempt: u32) -> Duration {
        let o = &self.inner.options;
        o.retry_base_delay
            .saturating_mul(1u32 << attempt.min(16))
            .min(o.retry_max_delay)
    }

    pub(crate) fn transport_error(&self, call: &Call, e: reqwest::Error) -> RegistryError {
        let e = e.without_url();
        let mut detail = e.to_string();
        let mut cause = std::error::Error::source(&e);
        while let Some(c) = cause {
            let text = c.to_string();
            if !detail.contains(&text) {
                detail.push_str(": ");
                detail.push_str(&text);
            }
            cause = c.source();
        }
        RegistryError::Transport {
            registry: call.reference.registry.clone(),
            repository: call.reference.repository.clone(),
            operation: call.operation.clone(),
            detail,
            source: e,
        }
    }

    /// The error for a response the caller did not expect.
    pub(crate) fn status_error(
        &self,
        call: &Call,
        status: StatusCode,
        body: &[u8],
    ) -> RegistryError {
        let (code, message) = error_message(body);
        RegistryError::Http {
            registry: call.reference.registry.clone(),
            repository: call.reference.repository.clone(),
            operation: call.operation.clone(),
            status: status.as_u16(),
            code,
            message,
        }
    }

    fn credentials(&self, registry: &str) -> Result<Option<Credentials>, RegistryError> {
        if let Some(c) = self
            .inner
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(registry)
        {
            return Ok(c.clone());
        }
        let found = self.inner.options.auth.credentials(registry)?;
        self.inner
            .credentials
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(registry.to_string(), found.clone());
        Ok(found)
    }

    /// Records how a registry wants to be authenticated. Returns whether sending again
    /// can help (false: Basic is asked for and we have no credentials).
    fn learn_challenge(&self, call: &Call, challenge: Challenge) -> Result<bool, RegistryError> {
        let registry = &call.reference.registry;
        let has_credentials = self.credentials(registry)?.is_some();
        let useful = match &challenge {
            Challenge::Basic { .. } => has_credentials,
            Challenge::Bearer { .. } => true,
        };
        self.inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert(registry.clone(), challenge);
        // A token the registry refused is of no further use.
        let key = (registry.clone(), call.scopes.join(" "));
        self.inner
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(&key);
        Ok(useful)
    }

    /// The `Authorization` value for a call, fetching a token when the registry wants one.
    fn authorization(&self, call: &Call) -> Result<Option<String>, RegistryError> {
        let registry = &call.reference.registry;
        let challenge = self
            .inner
            .challenges
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(registry)
            .cloned();
        match challenge {
            None => Ok(None),
            Some(Challenge::Basic { .. }) => Ok(match self.credentials(registry)? {
                Some(Credentials::Basic { username, password }) => Some(format!(
                    "Basic {}",
                    BASE64.encode(format!("{username}:{password}"))
                )),
                _ => None,
            }),
            Some(Challenge::Bearer { realm, service, .. }) => {
                let key = (registry.clone(), call.scopes.join(" "));
                if let Some(t) = self
                    .inner
                    .tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .get(&key)
                    && t.valid_until > Instant::now()
                {
                    return Ok(Some(format!("Bearer {}", t.value)));
                }
                let token = self.fetch_token(call, &realm, service.as_deref())?;
                let value = format!("Bearer {}", token.value);
                self.inner
                    .tokens
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(key, token);
                Ok(Some(value))
            }
        }
    }

    /// Asks a token server for a bearer token covering the call's scopes.
    fn fetch_token(
        &self,
        call: &Call,
        realm: &str,
        service: Option<&str>,
    ) -> Result<CachedToken, RegistryError> {
        let registry = &call.reference.registry;
        let credentials = self.credentials(registry)?;
        let operation = format!("{}: fetching a token from {realm}", call.operation);
        let token_call = Call {
            reference: call.reference,
            operation: operation.clone(),
            scopes: Vec::new(),
            retry: true,
            timeout: Some(self.inner.options.request_timeout),
        };
        let mut url = reqwest::Url::parse(realm).map_err(|e| RegistryError::Unauthorized {
            registry: registry.clone(),
            repository: call.reference.repository.clone(),
            operation: operation.clone(),
            code: None,
            message: Some(format!("the registry named an invalid token realm: {e}")),
        })?;
        let reply = match &credentials {
            Some(Credentials::IdentityToken { token, .. }) => {
                // OAuth2 refresh-token grant, as docker does with an identity token.
                let mut form: Vec<(&str, String)> = vec![
                    ("grant_type", "refresh_token".into()),
                    ("refresh_token", token.clone()),
                    ("client_id", "kiln".into()),
                ];
                if let Some(s) = service {
                    form.push(("service", s.to_string()));
                }
                if !call.scopes.is_empty() {
                    form.push(("scope", call.scopes.join(" ")));
                }
                let body = form_encode(&form);
                self.raw_send(&token_call, &|http| {
                    http.post(url.clone())
                        .header("Content-Type", "application/x-www-form-urlencoded")
                        .body(body.clone())
                })?
            }
            _ => {
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(s) = service {
                        q.append_pair("service", s);
                    }
                    for s in &call.scopes {
                        q.append_pair("scope", s);
                    }
                }
                if url.query() == Some("") {
                    url.set_query(None);
                }
                let basic = match &credentials {
                    Some(Credentials::Basic { username, password }) => {
                        Some((username.clone(), password.clone()))
                    }
                    _ => None,
                };
                self.raw_send(&token_call, &|http| {
                    let r = http.get(url.clone());
                    match &basic {
                        Some((u, p)) => r.basic_auth(u, Some(p)),
                        None => r,
                    }
                })?
            }
        };
        if reply.status == StatusCode::UNAUTHORIZED || reply.status == StatusCode::FORBIDDEN {
            let (code, message) = error_message(&reply.body);
            return Err(RegistryError::Unauthorized {
                registry: registry.clone(),
                repository: call.reference.repository.clone(),
                operation,
                code,
                message,
            });
        }
        if !reply.status.is_success() {
            return Err(self.status_error(&token_call, reply.status, &reply.body));
        }
        let parsed: TokenReply =
            serde_json::from_slice(&reply.body).map_err(|e| RegistryError::Unauthorized {
                registry: registry.clone(),
                repository: call.reference.repository.clone(),
                operation: operation.clone(),
                code: None,
                message: Some(format!("the token server's answer is not valid JSON: {e}")),
            })?;
        let value = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| RegistryError::Unauthorized {
                registry: registry.clone(),
                repository: call.reference.repository.clone(),
                operation: operation.clone(),
                code: None,
                message: Some("the token server answered without a token".into()),
            })?;
        let lifetime = parsed.expires_in.unwrap_or(DEFAULT_TOKEN_LIFETIME).max(1);
        // Renew a little early so a token does not expire in flight.
        let usable = lifetime - lifetime / 10;
        Ok(CachedToken {
            value,
            valid_until: Instant::now() + Duration::from_secs(usable),
        })
    }

    /// Sends without registry authentication (token servers), with retries.
    fn raw_send(
        &self,
        call: &Call,
        build: &dyn Fn(&reqwest::blocking::Client) -> RequestBuilder,
    ) -> Result<Reply, RegistryError> {
        let mut attempt = 0;
        loop {
            let may_retry = attempt < self.inner.options.max_retries;
            let mut request = build(&self.inner.http);
            if let Some(t) = call.timeout {
                request = request.timeout(t);
            }
            let result = request.send().and_then(|r| {
                let status = r.status();
                let headers = r.headers().clone();
                r.bytes().map(|b| Reply {
                    status,
                    headers,
                    body: b.to_vec(),
                })
            });
            match result {
                Ok(reply)
                    if (reply.status == StatusCode::TOO_MANY_REQUESTS
                        || reply.status.is_server_error())
                        && may_retry =>
                {
                    let delay = retry_after(&reply.headers)
                        .map(|d| d.min(self.inner.options.retry_max_delay))
                        .unwrap_or_else(|| self.backoff(attempt));
                    std::thread::sleep(delay);
                }
                Ok(reply) => return Ok(reply),
                Err(_) if may_retry => std::thread::sleep(self.backoff(attempt)),
                Err(e) => return Err(self.transport_error(call, e)),
            }
            attempt += 1;
        }
    }
}

/// `Retry-After` in seconds (the HTTP-date form is treated as "soon").
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let v = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    v.parse::<u64>().ok().map(Duration::from_secs)
}

/// `code` and `message` of the first entry of a registry error body.
pub(crate) fn error_message(body: &[u8]) -> (Option<String>, Option<String>) {
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(b) => match b.errors.into_iter().next() {
            Some(e) => (e.code, e.message.filter(|m| !m.is_empty())),
            None => (None, None),
        },
        Err(_) => {
            let text = String::from_utf8_lossy(body);
            let text = text.trim();
            if text.is_empty() || text.len() > 200 {
                (None, None)
            } else {
                (None, Some(text.to_string()))
            }
        }
    }
}

fn form_encode(pairs: &[(&str, String)]) -> String {
    let mut url = reqwest::Url::parse("http://x/").expect("static URL");
    url.query_pairs_mut()
        .extend_pairs(pairs.iter().map(|(k, v)| (*k, v.as_str())));
    url.query().unwrap_or("").to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_error_bodies() {
        let (c, m) = error_message(
            br#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown","detail":{}}]}"#,
        );
        assert_eq!(c.as_deref(), Some("MANIFEST_UNKNOWN"));
        assert_eq!(m.as_deref(), Some("manifest unknown"));
        assert_eq!(
            error_message(b"plain text").1.as_deref(),
            Some("plain text")
        );
        assert_eq!(error_message(b""), (None, None));
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let c = Client::new(crate::ClientOptions::default()).unwrap();
        assert_eq!(c.backoff(0), Duration::from_millis(100));
        assert_eq!(c.backoff(2), Duration::from_millis(400));
        assert_eq!(c.backoff(30), Duration::from_secs(5));
    }

    #[test]
    fn form_encoding() {
        assert_eq!(
            form_encode(&[("a", "x y".into()), ("b", "r:n:pull".into())]),
            "a=x+y&b=r%3An%3Apull"
        );
    }
}
