//! The HTTP server around the routes: an accept loop that refuses what is
//! over the connection limits, header, write and request timeouts, a bound on
//! header size, optional TLS and basic auth, a panic catcher and graceful
//! shutdown.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Request, State};
use axum::http::header::{
    AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE, X_CONTENT_TYPE_OPTIONS,
};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

use crate::http::connection::{self, ConnectionService, Peer};
use crate::http::limits::{self, ConnectionLimits, Refused};
use crate::http::stall::WriteTimeout;
use crate::http::web_config::{BasicAuth, Verdict, WebConfig};

/// Time a client has to send a request's headers (and, with TLS, to finish
/// the handshake) before its connection is closed.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// Time a write may wait for the client to read before the connection is
/// dropped: a Prometheus reads at once, a client that stopped reading only
/// holds a slot.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest request head (request line and headers); longer ones are
/// answered 431. Prometheus sends under 1 KiB even with basic auth and a
/// selection; nginx allows 4 x 8 KiB. It is also hyper's read buffer limit,
/// which bounds what one connection can make the exporter hold before auth:
/// hyper's default (about 400 KiB) let 500 unfinished heads take 185 MB.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;
/// What a request may take beyond the configured scrape timeout before it is
/// answered 503.
pub const REQUEST_TIMEOUT_MARGIN: Duration = Duration::from_secs(10);

/// How the server treats its connections.
#[derive(Debug, Clone)]
pub struct Options {
    /// See [`HEADER_READ_TIMEOUT`].
    pub header_read_timeout: Duration,
    /// Longest time for one request, headers read to response head.
    pub request_timeout: Duration,
    /// See [`WRITE_TIMEOUT`].
    pub write_timeout: Duration,
    /// See [`MAX_HEADER_BYTES`].
    pub max_header_bytes: usize,
    /// See [`limits::MAX_CONNECTIONS`].
    pub max_connections: usize,
    /// See [`limits::MAX_CONNECTIONS_PER_CLIENT`].
    pub max_connections_per_client: usize,
    /// See [`connection::MAX_REQUESTS_PER_CONNECTION`].
    pub max_requests_per_connection: usize,
    /// Longest wait for requests in flight after a shutdown signal.
    pub shutdown_grace: Duration,
    /// TLS and basic auth.
    pub web: WebConfig,
}

impl Options {
    /// The defaults for a scrape `timeout`: requests may take that plus
    /// [`REQUEST_TIMEOUT_MARGIN`].
    pub fn new(scrape_timeout: Duration, web: WebConfig) -> Self {
        let request_timeout = scrape_timeout + REQUEST_TIMEOUT_MARGIN;
        Self {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout,
            write_timeout: WRITE_TIMEOUT,
            max_header_bytes: MAX_HEADER_BYTES,
            max_connections: limits::MAX_CONNECTIONS,
            max_connections_per_client: limits::MAX_CONNECTIONS_PER_CLIENT,
            max_requests_per_connection: connection::MAX_REQUESTS_PER_CONNECTION,
            shutdown_grace: request_timeout,
            web,
        }
    }
}

/// `router` with basic auth (on every path, as the exporter toolkit does),
/// the request timeout, `nosniff` and a panic catcher that answers 500.
pub fn harden(router: Router, options: &Options) -> Router {
    let router = router.layer(axum::middleware::map_response(nosniff));
    let router = match &options.web.auth {
        Some(auth) => router.layer(axum::middleware::from_fn_with_state(
            auth.clone(),
            require_auth,
        )),
        None => router,
    };
    router
        .layer(TimeoutLayer::with_status_code(
            StatusCode::SERVICE_UNAVAILABLE,
            options.request_timeout,
        ))
        .layer(CatchPanicLayer::custom(panic_response))
}

/// Every answer says what it is: a browser does not guess a type for a
/// plain-text error that echoes the request.
async fn nosniff(mut res: Response) -> Response {
    res.headers_mut()
        .entry(X_CONTENT_TYPE_OPTIONS)
        .or_insert(HeaderValue::from_static("nosniff"));
    res
}

async fn require_auth(State(auth): State<Arc<BasicAuth>>, req: Request, next: Next) -> Response {
    let peer = req.extensions().get::<Peer>().map(|p| p.0.ip());
    let header = req.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match auth.check(peer, header).await {
        Verdict::Allowed => next.run(req).await,
        Verdict::Denied => (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Basic realm=\"docker-stats-exporter\"")],
            "Unauthorized\n",
        )
            .into_response(),
        Verdict::Busy => (
            StatusCode::TOO_MANY_REQUESTS,
            [(RETRY_AFTER, "1")],
            "Too many password checks from this address\n",
        )
            .into_response(),
    }
}

fn panic_response(panic: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let detail = panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_default();
    tracing::error!(panic = %detail, "request handler panicked");
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        "internal error\n",
    )
        .into_response()
}

/// Serves `router` (hardened by [`harden`]) on `listener` until `shutdown`
/// completes, then stops accepting and waits up to `shutdown_grace` for the
/// requests in flight.
pub async fn run(
    listener: TcpListener,
    router: Router,
    options: Options,
    shutdown: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let app = harden(router, &options);
    let tls = options.web.tls.clone().map(TlsAcceptor::from);
    let limits = ConnectionLimits::new(options.max_connections, options.max_connections_per_client);
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout)
        // hyper's floor is 8 KiB.
        .max_buf_size(options.max_header_bytes.max(8192));
    let handshake_timeout = options.header_read_timeout;
    let mut refusals = RefusalLog::default();

    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait, don't spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(why) => {
                refusals.note(peer, why);
                refuse(stream, tls.is_none());
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let stream = WriteTimeout::new(stream, options.write_timeout);
        let service = ConnectionService::new(
            app.clone(),
            peer,
            options.max_requests_per_connection,
            options.max_header_bytes,
        );
        let (http, tls, watcher) = (http.clone(), tls.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _slot = slot;
            match tls {
                None => serve_io(&http, stream, service, watcher).await,
                Some(acceptor) => {
                    match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => serve_io(&http, stream, service, watcher).await,
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(options.shutdown_grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("requests still in flight after the shutdown grace period");
    }
    Ok(())
}

/// Closes a connection over the limits at once; plain HTTP clients get a
/// 503 first if their socket takes it without waiting.
fn refuse(stream: tokio::net::TcpStream, plain: bool) {
    if plain {
        let _ = stream.try_write(
            b"HTTP/1.1 503 Service Unavailable\r\nconnection: close\r\nretry-after: 1\r\n\
              content-length: 0\r\n\r\n",
        );
    }
}

/// Logs refusals once a minute at most, with how many there were: a flood
/// must not flood the log too.
#[derive(Debug, Default)]
struct RefusalLog {
    since: Option<tokio::time::Instant>,
    count: u64,
}

impl RefusalLog {
    fn note(&mut self, peer: std::net::SocketAddr, why: Refused) {
        self.count += 1;
        let now = tokio::time::Instant::now();
        if self
            .since
            .is_none_or(|t| now - t >= Duration::from_secs(60))
        {
            tracing::warn!(
                %peer,
                reason = ?why,
                refused = self.count,
                "connections refused over the connection limits (logged once a minute)"
            );
            self.since = Some(now);
            self.count = 0;
        }
    }
}

async fn serve_io<I>(http: &http1::Builder, io: I, service: ConnectionService, watcher: Watcher)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = http.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, "connection ended with an error");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn start(router: Router, options: Options) -> (std::net::SocketAddr, impl Drop) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(listener, router, options, async {
            let _ = rx.await;
        }));
        struct Stop(
            Option<tokio::sync::oneshot::Sender<()>>,
            tokio::task::JoinHandle<anyhow::Result<()>>,
        );
        impl Drop for Stop {
            fn drop(&mut self) {
                let _ = self.0.take().map(|tx| tx.send(()));
                self.1.abort();
            }
        }
        (addr, Stop(Some(tx), task))
    }

    async fn raw(addr: std::net::SocketAddr, request: &str) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(request.as_bytes()).await.unwrap();
        let mut out = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out))
            .await
            .unwrap()
            .unwrap();
        String::from_utf8_lossy(&out).to_string()
    }

    fn options() -> Options {
        Options::new(Duration::from_secs(1), WebConfig::default())
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_and_the_server_goes_on() {
        async fn boom() -> &'static str {
            panic!("boom")
        }
        let router = Router::new()
            .route("/boom", get(boom))
            .route("/ok", get(|| async { "ok\n" }));
        let (addr, _stop) = start(router, options()).await;
        let answer = raw(addr, "GET /boom HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.0 500"), "{answer}");
        assert!(answer.ends_with("internal error\n"), "{answer}");
        let answer = raw(addr, "GET /ok HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_slow_handler_is_answered_503_at_the_request_timeout() {
        let router = Router::new().route(
            "/slow",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                "late\n"
            }),
        );
        let mut o = options();
        o.request_timeout = Duration::from_millis(300);
        let (addr, _stop) = start(router, o).await;
        let t = std::time::Instant::now();
        let answer = raw(addr, "GET /slow HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.0 503"), "{answer}");
        assert!(t.elapsed() < Duration::from_secs(3));
    }

    #[tokio::test]
    async fn half_a_header_is_cut_off_and_excess_connections_are_refused_at_once() {
        let router = Router::new().route("/ok", get(|| async { "ok\n" }));
        let mut o = options();
        o.header_read_timeout = Duration::from_millis(500);
        o.max_connections_per_client = 1;
        let (addr, _stop) = start(router, o).await;
        let mut slow = tokio::net::TcpStream::connect(addr).await.unwrap();
        slow.write_all(b"GET /ok HTTP/1.1\r\nHost: lo")
            .await
            .unwrap();
        // The client's only slot is taken: a second connection is refused,
        // not queued behind the first.
        let t = std::time::Instant::now();
        let answer = raw(addr, "GET /ok HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
        assert!(
            t.elapsed() < Duration::from_millis(400),
            "{:?}",
            t.elapsed()
        );
        // The half-sent header is cut off, and its slot is free again.
        let mut rest = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(3), slow.read_to_end(&mut rest))
            .await
            .expect("connection closed");
        let answer = raw(addr, "GET /ok HTTP/1.0\r\n\r\n").await;
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
    }

    #[tokio::test]
    async fn a_head_over_the_size_limit_is_answered_431() {
        let router = Router::new().route("/ok", get(|| async { "ok\n" }));
        let (addr, _stop) = start(router, options()).await;
        let big = format!("GET /ok HTTP/1.0\r\nX-Pad: {}\r\n\r\n", "a".repeat(33_000));
        let answer = raw(addr, &big).await;
        assert!(answer.starts_with("HTTP/1.0 431"), "{answer}");
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{answer}"
        );
        // A head that never ends is cut off when the buffer is full, not
        // held growing.
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /ok HTTP/1.1\r\nX-Pad: ").await.unwrap();
        let pad = vec![b'a'; 1024];
        let mut sent = 0;
        while sent < 400 * 1024 && s.write_all(&pad).await.is_ok() {
            sent += pad.len();
        }
        assert!(
            sent < 400 * 1024,
            "the server took {sent} bytes of one head"
        );
        let fits = format!("GET /ok HTTP/1.0\r\nX-Pad: {}\r\n\r\n", "a".repeat(16_000));
        let answer = raw(addr, &fits).await;
        assert!(answer.starts_with("HTTP/1.0 200"), "{answer}");
        assert!(
            answer.contains("x-content-type-options: nosniff"),
            "{answer}"
        );
    }

    #[tokio::test]
    async fn a_client_that_stops_reading_is_dropped_at_the_write_timeout() {
        const BIG: usize = 64 << 20;
        let router = Router::new().route("/big", get(|| async { vec![b'x'; BIG] }));
        let mut o = options();
        o.write_timeout = Duration::from_millis(300);
        let (addr, _stop) = start(router, o).await;
        let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /big HTTP/1.0\r\n\r\n").await.unwrap();
        // Once the answer has started (making its body takes a while on a
        // busy machine), socket buffers take a few MB; the rest waits for a
        // reader that comes back after the write timeout.
        let mut first = [0u8; 1];
        s.read_exact(&mut first).await.expect("the answer starts");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut got = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut got))
            .await
            .expect("the connection ends");
        assert!(got.len() < BIG / 2, "{} bytes arrived", got.len());
    }

    #[tokio::test]
    async fn a_connection_closes_after_its_request_cap() {
        let router = Router::new().route("/ok", get(|| async { "ok\n" }));
        let mut o = options();
        o.max_requests_per_connection = 3;
        let (addr, _stop) = start(router, o).await;
        let answer = raw(addr, &"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n".repeat(10)).await;
        assert_eq!(answer.matches("HTTP/1.1 200").count(), 3, "{answer}");
        assert!(answer.contains("connection: close"), "{answer}");
    }

    #[tokio::test]
    async fn shutdown_stops_accepting_and_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run(
            listener,
            Router::new().route("/ok", get(|| async { "ok\n" })),
            options(),
            async {
                let _ = rx.await;
            },
        ));
        assert!(raw(addr, "GET /ok HTTP/1.0\r\n\r\n")
            .await
            .contains("200 OK"));
        // An idle keep-alive connection does not hold the shutdown up.
        let mut idle = tokio::net::TcpStream::connect(addr).await.unwrap();
        idle.write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        let mut buf = [0u8; 256];
        let _ = idle.read(&mut buf).await.unwrap();
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(tokio::net::TcpStream::connect(addr).await.is_err());
    }
}
