//! An inspect answer as the engine might send it: decode, extract the
//! lifecycle values and render them; and the timestamp parser on raw text.

#![no_main]

use std::collections::HashMap;

use bollard::models::ContainerInspectResponse;
use docker_stats_exporter::config::LabelExport;
use docker_stats_exporter::lifecycle::Lifecycle;
use docker_stats_exporter::timestamp::parse_rfc3339;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fn check_time(s: &str) {
    if let Some(t) = parse_rfc3339(s) {
        assert!(t.is_finite(), "{s:?} gave {t}");
    }
}

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        check_time(text);
        // The input as fraction and zone after a valid date and time, so the
        // zone parsing is reached without first guessing a date.
        if text.len() <= 64 {
            check_time(&format!("2026-11-24T15:38:47{text}"));
        }
    }
    let Ok(inspect) = serde_json::from_slice::<ContainerInspectResponse>(data) else {
        return;
    };
    let lifecycle = Lifecycle::from_inspect(&inspect);
    assert_eq!(
        lifecycle.cpu_quota.is_some(),
        lifecycle.cpu_period.is_some(),
        "a quota comes with its period"
    );
    let mut state = String::from("exited");
    if let Some(s) = &inspect.state {
        for t in [&s.started_at, &s.finished_at].into_iter().flatten() {
            check_time(t);
        }
        if let Some(status) = s.status {
            state = status.to_string();
        }
    }
    if let Some(created) = &inspect.created {
        check_time(created);
    }

    let labels: HashMap<String, String> = inspect
        .config
        .as_ref()
        .and_then(|c| c.labels.clone())
        .unwrap_or_default();
    // Export every label the input carries, so their keys become label names.
    let export = LabelExport {
        include: labels
            .keys()
            .map(|k| (k.clone(), docker_stats_exporter::config::label_name(k)))
            .collect(),
        ..LabelExport::default()
    };
    let container = common::container(
        inspect.id.as_deref().unwrap_or_default(),
        inspect.name.as_deref().unwrap_or_default(),
        &state,
        labels,
    );
    // No sample: a stopped container, so the exit code is rendered too.
    let snapshot = common::snapshot(container, None, None, Some(lifecycle));
    common::render_both(snapshot, &export);
});
