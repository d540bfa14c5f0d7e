//! `dockerd` stopped in the middle of a scrape and started again: the scrape
//! answers, `docker_up` goes 0 then 1, the exporter is not restarted. This is
//! the only test in its binary: nothing else may use the engine meanwhile
//! (cargo runs test binaries one after another).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::{Container, Exporter, Metrics};

fn dockerd_pids() -> Vec<String> {
    let out = Command::new("pgrep")
        .args(["-x", "dockerd"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect()
}

fn stop_dockerd() {
    let pids = dockerd_pids();
    assert!(!pids.is_empty(), "no dockerd running");
    for pid in &pids {
        Command::new("kill").args(["-TERM", pid]).status().unwrap();
    }
    let until = Instant::now() + Duration::from_secs(30);
    while !dockerd_pids().is_empty() {
        assert!(Instant::now() < until, "dockerd did not stop");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn start_dockerd() {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-engine.sh");
    let status = Command::new("bash").arg(script).status().unwrap();
    assert!(
        status.success(),
        "scripts/setup-engine.sh could not restart dockerd"
    );
}

/// Starts dockerd again even if an assertion fails midway.
struct Restart;

impl Drop for Restart {
    fn drop(&mut self) {
        if dockerd_pids().is_empty() {
            start_dockerd();
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn dockerd_stopped_mid_scrape_then_restarted_needs_no_exporter_restart() {
    let _restart = Restart;
    let c = Container::run(
        "dse-restart-survivor",
        &["--restart", "always"],
        &["sleep", "3600"],
    );
    let exporter = Exporter::local("[containers]\nnames = [\"dse-restart-survivor\"]\n").await;

    // A first-time stats call waits two engine ticks; stop dockerd meanwhile.
    let scrape = tokio::spawn({
        let addr = exporter.addr;
        async move { common::get(addr, "/metrics", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    tokio::task::spawn_blocking(stop_dockerd).await.unwrap();
    let (status, body) = scrape.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    // The list call had answered before the daemon went: up. Whether the
    // stats call still got its answer depends on how fast dockerd shut down.
    assert_eq!(m.value("docker_up", &[]), Some(1.0));

    let m = exporter.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(0.0));

    tokio::task::spawn_blocking(start_dockerd).await.unwrap();
    // `--restart always` brings the container back with the daemon.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let m = exporter.metrics().await;
        if m.value("docker_up", &[]) == Some(1.0)
            && m.names("container_memory_usage_bytes") == vec![c.name.clone()]
        {
            break;
        }
        assert!(Instant::now() < until, "never recovered: {:?}", m.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
