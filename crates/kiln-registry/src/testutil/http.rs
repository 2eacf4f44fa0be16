//! Just enough HTTP/1.1 for the test proxies: one request per connection, bodies by
//! Content-Length, and `Connection: close` everywhere.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A request as a proxy received it.
#[derive(Clone, Debug)]
pub struct ProxyRequest {
    pub method: String,
    /// Path and query as sent.
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl ProxyRequest {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// Decoded query parameters.
    pub fn query(&self) -> Vec<(String, String)> {
        reqwest::Url::parse(&format!("http://x{}", self.target))
            .map(|u| {
                u.query_pairs()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What a proxy does with a request.
pub(crate) enum Action {
    Forward,
    /// Forward, and flip the last byte of a successful response's body.
    ForwardCorrupted,
    Respond(Vec<u8>),
    /// Close the connection without answering.
    Drop,
    /// Send the response headers and half the body, then go silent for a while.
    ForwardStalled,
}

pub(crate) fn read_request(stream: &mut TcpStream) -> Option<ProxyRequest> {
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let method = parts.next()?.to_string();
    let target = parts.next()?.to_string();
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_string(), v.trim().to_string()));
    }
    let mut request = ProxyRequest {
        method,
        target,
        headers,
        body: Vec::new(),
    };
    if let Some(len) = request
        .header("content-length")
        .and_then(|l| l.parse::<usize>().ok())
    {
        let mut body = vec![0u8; len];
        reader.read_exact(&mut body).ok()?;
        request.body = body;
    }
    Some(request)
}

/// `Status` plus headers and body, closing the connection afterwards.
pub(crate) fn response(
    status: u16,
    reason: &str,
    headers: &[(&str, String)],
    body: &[u8],
) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 {status} {reason}\r\n");
    for (k, v) in headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let mut out = out.into_bytes();
    out.extend_from_slice(body);
    out
}

/// Sends the request upstream and returns the raw response.
pub(crate) fn forward(upstream: &str, request: &ProxyRequest) -> std::io::Result<Vec<u8>> {
    let mut up = TcpStream::connect(upstream)?;
    up.set_read_timeout(Some(Duration::from_secs(60)))?;
    let mut head = format!("{} {} HTTP/1.1\r\n", request.method, request.target);
    for (k, v) in &request.headers {
        if k.eq_ignore_ascii_case("connection") {
            continue;
        }
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str("Connection: close\r\n\r\n");
    up.write_all(head.as_bytes())?;
    up.write_all(&request.body)?;
    let mut raw = Vec::new();
    up.read_to_end(&mut raw)?;
    Ok(raw)
}

/// The status code of a raw response.
pub(crate) fn status_of(raw: &[u8]) -> u16 {
    std::str::from_utf8(&raw[..raw.len().min(16)])
        .ok()
        .and_then(|s| s.split_whitespace().nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

/// Flips the last body byte of a raw response, if it has a body.
pub(crate) fn corrupt_body(raw: &mut [u8]) {
    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n")
        && raw.len() > end + 4
    {
        let last = raw.len() - 1;
        raw[last] ^= 0xff;
    }
}

/// A loopback listener serving each connection on its own thread until dropped.
pub(crate) struct Server {
    pub addr: String,
    stop: Arc<AtomicBool>,
}

impl Server {
    pub fn start(
        upstream: String,
        decide: impl Fn(&ProxyRequest) -> Action + Send + Sync + 'static,
    ) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy address").to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let decide = Arc::new(decide);
        let stopping = stop.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(mut stream) = stream else { continue };
                let decide = decide.clone();
                let upstream = upstream.clone();
                std::thread::spawn(move || {
                    let Some(request) = read_request(&mut stream) else {
                        return;
                    };
                    let answer = match decide(&request) {
                        Action::Drop => return,
                        Action::ForwardStalled => {
                            if let Ok(raw) = forward(&upstream, &request) {
                                let _ = stream.write_all(&raw[..raw.len() / 2]);
                                let _ = stream.flush();
                            }
                            std::thread::sleep(Duration::from_secs(30));
                            return;
                        }
                        Action::Respond(raw) => raw,
                        Action::Forward => {
                            forward(&upstream, &request).unwrap_or_else(|e| bad_gateway(&e))
                        }
                        Action::ForwardCorrupted => match forward(&upstream, &request) {
                            Ok(mut raw) => {
                                if status_of(&raw) == 200 {
                                    corrupt_body(&mut raw);
                                }
                                raw
                            }
                            Err(e) => bad_gateway(&e),
                        },
                    };
                    let _ = stream.write_all(&answer);
                    let _ = stream.flush();
                });
            }
        });
        Server { addr, stop }
    }
}

fn bad_gateway(e: &std::io::Error) -> Vec<u8> {
    response(502, "Bad Gateway", &[], e.to_string().as_bytes())
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wakes the accept loop so it sees the flag.
        let _ = TcpStream::connect(&self.addr);
    }
}
