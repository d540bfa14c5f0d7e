//! One scrape round: list the selected containers, ask for all their stats
//! (and, where not cached, inspect answers) concurrently, and freeze the
//! answers into an immutable [`Snapshot`].

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::FutureExt;
use tokio::time::Instant;

use crate::config::selector::Selection;
use crate::engine::limited::Limited;
use crate::engine::quirks::{CgroupLayout, CpuClock, Quirks};
use crate::engine::{
    ContainerRef, EngineApi, EngineInfo, EngineVersion, Failure, ListQuery, Listed,
};
use crate::scrape::cgroup::cgroup_id;
use crate::scrape::cpu::percent_for;
use crate::scrape::deadline::{Deadline, Elapsed};
use crate::scrape::delegation::Delegation;
use crate::scrape::fs_usage::{FsUsage, Sizes};
use crate::scrape::in_flight::InFlight;
use crate::scrape::lifecycle::Lifecycle;
use crate::scrape::sample::Sample;
use crate::scrape::state::{RoundEnd, StateTable};
use crate::scrape::uptime::Listing;

/// What a stats call without `one-shot` may take on an engine that waits for
/// its collection tick: two ticks and room.
const TWO_TICKS: Duration = Duration::from_millis(2500);
/// How long the engine's `/info` answer (CPUs, memory, cgroup driver) is
/// reused: it changes when the machine does.
pub const INFO_MAX_AGE: Duration = Duration::from_secs(300);

/// One container's values in a snapshot.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerMetrics {
    /// The container as listed.
    pub container: ContainerRef,
    /// Its stats; `None` for a container that is not running, or whose stats
    /// call failed this time.
    pub sample: Option<Sample>,
    /// Percent of the whole host's CPU, where a valid window exists.
    pub cpu_percent: Option<f64>,
    /// Restart count, OOM kill, health, limits; `None` if inspect failed.
    pub lifecycle: Option<Arc<Lifecycle>>,
    /// Its cgroup path, as cAdvisor's `id` label has it.
    pub cgroup: String,
    /// Bytes in its writable layer, where known.
    pub fs_usage: Option<u64>,
    /// Unix time this round found it running; `None` when it is not.
    pub last_seen: Option<f64>,
}

impl ContainerMetrics {
    /// The image as the container was created with: the inspect answer's,
    /// else the list's (which shows an image id once the tag has moved).
    pub fn image(&self) -> &str {
        self.lifecycle
            .as_ref()
            .and_then(|l| l.image.as_deref())
            .unwrap_or(&self.container.image)
    }
}

/// Everything one `/metrics` answer reports, fetched before encoding starts.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Whether the engine answered the list call.
    pub engine_up: bool,
    /// Why it did not: the engine's or the client's words, with the fix
    /// first where one is known (the socket's group, for one).
    pub error: Option<String>,
    /// Whether this round left something out for a reason other than a
    /// container going away: the list call, or a container's stats or
    /// inspect call, failed or timed out (cAdvisor's `container_scrape_error`).
    pub failed: bool,
    /// Wall time of the round.
    pub duration_seconds: f64,
    /// Containers that matched the selection.
    pub selected: usize,
    /// Containers exported, sorted by name.
    pub containers: Vec<ContainerMetrics>,
    /// Failures since the process started, by kind.
    pub errors: Vec<(Failure, u64)>,
    /// Unix time the round started: when the listed containers were seen.
    pub seen_at: f64,
    /// The machine as the engine describes it, where known.
    pub machine: Option<EngineInfo>,
}

/// How rounds are run.
#[derive(Debug, Clone)]
pub struct ScrapeOptions {
    /// Engine calls in flight at once, for all rounds together.
    pub max_concurrency: usize,
    /// Longest reuse of an inspect answer.
    pub inspect_max_age: Duration,
    /// The shortest window a CPU percent covers. On engines that answer
    /// stats directly (Docker 25+, Podman), a container seen for the first
    /// time is also read twice this far apart, so that its first scrape has
    /// a CPU percent.
    pub cpu_percent_min_window: Duration,
    /// Reuse of writable-layer sizes; `None` leaves them out.
    pub fs_usage_max_age: Option<Duration>,
}

impl Default for ScrapeOptions {
    fn default() -> Self {
        Self {
            max_concurrency: crate::config::DEFAULT_MAX_CONCURRENCY,
            inspect_max_age: crate::config::DEFAULT_INSPECT_MAX_AGE,
            cpu_percent_min_window: crate::config::DEFAULT_CPU_PERCENT_MIN_WINDOW,
            fs_usage_max_age: Some(crate::config::DEFAULT_FS_USAGE_MAX_AGE),
        }
    }
}

/// What became of one container in a round.
#[derive(Debug)]
struct Outcome {
    metrics: ContainerMetrics,
    /// The one failure the container is counted for, if any.
    failure: Option<Failure>,
}

/// Runs scrape rounds against one engine and keeps what must survive between
/// them: per-container state and the error counters.
#[derive(Debug)]
pub struct Scraper {
    engine: Arc<dyn EngineApi>,
    state: StateTable,
    version: Mutex<Option<EngineVersion>>,
    version_call: InFlight<EngineVersion>,
    info: Mutex<Option<(Instant, EngineInfo)>>,
    info_call: InFlight<EngineInfo>,
    delegation: Delegation,
    fs_usage: FsUsage,
    cpu_percent_min_window: Duration,
    errors: [AtomicU64; Failure::ALL.len()],
}

impl Scraper {
    /// A scraper of `engine`.
    pub fn new(engine: Arc<dyn EngineApi>, options: &ScrapeOptions) -> Self {
        Self {
            engine: Arc::new(Limited::new(engine, options.max_concurrency)),
            state: StateTable::new(options.inspect_max_age, options.cpu_percent_min_window),
            version: Mutex::new(None),
            version_call: InFlight::default(),
            info: Mutex::new(None),
            info_call: InFlight::default(),
            delegation: Delegation::default(),
            fs_usage: FsUsage::new(options.fs_usage_max_age),
            cpu_percent_min_window: options.cpu_percent_min_window,
            errors: Default::default(),
        }
    }

    /// The engine this scraper reads, behind the shared call limit.
    pub fn engine(&self) -> &dyn EngineApi {
        self.engine.as_ref()
    }

    #[cfg(any(test, feature = "testing"))]
    /// Containers whose state is held (CPU readings, inspect answers).
    pub fn tracked_containers(&self) -> usize {
        self.state.len()
    }

    fn count(&self, failure: Failure) {
        let i = Failure::ALL.iter().position(|f| *f == failure).unwrap_or(0);
        self.errors[i].fetch_add(1, Ordering::Relaxed);
    }

    /// The engine's version, asked once; Docker before 25 until it answers.
    async fn version(&self, deadline: &Deadline) -> EngineVersion {
        if let Some(v) = self.lock_version().clone() {
            return v;
        }
        let engine = Arc::clone(&self.engine);
        let answer = self
            .version_call
            .ask(deadline, || async move { engine.version().await }.boxed())
            .await;
        match answer {
            Ok(Ok(v)) => {
                tracing::info!(engine = %self.engine.host(), version = %v.version, flavor = ?v.flavor, "engine identified");
                *self.lock_version() = Some(v.clone());
                v
            }
            Ok(Err(e)) => {
                tracing::debug!("engine version unknown: {e}");
                EngineVersion::default()
            }
            Err(Elapsed) => EngineVersion::default(),
        }
    }

    fn lock_version(&self) -> std::sync::MutexGuard<'_, Option<EngineVersion>> {
        self.version.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The engine's `/info`, asked again once it is [`INFO_MAX_AGE`] old; the
    /// previous answer while a new one fails.
    async fn machine_info(&self, deadline: &Deadline) -> Option<EngineInfo> {
        let cached = self.lock_info().clone();
        if let Some((at, info)) = &cached {
            if at.elapsed() < INFO_MAX_AGE {
                return Some(info.clone());
            }
        }
        let engine = Arc::clone(&self.engine);
        let answer = self
            .info_call
            .ask(deadline, || async move { engine.info().await }.boxed())
            .await;
        match answer {
            Ok(Ok(info)) => {
                self.delegation.check(self.engine.host(), &info);
                *self.lock_info() = Some((Instant::now(), info.clone()));
                Some(info)
            }
            Ok(Err(e)) => {
                tracing::debug!("engine info unavailable: {e}");
                cached.map(|(_, info)| info)
            }
            Err(Elapsed) => cached.map(|(_, info)| info),
        }
    }

    fn lock_info(&self) -> std::sync::MutexGuard<'_, Option<(Instant, EngineInfo)>> {
        self.info.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The containers of a list answer that `selection` chooses, those that
    /// missed the last deadline first.
    fn choose(&self, list: Vec<Listed>, selection: &Selection) -> Vec<ContainerRef> {
        let mut chosen: Vec<ContainerRef> = list
            .into_iter()
            .filter(|l| selection.matches(&l.names, &l.container.labels))
            .map(|l| l.container)
            .collect();
        chosen.sort_by_key(|c| !self.state.missed_last_round(&c.id));
        chosen
    }

    /// Every chosen container's calls at once, beside the writable-layer
    /// sizes of the running ones. `listed` is when the list call was asked
    /// and answered.
    async fn fan_out(
        &self,
        chosen: Vec<ContainerRef>,
        version: &EngineVersion,
        listed: (Instant, Instant),
        deadline: &Deadline,
    ) -> (Vec<Outcome>, Option<Sizes>) {
        let running: Vec<String> = chosen
            .iter()
            .filter(|c| c.has_stats())
            .map(|c| c.id.clone())
            .collect();
        let running: Vec<&str> = running.iter().map(String::as_str).collect();
        let calls = futures::future::join_all(chosen.into_iter().map(|c| {
            let listing = Listing::new(&c.status, listed.0, listed.1);
            self.container(c, listing, version, deadline)
        }));
        futures::join!(calls, self.fs_usage.sizes(&self.engine, &running, deadline))
    }

    /// One round, finished by `deadline`. An explicit selection (names or
    /// labels) also lists stopped containers, for their lifecycle metrics.
    /// `full` marks a round over the configured selection, after which the
    /// state of containers it did not list is dropped.
    pub async fn collect(
        &self,
        selection: &Selection,
        deadline: &Deadline,
        full: bool,
    ) -> Snapshot {
        let started = Instant::now();
        let mut snapshot = Snapshot {
            seen_at: unix_now(),
            ..Default::default()
        };
        let query = ListQuery {
            all: selection.lists_stopped(),
            label_filters: selection.engine_label_filter().unwrap_or_default(),
            size: false,
        };
        let asked = Instant::now();
        let (listed, version, machine) = futures::join!(
            deadline.run(self.engine.list(&query)),
            self.version(deadline),
            self.machine_info(deadline)
        );
        let answered = Instant::now();
        match listed {
            Ok(Ok(list)) => {
                let chosen = self.choose(list, selection);
                snapshot.engine_up = true;
                snapshot.selected = chosen.len();
                let (outcomes, sizes) = self
                    .fan_out(chosen, &version, (asked, answered), deadline)
                    .await;
                (snapshot.containers, snapshot.failed) = self.settle(outcomes, full);
                describe(
                    &mut snapshot.containers,
                    &version.quirks().cgroups,
                    machine.as_ref(),
                    sizes,
                    snapshot.seen_at,
                );
            }
            Ok(Err(e)) => {
                tracing::warn!("engine unavailable: {e}");
                self.count(e.kind);
                snapshot.failed = true;
                snapshot.error = Some(e.to_string());
            }
            Err(Elapsed) => {
                let why = format!(
                    "listing containers at {} timed out after {:.1} s",
                    self.engine.host(),
                    started.elapsed().as_secs_f64()
                );
                tracing::warn!("{why}");
                self.count(Failure::Timeout);
                snapshot.failed = true;
                snapshot.error = Some(why);
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
        snapshot.machine = machine;
        snapshot.duration_seconds = started.elapsed().as_secs_f64();
        snapshot
    }

    /// Counts each container's failure once, leaves out the ones that are
    /// gone, logs the round's timeouts on one line and updates the state.
    /// Also whether any container failed for a reason other than going away.
    fn settle(&self, outcomes: Vec<Outcome>, full: bool) -> (Vec<ContainerMetrics>, bool) {
        let mut failed = false;
        let mut listed = Vec::with_capacity(outcomes.len());
        let (mut missed_ids, mut missed_names) = (Vec::new(), Vec::new());
        let mut kept = Vec::with_capacity(outcomes.len());
        for o in outcomes {
            let c = &o.metrics.container;
            listed.push(c.id.clone());
            if let Some(failure) = o.failure {
                self.count(failure);
                failed |= failure != Failure::Gone;
                match failure {
                    Failure::Gone => continue,
                    Failure::Timeout => {
                        missed_ids.push(c.id.clone());
                        missed_names.push(c.name.clone());
                    }
                    _ => {}
                }
            }
            kept.push(o.metrics);
        }
        if !missed_names.is_empty() {
            log_timeouts(&missed_names, kept.len());
        }
        self.state.finish_round(&RoundEnd {
            listed: listed.iter().map(String::as_str).collect(),
            missed: missed_ids.iter().map(String::as_str).collect(),
            full,
        });
        (kept, failed)
    }

    /// Stats and lifecycle of one container, asked concurrently.
    async fn container(
        &self,
        c: ContainerRef,
        listing: Listing,
        version: &EngineVersion,
        deadline: &Deadline,
    ) -> Outcome {
        let (stats, lifecycle) = futures::join!(
            self.stats_of(&c, version, deadline),
            self.lifecycle(&c, listing, deadline)
        );
        let failure = match (&stats, &lifecycle) {
            (Err(Failure::Gone), _) | (_, Err(Failure::Gone)) => Some(Failure::Gone),
            (Err(kind), _) | (_, Err(kind)) => Some(*kind),
            _ => None,
        };
        let (sample, cpu_percent) = match stats {
            Ok(Some((sample, pct))) => (Some(sample), pct),
            _ => (None, None),
        };
        let lifecycle = lifecycle.ok().map(|l| with_listed_health(l, &c));
        Outcome {
            metrics: ContainerMetrics {
                container: c,
                sample,
                cpu_percent,
                lifecycle,
                ..Default::default()
            },
            failure,
        }
    }

    /// The container's stats and CPU percent; `Ok(None)` for one that is not
    /// running.
    async fn stats_of(
        &self,
        c: &ContainerRef,
        version: &EngineVersion,
        deadline: &Deadline,
    ) -> Result<Option<(Sample, Option<f64>)>, Failure> {
        if !c.has_stats() {
            return Ok(None);
        }
        let known = self.state.has_cpu_reading(&c.id);
        let quirks = version.quirks();
        let direct = quirks.direct_stats;
        // An engine that waits for its tick fills `precpu_stats` only
        // without one-shot, at the cost of a second tick: worth it for a
        // container seen for the first time, unless the deadline is short.
        let one_shot = direct || known || deadline.remaining() < TWO_TICKS;
        let first = self.read_stats(c, one_shot, &quirks, deadline).await?;
        let pct = self.take_cpu(&c.id, &first, quirks.cpu_clock);
        if pct.is_some() || !direct || known || first.cpu.is_none() {
            return Ok(Some((first, pct)));
        }
        // A direct engine gives one reading and no window: take a second
        // reading a short while later, if the deadline leaves room.
        if deadline.remaining() < self.cpu_percent_min_window * 2 {
            return Ok(Some((first, None)));
        }
        let second = deadline.run(async {
            tokio::time::sleep(self.cpu_percent_min_window).await;
            self.read_stats(c, true, &quirks, deadline).await
        });
        match second.await {
            Ok(Ok(second)) => {
                let pct = self.take_cpu(&c.id, &second, quirks.cpu_clock);
                Ok(Some((second, pct)))
            }
            Ok(Err(Failure::Gone)) => Err(Failure::Gone),
            _ => Ok(Some((first, None))),
        }
    }

    /// One stats call, decoded.
    async fn read_stats(
        &self,
        c: &ContainerRef,
        one_shot: bool,
        quirks: &Quirks,
        deadline: &Deadline,
    ) -> Result<Sample, Failure> {
        match deadline.run(self.engine.stats(&c.id, one_shot)).await {
            Ok(Ok(Some(stats))) => {
                let Some(mut sample) = Sample::from_stats(&stats) else {
                    tracing::debug!("{}: stopped before its stats were read", c.name);
                    return Err(Failure::Gone);
                };
                drop_zero_counters(&mut sample, quirks);
                if !quirks.cpu_modes {
                    sample.cpu_user_ns = None;
                    sample.cpu_system_ns = None;
                }
                Ok(sample)
            }
            Ok(Ok(None)) => {
                tracing::debug!("{}: removed during the stats call", c.name);
                Err(Failure::Gone)
            }
            Ok(Err(e)) => {
                if e.kind == Failure::Gone {
                    tracing::debug!("{}: gone: {e}", c.name);
                } else {
                    tracing::warn!("{}: stats failed: {e}", c.name);
                }
                Err(e.kind)
            }
            Err(Elapsed) => Err(Failure::Timeout),
        }
    }

    /// The engine's own window where it filled `precpu_stats`; else the
    /// window since this container's previous reading. The reading is kept
    /// either way.
    fn take_cpu(&self, id: &str, sample: &Sample, clock: CpuClock) -> Option<f64> {
        let now = sample.cpu?;
        let from_engine = sample.precpu.and_then(|b| percent_for(clock, now, b));
        let from_history = self.state.observe_cpu(id, now, clock);
        from_engine.or(from_history)
    }

    /// The cached inspect answer, or a fresh one.
    async fn lifecycle(
        &self,
        c: &ContainerRef,
        listing: Listing,
        deadline: &Deadline,
    ) -> Result<Arc<Lifecycle>, Failure> {
        let key = c.lifecycle_key();
        if let Some(hit) = self.state.inspect(&c.id, &key, &listing) {
            return Ok(hit);
        }
        match deadline.run(self.engine.inspect(&c.id)).await {
            Ok(Ok(answer)) => {
                let value = Arc::new(Lifecycle::from_inspect(&answer));
                self.state
                    .store_inspect(&c.id, &key, listing, value.clone());
                Ok(value)
            }
            Ok(Err(e)) => {
                if e.kind != Failure::Gone {
                    tracing::warn!("{}: inspect failed: {e}", c.name);
                }
                Err(e.kind)
            }
            Err(Elapsed) => Err(Failure::Timeout),
        }
    }
}

/// The inspect answer with the health the list gave this round, where the
/// list carries it (API 1.52): newer than a cached answer, which a change of
/// health alone no longer refreshes.
fn with_listed_health(l: Arc<Lifecycle>, c: &ContainerRef) -> Arc<Lifecycle> {
    match &c.health {
        Some(health) if *health != l.health => Arc::new(Lifecycle {
            health: health.clone(),
            ..(*l).clone()
        }),
        _ => l,
    }
}

/// Fills in what needs the round as a whole: each container's cgroup path,
/// writable layer's size and, for running ones, when they were seen.
fn describe(
    containers: &mut [ContainerMetrics],
    layout: &CgroupLayout,
    machine: Option<&EngineInfo>,
    sizes: Option<Sizes>,
    seen_at: f64,
) {
    let driver = machine.and_then(|m| m.cgroup_driver.as_deref());
    for c in containers {
        let lifecycle = c.lifecycle.as_ref();
        let parent = lifecycle.and_then(|l| l.cgroup_parent.as_deref());
        let user = lifecycle.and_then(|l| l.runtime_uid);
        c.cgroup = cgroup_id(layout, driver, parent, user, &c.container.id);
        if c.container.has_stats() {
            c.fs_usage = sizes.as_ref().and_then(|s| s.get(&c.container.id).copied());
            c.last_seen = Some(seen_at);
        }
    }
}

fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// One line for all the containers a round could not finish in time.
fn log_timeouts(missed: &[String], of: usize) {
    const SHOWN: usize = 5;
    let mut names = missed[..missed.len().min(SHOWN)].join(", ");
    if missed.len() > SHOWN {
        names.push_str(&format!(" and {} more", missed.len() - SHOWN));
    }
    tracing::warn!(
        "{} of {of} containers missed the scrape deadline ({names}); they are asked first next time",
        missed.len(),
    );
}

/// Leaves out the counters an engine reports as constant zeros
/// ([`Quirks::zero_throttling`], [`Quirks::zero_packets`]) rather than
/// export wrong values.
fn drop_zero_counters(s: &mut Sample, quirks: &Quirks) {
    if quirks.zero_throttling {
        s.cfs_periods = None;
        s.cfs_throttled_periods = None;
        s.cfs_throttled_ns = None;
    }
    if !quirks.zero_packets {
        return;
    }
    for i in &mut s.interfaces {
        i.rx_packets = None;
        i.tx_packets = None;
        i.rx_errors = None;
        i.tx_errors = None;
        i.rx_dropped = None;
        i.tx_dropped = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::Stats;

    /// A Podman answer read as the exporter reads it, with Podman's zero
    /// throttling and, before Podman 5, its zero packet counters.
    fn podman_sample(fixture: &str, zero_packets: bool) -> Sample {
        let stats: Stats = serde_json::from_str(fixture).expect("fixture");
        let mut sample = Sample::from_stats(&stats).expect("a running container's");
        let quirks = Quirks {
            zero_throttling: true,
            zero_packets,
            ..Quirks::default()
        };
        drop_zero_counters(&mut sample, &quirks);
        sample
    }

    #[test]
    fn packet_counters_are_kept_unless_the_engine_gives_zeros() {
        let five = podman_sample(
            include_str!("../../tests/fixtures/stats-podman5.4-cgroupv2-rootless-io.json"),
            false,
        );
        let eth0 = &five.interfaces[0];
        assert_eq!((eth0.rx_packets, eth0.tx_packets), (Some(15), Some(8)));
        assert_eq!((eth0.rx_dropped, eth0.tx_errors), (Some(0), Some(0)));
        assert_eq!(five.cfs_throttled_periods, None, "throttling is zeros");
        let four = podman_sample(
            include_str!("../../tests/fixtures/stats-podman4.3-cgroupv1-busy.json"),
            true,
        );
        let network = &four.interfaces[0];
        assert_eq!((network.rx_packets, network.tx_packets), (None, None));
        assert_eq!(network.rx_bytes, Some(586));
        assert_eq!(four.cfs_throttled_periods, None);
    }
}
