//! Stage 1, configuration: flags, config files and docker contexts, through
//! the binary and the library; no engine needed.
//!
//! `cargo test --test config` runs this part alone.

#![allow(clippy::unwrap_used)]

mod cli;
mod docker_context;
