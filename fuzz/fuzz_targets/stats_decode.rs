//! A stats answer as the engine might send it: decode, turn into a sample,
//! compute the CPU percent and render the container's series.

#![no_main]

use std::collections::HashMap;

use bollard::models::ContainerStatsResponse;
use docker_stats_exporter::config::LabelExport;
use docker_stats_exporter::cpu::cpu_percent;
use docker_stats_exporter::sample::Sample;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(stats) = serde_json::from_slice::<ContainerStatsResponse>(data) else {
        return;
    };
    let Some(sample) = Sample::from_stats(&stats) else {
        return;
    };
    let percent = match (sample.cpu, sample.precpu) {
        (Some(now), Some(before)) => cpu_percent(now, before),
        _ => None,
    };
    if let Some(p) = percent {
        assert!(p.is_finite() && p >= 0.0, "cpu percent {p}");
    }
    if let (Some(usage), Some(ws)) = (sample.memory_usage, sample.memory_working_set) {
        assert!(ws <= usage, "working set {ws} above usage {usage}");
    }
    let _ = (sample.network_rx_bytes(), sample.network_tx_bytes());

    let id = stats.id.clone().unwrap_or_default();
    let name = stats.name.clone().unwrap_or_default();
    // The default allow-list, filled with text from the input.
    let labels = HashMap::from([
        ("com.docker.compose.project".to_string(), name.clone()),
        ("com.docker.compose.service".to_string(), id.clone()),
    ]);
    let container = common::container(&id, &name, "running", labels);
    let snapshot = common::snapshot(container, Some(sample), percent, None);
    common::render_both(snapshot, &LabelExport::default());
});
