//! Bcrypt checks that a flood of wrong passwords cannot starve: they run on
//! the blocking pool, a few at a time; one client address has one check at a
//! time, waits longer after each failure and may queue only a few more, so
//! it holds one place in the shared queue however much it sends. Addresses
//! whose last check failed share one place between them, so a scraper from
//! an address without failures waits for about one check, however many
//! addresses flood.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Semaphore;
use tokio::time::Instant;

use crate::http::limits::client_of;

/// Checks one client may have waiting behind its running one; more are
/// answered 429 after [`BUSY_DELAY`].
pub const MAX_WAITING_PER_CLIENT: usize = 4;
/// How long a check refused as [`Busy`] is held before its answer: answered
/// at once, a flood would come straight back and spend the CPU the scraper's
/// checks need (300 clients made thousands of requests a second).
pub const BUSY_DELAY: Duration = Duration::from_secs(1);
/// The wait before a client's next check after its first failure; it doubles
/// with each further failure up to [`MAX_FAILURE_DELAY`].
pub const FAILURE_DELAY: Duration = Duration::from_millis(100);
/// The longest wait after failures.
pub const MAX_FAILURE_DELAY: Duration = Duration::from_secs(2);
/// Clients remembered before those with nothing pending are forgotten.
const MAX_CLIENTS: usize = 4096;

/// The client queues too many checks already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Busy;

/// Schedules password checks.
#[derive(Debug)]
pub struct Throttle {
    checks: Semaphore,
    // The one place in `checks`' queue for addresses with failures.
    suspects: Semaphore,
    clients: Mutex<HashMap<IpAddr, Arc<Client>>>,
}

#[derive(Debug, Default)]
struct Client {
    waiting: AtomicUsize,
    turn: tokio::sync::Mutex<Backoff>,
}

#[derive(Debug, Default)]
struct Backoff {
    failures: u32,
    not_before: Option<Instant>,
}

impl Default for Throttle {
    /// Half the machine's cores check passwords, so scrapes keep the rest.
    fn default() -> Self {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::new((cores / 2).max(1))
    }
}

impl Throttle {
    /// At most `parallel` checks at once.
    pub fn new(parallel: usize) -> Self {
        Self {
            checks: Semaphore::new(parallel.max(1)),
            suspects: Semaphore::new(1),
            clients: Mutex::default(),
        }
    }

    /// Awaits `verify` (the slow check, on a blocking thread) for a request
    /// from `peer` in its turn; its verdict, or [`Busy`].
    pub async fn check<F>(&self, peer: Option<IpAddr>, verify: F) -> Result<bool, Busy>
    where
        F: Future<Output = bool>,
    {
        let client = self.client(client_of(peer.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED))));
        if client.waiting.fetch_add(1, Ordering::AcqRel) > MAX_WAITING_PER_CLIENT {
            client.waiting.fetch_sub(1, Ordering::AcqRel);
            tokio::time::sleep(BUSY_DELAY).await;
            return Err(Busy);
        }
        let _waiting = Waiting(&client.waiting);
        let mut backoff = client.turn.lock().await;
        if let Some(at) = backoff.not_before {
            tokio::time::sleep_until(at).await;
        }
        let ok = {
            let _lane = match backoff.failures {
                0 => None,
                _ => Some(self.suspects.acquire().await.map_err(|_| Busy)?),
            };
            let _permit = self.checks.acquire().await.map_err(|_| Busy)?;
            verify.await
        };
        if ok {
            *backoff = Backoff::default();
        } else {
            backoff.failures = backoff.failures.saturating_add(1);
            let doublings = (backoff.failures - 1).min(16);
            let delay = (FAILURE_DELAY * 2u32.pow(doublings)).min(MAX_FAILURE_DELAY);
            backoff.not_before = Some(Instant::now() + delay);
        }
        Ok(ok)
    }

    fn client(&self, ip: IpAddr) -> Arc<Client> {
        let mut clients = self.clients.lock().unwrap_or_else(|p| p.into_inner());
        if clients.len() >= MAX_CLIENTS && !clients.contains_key(&ip) {
            let now = Instant::now();
            clients.retain(|_, c| {
                c.waiting.load(Ordering::Acquire) > 0
                    || c.turn
                        .try_lock()
                        .map_or(true, |b| b.not_before.is_some_and(|at| at > now))
            });
        }
        Arc::clone(clients.entry(ip).or_default())
    }
}

struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[tokio::test(start_paused = true)]
    async fn failures_slow_their_own_client_down_and_no_other() {
        let t = Throttle::new(1);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(t.check(ip("10.0.0.1"), async { false }).await, Ok(false));
        }
        // Two failures so far: 100 ms, then 200 ms before the third check.
        assert_eq!(start.elapsed(), Duration::from_millis(300));
        let other = Instant::now();
        assert_eq!(t.check(ip("10.0.0.2"), async { true }).await, Ok(true));
        assert_eq!(other.elapsed(), Duration::ZERO);
        // The failing client waits 400 ms now; a success resets it.
        let again = Instant::now();
        assert_eq!(t.check(ip("10.0.0.1"), async { true }).await, Ok(true));
        assert_eq!(again.elapsed(), Duration::from_millis(400));
        let after = Instant::now();
        assert_eq!(t.check(ip("10.0.0.1"), async { true }).await, Ok(true));
        assert_eq!(after.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn addresses_with_failures_share_one_place_in_the_queue() {
        let t = Arc::new(Throttle::new(1));
        let slow = || async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            false
        };
        // Ten addresses fail once each, then all try again at once.
        for i in 0..10 {
            assert_eq!(
                t.check(ip(&format!("10.0.1.{i}")), async { false }).await,
                Ok(false)
            );
        }
        tokio::time::sleep(MAX_FAILURE_DELAY).await;
        let flood: Vec<_> = (0..10)
            .map(|i| {
                let t = Arc::clone(&t);
                tokio::spawn(async move { t.check(ip(&format!("10.0.1.{i}")), slow()).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let real = std::time::Instant::now();
        assert_eq!(t.check(ip("10.0.0.2"), async { true }).await, Ok(true));
        // At most the running check and the suspects' one place: 2 x 20 ms,
        // not 10.
        assert!(
            real.elapsed() < Duration::from_millis(150),
            "{:?}",
            real.elapsed()
        );
        for f in flood {
            assert_eq!(f.await.unwrap(), Ok(false));
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_flood_from_one_client_is_refused_beyond_its_queue() {
        let t = Arc::new(Throttle::new(1));
        let flood: Vec<_> = (0..50)
            .map(|_| {
                let t = Arc::clone(&t);
                tokio::spawn(async move { t.check(ip("10.0.0.1"), async { false }).await })
            })
            .collect();
        tokio::task::yield_now().await;
        let start = Instant::now();
        assert_eq!(t.check(ip("10.0.0.2"), async { true }).await, Ok(true));
        // Nothing of the flood's holds it: its backoff is its own client's.
        assert_eq!(start.elapsed(), Duration::ZERO);
        let mut busy = 0;
        for f in flood {
            busy += usize::from(f.await.unwrap() == Err(Busy));
        }
        // The first check was done at once; the second holds the turn (in
        // its back-off), 4 wait behind it, the rest were refused.
        assert_eq!(busy, 50 - 2 - MAX_WAITING_PER_CLIENT);
    }
}
