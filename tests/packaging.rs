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
//! The image is built once per test process with the locally made base images
//! (`DSE_RUST_IMAGE`/`DSE_RUNTIME_IMAGE` override them, e.g. with the public
//! ones) and vendored crates, so no registry is needed. Every container and
//! Compose project is named after its test and removed when the test ends.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::http::{Answer, Get};
use common::wait_until;

const IMAGE_TAG: &str = "docker-stats-exporter:packaging-test";
const LOCAL_RUST_IMAGE: &str = "dse-local/rust:bookworm";
const LOCAL_RUNTIME_IMAGE: &str = "dse-local/static:nonroot";
const MAX_IMAGE_BYTES: u64 = 25_000_000;
const SOCKET: &str = "/var/run/docker.sock";

// ---------------------------------------------------------------------------
// Helpers

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Finds an executable on PATH (or takes a path as given); panics with an
/// install hint when it is missing.
fn require_tool(name: &str, hint: &str) -> PathBuf {
    let candidate = Path::new(name);
    if candidate.components().count() > 1 {
        if candidate.is_file() {
            return candidate.to_path_buf();
        }
    } else if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("required tool `{name}` not found: {hint}");
}

fn docker_bin() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER") {
        return require_tool(&d.to_string_lossy(), "DOCKER names a missing program");
    }
    if Path::new("/usr/bin/docker").is_file() {
        return PathBuf::from("/usr/bin/docker");
    }
    require_tool(
        "docker",
        "install a Docker engine and client (scripts/setup-engine.sh on Debian)",
    )
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

/// The Compose command: `DSE_COMPOSE` (e.g. "docker compose"), else docker-compose.
fn compose() -> Command {
    let spec = std::env::var("DSE_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let mut words = spec.split_whitespace();
    let program = words.next().unwrap_or("docker-compose");
    let program = if program == "docker" {
        docker_bin()
    } else {
        require_tool(
            program,
            "install Docker Compose (Debian: apt-get install docker-compose) or set DSE_COMPOSE",
        )
    };
    let mut cmd = Command::new(program);
    cmd.args(words);
    cmd.current_dir(root());
    cmd.env("DOCKER_HOST", format!("unix://{SOCKET}"));
    cmd
}

fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion; panics with its output when it fails.
fn run(cmd: &mut Command) -> Output {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{what}`: {e}"));
    if !out.status.success() {
        panic!(
            "`{what}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 60),
            tail(&String::from_utf8_lossy(&out.stderr), 60)
        );
    }
    out
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).trim().to_string()
}

fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}

fn engine_up() {
    let out = docker()
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", docker_bin().display()));
    assert!(
        out.status.success(),
        "no Docker engine answers ({}); start one with scripts/setup-engine.sh",
        String::from_utf8_lossy(&out.stderr).trim()
    );
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
}

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        let _ = docker().args(["rm", "-f", "-v", &self.name]).output();
    }
}

/// Takes a Compose project down (containers, networks, volumes) when dropped.
struct ComposeGuard {
    project: String,
    env: Vec<(String, String)>,
}

impl ComposeGuard {
    fn new(test: &str, env: Vec<(String, String)>) -> Self {
        let g = ComposeGuard {
            project: format!(
                "dsepkg{}{}",
                test.replace(['_', '-'], ""),
                std::process::id()
            ),
            env,
        };
        let _ = g.cmd(&["down", "-v", "--remove-orphans"]).output();
        g
    }

    fn cmd(&self, args: &[&str]) -> Command {
        let mut c = compose();
        c.args(["-f", "compose.yaml", "-p", &self.project])
            .args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }
}

impl Drop for ComposeGuard {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "-v", "--remove-orphans"]).output();
    }
}

/// A cross-process lock (a directory), so that test runners that use one
/// process per test (cargo-nextest) do not build the image twice at once.
struct BuildLock {
    dir: PathBuf,
}

impl BuildLock {
    fn acquire() -> Self {
        let dir = root().join("target").join("packaging-build.lock");
        std::fs::create_dir_all(root().join("target")).expect("create target/");
        let deadline = Instant::now() + Duration::from_secs(30 * 60);
        loop {
            match std::fs::create_dir(&dir) {
                Ok(()) => {
                    let _ = std::fs::write(dir.join("pid"), std::process::id().to_string());
                    return BuildLock { dir };
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    // A lock whose owner is gone is stale.
                    let owner = std::fs::read_to_string(dir.join("pid")).unwrap_or_default();
                    let alive = owner
                        .trim()
                        .parse::<u32>()
                        .map(|p| Path::new(&format!("/proc/{p}")).exists())
                        .unwrap_or(true);
                    if !alive {
                        let _ = std::fs::remove_dir_all(&dir);
                        continue;
                    }
                    assert!(
                        Instant::now() < deadline,
                        "waited 30 min for {} (remove it if no build runs)",
                        dir.display()
                    );
                    std::thread::sleep(Duration::from_secs(1));
                }
                Err(e) => panic!("cannot create {}: {e}", dir.display()),
            }
        }
    }
}

impl Drop for BuildLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Builds the image from the real Dockerfile once per process; returns its tag.
fn image() -> &'static str {
    static BUILT: OnceLock<Result<(), String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        std::panic::catch_unwind(build_image).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "image build panicked".into())
        })
    });
    if let Err(e) = result {
        panic!("the image could not be built: {e}");
    }
    IMAGE_TAG
}

fn build_image() {
    engine_up();
    let _lock = BuildLock::acquire();
    let (rust_image, runtime_image) = match (
        std::env::var("DSE_RUST_IMAGE"),
        std::env::var("DSE_RUNTIME_IMAGE"),
    ) {
        (Ok(r), Ok(t)) => (r, t),
        _ => {
            let t = Instant::now();
            run(Command::new("bash")
                .arg(root().join("scripts/make-base-images.sh"))
                .env("DOCKER", docker_bin())
                .env("DOCKER_HOST", format!("unix://{SOCKET}")));
            eprintln!("packaging: base images ready in {:.1?}", t.elapsed());
            (
                LOCAL_RUST_IMAGE.to_string(),
                LOCAL_RUNTIME_IMAGE.to_string(),
            )
        }
    };

    // Vendored crates make the build inside the container offline; redone only
    // when Cargo.lock changes.
    let vendor = root().join("target/docker-vendor");
    let stamp = root().join("target/docker-vendor.stamp");
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("read Cargo.lock");
    if !vendor.is_dir() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo)
            .current_dir(root())
            .args([
                "vendor",
                "--locked",
                "--versioned-dirs",
                "target/docker-vendor",
            ])
            .stdout(Stdio::null()));
        std::fs::write(&stamp, &lock).expect("write vendor stamp");
    }

    let t = Instant::now();
    let log_path = root().join("target/packaging-docker-build.log");
    let log = std::fs::File::create(&log_path).expect("create build log");
    let status = docker()
        .current_dir(root())
        .args(["build", "--pull=false", "--force-rm", "-t", IMAGE_TAG])
        .arg("--build-arg")
        .arg(format!("RUST_IMAGE={rust_image}"))
        .arg("--build-arg")
        .arg(format!("RUNTIME_IMAGE={runtime_image}"))
        .arg(".")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .status()
        .expect("run docker build");
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "docker build failed ({status}); full log in {}:\n{}",
        log_path.display(),
        tail(&text, 60)
    );
    eprintln!("packaging: docker build took {:.1?}", t.elapsed());
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
fn prometheus_config_is_valid() {
    run(promtool().current_dir(root()).args([
        "check",
        "config",
        "deploy/prometheus/prometheus.yml",
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
            .arg("deploy/grafana/dashboards/docker-stats.json"),
    );
    assert!(
        out.contains("expressions parse"),
        "unexpected output: {out}"
    );
}

#[test]
fn compose_file_is_valid() {
    run(compose().args(["-f", "compose.yaml", "config", "-q"]));
    let config = stdout_of(compose().args(["-f", "compose.yaml", "config"]));
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
}

/// Every container_*/docker_* name used by the alerts and the dashboard is a
/// metric the exporter's source defines.
#[test]
fn deploy_files_use_only_exported_metric_names() {
    let mut source = String::new();
    for entry in std::fs::read_dir(root().join("src")).expect("read src/") {
        let path = entry.expect("dir entry").path();
        if path.extension().is_some_and(|e| e == "rs") {
            source.push_str(&std::fs::read_to_string(&path).expect("read source"));
        }
    }
    let mut missing = Vec::new();
    for file in [
        "deploy/prometheus/alerts.yml",
        "deploy/grafana/dashboards/docker-stats.json",
    ] {
        let text = std::fs::read_to_string(root().join(file)).expect("read deploy file");
        for name in metric_names(&text) {
            if !source.contains(&format!("\"{name}\"")) {
                missing.push(format!("{file}: {name}"));
            }
        }
    }
    missing.sort();
    missing.dedup();
    assert!(
        missing.is_empty(),
        "metric names not defined in src/:\n{}",
        missing.join("\n")
    );
}

fn metric_names(text: &str) -> Vec<String> {
    let mut names = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let rest = &text[i..];
        let boundary = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if boundary && (rest.starts_with("container_") || rest.starts_with("docker_")) {
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
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        !has_interp(&elf),
        "/docker-stats-exporter is dynamically linked (has PT_INTERP)"
    );
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
    run(docker().args([
        "run",
        "-d",
        "--name",
        &guard.name,
        "-p",
        "127.0.0.1::8091",
        "-v",
        &format!("{SOCKET}:{SOCKET}:ro"),
        "--group-add",
        &gid,
        "--read-only",
        "--cap-drop",
        "ALL",
        "--security-opt",
        "no-new-privileges:true",
        "--health-interval",
        "1s",
        "--health-start-period",
        "1s",
        image,
    ]));
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
    run(docker().args([
        "run",
        "-d",
        "--name",
        &guard.name,
        "-p",
        "127.0.0.1::8091",
        "-v",
        &format!("{SOCKET}:{SOCKET}:ro"),
        "--read-only",
        "--cap-drop",
        "ALL",
        image,
    ]));
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
    let project = ComposeGuard::new(
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
    let logs = || {
        project
            .cmd(&["logs", "--tail", "50"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    };
    let name = inspect(id, "{{.Name}}");
    let body = wait_for_engine_up(
        &addr,
        &format!("/metrics?name={}", name.trim_start_matches('/')),
        "compose stats-exporter",
        logs,
    );
    assert!(
        body.lines()
            .any(|l| l == "docker_stats_containers_selected 1"),
        "the exporter should see its own container:\n{}",
        tail(&body, 20)
    );
}
