//! Engines reached without TLS, on their unix socket or over plain TCP, as
//! a [`Transport`]: one HTTP/1 connection per call (as bollard's own
//! clients for these do, with pooling off), made with hyper's connection API
//! directly.
//!
//! bollard's own clients go through hyper-util's pooling client, which adds
//! a few kilobytes of bookkeeping to every call in flight; on Docker up to 24
//! a scrape keeps one stats call per container waiting for the engine's
//! tick, so that is per container.

use std::path::PathBuf;
use std::sync::Arc;

use bollard::errors::Error as BollardError;
use bollard::BollardRequest;
use futures::FutureExt;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::rt::{Read, Write};
use hyper::{Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpStream, UnixStream};

use super::transport::{SendFn, Transport};

/// Where the engine listens.
#[derive(Debug)]
enum Endpoint {
    Unix(PathBuf),
    /// `host:port`.
    Tcp(String),
}

/// A client for the socket at `host` (`unix:///path`). Fails, as bollard's
/// own does, while the socket file is missing.
pub fn connect_unix(host: &str) -> Result<Transport, BollardError> {
    let path = PathBuf::from(host.strip_prefix("unix://").unwrap_or(host));
    if !path.exists() {
        return Err(BollardError::SocketNotFoundError(
            path.to_string_lossy().into_owned(),
        ));
    }
    Ok(client(Endpoint::Unix(path)))
}

/// A client for `host` (`tcp://host:port` or `http://host:port`).
pub fn connect_tcp(host: &str) -> Transport {
    client(endpoint(host))
}

/// Where `host` (`unix:///path`, `tcp://` or `http://host:port`) listens.
fn endpoint(host: &str) -> Endpoint {
    if let Some(path) = host.strip_prefix("unix://") {
        return Endpoint::Unix(PathBuf::from(path));
    }
    let rest = host.split_once("://").map_or(host, |(_, rest)| rest);
    Endpoint::Tcp(rest.split('/').next().unwrap_or(rest).to_string())
}

fn client(endpoint: Endpoint) -> Transport {
    let endpoint = Arc::new(endpoint);
    let send: SendFn = Arc::new(move |req: BollardRequest| {
        let endpoint = Arc::clone(&endpoint);
        async move {
            match &*endpoint {
                Endpoint::Unix(path) => {
                    send(UnixStream::connect(path).await?, "localhost", req).await
                }
                Endpoint::Tcp(authority) => {
                    let stream = TcpStream::connect(authority.as_str()).await?;
                    stream.set_nodelay(true)?;
                    send(stream, authority, req).await
                }
            }
        }
        .boxed()
    });
    Transport::new(send, "http://localhost")
}

/// Sends `req` on the new connection `stream`. A refused connect (EAGAIN
/// when a unix socket's listen queue is full) comes back as bollard's I/O
/// error, so the caller can recognise it and try again.
async fn send<S>(
    stream: S,
    host: &str,
    req: BollardRequest,
) -> Result<Response<Incoming>, BollardError>
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    TokioIo<S>: Read + Write,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        // The connection ends with the response's body, or with an error
        // that the body's reader sees.
        let _ = conn.await;
    });
    let (mut parts, body) = req.into_parts();
    // The request line carries the path only (origin form), as a client
    // that is not talking to a proxy sends it.
    parts.uri = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .parse::<Uri>()?;
    let host = HeaderValue::from_str(host).map_err(hyper::http::Error::from)?;
    parts.headers.insert(HOST, host);
    Ok(sender
        .send_request(hyper::Request::from_parts(parts, body))
        .await?)
}
