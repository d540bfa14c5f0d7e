//! The snapshot as JSON, for `GET /api/containers` and the live view at `/`:
//! the same rounds as `/metrics`, one object per container, its values taken
//! by the metric table's `view` of each row. Counters stay
//! counters (a reader computes rates from two answers); a value the engine
//! does not report is left out, never written as 0.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::config::LabelExport;
use crate::exposition::metrics::{ViewValue, METRICS};
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

/// The metric table's entries on an engine or a container, by key.
type Values<'a> = BTreeMap<&'static str, ViewValue<'a>>;

#[derive(Serialize)]
struct Engine<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    host: &'a str,
    /// Unix time the round started.
    seen_at: f64,
    /// Why it did not answer (as `/readyz` and the log say it).
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
    /// `up`, `round_seconds`, `selected`, `cpus`, `memory_bytes`: the rows
    /// of the metric table with a view.
    #[serde(flatten)]
    values: Values<'static>,
}

impl<'a> Engine<'a> {
    fn new(p: &JsonPart<'a>) -> Self {
        Self {
            name: p.engine,
            host: p.host,
            seen_at: p.snapshot.seen_at,
            error: p.snapshot.error.as_deref(),
            values: METRICS
                .iter()
                .filter_map(|def| def.engine_view(p.snapshot))
                .collect(),
        }
    }
}

#[derive(Serialize)]
struct Container<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    engine: Option<&'a str>,
    id: &'a str,
    name: &'a str,
    image: &'a str,
    status: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    compose_project: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    compose_service: Option<&'a str>,
    /// The allow-listed container labels it has (as `/metrics` exports them).
    labels: BTreeMap<&'a str, &'a str>,
    /// The CPU quota in cores, from `container_spec_cpu_quota` and `_period`.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_limit_cores: Option<f64>,
    /// `container_cpu_usage_percent` against that quota.
    #[serde(skip_serializing_if = "Option::is_none")]
    cpu_percent_of_limit: Option<f64>,
    /// Unix time a container that is not running ended its last run (no
    /// metric has it: a stopped container's own time, for the view).
    #[serde(skip_serializing_if = "Option::is_none")]
    finished_at: Option<f64>,
    /// Every row of the metric table with a view (`state`, `cpu_percent`,
    /// `memory_working_set_bytes`, ...); a value the engine does not report
    /// is left out.
    #[serde(flatten)]
    values: Values<'a>,
}

impl<'a> Container<'a> {
    fn new(
        engine: Option<&'a str>,
        host_cpus: Option<u64>,
        c: &'a ContainerMetrics,
        labels: &'a LabelExport,
    ) -> Self {
        let l = c.lifecycle.as_deref();
        let label = |key: &str| c.container.labels.get(key).map(String::as_str);
        let cpu_limit_cores = l
            .and_then(|l| Some((l.cpu_quota?, l.cpu_period?)))
            .filter(|(_, period)| *period > 0)
            .map(|(quota, period)| quota as f64 / period as f64);
        let cpus = c
            .sample
            .as_ref()
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
            status: &c.container.status,
            compose_project: label(COMPOSE_PROJECT),
            compose_service: label(COMPOSE_SERVICE),
            labels: labels
                .include
                .iter()
                .filter_map(|(key, _)| Some((key.as_str(), label(key)?)))
                .collect(),
            cpu_limit_cores,
            cpu_percent_of_limit,
            finished_at: l
                .and_then(|l| l.finished_at)
                .filter(|_| !c.container.has_stats()),
            values: METRICS
                .iter()
                .filter_map(|def| def.container_view(c))
                .collect(),
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
        .map(|p| {
            let who = match p.engine {
                Some(name) => format!("engine {name} ({})", p.host),
                None => format!("engine {}", p.host),
            };
            match &p.snapshot.error {
                Some(why) => format!("{who} not answering: {why}"),
                None => format!("{who} not answering"),
            }
        })
        .collect();
    let answer = Answer {
        version: env!("CARGO_PKG_VERSION"),
        error: (!down.is_empty()).then(|| down.join("; ")),
        engines: parts.iter().map(Engine::new).collect(),
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
