//! Shared pieces of the integration tests: the real engine through the docker
//! CLI, an in-process exporter on port 0, and a small exposition parser.
#![allow(dead_code, clippy::unwrap_used)]

pub mod cmd;
pub mod engines;
pub mod exporter_image;
pub mod lock;
pub mod process;
pub mod proxy;
pub mod swarm;
pub mod veth;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use docker_stats_exporter::config::{Config, Overrides};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The docker client that matches the engine installed here.
pub const DOCKER: &str = "/usr/bin/docker";

/// The name of the busybox test image (scripts/busybox-rootfs.sh), which
/// every engine the tests use gets under this name.
pub fn image_name() -> String {
    std::env::var("DSE_TEST_IMAGE").unwrap_or_else(|_| "dse-test/busybox:latest".into())
}

/// The busybox image on the shared engine, made by the setup script if missing.
pub fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = image_name();
        let present = Command::new(DOCKER)
            .args(["image", "inspect", &image])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !present {
            let status = Command::new("bash")
                .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/setup-engine.sh"))
                .status()
                .expect("run scripts/setup-engine.sh");
            assert!(status.success(), "scripts/setup-engine.sh failed");
        }
        image
    })
}

/// Runs the docker CLI and returns stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    let out = Command::new(DOCKER)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}; run scripts/setup-engine.sh"));
    assert!(
        out.status.success(),
        "docker {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A container named after its test; removed when dropped.
pub struct Container {
    pub name: String,
    pub id: String,
}

impl Container {
    /// `docker run -d --name NAME [extra...] IMAGE cmd...`, after removing any
    /// leftover of the same name.
    pub fn run(name: &str, extra: &[&str], cmd: &[&str]) -> Self {
        let _ = Command::new(DOCKER).args(["rm", "-f", name]).output();
        let mut args = vec!["run", "-d", "--name", name, "--label", "dse.test=1"];
        args.extend_from_slice(extra);
        args.push(image());
        args.extend_from_slice(cmd);
        let id = docker(&args);
        Self {
            name: name.to_string(),
            id,
        }
    }

    /// A container that just sleeps.
    pub fn sleeper(name: &str, extra: &[&str]) -> Self {
        Self::run(name, extra, &["sleep", "3600"])
    }

    /// Removes it now.
    pub fn remove(&self) {
        let _ = Command::new(DOCKER).args(["rm", "-f", &self.name]).output();
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

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

    /// A validated config listening on 127.0.0.1:0.
    pub fn config(config: &str, docker_host: &str) -> Config {
        let overrides = Overrides {
            listen: Some("127.0.0.1:0".into()),
            docker_host: Some(docker_host.into()),
        };
        Config::parse("test", config, &overrides, None).expect("valid test config")
    }

    /// Starts one from a validated config.
    pub async fn with_config(config: Config) -> Self {
        let state = docker_stats_exporter::state(&config);
        let listener = tokio::net::TcpListener::bind(config.listen)
            .await
            .expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local addr");
        let app = docker_stats_exporter::app(state.clone());
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, state, task }
    }

    /// Starts one against the local engine.
    pub async fn local(config: &str) -> Self {
        Self::start(config, "unix:///var/run/docker.sock").await
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
}

impl Drop for Exporter {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A minimal HTTP/1.0 GET: status and body.
pub async fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> (u16, String) {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let mut req = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n");
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str("\r\n");
    stream.write_all(req.as_bytes()).await.expect("write");
    let mut raw = Vec::new();
    tokio::time::timeout(Duration::from_secs(60), stream.read_to_end(&mut raw))
        .await
        .expect("answer within 60 s")
        .expect("read");
    let text = String::from_utf8_lossy(&raw).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, body.to_string())
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

    /// The value of `metric` for container `name` (no other labels).
    pub fn get(&self, metric: &str, name: &str) -> Option<f64> {
        self.0
            .iter()
            .find(|s| s.name == metric && s.labels.get("name").map(String::as_str) == Some(name))
            .map(|s| s.value)
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

/// The cgroup v1 file of a container under a controller, e.g.
/// `cgroup_file(id, "memory", "memory.limit_in_bytes")`.
pub fn cgroup_file(id: &str, controller: &str, file: &str) -> u64 {
    let candidates = [
        format!("/sys/fs/cgroup/{controller}/docker/{id}/{file}"),
        format!("/sys/fs/cgroup/{controller}/system.slice/docker-{id}.scope/{file}"),
        format!("/sys/fs/cgroup/cpu,cpuacct/docker/{id}/{file}"),
        format!("/sys/fs/cgroup/{controller}/libpod_parent/libpod-{id}/{file}"),
        format!("/sys/fs/cgroup/{controller}/machine.slice/libpod-{id}.scope/{file}"),
    ];
    for path in &candidates {
        if let Ok(text) = std::fs::read_to_string(path) {
            return text.trim().parse().expect("cgroup number");
        }
    }
    panic!("no cgroup file {file} for {id} under {candidates:?}");
}

/// Host cores, as the engine counts them.
pub fn host_cpus() -> f64 {
    docker(&["info", "--format", "{{.NCPU}}"])
        .parse()
        .expect("NCPU")
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

/// The exporter binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_docker-stats-exporter");

/// A loopback port that was free a moment ago.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Runs the binary with `args`, which must fail; its stderr.
pub fn run_failing(args: &[&str]) -> String {
    let out = Command::new(BIN).args(args).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Config text that selects exactly these container names, after `extra`
/// top-level keys.
pub fn names_config<S: AsRef<str>>(names: &[S], extra: &str) -> String {
    let list: Vec<String> = names
        .iter()
        .map(|n| format!("\"{}\"", n.as_ref()))
        .collect();
    format!("{extra}\n[containers]\nnames = [{}]\n", list.join(", "))
}
