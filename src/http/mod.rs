//! Stage 5, HTTP: what the handlers share ([`state`]), the routes
//! (`/metrics`, health) in [`routes`], the live view at `/` and its JSON at
//! `/api/containers` ([`live`]), the server around
//! them with its timeouts, TLS, basic auth and graceful shutdown ([`server`]),
//! its limits against hostile clients ([`limits`], [`stall`], [`connection`],
//! [`auth_throttle`]), and the web configuration file ([`web_config`]).
//!
//! May use: every stage below it ([`crate::config`], [`crate::engine`],
//! [`crate::scrape`], [`crate::exposition`]).

pub mod auth_throttle;
pub mod connection;
pub mod limits;
pub mod live;
pub mod routes;
pub mod server;
pub mod stall;
pub mod state;
pub mod web_config;

pub use routes::*;
pub use state::*;
