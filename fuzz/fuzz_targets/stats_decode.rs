//! A stats answer as the engine might send it: decode, turn into a sample,
//! compute the CPU percent and render the container's series.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::stats(data));
