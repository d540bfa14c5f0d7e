//! What the exporter asks of a container engine, behind a small trait so the
//! scrape logic runs against the real engine ([`docker::DockerEngine`]) and
//! against a scripted one in tests ([`fake::FakeEngine`]). Every request is a
//! read: the exporter never changes anything on the engine.
//!
//! Stage 2, the engine: its transports ([`transport`], [`plain`], [`tls`]),
//! the bollard client ([`docker`]) and the answers it decodes itself
//! ([`model`]), what differs between engines ([`quirks`]), the call
//! limit ([`limited`]), the scripted engine (`fake`, with the `testing`
//! feature) and why a socket refuses this process ([`socket_access`]).
//!
//! May use: [`crate::config`].

pub mod docker;
#[cfg(any(test, feature = "testing"))]
pub mod fake;
pub mod limited;
pub mod model;
pub mod plain;
pub mod quirks;
pub mod socket_access;
pub mod tls;
pub mod transport;

use std::collections::HashMap;
use std::fmt;

use futures::future::BoxFuture;

/// A container as the list call reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContainerRef {
    /// Full container id.
    pub id: String,
    /// Primary name without the leading `/`.
    pub name: String,
    /// The container's labels.
    pub labels: HashMap<String, String>,
    /// Image as given when it was created (`nginx:1.27`).
    pub image: String,
    /// Image id (`sha256:...`).
    pub image_id: String,
    /// `running`, `exited`, `paused`, ...
    pub state: String,
    /// The engine's human status (`Up 5 minutes (healthy)`).
    pub status: String,
    /// Size of the writable layer in bytes, where the list call was asked
    /// for sizes.
    pub size_rw: Option<u64>,
    /// The health check's verdict as the list reports it from API 1.52
    /// (Engine 29): `Some(None)` without a health check, `Some(Some(s))`
    /// with one (`starting`, `healthy`, `unhealthy`), `None` where the list
    /// does not carry it and only inspect tells.
    pub health: Option<Option<String>>,
}

impl ContainerRef {
    /// Whether the engine has resource stats for it (paused ones keep theirs).
    pub fn has_stats(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused")
    }

    /// What must stay the same for a cached inspect answer to be reused:
    /// the state and, where the list does not carry the health itself, the
    /// health from the status text. A list that carries it (API 1.52) needs
    /// no inspect call when only the health changed.
    pub fn lifecycle_key(&self) -> String {
        if self.health.is_some() {
            return self.state.clone();
        }
        let health = ["(healthy)", "(unhealthy)", "(health: starting)"]
            .into_iter()
            .find(|h| self.status.contains(h))
            .unwrap_or("");
        format!("{}{health}", self.state)
    }
}

/// A container in a list answer: the container and every name it has (the
/// engine lists legacy link aliases too), for exact name matching.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listed {
    /// The container.
    pub container: ContainerRef,
    /// All its names, each with the engine's leading `/`.
    pub names: Vec<String>,
}

/// What a list call asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListQuery {
    /// Stopped containers too, not only running ones.
    pub all: bool,
    /// `label` filters the engine applies itself (all must match).
    pub label_filters: Vec<String>,
    /// Ask for the size of each writable layer (`size=true`): the engine
    /// walks every container's files, so this is slow on big hosts.
    pub size: bool,
}

/// Why a container, or a list call, is missing from a scrape; the value of
/// the `kind` label on `docker_stats_scrape_errors_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Failure {
    /// The engine refused or failed the request.
    Engine,
    /// The engine answered with something that did not decode.
    Decode,
    /// No answer before the scrape's deadline.
    Timeout,
    /// The container stopped or was removed between list and stats.
    Gone,
}

impl Failure {
    /// Every kind, in exposition order.
    pub const ALL: [Failure; 4] = [
        Failure::Engine,
        Failure::Decode,
        Failure::Timeout,
        Failure::Gone,
    ];

    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Engine => "engine",
            Failure::Decode => "decode",
            Failure::Timeout => "timeout",
            Failure::Gone => "gone",
        }
    }
}

/// A failed engine request: its kind and the engine's or client's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    /// How the scrape counts it.
    pub kind: Failure,
    /// What went wrong, for the log.
    pub message: String,
}

impl EngineError {
    /// An error of `kind` saying `message`.
    pub fn new(kind: Failure, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
        }
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

/// Which engine answers; their stats differ in ways the numbers depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// Docker (moby).
    #[default]
    Docker,
    /// Podman's Docker-compatible API (how its answers differ:
    /// [`quirks::Quirks`]).
    Podman,
}

/// What `GET /version` says that changes how stats are read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineVersion {
    /// Docker or Podman.
    pub flavor: Flavor,
    /// The engine's own version (`20.10.24`, `26.1.5`, `4.3.1`).
    pub version: String,
}

impl EngineVersion {
    /// The major version number, where the version string starts with one.
    pub fn major(&self) -> Option<u32> {
        self.version.split('.').next()?.parse().ok()
    }
}

/// What `GET /info` says about the machine and the engine's cgroups.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EngineInfo {
    /// CPUs the engine sees.
    pub cpus: Option<u64>,
    /// Memory of the machine (or VM) in bytes.
    pub memory_bytes: Option<u64>,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: Option<String>,
    /// `"1"` or `"2"`.
    pub cgroup_version: Option<String>,
    /// Whether the engine runs as an ordinary user (`name=rootless` in its
    /// security options).
    pub rootless: bool,
    /// The cgroup v2 controllers its containers get, where the engine says
    /// (Podman's `/libpod/info`, asked of rootless engines only).
    pub cgroup_controllers: Option<Vec<String>>,
}

/// The controllers whose files the engine's stats come from: `cpu` for the
/// CPU limit and throttling, `io` for block I/O, `memory`, `pids`.
const READ_CONTROLLERS: [&str; 4] = ["cpu", "io", "memory", "pids"];

impl EngineInfo {
    /// The controllers a rootless engine's containers lack, of those stats
    /// are read from: not delegated to the user by systemd, so the series
    /// that come from them are absent. Empty where all are there or the
    /// engine does not say.
    pub fn undelegated(&self) -> Vec<&'static str> {
        match (&self.cgroup_controllers, self.rootless) {
            (Some(have), true) => READ_CONTROLLERS
                .into_iter()
                .filter(|c| !have.iter().any(|h| h == c))
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// The boxed future every engine request returns, so the trait stays
/// object-safe.
pub type EngineFuture<'a, T> = BoxFuture<'a, Result<T, EngineError>>;

/// The requests a scrape sends, all `GET`s.
pub trait EngineApi: Send + Sync + fmt::Debug {
    /// The engine's address as configured, for logs and the landing page.
    fn host(&self) -> &str;

    /// `GET /_ping`.
    fn ping(&self) -> EngineFuture<'_, ()>;

    /// `GET /version`.
    fn version(&self) -> EngineFuture<'_, EngineVersion>;

    /// `GET /info`.
    fn info(&self) -> EngineFuture<'_, EngineInfo>;

    /// `GET /containers/json` with the query's filters.
    fn list<'a>(&'a self, query: &'a ListQuery) -> EngineFuture<'a, Vec<Listed>>;

    /// `GET /containers/{id}/json`.
    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, model::Inspect>;

    /// `GET /containers/{id}/stats?stream=false[&one-shot=true]`. `Ok(None)`
    /// when the engine answered with an empty body (the container was
    /// removed during the call).
    fn stats<'a>(&'a self, id: &'a str, one_shot: bool) -> EngineFuture<'a, Option<model::Stats>>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn undelegated_controllers_of_a_rootless_engine() {
        let info = |rootless, controllers: Option<&[&str]>| EngineInfo {
            rootless,
            cgroup_controllers: controllers.map(|c| c.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        };
        // Podman 5.4 rootless, systemd's default delegation.
        assert_eq!(
            info(true, Some(&["memory", "pids"])).undelegated(),
            ["cpu", "io"]
        );
        // With `Delegate=cpu cpuset io memory pids`.
        let full: &[&str] = &["cpuset", "cpu", "io", "memory", "pids"];
        assert!(info(true, Some(full)).undelegated().is_empty());
        assert!(info(false, Some(&["memory"])).undelegated().is_empty());
        assert!(info(true, None).undelegated().is_empty());
    }
}
