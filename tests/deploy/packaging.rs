//! Packaging checks: Prometheus rules and their unit tests, the Grafana
//! dashboard's expressions, the compose file, and the container image built
//! from the real Dockerfile (size, user, static binary, health check, scraping
//! it with the Docker socket mounted read-only, and under Compose).
//!
//! Needs: promtool, python3, docker-compose (or `DSE_COMPOSE="docker compose"`),
//! this machine's Docker engine at /var/run/docker.sock (the image mounts that
//! socket; client: `$DOCKER`, else /usr/bin/docker, else `docker`), and for
//! the base images debootstrap and root (see
//! scripts/make-base-images.sh). `scripts/setup-engine.sh` prepares a Debian
//! machine. A missing tool fails the test that needs it, with what to install.
//!
//! The image is built once per test process with the locally made builder
//! base image (`DSE_RUST_IMAGE` overrides it, e.g. with the public one; the
//! runtime stage is `FROM scratch`) and vendored crates, so no registry is
//! needed. Its tag carries a hash of this checkout's path, so that two
//! checkouts testing on one engine do not overwrite each other's image. Every
//! container and Compose project is named after its test and removed when the
//! test ends.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::cmd::{docker_bin, require_tool, run, stdout_of, tail};
use common::compose::Project;
use common::exporter_image::{checkout_tag, exporter_image, TEST_TAG};
use common::http::{Answer, Get};
use common::wait_until;

/// The ceiling from docs/image-size.md: a dependency or a base that makes
/// the image grow past it fails here.
const MAX_IMAGE_BYTES: u64 = 7_000_000;
const SOCKET: &str = "/var/run/docker.sock";
const DASHBOARDS: [&str; 2] = [
    "deploy/grafana/dashboards/docker-stats.json",
    "deploy/grafana/dashboards/docker-containers.json",
];
const ALERTS: &str = "deploy/prometheus/alerts.yml";
/// node_exporter's metrics the dashboards use; tests/dashboards/main.rs shows each
/// returns data from a real node_exporter.
const NODE_EXPORTER_METRICS: &[&str] = &[
    "node_cpu_seconds_total",
    "node_disk_read_bytes_total",
    "node_disk_written_bytes_total",
    "node_filesystem_avail_bytes",
    "node_filesystem_size_bytes",
    "node_load1",
    "node_load15",
    "node_load5",
    "node_memory_MemAvailable_bytes",
    "node_memory_MemTotal_bytes",
];

// ---------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The client, on this machine's engine whatever `DOCKER_HOST` says: the
/// image is built there and mounts its socket.
fn docker() -> Command {
    let mut cmd = Command::new(docker_bin());
    cmd.args(["-H", &format!("unix://{SOCKET}")]);
    cmd
}

fn promtool() -> Command {
    let name = std::env::var("PROMTOOL").unwrap_or_else(|_| "promtool".into());
    Command::new(require_tool(
        &name,
        "install Prometheus' promtool (Debian: apt-get install prometheus)",
    ))
}

/// Compose on this machine's engine.
fn compose() -> Command {
    common::compose::compose(&format!("unix://{SOCKET}"))
}

/// A Compose project on this machine's engine.
fn project(test: &str, env: Vec<(String, String)>) -> Project {
    Project::new(test, &format!("unix://{SOCKET}"), env)
}

fn socket_gid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(SOCKET)
        .unwrap_or_else(|e| panic!("{SOCKET}: {e}; these tests need the engine's socket there"))
        .gid()
}

/// `GET path` (with `Accept: accept` if given) from a published address.
fn http_get(addr: &str, path: &str, accept: Option<&str>) -> Result<Answer, String> {
    let addr: SocketAddr = addr.parse().map_err(|e| format!("{addr}: {e}"))?;
    let mut req = Get::new(addr, path).timeout(Duration::from_secs(30));
    if let Some(accept) = accept {
        req = req.header("Accept", accept);
    }
    req.send_blocking()
}

/// Polls `path` (/metrics, possibly with a `?name=` selection so that a busy
/// engine does not slow the test down) until `docker_up 1` appears; returns
/// that exposition.
fn wait_for_engine_up(addr: &str, path: &str, what: &str, logs: impl Fn() -> String) -> String {
    let awaited = format!("{what}: `docker_up 1` on http://{addr}{path}");
    wait_until(&awaited, Duration::from_secs(60), || {
        let last = match http_get(addr, path, None) {
            Ok(a) if a.status == 200 && a.body.lines().any(|l| l == "docker_up 1") => {
                return Ok(a.body)
            }
            Ok(a) => format!("HTTP {}: {}", a.status, tail(&a.body, 40)),
            Err(e) => format!("error: {e}"),
        };
        Err(format!("{last}\nLogs:\n{}", tail(&logs(), 40)))
    })
}

/// The loopback address docker published for `port` of `container`.
fn published(container: &str, port: &str) -> String {
    let out = stdout_of(docker().args(["port", container, port]));
    out.lines()
        .find(|l| l.starts_with("127.0.0.1:"))
        .unwrap_or_else(|| panic!("{port} not published on 127.0.0.1: {out}"))
        .to_string()
}

/// Removes a container (and its anonymous volumes) when dropped.
struct ContainerGuard {
    name: String,
}

impl ContainerGuard {
    fn new(test: &str) -> Self {
        // The process id keeps two concurrent runs of this file apart.
        let name = format!("dse-pkg-{test}-{}", std::process::id()).replace('_', "-");
        let _ = docker().args(["rm", "-f", "-v", &name]).output();
        ContainerGuard { name }
    }

    fn logs(&self) -> String {
        docker()
            .args(["logs", "--tail", "50", &self.name])
            .output()
            .map(|o| {
                format!(
                    "{}{}",
                    String::from_utf8_lossy(&o.stdout),
                    String::from_utf8_lossy(&o.stderr)
                )
            })
            .unwrap_or_default()
    }

    /// The host address of the container's published 8091.
    fn published(&self) -> String {
        published(&self.name, "8091/tcp")
    }

    /// Starts `image` under this name as deploy/ documents it: read-only
    /// root and socket, no capabilities, 8091 published on 127.0.0.1; `extra`
    /// goes before the image.
    fn run_read_only(&self, image: &str, extra: &[&str]) {
        let socket = format!("{SOCKET}:{SOCKET}:ro");
        let mut args = vec!["run", "-d", "--name", &self.name, "-p", "127.0.0.1::8091"];
        args.extend(["-v", &socket, "--read-only", "--cap-drop", "ALL"]);
        args.extend(extra);
        args.push(image);
        run(docker().args(args));
    }
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", "-v", &self.name]).output();
    }
}

/// The image built from the real Dockerfile (once per process); its tag.
fn image() -> &'static str {
    &exporter_image(&checkout_tag(TEST_TAG)).tag
}

fn inspect(object: &str, format: &str) -> String {
    stdout_of(docker().args(["inspect", "--format", format, object]))
}

// ---------------------------------------------------------------------------
// Fast checks: rules, dashboard, compose file

#[test]
fn alert_rules_are_valid() {
    run(promtool()
        .current_dir(root())
        .args(["check", "rules", "deploy/prometheus/alerts.yml"]));
}

#[test]
fn alert_rule_unit_tests_pass() {
    run(promtool().current_dir(root()).args([
        "test",
        "rules",
        "deploy/prometheus/alerts.test.yml",
    ]));
}

#[test]
fn prometheus_configs_are_valid() {
    for file in [
        "deploy/prometheus/prometheus.yml",
        "deploy/prometheus/engines.yml",
    ] {
        run(promtool()
            .current_dir(root())
            .args(["check", "config", file]));
    }
    // Its rule file comes in as a Swarm config next to it at run time.
    run(promtool().current_dir(root()).args([
        "check",
        "config",
        "--syntax-only",
        "deploy/swarm/prometheus.yml",
    ]));
}

#[test]
fn dashboard_expressions_parse() {
    let python = require_tool("python3", "install Python 3 (standard library only)");
    // The script finds promtool itself; fail here first with the same hint.
    let _promtool = promtool();
    let out = stdout_of(
        Command::new(python)
            .current_dir(root())
            .arg("deploy/check-dashboard.py")
            .args(DASHBOARDS),
    );
    for dashboard in DASHBOARDS {
        assert!(
            out.lines()
                .any(|l| l.starts_with(dashboard) && l.ends_with("expressions parse")),
            "{dashboard} not checked: {out}"
        );
    }
}

#[test]
fn compose_file_is_valid() {
    run(compose().args(["-f", "compose.yaml", "config", "-q"]));
    // Empty values count as unset: the defaults, whatever .env holds.
    let config = stdout_of(
        compose()
            .args(["-f", "compose.yaml", "config"])
            .env("DOCKER_GID", "")
            .env("DSE_USER", ""),
    );
    for needle in [
        "/var/run/docker.sock:/var/run/docker.sock:ro",
        "read_only: true",
        "no-new-privileges:true",
        "group_add:",
        "8091",
        "profiles:",
        "unless-stopped",
    ] {
        assert!(
            config.contains(needle),
            "`compose config` lacks {needle:?}:\n{config}"
        );
    }
    // Docker Desktop's socket group and the image's own user by default.
    let lines: Vec<&str> = config.lines().map(str::trim).collect();
    let group = lines
        .iter()
        .position(|l| *l == "group_add:")
        .and_then(|i| lines.get(i + 1))
        .map(|l| l.trim_start_matches("- ").trim_matches(['\'', '"']));
    assert_eq!(group, Some("0"), "default group_add:\n{config}");
    assert!(
        lines
            .iter()
            .any(|l| l.trim_start_matches("user: ").trim_matches(['\'', '"']) == "65532:65532"),
        "default user:\n{config}"
    );
    // The monitoring profile: node_exporter beside Prometheus and Grafana,
    // under the name deploy/prometheus/prometheus.yml scrapes.
    let monitoring =
        stdout_of(compose().args(["-f", "compose.yaml", "--profile", "monitoring", "config"]));
    let scrape = std::fs::read_to_string(root().join("deploy/prometheus/prometheus.yml"))
        .expect("read prometheus.yml");
    for service in ["prometheus", "grafana", "node-exporter"] {
        assert!(
            monitoring.contains(&format!("\n  {service}:\n")),
            "the monitoring profile lacks {service}:\n{monitoring}"
        );
    }
    assert!(
        scrape.contains("\"node-exporter:9100\""),
        "prometheus.yml does not scrape node-exporter:9100"
    );
}

/// Every container_*/docker_*/machine_* name in the expressions of the
/// alerts and the dashboards is a metric the exporter's source defines, every
/// container_label_* one of the labels exported by default, and every node_*
/// one of node_exporter's that the dashboards are known to use.
#[test]
fn deploy_files_use_only_exported_metric_names() {
    // Every source file, in the stages' folders too.
    fn read_sources(dir: &Path, source: &mut String) {
        for entry in std::fs::read_dir(dir).expect("read a folder of src/") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                read_sources(&path, source);
            } else if path.extension().is_some_and(|e| e == "rs") {
                source.push_str(&std::fs::read_to_string(&path).expect("read source"));
            }
        }
    }
    let mut source = String::new();
    read_sources(&root().join("src"), &mut source);
    let labels: Vec<String> = docker_stats_exporter::config::DEFAULT_LABELS
        .iter()
        .map(|k| docker_stats_exporter::config::label_name(k))
        .collect();
    let mut missing = Vec::new();
    let files = DASHBOARDS
        .iter()
        .map(|d| (*d, dashboard_expressions(d)))
        .chain([(ALERTS, alert_expressions(ALERTS))]);
    for (file, exprs) in files {
        assert!(!exprs.is_empty(), "{file}: no expressions found");
        for name in exprs.iter().flat_map(|e| metric_names(e)) {
            let known = if name.starts_with("container_label_") {
                labels.contains(&name)
            } else if name.starts_with("node_") {
                NODE_EXPORTER_METRICS.contains(&name.as_str())
            } else {
                source.contains(&format!("\"{name}\""))
            };
            if !known {
                missing.push(format!("{file}: {name}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "names neither defined in src/ nor among the known node_exporter metrics:\n{}",
        missing.join("\n")
    );
}

/// The panel targets' expressions and the template variables' queries.
fn dashboard_expressions(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).expect("read dashboard");
    let dashboard: serde_json::Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    let mut exprs = Vec::new();
    let mut panels: Vec<&serde_json::Value> = dashboard["panels"]
        .as_array()
        .into_iter()
        .flatten()
        .collect();
    while let Some(panel) = panels.pop() {
        panels.extend(panel["panels"].as_array().into_iter().flatten());
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.extend(target["expr"].as_str().map(str::to_string));
        }
    }
    for var in dashboard["templating"]["list"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if var["type"] == "query" {
            exprs.extend(
                var["query"]["query"]
                    .as_str()
                    .or(var["query"].as_str())
                    .map(str::to_string),
            );
        }
    }
    exprs
}

/// The rules' expressions.
fn alert_expressions(file: &str) -> Vec<String> {
    let text = std::fs::read_to_string(root().join(file)).expect("read rules");
    let rules: serde_norway::Value =
        serde_norway::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
    rules["groups"]
        .as_sequence()
        .into_iter()
        .flatten()
        .flat_map(|g| g["rules"].as_sequence().cloned().unwrap_or_default())
        .filter_map(|r| r["expr"].as_str().map(str::to_string))
        .collect()
}

fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary
            && ["container_", "docker_", "machine_", "node_"]
                .iter()
                .any(|p| rest.starts_with(p))
        {
            let len = rest
                .bytes()
                .take_while(|b| b.is_ascii_alphanumeric() || *b == b'_')
                .count();
            names.push(rest[..len].to_string());
            i += len;
        } else {
            i += 1;
        }
    }
    names
}

// ---------------------------------------------------------------------------
// The image

#[test]
fn image_is_small_static_and_non_root() {
    let image = image();

    let size: u64 = inspect(image, "{{.Size}}").parse().expect("image size");
    eprintln!("packaging: image size {size} bytes");
    assert!(
        size < MAX_IMAGE_BYTES,
        "image is {size} bytes, limit {MAX_IMAGE_BYTES}"
    );

    let user = inspect(image, "{{.Config.User}}");
    let uid = user.split(':').next().unwrap_or("");
    assert!(
        !uid.is_empty() && uid != "0" && uid != "root",
        "image must not run as root, Config.User = {user:?}"
    );

    let health = inspect(image, "{{json .Config.Healthcheck.Test}}");
    assert_eq!(
        health, r#"["CMD","/docker-stats-exporter","--healthcheck"]"#,
        "HEALTHCHECK must be exec form without a shell"
    );
    let ports = inspect(image, "{{json .Config.ExposedPorts}}");
    assert!(ports.contains("8091/tcp"), "EXPOSE 8091 missing: {ports}");

    // The binary must not need a program interpreter (dynamic loader).
    let guard = ContainerGuard::new("image_is_small_static_and_non_root");
    run(docker().args(["create", "--name", &guard.name, image]));
    let dir = std::env::temp_dir().join(format!("dse-pkg-bin-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let bin = dir.join("docker-stats-exporter");
    run(docker()
        .arg("cp")
        .arg(format!("{}:/docker-stats-exporter", guard.name))
        .arg(&bin));
    let elf = std::fs::read(&bin).expect("read binary");
    assert!(
        !has_interp(&elf),
        "/docker-stats-exporter is dynamically linked (has PT_INTERP)"
    );

    // `FROM scratch`: the binary, the user entries and two directories; no
    // shell, no CA bundle. Docker adds the rest to every container.
    let tar = dir.join("fs.tar");
    run(docker().args(["export", "-o"]).arg(&tar).arg(&guard.name));
    let listing = stdout_of(
        Command::new("tar")
            .args(["--numeric-owner", "-tvf"])
            .arg(&tar),
    );
    let _ = std::fs::remove_dir_all(&dir);
    let files = image_files(&listing);
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    assert_eq!(
        names,
        [
            "docker-stats-exporter",
            "etc/",
            "etc/group",
            "etc/nsswitch.conf",
            "etc/passwd",
            "home/",
            "home/nonroot/",
            "tmp/",
        ],
        "unexpected files in the image:\n{listing}"
    );
    let owner_of = |name: &str| {
        files
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, owner)| owner.as_str())
    };
    assert_eq!(owner_of("home/nonroot/"), Some("drwx------ 65532/65532"));
    assert_eq!(owner_of("tmp/").map(|o| &o[..10]), Some("drwxrwxrwt"));
}

/// (path, "mode uid/gid") of the entries of `tar -tv` output, without what
/// Docker adds to every container (.dockerenv, /dev, /proc, /sys, /etc/hosts,
/// /etc/hostname, /etc/resolv.conf, /etc/mtab), sorted by path.
fn image_files(listing: &str) -> Vec<(String, String)> {
    let engine_own = [
        ".dockerenv",
        "dev/",
        "proc/",
        "sys/",
        "etc/hosts",
        "etc/hostname",
        "etc/resolv.conf",
        "etc/mtab",
    ];
    let mut files: Vec<(String, String)> = listing
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let name = fields.get(5)?.trim_start_matches("./");
            let owner = format!("{} {}", fields.first()?, fields.get(1)?);
            Some((name.to_string(), owner))
        })
        .filter(|(name, _)| !name.is_empty() && !engine_own.iter().any(|e| name.starts_with(e)))
        .collect();
    files.sort();
    files
}

/// Whether an ELF64 little-endian file has a PT_INTERP program header.
fn has_interp(elf: &[u8]) -> bool {
    assert!(
        elf.len() > 64 && &elf[..4] == b"\x7fELF" && elf[4] == 2 && elf[5] == 1,
        "not an ELF64 little-endian file"
    );
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let mut off_bytes = [0u8; 8];
    off_bytes.copy_from_slice(&elf[0x20..0x28]);
    let phoff = u64::from_le_bytes(off_bytes) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        elf.get(o..o + 4) == Some(&3u32.to_le_bytes()[..]) // PT_INTERP
    })
}

#[test]
fn image_prints_version() {
    let image = image();
    let guard = ContainerGuard::new("image_prints_version");
    let out = stdout_of(docker().args([
        "run",
        "--name",
        &guard.name,
        "--network",
        "none",
        image,
        "--version",
    ]));
    assert!(
        out.starts_with("docker-stats-exporter "),
        "unexpected --version output: {out}"
    );
}

#[test]
fn image_serves_metrics_with_read_only_socket() {
    let image = image();
    let guard = ContainerGuard::new("image_serves_metrics_with_read_only_socket");
    let gid = socket_gid().to_string();
    guard.run_read_only(
        image,
        &[
            "--group-add",
            &gid,
            "--security-opt",
            "no-new-privileges:true",
            "--health-interval",
            "1s",
            "--health-start-period",
            "1s",
        ],
    );
    let addr = guard.published();
    let own = format!("/metrics?name={}", guard.name);
    let body = wait_for_engine_up(&addr, &own, &guard.name, || guard.logs());
    assert!(
        body.contains(&format!("name=\"{}\"", guard.name)),
        "the exporter's own container is missing from /metrics:\n{}",
        tail(&body, 30)
    );
    for series in [
        "container_cpu_usage_seconds_total{",
        "container_memory_usage_bytes{",
        "docker_stats_scrape_duration_seconds ",
    ] {
        assert!(body.contains(series), "/metrics lacks {series}");
    }

    let health = http_get(&addr, "/healthz", None).expect("GET /healthz");
    assert_eq!(health.status, 200, "/healthz");
    let ready = http_get(&addr, "/readyz", None).expect("GET /readyz");
    assert_eq!(ready.status, 200, "/readyz: {}", ready.body);
    let open = http_get(
        &addr,
        &own,
        Some("application/openmetrics-text;version=1.0.0,text/plain;version=0.0.4;q=0.5"),
    )
    .expect("GET /metrics (OpenMetrics)");
    assert_eq!(open.status, 200);
    let content_type = open.header("content-type").unwrap_or_default();
    assert!(
        content_type.starts_with("application/openmetrics-text"),
        "content type: {content_type}"
    );
    assert!(
        open.body.trim_end().ends_with("# EOF"),
        "OpenMetrics body must end with # EOF"
    );

    // Runs as the image's non-root user.
    let top = stdout_of(docker().args(["top", &guard.name, "-o", "pid,uid"]));
    let uids: Vec<&str> = top
        .lines()
        .skip(1)
        .filter_map(|l| l.split_whitespace().nth(1))
        .collect();
    assert!(
        !uids.is_empty() && uids.iter().all(|u| *u == "65532"),
        "processes must run as uid 65532, docker top says:\n{top}"
    );

    // The image's HEALTHCHECK (interval shortened above) reports healthy.
    wait_until("a healthy container", Duration::from_secs(60), || {
        let status = inspect(&guard.name, "{{.State.Health.Status}}");
        let checks = || inspect(&guard.name, "{{json .State.Health.Log}}");
        match status.as_str() {
            "healthy" => Ok(()),
            "unhealthy" => panic!("health status unhealthy; last checks: {}", checks()),
            _ => Err(format!(
                "health status {status:?}; last checks: {}",
                checks()
            )),
        }
    });
}

/// Without the socket's group the non-root exporter cannot read the socket:
/// it keeps serving and reports docker_up 0 (what docs/deployment.md says).
#[test]
fn image_reports_engine_down_without_socket_group() {
    let image = image();
    let guard = ContainerGuard::new("image_reports_engine_down_without_socket_group");
    if socket_gid() == 0 {
        panic!("{SOCKET} belongs to group 0; this test needs a socket group other than root's");
    }
    guard.run_read_only(image, &[]);
    let addr = guard.published();
    wait_until(
        "`docker_up 0` on /metrics",
        Duration::from_secs(30),
        || match http_get(&addr, "/metrics", None) {
            Ok(a) if a.status == 200 && a.body.lines().any(|l| l == "docker_up 0") => Ok(()),
            Ok(a) if a.status == 200 && a.body.lines().any(|l| l == "docker_up 1") => {
                panic!("docker_up 1 without the socket's group: is the image running as root?")
            }
            other => Err(format!("{other:?}\nlogs:\n{}", guard.logs())),
        },
    );
    let ready = http_get(&addr, "/readyz", None).expect("GET /readyz");
    assert_ne!(
        ready.status, 200,
        "/readyz must fail while the engine is unreachable"
    );
}

#[test]
fn image_healthcheck_fails_when_nothing_listens() {
    let image = image();
    let guard = ContainerGuard::new("image_healthcheck_fails_when_nothing_listens");
    let out = docker()
        .args([
            "run",
            "--name",
            &guard.name,
            "--network",
            "none",
            image,
            "--healthcheck",
            "--listen",
            "127.0.0.1:8091",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run docker");
    assert_eq!(
        out.status.code(),
        Some(1),
        "--healthcheck with nothing listening must exit 1; stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The documented config path: a file mounted at
/// /etc/docker-stats-exporter/config.toml and passed with --config.
#[test]
fn image_reads_mounted_config() {
    let image = image();
    let guard = ContainerGuard::new("image_reads_mounted_config");
    let dir = std::env::temp_dir().join(format!("dse-pkg-config-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let config = dir.join("config.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"0.0.0.0:9191\"\ntimeout = \"10s\"\n[containers]\nnames = [\"{}\"]\n",
            guard.name
        ),
    )
    .expect("write config");
    // World-readable for uid 65532.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let gid = socket_gid().to_string();
    let started = docker()
        .args([
            "run",
            "-d",
            "--name",
            &guard.name,
            "-p",
            "127.0.0.1::9191",
            "-v",
            &format!("{SOCKET}:{SOCKET}:ro"),
            "-v",
            &format!(
                "{}:/etc/docker-stats-exporter/config.toml:ro",
                config.display()
            ),
            "--group-add",
            &gid,
            "--read-only",
            image,
            "--config",
            "/etc/docker-stats-exporter/config.toml",
        ])
        .stdin(Stdio::null())
        .output()
        .expect("run docker");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        started.status.success(),
        "docker run: {}",
        String::from_utf8_lossy(&started.stderr)
    );
    let addr = published(&guard.name, "9191/tcp");
    let body = wait_for_engine_up(&addr, "/metrics", &guard.name, || guard.logs());
    assert!(
        body.lines()
            .any(|l| l == "docker_stats_containers_selected 1"),
        "the config's name selector should select exactly this container:\n{}",
        tail(&body, 20)
    );

    // The health check follows the configured address when given the same
    // flags, and fails on the default port where nothing listens.
    let check = |extra: &[&str]| {
        docker()
            .args([
                "exec",
                &guard.name,
                "/docker-stats-exporter",
                "--healthcheck",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .output()
            .expect("run docker exec")
            .status
            .code()
    };
    assert_eq!(
        check(&["--config", "/etc/docker-stats-exporter/config.toml"]),
        Some(0),
        "--healthcheck --config must check the configured port 9191"
    );
    assert_eq!(
        check(&[]),
        Some(1),
        "--healthcheck alone checks 8091, where nothing listens here"
    );
}

#[test]
fn compose_starts_only_the_exporter_by_default() {
    let image = image();
    let project = project(
        "compose_starts_only_the_exporter_by_default",
        vec![
            ("DSE_IMAGE".into(), image.into()),
            // `127.0.0.1::8091`: docker picks a free loopback port.
            ("DSE_PORT".into(), "127.0.0.1:".into()),
            ("DOCKER_GID".into(), socket_gid().to_string()),
            ("DOCKER_SOCKET".into(), SOCKET.into()),
        ],
    );
    // Without a service name: the `monitoring` profile's services must not
    // start (they would need to be pulled, which fails without a registry).
    run(&mut project.cmd(&["up", "-d", "--no-build"]));
    run(&mut project.cmd(&["up", "-d", "--no-build", "stats-exporter"]));
    let ids = stdout_of(&mut project.cmd(&["ps", "-q"]));
    assert_eq!(
        ids.lines().filter(|l| !l.trim().is_empty()).count(),
        1,
        "only stats-exporter should run by default, got:\n{}",
        stdout_of(&mut project.cmd(&["ps"]))
    );
    let id = ids.trim();
    assert_eq!(inspect(id, "{{.HostConfig.ReadonlyRootfs}}"), "true");
    assert_eq!(inspect(id, "{{json .HostConfig.CapDrop}}"), r#"["ALL"]"#);
    let addr = published(id, "8091/tcp");
    let name = inspect(id, "{{.Name}}");
    let body = wait_for_engine_up(
        &addr,
        &format!("/metrics?name={}", name.trim_start_matches('/')),
        "compose stats-exporter",
        || project.logs(),
    );
    assert!(
        body.lines()
            .any(|l| l == "docker_stats_containers_selected 1"),
        "the exporter should see its own container:\n{}",
        tail(&body, 20)
    );
}

/// A unix socket that relays every connection to the engine's socket, with
/// the owner and mode of the test's choosing; stops when dropped.
struct SocketRelay {
    path: PathBuf,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SocketRelay {
    fn start(path: &Path) -> Self {
        use std::os::unix::net::{UnixListener, UnixStream};
        let _ = std::fs::remove_file(path);
        let listener = UnixListener::bind(path).expect("bind relay socket");
        listener.set_nonblocking(true).expect("nonblocking accept");
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            while !stopped.load(std::sync::atomic::Ordering::SeqCst) {
                let Ok((client, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                };
                let Ok(engine) = UnixStream::connect(SOCKET) else {
                    continue;
                };
                let _ = client.set_nonblocking(false);
                let pipe = |mut from: UnixStream, mut to: UnixStream| {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                };
                if let (Ok(c2), Ok(e2)) = (client.try_clone(), engine.try_clone()) {
                    pipe(client, engine);
                    pipe(e2, c2);
                }
            }
        });
        SocketRelay {
            path: path.to_path_buf(),
            stop,
            thread: Some(thread),
        }
    }

    fn set(&self, uid: u32, gid: u32, mode: u32) {
        use std::os::unix::fs::PermissionsExt;
        std::os::unix::fs::chown(&self.path, Some(uid), Some(gid)).expect("chown relay");
        std::fs::set_permissions(&self.path, std::fs::Permissions::from_mode(mode))
            .expect("chmod relay");
    }
}

impl Drop for SocketRelay {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Docker Desktop hands containers a root:root socket: mode 0660 in most
/// releases, which the default set-up (group 0) reads with nothing set; 0755
/// in 4.19 and 4.20, where only root may connect: the exporter says so, and
/// DSE_USER=0 is the fix. A relay to the real engine with that owner and mode
/// stands in for Desktop's socket.
#[test]
fn compose_defaults_work_with_docker_desktops_socket() {
    use std::os::unix::fs::PermissionsExt;
    let image = image();
    let dir = std::env::temp_dir().join(format!("dse-pkg-desktop-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("temp dir");
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let relay = SocketRelay::start(&dir.join("docker.sock"));
    relay.set(0, 0, 0o660);
    let env = |user: &str| {
        vec![
            ("DSE_IMAGE".into(), image.into()),
            // `127.0.0.1::8091`: docker picks a free loopback port.
            ("DSE_PORT".into(), "127.0.0.1:".into()),
            ("DOCKER_SOCKET".into(), relay.path.display().to_string()),
            // Empty is unset: the compose file's defaults apply.
            ("DOCKER_GID".into(), String::new()),
            ("DSE_USER".into(), user.to_string()),
        ]
    };
    let project = project("compose_defaults_work_with_docker_desktops_socket", env(""));
    run(&mut project.cmd(&["up", "-d", "--no-build", "stats-exporter"]));
    let id = stdout_of(&mut project.cmd(&["ps", "-q", "stats-exporter"]));
    let addr = published(id.trim(), "8091/tcp");
    let name = inspect(id.trim(), "{{.Name}}");
    let own = format!("/metrics?name={}", name.trim_start_matches('/'));
    wait_for_engine_up(&addr, &own, "root:root 0660 socket, defaults", || {
        project.logs()
    });
    assert_eq!(inspect(id.trim(), "{{.Config.User}}"), "65532:65532");

    // The 4.19/4.20 socket: group 0 is not enough, and the answer says so.
    relay.set(0, 0, 0o755);
    let answer = http_get(&addr, "/readyz", None).expect("GET /readyz");
    let body = answer.body;
    assert_eq!(answer.status, 503, "/readyz with a 0755 socket: {body}");
    assert!(
        body.contains("run as root (user: \"0\")") && body.contains("DSE_USER=0"),
        "/readyz should name the fix: {body}"
    );
    assert!(
        body.contains("is 0:0 mode 0755") && body.contains("(uid 65532, groups 65532, 0)"),
        "{body}"
    );

    let root = project.with_env(env("0"));
    run(&mut root.cmd(&["up", "-d", "--no-build", "stats-exporter"]));
    let id = stdout_of(&mut root.cmd(&["ps", "-q", "stats-exporter"]));
    assert_eq!(inspect(id.trim(), "{{.Config.User}}"), "0");
    let addr = published(id.trim(), "8091/tcp");
    wait_for_engine_up(&addr, &own, "root:root 0755 socket, DSE_USER=0", || {
        root.logs()
    });
    // Dropping `root` takes the project down; the relay goes after it.
    drop(root);
    drop(project);
    drop(relay);
    let _ = std::fs::remove_dir_all(&dir);
}
