//! End to end from recorded engine answers to `/metrics` text: the output is
//! diffed against checked-in golden files and linted with `promtool`.
//! `UPDATE_GOLDEN=1 cargo test --test golden` rewrites the files after an
//! intended change.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;

use std::sync::Arc;

use docker_stats_exporter::config::{LabelExport, LabelsOn};
use docker_stats_exporter::cpu::cpu_percent;
use docker_stats_exporter::engine::{ContainerRef, Failure};
use docker_stats_exporter::lifecycle::Lifecycle;
use docker_stats_exporter::metrics::{render, Format};
use docker_stats_exporter::sample::Sample;
use docker_stats_exporter::scrape::{ContainerMetrics, Snapshot};

fn read<T: serde::de::DeserializeOwned>(fixture: &str) -> T {
    let path = format!("{}/tests/fixtures/{fixture}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn listed(name: &str, state: &str) -> ContainerRef {
    ContainerRef {
        id: format!("{name}-id"),
        name: name.to_string(),
        labels: HashMap::new(),
        image: "dse-test/busybox:latest".into(),
        image_id: "sha256:47aa6ab11d72".into(),
        state: state.into(),
        status: String::new(),
    }
}

fn container(name: &str, fixture: &str) -> ContainerMetrics {
    let sample = Sample::from_stats(&read(fixture)).unwrap();
    let cpu_percent = sample
        .cpu
        .zip(sample.precpu)
        .and_then(|(now, before)| cpu_percent(now, before));
    ContainerMetrics {
        container: listed(name, "running"),
        sample: Some(sample),
        cpu_percent,
        lifecycle: None,
    }
}

fn lifecycle(fixture: &str) -> Option<Arc<Lifecycle>> {
    let inspect: bollard::models::ContainerInspectResponse = read(fixture);
    Some(Arc::new(Lifecycle::from_inspect(&inspect)))
}

fn snapshot() -> Snapshot {
    // Recorded together: the stats and inspect answers of a `--cpus 0.5
    // --memory 64m` container with compose labels and a health check, and
    // the inspect answer of a container its 8 MiB limit killed.
    let mut busy = container("cap-busy", "stats-cgroupv1-docker20.10-cap-busy.json");
    busy.lifecycle = lifecycle("inspect-docker20.10-cap-busy.json");
    busy.container.labels = HashMap::from([
        ("com.docker.compose.project".into(), "shop".into()),
        ("com.docker.compose.service".into(), "web".into()),
        (
            "odd.label".into(),
            "quote \" back \\ slash\nnew line ü".into(),
        ),
    ]);
    let oom = ContainerMetrics {
        container: listed("oom-killed", "exited"),
        lifecycle: lifecycle("inspect-docker20.10-oom-killed.json"),
        ..Default::default()
    };
    Snapshot {
        engine_up: true,
        duration_seconds: 1.25,
        selected: 7,
        containers: vec![
            busy,
            container("cap-idle", "stats-cgroupv1-docker20.10-cap-idle.json"),
            container("cap-io", "stats-cgroupv1-docker20.10-cap-io.json"),
            container("podman-busy", "stats-podman4.3-cgroupv1-busy.json"),
            container("v2-ecs", "stats-cgroupv2-ecs-docs-example.json"),
            oom,
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
        &render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap(),
    );
}

#[test]
fn openmetrics_text_matches_golden_file() {
    let text = render(snapshot(), &LabelExport::default(), Format::OpenMetrics).unwrap();
    assert!(text.ends_with("# EOF\n"));
    check_golden("metrics.openmetrics", &text);
}

#[test]
fn promtool_check_metrics_passes() {
    let text = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    common::promtool_check_metrics(&text);
}

#[test]
fn original_five_metrics_keep_their_names_and_label() {
    let m = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
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

#[test]
fn lifecycle_of_a_running_and_an_oom_killed_container() {
    let m = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    for line in [
        "container_state{name=\"cap-busy\",state=\"running\"} 1",
        "container_state{name=\"oom-killed\",state=\"exited\"} 1",
        "container_oom_killed{name=\"oom-killed\"} 1",
        "container_oom_killed{name=\"cap-busy\"} 0",
        "container_exit_code{name=\"oom-killed\"} 137",
        "container_health_status{name=\"cap-busy\",status=\"healthy\"} 1",
        // --cpus 0.5 is NanoCpus; as a CFS quota: 50 ms per 100 ms.
        "container_spec_cpu_quota{name=\"cap-busy\"} 50000",
        "container_spec_cpu_period{name=\"cap-busy\"} 100000",
        "container_spec_cpu_shares{name=\"cap-busy\"} 512",
        "container_spec_memory_reservation_limit_bytes{name=\"cap-busy\"} 33554432",
        "container_start_time_seconds{name=\"cap-busy\"} 1795620613.963797",
    ] {
        assert!(m.contains(line), "missing {line:?}");
    }
    // A stopped container has no resource series and no exit code while running.
    assert!(!m.contains("container_memory_usage_bytes{name=\"oom-killed\"}"));
    assert!(!m.contains("container_exit_code{name=\"cap-busy\"}"));
}

#[test]
fn allow_listed_labels_on_info_or_on_every_series_are_escaped() {
    let info_only = LabelExport {
        include: vec![
            (
                "com.docker.compose.service".into(),
                "container_label_com_docker_compose_service".into(),
            ),
            ("odd.label".into(), "container_label_odd_label".into()),
        ],
        on: LabelsOn::Info,
    };
    let m = render(snapshot(), &info_only, Format::Prometheus).unwrap();
    assert!(m.contains(
        "container_info{name=\"cap-busy\",id=\"cap-busy-id\",image=\"dse-test/busybox:latest\",image_id=\"sha256:47aa6ab11d72\",container_label_com_docker_compose_service=\"web\",container_label_odd_label=\"quote \\\" back \\\\ slash\\nnew line ü\"} 1"
    ), "{m}");
    assert!(m.contains("container_memory_usage_bytes{name=\"cap-busy\"} "));

    let everywhere = LabelExport {
        on: LabelsOn::All,
        ..info_only
    };
    let m = render(snapshot(), &everywhere, Format::Prometheus).unwrap();
    assert!(m.contains("container_memory_usage_bytes{name=\"cap-busy\",container_label_com_docker_compose_service=\"web\",container_label_odd_label="));
    assert!(m.contains("container_network_receive_bytes_total{name=\"cap-busy\",container_label_com_docker_compose_service=\"web\",container_label_odd_label=\"quote \\\" back \\\\ slash\\nnew line ü\",interface=\"eth0\"} 736"));
    // Containers without the label get no empty label.
    assert!(m.contains("container_memory_usage_bytes{name=\"cap-idle\"} 573440"));
}
