//! Configuration text as a user might write it: parse and validate, and the
//! smaller parsers it uses (durations, label selectors) on the raw text.

#![no_main]

use libfuzzer_sys::fuzz_target;

#[path = "checks.rs"]
mod checks;

fuzz_target!(|data: &[u8]| checks::config(data));
