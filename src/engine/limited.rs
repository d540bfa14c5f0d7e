//! One bound on the calls in flight to an engine, whoever sends them: every
//! scrape round, of every selection, takes its calls from the same permits,
//! so a storm of distinct ad-hoc queries cannot multiply the engine's load.

use std::sync::Arc;

use futures::FutureExt;
use tokio::sync::Semaphore;

use super::{
    EngineApi, EngineError, EngineFuture, EngineInfo, EngineVersion, Failure, ListQuery, Listed,
};
use bollard::models::{ContainerInspectResponse, ContainerStatsResponse};

/// An engine whose calls wait for one of `limit` permits.
#[derive(Debug)]
pub struct Limited {
    inner: Arc<dyn EngineApi>,
    permits: Semaphore,
}

impl Limited {
    /// `inner` with at most `limit` calls in flight.
    pub fn new(inner: Arc<dyn EngineApi>, limit: usize) -> Self {
        Self {
            inner,
            permits: Semaphore::new(limit.max(1)),
        }
    }

    async fn run<T>(&self, call: EngineFuture<'_, T>) -> Result<T, EngineError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| EngineError::new(Failure::Engine, "engine client closed"))?;
        call.await
    }
}

impl EngineApi for Limited {
    fn host(&self) -> &str {
        self.inner.host()
    }

    fn ping(&self) -> EngineFuture<'_, ()> {
        self.run(self.inner.ping()).boxed()
    }

    fn version(&self) -> EngineFuture<'_, EngineVersion> {
        self.run(self.inner.version()).boxed()
    }

    fn info(&self) -> EngineFuture<'_, EngineInfo> {
        self.run(self.inner.info()).boxed()
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> EngineFuture<'a, Vec<Listed>> {
        self.run(self.inner.list(query)).boxed()
    }

    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, ContainerInspectResponse> {
        self.run(self.inner.inspect(id)).boxed()
    }

    fn stats<'a>(
        &'a self,
        id: &'a str,
        one_shot: bool,
    ) -> EngineFuture<'a, Option<ContainerStatsResponse>> {
        self.run(self.inner.stats(id, one_shot)).boxed()
    }
}
