//! Stage 1, configuration: what to read and how to serve it, settled before
//! anything binds or connects. Owns the command-line flags ([`cli`]), the
//! configuration file validated into a typed [`Config`] ([`file`](mod@file)), the
//! engine address and its checks ([`engine_address`]), the docker CLI's
//! context store ([`context`]) and which containers a scrape exports
//! ([`selector`]).
//!
//! May use: nothing else of this crate. Every later stage reads it.

pub mod cli;
pub mod context;
pub mod engine_address;
pub mod file;
pub mod selector;

pub use engine_address::{check_docker_host, EngineSource, DEFAULT_DOCKER_HOST};
pub use file::*;
