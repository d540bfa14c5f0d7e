//! Engine kinds and edges: Docker on cgroup v2 in a VM (`DSE_CGROUP2_HOST`),
//! Podman, two real engines at once, an engine restarted, a full listen
//! queue, a socket the exporter may not open.
//!
//! `cargo test --test engines` runs this part alone.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod cgroup_v2;
mod engine_busy;
mod engine_restart;
mod engines_live;
mod podman;
mod socket_access;
