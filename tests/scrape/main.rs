//! Stage 3, the scrape, against recorded answers and scripted engines (paused
//! tokio time): rounds, coalescing, call limits, several engines, decoding;
//! no engine needed.
//!
//! `cargo test --test scrape` runs this part alone.

#![allow(clippy::unwrap_used)]

mod decode;
mod engines;
mod scrape_logic;
