//! 50 clients scraping as fast as they can for a bounded time (loopback
//! only): no failed answer, engine load bounded by coalescing, memory flat.
//! `DSE_LOAD_SECS` sets the length (default 60).

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{direct_stats, names_config, unique, Container, Exporter, Metrics, TempDir};

/// RSS growth allowed from a quarter into the run to its end. Measured over
/// 60 s on a busy 2-core host, 11 runs: +0.1 to +1.3 MiB, mostly the proxy's
/// own log of requests (about 6 KB/s). 8 MiB leaves room for allocator
/// noise; keeping anything per answer (some 2700 answers of tens of KiB)
/// would exceed it many times over.
const RSS_BOUND_KIB: u64 = 8 * 1024;

#[tokio::test(flavor = "multi_thread")]
async fn fifty_clients_for_a_minute_all_answered_with_engine_load_bounded() {
    let secs: u64 = std::env::var("DSE_LOAD_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    let names: Vec<String> = (0..10).map(|i| unique(&format!("dse-load-{i}"))).collect();
    let _c: Vec<Container> = names.iter().map(|n| Container::sleeper(n, &[])).collect();
    let dir = TempDir::new("load");
    let proxy = Proxy::start(&dir.0.join("e.sock"), common::engine_socket());
    let exporter = Exporter::start(&names_config(&names, ""), &proxy.url()).await;
    exporter.metrics().await; // warm: later rounds are one-shot

    let stats_start = proxy.count("/stats");
    let lists_start = proxy.count("/containers/json");
    let started = Instant::now();
    let until = started + Duration::from_secs(secs);
    // The test process's RSS (exporter, clients and proxy) once a second.
    let rss = tokio::spawn(async move {
        let mut samples = Vec::new();
        while Instant::now() < until {
            samples.push((started.elapsed(), common::rss_kib()));
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        samples
    });
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
    let rounds = proxy.count("/containers/json") - lists_start;
    let rss_end = common::rss_kib();
    let samples = rss.await.unwrap();
    // Warmed up: a quarter into the run, every client has been answered
    // many times and the allocator holds what steady load needs.
    let warm = Duration::from_secs(secs) / 4;
    let rss_warm = samples
        .iter()
        .find(|(at, _)| *at >= warm)
        .map(|(_, kib)| *kib)
        .expect("an RSS sample after the warm-up");
    eprintln!(
        "load: {secs} s, 50 clients, 10 containers: {ok} answers ({:.1}/s), {failed} failed, \
         slowest {worst:?}, {rounds} rounds, {stats_calls} engine stats calls ({:.1}/s, \
         {:.1} per container per s), test-process RSS KiB at warm-up {rss_warm}, end {rss_end}, \
         samples {:?}",
        ok as f64 / elapsed,
        stats_calls as f64 / elapsed,
        stats_calls as f64 / elapsed / 10.0,
        samples.iter().map(|(_, kib)| kib).collect::<Vec<_>>()
    );
    assert_eq!(failed, 0);
    assert!(ok >= 50 * secs / 3, "only {ok} answers");
    // Coalescing: clients share rounds, each round asks each container once.
    assert!(
        stats_calls <= 10 * rounds,
        "{stats_calls} stats calls in {rounds} rounds"
    );
    assert!(
        rounds as u64 * 10 <= ok,
        "{rounds} rounds for {ok} answers: scrapes do not share rounds"
    );
    if !direct_stats() {
        // One shared round per engine tick at most: about one stats call
        // per container per second, however many clients ask.
        assert!(
            (stats_calls as f64) <= 10.0 * (elapsed + 2.0) * 1.2,
            "{stats_calls} stats calls in {elapsed} s"
        );
    }
    // No growth under steady load: RSS_BOUND_KIB explains the margin.
    assert!(
        rss_end <= rss_warm + RSS_BOUND_KIB,
        "RSS grew from {rss_warm} KiB after warm-up to {rss_end} KiB"
    );
}
