//! The engine's unix socket as bollard's transport: one plain HTTP/1
//! connection per call, made with hyper's connection API directly.
//!
//! bollard's own unix client goes through hyper-util's pooling client with
//! pooling turned off, which adds a few kilobytes of bookkeeping to every
//! call in flight; on Docker up to 24 a scrape keeps one stats call per
//! container waiting for the engine's tick, so that is per container.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bollard::errors::Error as BollardError;
use bollard::{BollardRequest, Docker, API_DEFAULT_VERSION};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::{Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::UnixStream;

/// A client for the socket at `host` (`unix:///path`). Fails, as bollard's
/// own does, while the socket file is missing.
pub fn connect(host: &str, timeout_secs: u64) -> Result<Docker, BollardError> {
    let path = PathBuf::from(host.strip_prefix("unix://").unwrap_or(host));
    if !path.exists() {
        return Err(BollardError::SocketNotFoundError(
            path.to_string_lossy().into_owned(),
        ));
    }
    let path: Arc<Path> = path.into();
    let transport = move |req: BollardRequest| send(Arc::clone(&path), req);
    Docker::connect_with_custom_transport(
        transport,
        Some("http://localhost"),
        timeout_secs,
        API_DEFAULT_VERSION,
    )
}

/// Sends `req` on a new connection to `path`. A refused connect (EAGAIN when
/// the engine's listen queue is full) comes back as bollard's I/O error, so
/// the caller can recognise it and try again.
async fn send(path: Arc<Path>, req: BollardRequest) -> Result<Response<Incoming>, BollardError> {
    let stream = UnixStream::connect(&*path).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends with the response's body, or with an error
        // that the body's reader sees.
        let _ = conn.await;
    });
    let (mut parts, body) = req.into_parts();
    // The request line carries the path only (origin form), as a client
    // that is not talking to a proxy sends it.
    let origin = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()?;
    parts.uri = origin;
    parts
        .headers
        .insert(HOST, HeaderValue::from_static("localhost"));
    Ok(sender
        .send_request(hyper::Request::from_parts(parts, body))
        .await?)
}
