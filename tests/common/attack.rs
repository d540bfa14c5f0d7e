//! A small attack harness for the hostile-client tests: floods of raw TCP
//! clients from other loopback addresses (127.0.0.2 and up: Linux routes all
//! of 127/8 to `lo`), on a runtime of their own that stops them all when
//! dropped, and a timed client from 127.0.0.1 to measure the scraper's view.

use std::future::Future;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// The address a flood's client `i` of `addresses` comes from.
pub fn attacker(i: usize, addresses: usize) -> Ipv4Addr {
    Ipv4Addr::new(127, 0, 1, 2 + (i % addresses.max(1)) as u8)
}

/// A TCP connection to `to` from `from` (port chosen by the kernel).
pub async fn connect_from(from: Ipv4Addr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::from((from, 0)))?;
    socket.connect(to).await
}

/// Lifts this process's open-file limit: a flood holds a socket per client.
pub fn raise_fd_limit(want: u64) {
    let got = rlimit::increase_nofile_limit(want).unwrap_or(0);
    assert!(got >= want, "open-file limit {got}, the flood needs {want}");
}

/// The peak resident set of process `pid`, in KiB (VmHWM).
pub fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The exporter binary the attack tests run: `DSE_ATTACK_BIN` when set (to
/// measure another build with the same harness), else the one cargo built.
pub fn exporter_bin() -> String {
    std::env::var("DSE_ATTACK_BIN").unwrap_or_else(|_| super::BIN.to_string())
}

/// One answer as the timed client saw it.
#[derive(Debug, Clone)]
pub struct Timed {
    pub status: u16,
    pub body: String,
    pub took: Duration,
}

/// `GET path` over HTTP/1.0 from 127.0.0.1 with `headers`, read to the end;
/// `Err` on failure or after `timeout`, with the time it took.
pub async fn timed_get(
    addr: SocketAddr,
    path: &str,
    headers: &[(&str, &str)],
    timeout: Duration,
) -> Result<Timed, (String, Duration)> {
    let start = Instant::now();
    let exchange = async {
        let mut s = connect_from(Ipv4Addr::LOCALHOST, addr).await?;
        let mut req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).await?;
        let mut out = Vec::new();
        s.read_to_end(&mut out).await?;
        Ok::<_, std::io::Error>(String::from_utf8_lossy(&out).to_string())
    };
    let text = match tokio::time::timeout(timeout, exchange).await {
        Ok(Ok(text)) => text,
        Ok(Err(e)) => return Err((e.to_string(), start.elapsed())),
        Err(_) => return Err(("timed out".into(), start.elapsed())),
    };
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default();
    Ok(Timed {
        status,
        body,
        took: start.elapsed(),
    })
}

/// The median of `n` timings of `get` (failures count as their time);
/// every sample too, in order (the worst is `samples.iter().max()`).
pub async fn median_of<F, Fut>(n: usize, mut get: F) -> (Duration, Vec<Duration>)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<Timed, (String, Duration)>>,
{
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        samples.push(match get().await {
            Ok(t) if t.status == 200 => t.took,
            Ok(t) => panic!("answer {}: {}", t.status, t.body),
            Err((_, took)) => took,
        });
    }
    let mut sorted = samples.clone();
    sorted.sort();
    (sorted[n / 2], samples)
}

/// Clients on a runtime of their own; dropping it stops every one.
pub struct Flood {
    runtime: Option<tokio::runtime::Runtime>,
    /// Events the clients counted (answers, connections...), as they define.
    pub count: Arc<AtomicUsize>,
}

impl Flood {
    /// `n` clients, client `i` running `client(i, count)` until the flood is
    /// dropped.
    pub fn start<F, Fut>(n: usize, client: F) -> Self
    where
        F: Fn(usize, Arc<AtomicUsize>) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("a runtime for the flood");
        let count = Arc::new(AtomicUsize::new(0));
        for i in 0..n {
            runtime.spawn(client(i, Arc::clone(&count)));
        }
        Self {
            runtime: Some(runtime),
            count,
        }
    }

    /// What the clients counted so far.
    pub fn counted(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }
}

impl Drop for Flood {
    fn drop(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

/// Waits up to `timeout` for `flood` to count `n`; what it counted.
pub async fn wait_for_count(flood: &Flood, n: usize, timeout: Duration) -> usize {
    let deadline = Instant::now() + timeout;
    while flood.counted() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    flood.counted()
}
