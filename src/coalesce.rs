//! Single flight: scrapes that arrive while a round for the same selection is
//! in flight share it, so N concurrent scrapers cost the engine one round.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::deadline::{deadline, DeadlineHandle};
use crate::scrape::{Scraper, Snapshot};
use crate::selector::Selection;

struct Flight {
    id: u64,
    selection: Selection,
    deadline: DeadlineHandle,
    result: Shared<BoxFuture<'static, Arc<Snapshot>>>,
}

/// Hands out snapshots, sharing rounds between concurrent callers.
pub struct Coalescer {
    scraper: Arc<Scraper>,
    flight: Mutex<Option<Flight>>,
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
            flight: Mutex::new(None),
            next_id: AtomicU64::new(0),
        })
    }

    /// The scraper behind it.
    pub fn scraper(&self) -> &Scraper {
        &self.scraper
    }

    /// A snapshot of `selection` finished by `until`: the round in flight for
    /// the same selection (its deadline brought forward to `until` if that
    /// is earlier), or a new one. The round runs in its own task, so a
    /// scraper hanging up does not cancel it for the others.
    pub async fn snapshot(
        self: &Arc<Self>,
        selection: &Selection,
        until: Instant,
        evict: bool,
    ) -> Arc<Snapshot> {
        let result = {
            let mut slot = self.flight.lock().unwrap_or_else(|p| p.into_inner());
            match slot.as_ref() {
                Some(f) if f.selection == *selection => {
                    f.deadline.lower_to(until);
                    f.result.clone()
                }
                busy => {
                    let (handle, round_deadline) = deadline(until);
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let this = Arc::clone(self);
                    let sel = selection.clone();
                    let task = tokio::spawn(async move {
                        // Frees the slot however the round ends, a panic
                        // included, so the next scrape starts a fresh round.
                        let _landed = Landed(Arc::clone(&this), id);
                        Arc::new(this.scraper.collect(&sel, &round_deadline, evict).await)
                    });
                    let result = async move {
                        task.await.unwrap_or_else(|e| {
                            tracing::error!("scrape round failed: {e}");
                            Arc::new(Snapshot::default())
                        })
                    }
                    .boxed()
                    .shared();
                    // Only one round is shareable at a time; a scrape of a
                    // different selection just runs alongside it.
                    if busy.is_none() {
                        *slot = Some(Flight {
                            id,
                            selection: selection.clone(),
                            deadline: handle,
                            result: result.clone(),
                        });
                    }
                    result
                }
            }
        };
        result.await
    }

    fn land(&self, id: u64) {
        let mut slot = self.flight.lock().unwrap_or_else(|p| p.into_inner());
        if slot.as_ref().is_some_and(|f| f.id == id) {
            *slot = None;
        }
    }
}

struct Landed(Arc<Coalescer>, u64);

impl Drop for Landed {
    fn drop(&mut self) {
        self.0.land(self.1);
    }
}
