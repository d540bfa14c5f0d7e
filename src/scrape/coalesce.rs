//! Single flight per selection: scrapes that arrive while a round for the
//! same selection is in flight share it, so N concurrent scrapers of one
//! selection cost the engine one round. Rounds of different selections run
//! side by side; the engine's call limit bounds them together.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use crate::config::selector::Selection;
use crate::scrape::deadline::{deadline, DeadlineHandle};
use crate::scrape::{Scraper, Snapshot};

struct Flight {
    id: u64,
    deadline: DeadlineHandle,
    result: Shared<BoxFuture<'static, Arc<Snapshot>>>,
}

/// Hands out snapshots, sharing rounds between concurrent callers.
pub struct Coalescer {
    scraper: Arc<Scraper>,
    flights: Mutex<HashMap<Selection, Flight>>,
    next_id: AtomicU64,
}

impl std::fmt::Debug for Coalescer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Coalescer").finish_non_exhaustive()
    }
}

impl Coalescer {
    /// Coalesces rounds of `scraper`.
    pub fn new(scraper: Arc<Scraper>) -> Arc<Self> {
        Arc::new(Self {
            scraper,
            flights: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(0),
        })
    }

    /// The scraper behind it.
    pub fn scraper(&self) -> &Scraper {
        &self.scraper
    }

    /// Rounds in flight now.
    pub fn in_flight(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Selection, Flight>> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of `selection` finished by `until`: the round in flight for
    /// the same selection (its deadline brought forward to `until` if that
    /// is earlier), or a new one. `full` marks the configured selection (see
    /// [`Scraper::collect`]). The round runs in its own task, so a scraper
    /// hanging up does not cancel it for the others.
    pub async fn snapshot(
        self: &Arc<Self>,
        selection: &Selection,
        until: Instant,
        full: bool,
    ) -> Arc<Snapshot> {
        let result = {
            let mut flights = self.lock();
            match flights.get(selection) {
                Some(f) => {
                    f.deadline.lower_to(until);
                    f.result.clone()
                }
                None => {
                    let flight = self.start(selection.clone(), until, full);
                    let result = flight.result.clone();
                    flights.insert(selection.clone(), flight);
                    result
                }
            }
        };
        result.await
    }

    fn start(self: &Arc<Self>, selection: Selection, until: Instant, full: bool) -> Flight {
        let (handle, round_deadline) = deadline(until);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let this = Arc::clone(self);
        let task = tokio::spawn(async move {
            // Frees the slot however the round ends, a panic included, so
            // the next scrape starts a fresh round.
            let _landed = Landed(Arc::clone(&this), selection.clone(), id);
            Arc::new(
                this.scraper
                    .collect(&selection, &round_deadline, full)
                    .await,
            )
        });
        let result = async move {
            task.await.unwrap_or_else(|e| {
                tracing::error!("scrape round failed: {e}");
                Arc::new(Snapshot::default())
            })
        }
        .boxed()
        .shared();
        Flight {
            id,
            deadline: handle,
            result,
        }
    }

    fn land(&self, selection: &Selection, id: u64) {
        let mut flights = self.lock();
        if flights.get(selection).is_some_and(|f| f.id == id) {
            flights.remove(selection);
        }
    }
}

struct Landed(Arc<Coalescer>, Selection, u64);

impl Drop for Landed {
    fn drop(&mut self) {
        self.0.land(&self.1, self.2);
    }
}
