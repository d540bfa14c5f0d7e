//! Bounds on the calls in flight to an engine, whoever sends them: every
//! scrape round, of every selection, takes its calls from the same permits,
//! so a storm of distinct ad-hoc queries cannot multiply the engine's load.
//!
//! Three bounds. `max_concurrency` holds every call. Calls the engine answers
//! at once (list, inspect, and stats on engines that read them directly:
//! Docker 25 and later, Podman) are further held to [`QUICK_CALLS`]: each
//! holds a connection and its buffers (some 40 KB) while in flight, and
//! beyond that number a round ends only a little sooner. Inspect calls are
//! held to [`INSPECT_CALLS`] within those. Stats calls on
//! Docker up to 24 wait for the engine's 1 s tick, so only
//! `max_concurrency` holds them: each further wave would cost a tick.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::Semaphore;

use super::model::{Inspect, Stats};
use super::{
    EngineApi, EngineError, EngineFuture, EngineInfo, EngineVersion, Failure, ListQuery, Listed,
};

/// Calls in flight at once that the engine answers without waiting for its
/// stats tick.
pub const QUICK_CALLS: usize = 64;

/// Inspect calls in flight at once, within [`QUICK_CALLS`]. Their answers
/// are the largest and each container needs one only once a minute, but a
/// first scrape asks them all, beside (on Docker up to 24) a stats call per
/// container that waits for the engine's tick.
pub const INSPECT_CALLS: usize = 16;

/// Which bounds a call is held to, besides `max_concurrency`.
#[derive(Debug, Clone, Copy)]
enum Kind {
    /// A stats call that waits for the engine's tick.
    Tick,
    /// Answered at once.
    Quick,
    /// An inspect call: answered at once, and held to [`INSPECT_CALLS`].
    Inspect,
}

/// An engine whose calls wait for permits.
#[derive(Debug)]
pub struct Limited {
    inner: Arc<dyn EngineApi>,
    permits: Semaphore,
    quick: Semaphore,
    inspects: Semaphore,
    direct_stats: AtomicBool,
}

impl Limited {
    /// `inner` with at most `limit` calls in flight, and at most
    /// [`QUICK_CALLS`] of those that are answered at once.
    pub fn new(inner: Arc<dyn EngineApi>, limit: usize) -> Self {
        let limit = limit.max(1);
        Self {
            inner,
            permits: Semaphore::new(limit),
            quick: Semaphore::new(limit.min(QUICK_CALLS)),
            inspects: Semaphore::new(limit.min(INSPECT_CALLS)),
            direct_stats: AtomicBool::new(false),
        }
    }

    /// Runs the call `make` returns once permits are held: the call's own
    /// future (and its buffers) exists only while it is in flight.
    async fn run<'a, T>(
        &'a self,
        kind: Kind,
        make: impl FnOnce() -> EngineFuture<'a, T>,
    ) -> Result<T, EngineError> {
        let closed = |_| EngineError::new(Failure::Engine, "engine client closed");
        let _inspect = match kind {
            Kind::Inspect => Some(self.inspects.acquire().await.map_err(closed)?),
            Kind::Quick | Kind::Tick => None,
        };
        let _quick = match kind {
            Kind::Quick | Kind::Inspect => Some(self.quick.acquire().await.map_err(closed)?),
            Kind::Tick => None,
        };
        let _permit = self.permits.acquire().await.map_err(closed)?;
        make().await
    }
}

impl EngineApi for Limited {
    fn host(&self) -> &str {
        self.inner.host()
    }

    fn ping(&self) -> EngineFuture<'_, ()> {
        self.run(Kind::Quick, || self.inner.ping()).boxed()
    }

    /// The engine's version, which also tells this limit whether one-shot
    /// stats calls answer at once (Docker 25 and later, Podman), so that
    /// they count as quick calls.
    fn version(&self) -> EngineFuture<'_, EngineVersion> {
        async move {
            let v = self.run(Kind::Quick, || self.inner.version()).await?;
            self.direct_stats
                .store(v.quirks().direct_stats, Ordering::Relaxed);
            Ok(v)
        }
        .boxed()
    }

    fn info(&self) -> EngineFuture<'_, EngineInfo> {
        self.run(Kind::Quick, || self.inner.info()).boxed()
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> EngineFuture<'a, Vec<Listed>> {
        self.run(Kind::Quick, || self.inner.list(query)).boxed()
    }

    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, Inspect> {
        self.run(Kind::Inspect, || self.inner.inspect(id)).boxed()
    }

    fn stats<'a>(&'a self, id: &'a str, one_shot: bool) -> EngineFuture<'a, Option<Stats>> {
        let kind = match one_shot && self.direct_stats.load(Ordering::Relaxed) {
            true => Kind::Quick,
            false => Kind::Tick,
        };
        self.run(kind, move || self.inner.stats(id, one_shot))
            .boxed()
    }
}
