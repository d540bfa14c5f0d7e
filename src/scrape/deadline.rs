//! The deadline of a round, fixed when it starts: a scraper that joins a
//! round never moves it, so no request can cut short what others wait for.

use std::future::Future;

use tokio::time::Instant;

/// The end of a round.
#[derive(Debug, Clone, Copy)]
pub struct Deadline(Instant);

/// The work ran past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl Deadline {
    /// A deadline at `at`.
    pub fn fixed(at: Instant) -> Self {
        Self(at)
    }

    /// Time left until the deadline.
    pub fn remaining(&self) -> std::time::Duration {
        self.0.saturating_duration_since(Instant::now())
    }

    /// Resolves when the deadline has passed.
    pub async fn expired(&self) {
        tokio::time::sleep_until(self.0).await;
    }

    /// Runs `work` unless the deadline passes first.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, Elapsed> {
        tokio::select! {
            biased;
            out = work => Ok(out),
            () = self.expired() => Err(Elapsed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn work_past_the_deadline_is_cut_off_at_it() {
        let start = Instant::now();
        let d = Deadline::fixed(start + Duration::from_millis(200));
        assert_eq!(d.run(std::future::pending::<()>()).await, Err(Elapsed));
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn work_finishing_first_wins() {
        let d = Deadline::fixed(Instant::now() + Duration::from_secs(1));
        assert_eq!(d.run(async { 7 }).await, Ok(7));
    }
}
