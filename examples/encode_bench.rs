//! Encoding cost of one `/metrics` answer, without the engine.
//!
//! ```text
//! cargo run --release --example encode_bench [-- --containers 300 --iterations 2000]
//! ```
//!
//! Builds a snapshot of N containers (default 300), each with the sample of
//! `tests/fixtures/stats-cgroupv1-docker20.10-cap-busy.json` and the lifecycle
//! values of `tests/fixtures/inspect-docker20.10-cap-busy.json`, and times
//! `collector::render` in the Prometheus text format and in OpenMetrics (the
//! default label export, allow-listed labels on every series, and once more
//! with them on `container_info` only, `labels.on = "info"`): a
//! warm-up, then every call timed on its own (the snapshot clone that `render`
//! consumes is made outside the timed part). Prints the median and the 10th/90th
//! percentiles per call in µs and the output size in KiB.
//!
//! `-- --label-policies` instead prints the bytes of one answer for N
//! containers that carry the labels a real Compose service has (as
//! docker-compose 1.29 sets them, recorded here, plus dockprom's
//! `org.label-schema.group` and five OCI image labels an image typically
//! brings) under each way of exporting labels: the previous allow-list, the
//! current one, every label (cAdvisor's default) and every label less the
//! bulky ones.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use docker_stats_exporter::config::{label_name, LabelExport, LabelsOn, DEFAULT_LABELS};
use docker_stats_exporter::engine::model::{Inspect, Stats};
use docker_stats_exporter::engine::{ContainerRef, Failure};
use docker_stats_exporter::exposition::collector::render;
use docker_stats_exporter::exposition::format::Format;
use docker_stats_exporter::scrape::lifecycle::Lifecycle;
use docker_stats_exporter::scrape::sample::Sample;
use docker_stats_exporter::scrape::{ContainerMetrics, Snapshot};

const FIXTURE: &str = "tests/fixtures/stats-cgroupv1-docker20.10-cap-busy.json";
const INSPECT_FIXTURE: &str = "tests/fixtures/inspect-docker20.10-cap-busy.json";

fn fixture<T: serde::de::DeserializeOwned>(relative: &str) -> anyhow::Result<T> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("read {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("decode {}", path.display()))
}

/// The labels of a Compose service's container (docker-compose 1.29 as it
/// labelled one here, with dockprom's group label) and of its image.
fn compose_labels(i: usize) -> HashMap<String, String> {
    let service = format!("svc{i}");
    [
        (
            "com.docker.compose.config-hash",
            format!("{:064x}", i * 7919),
        ),
        ("com.docker.compose.container-number", "1".to_string()),
        ("com.docker.compose.oneoff", "False".to_string()),
        ("com.docker.compose.project", "bench".to_string()),
        (
            "com.docker.compose.project.config_files",
            "compose.yaml".to_string(),
        ),
        (
            "com.docker.compose.project.working_dir",
            "/srv/stacks/bench".to_string(),
        ),
        ("com.docker.compose.service", service),
        ("com.docker.compose.version", "1.29.2".to_string()),
        ("org.label-schema.group", "monitoring".to_string()),
        (
            "org.opencontainers.image.created",
            "2026-11-20T09:14:03Z".to_string(),
        ),
        (
            "org.opencontainers.image.revision",
            format!("{:040x}", 0xbe7au32),
        ),
        (
            "org.opencontainers.image.source",
            "https://example.org/acme/bench-service".to_string(),
        ),
        (
            "org.opencontainers.image.title",
            "bench-service".to_string(),
        ),
        (
            "org.opencontainers.image.description",
            "A small service of the benchmark stack, serving requests and reporting its health"
                .to_string(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect()
}

/// Labels whose values are long and never filtered on: what a deny-list
/// leaves out of "every label".
fn bulky(key: &str) -> bool {
    key.starts_with("org.opencontainers.image.")
        || matches!(
            key,
            "com.docker.compose.config-hash"
                | "com.docker.compose.project.config_files"
                | "com.docker.compose.project.working_dir"
        )
}

fn export_of(keys: &[&str]) -> LabelExport {
    LabelExport {
        include: keys
            .iter()
            .map(|k| (k.to_string(), label_name(k)))
            .collect(),
        on: LabelsOn::All,
    }
}

/// Bytes of one Prometheus-text answer under each label policy.
fn label_policies(containers: usize) -> anyhow::Result<()> {
    let mut snap = snapshot(containers)?;
    for (i, c) in snap.containers.iter_mut().enumerate() {
        c.container.labels = compose_labels(i);
    }
    let labels = compose_labels(0);
    let mut every: Vec<&str> = labels.keys().map(String::as_str).collect();
    every.sort();
    let lean: Vec<&str> = every.iter().copied().filter(|k| !bulky(k)).collect();
    let previous: Vec<&str> = DEFAULT_LABELS
        .iter()
        .copied()
        .filter(|k| *k != "org.label-schema.group")
        .collect();
    println!(
        "{containers} containers, {} labels each (docker-compose 1.29's, dockprom's group, 5 OCI image labels)\n",
        every.len()
    );
    println!("| labels exported | on | labels per series | answer KiB |");
    println!("|---|---|---:|---:|");
    let info_only = LabelExport {
        on: LabelsOn::Info,
        ..LabelExport::default()
    };
    for (what, export) in [
        ("allow-list before (6 keys)", export_of(&previous)),
        ("allow-list now (default, 7 keys)", LabelExport::default()),
        ("allow-list now, `on = \"info\"`", info_only),
        ("every label less the bulky ones", export_of(&lean)),
        ("every label (cAdvisor's default)", export_of(&every)),
    ] {
        let on = if export.on == LabelsOn::Info {
            "container_info"
        } else {
            "every series"
        };
        let carried = export
            .include
            .iter()
            .filter(|(k, _)| labels.contains_key(k))
            .count();
        let body = render(snap.clone(), &export, Format::Prometheus)?;
        println!(
            "| {what} | {on} | {carried} | {:.0} |",
            body.len() as f64 / 1024.0
        );
    }
    Ok(())
}

fn snapshot(n: usize) -> anyhow::Result<Snapshot> {
    let stats: Stats = fixture(FIXTURE)?;
    let Some(sample) = Sample::from_stats(&stats) else {
        bail!("{FIXTURE} does not describe a running container");
    };
    let inspect: Inspect = fixture(INSPECT_FIXTURE)?;
    let lifecycle = Arc::new(Lifecycle::from_inspect(&inspect));
    let containers = (0..n)
        .map(|i| ContainerMetrics {
            container: ContainerRef {
                id: format!("{i:064x}"),
                name: format!("bench-service-{i:04}"),
                labels: HashMap::from([
                    (
                        "com.docker.compose.project".to_string(),
                        "bench".to_string(),
                    ),
                    ("com.docker.compose.service".to_string(), format!("svc{i}")),
                ]),
                image: "dse-test/busybox:latest".to_string(),
                image_id: format!("sha256:{:064x}", 0xb05u32),
                state: "running".to_string(),
                status: "Up 5 minutes".to_string(),
                size_rw: None,
                health: None,
            },
            sample: Some(sample.clone()),
            cpu_percent: Some(12.5 + i as f64 / 100.0),
            lifecycle: Some(lifecycle.clone()),
            cgroup: format!("/docker/{i:064x}"),
            fs_usage: Some(8192),
            last_seen: Some(1_795_620_700.0),
        })
        .collect();
    Ok(Snapshot {
        engine_up: true,
        error: None,
        failed: false,
        duration_seconds: 0.042,
        selected: n,
        containers,
        errors: Failure::ALL.iter().map(|f| (*f, 0)).collect(),
        seen_at: 1_795_620_700.0,
        machine: None,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() - 1) as f64 * p).round() as usize;
    sorted[i].as_secs_f64() * 1e6
}

struct Timing {
    median_us: f64,
    p10_us: f64,
    p90_us: f64,
    kib: f64,
    series: usize,
}

fn time(
    snapshot: &Snapshot,
    labels: &LabelExport,
    format: Format,
    iterations: usize,
) -> anyhow::Result<Timing> {
    const BATCH: usize = 50;
    let mut out_len = 0;
    let mut series = 0;
    // Warm-up.
    for _ in 0..(iterations / 10).max(20) {
        let body = render(snapshot.clone(), labels, format)?;
        out_len = body.len();
        series = body.lines().filter(|l| !l.starts_with('#')).count();
    }
    let mut times = Vec::with_capacity(iterations);
    while times.len() < iterations {
        let batch: Vec<Snapshot> = (0..BATCH.min(iterations - times.len()))
            .map(|_| snapshot.clone())
            .collect();
        for snap in batch {
            let started = Instant::now();
            let body = render(snap, labels, format)?;
            times.push(started.elapsed());
            std::hint::black_box(&body);
        }
    }
    times.sort();
    Ok(Timing {
        median_us: percentile(&times, 0.5),
        p10_us: percentile(&times, 0.1),
        p90_us: percentile(&times, 0.9),
        kib: out_len as f64 / 1024.0,
        series,
    })
}

fn main() -> anyhow::Result<()> {
    let mut containers = 300;
    let mut iterations = 2000;
    let mut policies = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--containers" => containers = args.next().context("--containers N")?.parse()?,
            "--iterations" => iterations = args.next().context("--iterations N")?.parse()?,
            "--label-policies" => policies = true,
            other => bail!(
                "unknown argument {other:?}; use --containers N --iterations N [--label-policies]"
            ),
        }
    }
    if containers == 0 || iterations == 0 {
        bail!("--containers and --iterations must be at least 1");
    }
    if policies {
        return label_policies(containers);
    }
    let snap = snapshot(containers)?;
    let clone_started = Instant::now();
    for _ in 0..100 {
        std::hint::black_box(snap.clone());
    }
    let clone_us = clone_started.elapsed().as_secs_f64() * 1e6 / 100.0;

    println!(
        "Snapshot: {containers} containers from {FIXTURE}; {iterations} timed calls per format \
         after a warm-up (snapshot clone, not timed: {clone_us:.0} µs)\n"
    );
    let on_all = LabelExport::default();
    let info_only = LabelExport {
        on: LabelsOn::Info,
        ..LabelExport::default()
    };
    println!(
        "| format | compose labels on | median µs/call | p10–p90 µs | µs per container | output KiB | sample lines |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|");
    for (label, format, labels, on) in [
        (
            "Prometheus text 0.0.4",
            Format::Prometheus,
            &info_only,
            "container_info",
        ),
        (
            "OpenMetrics 1.0.0",
            Format::OpenMetrics,
            &info_only,
            "container_info",
        ),
        (
            "Prometheus text 0.0.4",
            Format::Prometheus,
            &on_all,
            "every series",
        ),
        (
            "OpenMetrics 1.0.0",
            Format::OpenMetrics,
            &on_all,
            "every series",
        ),
    ] {
        let r = time(&snap, labels, format, iterations)?;
        println!(
            "| {label} | {on} | {:.0} | {:.0}–{:.0} | {:.2} | {:.1} | {} |",
            r.median_us,
            r.p10_us,
            r.p90_us,
            r.median_us / containers as f64,
            r.kib,
            r.series
        );
    }
    Ok(())
}
