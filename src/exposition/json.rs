//! The snapshot as JSON, for `GET /api/containers` and the live view at `/`:
//! the same rounds as `/metrics`, one object per container. Counters stay
//! counters (a reader computes rates from two answers); a value the engine
//! does not report is left out, never written as 0.

use serde::Serialize;

use crate::config::LabelExport;
use crate::scrape::{ContainerMetrics, Snapshot};

/// The Compose labels the view shows where a container has them.
const COMPOSE_PROJECT: &str = "com.docker.compose.project";
const COMPOSE_SERVICE: &str = "com.docker.compose.service";

/// One engine's snapshot in an answer.
#[derive(Debug, Clone, Copy)]
pub struct JsonPart<'a> {
    /// The engine's name when several are configured.
    pub engine: Option<&'a str>,
    /// Its address as configured.
    pub host: &'a str,
    /// What its round found.
    pub snapshot: &'a Snapshot,
}

#[derive(Serialize)]
struct Answer<'a> {
    version: &'static str,
    /// Set when an engine did not answer: names each one.
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<String>,
    engines: Vec<Engine<'a>>,
    containers: Vec<Container<'a>>,
}

#[derive(Serialize)]
struct Engine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    host: &'a str,
    up: bool,
    /// Unix time the round started.
    seen_at: f64,
    round_seconds: f64,
    selected: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpus: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_bytes: Option<u64>,
}

#[derive(Serialize)]
struct Container<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'a str>,
    id: &'a str,
    name: &'a str,
    image: &'a str,
    state: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    health: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compose_project: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compose_service: Option<&'a str>,
    /// The allow-listed container labels it has (as `/metrics` exports them).
    labels: std::collections::BTreeMap<&'a str, &'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_percent: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_limit_cores: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_percent_of_limit: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_seconds_total: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_working_set_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_usage_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    memory_limit_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_rx_bytes_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    network_tx_bytes_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fs_read_bytes_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    fs_write_bytes_total: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pids: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    restarts: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    oom_killed: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    started_at: Option<f64>,
}

impl<'a> Container<'a> {
    fn new(
        engine: Option<&'a str>,
        host_cpus: Option<u64>,
        c: &'a ContainerMetrics,
        labels: &'a LabelExport,
    ) -> Self {
        let s = c.sample.as_ref();
        let l = c.lifecycle.as_deref();
        let label = |key: &str| c.container.labels.get(key).map(String::as_str);
        let cpu_limit_cores = l
            .and_then(|l| Some((l.cpu_quota?, l.cpu_period?)))
            .filter(|(_, period)| *period > 0)
            .map(|(quota, period)| quota as f64 / period as f64);
        let cpus = s
            .and_then(|s| s.cpu)
            .and_then(|r| r.cpus)
            .map(u64::from)
            .or(host_cpus);
        let cpu_percent_of_limit = match (c.cpu_percent, cpus, cpu_limit_cores) {
            (Some(p), Some(n), Some(limit)) if limit > 0.0 => Some(p * n as f64 / limit),
            _ => None,
        };
        Self {
            engine,
            id: &c.container.id,
            name: &c.container.name,
            image: c.image(),
            state: &c.container.state,
            status: &c.container.status,
            health: l.and_then(|l| l.health.as_deref()),
            compose_project: label(COMPOSE_PROJECT),
            compose_service: label(COMPOSE_SERVICE),
            labels: labels
                .include
                .iter()
                .filter_map(|(key, _)| Some((key.as_str(), label(key)?)))
                .collect(),
            cpu_percent: c.cpu_percent,
            cpu_limit_cores,
            cpu_percent_of_limit,
            cpu_seconds_total: s.and_then(|s| s.cpu).map(|r| r.total_ns as f64 / 1e9),
            memory_working_set_bytes: s.and_then(|s| s.memory_working_set),
            memory_usage_bytes: s.and_then(|s| s.memory_usage),
            memory_limit_bytes: l.and_then(|l| l.memory_limit).filter(|m| *m > 0),
            network_rx_bytes_total: s.and_then(|s| s.network_rx_bytes()),
            network_tx_bytes_total: s.and_then(|s| s.network_tx_bytes()),
            fs_read_bytes_total: s.and_then(|s| s.fs_read_bytes),
            fs_write_bytes_total: s.and_then(|s| s.fs_write_bytes),
            pids: s.and_then(|s| s.pids),
            restarts: l.and_then(|l| l.restart_count),
            oom_killed: l.and_then(|l| l.oom_killed),
            started_at: l.and_then(|l| l.started_at),
        }
    }
}

/// Whether every engine of `parts` answered, and the answer's JSON text.
/// When one did not, the text's `error` names it (`engine NAME (HOST) not
/// answering`), and the containers of the others are still there.
pub fn encode(parts: &[JsonPart<'_>], labels: &LabelExport) -> (bool, String) {
    let down: Vec<String> = parts
        .iter()
        .filter(|p| !p.snapshot.engine_up)
        .map(|p| match p.engine {
            Some(name) => format!("engine {name} ({}) not answering", p.host),
            None => format!("engine {} not answering", p.host),
        })
        .collect();
    let answer = Answer {
        version: env!("CARGO_PKG_VERSION"),
        error: (!down.is_empty()).then(|| down.join("; ")),
        engines: parts
            .iter()
            .map(|p| Engine {
                name: p.engine,
                host: p.host,
                up: p.snapshot.engine_up,
                seen_at: p.snapshot.seen_at,
                round_seconds: p.snapshot.duration_seconds,
                selected: p.snapshot.selected,
                cpus: p.snapshot.machine.as_ref().and_then(|m| m.cpus),
                memory_bytes: p.snapshot.machine.as_ref().and_then(|m| m.memory_bytes),
            })
            .collect(),
        containers: parts
            .iter()
            .flat_map(|p| {
                let cpus = p.snapshot.machine.as_ref().and_then(|m| m.cpus);
                p.snapshot
                    .containers
                    .iter()
                    .map(move |c| Container::new(p.engine, cpus, c, labels))
            })
            .collect(),
    };
    // Serializing plain structs of strings and numbers cannot fail; NaN or
    // infinite floats become null.
    let text = serde_json::to_string(&answer)
        .unwrap_or_else(|e| format!("{{\"error\":\"encoding failed: {e}\"}}"));
    (down.is_empty(), text)
}
