//! Writable-layer sizes (`container_fs_usage_bytes`). The engine computes
//! them by walking every running container's files when the list call asks
//! `size=true`: seconds on a big host. So one answer serves every scrape for
//! `max_age`; a scrape that finds it older starts one refresh, which runs on
//! by itself (at most one at a time, bounded by [`REFRESH_TIMEOUT`]) while
//! scrapes go on with the previous answer. A running container the answer
//! does not know yet also starts one, but not sooner than a tenth of
//! `max_age` after the last. Only the very first answer is waited for,
//! within the scrape's deadline.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use futures::future::{BoxFuture, FutureExt, Shared};
use tokio::time::Instant;

use crate::engine::{EngineApi, ListQuery};
use crate::scrape::deadline::Deadline;

/// Longest a refresh may take before it is given up.
pub const REFRESH_TIMEOUT: Duration = Duration::from_secs(120);

/// Sizes by container id.
pub type Sizes = Arc<HashMap<String, u64>>;

type Refresh = Shared<BoxFuture<'static, Option<Sizes>>>;

#[derive(Default)]
struct Inner {
    answer: Option<Sizes>,
    asked: Option<Instant>,
    refresh: Option<Refresh>,
}

/// The cached sizes and the refresh in flight.
pub struct FsUsage {
    max_age: Option<Duration>,
    inner: Arc<Mutex<Inner>>,
}

impl std::fmt::Debug for FsUsage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FsUsage")
            .field("max_age", &self.max_age)
            .finish_non_exhaustive()
    }
}

impl FsUsage {
    /// Sizes reused for `max_age`; `None` turns them off.
    pub fn new(max_age: Option<Duration>) -> Self {
        Self {
            max_age,
            inner: Arc::new(Mutex::new(Inner::default())),
        }
    }

    fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
        inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The sizes to export now for the running containers `running`,
    /// starting a refresh when the answer is older than `max_age` or does
    /// not know one of them.
    pub async fn sizes(
        &self,
        engine: &Arc<dyn EngineApi>,
        running: &[&str],
        deadline: &Deadline,
    ) -> Option<Sizes> {
        let max_age = self.max_age?;
        let (answer, refresh) = {
            let mut inner = Self::lock(&self.inner);
            let age = inner.asked.map(|t| t.elapsed());
            let unknown = inner
                .answer
                .as_ref()
                .is_some_and(|a| running.iter().any(|id| !a.contains_key(*id)));
            let stale = age.is_none_or(|age| age >= max_age || (unknown && age >= max_age / 10));
            if stale && inner.refresh.is_none() {
                inner.asked = Some(Instant::now());
                let refresh = self.start(engine.clone());
                inner.refresh = Some(refresh);
            }
            (inner.answer.clone(), inner.refresh.clone())
        };
        match (answer, refresh) {
            (Some(answer), _) => Some(answer),
            (None, Some(refresh)) => deadline.run(refresh).await.ok().flatten(),
            (None, None) => None,
        }
    }

    fn start(&self, engine: Arc<dyn EngineApi>) -> Refresh {
        let inner = self.inner.clone();
        let task = tokio::spawn(async move {
            let query = ListQuery {
                size: true,
                ..Default::default()
            };
            let started = Instant::now();
            let answer = match tokio::time::timeout(REFRESH_TIMEOUT, engine.list(&query)).await {
                Ok(Ok(list)) => {
                    tracing::debug!(
                        "writable layer sizes of {} containers in {:?}",
                        list.len(),
                        started.elapsed()
                    );
                    Some(Arc::new(
                        list.into_iter()
                            .filter_map(|l| Some((l.container.id, l.container.size_rw?)))
                            .collect::<HashMap<_, _>>(),
                    ))
                }
                Ok(Err(e)) => {
                    tracing::warn!("writable layer sizes unavailable: {e}");
                    None
                }
                Err(_) => {
                    tracing::warn!(
                        "writable layer sizes took longer than {REFRESH_TIMEOUT:?}; \
                         consider a longer fs_usage_max_age or fs_usage = false"
                    );
                    None
                }
            };
            let mut guard = Self::lock(&inner);
            if answer.is_some() {
                guard.answer = answer.clone();
            }
            guard.refresh = None;
            answer
        });
        async move { task.await.ok().flatten() }.boxed().shared()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::FakeEngine;

    #[tokio::test(start_paused = true)]
    async fn one_list_with_sizes_serves_every_scrape_until_it_is_old() {
        let fake = FakeEngine::docker("26.1.5");
        fake.add("a", 0);
        let engine: Arc<dyn EngineApi> = Arc::new(fake.clone());
        let usage = FsUsage::new(Some(Duration::from_secs(300)));
        let deadline = || Deadline::fixed(Instant::now() + Duration::from_secs(5));
        let first = usage.sizes(&engine, &["a-id"], &deadline()).await.unwrap();
        assert_eq!(first.get("a-id"), Some(&4096));
        for _ in 0..10 {
            tokio::time::sleep(Duration::from_secs(15)).await;
            assert!(usage.sizes(&engine, &["a-id"], &deadline()).await.is_some());
        }
        assert_eq!(fake.calls().size_list, 1);
        tokio::time::sleep(Duration::from_secs(300)).await;
        assert!(usage.sizes(&engine, &["a-id"], &deadline()).await.is_some());
        tokio::task::yield_now().await;
        assert_eq!(fake.calls().size_list, 2, "refreshed once it was old");
    }

    #[tokio::test(start_paused = true)]
    async fn a_new_container_brings_the_refresh_forward_but_not_every_scrape() {
        let fake = FakeEngine::docker("26.1.5");
        fake.add("a", 0);
        let engine: Arc<dyn EngineApi> = Arc::new(fake.clone());
        let usage = FsUsage::new(Some(Duration::from_secs(300)));
        let deadline = || Deadline::fixed(Instant::now() + Duration::from_secs(5));
        usage.sizes(&engine, &["a-id"], &deadline()).await.unwrap();
        fake.add("b", 0);
        // Unknown, but the answer is only 15 s old: a tenth of 300 s not yet.
        tokio::time::sleep(Duration::from_secs(15)).await;
        usage.sizes(&engine, &["a-id", "b-id"], &deadline()).await;
        tokio::task::yield_now().await;
        assert_eq!(fake.calls().size_list, 1);
        tokio::time::sleep(Duration::from_secs(15)).await;
        usage.sizes(&engine, &["a-id", "b-id"], &deadline()).await;
        tokio::task::yield_now().await;
        assert_eq!(fake.calls().size_list, 2, "refreshed for the new container");
        let now = usage
            .sizes(&engine, &["a-id", "b-id"], &deadline())
            .await
            .unwrap();
        assert_eq!(now.get("b-id"), Some(&4096));
    }

    #[tokio::test(start_paused = true)]
    async fn turned_off_asks_nothing() {
        let fake = FakeEngine::docker("26.1.5");
        let engine: Arc<dyn EngineApi> = Arc::new(fake.clone());
        let usage = FsUsage::new(None);
        let deadline = Deadline::fixed(Instant::now() + Duration::from_secs(5));
        assert!(usage.sizes(&engine, &["a-id"], &deadline).await.is_none());
        assert_eq!(fake.calls().size_list, 0);
    }
}
