//! End-to-end benchmark against the real engine.
//!
//! ```text
//! cargo run --release --example bench -- --containers 10,100,300 [--rounds 7] [--gap-secs 3]
//! ```
//!
//! For each N it starts N idle busybox containers (`dse-bench-<i>`, label
//! `dse.bench=1`), runs the release exporter as a subprocess and alternates,
//! `--rounds` times, a RAW round (the bench itself lists the containers and
//! sends every one-shot stats call straight to the engine socket, all at once,
//! one connection each: the engine's own limit) with one exporter scrape
//! (`GET /metrics` over 127.0.0.1, body fully read).
//!
//! By default the exporter talks to the engine through a counting pass-through
//! proxy (a unix socket served by this program), so requests per scrape can be
//! reported. The proxy adds one hop to the exporter's path only. `--no-proxy`
//! points the exporter straight at the engine socket and counts requests in a
//! separate short proxied pass afterwards.
//!
//! Other flags: `--idle-secs S` (default 10), `--no-build` (use the existing
//! `target/release/docker-stats-exporter` instead of running `cargo build
//! --release` first), `--max-concurrency K` and `--timeout D` (written into the
//! exporter's config; by default the exporter's own defaults apply),
//! `--image IMAGE` (default `dse-test/busybox:latest`).
//!
//! `--engine unix:///path.sock` benchmarks another engine (e.g. the Docker 26.1
//! engine of `scripts/private-engine.sh start docker26 26.1`, or the cgroup v2
//! VM's of `scripts/cgroup2-vm.sh start NAME`); the default is
//! /var/run/docker.sock. Needs /usr/bin/docker, or the CLI `--docker` names
//! (`/usr/local/bin/docker` for an engine that refuses API 1.41 clients).
//! Containers named `dse-bench-*` are removed at start, at the end, on Ctrl-C
//! and on panic; with `--keep-containers` they are reused from a run before
//! and left running, for an engine slow to start them (one in a VM under
//! emulation starts 100 in about ten minutes).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use http_body_util::{BodyExt, Empty};
use hyper::body::{Bytes, Incoming};
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};

/// The docker CLI: /usr/bin/docker unless `--docker` names another (one that
/// speaks API 1.44 for an engine that refuses older clients, as Engine 29).
static DOCKER: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn docker_bin() -> &'static str {
    DOCKER.get().map_or("/usr/bin/docker", String::as_str)
}
/// The engine's socket: /var/run/docker.sock unless `--engine` names another.
static ENGINE_SOCK: std::sync::OnceLock<String> = std::sync::OnceLock::new();

fn engine_sock() -> &'static str {
    ENGINE_SOCK
        .get()
        .map_or("/var/run/docker.sock", String::as_str)
}

/// The docker CLI, talking to the bench's engine.
fn docker_cmd() -> Command {
    let mut cmd = Command::new(docker_bin());
    cmd.args(["-H", &format!("unix://{}", engine_sock())]);
    cmd
}
const LABEL: &str = "dse.bench=1";
const PREFIX: &str = "dse-bench-";
/// `{"label":["dse.bench=1"]}`, URL-encoded.
const LIST_FILTER: &str = "%7B%22label%22%3A%5B%22dse.bench%3D1%22%5D%7D";

/// Pid of the running exporter, for the panic hook (0: none).
static EXPORTER_PID: AtomicU32 = AtomicU32::new(0);

// ---------------------------------------------------------------- arguments

#[derive(Debug, Clone)]
struct Args {
    containers: Vec<usize>,
    rounds: usize,
    gap: Duration,
    idle: Duration,
    no_proxy: bool,
    no_build: bool,
    max_concurrency: Option<usize>,
    timeout: Option<String>,
    image: String,
    engine: Option<String>,
    keep_containers: bool,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut a = Args {
        containers: vec![10, 100, 300],
        rounds: 7,
        gap: Duration::from_secs(3),
        idle: Duration::from_secs(10),
        no_proxy: false,
        no_build: false,
        max_concurrency: None,
        timeout: None,
        image: "dse-test/busybox:latest".into(),
        engine: None,
        keep_containers: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let (key, inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || -> anyhow::Result<String> {
            inline
                .clone()
                .or_else(|| it.next())
                .ok_or_else(|| anyhow!("{key} needs a value"))
        };
        match key.as_str() {
            "--containers" => {
                a.containers = value()?
                    .split(',')
                    .map(|s| s.trim().parse::<usize>())
                    .collect::<Result<_, _>>()
                    .context("--containers: comma-separated counts, e.g. 10,100,300")?;
                if a.containers.contains(&0) {
                    bail!("--containers: counts must be at least 1");
                }
            }
            "--rounds" => a.rounds = value()?.parse().context("--rounds")?,
            "--gap-secs" => {
                a.gap = Duration::from_secs_f64(value()?.parse().context("--gap-secs")?)
            }
            "--idle-secs" => {
                a.idle = Duration::from_secs_f64(value()?.parse().context("--idle-secs")?)
            }
            "--no-proxy" => a.no_proxy = true,
            "--no-build" => a.no_build = true,
            "--keep-containers" => a.keep_containers = true,
            "--max-concurrency" => {
                a.max_concurrency = Some(value()?.parse().context("--max-concurrency")?)
            }
            "--timeout" => a.timeout = Some(value()?),
            "--image" => a.image = value()?,
            "--engine" => {
                let url = value()?;
                let Some(path) = url.strip_prefix("unix://") else {
                    bail!("--engine: a unix:// socket URL, got {url:?}");
                };
                a.engine = Some(path.to_string());
            }
            "--docker" => {
                let path = value()?;
                let _ = DOCKER.set(path);
            }
            "-h" | "--help" => {
                println!(
                    "usage: bench [--containers 10,100,300] [--rounds 7] [--gap-secs 3] \
                     [--idle-secs 10] [--no-proxy] [--no-build] [--max-concurrency K] \
                     [--timeout 10s] [--image IMAGE] [--engine unix:///path.sock] \
                     [--keep-containers] [--docker /usr/local/bin/docker]"
                );
                std::process::exit(0);
            }
            other => bail!("unknown argument {other:?} (try --help)"),
        }
    }
    if a.rounds == 0 {
        bail!("--rounds must be at least 1");
    }
    Ok(a)
}

// ---------------------------------------------------------------- docker CLI

fn docker(args: &[&str]) -> anyhow::Result<String> {
    let out = docker_cmd()
        .args(args)
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", docker_bin()))?;
    if !out.status.success() {
        bail!(
            "docker {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Names of every `dse-bench-*` container, running or not.
fn bench_containers() -> anyhow::Result<Vec<String>> {
    let out = docker(&[
        "ps",
        "-a",
        "--filter",
        &format!("name={PREFIX}"),
        "--format",
        "{{.Names}}",
    ])?;
    Ok(out
        .lines()
        .map(str::trim)
        .filter(|n| n.starts_with(PREFIX))
        .map(String::from)
        .collect())
}

fn remove_containers(names: &[String]) -> anyhow::Result<()> {
    // The CLI removes the containers it is given in parallel. Small chunks:
    // removing a hundred bridge-networked containers at once once left
    // Docker 20.10's libnetwork deadlocked here (rm -f never returned).
    for chunk in names.chunks(25) {
        let mut args = vec!["rm", "-f"];
        args.extend(chunk.iter().map(String::as_str));
        let mut child = docker_cmd()
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot run {}", docker_bin()))?;
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            if let Some(status) = child.try_wait()? {
                if !status.success() {
                    bail!("docker rm -f failed for {}", chunk.join(" "));
                }
                break;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "docker rm -f did not return within 120 s (engine stuck?); left: {}",
                    chunk.join(" ")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

fn remove_all_bench_containers() {
    match bench_containers() {
        Ok(names) if names.is_empty() => {}
        Ok(names) => {
            eprintln!("bench: removing {} {PREFIX}* containers", names.len());
            if let Err(e) = remove_containers(&names) {
                eprintln!("bench: cleanup failed: {e:#}");
            }
        }
        Err(e) => eprintln!("bench: cannot list {PREFIX}* containers: {e:#}"),
    }
}

/// Removes every bench container when dropped (end of run, error, Ctrl-C).
struct ContainerGuard;

impl Drop for ContainerGuard {
    fn drop(&mut self) {
        remove_all_bench_containers();
    }
}

/// Makes exactly `dse-bench-0 .. dse-bench-{n-1}` exist and run.
fn ensure_containers(n: usize, image: &str) -> anyhow::Result<Duration> {
    let started = Instant::now();
    let existing: BTreeSet<String> = bench_containers()?.into_iter().collect();
    let wanted: BTreeSet<String> = (0..n).map(|i| format!("{PREFIX}{i}")).collect();
    let extra: Vec<String> = existing.difference(&wanted).cloned().collect();
    if !extra.is_empty() {
        remove_containers(&extra)?;
    }
    // Kept containers of an engine that restarted since (a VM rebooted) are
    // there but stopped.
    let stopped: Vec<String> = existing
        .intersection(&wanted)
        .filter(|name| {
            docker(&["inspect", "--format", "{{.State.Running}}", name])
                .is_ok_and(|r| r.trim() == "false")
        })
        .cloned()
        .collect();
    if !stopped.is_empty() {
        eprintln!("bench: starting {} stopped containers", stopped.len());
        let mut args = vec!["start"];
        args.extend(stopped.iter().map(String::as_str));
        docker(&args).context("starting stopped bench containers")?;
    }
    let missing: Vec<String> = wanted.difference(&existing).cloned().collect();
    if !missing.is_empty() {
        eprintln!("bench: starting {} containers", missing.len());
        let next = AtomicUsize::new(0);
        let failures = std::sync::Mutex::new(Vec::new());
        // A few CLI processes at once; the engine serialises much of the work
        // anyway, and more would only fight over the two cores.
        std::thread::scope(|s| {
            for _ in 0..8 {
                s.spawn(|| loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(name) = missing.get(i) else { break };
                    let r = docker(&[
                        "run", "-d", "--name", name, "--label", LABEL, image, "sleep", "3600",
                    ]);
                    if let Err(e) = r {
                        failures.lock().unwrap_or_else(|p| p.into_inner()).push(e);
                    }
                });
            }
        });
        let failures = failures.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = failures.into_iter().next() {
            return Err(e.context("starting bench containers"));
        }
    }
    let running = docker(&[
        "ps",
        "-q",
        "--filter",
        &format!("label={LABEL}"),
        "--filter",
        "status=running",
    ])?
    .lines()
    .count();
    if running != n {
        bail!("expected {n} running bench containers, the engine lists {running}");
    }
    Ok(started.elapsed())
}

// ---------------------------------------------------------------- HTTP client

async fn get<S>(stream: S, path: &str) -> anyhow::Result<(StatusCode, Bytes)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let req = Request::get(path)
        .header("host", "localhost")
        .body(Empty::<Bytes>::new())?;
    let res = sender.send_request(req).await?;
    let status = res.status();
    let body = res.into_body().collect().await?.to_bytes();
    Ok((status, body))
}

async fn get_unix(socket: &str, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::UnixStream::connect(socket)
        .await
        .with_context(|| format!("connect {socket}"))?;
    get(stream, path).await
}

async fn get_tcp(addr: SocketAddr, path: &str) -> anyhow::Result<(StatusCode, Bytes)> {
    let stream = tokio::net::TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    get(stream, path).await
}

/// One RAW round: the list call, then every container's one-shot stats call
/// at once, each on its own connection, bodies fully read.
async fn raw_round() -> anyhow::Result<(Duration, usize)> {
    let started = Instant::now();
    let (status, body) = get_unix(
        engine_sock(),
        &format!("/containers/json?filters={LIST_FILTER}"),
    )
    .await?;
    if status != StatusCode::OK {
        bail!("list call answered {status}");
    }
    let list: Vec<serde_json::Value> = serde_json::from_slice(&body).context("list body")?;
    let ids: Vec<String> = list
        .iter()
        .filter_map(|c| c.get("Id").and_then(|v| v.as_str()).map(String::from))
        .collect();
    let mut calls = tokio::task::JoinSet::new();
    for id in &ids {
        let path = format!("/containers/{id}/stats?stream=false&one-shot=true");
        calls.spawn(async move { get_unix(engine_sock(), &path).await });
    }
    while let Some(done) = calls.join_next().await {
        let (status, body) = done??;
        if status != StatusCode::OK || body.is_empty() {
            bail!("stats call answered {status} with {} bytes", body.len());
        }
    }
    Ok((started.elapsed(), ids.len()))
}

/// What one exporter scrape returned.
struct Scrape {
    wall: Duration,
    containers: usize,
    collect_seconds: Option<f64>,
    timeouts: Option<f64>,
    bytes: usize,
}

async fn scrape(addr: SocketAddr) -> anyhow::Result<Scrape> {
    let started = Instant::now();
    let (status, body) = get_tcp(addr, "/metrics").await?;
    let wall = started.elapsed();
    if status != StatusCode::OK {
        bail!("/metrics answered {status}");
    }
    let text = String::from_utf8_lossy(&body);
    let value = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Ok(Scrape {
        wall,
        containers: text
            .lines()
            .filter(|l| l.starts_with("container_memory_usage_bytes{"))
            .count(),
        collect_seconds: value("docker_stats_scrape_duration_seconds "),
        timeouts: value("docker_stats_scrape_errors_total{kind=\"timeout\"}"),
        bytes: body.len(),
    })
}

// ---------------------------------------------------------------- counting proxy

#[derive(Default)]
struct Counts {
    total: AtomicU64,
    list: AtomicU64,
    stats: AtomicU64,
    inspect: AtomicU64,
}

impl Counts {
    fn total(&self) -> u64 {
        self.total.load(Ordering::SeqCst)
    }

    /// (list, stats, inspect, other) so far.
    fn kinds(&self) -> [u64; 4] {
        let [t, l, s, i] =
            [&self.total, &self.list, &self.stats, &self.inspect].map(|c| c.load(Ordering::SeqCst));
        [l, s, i, t - l - s - i]
    }
}

/// A unix socket that forwards every request to the engine socket, each on
/// a fresh engine connection, and counts them.
struct Proxy {
    socket: PathBuf,
    counts: Arc<Counts>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    fn start(socket: &Path) -> anyhow::Result<Self> {
        let _ = std::fs::remove_file(socket);
        let listener = tokio::net::UnixListener::bind(socket)
            .with_context(|| format!("bind {}", socket.display()))?;
        let counts = Arc::new(Counts::default());
        let c = counts.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let c = c.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: Request<Incoming>| {
                        let c = c.clone();
                        async move {
                            c.total.fetch_add(1, Ordering::SeqCst);
                            let path = req.uri().path();
                            if path.ends_with("/containers/json") {
                                c.list.fetch_add(1, Ordering::SeqCst);
                            } else if path.ends_with("/stats") {
                                c.stats.fetch_add(1, Ordering::SeqCst);
                            } else if path.contains("/containers/") && path.ends_with("/json") {
                                c.inspect.fetch_add(1, Ordering::SeqCst);
                            }
                            forward(req).await
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok(Self {
            socket: socket.to_path_buf(),
            counts,
            task,
        })
    }

    fn url(&self) -> String {
        format!("unix://{}", self.socket.display())
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
        let _ = std::fs::remove_file(&self.socket);
    }
}

async fn forward(req: Request<Incoming>) -> Result<Response<Incoming>, std::io::Error> {
    let stream = tokio::net::UnixStream::connect(engine_sock()).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(std::io::Error::other)?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    sender
        .send_request(req)
        .await
        .map_err(std::io::Error::other)
}

// ---------------------------------------------------------------- exporter process

struct Exporter {
    child: Child,
    addr: SocketAddr,
    log: PathBuf,
}

impl Exporter {
    async fn start(bin: &Path, dir: &Path, docker_host: &str, args: &Args) -> anyhow::Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let config = dir.join("bench.toml");
        let mut text = String::new();
        if let Some(k) = args.max_concurrency {
            writeln!(text, "max_concurrency = {k}")?;
        }
        if let Some(t) = &args.timeout {
            writeln!(text, "timeout = {t:?}")?;
        }
        writeln!(text, "[containers]\nlabels = [{LABEL:?}]")?;
        std::fs::write(&config, text)?;
        let log = dir.join(format!("exporter-{port}.log"));
        let child = Command::new(bin)
            .arg("--config")
            .arg(&config)
            .args(["--listen", &addr.to_string(), "--docker-host", docker_host])
            .args(["--log-level", "warn"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log)?)
            .spawn()
            .with_context(|| format!("cannot start {}", bin.display()))?;
        EXPORTER_PID.store(child.id(), Ordering::SeqCst);
        let mut me = Self { child, addr, log };
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Ok((StatusCode::OK, _)) = get_tcp(addr, "/healthz").await {
                break;
            }
            if let Some(status) = me.child.try_wait()? {
                bail!("exporter exited with {status}: {}", me.log_tail());
            }
            if Instant::now() > deadline {
                bail!("exporter did not answer /healthz within 15 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(me)
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }

    fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(5)..].join("\n")
    }

    fn warnings(&self) -> usize {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .count()
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        EXPORTER_PID.store(0, Ordering::SeqCst);
    }
}

/// utime + stime of `pid`, in clock ticks.
fn cpu_ticks(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the parenthesised command name; utime and stime are the
    // 14th and 15th fields of the whole line.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("odd /proc/{pid}/stat"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    Ok(f[11].parse::<u64>()? + f[12].parse::<u64>()?)
}

/// A `kB` field of /proc/<pid>/status (`VmHWM`, `VmRSS`) or a plain one
/// (`Threads`).
fn status_field(pid: u32, key: &str) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .ok_or_else(|| anyhow!("no {key} in /proc/{pid}/status"))
}

// ---------------------------------------------------------------- statistics

fn median(v: &[f64]) -> f64 {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    }
}

fn min(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::INFINITY, f64::min)
}

fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NEG_INFINITY, f64::max)
}

fn list(v: &[f64]) -> String {
    v.iter()
        .map(|x| format!("{x:.3}"))
        .collect::<Vec<_>>()
        .join(" ")
}

// ---------------------------------------------------------------- one N

struct Row {
    n: usize,
    raw: Vec<f64>,
    exp: Vec<f64>,
    collect: Vec<f64>,
    warmup: Vec<f64>,
    hwm_kib: u64,
    rss_kib: u64,
    threads: u64,
    cpu_ms_per_scrape: f64,
    req_per_scrape: Option<f64>,
    idle_cpu_ms: f64,
    idle_requests: Option<u64>,
    /// list, stats, inspect, other requests over the measured scrapes.
    kinds: Option<[u64; 4]>,
    incomplete: usize,
    timeouts: f64,
    body_kib: f64,
    warnings: usize,
    /// 1-minute load average before and after the measured rounds.
    load: (String, String),
}

struct Env {
    bin: PathBuf,
    /// The commit the exporter was built from, and whether src/ differed.
    revision: String,
    dir: PathBuf,
    tick_ms: f64,
}

async fn run_n(n: usize, args: &Args, env: &Env) -> anyhow::Result<Row> {
    let took = tokio::task::block_in_place(|| ensure_containers(n, &args.image))?;
    eprintln!(
        "bench: N={n}: {n} containers running ({:.1} s)",
        took.as_secs_f64()
    );
    // Let the engine settle after the container starts.
    tokio::time::sleep(args.gap).await;

    let proxy = Proxy::start(&env.dir.join("engine.sock"))?;
    let host = if args.no_proxy {
        format!("unix://{}", engine_sock())
    } else {
        proxy.url()
    };
    let exporter = Exporter::start(&env.bin, &env.dir, &host, args).await?;
    let pid = exporter.pid();

    // Warm-up: the first scrape makes the two-tick calls, the second is
    // already one-shot for every container.
    let mut warmup = Vec::new();
    let mut timeouts0 = 0.0;
    for i in 0..2 {
        if i > 0 {
            tokio::time::sleep(args.gap).await;
        }
        let s = scrape(exporter.addr).await?;
        eprintln!(
            "bench: N={n}: warm-up scrape {} {:.3} s, {} containers",
            i + 1,
            s.wall.as_secs_f64(),
            s.containers
        );
        warmup.push(s.wall.as_secs_f64());
        timeouts0 = s.timeouts.unwrap_or(0.0);
    }
    tokio::time::sleep(args.gap).await;

    let load_before = load1();
    let cpu0 = cpu_ticks(pid)?;
    let req0 = proxy.counts.total();
    let kinds0 = proxy.counts.kinds();
    let (mut raw, mut exp, mut collect) = (Vec::new(), Vec::new(), Vec::new());
    let mut incomplete = 0;
    let mut last_timeouts = timeouts0;
    let mut body_bytes = 0;
    for r in 0..args.rounds {
        let (t, listed) = raw_round().await?;
        if listed != n {
            bail!("raw round listed {listed} containers, expected {n}");
        }
        raw.push(t.as_secs_f64());
        tokio::time::sleep(args.gap).await;
        let s = scrape(exporter.addr).await?;
        exp.push(s.wall.as_secs_f64());
        if let Some(c) = s.collect_seconds {
            collect.push(c);
        }
        if s.containers != n {
            incomplete += 1;
        }
        if let Some(t) = s.timeouts {
            last_timeouts = t;
        }
        body_bytes = s.bytes;
        eprintln!(
            "bench: N={n}: round {}: raw {:.3} s, exporter {:.3} s ({} containers)",
            r + 1,
            t.as_secs_f64(),
            s.wall.as_secs_f64(),
            s.containers
        );
        if r + 1 < args.rounds {
            tokio::time::sleep(args.gap).await;
        }
    }
    let cpu1 = cpu_ticks(pid)?;
    let req1 = proxy.counts.total();
    let kinds1 = proxy.counts.kinds();
    let load_after = load1();
    let scrapes = args.rounds as f64;

    eprintln!("bench: N={n}: idle {} s", args.idle.as_secs_f64());
    tokio::time::sleep(args.idle).await;
    let cpu2 = cpu_ticks(pid)?;
    let req2 = proxy.counts.total();

    let hwm_kib = status_field(pid, "VmHWM")?;
    let rss_kib = status_field(pid, "VmRSS")?;
    let threads = status_field(pid, "Threads")?;
    let warnings = exporter.warnings();
    drop(exporter);

    let (req_per_scrape, idle_requests) = if args.no_proxy {
        (
            proxied_requests_per_scrape(n, args, env, &proxy).await.ok(),
            None,
        )
    } else {
        (Some((req1 - req0) as f64 / scrapes), Some(req2 - req1))
    };
    drop(proxy);

    Ok(Row {
        n,
        raw,
        exp,
        collect,
        warmup,
        hwm_kib,
        rss_kib,
        threads,
        cpu_ms_per_scrape: (cpu1 - cpu0) as f64 * env.tick_ms / scrapes,
        req_per_scrape,
        idle_cpu_ms: (cpu2 - cpu1) as f64 * env.tick_ms,
        idle_requests,
        kinds: (!args.no_proxy).then(|| [0, 1, 2, 3].map(|i| kinds1[i] - kinds0[i])),
        incomplete,
        timeouts: last_timeouts - timeouts0,
        body_kib: body_bytes as f64 / 1024.0,
        warnings,
        load: (load_before, load_after),
    })
}

/// With `--no-proxy`: a short separate pass through the proxy (two warm-up
/// scrapes, then two counted ones) to count engine requests per scrape.
async fn proxied_requests_per_scrape(
    n: usize,
    args: &Args,
    env: &Env,
    proxy: &Proxy,
) -> anyhow::Result<f64> {
    let exporter = Exporter::start(&env.bin, &env.dir, &proxy.url(), args).await?;
    for _ in 0..2 {
        scrape(exporter.addr).await?;
        tokio::time::sleep(args.gap).await;
    }
    let before = proxy.counts.total();
    for i in 0..2 {
        if i > 0 {
            tokio::time::sleep(args.gap).await;
        }
        scrape(exporter.addr).await?;
    }
    let per = (proxy.counts.total() - before) as f64 / 2.0;
    eprintln!("bench: N={n}: separate proxied pass: {per} engine requests per scrape");
    Ok(per)
}

// ---------------------------------------------------------------- machine

/// The 1-minute load average.
fn load1() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(String::from))
        .unwrap_or_else(|| "?".into())
}

fn cmd(program: &str, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

fn machine_line() -> String {
    let nproc = cmd("nproc", &[]);
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "?".into());
    let host = format!("unix://{}", engine_sock());
    // The engine's own machine may be another (a VM): its kernel, cgroups
    // and CPUs as it reports them.
    let engine = cmd(
        docker_bin(),
        &[
            "-H",
            &host,
            "info",
            "--format",
            "on {{.OperatingSystem}}, kernel {{.KernelVersion}}, \
             cgroup v{{.CgroupVersion}} ({{.CgroupDriver}} driver), {{.NCPU}} CPUs",
        ],
    );
    let version = cmd(
        docker_bin(),
        &[
            "-H",
            &host,
            "version",
            "--format",
            "{{.Server.Version}} (API {{.Server.APIVersion}})",
        ],
    );
    let kernel = cmd("uname", &["-r"]);
    let mem = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.split_whitespace().next()?.parse::<u64>().ok())
        })
        .map(|kib| format!("{:.1} GiB", kib as f64 / 1024.0 / 1024.0))
        .unwrap_or_else(|| "?".into());
    format!(
        "Machine: {nproc} CPUs ({model}), {mem} RAM, kernel {kernel}; \
         Docker Engine {version} {engine}"
    )
}

// ---------------------------------------------------------------- build

fn build_exporter(manifest: &Path) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    for attempt in 1..=3 {
        eprintln!("bench: cargo build --release --bin docker-stats-exporter");
        let status = Command::new(&cargo)
            .args(["build", "--release", "--bin", "docker-stats-exporter"])
            .current_dir(manifest)
            .status()
            .context("cannot run cargo")?;
        if status.success() {
            return Ok(());
        }
        if attempt < 3 {
            eprintln!("bench: build failed; retrying in 60 s");
            std::thread::sleep(Duration::from_secs(60));
        }
    }
    bail!("cargo build --release failed three times")
}

// ---------------------------------------------------------------- main

fn print_report(rows: &[Row], args: &Args, env: &Env, machine: &str, load: &str) {
    let mut out = String::new();
    let sock = engine_sock();
    let path = if args.no_proxy {
        format!(
            "exporter connected straight to {sock} (--no-proxy); engine requests \
             per scrape come from a separate short proxied pass"
        )
    } else {
        format!(
            "exporter connected through the bench's counting proxy (one extra unix-socket hop \
             on the exporter's path only; RAW rounds go straight to {sock})"
        )
    };
    let _ = writeln!(out, "\n{machine}");
    let _ = writeln!(
        out,
        "Load average at start: {load}; at end: {}",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    let _ = writeln!(out, "Exporter: {}", env.revision);
    let _ = writeln!(
        out,
        "Rounds: {} per N, {:.1} s apart; {path}.",
        args.rounds,
        args.gap.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "CPU time from /proc/<pid>/stat utime+stime at {:.0} ms per clock tick (getconf CLK_TCK).",
        env.tick_ms
    );
    let _ = writeln!(
        out,
        "\n| N | raw median s | exporter median s | ratio | peak RSS MiB | CPU ms/scrape | engine req/scrape |"
    );
    let _ = writeln!(out, "|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let (rm, em) = (median(&r.raw), median(&r.exp));
        let _ = writeln!(
            out,
            "| {} | {:.3} | {:.3} | {:.2} | {:.1} | {:.1} | {} |",
            r.n,
            rm,
            em,
            em / rm,
            r.hwm_kib as f64 / 1024.0,
            r.cpu_ms_per_scrape,
            r.req_per_scrape
                .map_or_else(|| "n/a".to_string(), |v| format!("{v:.1}")),
        );
    }
    let _ = writeln!(
        out,
        "\n| N | raw min–max s | exporter min–max s | exporter's own collect median s | warm-up scrapes s | RSS after MiB | threads | idle CPU ms | idle engine req | engine req list/stats/inspect/other | incomplete scrapes | timeouts | body KiB | log lines | load 1m before/after |"
    );
    let _ = writeln!(
        out,
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "| {} | {:.3}–{:.3} | {:.3}–{:.3} | {} | {} | {:.1} | {} | {:.0} | {} | {} | {} | {:.0} | {:.0} | {} | {}/{} |",
            r.n,
            min(&r.raw),
            max(&r.raw),
            min(&r.exp),
            max(&r.exp),
            if r.collect.is_empty() {
                "n/a".to_string()
            } else {
                format!("{:.3}", median(&r.collect))
            },
            list(&r.warmup),
            r.rss_kib as f64 / 1024.0,
            r.threads,
            r.idle_cpu_ms,
            r.idle_requests
                .map_or_else(|| "n/a".to_string(), |v| v.to_string()),
            r.kinds.map_or_else(
                || "n/a".to_string(),
                |k| format!("{}/{}/{}/{}", k[0], k[1], k[2], k[3])
            ),
            r.incomplete,
            r.timeouts,
            r.body_kib,
            r.warnings,
            r.load.0,
            r.load.1,
        );
    }
    let _ = writeln!(out, "\nPer-round wall times (s):");
    for r in rows {
        let _ = writeln!(out, "- N={} raw: {}", r.n, list(&r.raw));
        let _ = writeln!(out, "- N={} exporter: {}", r.n, list(&r.exp));
    }
    print!("{out}");
}

async fn run(args: Args) -> anyhow::Result<()> {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| manifest.join("target"));
    let bin = target.join("release/docker-stats-exporter");
    if args.no_build {
        if !bin.exists() {
            bail!("{} is missing; run cargo build --release", bin.display());
        }
    } else {
        tokio::task::block_in_place(|| build_exporter(&manifest))?;
    }

    docker(&["version", "--format", "{{.Server.Version}}"])
        .context("no engine answers at /var/run/docker.sock (see scripts/setup-engine.sh)")?;
    if docker(&["image", "inspect", &args.image]).is_err() {
        let status = Command::new("bash")
            .arg(manifest.join("scripts/setup-engine.sh"))
            .status()?;
        if !status.success() {
            bail!(
                "scripts/setup-engine.sh failed and {} is missing",
                args.image
            );
        }
    }

    let tick_ms = cmd("getconf", &["CLK_TCK"])
        .parse::<f64>()
        .map(|hz| 1000.0 / hz)
        .unwrap_or(10.0);
    let dir = std::env::temp_dir().join(format!("dse-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let rev = cmd(
        "git",
        &[
            "-C",
            &manifest.to_string_lossy(),
            "rev-parse",
            "--short",
            "HEAD",
        ],
    );
    let dirty = !cmd(
        "git",
        &[
            "-C",
            &manifest.to_string_lossy(),
            "status",
            "--porcelain",
            "--",
            "src",
        ],
    )
    .is_empty();
    let revision = if args.no_build {
        format!(
            "{} (--no-build: not rebuilt; the working tree is now at commit {rev}{})",
            bin.display(),
            if dirty {
                " plus uncommitted changes in src/"
            } else {
                ""
            }
        )
    } else {
        format!(
            "{} built from commit {rev}{}",
            bin.display(),
            if dirty {
                " plus uncommitted changes in src/"
            } else {
                ""
            }
        )
    };
    let env = Env {
        bin,
        revision,
        dir,
        tick_ms,
    };
    let machine = machine_line();
    let load = std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .trim()
        .to_string();
    let others = docker(&["ps", "--format", "{{.Names}}"])?
        .lines()
        .filter(|n| !n.starts_with(PREFIX))
        .count();
    eprintln!("bench: {machine}");
    eprintln!("bench: load average {load}; {others} other running containers");

    let _guard = (!args.keep_containers).then(|| {
        remove_all_bench_containers();
        ContainerGuard
    });

    let mut rows = Vec::new();
    for &n in &args.containers {
        rows.push(run_n(n, &args, &env).await?);
    }
    print_report(&rows, &args, &env, &machine, &load);
    let _ = std::fs::remove_dir_all(&env.dir);
    Ok(())
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    if let Some(path) = &args.engine {
        let _ = ENGINE_SOCK.set(path.clone());
    }
    // A panic may end the bench before destructors run: clean up here.
    let default_hook = std::panic::take_hook();
    let keep = args.keep_containers;
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        let pid = EXPORTER_PID.load(Ordering::SeqCst);
        if pid != 0 {
            let _ = Command::new("kill").arg(pid.to_string()).status();
        }
        if !keep {
            remove_all_bench_containers();
        }
    }));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        tokio::select! {
            r = run(args) => r,
            _ = tokio::signal::ctrl_c() => {
                // Dropping `run` drops its guards: exporter killed, containers removed.
                eprintln!("bench: interrupted; cleaning up");
                Ok(())
            }
        }
    })
}
