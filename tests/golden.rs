//! End to end from recorded engine answers to `/metrics` text: the output is
//! diffed against checked-in golden files and linted with `promtool`.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files after an
//! intended change.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::io::Write;
use std::process::{Command, Stdio};

use docker_stats_exporter::engine::{ContainerRef, Failure};
use docker_stats_exporter::metrics::{render, Format};
use docker_stats_exporter::sample::{cpu_percent, Sample};
use docker_stats_exporter::scrape::{ContainerMetrics, Snapshot};

fn container(name: &str, fixture: &str) -> ContainerMetrics {
    let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    let stats = serde_json::from_str(&text).unwrap();
    let sample = Sample::from_stats(&stats).unwrap();
    let cpu_percent = sample
        .cpu
        .zip(sample.precpu)
        .and_then(|(now, before)| cpu_percent(now, before));
    ContainerMetrics {
        container: ContainerRef {
            id: format!("{name}-id"),
            name: name.to_string(),
            labels: HashMap::new(),
        },
        sample,
        cpu_percent,
    }
}

fn snapshot() -> Snapshot {
    Snapshot {
        engine_up: true,
        duration_seconds: 1.25,
        selected: 6,
        containers: vec![
            container("cap-busy", "stats-cgroupv1-docker20.10-cap-busy.json"),
            container("cap-idle", "stats-cgroupv1-docker20.10-cap-idle.json"),
            container("cap-io", "stats-cgroupv1-docker20.10-cap-io.json"),
            container("podman-busy", "stats-podman4.3-cgroupv1-busy.json"),
            container("v2-ecs", "stats-cgroupv2-ecs-docs-example.json"),
        ],
        errors: Failure::ALL
            .iter()
            .map(|f| (*f, u64::from(*f == Failure::Gone)))
            .collect(),
    }
}

fn check_golden(file: &str, actual: &str) {
    let path = format!("{}/tests/golden/{file}", env!("CARGO_MANIFEST_DIR"));
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e}; run with UPDATE_GOLDEN=1 to create it"));
    if expected != actual {
        let diff: Vec<String> = expected
            .lines()
            .zip(actual.lines())
            .filter(|(e, a)| e != a)
            .take(10)
            .map(|(e, a)| format!("- {e}\n+ {a}"))
            .collect();
        panic!(
            "{path} differs ({} vs {} lines):\n{}\nrerun with UPDATE_GOLDEN=1 if intended",
            expected.lines().count(),
            actual.lines().count(),
            diff.join("\n")
        );
    }
}

#[test]
fn prometheus_text_matches_golden_file() {
    check_golden(
        "metrics.prom",
        &render(snapshot(), Format::Prometheus).unwrap(),
    );
}

#[test]
fn openmetrics_text_matches_golden_file() {
    let text = render(snapshot(), Format::OpenMetrics).unwrap();
    assert!(text.ends_with("# EOF\n"));
    check_golden("metrics.openmetrics", &text);
}

#[test]
fn promtool_check_metrics_passes() {
    let text = render(snapshot(), Format::Prometheus).unwrap();
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup-engine.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn original_five_metrics_keep_their_names_and_label() {
    let m = render(snapshot(), Format::Prometheus).unwrap();
    for line in [
        "container_cpu_usage_percent{name=\"cap-busy\"} 24.76646",
        "container_memory_usage_bytes{name=\"cap-busy\"} 2650112",
        "container_memory_limit_bytes{name=\"cap-busy\"} 67108864",
        "container_network_rx_bytes{name=\"cap-busy\"} 736",
        "container_network_tx_bytes{name=\"podman-busy\"} 1360",
    ] {
        assert!(m.contains(line), "missing {line:?}");
    }
    // No valid CPU window: the series is left out, not exported as 0.
    assert!(!m.contains("container_cpu_usage_percent{name=\"podman-busy\"}"));
}
