//! A pass-through proxy between the exporter and the real engine's socket. It
//! records every request line, can delay or hold requests and inject faults;
//! the engine behind it is the real one.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::sync::watch;

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
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

/// What the proxy records and what the test sets, shared with every
/// connection.
#[derive(Default)]
struct Shared {
    /// Every request as it arrived.
    seen: Mutex<Vec<Seen>>,
    /// Requests sent on to the engine, after any delay or hold.
    forwarded: Mutex<Vec<Seen>>,
    /// Requests whose answer head came back from the engine, and when.
    answered: Mutex<Vec<(Seen, Instant)>>,
    delay: Mutex<(String, Duration)>,
    hold: Mutex<Option<(String, watch::Receiver<bool>)>>,
    fault: Mutex<Option<(String, Fault)>>,
    in_flight: InFlight,
    all_in_flight: InFlight,
}

/// Requests being answered now, and the most there ever were at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    max: AtomicUsize,
}

struct InFlightGuard<'a>(&'a InFlight);

impl<'a> InFlightGuard<'a> {
    fn enter(f: &'a InFlight) -> Self {
        let now = f.now.fetch_add(1, SeqCst) + 1;
        f.max.fetch_max(now, SeqCst);
        Self(f)
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, SeqCst);
    }
}

impl Shared {
    /// Records, delays, holds, then forwards `req` or answers with the
    /// fault set for it.
    async fn handle(
        &self,
        engine: &str,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, std::io::Error> {
        let this = Seen {
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
        };
        // Held until the engine's answer head is back.
        let _guard = this
            .path
            .contains("/stats")
            .then(|| InFlightGuard::enter(&self.in_flight));
        let _all = InFlightGuard::enter(&self.all_in_flight);
        self.seen.lock().unwrap().push(this.clone());
        let wait = {
            let (part, wait) = &*self.delay.lock().unwrap();
            if this.path.contains(part.as_str()) {
                *wait
            } else {
                Duration::ZERO
            }
        };
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let gate = self
            .hold
            .lock()
            .unwrap()
            .as_ref()
            .filter(|(part, _)| this.path.contains(part.as_str()))
            .map(|(_, open)| open.clone());
        if let Some(mut open) = gate {
            // A dropped sender opens the gate too.
            let _ = open.wait_for(|open| *open).await;
        }
        let injected = self
            .fault
            .lock()
            .unwrap()
            .as_ref()
            .filter(|(part, _)| req.uri().path().contains(part.as_str()))
            .map(|(_, f)| *f)
            .unwrap_or(Fault::None);
        match injected {
            Fault::None => {
                self.forwarded.lock().unwrap().push(this.clone());
                let head = forward(engine, req).await;
                self.answered.lock().unwrap().push((this, Instant::now()));
                head.map(|r| r.map(Body::Engine))
            }
            Fault::ServerError => Ok(canned(500, "{\"message\":\"injected failure\"}")),
            Fault::Garbage => Ok(canned(200, "this is not json {{{")),
        }
    }
}

impl Proxy {
    /// Listens on `socket` and forwards to `engine` (a unix socket path).
    pub fn start(socket: &Path, engine: &str) -> Self {
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket).expect("bind proxy socket");
        let shared: Arc<Shared> = Arc::default();
        let engine: Arc<str> = engine.into();
        let task = tokio::spawn({
            let shared = shared.clone();
            async move {
                while let Ok((stream, _)) = listener.accept().await {
                    let (shared, engine) = (shared.clone(), engine.clone());
                    let service = service_fn(move |req: Request<Incoming>| {
                        let (shared, engine) = (shared.clone(), engine.clone());
                        async move { shared.handle(&engine, req).await }
                    });
                    tokio::spawn(async move {
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            }
        });
        Self {
            socket: socket.to_path_buf(),
            shared,
            task,
        }
    }

    /// Answers requests whose path contains `part` with `fault` instead of
    /// forwarding them.
    pub fn set_fault(&self, part: &str, fault: Fault) {
        *self.shared.fault.lock().unwrap() = Some((part.to_string(), fault));
    }

    /// The most stats requests that were waiting on the engine at once.
    pub fn max_stats_in_flight(&self) -> usize {
        self.shared.in_flight.max.load(SeqCst)
    }

    /// The most requests of any kind that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.shared.all_in_flight.max.load(SeqCst)
    }

    /// The `DOCKER_HOST` form of the proxy's socket.
    pub fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared.seen.lock().unwrap().clone()
    }

    /// Requests whose path contains `part`.
    pub fn count(&self, part: &str) -> usize {
        self.seen().iter().filter(|s| s.path.contains(part)).count()
    }

    /// Requests whose path contains `part` that were sent on to the engine.
    pub fn forwarded(&self, part: &str) -> usize {
        let forwarded = self.shared.forwarded.lock().unwrap();
        forwarded.iter().filter(|s| s.path.contains(part)).count()
    }

    /// Waits until a request whose path contains `part` has reached the
    /// proxy (held ones included).
    pub async fn wait_for_request(&self, part: &str) {
        self.wait_for("at the proxy", part, Self::count).await;
    }

    /// Waits until a request whose path contains `part` has been sent on to
    /// the engine.
    pub async fn wait_for_forwarded(&self, part: &str) {
        self.wait_for("sent to the engine", part, Self::forwarded)
            .await;
    }

    async fn wait_for(&self, place: &str, part: &str, count: fn(&Self, &str) -> usize) {
        let what = format!("a request for {part} {place}");
        super::wait::wait_until_async(&what, Duration::from_secs(30), || async {
            match count(self, part) {
                0 => Err(format!("{:?}", self.seen())),
                _ => Ok(()),
            }
        })
        .await;
    }

    /// When the engine's answers (their heads) to requests whose path
    /// contains `part` came back, in order.
    pub fn answered_at(&self, part: &str) -> Vec<Instant> {
        let answered = self.shared.answered.lock().unwrap();
        answered
            .iter()
            .filter(|(s, _)| s.path.contains(part))
            .map(|(_, at)| *at)
            .collect()
    }

    /// Holds every later request whose path contains `part` until the
    /// returned gate is opened or dropped (they are recorded as seen
    /// meanwhile).
    pub fn hold(&self, part: &str) -> Gate {
        let (open, rx) = watch::channel(false);
        *self.shared.hold.lock().unwrap() = Some((part.to_string(), rx));
        Gate(open)
    }

    /// Holds every later request whose path contains `part` this long
    /// before forwarding it.
    pub fn set_delay(&self, part: &str, delay: Duration) {
        *self.shared.delay.lock().unwrap() = (part.to_string(), delay);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

/// Opens when told or dropped: the requests [`Proxy::hold`] held go on.
pub struct Gate(watch::Sender<bool>);

impl Gate {
    /// Lets the held requests, and later ones, through.
    pub fn open(self) {}
}

impl Drop for Gate {
    fn drop(&mut self) {
        let _ = self.0.send(true);
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
