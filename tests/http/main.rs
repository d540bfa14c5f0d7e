//! Stage 5, HTTP: `--web.config.file` and the hardened server through the
//! real binary.
//!
//! `cargo test --test http` runs this part alone.

#![allow(clippy::unwrap_used)]

mod hostile;
mod live_api;
mod live_browser;
mod live_cost;
mod passthrough;
mod web_security;
