//! Single flight per selection: scrapes that arrive while a round for the
//! same selection is in flight share it, so N concurrent scrapers of one
//! selection cost the engine one round. Rounds of different selections run
//! side by side; the engine's call limit bounds them together.
//!
//! A round's deadline is fixed when it starts: no scraper cuts it short for
//! the others. A scraper joins a round that ends by its own deadline and was
//! given at least half its own budget, so what it gets is about what a round
//! of its own would have got; otherwise (it is more impatient, or much more
//! patient, than the round) it starts a round of its own, which later
//! scrapers like it share in turn.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use crate::config::selector::Selection;
use crate::scrape::deadline::Deadline;
use crate::scrape::{Scraper, Snapshot};

struct Flight {
    id: u64,
    until: Instant,
    budget: Duration,
    result: Shared<BoxFuture<'static, Arc<Snapshot>>>,
}

impl Flight {
    /// Whether a scraper that wants an answer by `until` after `budget` is
    /// served by this round as well as by one of its own.
    fn suits(&self, until: Instant, budget: Duration) -> bool {
        self.until <= until && self.budget * 2 >= budget
    }
}

/// Hands out snapshots, sharing rounds between concurrent callers.
pub struct Coalescer {
    scraper: Arc<Scraper>,
    flights: Mutex<HashMap<Selection, Vec<Flight>>>,
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
        self.lock().values().map(Vec::len).sum()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Selection, Vec<Flight>>> {
        self.flights.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A snapshot of `selection` finished by `until`: from the round in
    /// flight for the same selection that suits it (see the module's
    /// comment), or from a new one. `full` marks the configured selection
    /// (see [`Scraper::collect`]). The round runs in its own task, so a
    /// scraper hanging up does not cancel it for the others.
    pub async fn snapshot(
        self: &Arc<Self>,
        selection: &Selection,
        until: Instant,
        full: bool,
    ) -> Arc<Snapshot> {
        let budget = until.saturating_duration_since(Instant::now());
        let result = {
            let mut flights = self.lock();
            let same = flights.entry(selection.clone()).or_default();
            match same
                .iter()
                .filter(|f| f.suits(until, budget))
                .max_by_key(|f| f.until)
            {
                Some(f) => f.result.clone(),
                None => {
                    let flight = self.start(selection.clone(), until, budget, full);
                    let result = flight.result.clone();
                    same.push(flight);
                    result
                }
            }
        };
        result.await
    }

    fn start(
        self: &Arc<Self>,
        selection: Selection,
        until: Instant,
        budget: Duration,
        full: bool,
    ) -> Flight {
        let round_deadline = Deadline::fixed(until);
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
            until,
            budget,
            result,
        }
    }

    fn land(&self, selection: &Selection, id: u64) {
        let mut flights = self.lock();
        if let Some(same) = flights.get_mut(selection) {
            same.retain(|f| f.id != id);
            if same.is_empty() {
                flights.remove(selection);
            }
        }
    }
}

struct Landed(Arc<Coalescer>, Selection, u64);

impl Drop for Landed {
    fn drop(&mut self) {
        self.0.land(&self.1, self.2);
    }
}
