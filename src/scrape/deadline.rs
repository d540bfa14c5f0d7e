//! A scrape deadline that later callers may bring forward: a coalesced round
//! must answer in time for the most impatient scraper sharing it.

use std::future::Future;

use tokio::sync::watch;
use tokio::time::Instant;

/// The end of a round; clones see later lowering.
#[derive(Debug, Clone)]
pub struct Deadline(watch::Receiver<Instant>);

/// Lowers the deadline it was made with.
#[derive(Debug)]
pub struct DeadlineHandle(watch::Sender<Instant>);

/// The work ran past the deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// A deadline at `at`, and the handle that can bring it forward.
pub fn deadline(at: Instant) -> (DeadlineHandle, Deadline) {
    let (tx, rx) = watch::channel(at);
    (DeadlineHandle(tx), Deadline(rx))
}

impl Deadline {
    /// A deadline nobody can move.
    pub fn fixed(at: Instant) -> Self {
        deadline(at).1
    }

    /// Time left until the deadline as it stands now.
    pub fn remaining(&self) -> std::time::Duration {
        self.0.borrow().saturating_duration_since(Instant::now())
    }

    /// Resolves when the deadline, as lowered meanwhile, has passed.
    pub async fn expired(&self) {
        let mut rx = self.0.clone();
        loop {
            let at = *rx.borrow_and_update();
            tokio::select! {
                _ = tokio::time::sleep_until(at) => return,
                changed = rx.changed() => {
                    if changed.is_err() {
                        // The handle is gone: the deadline can no longer move.
                        tokio::time::sleep_until(at).await;
                        return;
                    }
                }
            }
        }
    }

    /// Runs `work` unless the deadline passes first.
    pub async fn run<F: Future>(&self, work: F) -> Result<F::Output, Elapsed> {
        tokio::select! {
            biased;
            out = work => Ok(out),
            _ = self.expired() => Err(Elapsed),
        }
    }
}

impl DeadlineHandle {
    /// Brings the deadline forward to `at` if that is earlier.
    pub fn lower_to(&self, at: Instant) {
        self.0.send_if_modified(|current| {
            let earlier = at < *current;
            if earlier {
                *current = at;
            }
            earlier
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[tokio::test(start_paused = true)]
    async fn lowering_cuts_a_running_wait_short() {
        let start = Instant::now();
        let (handle, d) = deadline(start + Duration::from_secs(30));
        let waiter = tokio::spawn({
            let d = d.clone();
            async move { d.run(std::future::pending::<()>()).await }
        });
        tokio::time::sleep(Duration::from_millis(50)).await;
        handle.lower_to(start + Duration::from_millis(200));
        handle.lower_to(start + Duration::from_secs(20)); // later: ignored
        assert_eq!(waiter.await.unwrap(), Err(Elapsed));
        assert_eq!(start.elapsed(), Duration::from_millis(200));
    }

    #[tokio::test]
    async fn work_finishing_first_wins() {
        let d = Deadline::fixed(Instant::now() + Duration::from_secs(1));
        assert_eq!(d.run(async { 7 }).await, Ok(7));
    }
}
