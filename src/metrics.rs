//! The metric table and the collector that encodes one [`Snapshot`].
//!
//! A fresh registry is built per request around an immutable snapshot, so no
//! series outlives the container it describes.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::{Registry, Unit};

use crate::config::{LabelExport, LabelsOn};
pub use crate::format::Format;
use crate::sample::Interface;
use crate::scrape::{ContainerMetrics, Snapshot};

/// A sample value, kept integral where the engine's counter is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer count or byte amount.
    Int(u64),
    /// A ratio, percent or seconds.
    Float(f64),
    /// A value that may be negative (exit codes).
    Signed(i64),
}

/// Which series a metric has and where their values come from.
#[derive(Clone, Copy)]
pub enum Source {
    /// One series per container, label `name`.
    Container(fn(&ContainerMetrics) -> Option<Value>),
    /// One series per container and interface, labels `name`, `interface`.
    Interface(fn(&Interface) -> Option<u64>),
    /// Value 1 with one more label, e.g. `state="running"`.
    Enum(&'static str, fn(&ContainerMetrics) -> Option<&str>),
    /// `container_info`: value 1 with id, image and allow-listed labels.
    Info,
    /// The exporter's own series, encoded from the snapshot as a whole.
    Exporter,
}

/// The unit suffix of a metric's name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricUnit {
    /// `_bytes`
    Bytes,
    /// `_seconds`
    Seconds,
    /// `_percent` (the original tool's CPU gauge)
    Percent,
}

impl MetricUnit {
    fn unit(self) -> Unit {
        match self {
            MetricUnit::Bytes => Unit::Bytes,
            MetricUnit::Seconds => Unit::Seconds,
            MetricUnit::Percent => Unit::Other("percent".to_string()),
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            MetricUnit::Bytes => "_bytes",
            MetricUnit::Seconds => "_seconds",
            MetricUnit::Percent => "_percent",
        }
    }
}

/// One row of the metric table.
#[derive(Clone, Copy)]
pub struct MetricDef {
    /// The name as scraped (what dashboards use).
    pub name: &'static str,
    /// `# HELP` text.
    pub help: &'static str,
    /// Gauge or counter.
    pub kind: MetricType,
    /// Unit, if the name ends in one.
    pub unit: Option<MetricUnit>,
    /// The labels besides `name` (documentation only).
    pub labels: &'static str,
    /// Where values come from.
    pub source: Source,
}

impl MetricDef {
    /// The name handed to the encoder: without the `_total` and unit suffixes
    /// it appends itself.
    fn base_name(&self) -> &'static str {
        let mut n = self.name;
        if self.kind == MetricType::Counter {
            n = n.strip_suffix("_total").unwrap_or(n);
        }
        if let Some(u) = self.unit {
            n = n.strip_suffix(u.suffix()).unwrap_or(n);
        }
        n
    }
}

fn int(v: Option<u64>) -> Option<Value> {
    v.map(Value::Int)
}

fn seconds(ns: Option<u64>) -> Option<Value> {
    ns.map(|ns| Value::Float(ns as f64 / 1e9))
}

use MetricType::{Counter, Gauge};
use MetricUnit::{Bytes, Percent, Seconds};

/// Every metric the exporter serves, in exposition order. The README's metric
/// reference is checked against this table by a test.
pub const METRICS: &[MetricDef] = &[
    MetricDef {
        name: "container_cpu_usage_percent",
        help: "CPU used since the previous reading, in percent of the whole host (100 = every core busy).",
        kind: Gauge,
        unit: Some(Percent),
        labels: "",
        source: Source::Container(|c| c.cpu_percent.map(Value::Float)),
    },
    MetricDef {
        name: "container_memory_usage_bytes",
        help: "Memory usage as the engine reports it, page cache included.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_usage)),
    },
    MetricDef {
        name: "container_memory_limit_bytes",
        help: "Memory limit as the engine reports it (the host's memory or 2^64-1 when unlimited).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_limit)),
    },
    MetricDef {
        name: "container_network_rx_bytes",
        help: "Bytes received, summed over the container's interfaces.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.network_rx_bytes())),
    },
    MetricDef {
        name: "container_network_tx_bytes",
        help: "Bytes sent, summed over the container's interfaces.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.network_tx_bytes())),
    },
    MetricDef {
        name: "container_cpu_usage_seconds_total",
        help: "CPU time consumed.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cpu.map(|r| r.total_ns))),
    },
    MetricDef {
        name: "container_cpu_user_seconds_total",
        help: "CPU time consumed in user mode.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cpu_user_ns)),
    },
    MetricDef {
        name: "container_cpu_system_seconds_total",
        help: "CPU time consumed in kernel mode.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cpu_system_ns)),
    },
    MetricDef {
        name: "container_cpu_cfs_periods_total",
        help: "Enforcement periods of the CPU quota that elapsed.",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.cfs_periods)),
    },
    MetricDef {
        name: "container_cpu_cfs_throttled_periods_total",
        help: "Enforcement periods in which the container was throttled.",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.cfs_throttled_periods)),
    },
    MetricDef {
        name: "container_cpu_cfs_throttled_seconds_total",
        help: "Time the container was throttled.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cfs_throttled_ns)),
    },
    MetricDef {
        name: "container_memory_working_set_bytes",
        help: "Memory usage minus inactive file cache, as docker stats shows MEM USAGE.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_working_set)),
    },
    MetricDef {
        name: "container_memory_rss",
        help: "Anonymous memory in bytes (cgroup v1 total_rss, v2 anon).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_rss)),
    },
    MetricDef {
        name: "container_memory_cache",
        help: "Page cache memory in bytes (cgroup v1 total_cache, v2 file).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_cache)),
    },
    MetricDef {
        name: "container_memory_max_usage_bytes",
        help: "Highest memory usage recorded (cgroup v1 only).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_max_usage)),
    },
    MetricDef {
        name: "container_memory_failcnt",
        help: "Times memory usage hit the limit (cgroup v1 only).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_failcnt)),
    },
    MetricDef {
        name: "container_network_receive_bytes_total",
        help: "Bytes received.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "interface",
        source: Source::Interface(|i| i.rx_bytes),
    },
    MetricDef {
        name: "container_network_transmit_bytes_total",
        help: "Bytes sent.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "interface",
        source: Source::Interface(|i| i.tx_bytes),
    },
    MetricDef {
        name: "container_network_receive_packets_total",
        help: "Packets received.",
        kind: Counter,
        unit: None,
        labels: "interface",
        source: Source::Interface(|i| i.rx_packets),
    },
    MetricDef {
        name: "container_network_transmit_packets_total",
        help: "Packets sent.",
        kind: Counter,
        unit: None,
        labels: "interface",
        source: Source::Interface(|i| i.tx_packets),
    },
    MetricDef {
        name: "container_network_receive_errors_total",
        help: "Errors while receiving.",
        kind: Counter,
        unit: None,
        labels: "interface",
        source: Source::Interface(|i| i.rx_errors),
    },
    MetricDef {
        name: "container_network_transmit_errors_total",
        help: "Errors while sending.",
        kind: Counter,
        unit: None,
        labels: "interface",
        source: Source::Interface(|i| i.tx_errors),
    },
    MetricDef {
        name: "container_network_receive_packets_dropped_total",
        help: "Received packets dropped.",
        kind: Counter,
        unit: None,
        labels: "interface",
        source: Source::Interface(|i| i.rx_dropped),
    },
    MetricDef {
        name: "container_network_transmit_packets_dropped_total",
        help: "Outgoing packets dropped.",
        kind: Counter,
        unit: None,
        labels: "interface",
        source: Source::Interface(|i| i.tx_dropped),
    },
    MetricDef {
        name: "container_fs_reads_bytes_total",
        help: "Bytes read from block devices.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_read_bytes)),
    },
    MetricDef {
        name: "container_fs_writes_bytes_total",
        help: "Bytes written to block devices.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_write_bytes)),
    },
    MetricDef {
        name: "container_fs_reads_total",
        help: "Read operations on block devices (cgroup v1 only).",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_reads)),
    },
    MetricDef {
        name: "container_fs_writes_total",
        help: "Write operations on block devices (cgroup v1 only).",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_writes)),
    },
    MetricDef {
        name: "container_pids",
        help: "Processes and threads in the container.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.pids)),
    },
    MetricDef {
        name: "container_pids_limit",
        help: "Limit on processes and threads, where one is set.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.sample.as_ref()?.pids_limit)),
    },
    MetricDef {
        name: "container_info",
        help: "Always 1; labels name the container's id, image and allow-listed container labels.",
        kind: Gauge,
        unit: None,
        labels: "id, image, image_id, container_label_*",
        source: Source::Info,
    },
    MetricDef {
        name: "container_state",
        help: "Always 1; label state is the container's state (running, paused, restarting, exited, created, dead).",
        kind: Gauge,
        unit: None,
        labels: "state",
        source: Source::Enum("state", |c| Some(c.container.state.as_str()).filter(|s| !s.is_empty())),
    },
    MetricDef {
        name: "container_health_status",
        help: "Always 1; label status is the health check's verdict (starting, healthy, unhealthy).",
        kind: Gauge,
        unit: None,
        labels: "status",
        source: Source::Enum("status", |c| c.lifecycle.as_ref()?.health.as_deref()),
    },
    MetricDef {
        name: "container_restarts_total",
        help: "Times the engine restarted the container under its restart policy.",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.restart_count)),
    },
    MetricDef {
        name: "container_oom_killed",
        help: "1 if the container's last run ended in an out-of-memory kill, else 0.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.oom_killed.map(u64::from))),
    },
    MetricDef {
        name: "container_exit_code",
        help: "Exit code of the container's last run; only for containers that are not running.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| {
            if c.container.has_stats() {
                return None;
            }
            c.lifecycle.as_ref()?.exit_code.map(Value::Signed)
        }),
    },
    MetricDef {
        name: "container_start_time_seconds",
        help: "Unix time the container last started.",
        kind: Gauge,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| c.lifecycle.as_ref()?.started_at.map(Value::Float)),
    },
    MetricDef {
        name: "container_spec_cpu_quota",
        help: "CPU quota in microseconds per period, where one is set (--cpus, --cpu-quota).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.cpu_quota)),
    },
    MetricDef {
        name: "container_spec_cpu_period",
        help: "CPU quota period in microseconds, where a quota is set.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.cpu_period)),
    },
    MetricDef {
        name: "container_spec_cpu_shares",
        help: "Relative CPU weight, where set (--cpu-shares).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.cpu_shares)),
    },
    MetricDef {
        name: "container_spec_memory_reservation_limit_bytes",
        help: "Soft memory limit, where set (--memory-reservation).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.memory_reservation)),
    },
    MetricDef {
        name: "docker_up",
        help: "1 if the engine answered the container list call of this scrape, else 0.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Exporter,
    },
    MetricDef {
        name: "docker_stats_scrape_duration_seconds",
        help: "Time this scrape spent asking the engine.",
        kind: Gauge,
        unit: Some(Seconds),
        labels: "",
        source: Source::Exporter,
    },
    MetricDef {
        name: "docker_stats_containers_selected",
        help: "Containers that matched the selection in this scrape (stopped ones too where names or labels select them).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Exporter,
    },
    MetricDef {
        name: "docker_stats_scrape_errors_total",
        help: "Containers or list calls left out of a scrape since start, by kind (engine, decode, timeout, gone).",
        kind: Counter,
        unit: None,
        labels: "kind",
        source: Source::Exporter,
    },
];

/// Encodes one snapshot; registered into a per-request registry.
#[derive(Debug)]
pub struct SnapshotCollector {
    snapshot: Arc<Snapshot>,
    labels: LabelExport,
}

impl SnapshotCollector {
    /// A collector for one answer.
    pub fn new(snapshot: Arc<Snapshot>, labels: LabelExport) -> Self {
        Self { snapshot, labels }
    }

    /// `name` plus, where configured for every series, the allow-listed
    /// container labels the container has.
    fn base_labels<'a>(&'a self, c: &'a ContainerMetrics) -> Vec<(&'a str, &'a str)> {
        let mut labels = vec![("name", c.container.name.as_str())];
        if self.labels.on == LabelsOn::All {
            labels.extend(self.allow_listed(c));
        }
        labels
    }

    fn allow_listed<'a>(
        &'a self,
        c: &'a ContainerMetrics,
    ) -> impl Iterator<Item = (&'a str, &'a str)> + 'a {
        self.labels.include.iter().filter_map(move |(key, label)| {
            c.container
                .labels
                .get(key)
                .map(|v| (label.as_str(), v.as_str()))
        })
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = &*self.snapshot;
        for def in METRICS {
            let unit = def.unit.map(MetricUnit::unit);
            let mut rows: Vec<(Vec<(&str, &str)>, Value)> = Vec::new();
            match def.source {
                Source::Container(value) => {
                    for c in &snap.containers {
                        if let Some(v) = value(c) {
                            rows.push((self.base_labels(c), v));
                        }
                    }
                }
                Source::Interface(value) => {
                    for c in &snap.containers {
                        for i in c.sample.iter().flat_map(|s| &s.interfaces) {
                            if let Some(v) = value(i) {
                                let mut labels = self.base_labels(c);
                                labels.push(("interface", i.name.as_str()));
                                rows.push((labels, Value::Int(v)));
                            }
                        }
                    }
                }
                Source::Enum(label, value) => {
                    for c in &snap.containers {
                        if let Some(v) = value(c) {
                            let mut labels = self.base_labels(c);
                            labels.push((label, v));
                            rows.push((labels, Value::Int(1)));
                        }
                    }
                }
                Source::Info => {
                    for c in &snap.containers {
                        let k = &c.container;
                        let mut labels = vec![
                            ("name", k.name.as_str()),
                            ("id", k.id.as_str()),
                            ("image", k.image.as_str()),
                            ("image_id", k.image_id.as_str()),
                        ];
                        labels.extend(self.allow_listed(c));
                        rows.push((labels, Value::Int(1)));
                    }
                }
                Source::Exporter => {
                    let single = match def.name {
                        "docker_up" => Some(Value::Int(u64::from(snap.engine_up))),
                        "docker_stats_scrape_duration_seconds" => {
                            Some(Value::Float(snap.duration_seconds))
                        }
                        "docker_stats_containers_selected" => {
                            Some(Value::Int(snap.selected as u64))
                        }
                        _ => None,
                    };
                    match single {
                        // Unlabelled: encoded on the family itself.
                        Some(value) => {
                            let family = encoder.encode_descriptor(
                                def.base_name(),
                                def.help,
                                unit.as_ref(),
                                def.kind,
                            )?;
                            encode_value(family, def.kind, value)?;
                            continue;
                        }
                        // docker_stats_scrape_errors_total, one series per kind.
                        None => rows.extend(
                            snap.errors
                                .iter()
                                .map(|(kind, n)| (vec![("kind", kind.as_str())], Value::Int(*n))),
                        ),
                    }
                }
            }
            if rows.is_empty() {
                continue;
            }
            let mut family =
                encoder.encode_descriptor(def.base_name(), def.help, unit.as_ref(), def.kind)?;
            for (labels, v) in &rows {
                encode_value(family.encode_family(labels)?, def.kind, *v)?;
            }
        }
        Ok(())
    }
}

fn encode_value(
    encoder: prometheus_client::encoding::MetricEncoder<'_>,
    kind: MetricType,
    value: Value,
) -> Result<(), std::fmt::Error> {
    match (kind, value) {
        (MetricType::Counter, Value::Int(v)) => ConstCounter::new(v).encode(encoder),
        (MetricType::Counter, Value::Float(v)) => ConstCounter::new(v).encode(encoder),
        (MetricType::Counter, Value::Signed(v)) => {
            ConstCounter::new(u64::try_from(v).unwrap_or(0)).encode(encoder)
        }
        (_, Value::Int(v)) => ConstGauge::new(v).encode(encoder),
        (_, Value::Signed(v)) => ConstGauge::new(v).encode(encoder),
        (_, Value::Float(v)) => ConstGauge::new(v).encode(encoder),
    }
}

/// Encodes a snapshot in the given format.
pub fn render(
    snapshot: impl Into<Arc<Snapshot>>,
    labels: &LabelExport,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(
        snapshot.into(),
        labels.clone(),
    )));
    let mut out = String::with_capacity(16 * 1024);
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
    }
    Ok(out)
}

/// The metric reference as a Markdown table; the README carries a copy that
/// a test keeps equal to this.
pub fn reference_table() -> String {
    let mut out = String::from("| metric | type | labels | meaning |\n|---|---|---|---|\n");
    for def in METRICS {
        let kind = match def.kind {
            MetricType::Counter => "counter",
            _ => "gauge",
        };
        let labels = match (&def.source, def.labels) {
            (Source::Exporter, l) => l.to_string(),
            (_, "") => "name".to_string(),
            (_, l) => format!("name, {l}"),
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {labels} | {} |\n",
            def.name, def.help
        ));
    }
    out
}
