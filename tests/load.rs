//! 50 clients scraping as fast as they can for a bounded time (loopback
//! only): no failed answer, engine load bounded by coalescing, memory flat.
//! `DSE_LOAD_SECS` sets the length (default 60).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{Container, Exporter, Metrics, TempDir};

#[tokio::test(flavor = "multi_thread")]
async fn fifty_clients_for_a_minute_all_answered_with_engine_load_bounded() {
    let secs: u64 = std::env::var("DSE_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let names: Vec<String> = (0..10).map(|i| format!("dse-load-{i}")).collect();
    let _c: Vec<Container> = names
        .iter()
        .map(|n| Container::sleeper(n, &["--label", "dse.load=1"]))
        .collect();
    let dir = TempDir::new("load");
    let proxy = Proxy::start(&dir.0.join("e.sock"), "/var/run/docker.sock");
    let exporter = Exporter::start("[containers]\nlabels = [\"dse.load=1\"]\n", &proxy.url()).await;
    exporter.metrics().await; // warm: later rounds are one-shot

    let rss_start = common::rss_kib();
    let stats_start = proxy.count("/stats");
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    let clients: Vec<_> = (0..50)
        .map(|_| {
            let addr = exporter.addr;
            let names = names.clone();
            tokio::spawn(async move {
                let (mut ok, mut failed, mut worst) = (0u64, 0u64, Duration::ZERO);
                while Instant::now() < until {
                    let t = Instant::now();
                    let (status, body) = common::get(addr, "/metrics", &[]).await;
                    worst = worst.max(t.elapsed());
                    let complete = status == 200
                        && Metrics::parse(&body).names("container_memory_usage_bytes") == names;
                    if complete {
                        ok += 1;
                    } else {
                        failed += 1;
                    }
                }
                (ok, failed, worst)
            })
        })
        .collect();
    let (mut ok, mut failed, mut worst) = (0, 0, Duration::ZERO);
    for c in clients {
        let (o, f, w) = c.await.unwrap();
        ok += o;
        failed += f;
        worst = worst.max(w);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let stats_calls = proxy.count("/stats") - stats_start;
    let rss_end = common::rss_kib();
    eprintln!(
        "load: {secs} s, 50 clients, 10 containers: {ok} answers ({:.1}/s), {failed} failed, \
         slowest {worst:?}, {stats_calls} engine stats calls ({:.1}/s, {:.1} per container per s), \
         test-process RSS {rss_start} -> {rss_end} KiB",
        ok as f64 / elapsed,
        stats_calls as f64 / elapsed,
        stats_calls as f64 / elapsed / 10.0
    );
    assert_eq!(failed, 0);
    assert!(ok >= 50 * secs / 3, "only {ok} answers");
    // One shared round per engine tick at most: about one stats call per
    // container per second, however many clients ask.
    assert!(
        (stats_calls as f64) <= 10.0 * (elapsed + 2.0) * 1.2,
        "{stats_calls} stats calls in {elapsed} s"
    );
    assert!(
        rss_end < rss_start + 32 * 1024,
        "RSS grew from {rss_start} to {rss_end} KiB"
    );
}
