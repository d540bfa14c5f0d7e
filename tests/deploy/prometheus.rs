//! A real Prometheus (Debian's 2.42) scrapes the exporter every 2 s with a
//! 2 s timeout; its HTTP API must show `up == 1` and the container's series.

#![allow(clippy::unwrap_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use common::{names_config, unique, wait_until_async, ChildServer, Container, Exporter, TempDir};

/// Where Prometheus listens, from its `msg="Listening on" address=ADDR` line.
fn prometheus_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("msg=\"Listening on\"") {
        return None;
    }
    let (_, rest) = line.split_once("address=")?;
    rest.split_whitespace().next()?.parse().ok()
}

/// `GET /api/v1/query?query=...`: the result vector; an error while
/// Prometheus is not ready (it answers 503 until its storage is open).
async fn try_query(addr: SocketAddr, promql: &str) -> Result<Vec<serde_json::Value>, String> {
    let encoded = common::http::query_escape(promql);
    let (status, body) = common::get(addr, &format!("/api/v1/query?query={encoded}"), &[]).await;
    if status != 200 {
        return Err(format!("{promql}: HTTP {status}: {body}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{promql}: {e}: {body}"))?;
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// Prometheus on 127.0.0.1:0 with `config`, its data in `dir`.
fn prometheus(dir: &TempDir, config: &str) -> ChildServer {
    let file = dir.0.join("prometheus.yml");
    std::fs::write(&file, config).unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", file.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0");
    ChildServer::spawn(cmd, prometheus_addr)
}

/// [`try_query`] that must succeed.
async fn query(addr: SocketAddr, promql: &str) -> Vec<serde_json::Value> {
    try_query(addr, promql)
        .await
        .unwrap_or_else(|e| panic!("{e}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn prometheus_scrapes_every_2s_and_finds_up_and_the_series() {
    let c = Container::sleeper(&unique("dse-prom-target"), &["--memory", "24m"]);
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    let limit = format!("container_memory_limit_bytes{{name=\"{}\"}}", c.name);
    let cpu = format!("container_cpu_usage_percent{{name=\"{}\"}}", c.name);
    let dir = TempDir::new("prometheus");
    let prometheus = prometheus(
        &dir,
        &format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n\
             scrape_configs:\n  - job_name: docker-stats\n    static_configs:\n      \
             - targets: ['{}']\n",
            exporter.addr
        ),
    );
    let addr = prometheus.addr;

    let what = format!("up == 1 and the series of {} in Prometheus", c.name);
    wait_until_async(&what, Duration::from_secs(60), || async {
        let series = try_query(addr, &limit).await?;
        let up = try_query(addr, "up{job=\"docker-stats\"}").await?;
        let cpu = try_query(addr, &cpu).await?;
        let up_is_1 = up.first().is_some_and(|s| s["value"][1] == "1");
        if up_is_1 && !series.is_empty() && !cpu.is_empty() {
            Ok(())
        } else {
            Err(format!("up {up:?}, limit {series:?}, cpu {cpu:?}"))
        }
    })
    .await;

    let series = query(addr, &limit).await;
    assert_eq!(series[0]["value"][1], "25165824");
    let docker_up = query(addr, "docker_up").await;
    assert_eq!(docker_up[0]["value"][1], "1");
    // Scrapes within the 2 s timeout, with the timeout header.
    let took = query(addr, "scrape_duration_seconds{job=\"docker-stats\"}").await;
    let took: f64 = took[0]["value"][1].as_str().unwrap().parse().unwrap();
    assert!(took < 2.0, "scrape took {took} s");
    // A 2 s timeout is shorter than a two-tick stats call: new containers
    // are asked with one-shot, never timed out.
    let timeouts = query(addr, "docker_stats_scrape_errors_total{kind=\"timeout\"}").await;
    assert_eq!(timeouts[0]["value"][1], "0");
}

/// The README's one-target-per-engine set-up, deploy/prometheus/engines.yml
/// as shipped (only the exporter's address and the interval replaced),
/// against an exporter reading two engines: each engine is a target of its
/// own, named by `instance`, with only its own series.
#[tokio::test(flavor = "multi_thread")]
async fn one_target_per_engine_with_the_shipped_relabelling() {
    use docker_stats_exporter::engine::fake::FakeEngine;
    use docker_stats_exporter::engine::EngineApi;
    use std::sync::Arc;

    let (laptop, buildbox) = (FakeEngine::docker("26.1.5"), FakeEngine::docker("26.1.5"));
    laptop.add("editor", 100_000_000);
    buildbox.add("ci-runner", 100_000_000);
    let engines: Vec<(&str, Arc<dyn EngineApi>)> = vec![
        ("laptop", Arc::new(laptop)),
        ("buildbox", Arc::new(buildbox)),
    ];
    let exporter = Exporter::with_engines(engines).await;

    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/prometheus/engines.yml"
    ))
    .unwrap();
    assert!(shipped.contains("exporter-host:8091"));
    let dir = TempDir::new("prometheus-engines");
    let prometheus = prometheus(
        &dir,
        &format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n{}",
            shipped.replace("exporter-host:8091", &exporter.addr.to_string())
        ),
    );
    let addr = prometheus.addr;

    wait_until_async(
        "both engine targets up",
        Duration::from_secs(60),
        || async {
            let up = try_query(addr, "up{job=\"docker-engines\"} == 1").await?;
            let editor = try_query(addr, "container_memory_usage_bytes{name=\"editor\"}").await?;
            let runner =
                try_query(addr, "container_memory_usage_bytes{name=\"ci-runner\"}").await?;
            if up.len() == 2 && !editor.is_empty() && !runner.is_empty() {
                Ok(())
            } else {
                Err(format!("up {up:?}"))
            }
        },
    )
    .await;
    // Each target has its own engine's series only, named by instance.
    for (instance, name) in [("laptop", "editor"), ("buildbox", "ci-runner")] {
        let series = query(
            addr,
            &format!(
                "count by (engine, name) (container_memory_usage_bytes{{instance=\"{instance}\"}})"
            ),
        )
        .await;
        assert_eq!(series.len(), 1, "{instance}: {series:?}");
        assert_eq!(series[0]["metric"]["engine"], instance);
        assert_eq!(series[0]["metric"]["name"], name);
        let up = query(addr, &format!("docker_up{{instance=\"{instance}\"}}")).await;
        assert_eq!(up.len(), 1, "{instance}: {up:?}");
        assert_eq!(up[0]["value"][1], "1");
    }
}
