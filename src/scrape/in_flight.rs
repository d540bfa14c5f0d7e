//! An engine request that outlives the round that started it. A round's
//! deadline drops what it was waiting on; for the engine's `/version` and
//! `/info`, which Podman answers in seconds on a loaded machine (it gathers
//! what `podman info` shows), every round would then start the request
//! again and none would see it end. Here the request runs as a task of its
//! own: a round that runs out of time leaves it running, and the next round
//! takes its answer.

use std::sync::Mutex;

use futures::future::{BoxFuture, FutureExt, Shared};

use crate::engine::{EngineError, Failure};
use crate::scrape::deadline::{Deadline, Elapsed};

type Answer<T> = Result<T, EngineError>;

/// At most one request of one kind in flight, shared by the rounds that
/// wait for it.
pub struct InFlight<T: Clone> {
    call: Mutex<Option<Shared<BoxFuture<'static, Answer<T>>>>>,
}

impl<T: Clone> std::fmt::Debug for InFlight<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("InFlight")
    }
}

impl<T: Clone> Default for InFlight<T> {
    fn default() -> Self {
        Self {
            call: Mutex::new(None),
        }
    }
}

impl<T: Clone + Send + Sync + 'static> InFlight<T> {
    /// The answer, by `deadline`, of the request in flight or of one
    /// `start` makes now. An answer had is forgotten, so the next ask sends
    /// a new request; one not had by the deadline stays in flight.
    pub async fn ask(
        &self,
        deadline: &Deadline,
        start: impl FnOnce() -> BoxFuture<'static, Answer<T>>,
    ) -> Result<Answer<T>, Elapsed> {
        let answer = deadline.run(self.join(start)).await;
        if answer.is_ok() {
            self.done();
        }
        answer
    }

    /// The request in flight, or one `start` makes now, spawned so that it
    /// goes on without a waiter. Its answer stays until [`InFlight::done`].
    fn join(
        &self,
        start: impl FnOnce() -> BoxFuture<'static, Answer<T>>,
    ) -> Shared<BoxFuture<'static, Answer<T>>> {
        let mut call = self.call.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(call) = call.as_ref() {
            return call.clone();
        }
        let task = tokio::spawn(start());
        let shared = async move {
            task.await.unwrap_or_else(|e| {
                Err(EngineError::new(
                    Failure::Engine,
                    format!("request task ended: {e}"),
                ))
            })
        }
        .boxed()
        .shared();
        *call = Some(shared.clone());
        shared
    }

    /// Forgets the request once a round has its answer: the next one asks
    /// anew.
    fn done(&self) {
        *self.call.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }
}
