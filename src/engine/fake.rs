//! A scripted engine for tests of the scrape logic: containers with a set CPU
//! rate, answers that take a given time or fail, and the engine's collection
//! tick (Docker up to 24) or direct answers (Docker 25+, Podman). Time is
//! tokio's, so tests run with `tokio::time::pause` and no wall clock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::model::{
    CpuStats, CpuUsage, Health, HostConfig, Inspect, InspectState, MemoryStats, Stats,
};
use futures::FutureExt;
use tokio::time::Instant;

use super::{
    ContainerRef, EngineApi, EngineError, EngineFuture, EngineInfo, EngineVersion, Failure, Flavor,
    ListQuery, Listed,
};

/// The engine's collection tick on Docker up to 24.
pub const TICK: Duration = Duration::from_secs(1);
/// Wall-clock second the fake engine's time starts at (2026-11-01T00:00:00Z).
const EPOCH: i64 = 1_793_491_200;
const CPUS: u64 = 2;

/// How one container's requests go.
#[derive(Debug, Clone, Default)]
pub struct Behaviour {
    /// Time a stats call takes on top of the engine's own waiting.
    pub stats_delay: Duration,
    /// Time an inspect call takes.
    pub inspect_delay: Duration,
    /// A stats call fails with this kind instead of answering.
    pub stats_fails: Option<Failure>,
    /// An inspect call fails with this kind instead of answering.
    pub inspect_fails: Option<Failure>,
    /// A stats call never answers.
    pub stats_hangs: bool,
    /// CPU as a CFS quota lets a busy container have it: this much of the
    /// first part of every 100 ms period and nothing in the rest, instead
    /// of the even rate it was added with.
    pub cfs_quota: Option<Duration>,
}

#[derive(Debug, Clone)]
struct FakeContainer {
    listed: Listed,
    /// CPU nanoseconds used per second of time.
    cpu_rate: u64,
    /// When, since the engine started, the container last started.
    started: Duration,
    restarts: i64,
    behaviour: Behaviour,
    /// The health check's verdict; `None` without a health check.
    health: Option<String>,
}

/// Requests received, by path kind.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Calls {
    /// `GET /containers/json` of scrape rounds.
    pub list: usize,
    /// `GET /containers/json?size=true`: writable-layer sizes.
    pub size_list: usize,
    /// `GET /containers/{id}/stats`.
    pub stats: usize,
    /// `GET /containers/{id}/json`.
    pub inspect: usize,
    /// `GET /version`.
    pub version: usize,
    /// `GET /info`.
    pub info: usize,
}

/// A scripted engine. Cheap to clone; clones share state.
#[derive(Debug, Clone)]
pub struct FakeEngine {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    started: Instant,
    version: EngineVersion,
    containers: Mutex<Vec<FakeContainer>>,
    down: Mutex<bool>,
    hung: Mutex<bool>,
    /// Time `/version` and `/info` take.
    identify_delay: Mutex<Duration>,
    calls: Mutex<Calls>,
    /// Stats and inspect calls in flight.
    calls_in_flight: InFlight,
    /// Inspect calls in flight.
    inspects_in_flight: InFlight,
}

impl FakeEngine {
    /// An engine that behaves as Docker `version` does: `"20.10.24"` waits
    /// for ticks, `"26.1.5"` answers directly.
    pub fn docker(version: &str) -> Self {
        Self::new(EngineVersion {
            flavor: Flavor::Docker,
            version: version.into(),
        })
    }

    /// A Podman engine (direct answers, busy-time `system_cpu_usage`).
    pub fn podman() -> Self {
        Self::new(EngineVersion {
            flavor: Flavor::Podman,
            version: "4.3.1".into(),
        })
    }

    fn new(version: EngineVersion) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                version,
                containers: Mutex::new(Vec::new()),
                down: Mutex::new(false),
                hung: Mutex::new(false),
                identify_delay: Mutex::new(Duration::ZERO),
                calls: Mutex::new(Calls::default()),
                calls_in_flight: InFlight::default(),
                inspects_in_flight: InFlight::default(),
            }),
        }
    }

    /// Adds a running container named `name` (id `<name>-id`) using
    /// `cpu_rate` CPU nanoseconds per second.
    pub fn add(&self, name: &str, cpu_rate: u64) {
        self.add_with(
            name,
            "running",
            cpu_rate,
            HashMap::new(),
            Behaviour::default(),
        );
    }

    /// Adds a container with every detail given.
    pub fn add_with(
        &self,
        name: &str,
        state: &str,
        cpu_rate: u64,
        labels: HashMap<String, String>,
        behaviour: Behaviour,
    ) {
        let container = ContainerRef {
            id: format!("{name}-id"),
            name: name.into(),
            labels,
            image: "busybox:latest".into(),
            image_id: "sha256:0123".into(),
            state: state.into(),
            status: String::new(),
            size_rw: None,
            health: None,
        };
        let listed = Listed {
            names: vec![format!("/{name}")],
            container,
        };
        let mut all = self.lock_containers();
        all.retain(|c| c.listed.container.name != name);
        all.push(FakeContainer {
            listed,
            cpu_rate,
            started: self.inner.started.elapsed(),
            restarts: 0,
            behaviour,
            health: None,
        });
    }

    /// Changes how a container's requests go.
    pub fn set_behaviour(&self, name: &str, behaviour: Behaviour) {
        for c in self.lock_containers().iter_mut() {
            if c.listed.container.name == name {
                c.behaviour = behaviour.clone();
            }
        }
    }

    /// Gives a container a health check with this verdict (`starting`,
    /// `healthy`, `unhealthy`), or none.
    pub fn set_health(&self, name: &str, health: Option<&str>) {
        for c in self.lock_containers().iter_mut() {
            if c.listed.container.name == name {
                c.health = health.map(str::to_string);
            }
        }
    }

    /// Whether its list answers carry each container's health (API 1.52,
    /// Engine 29); older ones put it in the status text only.
    fn lists_health(&self) -> bool {
        let v = &self.inner.version;
        v.flavor == Flavor::Docker && v.major().is_some_and(|major| major >= 29)
    }

    /// Restarts a container in place, as a restart policy does: its CPU
    /// counter starts again and its restart count goes up.
    pub fn restart(&self, name: &str) {
        let now = self.inner.started.elapsed();
        for c in self.lock_containers().iter_mut() {
            if c.listed.container.name == name {
                c.started = now;
                c.restarts += 1;
            }
        }
    }

    /// Removes a container.
    pub fn remove(&self, name: &str) {
        self.lock_containers()
            .retain(|c| c.listed.container.name != name);
    }

    /// Makes every request fail as an unreachable engine does, or answer again.
    pub fn set_down(&self, down: bool) {
        *self.inner.down.lock().unwrap_or_else(|p| p.into_inner()) = down;
    }

    /// Makes every request wait forever, as a wedged engine does, or answer
    /// again.
    pub fn set_hung(&self, hung: bool) {
        *self.inner.hung.lock().unwrap_or_else(|p| p.into_inner()) = hung;
    }

    /// Makes `/version` and `/info` take `delay`, as Podman's do on a
    /// loaded machine (seconds: they gather what `podman info` shows).
    pub fn set_identify_delay(&self, delay: Duration) {
        *self
            .inner
            .identify_delay
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = delay;
    }

    async fn identify_wait(&self) {
        let delay = *self
            .inner
            .identify_delay
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        tokio::time::sleep(delay).await;
    }

    /// Requests received so far.
    pub fn calls(&self) -> Calls {
        *self.inner.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The most stats and inspect calls that were in flight at once.
    pub fn max_in_flight(&self) -> usize {
        self.inner.calls_in_flight.most.load(Ordering::SeqCst)
    }

    /// The most inspect calls that were in flight at once.
    pub fn max_inspects_in_flight(&self) -> usize {
        self.inner.inspects_in_flight.most.load(Ordering::SeqCst)
    }

    fn lock_containers(&self) -> std::sync::MutexGuard<'_, Vec<FakeContainer>> {
        self.inner
            .containers
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    async fn count(&self, f: impl FnOnce(&mut Calls)) -> Result<(), EngineError> {
        f(&mut self.inner.calls.lock().unwrap_or_else(|p| p.into_inner()));
        if *self.inner.hung.lock().unwrap_or_else(|p| p.into_inner()) {
            std::future::pending::<()>().await;
        }
        if *self.inner.down.lock().unwrap_or_else(|p| p.into_inner()) {
            return Err(EngineError::new(
                Failure::Engine,
                "connection refused (fake engine is down)",
            ));
        }
        Ok(())
    }

    fn find(&self, id: &str) -> Result<FakeContainer, EngineError> {
        self.lock_containers()
            .iter()
            .find(|c| c.listed.container.id == id)
            .cloned()
            .ok_or_else(|| EngineError::new(Failure::Gone, format!("No such container: {id}")))
    }

    /// Time since start at the next collection tick from now.
    async fn next_tick(&self) -> Duration {
        let elapsed = self.inner.started.elapsed();
        let ticks = elapsed.as_nanos() / TICK.as_nanos() + 1;
        let at = TICK * u32::try_from(ticks).unwrap_or(u32::MAX);
        tokio::time::sleep_until(self.inner.started + at).await;
        at
    }

    async fn stats_answer(&self, id: &str, one_shot: bool) -> Result<Option<Stats>, EngineError> {
        let c = self.find(id)?;
        if !c.listed.container.has_stats() {
            return Ok(Some(Stats {
                read: Some("0001-01-01T00:00:00Z".into()),
                ..Default::default()
            }));
        }
        if c.behaviour.stats_hangs {
            std::future::pending::<()>().await;
        }
        tokio::time::sleep(c.behaviour.stats_delay).await;
        if let Some(kind) = c.behaviour.stats_fails {
            return Err(EngineError::new(kind, format!("stats of {id} failed")));
        }
        let (at, before) = if self.inner.version.quirks().direct_stats {
            (self.inner.started.elapsed(), None)
        } else if one_shot {
            (self.next_tick().await, None)
        } else {
            let first = self.next_tick().await;
            (self.next_tick().await, Some(first))
        };
        // The container may have gone while the engine waited.
        let c = self.find(id)?;
        Ok(Some(self.stats_at(&c, at, before)))
    }

    fn stats_at(&self, c: &FakeContainer, at: Duration, before: Option<Duration>) -> Stats {
        let podman = self.inner.version.flavor == Flavor::Podman;
        let reading = |t: Duration| CpuStats {
            cpu_usage: Some({
                // A tenth in the kernel; Podman 5.4 gives that tenth in
                // microseconds and calls the rest user time.
                let total = c.cpu_used(t);
                let kernel = if podman { total / 10_000 } else { total / 10 };
                CpuUsage {
                    total_usage: Some(total),
                    usage_in_kernelmode: Some(kernel),
                    usage_in_usermode: Some(total - kernel),
                    ..Default::default()
                }
            }),
            // Podman counts the host's busy time, Docker its capacity.
            system_cpu_usage: Some(if podman {
                c.cpu_used(t) + 1
            } else {
                system_ns(t)
            }),
            online_cpus: Some(CPUS as u32),
            ..Default::default()
        };
        Stats {
            read: Some(rfc3339(at)),
            cpu_stats: Some(reading(at)),
            precpu_stats: Some(before.map(reading).unwrap_or_default()),
            memory_stats: Some(MemoryStats {
                usage: Some(1 << 20),
                limit: Some(1 << 30),
                ..Default::default()
            }),
            ..Default::default()
        }
    }
}

impl FakeContainer {
    /// CPU nanoseconds used by engine time `t`.
    fn cpu_used(&self, t: Duration) -> u64 {
        let up = t.saturating_sub(self.started);
        match self.behaviour.cfs_quota {
            Some(quota) => {
                const PERIOD: u128 = 100_000_000;
                let ns = up.as_nanos();
                let run = ns / PERIOD * quota.as_nanos() + (ns % PERIOD).min(quota.as_nanos());
                u64::try_from(run).unwrap_or(u64::MAX / 2) + 1_000_000
            }
            None => cpu_ns(self.cpu_rate, up),
        }
    }
}

/// CPU time used by `t`: a container starts having used some already, as
/// its process start did.
fn cpu_ns(rate: u64, t: Duration) -> u64 {
    let used = u128::from(rate) * t.as_nanos() / 1_000_000_000;
    u64::try_from(used).unwrap_or(u64::MAX / 2) + 1_000_000
}

/// The host's CPU time by `t` (an uptime before the engine started).
fn system_ns(t: Duration) -> u64 {
    (u64::try_from(t.as_nanos()).unwrap_or(u64::MAX / 4) + 3_600_000_000_000) * CPUS
}

/// The engine's time stamp for `t` after the fake engine's start.
fn rfc3339(t: Duration) -> String {
    let secs = EPOCH + i64::try_from(t.as_secs()).unwrap_or(0);
    time::OffsetDateTime::from_unix_timestamp(secs)
        .map(|d| d + time::Duration::nanoseconds(i64::from(t.subsec_nanos())))
        .ok()
        .and_then(|d| {
            d.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

/// A duration as Docker writes it in a listed container's status (`Up 14
/// seconds`): go-units' `HumanDuration`.
pub fn human_duration(d: Duration) -> String {
    let secs = d.as_secs();
    // Hours are rounded to the nearest, seconds and minutes rounded down.
    let hours = (d.as_millis() + 1_800_000) / 3_600_000;
    match secs {
        0 => "Less than a second".into(),
        1 => "1 second".into(),
        s if s < 60 => format!("{s} seconds"),
        s if s / 60 == 1 => "About a minute".into(),
        s if s / 60 < 60 => format!("{} minutes", s / 60),
        _ if hours == 1 => "About an hour".into(),
        _ if hours < 48 => format!("{hours} hours"),
        _ if hours < 24 * 7 * 2 => format!("{} days", hours / 24),
        _ if hours < 24 * 30 * 2 => format!("{} weeks", hours / 24 / 7),
        _ if hours < 24 * 365 * 2 => format!("{} months", hours / 24 / 30),
        s => format!("{} years", s / 3600 / 24 / 365),
    }
}

/// Calls in flight now, and the most there were at once.
#[derive(Debug, Default)]
struct InFlight {
    now: AtomicUsize,
    most: AtomicUsize,
}

impl InFlight {
    /// Counts one call in flight while the guard lives.
    fn enter(&self) -> InFlightGuard<'_> {
        let now = self.now.fetch_add(1, Ordering::SeqCst) + 1;
        self.most.fetch_max(now, Ordering::SeqCst);
        InFlightGuard(self)
    }
}

struct InFlightGuard<'a>(&'a InFlight);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.now.fetch_sub(1, Ordering::SeqCst);
    }
}

impl EngineApi for FakeEngine {
    fn host(&self) -> &str {
        "fake://engine"
    }

    fn ping(&self) -> EngineFuture<'_, ()> {
        async move { self.count(|_| {}).await }.boxed()
    }

    fn version(&self) -> EngineFuture<'_, EngineVersion> {
        async move {
            self.count(|c| c.version += 1).await?;
            self.identify_wait().await;
            Ok(self.inner.version.clone())
        }
        .boxed()
    }

    fn info(&self) -> EngineFuture<'_, EngineInfo> {
        async move {
            self.count(|c| c.info += 1).await?;
            self.identify_wait().await;
            Ok(EngineInfo {
                cpus: Some(CPUS),
                memory_bytes: Some(8 << 30),
                cgroup_driver: Some("cgroupfs".into()),
                cgroup_version: Some("1".into()),
                ..Default::default()
            })
        }
        .boxed()
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> EngineFuture<'a, Vec<Listed>> {
        async move {
            self.count(|c| {
                if query.size {
                    c.size_list += 1;
                } else {
                    c.list += 1;
                }
            })
            .await?;
            let wanted = |labels: &HashMap<String, String>| {
                query.label_filters.iter().all(|f| match f.split_once('=') {
                    Some((k, v)) => labels.get(k).is_some_and(|have| have == v),
                    None => labels.contains_key(f),
                })
            };
            let now = self.inner.started.elapsed();
            let lists_health = self.lists_health();
            Ok(self
                .lock_containers()
                .iter()
                .filter(|c| query.all || c.listed.container.has_stats())
                .filter(|c| wanted(&c.listed.container.labels))
                .map(|c| {
                    let mut l = c.listed.clone();
                    l.container.size_rw = query.size.then_some(4096);
                    if l.container.has_stats() {
                        l.container.status =
                            format!("Up {}", human_duration(now.saturating_sub(c.started)));
                        match (&c.health, lists_health) {
                            (health, true) => l.container.health = Some(health.clone()),
                            (Some(h), false) if h == "starting" => {
                                l.container.status.push_str(" (health: starting)")
                            }
                            (Some(h), false) => l.container.status.push_str(&format!(" ({h})")),
                            (None, false) => {}
                        }
                    }
                    l
                })
                .collect())
        }
        .boxed()
    }

    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, Inspect> {
        async move {
            self.count(|c| c.inspect += 1).await?;
            let _busy = self.inner.calls_in_flight.enter();
            let _inspecting = self.inner.inspects_in_flight.enter();
            let c = self.find(id)?;
            tokio::time::sleep(c.behaviour.inspect_delay).await;
            if let Some(kind) = c.behaviour.inspect_fails {
                return Err(EngineError::new(kind, format!("inspect of {id} failed")));
            }
            Ok(Inspect {
                restart_count: Some(c.restarts),
                state: Some(InspectState {
                    oom_killed: Some(false),
                    exit_code: Some(0),
                    started_at: Some(rfc3339(c.started)),
                    finished_at: None,
                    health: c.health.as_deref().map(|h| Health {
                        status: Some(h.to_string()),
                    }),
                }),
                host_config: Some(HostConfig::default()),
                ..Default::default()
            })
        }
        .boxed()
    }

    fn stats<'a>(&'a self, id: &'a str, one_shot: bool) -> EngineFuture<'a, Option<Stats>> {
        async move {
            self.count(|c| c.stats += 1).await?;
            let _busy = self.inner.calls_in_flight.enter();
            self.stats_answer(id, one_shot).await
        }
        .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_texts_are_those_of_go_units() {
        // Examples from go-units' own tests of HumanDuration.
        let (m, h, d) = (60, 3600, 86_400);
        for (secs, text) in [
            (0, "Less than a second"),
            (1, "1 second"),
            (59, "59 seconds"),
            (60, "About a minute"),
            (35 * m + 40, "35 minutes"),
            (59 * m, "59 minutes"),
            (h + 29 * m, "About an hour"),
            (h + 31 * m, "2 hours"),
            (3 * h + 29 * m, "3 hours"),
            (3 * h + 31 * m, "4 hours"),
            (d + 12 * h, "36 hours"),
            (13 * d + 5 * h, "13 days"),
            (16 * d, "2 weeks"),
            (30 * d, "4 weeks"),
            (44 * d, "6 weeks"),
            (60 * d, "2 months"),
            (720 * d, "24 months"),
            (734 * d, "2 years"),
            (3 * 365 * d + 60 * d, "3 years"),
        ] {
            assert_eq!(human_duration(Duration::from_secs(secs)), text, "{secs} s");
        }
    }
}
