//! A pass-through proxy between the exporter and the real engine's socket. It
//! records every request line and can delay answers; the engine behind it is
//! the real one.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

/// A request as the engine received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    pub method: String,
    pub path: String,
}

/// A fault the proxy injects instead of the engine's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Forward as is.
    None,
    /// `500 Internal Server Error` with an engine-style JSON message.
    ServerError,
    /// `200 OK` with a body that is not JSON.
    Garbage,
}

/// A running proxy; it stops when dropped.
pub struct Proxy {
    pub socket: PathBuf,
    seen: Arc<Mutex<Vec<Seen>>>,
    delay: Arc<Mutex<(String, Duration)>>,
    in_flight: Arc<InFlight>,
    fault: Arc<Mutex<(String, Fault)>>,
    task: tokio::task::JoinHandle<()>,
}

/// Requests being answered now, and the most there ever were at once.
#[derive(Debug, Default)]
struct InFlight {
    now: std::sync::atomic::AtomicUsize,
    max: std::sync::atomic::AtomicUsize,
}

struct InFlightGuard(Arc<InFlight>);

impl InFlightGuard {
    fn enter(f: &Arc<InFlight>) -> Self {
        use std::sync::atomic::Ordering::SeqCst;
        let now = f.now.fetch_add(1, SeqCst) + 1;
        f.max.fetch_max(now, SeqCst);
        Self(f.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl Proxy {
    /// Listens on `socket` and forwards to `engine` (a unix socket path).
    pub fn start(socket: &Path, engine: &str) -> Self {
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket).expect("bind proxy socket");
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let delay: Arc<Mutex<(String, Duration)>> = Arc::default();
        let in_flight: Arc<InFlight> = Arc::default();
        let fault: Arc<Mutex<(String, Fault)>> = Arc::new(Mutex::new((String::new(), Fault::None)));
        let engine = engine.to_string();
        let (seen2, delay2, flight2) = (seen.clone(), delay.clone(), in_flight.clone());
        let fault2 = fault.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (seen, delay, engine) = (seen2.clone(), delay2.clone(), engine.clone());
                let flight = flight2.clone();
                let fault = fault2.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (seen, delay, engine) = (seen.clone(), delay.clone(), engine.clone());
                        let flight = flight.clone();
                        let fault = fault.clone();
                        async move {
                            let path = req
                                .uri()
                                .path_and_query()
                                .map(|p| p.to_string())
                                .unwrap_or_default();
                            let wait = {
                                let (part, wait) = &*delay.lock().unwrap();
                                if path.contains(part.as_str()) {
                                    *wait
                                } else {
                                    Duration::ZERO
                                }
                            };
                            // Held until the engine's answer head is back.
                            let _guard = path
                                .contains("/stats")
                                .then(|| InFlightGuard::enter(&flight));
                            seen.lock().unwrap().push(Seen {
                                method: req.method().to_string(),
                                path,
                            });
                            if !wait.is_zero() {
                                tokio::time::sleep(wait).await;
                            }
                            let injected = {
                                let (part, f) = &*fault.lock().unwrap();
                                let hit =
                                    !part.is_empty() && req.uri().path().contains(part.as_str());
                                if hit {
                                    *f
                                } else {
                                    Fault::None
                                }
                            };
                            match injected {
                                Fault::None => {
                                    forward(&engine, req).await.map(|r| r.map(Body::Engine))
                                }
                                Fault::ServerError => {
                                    Ok(canned(500, "{\"message\":\"injected failure\"}"))
                                }
                                Fault::Garbage => Ok(canned(200, "this is not json {{{")),
                            }
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Self {
            socket: socket.to_path_buf(),
            seen,
            delay,
            in_flight,
            fault,
            task,
        }
    }

    /// Answers requests whose path contains `part` with `fault` instead of
    /// forwarding them.
    pub fn set_fault(&self, part: &str, fault: Fault) {
        *self.fault.lock().unwrap() = (part.to_string(), fault);
    }

    /// The most stats requests that were waiting on the engine at once.
    pub fn max_stats_in_flight(&self) -> usize {
        self.in_flight.max.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The `DOCKER_HOST` form of the proxy's socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    /// Requests whose path contains `part`.
    pub fn count(&self, part: &str) -> usize {
        self.seen().iter().filter(|s| s.path.contains(part)).count()
    }

    /// Holds every later request whose path contains `part` this long
    /// before forwarding it.
    pub fn set_delay(&self, part: &str, delay: Duration) {
        *self.delay.lock().unwrap() = (part.to_string(), delay);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Either the engine's streamed answer or a canned one.
enum Body {
    Engine(Incoming),
    Canned(http_body_util::Full<hyper::body::Bytes>),
}

impl hyper::body::Body for Body {
    type Data = hyper::body::Bytes;
    type Error = hyper::Error;

    fn poll_frame(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        match self.get_mut() {
            Body::Engine(b) => std::pin::Pin::new(b).poll_frame(cx),
            Body::Canned(b) => std::pin::Pin::new(b)
                .poll_frame(cx)
                .map(|f| f.map(|r| r.map_err(|never| match never {}))),
        }
    }
}

fn canned(status: u16, body: &'static str) -> Response<Body> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::Canned(http_body_util::Full::new(
            hyper::body::Bytes::from_static(body.as_bytes()),
        )))
        .unwrap()
}

async fn forward(
    engine: &str,
    req: Request<Incoming>,
) -> Result<Response<Incoming>, std::io::Error> {
    let stream = tokio::net::UnixStream::connect(engine).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(conn);
    sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)
}
