//! Registry authentication: where credentials come from (docker's config.json and
//! credential helpers), `WWW-Authenticate` challenges, and login/logout.

mod challenge;
mod config;
mod login;

pub use challenge::{Challenge, parse_challenges};
pub use config::{AuthConfig, Credentials, DOCKER_HUB_KEY, normalise_host, server_key};
pub use login::{Stored, login, logout};
