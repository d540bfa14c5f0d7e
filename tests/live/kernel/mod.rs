//! What the kernel accounts for a container, compared with its cgroup's own
//! files (or the engine's report of them): the part of the live suite whose
//! answers differ between cgroup versions and drivers. `scripts/test` runs it
//! on every engine, the cgroup v2 VM's included (`cargo test --test live
//! kernel::`); the rest of the live suite is about the engine's API, the
//! same there.

mod accounted;
mod cgroup;
mod cpu;
mod memory;
mod paths;
