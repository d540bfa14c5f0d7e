//! Stage 4, exposition: golden `/metrics` files from recorded fixtures
//! (linted with promtool) and the README's metric table; no engine needed.
//!
//! `cargo test --test exposition` runs this part alone.

#![allow(clippy::unwrap_used)]

mod golden;
mod readme;
