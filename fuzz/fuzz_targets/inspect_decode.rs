//! An inspect answer as the engine might send it: decode, extract the
//! lifecycle values and render them; and the timestamp parser on raw text.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::inspect(data));
