//! The collector that encodes one [`Snapshot`] by walking the metric table.
//!
//! A fresh registry is built per request around an immutable snapshot, so no
//! series outlives the container it describes.

use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric, MetricEncoder};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;

use crate::config::{LabelExport, LabelsOn};
use crate::exposition::answer::Chunks;
use crate::exposition::format::Format;
use crate::exposition::metrics::{MetricDef, MetricUnit, Source, Value, METRICS};
use crate::scrape::{ContainerMetrics, Snapshot};

type Labels<'a> = Vec<(&'a str, &'a str)>;

/// One engine's snapshot in an answer.
#[derive(Debug, Clone)]
pub struct Part {
    /// The engine's name, for the `engine` label, when several are read.
    pub engine: Option<String>,
    /// What its round found.
    pub snapshot: Arc<Snapshot>,
}

/// Encodes the snapshots of one answer; registered into a per-request
/// registry.
#[derive(Debug)]
pub struct SnapshotCollector {
    parts: Vec<Part>,
    labels: LabelExport,
}

impl SnapshotCollector {
    /// A collector for one answer.
    pub fn new(parts: Vec<Part>, labels: LabelExport) -> Self {
        Self { parts, labels }
    }

    /// Every container's own labels, cAdvisor style: `name`, `id` (its
    /// cgroup path) and `image`, the engine's name where several are read,
    /// plus, where configured for every series, the allow-listed container
    /// labels it has.
    fn container_labels<'a>(
        &'a self,
        engine: Option<&'a str>,
        c: &'a ContainerMetrics,
    ) -> Labels<'a> {
        let mut labels = vec![
            ("name", c.container.name.as_str()),
            ("id", c.cgroup.as_str()),
            ("image", c.image()),
        ];
        labels.extend(engine.map(|e| ("engine", e)));
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

    /// `container_info`: the container's labels, its full id, image id and
    /// every allow-listed label, whatever `labels.on` says.
    fn info_labels<'a>(&'a self, engine: Option<&'a str>, c: &'a ContainerMetrics) -> Labels<'a> {
        let mut labels = vec![
            ("name", c.container.name.as_str()),
            ("id", c.cgroup.as_str()),
            ("image", c.image()),
        ];
        labels.extend(engine.map(|e| ("engine", e)));
        labels.push(("container_id", c.container.id.as_str()));
        labels.push(("image_id", c.container.image_id.as_str()));
        labels.extend(self.allow_listed(c));
        labels
    }

    /// Every container of every part, with its engine and its labels.
    fn containers(&self) -> Vec<(Option<&str>, &ContainerMetrics, Labels<'_>)> {
        self.parts
            .iter()
            .flat_map(|p| {
                let engine = p.engine.as_deref();
                p.snapshot
                    .containers
                    .iter()
                    .map(move |c| (engine, c, self.container_labels(engine, c)))
            })
            .collect()
    }

    /// The rows of one metric whose series are per container.
    fn container_rows<'a>(
        &'a self,
        def: &MetricDef,
        containers: &[(Option<&'a str>, &'a ContainerMetrics, Labels<'a>)],
    ) -> Vec<(Labels<'a>, Value)> {
        let mut rows = Vec::new();
        for (engine, c, base) in containers {
            let (engine, c) = (*engine, *c);
            let with = |extra: &[(&'a str, &'a str)], v: Value| {
                let mut labels = Vec::with_capacity(base.len() + extra.len());
                labels.extend_from_slice(base);
                labels.extend_from_slice(extra);
                (labels, v)
            };
            match def.source {
                Source::Container(value) => rows.extend(value(c).map(|v| with(&[], v))),
                Source::Fixed(extra, value) => rows.extend(value(c).map(|v| with(extra, v))),
                Source::Interface(value) => {
                    for i in c.sample.iter().flat_map(|s| &s.interfaces) {
                        if let Some(v) = value(i) {
                            rows.push(with(&[("interface", i.name.as_str())], Value::Int(v)));
                        }
                    }
                }
                Source::Enum(label, value) => {
                    if let Some(v) = value(c) {
                        rows.push(with(&[(label, v)], Value::Int(1)));
                    }
                }
                Source::MemoryFailures => {
                    let Some(s) = &c.sample else { continue };
                    for (scope, faults) in [
                        ("container", s.page_faults_container),
                        ("hierarchy", s.page_faults_hierarchy),
                    ] {
                        let Some([minor, major]) = faults else {
                            continue;
                        };
                        for (kind, n) in [("pgfault", minor), ("pgmajfault", major)] {
                            rows.push(with(
                                &[("failure_type", kind), ("scope", scope)],
                                Value::Int(n),
                            ));
                        }
                    }
                }
                Source::Info => rows.push((self.info_labels(engine, c), Value::Int(1))),
                Source::Machine(_) | Source::Scrape(_) | Source::ScrapeErrors => {}
            }
        }
        rows
    }

    /// One row per engine of a metric about the engine or the exporter
    /// itself: per kind for the error counter.
    fn engine_rows(&self, def: &MetricDef) -> Vec<(Labels<'_>, Value)> {
        let mut rows = Vec::new();
        for p in &self.parts {
            let snap = &*p.snapshot;
            let engine: Labels<'_> = p.engine.iter().map(|e| ("engine", e.as_str())).collect();
            let single = match def.source {
                Source::Machine(value) => snap.machine.as_ref().and_then(value),
                Source::Scrape(value) => Some(value(snap)),
                Source::ScrapeErrors => {
                    for (kind, n) in &snap.errors {
                        let mut labels = engine.clone();
                        labels.push(("kind", kind.as_str()));
                        rows.push((labels, Value::Int(*n)));
                    }
                    None
                }
                _ => None,
            };
            rows.extend(single.map(|v| (engine, v)));
        }
        rows
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        // Built once: every container series starts with these labels.
        let containers = self.containers();
        for def in METRICS {
            let rows = match def.source {
                Source::Machine(_) | Source::Scrape(_) | Source::ScrapeErrors => {
                    self.engine_rows(def)
                }
                _ => self.container_rows(def, &containers),
            };
            if rows.is_empty() {
                continue;
            }
            let unit = def.unit.map(MetricUnit::unit);
            let mut family =
                encoder.encode_descriptor(def.base_name(), def.help, unit.as_ref(), def.kind)?;
            if let [(labels, v)] = rows.as_slice() {
                if labels.is_empty() {
                    // One engine's unlabelled value: encoded on the family itself.
                    encode_value(family, def.kind, *v)?;
                    continue;
                }
            }
            for (labels, v) in &rows {
                encode_value(family.encode_family(labels)?, def.kind, *v)?;
            }
        }
        Ok(())
    }
}

fn encode_value(
    encoder: MetricEncoder<'_>,
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

#[cfg(any(test, feature = "testing"))]
/// Encodes one engine's snapshot in the given format.
pub fn render(
    snapshot: impl Into<Arc<Snapshot>>,
    labels: &LabelExport,
    format: Format,
) -> Result<String, std::fmt::Error> {
    let parts = vec![Part {
        engine: None,
        snapshot: snapshot.into(),
    }];
    Ok(render_parts(parts, labels, format)?.into_string())
}

/// Encodes the snapshots of several engines as one answer, in pieces (see
/// [`Chunks`]).
pub fn render_parts(
    parts: Vec<Part>,
    labels: &LabelExport,
    format: Format,
) -> Result<Chunks, std::fmt::Error> {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(SnapshotCollector::new(parts, labels.clone())));
    let mut out = Chunks::new();
    match format {
        Format::Prometheus => {
            prometheus_client::encoding::prometheus_text::encode(&mut out, &registry)?
        }
        Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &registry)?,
    }
    Ok(out)
}
