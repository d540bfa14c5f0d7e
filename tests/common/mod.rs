//! Shared pieces of the integration tests: the engine under test through the
//! docker CLI, an in-process exporter on port 0, the exporter binary as a
//! child process, one HTTP client, waiting on conditions, and a small
//! exposition parser.
#![allow(clippy::unwrap_used)]

/// The repository's root: this crate lives in `tests/common/`.
pub const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

pub mod accounted;
pub mod attack;
pub mod cgroup;
pub mod child;
pub mod cmd;
pub mod compose;
pub mod engine;
pub mod engines;
pub mod exporter_image;
pub mod http;
pub mod lock;
pub mod process;
pub mod proxy;
pub mod shell;
pub mod swarm;
pub mod veth;
pub mod vm;
pub mod wait;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Command;
use std::sync::Arc;

use docker_stats_exporter::config::{Config, Overrides};

pub use child::{candidate_port, run_failing, ChildServer, BIN};
pub use engine::{
    direct_stats, docker, docker_cmd, docker_for, docker_on, engine_host, engine_socket,
    first_round_stats_calls, host_cpus, image, image_name, listed_image, unique, Container, DOCKER,
    MACHINE_ENGINE,
};
pub use wait::{wait_until, wait_until_async, PATIENCE};

/// An exporter served in process on 127.0.0.1:0.
pub struct Exporter {
    pub addr: SocketAddr,
    pub state: Arc<docker_stats_exporter::AppState>,
    task: tokio::task::JoinHandle<()>,
}

impl Exporter {
    /// Starts one from config text, with `docker_host` as given.
    pub async fn start(config: &str, docker_host: &str) -> Self {
        Self::with_config(Self::config(config, docker_host)).await
    }

    /// A validated config listening on 127.0.0.1:0. Where the engine under
    /// test is in the emulated VM (reached directly or through a test's
    /// proxy), [`SLOW_ENGINE`] unless the test sets a timeout.
    pub fn config(config: &str, docker_host: &str) -> Config {
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            docker_host: Some(docker_host.into()),
        };
        let sets_timeout = config
            .lines()
            .any(|l| l.trim_start().starts_with("timeout"));
        let in_vm = engine_host().starts_with(VM_ENGINES) || docker_host.starts_with(VM_ENGINES);
        let config = if in_vm && !sets_timeout {
            format!("{SLOW_ENGINE}\n{config}")
        } else {
            config.to_string()
        };
        Config::parse("test", &config, &overrides, None).expect("valid test config")
    }

    /// Starts one from a validated config.
    pub async fn with_config(config: Config) -> Self {
        Self::serve(docker_stats_exporter::state(&config)).await
    }

    /// Starts one reading the named `engines` (scripted ones, say), with the
    /// default configuration otherwise.
    pub async fn with_engines(
        engines: Vec<(&str, Arc<dyn docker_stats_exporter::engine::EngineApi>)>,
    ) -> Self {
        let config = Self::config("", "unix:///unused.sock");
        let engines = engines
            .into_iter()
            .map(|(name, e)| (Some(name.to_string()), e))
            .collect();
        Self::serve(docker_stats_exporter::state_with_engines(&config, engines)).await
    }

    async fn serve(state: Arc<docker_stats_exporter::AppState>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = docker_stats_exporter::app(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// Starts one against the engine under test ([`engine_host`]).
    pub async fn local(config: &str) -> Self {
        Self::start(config, engine_host()).await
    }

    /// `GET /metrics`: the status and body.
    pub async fn scrape(&self) -> (u16, String) {
        get(self.addr, "/metrics", &[]).await
    }

    /// `GET /metrics` that must answer 200; the parsed body.
    pub async fn metrics(&self) -> Metrics {
        let (status, body) = self.scrape().await;
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }

    /// The first scrape that left nothing out (`container_scrape_error` 0):
    /// on a loaded VM a stats call can pass the scrape's timeout, and a test
    /// about what the engine reports needs a scrape that asked it everything.
    pub async fn whole_metrics(&self) -> Metrics {
        wait_until_async("a scrape that left nothing out", PATIENCE, || async {
            let m = self.metrics().await;
            m.whole().map(|()| m)
        })
        .await
    }

    /// A `GET /metrics` left running, so the test can act while its round
    /// waits on the engine.
    pub fn scrape_in_background(&self) -> tokio::task::JoinHandle<(u16, String)> {
        let addr = self.addr;
        tokio::spawn(async move { get(addr, "/metrics", &[]).await })
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// `GET path` with `headers`: the status and body; panics when no HTTP
/// answer comes back (see [`http::Get`] for more).
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut req = http::Get::new(addr, path);
    for (k, v) in headers {
        req = req.header(k, v);
    }
    let answer = req.send().await.unwrap_or_else(|e| panic!("{e}"));
    (answer.status, answer.body)
}

/// One sample of the exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Parsed exposition text.
#[derive(Debug, Clone)]
pub struct Metrics(pub Vec<Series>);

impl Metrics {
    pub fn parse(text: &str) -> Self {
        let mut out = Vec::new();
        for line in text.lines() {
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, parse_labels(rest.trim_end_matches('}'))),
                None => (series, BTreeMap::new()),
            };
            out.push(Series {
                name: name.to_string(),
                labels,
                value: value.parse().expect("sample value"),
            });
        }
        Self(out)
    }

    /// The first series of `metric` for container `name`.
    fn series(&self, metric: &str, name: &str) -> Option<&Series> {
        self.0
            .iter()
            .find(|s| s.name == metric && s.labels.get("name").map(String::as_str) == Some(name))
    }

    /// `Ok` when the scrape says it left nothing out, else what it counted.
    pub fn whole(&self) -> Result<(), String> {
        match self.value("container_scrape_error", &[]) {
            Some(0.0) => Ok(()),
            seen => Err(format!(
                "container_scrape_error {seen:?}; errors since start: {:?}",
                self.0
                    .iter()
                    .filter(|s| s.name == "docker_stats_scrape_errors_total")
                    .map(|s| (s.labels.get("kind").cloned(), s.value))
                    .collect::<Vec<_>>()
            )),
        }
    }

    /// The value of `metric` for container `name` (no other labels).
    pub fn get(&self, metric: &str, name: &str) -> Option<f64> {
        self.series(metric, name).map(|s| s.value)
    }

    /// The value of label `label` on `metric` for container `name`.
    pub fn label(&self, metric: &str, name: &str, label: &str) -> Option<String> {
        self.series(metric, name)?.labels.get(label).cloned()
    }

    /// The value of the series of `metric` whose labels include `labels`
    /// (every container series also has `id`, `image` and allow-listed
    /// container labels); panics if more than one matches.
    pub fn value(&self, metric: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let mut found = self.0.iter().filter(|s| {
            s.name == metric
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        });
        let first = found.next()?;
        assert!(
            found.next().is_none(),
            "more than one {metric} series with {labels:?}"
        );
        Some(first.value)
    }

    /// Container names that have `metric`.
    pub fn names(&self, metric: &str) -> Vec<String> {
        let mut v: Vec<String> = self
            .0
            .iter()
            .filter(|s| s.name == metric)
            .filter_map(|s| s.labels.get("name").cloned())
            .collect();
        v.sort();
        v.dedup();
        v
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    while let Some((key, after)) = rest.split_once("=\"") {
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = after.len();
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => {}
                },
                '"' => {
                    end = i + 1;
                    break;
                }
                c => value.push(c),
            }
        }
        out.insert(key.trim_start_matches(',').to_string(), value);
        rest = &after[end..];
    }
    out
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("dse-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        Self(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// This process's resident set size in KiB.
pub fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Lints exposition text with `promtool check metrics`; panics with its
/// complaints.
pub fn promtool_check_metrics(text: &str) {
    use std::io::Write;
    use std::process::Stdio;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus; scripts/setup-engine.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "promtool check metrics:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A scrape timeout for engines in the emulated VM, whose answers take
/// seconds while other tests load it (Podman's first `/version` and `/info`
/// took 4 s there idle): the tests are about values, not timeouts.
pub const SLOW_ENGINE: &str = "timeout = \"60s\"";

/// The sockets of the emulated VM's engines (scripts/cgroup2-vm.sh).
pub const VM_ENGINES: &str = "unix:///run/dse-vm/";

/// Config text that selects exactly these container names, after `extra`
/// top-level keys.
pub fn names_config<S: AsRef<str>>(names: &[S], extra: &str) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|n| format!("\"{}\"", n.as_ref()))
        .collect();
    format!("{extra}\n[containers]\nnames = [{}]\n", list.join(", "))
}
