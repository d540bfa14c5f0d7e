//! Configuration text as a user might write it: parse and validate, and the
//! smaller parsers it uses (durations, label selectors) on the raw text.

#![no_main]

use std::collections::HashMap;
use std::time::Duration;

use docker_stats_exporter::config::{parse_duration, Config, Overrides};
use docker_stats_exporter::selector::LabelSelector;
use libfuzzer_sys::fuzz_target;

#[path = "common.rs"]
mod common;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };

    if let Ok(d) = parse_duration(text) {
        assert!(d > Duration::ZERO && d <= Duration::from_secs(3600), "{text:?} gave {d:?}");
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
            s.engine_filters().into_iter().map(|t| match t.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (t, String::new()),
            })
        }))
        .collect();
    let names: Vec<String> = selection.names().iter().map(|n| format!("/{n}")).collect();
    if !names.is_empty() {
        assert!(selection.matches(&names, &HashMap::new()), "a listed name is selected");
    }
    let name = names.first().cloned().unwrap_or_default();
    let container = common::container("0123abcd", &name, "running", labels);
    common::render_both(common::snapshot(container, None, None, None), &config.labels);
});
