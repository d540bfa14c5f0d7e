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

use crate::sample::{Interface, Sample};
use crate::scrape::{ContainerMetrics, Snapshot};

/// A sample value, kept integral where the engine's counter is.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value {
    /// An integer count or byte amount.
    Int(u64),
    /// A ratio, percent or seconds.
    Float(f64),
}

/// Which series a metric has and where their values come from.
#[derive(Clone, Copy)]
pub enum Source {
    /// One series per container, label `name`.
    Container(fn(&ContainerMetrics) -> Option<Value>),
    /// One series per container and interface, labels `name`, `interface`.
    Interface(fn(&Interface) -> Option<u64>),
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

fn sample(c: &ContainerMetrics) -> &Sample {
    &c.sample
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
        source: Source::Container(|c| int(sample(c).memory_usage)),
    },
    MetricDef {
        name: "container_memory_limit_bytes",
        help: "Memory limit as the engine reports it (the host's memory or 2^64-1 when unlimited).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(sample(c).memory_limit)),
    },
    MetricDef {
        name: "container_network_rx_bytes",
        help: "Bytes received, summed over the container's interfaces.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(sample(c).network_rx_bytes())),
    },
    MetricDef {
        name: "container_network_tx_bytes",
        help: "Bytes sent, summed over the container's interfaces.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(sample(c).network_tx_bytes())),
    },
    MetricDef {
        name: "container_cpu_usage_seconds_total",
        help: "CPU time consumed.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(sample(c).cpu.map(|r| r.total_ns))),
    },
    MetricDef {
        name: "container_cpu_user_seconds_total",
        help: "CPU time consumed in user mode.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(sample(c).cpu_user_ns)),
    },
    MetricDef {
        name: "container_cpu_system_seconds_total",
        help: "CPU time consumed in kernel mode.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(sample(c).cpu_system_ns)),
    },
    MetricDef {
        name: "container_cpu_cfs_periods_total",
        help: "Enforcement periods of the CPU quota that elapsed.",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).cfs_periods)),
    },
    MetricDef {
        name: "container_cpu_cfs_throttled_periods_total",
        help: "Enforcement periods in which the container was throttled.",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).cfs_throttled_periods)),
    },
    MetricDef {
        name: "container_cpu_cfs_throttled_seconds_total",
        help: "Time the container was throttled.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        source: Source::Container(|c| seconds(sample(c).cfs_throttled_ns)),
    },
    MetricDef {
        name: "container_memory_working_set_bytes",
        help: "Memory usage minus inactive file cache, as docker stats shows MEM USAGE.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(sample(c).memory_working_set)),
    },
    MetricDef {
        name: "container_memory_rss",
        help: "Anonymous memory in bytes (cgroup v1 total_rss, v2 anon).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).memory_rss)),
    },
    MetricDef {
        name: "container_memory_cache",
        help: "Page cache memory in bytes (cgroup v1 total_cache, v2 file).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).memory_cache)),
    },
    MetricDef {
        name: "container_memory_max_usage_bytes",
        help: "Highest memory usage recorded (cgroup v1 only).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(sample(c).memory_max_usage)),
    },
    MetricDef {
        name: "container_memory_failcnt",
        help: "Times memory usage hit the limit (cgroup v1 only).",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).memory_failcnt)),
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
        source: Source::Container(|c| int(sample(c).fs_read_bytes)),
    },
    MetricDef {
        name: "container_fs_writes_bytes_total",
        help: "Bytes written to block devices.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "",
        source: Source::Container(|c| int(sample(c).fs_write_bytes)),
    },
    MetricDef {
        name: "container_fs_reads_total",
        help: "Read operations on block devices (cgroup v1 only).",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).fs_reads)),
    },
    MetricDef {
        name: "container_fs_writes_total",
        help: "Write operations on block devices (cgroup v1 only).",
        kind: Counter,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).fs_writes)),
    },
    MetricDef {
        name: "container_pids",
        help: "Processes and threads in the container.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).pids)),
    },
    MetricDef {
        name: "container_pids_limit",
        help: "Limit on processes and threads, where one is set.",
        kind: Gauge,
        unit: None,
        labels: "",
        source: Source::Container(|c| int(sample(c).pids_limit)),
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
        help: "Running containers that matched the selection in this scrape.",
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
pub struct SnapshotCollector(pub Arc<Snapshot>);

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = &self.0;
        for def in METRICS {
            let unit = def.unit.map(MetricUnit::unit);
            match def.source {
                Source::Container(value) => {
                    let rows: Vec<_> = snap
                        .containers
                        .iter()
                        .filter_map(|c| value(c).map(|v| (c.container.name.as_str(), v)))
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let mut family = encoder.encode_descriptor(
                        def.base_name(),
                        def.help,
                        unit.as_ref(),
                        def.kind,
                    )?;
                    for (name, v) in rows {
                        let labels = [("name", name)];
                        encode_value(family.encode_family(&labels)?, def.kind, v)?;
                    }
                }
                Source::Interface(value) => {
                    let rows: Vec<_> = snap
                        .containers
                        .iter()
                        .flat_map(|c| {
                            c.sample.interfaces.iter().filter_map(move |i| {
                                value(i).map(|v| (c.container.name.as_str(), i.name.as_str(), v))
                            })
                        })
                        .collect();
                    if rows.is_empty() {
                        continue;
                    }
                    let mut family = encoder.encode_descriptor(
                        def.base_name(),
                        def.help,
                        unit.as_ref(),
                        def.kind,
                    )?;
                    for (name, interface, v) in rows {
                        let labels = [("name", name), ("interface", interface)];
                        encode_value(family.encode_family(&labels)?, def.kind, Value::Int(v))?;
                    }
                }
                Source::Exporter => {
                    let mut family = encoder.encode_descriptor(
                        def.base_name(),
                        def.help,
                        unit.as_ref(),
                        def.kind,
                    )?;
                    match def.name {
                        "docker_up" => {
                            encode_value(family, def.kind, Value::Int(u64::from(snap.engine_up)))?
                        }
                        "docker_stats_scrape_duration_seconds" => {
                            encode_value(family, def.kind, Value::Float(snap.duration_seconds))?
                        }
                        "docker_stats_containers_selected" => {
                            encode_value(family, def.kind, Value::Int(snap.selected as u64))?
                        }
                        "docker_stats_scrape_errors_total" => {
                            for (kind, n) in &snap.errors {
                                let labels = [("kind", kind.as_str())];
                                encode_value(
                                    family.encode_family(&labels)?,
                                    def.kind,
                                    Value::Int(*n),
                                )?;
                            }
                        }
                        _ => {}
                    }
                }
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
        (_, Value::Int(v)) => ConstGauge::new(v).encode(encoder),
        (_, Value::Float(v)) => ConstGauge::new(v).encode(encoder),
    }
}

/// Which text format a scraper gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus text format 0.0.4.
    Prometheus,
    /// OpenMetrics 1.0.0 text.
    OpenMetrics,
}

impl Format {
    /// Picks OpenMetrics only when the `Accept` header asks for it.
    pub fn from_accept(accept: Option<&str>) -> Self {
        match accept {
            Some(a) if a.contains("application/openmetrics-text") => Format::OpenMetrics,
            _ => Format::Prometheus,
        }
    }

    /// The response's `Content-Type`.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// Encodes a snapshot in the given format.
pub fn render(
    snapshot: impl Into<Arc<Snapshot>>,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector(snapshot.into())));
    let mut out = String::with_capacity(16 * 1024);
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
    }
    Ok(out)
}
