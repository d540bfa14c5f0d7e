//! An engine whose listen queue is full refuses new connections with EAGAIN
//! for a moment (a burst of scrapes, a daemon busy elsewhere). The exporter
//! sends the request again within the scrape's deadline instead of failing
//! the container or the list call.
//!
//! The engine here is a small API server on a unix socket whose listen
//! backlog the test fills itself, answering with recorded Docker 26.1 JSON.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use common::{wait_until_async, Exporter, Metrics, TempDir};

/// A recorded answer, compact and on one line as the engine sends it (the
/// client reads stats as JSON lines).
fn fixture(name: &str) -> String {
    let text = std::fs::read_to_string(format!(
        "{}/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    format!("{value}\n")
}

/// The one running container of the recorded list.
const ID: &str = "8b43040e0a4cf7dc57f1c1c421b787bc46f51d5b6597168876c0aef0efc90f01";

async fn answer(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, std::convert::Infallible> {
    let path = req.uri().path().to_string();
    let body = if path.ends_with("/_ping") {
        "OK".to_string()
    } else if path.ends_with("/version") {
        fixture("version-docker26.1.json")
    } else if path.ends_with("/info") {
        fixture("info-docker26.1.json")
    } else if path.ends_with("/containers/json") {
        let list: Vec<serde_json::Value> =
            serde_json::from_str(&fixture("containers-list-docker20.10.json")).unwrap();
        let one: Vec<_> = list.into_iter().filter(|c| c["Id"] == ID).collect();
        serde_json::to_string(&one).unwrap()
    } else if path.ends_with("/stats") {
        fixture("stats-cgroupv1-docker26.1-cap-busy-oneshot.json")
    } else if path.ends_with("/json") {
        fixture("inspect-docker20.10-cap-busy.json")
    } else {
        return Ok(Response::builder()
            .status(404)
            .body(Full::new(Bytes::from("{\"message\":\"not here\"}")))
            .unwrap());
    };
    Ok(Response::builder()
        .header("content-type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap())
}

/// Log lines the exporter writes, for waiting on what it did.
#[derive(Clone, Default)]
struct Logs(Arc<Mutex<Vec<u8>>>);

impl Write for Logs {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Logs {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).to_string()
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_full_listen_queue_is_waited_out_within_the_deadline() {
    let logs = Logs::default();
    let writer = logs.clone();
    tracing_subscriber::fmt()
        .with_max_level(tracing::Level::DEBUG)
        .with_writer(move || writer.clone())
        .init();

    let dir = TempDir::new("busy");
    let path = dir.0.join("engine.sock");
    // A backlog of 0: one unaccepted connection fills the queue, and every
    // further non-blocking connect fails with EAGAIN.
    let socket = socket2::Socket::new(socket2::Domain::UNIX, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(&socket2::SockAddr::unix(&path).unwrap())
        .unwrap();
    socket.listen(0).unwrap();
    let listener: std::os::unix::net::UnixListener = socket.into();
    let filler = std::os::unix::net::UnixStream::connect(&path).unwrap();

    let exporter = Exporter::start("", &format!("unix://{}", path.display())).await;
    let scrape = exporter.scrape_in_background();

    // The exporter has met the full queue and is asking again.
    wait_until_async("a retry logged", Duration::from_secs(10), || async {
        let text = logs.text();
        match text.contains("engine busy") {
            true => Ok(()),
            false => Err(text),
        }
    })
    .await;
    // Now the engine catches up: the filler goes, connections are served.
    drop(filler);
    listener.set_nonblocking(true).unwrap();
    let listener = tokio::net::UnixListener::from_std(listener).unwrap();
    let server = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), hyper::service::service_fn(answer))
                    .await;
            });
        }
    });

    let (status, body) = scrape.await.unwrap();
    server.abort();
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[]), Some(1.0), "{body}");
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        ["cap-io"],
        "{}",
        logs.text()
    );
    for kind in ["engine", "timeout"] {
        assert_eq!(
            m.value("docker_stats_scrape_errors_total", &[("kind", kind)]),
            Some(0.0),
            "{body}"
        );
    }
}
