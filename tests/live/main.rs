//! The live suite: the exporter against the engine under test
//! (`DSE_ENGINE_HOST`, else this machine's), compared with `docker stats` and
//! the cgroup's own files. `scripts/test` runs it once per engine.
//!
//! `cargo test --test live` runs this part alone.

#![allow(clippy::unwrap_used)]

mod engine;
mod engine_tls;
mod faults;
mod kernel;
mod lifecycle;
