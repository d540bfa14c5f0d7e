//! Stage 4, exposition: a [`crate::scrape::Snapshot`] encoded as Prometheus
//! text or OpenMetrics. Owns the metric table ([`metrics`]), the collector
//! that walks it ([`collector`]), the choice of format from `Accept`
//! ([`format`](mod@format)), the answer sent in pieces ([`answer`]) and the
//! snapshot as JSON for the live view and scripts ([`json`]).
//!
//! May use: [`crate::config`], [`crate::engine`] and [`crate::scrape`].

pub mod answer;
pub mod collector;
pub mod format;
pub mod json;
pub mod metrics;
