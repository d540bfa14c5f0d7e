//! End to end from recorded engine answers to `/metrics` text: the output is
//! diffed against checked-in golden files and linted with `promtool`.
//! `UPDATE_GOLDEN=1 cargo test --test exposition golden` rewrites the files after an
//! intended change.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashMap};

use std::sync::Arc;

use docker_stats_exporter::config::{LabelExport, LabelsOn};
use docker_stats_exporter::engine::{ContainerRef, EngineInfo, Failure};
use docker_stats_exporter::exposition::collector::render;
use docker_stats_exporter::exposition::collector::{render_parts, Part};
use docker_stats_exporter::exposition::format::Format;
use docker_stats_exporter::exposition::json::{self, JsonPart};
use docker_stats_exporter::exposition::metrics::{Source, View, METRICS};
use docker_stats_exporter::scrape::cpu::cpu_percent;
use docker_stats_exporter::scrape::lifecycle::Lifecycle;
use docker_stats_exporter::scrape::sample::Sample;
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
        size_rw: None,
        health: None,
    }
}

/// Seen at this Unix time by the recorded round.
const SEEN_AT: f64 = 1_795_620_700.0;

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
        cgroup: format!("/docker/{name}-id"),
        fs_usage: None,
        last_seen: Some(SEEN_AT),
    }
}

fn lifecycle(fixture: &str) -> Option<Arc<Lifecycle>> {
    let inspect: docker_stats_exporter::engine::model::Inspect = read(fixture);
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
        // dockprom's group label: on the default allow-list.
        ("org.label-schema.group".into(), "monitoring".into()),
        // Compose's bulky ones: not on it.
        (
            "com.docker.compose.config-hash".into(),
            "16606716ac467b4172b03d242418591fd18c2a336abb69b94dded83f8004a163".into(),
        ),
        (
            "odd.label".into(),
            "quote \" back \\ slash\nnew line ü".into(),
        ),
    ]);
    busy.fs_usage = Some(8192);
    // A Swarm task: its labels are on the default allow-list.
    let mut task = container("cap-idle", "stats-cgroupv1-docker20.10-cap-idle.json");
    task.container.labels = HashMap::from([
        ("com.docker.swarm.service.name".into(), "stack_web".into()),
        (
            "com.docker.swarm.task.name".into(),
            "stack_web.1.x7a".into(),
        ),
        ("com.docker.swarm.node.id".into(), "n0de".into()),
        ("com.docker.stack.namespace".into(), "stack".into()),
    ]);
    let oom = ContainerMetrics {
        container: listed("oom-killed", "exited"),
        lifecycle: lifecycle("inspect-docker20.10-oom-killed.json"),
        cgroup: "/docker/oom-killed-id".into(),
        ..Default::default()
    };
    Snapshot {
        engine_up: true,
        error: None,
        failed: false,
        duration_seconds: 1.25,
        selected: 7,
        seen_at: SEEN_AT,
        machine: Some(EngineInfo {
            cpus: Some(2),
            memory_bytes: Some(25_276_514_304),
            cgroup_driver: Some("cgroupfs".into()),
            cgroup_version: Some("1".into()),
            ..Default::default()
        }),
        containers: vec![
            busy,
            task,
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

/// The same round read from two engines, as `[[engines]]` gives it.
fn two_engines() -> String {
    let parts = ["laptop", "buildbox"]
        .into_iter()
        .map(|engine| Part {
            engine: Some(engine.to_string()),
            snapshot: Arc::new(snapshot()),
        })
        .collect();
    render_parts(parts, &LabelExport::default(), Format::Prometheus)
        .unwrap()
        .into_string()
}

#[test]
fn several_engines_match_golden_file_and_pass_promtool() {
    let text = two_engines();
    check_golden("metrics-engines.prom", &text);
    common::promtool_check_metrics(&text);
    assert_eq!(
        find(&text, "docker_up", &[("engine", "buildbox")]),
        Some(1.0)
    );
    assert_eq!(
        find(
            &text,
            "container_memory_usage_bytes",
            &[("engine", "laptop"), ("name", "cap-busy")]
        ),
        Some(2_650_112.0)
    );
}

#[test]
fn promtool_check_metrics_passes() {
    let text = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    common::promtool_check_metrics(&text);
}

/// The value of the one series of `metric` whose labels include `labels`.
fn find(text: &str, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
    let m = common::Metrics::parse(text);
    let found: Vec<&common::Series> =
        m.0.iter()
            .filter(|s| {
                s.name == metric
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .collect();
    assert!(found.len() <= 1, "{metric}{labels:?} matches {found:?}");
    found.first().map(|s| s.value)
}

fn labels_of(text: &str, metric: &str, name: &str) -> BTreeMap<String, String> {
    common::Metrics::parse(text)
        .0
        .into_iter()
        .find(|s| s.name == metric && s.labels.get("name").map(String::as_str) == Some(name))
        .unwrap_or_else(|| panic!("no {metric} for {name}"))
        .labels
}

#[test]
fn original_five_metrics_keep_their_names_and_meaning() {
    let m = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    let busy = [("name", "cap-busy")];
    let pct = find(&m, "container_cpu_usage_percent", &busy).unwrap();
    assert!((pct - 24.76646).abs() < 1e-5, "{pct}");
    assert_eq!(
        find(&m, "container_memory_usage_bytes", &busy),
        Some(2_650_112.0)
    );
    assert_eq!(
        find(&m, "container_memory_limit_bytes", &busy),
        Some(67_108_864.0)
    );
    assert_eq!(find(&m, "container_network_rx_bytes", &busy), Some(736.0));
    assert_eq!(
        find(&m, "container_network_tx_bytes", &[("name", "podman-busy")]),
        Some(1360.0)
    );
    // No valid CPU window: the series is left out, not exported as 0.
    assert_eq!(
        find(
            &m,
            "container_cpu_usage_percent",
            &[("name", "podman-busy")]
        ),
        None
    );
}

#[test]
fn every_container_series_carries_name_id_image_and_allow_listed_labels() {
    let m = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    let parsed = common::Metrics::parse(&m);
    for s in parsed.0.iter().filter(|s| s.labels.contains_key("name")) {
        for label in ["id", "image"] {
            assert!(
                s.labels.contains_key(label),
                "{} lacks {label}: {s:?}",
                s.name
            );
        }
    }
    let busy = labels_of(&m, "container_memory_usage_bytes", "cap-busy");
    assert_eq!(busy["id"], "/docker/cap-busy-id");
    assert_eq!(busy["image"], "dse-test/busybox:latest");
    assert_eq!(busy["container_label_com_docker_compose_project"], "shop");
    assert_eq!(busy["container_label_com_docker_compose_service"], "web");
    let task = labels_of(&m, "container_cpu_usage_seconds_total", "cap-idle");
    assert_eq!(task["cpu"], "total");
    assert_eq!(
        task["container_label_com_docker_swarm_service_name"],
        "stack_web"
    );
    assert_eq!(
        task["container_label_com_docker_swarm_task_name"],
        "stack_web.1.x7a"
    );
    assert_eq!(task["container_label_com_docker_swarm_node_id"], "n0de");
    assert_eq!(task["container_label_com_docker_stack_namespace"], "stack");
    // A label a container does not have is absent, not empty.
    assert!(!task.contains_key("container_label_com_docker_compose_project"));
    // Not on the allow-list: not exported.
    assert!(!busy.contains_key("container_label_odd_label"));
}

#[test]
fn cadvisor_metrics_from_stats_inspect_and_info() {
    let m = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    let busy = [("name", "cap-busy")];
    assert_eq!(find(&m, "machine_cpu_cores", &[]), Some(2.0));
    assert_eq!(
        find(&m, "machine_memory_bytes", &[]),
        Some(25_276_514_304.0)
    );
    assert_eq!(find(&m, "container_last_seen", &busy), Some(SEEN_AT));
    assert_eq!(
        find(&m, "container_last_seen", &[("name", "oom-killed")]),
        None
    );
    assert_eq!(find(&m, "container_fs_usage_bytes", &busy), Some(8192.0));
    assert_eq!(find(&m, "container_health_state", &busy), Some(1.0));
    assert_eq!(
        find(&m, "container_spec_memory_limit_bytes", &busy),
        Some(67_108_864.0)
    );
    assert_eq!(
        find(&m, "container_spec_memory_swap_limit_bytes", &busy),
        Some(134_217_728.0)
    );
    // cgroup v1: the container's own faults and its hierarchy's.
    for (kind, scope) in [
        ("pgfault", "container"),
        ("pgmajfault", "container"),
        ("pgfault", "hierarchy"),
        ("pgmajfault", "hierarchy"),
    ] {
        let labels = [
            ("name", "cap-busy"),
            ("failure_type", kind),
            ("scope", scope),
        ];
        assert!(
            find(&m, "container_memory_failures_total", &labels).is_some(),
            "{labels:?}"
        );
    }
    let v2 = [("name", "v2-ecs")];
    assert!(find(&m, "container_memory_mapped_file", &v2).is_some());
    // Docker leaves a cgroup v1 failcnt of 0 out of its answer; cgroup v2 has none.
    assert_eq!(find(&m, "container_memory_failcnt", &busy), Some(0.0));
    assert_eq!(find(&m, "container_memory_failcnt", &v2), None);
    // Podman reports no memory stats map: left out, not 0.
    let podman = [("name", "podman-busy")];
    assert_eq!(find(&m, "container_memory_mapped_file", &podman), None);
    assert_eq!(find(&m, "container_memory_swap", &podman), None);
}

#[test]
fn lifecycle_of_a_running_and_an_oom_killed_container() {
    let m = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    let busy = [("name", "cap-busy")];
    let oom = [("name", "oom-killed")];
    assert_eq!(
        find(
            &m,
            "container_state",
            &[("name", "cap-busy"), ("state", "running")]
        ),
        Some(1.0)
    );
    assert_eq!(
        find(
            &m,
            "container_state",
            &[("name", "oom-killed"), ("state", "exited")]
        ),
        Some(1.0)
    );
    assert_eq!(find(&m, "container_oom_killed", &oom), Some(1.0));
    assert_eq!(find(&m, "container_oom_killed", &busy), Some(0.0));
    assert_eq!(find(&m, "container_exit_code", &oom), Some(137.0));
    assert_eq!(
        find(
            &m,
            "container_health_status",
            &[("name", "cap-busy"), ("status", "healthy")]
        ),
        Some(1.0)
    );
    // --cpus 0.5 is NanoCpus; as a CFS quota: 50 ms per 100 ms.
    assert_eq!(find(&m, "container_spec_cpu_quota", &busy), Some(50_000.0));
    assert_eq!(
        find(&m, "container_spec_cpu_period", &busy),
        Some(100_000.0)
    );
    assert_eq!(find(&m, "container_spec_cpu_shares", &busy), Some(512.0));
    assert_eq!(
        find(&m, "container_spec_memory_reservation_limit_bytes", &busy),
        Some(33_554_432.0)
    );
    assert_eq!(
        find(&m, "container_start_time_seconds", &busy),
        Some(1_795_620_613.963797)
    );
    // A stopped container has no resource series and no exit code while running.
    assert_eq!(find(&m, "container_memory_usage_bytes", &oom), None);
    assert_eq!(find(&m, "container_exit_code", &busy), None);
}

#[test]
fn allow_listed_labels_on_info_only_or_on_every_series_are_escaped() {
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
        "container_info{name=\"cap-busy\",id=\"/docker/cap-busy-id\",image=\"dse-test/busybox:latest\",container_id=\"cap-busy-id\",image_id=\"sha256:47aa6ab11d72\",container_label_com_docker_compose_service=\"web\",container_label_odd_label=\"quote \\\" back \\\\ slash\\nnew line ü\"} 1"
    ), "{m}");
    let lean = labels_of(&m, "container_memory_usage_bytes", "cap-busy");
    assert_eq!(lean.keys().collect::<Vec<_>>(), ["id", "image", "name"]);

    let everywhere = LabelExport {
        on: LabelsOn::All,
        ..info_only
    };
    let m = render(snapshot(), &everywhere, Format::Prometheus).unwrap();
    assert!(m.contains("container_network_receive_bytes_total{name=\"cap-busy\",id=\"/docker/cap-busy-id\",image=\"dse-test/busybox:latest\",container_label_com_docker_compose_service=\"web\",container_label_odd_label=\"quote \\\" back \\\\ slash\\nnew line ü\",interface=\"eth0\"} 736"), "{m}");
    // Containers without the label get no empty label.
    assert!(m.contains("container_memory_usage_bytes{name=\"cap-io\",id=\"/docker/cap-io-id\",image=\"dse-test/busybox:latest\"} "));
}

/// `/api/containers` for the golden round, keys sorted, one value a line.
fn containers_json() -> serde_json::Value {
    let snap = snapshot();
    let part = JsonPart {
        engine: None,
        host: "unix:///var/run/docker.sock",
        snapshot: &snap,
    };
    let (up, text) = json::encode(&[part], &LabelExport::default());
    assert!(up);
    serde_json::from_str(&text).unwrap()
}

#[test]
fn containers_json_matches_golden_file() {
    let pretty = serde_json::to_string_pretty(&containers_json()).unwrap() + "\n";
    check_golden("containers.json", &pretty);
}

/// Every row of the metric table that the JSON view shows has there the
/// value `/metrics` has for it, and every one it leaves out is absent there.
#[test]
fn json_view_values_are_the_metrics_values() {
    let text = render(snapshot(), &LabelExport::default(), Format::Prometheus).unwrap();
    let m = common::Metrics::parse(&text);
    let answer = containers_json();
    let mut shown = 0;
    for def in METRICS {
        let (key, as_flag, positive) = match def.view {
            View::Hidden => continue,
            View::Key(key) => (key, false, false),
            View::Positive(key) => (key, false, true),
            View::Flag(key) => (key, true, false),
        };
        let engine_level = matches!(def.source, Source::Machine(_) | Source::Scrape(_));
        let objects = if engine_level {
            answer["engines"].as_array().unwrap()
        } else {
            answer["containers"].as_array().unwrap()
        };
        for o in objects {
            let json = &o[key];
            let (metric, text_label) = if engine_level {
                (find(&text, def.name, &[]), None)
            } else {
                let name = o["name"].as_str().unwrap();
                match def.source {
                    Source::Enum(label, _) => {
                        (m.get(def.name, name), m.label(def.name, name, label))
                    }
                    _ => (m.get(def.name, name), None),
                }
            };
            match (metric, text_label) {
                (None, _) => assert!(
                    json.is_null(),
                    "{}: {key} = {json} without a series",
                    def.name
                ),
                (Some(_), Some(label)) => {
                    assert_eq!(json.as_str(), Some(label.as_str()), "{}", def.name)
                }
                (Some(v), None) if as_flag => {
                    assert_eq!(json.as_bool(), Some(v != 0.0), "{}", def.name)
                }
                (Some(v), None) if positive && v == 0.0 => {
                    assert!(json.is_null(), "{}: {json}", def.name)
                }
                (Some(v), None) => {
                    let j = json
                        .as_f64()
                        .unwrap_or_else(|| panic!("{}: {key} = {json}", def.name));
                    assert!(
                        (j - v).abs() <= 1e-9 * v.abs().max(1.0),
                        "{}: {j} vs {v}",
                        def.name
                    );
                }
            }
            shown += usize::from(!json.is_null());
        }
    }
    assert!(shown > 40, "only {shown} values shown");
}

/// A view key names one row, and rows with several series per container
/// (per interface, per kind) or none (`container_info`) cannot have one.
#[test]
fn view_keys_are_unique_and_on_single_value_rows() {
    let mut keys = std::collections::BTreeSet::new();
    for def in METRICS {
        let key = match def.view {
            View::Hidden => continue,
            View::Key(k) | View::Positive(k) | View::Flag(k) => k,
        };
        assert!(keys.insert(key), "{key} names two rows");
        assert!(
            !matches!(
                def.source,
                Source::Interface(_) | Source::MemoryFailures | Source::Info | Source::ScrapeErrors
            ),
            "{} has several series and no single view value",
            def.name
        );
    }
}
