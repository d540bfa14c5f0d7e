//! Faults around the real engine: a socket the exporter may not open, an
//! engine that fails or answers garbage for one container, containers
//! stopped or removed during a scrape, and label values that need escaping.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use common::cgroup::id_label;
use common::proxy::{Fault, Proxy};
use common::{
    docker, engine_socket, names_config, unique, wait_until, ChildServer, Container, Exporter,
    Metrics, TempDir, BIN, MACHINE_ENGINE, PATIENCE,
};

#[tokio::test(flavor = "multi_thread")]
async fn socket_permission_denied_gives_docker_up_0_and_a_clear_log_line() {
    // This machine's engine socket is root:docker 0660; run the binary as
    // nobody.
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=nobody", "--regid=nogroup", "--clear-groups"])
        .arg(BIN)
        .args(["--listen", "127.0.0.1:0", "--docker-host", MACHINE_ENGINE]);
    let exporter = ChildServer::spawn_exporter(cmd);
    let (status, body) = common::get(exporter.addr, "/metrics", &[]).await;
    let (ready, _) = common::get(exporter.addr, "/readyz", &[]).await;
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[]), Some(0.0));
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "engine")]),
        Some(1.0)
    );
    assert_eq!(ready, 503);
    let logs = exporter.wait_for_log("engine unavailable", Duration::from_secs(10));
    assert!(logs.contains("ermission denied"), "{logs}");
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
    let bad = Container::sleeper(&unique("dse-fault-bad"), &[]);
    let good = Container::sleeper(&unique("dse-fault-good"), &[]);
    let dir = TempDir::new("fault");
    let proxy = Proxy::start(&dir.0.join("e.sock"), engine_socket());
    let exporter = Exporter::start(&names_config(&[&bad.name, &good.name], ""), &proxy.url()).await;

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
    let fresh = Exporter::start(&names_config(&[&bad.name, &good.name], ""), &proxy.url()).await;
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
async fn container_stopped_during_a_scrape_is_left_out() {
    let stopped = Container::sleeper(&unique("dse-fault-stopped"), &[]);
    let other = Container::sleeper(&unique("dse-fault-stays"), &[]);
    let dir = TempDir::new("stopped");
    let proxy = Proxy::start(&dir.0.join("e.sock"), engine_socket());
    // Hold its stats call so the stop lands between list and stats; the
    // scrape timeout leaves room for a slow `docker kill`.
    let stats_path = format!("/containers/{}/stats", stopped.id);
    let gate = proxy.hold(&stats_path);
    let exporter = Exporter::start(
        &names_config(&[&stopped.name, &other.name], "timeout = \"60s\""),
        &proxy.url(),
    )
    .await;
    let scrape = exporter.scrape_in_background();
    proxy.wait_for_request(&stats_path).await;
    docker(&["kill", &stopped.name]);
    wait_until("the container to exit", PATIENCE, || {
        match stopped.inspect("{{.State.Status}}") {
            s if s == "exited" => Ok(()),
            s => Err(s),
        }
    });
    gate.open();
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
        &unique("dse-fault-escaping"),
        &["--label", &format!("odd.value={value}")],
    );
    let exporter = Exporter::local(&names_config(
        &[&c.name],
        "[labels]\ninclude = [\"odd.value\"]\non = \"all\"",
    ))
    .await;
    let (_, body) = exporter.scrape().await;
    let escaped = "say \\\"hi\\\" \\\\ back\\nslash ünïcødé ✓";
    assert!(
        body.contains(&format!(
            "container_memory_usage_bytes{{name=\"{}\",id=\"{}\",image=\"{}\",container_label_odd_value=\"{escaped}\"}}",
            c.name,
            id_label(&c),
            common::listed_image(&c)
        )),
        "{body}"
    );
    let m = Metrics::parse(&body);
    let info = m.0.iter().find(|s| s.name == "container_info").unwrap();
    assert_eq!(info.labels["container_label_odd_value"], value);
    // Every line is still one sample; promtool agrees.
    common::promtool_check_metrics(&body);
}

/// A container whose stats call fails keeps the series its list entry and
/// inspect answer give, and the others are whole. Podman 5.4 answers the
/// stats of a container with a memory reservation and no limit with its
/// error object and status 200 (podman#29627, fixed in later Podman);
/// engines that answer it are checked to export its values.
#[tokio::test(flavor = "multi_thread")]
async fn a_container_whose_stats_call_fails_keeps_its_info_and_spares_the_others() {
    let odd = Container::sleeper(
        &unique("dse-fault-reservation"),
        &["--memory-reservation", "16m"],
    );
    let plain = Container::sleeper(&unique("dse-fault-plain"), &[]);
    let path = format!("/containers/{}/stats?stream=false&one-shot=true", odd.id);
    let direct: serde_json::Value =
        serde_json::from_str(&common::vm::unix_get(odd.host(), &path)).expect("stats JSON");
    let engine_fails = direct.get("read").is_none() && direct.get("message").is_some();
    let exporter = Exporter::local(&names_config(&[&odd.name, &plain.name], "")).await;
    let m = exporter.metrics().await;
    assert!(m.get("container_memory_usage_bytes", &plain.name).is_some());
    assert_eq!(m.get("container_info", &odd.name), Some(1.0));
    assert_eq!(
        m.get("container_spec_memory_reservation_limit_bytes", &odd.name),
        Some(16.0 * 1024.0 * 1024.0)
    );
    let engine_errors = m.value("docker_stats_scrape_errors_total", &[("kind", "engine")]);
    if engine_fails {
        assert_eq!(
            m.get("container_memory_usage_bytes", &odd.name),
            None,
            "{direct}"
        );
        assert_eq!(engine_errors, Some(1.0), "{direct}");
    } else {
        assert!(m.get("container_memory_usage_bytes", &odd.name).is_some());
        assert_eq!(engine_errors, Some(0.0));
    }
}
