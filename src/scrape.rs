//! One scrape round: list the selected containers, ask for all their stats
//! (and, where not cached, inspect answers) concurrently, and freeze the
//! answers into an immutable [`Snapshot`].

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;

use crate::deadline::{Deadline, Elapsed};
use crate::engine::{ContainerRef, Engine, Failure, Flavor};
use crate::lifecycle::{InspectCache, Lifecycle};
use crate::sample::{cpu_percent, cpu_percent_wall, CpuReading, Sample};
use crate::selector::Selection;

/// What a stats call without `one-shot` may take: two engine ticks and room.
const TWO_TICKS: Duration = Duration::from_millis(2500);

/// One container's values in a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerMetrics {
    /// The container as listed.
    pub container: ContainerRef,
    /// Its stats; `None` for a container that is not running.
    pub sample: Option<Sample>,
    /// Percent of the whole host's CPU, where a valid window exists.
    pub cpu_percent: Option<f64>,
    /// Restart count, OOM kill, health, limits; `None` if inspect failed.
    pub lifecycle: Option<Arc<Lifecycle>>,
}

/// Everything one `/metrics` answer reports, fetched before encoding starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Whether the engine answered the list call.
    pub engine_up: bool,
    /// Wall time of the round.
    pub duration_seconds: f64,
    /// Containers that matched the selection.
    pub selected: usize,
    /// Containers exported, sorted by name.
    pub containers: Vec<ContainerMetrics>,
    /// Failures since the process started, by kind.
    pub errors: Vec<(Failure, u64)>,
}

/// The last two distinct CPU readings of a container. Two of them, so that
/// scrapes landing in the same engine tick (HA Prometheus pairs) still get the
/// window before it instead of a zero-length one.
#[derive(Debug, Clone, Copy)]
struct CpuHistory {
    last: CpuReading,
    before: Option<CpuReading>,
}

/// Runs scrape rounds against one engine and keeps what must survive between
/// them: each container's previous CPU reading, cached inspect answers and
/// the error counters. Per-container state is dropped once a full round no
/// longer lists the container.
#[derive(Debug)]
pub struct Scraper {
    engine: Engine,
    max_concurrency: usize,
    history: Mutex<HashMap<String, CpuHistory>>,
    inspect: InspectCache,
    errors: [AtomicU64; Failure::ALL.len()],
}

impl Scraper {
    /// A scraper that keeps at most `max_concurrency` containers' calls in
    /// flight and reuses inspect answers for up to `inspect_max_age`.
    pub fn new(engine: Engine, max_concurrency: usize, inspect_max_age: Duration) -> Self {
        Self {
            engine,
            max_concurrency: max_concurrency.max(1),
            history: Mutex::new(HashMap::new()),
            inspect: InspectCache::new(inspect_max_age),
            errors: Default::default(),
        }
    }

    /// The engine this scraper reads.
    pub fn engine(&self) -> &Engine {
        &self.engine
    }

    /// Containers whose state is held (CPU readings, inspect answers).
    pub fn tracked_containers(&self) -> usize {
        self.lock_history().len().max(self.inspect.len())
    }

    fn lock_history(&self) -> std::sync::MutexGuard<'_, HashMap<String, CpuHistory>> {
        self.history.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn count(&self, failure: Failure) {
        let i = Failure::ALL.iter().position(|f| *f == failure).unwrap_or(0);
        self.errors[i].fetch_add(1, Ordering::Relaxed);
    }

    /// One round, finished by `deadline`. An explicit selection (names or
    /// labels) also lists stopped containers, for their lifecycle metrics.
    /// State of containers no longer listed is dropped when `evict` is set (a
    /// round over the configured selection, not a narrowed ad-hoc one).
    pub async fn collect(
        &self,
        selection: &Selection,
        deadline: &Deadline,
        evict: bool,
    ) -> Snapshot {
        let started = Instant::now();
        let mut snapshot = Snapshot::default();

        let all = !selection.is_all();
        let (listed, flavor) = futures::join!(
            deadline.run(self.engine.list(selection, all)),
            deadline.run(self.engine.flavor())
        );
        let flavor = flavor.unwrap_or(Flavor::Docker);
        let listed = match listed {
            Ok(Ok(list)) => Some(list),
            Ok(Err(e)) => {
                let e = crate::socket_access::explain(self.engine.host(), e);
                tracing::warn!("engine unavailable: {e:#}");
                self.count(Failure::Engine);
                None
            }
            Err(Elapsed) => {
                tracing::warn!("listing containers at {} timed out", self.engine.host());
                self.count(Failure::Timeout);
                None
            }
        };

        if let Some(list) = listed {
            snapshot.engine_up = true;
            snapshot.selected = list.len();
            let known: HashSet<String> = self.lock_history().keys().cloned().collect();
            // Without one-shot the engine waits two collection ticks (about
            // 2 s on Docker up to 24). Short of that, ask new containers with
            // one-shot too: no CPU percent on their first scrape, but a
            // reading for the next one instead of a timeout every time.
            let hurry = deadline.remaining() < TWO_TICKS;
            let listed_ids: HashSet<String> = list.iter().map(|c| c.id.clone()).collect();

            let mut rounds = futures::stream::iter(list)
                .map(|c| {
                    // A container seen before can use the faster one-shot call:
                    // its previous reading supplies the CPU window.
                    let one_shot = hurry || known.contains(&c.id);
                    async move {
                        let stats = async {
                            if c.has_stats() {
                                Some(deadline.run(self.engine.stats(&c.id, one_shot)).await)
                            } else {
                                None
                            }
                        };
                        let (stats, lifecycle) =
                            futures::join!(stats, self.lifecycle(&c, deadline));
                        (c, stats, lifecycle)
                    }
                })
                .buffer_unordered(self.max_concurrency);

            while let Some((container, stats, lifecycle)) = rounds.next().await {
                let (sample, cpu_percent) = match stats {
                    None => (None, None),
                    Some(answer) => match self.sample(&container, answer) {
                        Some(mut sample) => {
                            if flavor == Flavor::Podman {
                                drop_podman_zeroes(&mut sample);
                            }
                            let pct = self.cpu_percent(&container.id, &sample, flavor);
                            (Some(sample), pct)
                        }
                        None => continue,
                    },
                };
                snapshot.containers.push(ContainerMetrics {
                    container,
                    sample,
                    cpu_percent,
                    lifecycle,
                });
            }

            if evict {
                self.lock_history().retain(|id, _| listed_ids.contains(id));
                self.inspect.retain(|id| listed_ids.contains(id));
            }
        }

        snapshot
            .containers
            .sort_by(|a, b| a.container.name.cmp(&b.container.name));
        snapshot.errors = Failure::ALL
            .iter()
            .zip(&self.errors)
            .map(|(f, n)| (*f, n.load(Ordering::Relaxed)))
            .collect();
        snapshot.duration_seconds = started.elapsed().as_secs_f64();
        snapshot
    }

    /// The sample from a stats answer, or `None` (counted) when the container
    /// is to be left out of this scrape.
    fn sample(
        &self,
        c: &ContainerRef,
        answer: Result<
            Result<Option<bollard::models::ContainerStatsResponse>, bollard::errors::Error>,
            Elapsed,
        >,
    ) -> Option<Sample> {
        let failure = match answer {
            Ok(Ok(Some(stats))) => match Sample::from_stats(&stats) {
                Some(sample) => return Some(sample),
                None => {
                    tracing::debug!("{}: stopped before its stats were read", c.name);
                    Failure::Gone
                }
            },
            Ok(Ok(None)) => {
                tracing::debug!("{}: removed during the stats call", c.name);
                Failure::Gone
            }
            Ok(Err(e)) => {
                let kind = Failure::of(&e);
                if kind == Failure::Gone {
                    tracing::debug!("{}: gone: {e}", c.name);
                } else {
                    tracing::warn!("{}: stats failed: {e}", c.name);
                }
                kind
            }
            Err(Elapsed) => {
                tracing::warn!("{}: stats missed the scrape deadline", c.name);
                Failure::Timeout
            }
        };
        self.count(failure);
        None
    }

    /// The cached inspect answer, or a fresh one. A failure leaves the
    /// lifecycle series out; the container's stats are still exported.
    async fn lifecycle(&self, c: &ContainerRef, deadline: &Deadline) -> Option<Arc<Lifecycle>> {
        let key = c.lifecycle_key();
        if let Some(hit) = self.inspect.get(&c.id, &key) {
            return Some(hit);
        }
        match deadline.run(self.engine.inspect(&c.id)).await {
            Ok(Ok(answer)) => {
                let value = Arc::new(Lifecycle::from_inspect(&answer));
                self.inspect.put(&c.id, &key, value.clone());
                Some(value)
            }
            Ok(Err(e)) => {
                let kind = Failure::of(&e);
                if kind != Failure::Gone {
                    tracing::warn!("{}: inspect failed: {e}", c.name);
                    self.count(kind);
                }
                None
            }
            Err(Elapsed) => {
                // A running container's stats call counts the timeout already.
                if !c.has_stats() {
                    self.count(Failure::Timeout);
                }
                None
            }
        }
    }

    /// The engine's own window where it filled `precpu_stats`; else the
    /// window since this container's previous scrape.
    fn cpu_percent(&self, id: &str, sample: &Sample, flavor: Flavor) -> Option<f64> {
        let now = sample.cpu?;
        let cpu_percent = match flavor {
            Flavor::Docker => cpu_percent,
            Flavor::Podman => cpu_percent_wall,
        };
        let from_engine = sample.precpu.and_then(|before| cpu_percent(now, before));
        let mut history = self.lock_history();
        let from_history = match history.get_mut(id) {
            Some(h) if now.system_ns > h.last.system_ns => {
                let p = cpu_percent(now, h.last);
                *h = CpuHistory {
                    last: now,
                    before: Some(h.last),
                };
                p
            }
            // Same engine tick as the last scrape: reuse the window before it.
            Some(h) if now.system_ns == h.last.system_ns => {
                h.before.and_then(|b| cpu_percent(now, b))
            }
            _ => {
                history.insert(
                    id.to_string(),
                    CpuHistory {
                        last: now,
                        before: None,
                    },
                );
                None
            }
        };
        from_engine.or(from_history)
    }
}

/// Podman 4 reports throttling and packet, error and drop counters as
/// constant zeros; leave them out rather than export wrong values.
fn drop_podman_zeroes(s: &mut Sample) {
    s.cfs_periods = None;
    s.cfs_throttled_periods = None;
    s.cfs_throttled_ns = None;
    for i in &mut s.interfaces {
        i.rx_packets = None;
        i.tx_packets = None;
        i.rx_errors = None;
        i.tx_errors = None;
        i.rx_dropped = None;
        i.tx_dropped = None;
    }
}
