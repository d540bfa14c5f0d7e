//! Engine kinds and edges: Podman 4 here and Podman 5 in the cgroup v2 VM,
//! two real engines at once, an engine restarted, a full listen queue, a
//! socket the exporter may not open.
//!
//! `cargo test --test engines` runs this part alone.

#![allow(clippy::unwrap_used)]

mod engine_busy;
mod engine_restart;
mod engines_live;
mod podman;
mod podman5;
mod socket_access;
