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
use crate::format::Format;
use crate::metrics::{MetricDef, MetricUnit, Source, Value, METRICS};
use crate::scrape::{ContainerMetrics, Snapshot};

type Labels<'a> = Vec<(&'a str, &'a str)>;

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

    /// Every container's own labels, cAdvisor style: `name`, `id` (its
    /// cgroup path) and `image`, plus, where configured for every series,
    /// the allow-listed container labels it has.
    fn container_labels<'a>(&'a self, c: &'a ContainerMetrics) -> Labels<'a> {
        let mut labels = vec![
            ("name", c.container.name.as_str()),
            ("id", c.cgroup.as_str()),
            ("image", c.image()),
        ];
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
    fn info_labels<'a>(&'a self, c: &'a ContainerMetrics) -> Labels<'a> {
        let mut labels = vec![
            ("name", c.container.name.as_str()),
            ("id", c.cgroup.as_str()),
            ("image", c.image()),
            ("container_id", c.container.id.as_str()),
            ("image_id", c.container.image_id.as_str()),
        ];
        labels.extend(self.allow_listed(c));
        labels
    }

    /// The rows of one metric whose series are per container.
    fn container_rows<'a>(
        &'a self,
        def: &MetricDef,
        bases: &[Labels<'a>],
    ) -> Vec<(Labels<'a>, Value)> {
        let snap = &*self.snapshot;
        let mut rows = Vec::new();
        for (c, base) in snap.containers.iter().zip(bases) {
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
                Source::Info => rows.push((self.info_labels(c), Value::Int(1))),
                Source::Machine(_) | Source::Exporter => {}
            }
        }
        rows
    }

    /// The exporter's own single values; `None` for the per-kind error counter.
    fn exporter_value(&self, def: &MetricDef) -> Option<Value> {
        let snap = &*self.snapshot;
        match def.name {
            "docker_up" => Some(Value::Int(u64::from(snap.engine_up))),
            "docker_stats_scrape_duration_seconds" => Some(Value::Float(snap.duration_seconds)),
            "docker_stats_containers_selected" => Some(Value::Int(snap.selected as u64)),
            _ => None,
        }
    }
}

impl Collector for SnapshotCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let snap = &*self.snapshot;
        // Built once: every container series starts with these.
        let bases: Vec<Labels<'_>> = snap
            .containers
            .iter()
            .map(|c| self.container_labels(c))
            .collect();
        for def in METRICS {
            let unit = def.unit.map(MetricUnit::unit);
            let single = match def.source {
                Source::Machine(value) => snap.machine.as_ref().and_then(value),
                Source::Exporter => self.exporter_value(def),
                _ => None,
            };
            if let Some(value) = single {
                // Unlabelled: encoded on the family itself.
                let family = encoder.encode_descriptor(
                    def.base_name(),
                    def.help,
                    unit.as_ref(),
                    def.kind,
                )?;
                encode_value(family, def.kind, value)?;
                continue;
            }
            let rows = match def.source {
                Source::Machine(_) => continue,
                // docker_stats_scrape_errors_total, one series per kind.
                Source::Exporter => snap
                    .errors
                    .iter()
                    .map(|(kind, n)| (vec![("kind", kind.as_str())], Value::Int(*n)))
                    .collect(),
                _ => self.container_rows(def, &bases),
            };
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
