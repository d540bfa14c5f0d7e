//! Stage 3, the scrape: one round of engine calls per scrape, turned into an
//! immutable [`Snapshot`]. Owns the round itself ([`round`]), single flight
//! per selection ([`coalesce`]) and the deadline it shares ([`deadline`]),
//! what is remembered between rounds ([`state`]), one stats answer as plain
//! numbers ([`sample`]), CPU windows ([`cpu`]), cgroup ids ([`cgroup`]),
//! writable-layer sizes ([`fs_usage`]), what an inspect answer says of a
//! container's life ([`lifecycle`]), the list call's uptime ([`uptime`]) and
//! the engine's time stamps ([`timestamp`]), and a rootless engine's missing
//! cgroup controllers ([`delegation`]).
//!
//! May use: [`crate::config`] and [`crate::engine`].

pub mod cgroup;
pub mod coalesce;
pub mod cpu;
pub mod deadline;
pub mod delegation;
pub mod fs_usage;
pub mod in_flight;
pub mod lifecycle;
pub mod round;
pub mod sample;
pub mod state;
pub mod timestamp;
pub mod uptime;

pub use round::*;
