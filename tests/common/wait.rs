//! Waiting for a condition with a deadline instead of sleeping and hoping.
//!
//! A check returns `Ok(value)` when the condition holds, else `Err(what it
//! saw)`; on timeout the panic names what was awaited and the last
//! observation.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long a live test waits for an engine to do what it was asked (a
/// container to start using CPU, to exit, to show in its cgroup): long
/// enough for the slowest engine the suite runs on, Docker in a VM under
/// software emulation. A wait ends as soon as its condition holds.
pub const PATIENCE: Duration = Duration::from_secs(180);

const FIRST_PAUSE: Duration = Duration::from_millis(10);
const LONGEST_PAUSE: Duration = Duration::from_millis(250);
/// Observations longer than this are cut to their end in the panic message.
const SHOWN: usize = 4000;

/// Polls `check` (fast at first, then every 250 ms) until it returns `Ok`;
/// panics after `timeout`.
pub fn wait_until<T>(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> T {
    let deadline = Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    loop {
        match check() {
            Ok(value) => return value,
            Err(seen) if Instant::now() >= deadline => fail(what, timeout, &seen),
            Err(_) => {}
        }
        std::thread::sleep(pause.min(deadline.saturating_duration_since(Instant::now())));
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

/// [`wait_until`] for async checks; a check still running at the deadline
/// fails too.
pub async fn wait_until_async<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    let mut pause = FIRST_PAUSE;
    let mut last = String::from("(no check finished)");
    loop {
        match tokio::time::timeout_at(deadline, check()).await {
            Ok(Ok(value)) => return value,
            Ok(Err(seen)) => last = seen,
            Err(_) => fail(
                what,
                timeout,
                &format!("a check was still running; the one before saw: {last}"),
            ),
        }
        if tokio::time::Instant::now() >= deadline {
            fail(what, timeout, &last);
        }
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        tokio::time::sleep(pause.min(left)).await;
        pause = (pause * 2).min(LONGEST_PAUSE);
    }
}

fn fail(what: &str, timeout: Duration, seen: &str) -> ! {
    let cut = seen.len().saturating_sub(SHOWN);
    let start = (cut..=seen.len())
        .find(|i| seen.is_char_boundary(*i))
        .unwrap_or(0);
    let more = if start > 0 { "...\n" } else { "" };
    panic!(
        "waited {timeout:?} for {what}; last seen:\n{more}{}",
        &seen[start..]
    );
}
