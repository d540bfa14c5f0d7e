//! The live view in a real browser (Debian's chromium, driven by
//! playwright-core from tests/http/browser/live.mjs) against the exporter and
//! real containers on the engine under test, reached through a pass-through
//! this test stops and starts. scripts/setup-browser.sh installs the browser
//! and node; under `CI=true` their absence fails, elsewhere it skips.

use crate::live_api::InProcess;
use crate::passthrough::Passthrough;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use common::http::query_escape;
use common::{engine_socket, unique, ChildServer, Container, Metrics, TempDir};
use docker_stats_exporter::engine::fake::{Behaviour, FakeEngine};
use docker_stats_exporter::engine::EngineApi;
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};

const BROWSER_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/http/browser");

fn chromium() -> String {
    std::env::var("DSE_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into())
}

/// Whether node, chromium and playwright-core are there. Under `CI=true` a
/// missing one fails the test instead.
pub(crate) fn browser_available() -> bool {
    let node = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    let missing: Vec<&str> = [
        (!node).then_some("node"),
        (!Path::new(&chromium()).exists()).then_some("chromium (/usr/bin/chromium)"),
        (!Path::new(BROWSER_DIR)
            .join("node_modules/playwright-core")
            .exists())
        .then_some("playwright-core (tests/http/browser/node_modules)"),
    ]
    .into_iter()
    .flatten()
    .collect();
    if missing.is_empty() {
        return true;
    }
    let message = format!(
        "browser tests need {}: run scripts/setup-browser.sh",
        missing.join(", ")
    );
    if std::env::var("CI").is_ok_and(|v| v == "true") {
        panic!("{message}");
    }
    eprintln!("skipped: {message}");
    false
}

/// Where a test's screenshot goes: the target directory, kept by CI.
fn screenshot_path(name: &str) -> PathBuf {
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let _ = std::fs::create_dir_all(&target);
    target.join(name)
}

/// One run of live.mjs: its steps, answered by the test.
pub(crate) struct Driver {
    child: Child,
    stdin: ChildStdin,
    lines: Lines<BufReader<ChildStdout>>,
    scenario: String,
    _profile: TempDir,
}

pub(crate) enum Event {
    Step(String, Value),
    Done(Value),
}

impl Driver {
    pub(crate) fn start(scenario: &str, url: &str, env: &[(&str, String)]) -> Self {
        let profile = TempDir::new(&format!("chromium-{scenario}"));
        let mut cmd = tokio::process::Command::new("node");
        cmd.arg(Path::new(BROWSER_DIR).join("live.mjs"))
            .arg(scenario)
            .env("DSE_URL", url)
            .env("DSE_CHROMIUM", chromium())
            .env("TMPDIR", &profile.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("cannot run node");
        let stdin = child.stdin.take().expect("stdin");
        let lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
        Self {
            child,
            stdin,
            lines,
            scenario: scenario.into(),
            _profile: profile,
        }
    }

    pub(crate) async fn next(&mut self) -> Event {
        loop {
            let line = tokio::time::timeout(Duration::from_secs(120), self.lines.next_line())
                .await
                .unwrap_or_else(|_| panic!("{}: no word from the browser in 120 s", self.scenario))
                .expect("read node's output");
            let Some(line) = line else {
                let status = self.child.wait().await;
                panic!("{}: node ended without DONE: {status:?}", self.scenario);
            };
            let (word, rest) = line.split_once(' ').unwrap_or((line.as_str(), ""));
            match word {
                "STEP" => {
                    let (name, data) = rest.split_once(' ').unwrap_or((rest, "{}"));
                    return Event::Step(
                        name.into(),
                        serde_json::from_str(data).expect("step JSON"),
                    );
                }
                "DONE" => return Event::Done(serde_json::from_str(rest).expect("done JSON")),
                "FAIL" => panic!("{} in the browser: {rest}", self.scenario),
                _ => eprintln!("node: {line}"),
            }
        }
    }

    pub(crate) async fn reply(&mut self, value: Value) {
        let line = format!("{value}\n");
        self.stdin.write_all(line.as_bytes()).await.expect("reply");
        self.stdin.flush().await.expect("reply");
    }

    /// A scenario that asks nothing of the test: its end, and node's exit.
    pub(crate) async fn run_to_end(mut self) {
        match self.next().await {
            Event::Done(_) => {}
            Event::Step(step, _) => panic!("{}: unexpected step {step}", self.scenario),
        }
        self.finish().await;
    }

    pub(crate) async fn finish(mut self) {
        let status = self.child.wait().await.expect("node exit");
        assert!(
            status.success(),
            "{}: node exited {status:?}",
            self.scenario
        );
    }
}

/// `docker run` of `cmd` with these labels and `extra` options.
fn labelled(name: &str, labels: &[String], extra: &[&str], cmd: &[&str]) -> Container {
    let mut args: Vec<&str> = extra.to_vec();
    for l in labels {
        args.push("--label");
        args.push(l.as_str());
    }
    Container::run(name, &args, cmd)
}

fn sleeper(name: &str, labels: &[String]) -> Container {
    labelled(name, labels, &[], &["sleep", "3600"])
}

/// What the page showed matches `/metrics` asked right after: memory within
/// a tolerance (a sleeper's working set hardly moves), image and restarts
/// exactly, and the page's own last answer says the same.
async fn compare_with_metrics(addr: std::net::SocketAddr, query: &str, data: &Value) {
    let (status, body) = common::get(addr, &format!("/metrics?{query}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    let rows = data["rows"].as_array().expect("rows");
    assert!(!rows.is_empty());
    for row in rows {
        let name = row["name"].as_str().expect("name");
        let shown = row["mem"].as_f64().expect("memory shown");
        let metric = m
            .get("container_memory_working_set_bytes", name)
            .unwrap_or_else(|| panic!("{name}: no working set in /metrics"));
        within(name, "working set", shown, metric);
        assert_eq!(
            Some(row["image"].as_str().expect("image").to_string()),
            m.label("container_memory_working_set_bytes", name, "image"),
            "{name}"
        );
        assert_eq!(
            row["restarts"].as_str().and_then(|r| r.parse::<f64>().ok()),
            m.get("container_restarts_total", name),
            "{name}"
        );
        let answered = data["answer"]["containers"]
            .as_array()
            .expect("containers")
            .iter()
            .find(|c| c["name"] == name)
            .expect("in the answer");
        // Block I/O is shown where the engine reports it, absent otherwise.
        let io_shown = row["io"].as_str().is_some_and(|t| t != "n/a");
        assert_eq!(
            io_shown,
            m.get("container_fs_reads_bytes_total", name).is_some(),
            "{name}: {row}"
        );
        assert_eq!(io_shown, answered.get("fs_read_bytes_total").is_some());
    }
}

/// A sleeper's memory between two readings: within 10 % or 512 KiB.
fn within(name: &str, what: &str, shown: f64, metric: f64) {
    let tolerance = (metric * 0.1).max(512.0 * 1024.0);
    assert!(
        (shown - metric).abs() <= tolerance,
        "{name}: {what} on the page {shown}, /metrics {metric}"
    );
}

/// The container's page against `/metrics` asked right after: the same
/// memory (within a sleeper's drift) and limit, PIDs and restarts exactly,
/// counters no later than the scrape's.
async fn compare_page_with_metrics(addr: std::net::SocketAddr, query: &str, data: &Value) {
    let name = data["name"].as_str().expect("name");
    let (status, body) = common::get(addr, &format!("/metrics?{query}"), &[]).await;
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    let fact = |key: &str| -> Option<f64> {
        data["facts"][key]["value"]
            .as_str()
            .and_then(|v| v.parse().ok())
    };
    let metric = |metric: &str| {
        m.get(metric, name)
            .unwrap_or_else(|| panic!("{name}: no {metric} in /metrics"))
    };
    within(
        name,
        "working set",
        fact("mem").expect("memory fact"),
        metric("container_memory_working_set_bytes"),
    );
    assert_eq!(
        fact("mem_limit"),
        Some(metric("container_spec_memory_limit_bytes")),
        "{name}: {data}"
    );
    assert_eq!(fact("pids"), Some(metric("container_pids")), "{name}");
    assert_eq!(
        fact("restarts"),
        Some(metric("container_restarts_total")),
        "{name}"
    );
    for (key, counter) in [
        ("cpu_seconds", "container_cpu_usage_seconds_total"),
        ("rx", "container_network_receive_bytes_total"),
    ] {
        let shown = fact(key).unwrap_or_else(|| panic!("{name}: no {key} on the page: {data}"));
        let later = metric(counter);
        assert!(
            shown <= later && shown > 0.0,
            "{name}: {key} on the page {shown}, /metrics later {later}"
        );
    }
    // The page shows its answer's values as they are.
    assert_eq!(
        fact("mem"),
        data["answer"]["memory_working_set_bytes"].as_f64(),
        "{data}"
    );
}

/// What `/readyz` says is wrong: the cause the page has to show too.
async fn readyz_cause(addr: std::net::SocketAddr) -> String {
    let (status, body) = common::get(addr, "/readyz", &[]).await;
    assert_eq!(status, 503, "{body}");
    let cause = body.trim().to_string();
    assert!(!cause.is_empty());
    cause
}

/// A container that exits with code 3 when `docker stop` asks it to.
fn quitter(name: &str, labels: &[String]) -> Container {
    let cmd = ["sh", "-c", "trap 'exit 3' TERM; while :; do sleep 1; done"];
    labelled(name, labels, &[], &cmd)
}

/// `docker stop`, then the exit code the engine recorded.
fn stop(c: &Container) -> i64 {
    common::docker(&["stop", &c.name]);
    c.wait_inspect("{{.State.Status}}", "exited");
    c.inspect("{{.State.ExitCode}}")
        .parse()
        .expect("an exit code")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_live_view_follows_the_engine_in_a_browser() {
    if !browser_available() {
        return;
    }
    let dir = TempDir::new("live-view");
    let pass = Passthrough::start(&dir.0.join("engine.sock"), Path::new(engine_socket()));
    let group = unique("live");
    let project = unique("shop");
    let label = format!("dse.live={group}");
    let compose = |service: &str| {
        vec![
            label.clone(),
            format!("com.docker.compose.project={project}"),
            format!("com.docker.compose.service={service}"),
        ]
    };
    // A memory limit, for the container page's memory against it.
    let web = labelled(
        &unique("dse-live-web"),
        &compose("web"),
        &["--memory", "64m"],
        &["sleep", "3600"],
    );
    let db = sleeper(&unique("dse-live-db"), &compose("db"));
    let tool = sleeper(
        &unique("dse-live-tool"),
        &[
            label.clone(),
            "com.docker.compose.service=<img src=x onerror=alert(1)>".into(),
        ],
    );
    let quits = quitter(&unique("dse-live-quits"), std::slice::from_ref(&label));
    let config = common::Exporter::config("", &pass.url());
    let state = docker_stats_exporter::state(&config);
    let exporter = InProcess::serve(state.clone()).await;
    let query = format!("label={}", query_escape(&label));
    let url = format!("http://{}/?{query}", exporter.addr);
    let names = [&web.name, &db.name, &tool.name, &quits.name];

    let mut driver = Driver::start(
        "live",
        &url,
        &[
            ("DSE_NAMES", json!(names).to_string()),
            ("DSE_PROJECT", project.clone()),
            ("DSE_IN_PROJECT", json!([&web.name, &db.name]).to_string()),
            (
                "DSE_SCREENSHOT",
                screenshot_path("live-view.png").display().to_string(),
            ),
        ],
    );
    let mut added = None;
    let result = loop {
        match driver.next().await {
            Event::Step(step, data) => {
                let reply = match step.as_str() {
                    "compare" => {
                        compare_with_metrics(exporter.addr, &query, &data).await;
                        json!({})
                    }
                    "detail" => {
                        compare_page_with_metrics(exporter.addr, &query, &data).await;
                        json!({})
                    }
                    "stop" => {
                        let code = tokio::task::block_in_place(|| stop(&quits));
                        json!({ "stopped": quits.name, "exit_code": code })
                    }
                    "add" => {
                        let c = sleeper(&unique("dse-live-late"), std::slice::from_ref(&label));
                        let reply = json!({ "added": c.name });
                        added = Some(c);
                        reply
                    }
                    "remove" => {
                        db.remove();
                        json!({ "removed": db.name })
                    }
                    "engine-down" => {
                        pass.stop();
                        json!({ "readyz": readyz_cause(exporter.addr).await })
                    }
                    "engine-up" => {
                        pass.resume();
                        json!({})
                    }
                    "hidden" => {
                        // An answer in flight when the page hid may land;
                        // after it, nothing reaches the engine for two periods.
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        let sent = pass.sent();
                        tokio::time::sleep(Duration::from_secs(11)).await;
                        assert_eq!(pass.sent(), sent, "the engine was asked for a hidden page");
                        json!({})
                    }
                    other => panic!("unknown step {other}"),
                };
                driver.reply(reply).await;
            }
            Event::Done(result) => break result,
        }
    };
    driver.finish().await;
    assert!(result["answers"].as_u64().unwrap_or(0) >= 4, "{result}");
    // The tab is closed: no round, no engine request.
    let sent = pass.sent();
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(pass.sent(), sent, "the engine was asked with no page open");
    assert_eq!(state.rounds().in_flight(), 0);
    drop(added);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_that_leaves_the_running_list_shows_how_it_ended() {
    if !browser_available() {
        return;
    }
    let quits = quitter(&unique("dse-live-vanish"), &[]);
    let config = common::Exporter::config("", common::engine_host());
    let exporter = InProcess::serve(docker_stats_exporter::state(&config)).await;
    let mut driver = Driver::start(
        "vanish",
        &format!("http://{}/", exporter.addr),
        &[("DSE_NAME", quits.name.clone())],
    );
    let mut code = None;
    loop {
        match driver.next().await {
            Event::Step(step, _) if step == "stop" => {
                let c = tokio::task::block_in_place(|| stop(&quits));
                code = Some(c);
                driver.reply(json!({ "exit_code": c })).await;
            }
            Event::Step(step, _) => panic!("unexpected step {step}"),
            Event::Done(result) => {
                assert_eq!(result["exitCode"].as_i64(), code, "{result}");
                break;
            }
        }
    }
    driver.finish().await;
    // The exporter says the same of it when asked by name.
    let (status, body) =
        common::get(exporter.addr, &format!("/metrics?name={}", quits.name), &[]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        Metrics::parse(&body).get("container_exit_code", &quits.name),
        code.map(|c| c as f64)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_typo_and_a_missing_socket_are_each_named() {
    if !browser_available() {
        return;
    }
    let dir = TempDir::new("live-errors");
    let missing = format!("unix://{}", dir.0.join("no-engine.sock").display());
    let config = common::Exporter::config("", &missing);
    let exporter = InProcess::serve(docker_stats_exporter::state(&config)).await;
    let readyz = readyz_cause(exporter.addr).await;
    let driver = Driver::start(
        "errors",
        &format!("http://{}/", exporter.addr),
        &[("DSE_READYZ", readyz)],
    );
    driver.run_to_end().await;
}

/// `count` sleepers with long names in seven Compose projects, as many as a
/// busy host has, started ten at a time.
fn crowd(count: usize, label: &str) -> Vec<Container> {
    let project = unique("a-compose-project-with-a-long-name");
    let indices: Vec<usize> = (0..count).collect();
    std::thread::scope(|s| {
        let started: Vec<_> = indices
            .chunks(10)
            .map(|chunk| {
                let project = &project;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|i| {
                            let labels = [
                                label.to_string(),
                                format!("com.docker.compose.project={project}-{}", i % 7),
                                "com.docker.compose.service=a-service-with-a-long-name".into(),
                            ];
                            let name = format!("dse-layout-{}-worker-replica-{i:03}", i % 7);
                            // No network: no veth for each, no interface
                            // churn for the browsers of the tests beside.
                            let cmd = ["sleep", "3600"];
                            labelled(&unique(&name), &labels, &["--network", "none"], &cmd)
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        started
            .into_iter()
            .flat_map(|h| h.join().expect("starting containers"))
            .collect()
    })
}

/// Removes them ten at a time.
fn remove_all(mut containers: Vec<Container>) {
    std::thread::scope(|s| {
        while !containers.is_empty() {
            let chunk: Vec<Container> = containers.drain(..containers.len().min(10)).collect();
            s.spawn(move || drop(chunk));
        }
    });
}

#[tokio::test(flavor = "multi_thread")]
async fn seventy_containers_fit_a_laptop_and_a_phone() {
    if !browser_available() {
        return;
    }
    let count = 70;
    let label = format!("dse.layout={}", unique("layout"));
    let containers = tokio::task::block_in_place(|| crowd(count, &label));
    let config = common::Exporter::config("", common::engine_host());
    let exporter = InProcess::serve(docker_stats_exporter::state(&config)).await;
    let driver = Driver::start(
        "layout",
        &format!("http://{}/?label={}", exporter.addr, query_escape(&label)),
        &[
            ("DSE_COUNT", count.to_string()),
            (
                "DSE_SCREENSHOT",
                screenshot_path("live-view-70.png").display().to_string(),
            ),
        ],
    );
    driver.run_to_end().await;
    tokio::task::block_in_place(|| remove_all(containers));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_stopped_switch_lists_every_stopped_container() {
    if !browser_available() {
        return;
    }
    let engine = FakeEngine::docker("26.1.5");
    engine.add("runs", 1_000_000);
    engine.add_with(
        "ended",
        "exited",
        0,
        Default::default(),
        Behaviour::default(),
    );
    let config = common::Exporter::config("", "unix:///run/fake-engine.sock");
    let fake: Arc<dyn EngineApi> = Arc::new(engine);
    let exporter = InProcess::serve(docker_stats_exporter::state_with_engine(&config, fake)).await;
    let driver = Driver::start(
        "stopped",
        &format!("http://{}/", exporter.addr),
        &[
            ("DSE_RUNNING", "runs".into()),
            ("DSE_EXITED", "ended".into()),
        ],
    );
    driver.run_to_end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hostile_container_name_is_shown_as_text() {
    if !browser_available() {
        return;
    }
    let hostile = "<img src=x onerror=alert(1)>";
    let project = "<img src=x onerror=\"window.dsePwned=1\">";
    let engine = FakeEngine::docker("26.1.5");
    let labels = [
        ("com.docker.compose.project", project),
        (
            "com.docker.compose.service",
            "<script>window.dsePwned=2</script>",
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    engine.add_with(hostile, "running", 1_000_000, labels, Behaviour::default());
    engine.add("plain", 1_000_000);
    let config = common::Exporter::config("", "unix:///run/fake-engine.sock");
    let fake: Arc<dyn EngineApi> = Arc::new(engine);
    let exporter = InProcess::serve(docker_stats_exporter::state_with_engine(&config, fake)).await;
    let driver = Driver::start(
        "hostile",
        &format!("http://{}/", exporter.addr),
        &[
            ("DSE_HOSTILE", hostile.into()),
            ("DSE_HOSTILE_PROJECT", project.into()),
        ],
    );
    driver.run_to_end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn behind_basic_auth_the_view_needs_the_credentials() {
    if !browser_available() {
        return;
    }
    let dir = TempDir::new("live-auth");
    let hash = bcrypt::hash("correct horse", 4).unwrap();
    let web = dir.0.join("web.yml");
    std::fs::write(&web, format!("basic_auth_users:\n  prometheus: '{hash}'\n")).unwrap();
    let web = web.display().to_string();
    let exporter = tokio::task::spawn_blocking(move || {
        ChildServer::exporter(&[
            "--docker-host",
            common::engine_host(),
            "--web.config.file",
            &web,
        ])
    })
    .await
    .unwrap();
    let url = format!(
        "http://{}/?name={}",
        exporter.addr,
        unique("dse-live-nobody")
    );
    let driver = Driver::start(
        "auth",
        &url,
        &[
            ("DSE_USER", "prometheus".into()),
            ("DSE_PASSWORD", "correct horse".into()),
        ],
    );
    driver.run_to_end().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_container_restarted_while_the_page_is_open_is_a_crash_loop() {
    if !browser_available() {
        return;
    }
    let engine = FakeEngine::docker("26.1.5");
    engine.add("crashy", 1_000_000);
    engine.add("steady", 1_000_000);
    // Inspect answers (the restart count) reused for a second, not a minute.
    let config =
        common::Exporter::config("inspect_max_age = \"1s\"\n", "unix:///run/fake-engine.sock");
    let fake: Arc<dyn EngineApi> = Arc::new(engine.clone());
    let exporter = InProcess::serve(docker_stats_exporter::state_with_engine(&config, fake)).await;
    let mut driver = Driver::start(
        "crash",
        &format!("http://{}/", exporter.addr),
        &[("DSE_NAME", "crashy".into())],
    );
    loop {
        match driver.next().await {
            Event::Step(step, _) if step == "restart" => {
                engine.restart("crashy");
                driver.reply(json!({})).await;
            }
            Event::Step(step, _) => panic!("unexpected step {step}"),
            Event::Done(_) => break,
        }
    }
    driver.finish().await;
}
