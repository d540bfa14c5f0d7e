//! What ships: the image and compose file (also in a Docker Desktop-shaped
//! VM), a Swarm global service, a real Prometheus scraping the exporter, and
//! the scripts that build and bootstrap.
//!
//! `cargo test --test deploy` runs this part alone.

#![allow(clippy::unwrap_used)]

mod arm64;
mod debian;
mod debian_mirror;
mod desktop_vm;
mod packaging;
mod prometheus;
mod release;
mod rust_target;
mod swarm;
