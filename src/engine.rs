//! The engine connection. Every request sent from here is a GET: the exporter
//! only ever reads.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use anyhow::Context;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerInspectResponse, ContainerStatsResponse};
use bollard::query_parameters::{ListContainersOptions, StatsOptionsBuilder};
use bollard::{Docker, API_DEFAULT_VERSION};
use futures::StreamExt;

use crate::selector::Selection;

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
}

impl ContainerRef {
    /// Whether the engine has resource stats for it (paused ones keep theirs).
    pub fn has_stats(&self) -> bool {
        matches!(self.state.as_str(), "running" | "paused")
    }

    /// What must stay the same for a cached inspect answer to be reused:
    /// the state and, from the status text, the health.
    pub fn lifecycle_key(&self) -> String {
        let health = ["(healthy)", "(unhealthy)", "(health: starting)"]
            .into_iter()
            .find(|h| self.status.contains(h))
            .unwrap_or("");
        format!("{}{health}", self.state)
    }
}

/// Why a container is missing from a scrape; the value of the `kind` label
/// on `docker_stats_scrape_errors_total`.
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

    /// Classifies a client error.
    pub fn of(err: &BollardError) -> Self {
        match err {
            // 404: removed; 409: Podman's answer for a stopped container.
            BollardError::DockerResponseServerError {
                status_code: 404 | 409,
                ..
            } => Failure::Gone,
            BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. } => {
                Failure::Decode
            }
            BollardError::RequestTimeoutError => Failure::Timeout,
            _ => Failure::Engine,
        }
    }
}

/// Which engine answers; their stats differ in ways the numbers depend on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// Docker (moby).
    Docker,
    /// Podman's Docker-compatible API: `system_cpu_usage` is the host's busy
    /// time rather than its capacity, and throttling and packet counters are
    /// always zero.
    Podman,
}

/// A lazily connected engine client. Connecting fails while the socket file
/// is missing; it is retried at the next scrape, and once made the client
/// (and its connection pool) is reused by every scrape after.
#[derive(Debug)]
pub struct Engine {
    host: String,
    request_timeout: Duration,
    tls: Option<std::path::PathBuf>,
    client: Mutex<Option<Docker>>,
    flavor: Mutex<Option<Flavor>>,
}

impl Engine {
    /// An engine at `host` (`unix://`, `tcp://`, `http://`); nothing is
    /// contacted until the first request.
    pub fn new(host: impl Into<String>, request_timeout: Duration) -> Self {
        Self {
            host: host.into(),
            request_timeout,
            tls: None,
            client: Mutex::new(None),
            flavor: Mutex::new(None),
        }
    }

    /// Reaches the engine over TLS with `ca.pem`, `cert.pem` and `key.pem`
    /// from `dir`.
    pub fn with_tls(mut self, dir: Option<std::path::PathBuf>) -> Self {
        self.tls = dir;
        self
    }

    /// The configured address.
    pub fn host(&self) -> &str {
        &self.host
    }

    fn client(&self) -> anyhow::Result<Docker> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(docker) = slot.as_ref() {
            return Ok(docker.clone());
        }
        let secs = self.request_timeout.as_secs().max(1);
        let docker = if let Some(dir) = &self.tls {
            Docker::connect_with_ssl(
                &self.host,
                &dir.join("key.pem"),
                &dir.join("cert.pem"),
                &dir.join("ca.pem"),
                secs,
                API_DEFAULT_VERSION,
            )
        } else if self.host.starts_with("unix://") {
            Docker::connect_with_unix(&self.host, secs, API_DEFAULT_VERSION)
        } else if self.host.starts_with("npipe://") {
            Docker::connect_with_host(&self.host)
        } else {
            Docker::connect_with_http(&self.host, secs, API_DEFAULT_VERSION)
        }
        .with_context(|| format!("cannot connect to the engine at {}", self.host))?;
        *slot = Some(docker.clone());
        Ok(docker)
    }

    /// The engine's flavor, asked once with `GET /version` and remembered.
    /// Until an answer arrives, Docker is assumed.
    pub async fn flavor(&self) -> Flavor {
        if let Some(f) = *self.flavor.lock().unwrap_or_else(|p| p.into_inner()) {
            return f;
        }
        let Ok(docker) = self.client() else {
            return Flavor::Docker;
        };
        match docker.version().await {
            Ok(v) => {
                let podman = v
                    .components
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.name.contains("Podman"));
                let f = if podman {
                    Flavor::Podman
                } else {
                    Flavor::Docker
                };
                *self.flavor.lock().unwrap_or_else(|p| p.into_inner()) = Some(f);
                f
            }
            Err(e) => {
                tracing::debug!("engine version unknown: {e}");
                Flavor::Docker
            }
        }
    }

    /// `GET /_ping`.
    pub async fn ping(&self) -> anyhow::Result<()> {
        let docker = self.client()?;
        docker
            .ping()
            .await
            .with_context(|| format!("engine at {} does not answer /_ping", self.host))
            .map_err(|e| crate::socket_access::explain(&self.host, e))?;
        Ok(())
    }

    /// `GET /containers/json`: containers matching `selection`, running ones
    /// only unless `all`. Label filters are pushed down to the engine where
    /// they can be; names are matched exactly here (the engine's `name`
    /// filter is an unanchored regex).
    pub async fn list(
        &self,
        selection: &Selection,
        all: bool,
    ) -> anyhow::Result<Vec<ContainerRef>> {
        let docker = self.client()?;
        let filters = selection
            .engine_label_filter()
            .map(|labels| HashMap::from([("label".to_string(), labels)]));
        let options = ListContainersOptions {
            all,
            filters,
            ..Default::default()
        };
        // Podman briefly reports a container that just exited as `stopped`, a
        // state the client's list type rejects; it is `exited` moments later.
        let mut attempt = 0;
        let summaries = loop {
            match docker.list_containers(Some(options.clone())).await {
                Err(e) if Failure::of(&e) == Failure::Decode && attempt < 3 => {
                    attempt += 1;
                    tracing::debug!("list answer did not decode ({e}); asking again");
                    tokio::time::sleep(Duration::from_millis(100 * attempt)).await;
                }
                other => {
                    break other.with_context(|| format!("listing containers at {}", self.host))?
                }
            }
        };
        let mut out = Vec::with_capacity(summaries.len());
        for s in summaries {
            let (Some(id), Some(names)) = (s.id, s.names) else {
                continue;
            };
            let labels = s.labels.unwrap_or_default();
            if !selection.matches(&names, &labels) {
                continue;
            }
            let Some(first) = names.first() else { continue };
            out.push(ContainerRef {
                id,
                name: first.trim_start_matches('/').to_string(),
                labels,
                image: s.image.unwrap_or_default(),
                image_id: s.image_id.unwrap_or_default(),
                state: s.state.map(|st| st.to_string()).unwrap_or_default(),
                status: s.status.unwrap_or_default(),
            });
        }
        Ok(out)
    }

    /// `GET /containers/{id}/json`.
    pub async fn inspect(&self, id: &str) -> Result<ContainerInspectResponse, BollardError> {
        let docker = self.client_or_io_error()?;
        docker.inspect_container(id, None).await
    }

    fn client_or_io_error(&self) -> Result<Docker, BollardError> {
        self.client().map_err(|e| BollardError::IOError {
            err: std::io::Error::other(format!("{e:#}")),
        })
    }

    /// `GET /containers/{id}/stats?stream=false[&one-shot=true]`. `Ok(None)`
    /// when the engine answered with an empty body (container removed during
    /// the call).
    pub async fn stats(
        &self,
        id: &str,
        one_shot: bool,
    ) -> Result<Option<ContainerStatsResponse>, BollardError> {
        let docker = self.client_or_io_error()?;
        let options = StatsOptionsBuilder::default()
            .stream(false)
            .one_shot(one_shot)
            .build();
        docker.stats(id, Some(options)).next().await.transpose()
    }
}
