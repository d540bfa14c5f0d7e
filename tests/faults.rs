//! Faults around the real engine: a socket the exporter may not open, an
//! engine that fails or answers garbage for one container, containers paused,
//! stopped or removed during a scrape, and label values that need escaping.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::proxy::{Fault, Proxy};
use common::{docker, names_config, Container, Exporter, Metrics, TempDir, BIN};

#[tokio::test(flavor = "multi_thread")]
async fn socket_permission_denied_gives_docker_up_0_and_a_clear_log_line() {
    // The engine's socket is root:docker 0660; run the binary as nobody.
    let port = common::free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut child = Command::new("setpriv")
        .args(["--reuid=nobody", "--regid=nogroup", "--clear-groups", BIN])
        .args([
            "--listen",
            &listen,
            "--docker-host",
            "unix:///var/run/docker.sock",
        ])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let addr: std::net::SocketAddr = listen.parse().unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < until, "exporter did not listen");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (status, body) = common::get(addr, "/metrics", &[]).await;
    let (ready, _) = common::get(addr, "/readyz", &[]).await;
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[]), Some(0.0));
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "engine")]),
        Some(1.0)
    );
    assert_eq!(ready, 503);
    assert!(
        logs.contains("engine unavailable") && logs.contains("ermission denied"),
        "{logs}"
    );
    // The fix is named with this socket's group.
    use std::os::unix::fs::MetadataExt;
    let gid = std::fs::metadata("/var/run/docker.sock").unwrap().gid();
    assert!(logs.contains(&format!("`--group-add {gid}`")), "{logs}");
}

#[test]
fn unsupported_docker_host_scheme_in_the_environment_is_named() {
    let out = Command::new(BIN)
        .env("DOCKER_HOST", "ssh://me@example")
        .args(["--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("DOCKER_HOST") && err.contains("ssh://me@example"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_failing_or_answering_garbage_for_one_container_spares_the_others() {
    let bad = Container::sleeper("dse-fault-bad", &[]);
    let good = Container::sleeper("dse-fault-good", &[]);
    let dir = TempDir::new("fault");
    let proxy = Proxy::start(&dir.0.join("e.sock"), "/var/run/docker.sock");
    let exporter = Exporter::start(
        &names_config(&["dse-fault-bad", "dse-fault-good"], ""),
        &proxy.url(),
    )
    .await;

    proxy.set_fault(&format!("/containers/{}/stats", bad.id), Fault::ServerError);
    let m = exporter.metrics().await;
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![good.name.clone()]
    );
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "engine")]),
        Some(1.0)
    );

    proxy.set_fault(&format!("/containers/{}/stats", bad.id), Fault::Garbage);
    let m = exporter.metrics().await;
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![good.name.clone()]
    );
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "decode")]),
        Some(1.0)
    );

    // A broken inspect answer costs only the lifecycle series.
    proxy.set_fault(&format!("/containers/{}/json", bad.id), Fault::Garbage);
    let fresh = Exporter::start(
        &names_config(&["dse-fault-bad", "dse-fault-good"], ""),
        &proxy.url(),
    )
    .await;
    let m = fresh.metrics().await;
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![bad.name.clone(), good.name.clone()]
    );
    assert_eq!(m.get("container_restarts_total", &bad.name), None);
    assert_eq!(m.get("container_restarts_total", &good.name), Some(0.0));
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "decode")]),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_container_keeps_its_stats_with_frozen_cpu() {
    let c = Container::run(
        "dse-fault-paused",
        &["--cpus", "0.2"],
        &["sh", "-c", "yes >/dev/null"],
    );
    docker(&["pause", &c.name]);
    let exporter = Exporter::local(&names_config(&["dse-fault-paused"], "")).await;
    let first = exporter.metrics().await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let second = exporter.metrics().await;
    docker(&["unpause", &c.name]);
    assert_eq!(
        second.value(
            "container_state",
            &[("name", c.name.as_str()), ("state", "paused")]
        ),
        Some(1.0)
    );
    assert!(second
        .get("container_memory_usage_bytes", &c.name)
        .is_some());
    let metric = "container_cpu_usage_seconds_total";
    assert_eq!(first.get(metric, &c.name), second.get(metric, &c.name));
    assert_eq!(
        second.get("container_cpu_usage_percent", &c.name),
        Some(0.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn container_stopped_during_a_scrape_is_left_out() {
    let stopped = Container::sleeper("dse-fault-stopped", &[]);
    let other = Container::sleeper("dse-fault-stays", &[]);
    let dir = TempDir::new("stopped");
    let proxy = Proxy::start(&dir.0.join("e.sock"), "/var/run/docker.sock");
    // Hold the stats calls so the stop lands between list and stats.
    proxy.set_delay("/stats", Duration::from_millis(1500));
    let exporter = Exporter::start(
        &names_config(&["dse-fault-stopped", "dse-fault-stays"], ""),
        &proxy.url(),
    )
    .await;
    let scrape = tokio::spawn({
        let addr = exporter.addr;
        async move { common::get(addr, "/metrics", &[]).await }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    docker(&["kill", &stopped.name]);
    let (status, body) = scrape.await.unwrap();
    assert_eq!(status, 200);
    let m = Metrics::parse(&body);
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![other.name.clone()]
    );
    assert_eq!(m.get("container_cpu_usage_percent", &stopped.name), None);
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "gone")]),
        Some(1.0),
        "{body}"
    );
    // The next scrape lists it as exited, with its lifecycle.
    proxy.set_delay("/stats", Duration::ZERO);
    let m = exporter.metrics().await;
    assert_eq!(
        m.value(
            "container_state",
            &[("name", stopped.name.as_str()), ("state", "exited")]
        ),
        Some(1.0)
    );
    assert_eq!(m.get("container_exit_code", &stopped.name), Some(137.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn label_values_with_quotes_backslashes_newlines_and_non_ascii_are_escaped() {
    let value = "say \"hi\" \\ back\nslash ünïcødé ✓";
    let c = Container::sleeper(
        "dse-fault-escaping",
        &["--label", &format!("odd.value={value}")],
    );
    let exporter = Exporter::local(
        "[containers]\nnames = [\"dse-fault-escaping\"]\n[labels]\ninclude = [\"odd.value\"]\non = \"all\"\n",
    )
    .await;
    let (_, body) = exporter.scrape().await;
    let escaped = "say \\\"hi\\\" \\\\ back\\nslash ünïcødé ✓";
    assert!(
        body.contains(&format!(
            "container_memory_usage_bytes{{name=\"{}\",id=\"/docker/{}\",image=\"{}\",container_label_odd_value=\"{escaped}\"}}",
            c.name,
            c.id,
            common::image()
        )),
        "{body}"
    );
    let m = Metrics::parse(&body);
    let info = m.0.iter().find(|s| s.name == "container_info").unwrap();
    assert_eq!(info.labels["container_label_odd_value"], value);
    // Every line is still one sample; promtool agrees.
    common::promtool_check_metrics(&body);
}
