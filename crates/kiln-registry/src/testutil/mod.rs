//! Test support shared with other crates' tests (feature `testutil`): a real
//! `docker-registry` on 127.0.0.1, a bearer token server in front of one, and a
//! fault-injecting proxy. Everything stops when dropped. Failures to start panic: these
//! are for tests only.

mod http;
mod proxies;
mod registry;

pub use http::ProxyRequest;
pub use proxies::{FaultProxy, TOKEN_SERVICE, TokenProxy};
pub use registry::{TestDir, TestRegistry};
