//! What each fuzz target checks, as plain functions: the targets call them
//! with libFuzzer's inputs, and `cargo test` (tests/scrape/decode.rs) with every
//! committed seed and every input a fuzzer ever failed on, so the checks
//! run in every test run without a fuzzer.

#![allow(dead_code)]

use docker_stats_exporter::config::selector::LabelSelector;
use docker_stats_exporter::config::LabelExport;
use docker_stats_exporter::config::{parse_duration, Config, Overrides};
use docker_stats_exporter::engine::model::{Inspect, Stats};
use docker_stats_exporter::scrape::cpu::cpu_percent;
use docker_stats_exporter::scrape::lifecycle::Lifecycle;
use docker_stats_exporter::scrape::sample::Sample;
use docker_stats_exporter::scrape::timestamp::parse_rfc3339;
use std::collections::HashMap;
use std::time::Duration;

#[path = "common.rs"]
mod common;

fn check_time(s: &str) {
    if let Some(t) = parse_rfc3339(s) {
        assert!(t.is_finite(), "{s:?} gave {t}");
    }
}

/// A stats answer as the engine might send it: decode, turn into a sample,
/// compute the CPU percent and render the container's series.
pub fn stats(data: &[u8]) {
    let Ok(stats) = serde_json::from_slice::<Stats>(data) else {
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

    // Text of the input the exporter does not decode, for the labels.
    let raw: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_string();
    let id = text(&raw["id"]);
    let name = text(&raw["name"]);
    // The default allow-list, filled with text from the input.
    let labels = HashMap::from([
        ("com.docker.compose.project".to_string(), name.clone()),
        ("com.docker.compose.service".to_string(), id.clone()),
    ]);
    let container = common::container(&id, &name, "running", labels);
    let snapshot = common::snapshot(container, Some(sample), percent, None);
    common::render_both(snapshot, &LabelExport::default());
}

/// An inspect answer as the engine might send it: decode, extract the
/// lifecycle values and render them; and the timestamp parser on raw text.
pub fn inspect(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        check_time(text);
        // The input as fraction and zone after a valid date and time, so the
        // zone parsing is reached without first guessing a date.
        if text.len() <= 64 {
            check_time(&format!("2026-11-24T15:38:47{text}"));
        }
    }
    let Ok(inspect) = serde_json::from_slice::<Inspect>(data) else {
        return;
    };
    let lifecycle = Lifecycle::from_inspect(&inspect);
    if lifecycle.cpu_quota.is_some() {
        assert!(
            lifecycle.cpu_period.is_some(),
            "a quota comes with its period"
        );
    }
    if let Some(started) = inspect.state.as_ref().and_then(|s| s.started_at.as_deref()) {
        check_time(started);
    }
    // Text of the input the exporter does not decode: times, state, labels.
    let raw: serde_json::Value = serde_json::from_slice(data).unwrap_or_default();
    for t in [&raw["State"]["FinishedAt"], &raw["Created"]] {
        if let Some(t) = t.as_str() {
            check_time(t);
        }
    }
    let state = raw["State"]["Status"]
        .as_str()
        .unwrap_or("exited")
        .to_string();
    let labels: HashMap<String, String> = raw["Config"]["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                .collect()
        })
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
        raw["Id"].as_str().unwrap_or_default(),
        raw["Name"].as_str().unwrap_or_default(),
        &state,
        labels,
    );
    // No sample: a stopped container, so the exit code is rendered too.
    let snapshot = common::snapshot(container, None, None, Some(lifecycle));
    common::render_both(snapshot, &export);
}

/// Configuration text as a user might write it: parse and validate, and the
/// smaller parsers it uses (durations, label selectors) on the raw text.
pub fn config(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(d) = parse_duration(text) {
        assert!(
            d > Duration::ZERO && d <= Duration::from_secs(3600),
            "{text:?} gave {d:?}"
        );
    }
    if let Ok(sel) = LabelSelector::parse(text) {
        let again = LabelSelector::parse(&sel.to_string())
            .unwrap_or_else(|e| panic!("{sel} does not parse back: {e}"));
        assert_eq!(sel, again, "selector display round trip");
    }

    // The first line also plays a command-line flag and DOCKER_HOST.
    let first = text.lines().next().unwrap_or_default().to_string();
    let flags = Overrides {
        listen: Some(first.clone()),
        docker_host: Some(first.clone()),
    };
    let _ = Config::parse("fuzz.toml", text, &flags, Some(first.clone()));
    let _ = Config::parse("fuzz.toml", text, &Overrides::default(), Some(first));

    let Ok(config) = Config::parse("fuzz.toml", text, &Overrides::default(), None) else {
        return;
    };
    assert!((1..=4096).contains(&config.max_concurrency));
    assert!(config.timeout > Duration::ZERO && config.timeout <= Duration::from_secs(3600));
    assert!(config.inspect_max_age > Duration::ZERO);

    let selection = &config.selection;
    let _ = selection.engine_label_filter();
    // A container carrying every configured label under every configured
    // name, rendered with the configured label export.
    let labels: HashMap<String, String> = config
        .labels
        .include
        .iter()
        .map(|(k, _)| (k.clone(), k.clone()))
        .chain(selection.selectors().iter().flat_map(|s| {
            s.engine_filters()
                .into_iter()
                .map(|t| match t.split_once('=') {
                    Some((k, v)) => (k.to_string(), v.to_string()),
                    None => (t, String::new()),
                })
        }))
        .collect();
    let names: Vec<String> = selection.names().iter().map(|n| format!("/{n}")).collect();
    if !names.is_empty() {
        assert!(
            selection.matches(&names, &HashMap::new()),
            "a listed name is selected"
        );
    }
    let name = names.first().cloned().unwrap_or_default();
    let container = common::container("0123abcd", &name, "running", labels);
    common::render_both(
        common::snapshot(container, None, None, None),
        &config.labels,
    );
}
