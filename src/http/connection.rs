//! What one connection adds to each of its requests: the client's address
//! (for the auth throttle), a cap on the size of a request's head (hyper's
//! buffer limit bounds memory but lets a head of up to about twice it
//! through), and a cap on the requests it may send, pipelined or not, after
//! which hyper closes it.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use axum::body::Body;
use axum::http::header::{CONNECTION, CONTENT_TYPE, X_CONTENT_TYPE_OPTIONS};
use axum::http::{HeaderValue, Request, Response, StatusCode};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::service::TowerToHyperService;

/// Requests one connection may send (nginx's `keepalive_requests` is 1000;
/// Prometheus sends one per scrape and reconnects at no cost). Beyond it
/// queued pipelined requests are dropped with the connection.
pub const MAX_REQUESTS_PER_CONNECTION: usize = 100;

/// The client's address, in every request's extensions.
#[derive(Debug, Clone, Copy)]
pub struct Peer(pub SocketAddr);

/// The router as one connection's service.
#[derive(Debug, Clone)]
pub struct ConnectionService {
    inner: TowerToHyperService<Router>,
    peer: SocketAddr,
    served: Arc<AtomicUsize>,
    max_requests: usize,
    max_head: usize,
}

impl ConnectionService {
    /// `router` for a connection from `peer`, answering 431 to heads over
    /// `max_head` bytes.
    pub fn new(router: Router, peer: SocketAddr, max_requests: usize, max_head: usize) -> Self {
        Self {
            inner: TowerToHyperService::new(router),
            peer,
            served: Arc::default(),
            max_requests: max_requests.max(1),
            max_head,
        }
    }
}

/// About the bytes of a request's head as sent.
fn head_size<B>(req: &Request<B>) -> usize {
    let line = req.method().as_str().len() + req.uri().to_string().len() + 12;
    let fields: usize = req
        .headers()
        .iter()
        .map(|(k, v)| k.as_str().len() + v.len() + 4)
        .sum();
    line + fields
}

fn too_large() -> Response<Body> {
    let mut res = Response::new(Body::from("Request header fields too large\n"));
    *res.status_mut() = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(CONNECTION, HeaderValue::from_static("close"));
    res
}

type Answer = Result<Response<Body>, std::convert::Infallible>;

impl hyper::service::Service<Request<Incoming>> for ConnectionService {
    type Response = Response<Body>;
    type Error = std::convert::Infallible;
    type Future = Pin<Box<dyn Future<Output = Answer> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        if head_size(&req) > self.max_head {
            return Box::pin(async { Ok(too_large()) });
        }
        req.extensions_mut().insert(Peer(self.peer));
        let served = self.served.fetch_add(1, Ordering::Relaxed);
        let last = served + 1 >= self.max_requests;
        let inner = self.inner.clone();
        Box::pin(async move {
            // One request per turn on the one thread that serves HTTP: a
            // connection with requests pipelined would otherwise answer
            // them back to back while a new scraper's connection waits.
            if served > 0 {
                tokio::task::yield_now().await;
            }
            let mut res = inner.call(req).await?;
            if last {
                res.headers_mut()
                    .insert(CONNECTION, HeaderValue::from_static("close"));
            }
            Ok(res)
        })
    }
}
