//! Shared by the targets: render a snapshot in both text formats and check
//! that what comes out is still line-structured exposition text.

use std::collections::HashMap;
use std::sync::Arc;

use docker_stats_exporter::config::{LabelExport, LabelsOn};
use docker_stats_exporter::engine::{ContainerRef, Failure};
use docker_stats_exporter::exposition::collector::render;
use docker_stats_exporter::exposition::format::Format;
use docker_stats_exporter::scrape::lifecycle::Lifecycle;
use docker_stats_exporter::scrape::sample::Sample;
use docker_stats_exporter::scrape::{ContainerMetrics, Snapshot};

/// A listed container named and labelled with text taken from the input.
pub fn container(
    id: &str,
    name: &str,
    state: &str,
    labels: HashMap<String, String>,
) -> ContainerRef {
    ContainerRef {
        id: id.to_string(),
        name: name.trim_start_matches('/').to_string(),
        labels,
        image: format!("{name}:latest"),
        image_id: format!("sha256:{id}"),
        state: state.to_string(),
        status: String::new(),
        size_rw: None,
        health: None,
    }
}

/// A one-container snapshot, as a scrape would freeze it.
pub fn snapshot(
    container: ContainerRef,
    sample: Option<Sample>,
    cpu_percent: Option<f64>,
    lifecycle: Option<Lifecycle>,
) -> Snapshot {
    Snapshot {
        engine_up: true,
        duration_seconds: 0.25,
        selected: 1,
        containers: vec![ContainerMetrics {
            container,
            sample,
            cpu_percent,
            lifecycle: lifecycle.map(Arc::new),
            cgroup: "/docker/fuzz".to_string(),
            ..Default::default()
        }],
        errors: Failure::ALL.iter().map(|f| (*f, 1)).collect(),
        ..Default::default()
    }
}

/// Renders `snapshot` with the default label export in Prometheus text (as a
/// plain scrape gets it) and with `labels` on every series in OpenMetrics.
pub fn render_both(snapshot: Snapshot, labels: &LabelExport) {
    let snapshot = Arc::new(snapshot);
    let prom = render(
        snapshot.clone(),
        &LabelExport::default(),
        Format::Prometheus,
    )
    .expect("rendering to a String does not fail");
    check_exposition(&prom);
    let everywhere = LabelExport {
        include: labels.include.clone(),
        on: LabelsOn::All,
    };
    let om = render(snapshot, &everywhere, Format::OpenMetrics)
        .expect("rendering to a String does not fail");
    check_exposition(&om);
    assert!(om.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
}

/// Every line is a comment or `name[{labels}] value` with a valid metric
/// name and a number, so no input text broke a line or a label set open.
fn check_exposition(text: &str) {
    for line in text.lines() {
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line
            .rsplit_once(' ')
            .unwrap_or_else(|| panic!("sample line without a value: {line:?}"));
        assert!(
            value.parse::<f64>().is_ok(),
            "sample value is not a number: {line:?}"
        );
        let name = series.split('{').next().unwrap_or_default();
        assert!(
            !name.is_empty()
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
            "bad metric name: {line:?}"
        );
        if series.len() > name.len() {
            assert!(series.ends_with('}'), "label set not closed: {line:?}");
        }
    }
}
