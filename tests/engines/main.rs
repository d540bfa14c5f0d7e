//! Engine kinds and edges: Podman, two real engines at once, an engine
//! restarted, a full listen queue, a socket the exporter may not open.
//!
//! `cargo test --test engines` runs this part alone.

#![allow(clippy::unwrap_used)]

#[path = "../common/mod.rs"]
mod common;

mod engine_busy;
mod engine_restart;
mod engines_live;
mod podman;
mod socket_access;
