//! How requests reach the engine: a function from request to response over
//! the engine's kind of connection (a new unix-socket or TCP connection per
//! call, or kept TLS connections). Every request the exporter makes goes
//! through it and is decoded into the engine stage's own types
//! (`model.rs`); the client library lends its request and error types.

use std::sync::Arc;

use bollard::errors::Error as BollardError;
use bollard::BollardRequest;
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
