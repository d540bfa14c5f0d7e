//! The metric table: every metric's name, type, help, labels and where its
//! values come from. The collector walks it.

use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Unit;

use crate::engine::EngineInfo;
use crate::scrape::sample::Interface;
use crate::scrape::{ContainerMetrics, Snapshot};

/// A sample value, kept integral where the engine's counter is.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum Value {
    /// An integer count or byte amount.
    Int(u64),
    /// A ratio, percent or seconds.
    Float(f64),
    /// A value that may be negative (exit codes).
    Signed(i64),
}

/// Which series a metric has and where their values come from. Every
/// per-container series carries the container's labels (`name`, `id`,
/// `image` and, by default, the allow-listed container labels).
#[derive(Clone, Copy)]
pub enum Source {
    /// One series per container.
    Container(fn(&ContainerMetrics) -> Option<Value>),
    /// One series per container with fixed extra labels.
    Fixed(
        &'static [(&'static str, &'static str)],
        fn(&ContainerMetrics) -> Option<Value>,
    ),
    /// One series per container and interface, label `interface`.
    Interface(fn(&Interface) -> Option<u64>),
    /// Value 1 with one more label, e.g. `state="running"`.
    Enum(&'static str, fn(&ContainerMetrics) -> Option<&str>),
    /// Page faults by `failure_type` (pgfault, pgmajfault) and `scope`
    /// (container, hierarchy), as cAdvisor counts them.
    MemoryFailures,
    /// `container_info`: value 1 with the container id, image id and every
    /// allow-listed label.
    Info,
    /// One unlabelled series about the machine, from the engine's `/info`.
    Machine(fn(&EngineInfo) -> Option<Value>),
    /// One series about the scrape itself, from the snapshot as a whole.
    Scrape(fn(&Snapshot) -> Value),
    /// The error counters of the snapshot, one series per kind (`kind`).
    ScrapeErrors,
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
    pub(crate) fn unit(self) -> Unit {
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
    /// Where the value appears in `/api/containers` and the live view.
    pub view: View,
    /// Where values come from.
    pub source: Source,
}

/// Where a metric's value appears in `/api/containers` (the live view's
/// data): on each container for a per-container metric, on each engine for
/// one about the machine or the scrape. One value per container or engine,
/// so metrics with a series per interface or kind stay hidden.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum View {
    /// Only in `/metrics`.
    Hidden,
    /// The value as it is, under this key.
    Key(&'static str),
    /// Under this key where above 0: the row's 0 means "none set".
    Positive(&'static str),
    /// Under this key as `true` or `false`.
    Flag(&'static str),
}

/// One value of the JSON view.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(untagged)]
pub enum ViewValue<'a> {
    /// A count, byte amount, ratio or code.
    Number(Value),
    /// The label value of a metric with one series of value 1 (a state).
    Text(&'a str),
    /// A 0 or 1 metric.
    Flag(bool),
}

impl View {
    /// The key and the JSON value of `v` under this view, if it shows.
    fn show<'a>(self, v: ViewValue<'a>) -> Option<(&'static str, ViewValue<'a>)> {
        let number = |v: ViewValue<'_>| match v {
            ViewValue::Number(Value::Int(n)) => Some(n as f64),
            ViewValue::Number(Value::Float(f)) => Some(f),
            ViewValue::Number(Value::Signed(n)) => Some(n as f64),
            _ => None,
        };
        match self {
            View::Hidden => None,
            View::Key(key) => Some((key, v)),
            View::Positive(key) => number(v).filter(|n| *n > 0.0).map(|_| (key, v)),
            View::Flag(key) => number(v).map(|n| (key, ViewValue::Flag(n != 0.0))),
        }
    }
}

impl MetricDef {
    /// This metric's entry on a container of `/api/containers`, if it has one.
    pub fn container_view<'a>(
        &self,
        c: &'a ContainerMetrics,
    ) -> Option<(&'static str, ViewValue<'a>)> {
        let value = match self.source {
            Source::Container(value) | Source::Fixed(_, value) => ViewValue::Number(value(c)?),
            Source::Enum(_, value) => ViewValue::Text(value(c)?),
            _ => return None,
        };
        self.view.show(value)
    }

    /// This metric's entry on an engine of `/api/containers`, if it has one.
    pub fn engine_view(&self, snap: &Snapshot) -> Option<(&'static str, ViewValue<'static>)> {
        let value = match self.source {
            Source::Machine(value) => value(snap.machine.as_ref()?)?,
            Source::Scrape(value) => value(snap),
            _ => return None,
        };
        self.view.show(ViewValue::Number(value))
    }
}

impl MetricDef {
    /// The name handed to the encoder: without the `_total` and unit suffixes
    /// it appends itself.
    pub(crate) fn base_name(&self) -> &'static str {
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
        view: View::Key("cpu_percent"),
        source: Source::Container(|c| c.cpu_percent.map(Value::Float)),
    },
    MetricDef {
        name: "container_memory_usage_bytes",
        help: "Memory usage as the engine reports it, page cache included.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("memory_usage_bytes"),
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_usage)),
    },
    MetricDef {
        name: "container_memory_limit_bytes",
        help: "Memory limit as the engine reports it (the host's memory or 2^64-1 when unlimited).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_limit)),
    },
    MetricDef {
        name: "container_network_rx_bytes",
        help: "Bytes received, summed over the container's interfaces.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("network_rx_bytes_total"),
        source: Source::Container(|c| int(c.sample.as_ref()?.network_rx_bytes())),
    },
    MetricDef {
        name: "container_network_tx_bytes",
        help: "Bytes sent, summed over the container's interfaces.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("network_tx_bytes_total"),
        source: Source::Container(|c| int(c.sample.as_ref()?.network_tx_bytes())),
    },
    MetricDef {
        name: "container_cpu_usage_seconds_total",
        help: "CPU time consumed, all CPUs together (cpu=\"total\", as cAdvisor without per-CPU series).",
        kind: Counter,
        unit: Some(Seconds),
        labels: "cpu",
        view: View::Key("cpu_seconds_total"),
        source: Source::Fixed(&[("cpu", "total")], |c| {
            seconds(c.sample.as_ref()?.cpu.map(|r| r.total_ns))
        }),
    },
    MetricDef {
        name: "container_cpu_user_seconds_total",
        help: "CPU time consumed in user mode.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cpu_user_ns)),
    },
    MetricDef {
        name: "container_cpu_system_seconds_total",
        help: "CPU time consumed in kernel mode.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cpu_system_ns)),
    },
    MetricDef {
        name: "container_cpu_cfs_periods_total",
        help: "Enforcement periods of the CPU quota that elapsed.",
        kind: Counter,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.cfs_periods)),
    },
    MetricDef {
        name: "container_cpu_cfs_throttled_periods_total",
        help: "Enforcement periods in which the container was throttled.",
        kind: Counter,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.cfs_throttled_periods)),
    },
    MetricDef {
        name: "container_cpu_cfs_throttled_seconds_total",
        help: "Time the container was throttled.",
        kind: Counter,
        unit: Some(Seconds),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| seconds(c.sample.as_ref()?.cfs_throttled_ns)),
    },
    MetricDef {
        name: "container_memory_working_set_bytes",
        help: "Memory usage minus inactive file cache, as docker stats shows MEM USAGE.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("memory_working_set_bytes"),
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_working_set)),
    },
    MetricDef {
        name: "container_memory_rss",
        help: "Anonymous memory in bytes (cgroup v1 total_rss, v2 anon).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_rss)),
    },
    MetricDef {
        name: "container_memory_cache",
        help: "Page cache memory in bytes (cgroup v1 total_cache, v2 file).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_cache)),
    },
    MetricDef {
        name: "container_memory_max_usage_bytes",
        help: "Highest memory usage recorded (cgroup v1 only).",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_max_usage)),
    },
    MetricDef {
        name: "container_memory_failcnt",
        help: "Times memory usage hit the limit (cgroup v1 only).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_failcnt)),
    },
    MetricDef {
        name: "container_memory_swap",
        help: "Swap in use in bytes, where the engine reports it (cgroup v1 total_swap).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_swap)),
    },
    MetricDef {
        name: "container_memory_mapped_file",
        help: "Memory-mapped file pages in bytes (cgroup v1 total_mapped_file, v2 file_mapped).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.memory_mapped_file)),
    },
    MetricDef {
        name: "container_memory_failures_total",
        help: "Page faults (failure_type pgfault or pgmajfault) of the container itself (scope container) and with its children (scope hierarchy).",
        kind: Counter,
        unit: None,
        labels: "failure_type, scope",
        view: View::Hidden,
        source: Source::MemoryFailures,
    },
    MetricDef {
        name: "container_network_receive_bytes_total",
        help: "Bytes received.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.rx_bytes),
    },
    MetricDef {
        name: "container_network_transmit_bytes_total",
        help: "Bytes sent.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.tx_bytes),
    },
    MetricDef {
        name: "container_network_receive_packets_total",
        help: "Packets received.",
        kind: Counter,
        unit: None,
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.rx_packets),
    },
    MetricDef {
        name: "container_network_transmit_packets_total",
        help: "Packets sent.",
        kind: Counter,
        unit: None,
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.tx_packets),
    },
    MetricDef {
        name: "container_network_receive_errors_total",
        help: "Errors while receiving.",
        kind: Counter,
        unit: None,
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.rx_errors),
    },
    MetricDef {
        name: "container_network_transmit_errors_total",
        help: "Errors while sending.",
        kind: Counter,
        unit: None,
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.tx_errors),
    },
    MetricDef {
        name: "container_network_receive_packets_dropped_total",
        help: "Received packets dropped.",
        kind: Counter,
        unit: None,
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.rx_dropped),
    },
    MetricDef {
        name: "container_network_transmit_packets_dropped_total",
        help: "Outgoing packets dropped.",
        kind: Counter,
        unit: None,
        labels: "interface",
        view: View::Hidden,
        source: Source::Interface(|i| i.tx_dropped),
    },
    MetricDef {
        name: "container_fs_reads_bytes_total",
        help: "Bytes read from block devices.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("fs_read_bytes_total"),
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_read_bytes)),
    },
    MetricDef {
        name: "container_fs_writes_bytes_total",
        help: "Bytes written to block devices.",
        kind: Counter,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("fs_write_bytes_total"),
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_write_bytes)),
    },
    MetricDef {
        name: "container_fs_reads_total",
        help: "Read operations on block devices (cgroup v1 only).",
        kind: Counter,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_reads)),
    },
    MetricDef {
        name: "container_fs_writes_total",
        help: "Write operations on block devices (cgroup v1 only).",
        kind: Counter,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.fs_writes)),
    },
    MetricDef {
        name: "container_fs_usage_bytes",
        help: "Bytes in the container's writable layer, as `docker ps --size` shows it; reused for fs_usage_max_age.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.fs_usage)),
    },
    MetricDef {
        name: "container_pids",
        help: "Processes and threads in the container.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Key("pids"),
        source: Source::Container(|c| int(c.sample.as_ref()?.pids)),
    },
    MetricDef {
        name: "container_pids_limit",
        help: "Limit on processes and threads, where one is set.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.sample.as_ref()?.pids_limit)),
    },
    MetricDef {
        name: "container_info",
        help: "Always 1; labels name the container's full id, image id and allow-listed container labels (whatever labels.on says).",
        kind: Gauge,
        unit: None,
        labels: "container_id, image_id, container_label_*",
        view: View::Hidden,
        source: Source::Info,
    },
    MetricDef {
        name: "container_last_seen",
        help: "Unix time a scrape last found the container running (or paused).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| c.last_seen.map(Value::Float)),
    },
    MetricDef {
        name: "container_state",
        help: "Always 1; label state is the container's state (running, paused, restarting, exited, created, dead).",
        kind: Gauge,
        unit: None,
        labels: "state",
        view: View::Key("state"),
        source: Source::Enum("state", |c| Some(c.container.state.as_str()).filter(|s| !s.is_empty())),
    },
    MetricDef {
        name: "container_health_status",
        help: "Always 1; label status is the health check's verdict (starting, healthy, unhealthy).",
        kind: Gauge,
        unit: None,
        labels: "status",
        view: View::Key("health"),
        source: Source::Enum("status", |c| c.lifecycle.as_ref()?.health.as_deref()),
    },
    MetricDef {
        name: "container_health_state",
        help: "Health check verdict as a number: 1 healthy, 0 unhealthy or starting, -1 no health check.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| Some(Value::Signed(c.lifecycle.as_ref()?.health_state()))),
    },
    MetricDef {
        name: "container_restarts_total",
        help: "Times the engine restarted the container under its restart policy.",
        kind: Counter,
        unit: None,
        labels: "",
        view: View::Key("restarts"),
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.restart_count)),
    },
    MetricDef {
        name: "container_oom_killed",
        help: "1 if the container's last run ended in an out-of-memory kill, else 0.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Flag("oom_killed"),
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.oom_killed.map(u64::from))),
    },
    MetricDef {
        name: "container_exit_code",
        help: "Exit code of the container's last run; only for containers that are not running.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Key("exit_code"),
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
        view: View::Key("started_at"),
        source: Source::Container(|c| c.lifecycle.as_ref()?.started_at.map(Value::Float)),
    },
    MetricDef {
        name: "container_spec_cpu_quota",
        help: "CPU quota in microseconds per period, where one is set (--cpus, --cpu-quota).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.cpu_quota)),
    },
    MetricDef {
        name: "container_spec_cpu_period",
        help: "CPU quota period in microseconds (100000 unless set).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.cpu_period)),
    },
    MetricDef {
        name: "container_spec_cpu_shares",
        help: "Relative CPU weight (--cpu-shares; 1024 unless set).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.cpu_shares)),
    },
    MetricDef {
        name: "container_spec_memory_reservation_limit_bytes",
        help: "Soft memory limit (--memory-reservation); 0 unless set.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.memory_reservation)),
    },
    MetricDef {
        name: "container_spec_memory_limit_bytes",
        help: "Memory limit (--memory); 0 when unlimited.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Positive("memory_limit_bytes"),
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.memory_limit)),
    },
    MetricDef {
        name: "container_spec_memory_swap_limit_bytes",
        help: "Memory plus swap limit (--memory-swap, else twice --memory); 0 when unlimited.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Hidden,
        source: Source::Container(|c| int(c.lifecycle.as_ref()?.memory_swap_limit)),
    },
    MetricDef {
        name: "machine_cpu_cores",
        help: "CPUs of the machine (or VM) the engine runs on.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Key("cpus"),
        source: Source::Machine(|m| int(m.cpus)),
    },
    MetricDef {
        name: "machine_memory_bytes",
        help: "Memory of the machine (or VM) the engine runs on.",
        kind: Gauge,
        unit: Some(Bytes),
        labels: "",
        view: View::Key("memory_bytes"),
        source: Source::Machine(|m| int(m.memory_bytes)),
    },
    MetricDef {
        name: "docker_up",
        help: "1 if the engine answered the container list call of this scrape, else 0.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Flag("up"),
        source: Source::Scrape(|s| Value::Int(u64::from(s.engine_up))),
    },
    MetricDef {
        name: "container_scrape_error",
        help: "1 if this scrape left something out because the engine failed or timed out (the list call, or a container's stats or inspect call), else 0; a container removed meanwhile is no error.",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Hidden,
        source: Source::Scrape(|s| Value::Int(u64::from(s.failed))),
    },
    MetricDef {
        name: "docker_stats_scrape_duration_seconds",
        help: "Time this scrape spent asking the engine.",
        kind: Gauge,
        unit: Some(Seconds),
        labels: "",
        view: View::Key("round_seconds"),
        source: Source::Scrape(|s| Value::Float(s.duration_seconds)),
    },
    MetricDef {
        name: "docker_stats_containers_selected",
        help: "Containers that matched the selection in this scrape (stopped ones too where names or labels select them).",
        kind: Gauge,
        unit: None,
        labels: "",
        view: View::Key("selected"),
        source: Source::Scrape(|s| Value::Int(s.selected as u64)),
    },
    MetricDef {
        name: "docker_stats_scrape_errors_total",
        help: "Containers or list calls left out of a scrape since start, by kind (engine, decode, timeout, gone).",
        kind: Counter,
        unit: None,
        labels: "kind",
        view: View::Hidden,
        source: Source::ScrapeErrors,
    },
];

#[cfg(any(test, feature = "testing"))]
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
            (Source::Scrape(_) | Source::ScrapeErrors | Source::Machine(_), l) => l.to_string(),
            (Source::Info, l) => format!("name, id, image, {l}"),
            (_, "") => "name, id, image".to_string(),
            (_, l) => format!("name, id, image, {l}"),
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {labels} | {} |\n",
            def.name, def.help
        ));
    }
    out
}
