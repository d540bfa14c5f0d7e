//! How requests reach the engine: a function from request to response over
//! the engine's kind of connection (a new unix-socket or TCP connection per
//! call, or kept TLS connections). The client library's client is built on
//! it, and the exporter's own requests (stats, inspect, Podman's
//! `/libpod/info`) go through it too, decoded into the engine stage's own
//! types.

use std::sync::Arc;

use bollard::errors::Error as BollardError;
use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use bytes::Bytes;
use futures::future::BoxFuture;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Response, StatusCode};

/// Sends one request and gives its response.
pub type SendFn = Arc<
    dyn Fn(BollardRequest) -> BoxFuture<'static, Result<Response<Incoming>, BollardError>>
        + Send
        + Sync,
>;

/// A way to the engine, and the address requests are made against.
#[derive(Clone)]
pub struct Transport {
    send: SendFn,
    base: String,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("base", &self.base)
            .finish()
    }
}

impl Transport {
    /// Requests through `send`, against `base` (`http://localhost` for a
    /// socket, `https://host:port`).
    pub fn new(send: SendFn, base: impl Into<String>) -> Self {
        Self {
            send,
            base: base.into(),
        }
    }

    /// The client library's client on this transport.
    pub fn client(&self, timeout_secs: u64) -> Result<Docker, BollardError> {
        let send = Arc::clone(&self.send);
        Docker::connect_with_custom_transport(
            move |req: BollardRequest| send(req),
            Some(self.base.clone()),
            timeout_secs,
            API_DEFAULT_VERSION,
        )
    }

    /// `GET path` (with its query): the status and the whole body.
    pub async fn get(&self, path: &str) -> Result<(StatusCode, Bytes), BollardError> {
        let req = hyper::Request::get(format!("{}{path}", self.base))
            .body(bollard::body_full(Bytes::new()))
            .map_err(BollardError::from)?;
        let response = (self.send)(req).await?;
        let status = response.status();
        let body = response.into_body().collect().await?.to_bytes();
        Ok((status, body))
    }
}
