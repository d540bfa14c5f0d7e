//! A real Prometheus (Debian's 2.42) scrapes the exporter every 2 s with a
//! 2 s timeout; its HTTP API must show `up == 1` and the container's series.

#![allow(clippy::unwrap_used)]

mod common;

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
    let mut encoded = String::new();
    for b in promql.bytes() {
        if b.is_ascii_alphanumeric() || b"_.-~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    let (status, body) = common::get(addr, &format!("/api/v1/query?query={encoded}"), &[]).await;
    if status != 200 {
        return Err(format!("{promql}: HTTP {status}: {body}"));
    }
    let v: serde_json::Value =
        serde_json::from_str(&body).map_err(|e| format!("{promql}: {e}: {body}"))?;
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
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
    let config = dir.0.join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 2s\n  scrape_timeout: 2s\n\
             scrape_configs:\n  - job_name: docker-stats\n    static_configs:\n      \
             - targets: ['{}']\n",
            exporter.addr
        ),
    )
    .unwrap();
    let mut cmd = Command::new("prometheus");
    cmd.arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg("--web.listen-address=127.0.0.1:0");
    let prometheus = ChildServer::spawn(cmd, prometheus_addr);
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
