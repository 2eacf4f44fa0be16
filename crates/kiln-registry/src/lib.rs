//! kiln-registry: the OCI distribution client kiln uses to pull base images, push built
//! images and talk to registry caches. It owns image references, manifest and blob
//! transfer (verified, atomic, retried), registry authentication (docker's config.json,
//! credential helpers, Basic and Bearer token challenges) and `login`/`logout`.
//!
//! It is plumbing: blocking, and independent of the other kiln crates.

pub mod auth;
mod client;
mod error;
pub mod media;
mod reference;
#[cfg(feature = "testutil")]
pub mod testutil;

pub use auth::{AuthConfig, Credentials};
pub use client::{Client, ClientOptions, DEFAULT_CHUNK_SIZE, PushedBlob};
pub use error::RegistryError;
pub use media::{Descriptor, ImageIndex, ImageManifest, Manifest, Platform, PulledImage};
pub use reference::{DOCKER_HUB, DOCKER_HUB_API, Reference, validate_digest, validate_tag};
