//! A cAdvisor user's dashboards and alerts answer unchanged.
//!
//! A real Prometheus (Debian's 2.42) runs the shipped
//! deploy/prometheus/prometheus.yml and alerts.yml, with only the targets and
//! intervals replaced, against the exporter binary (default configuration)
//! and node_exporter, while a Compose fleet (tests/dashboards/compose.yaml)
//! runs on the shared engine and a Swarm stack on a private one. Every query
//! of every shipped Grafana dashboard, with its template variables resolved
//! through Prometheus as Grafana would, must return data; so must every alert
//! rule whose condition the fleet forces, and every selector of every rule.
//!
//! Needs: prometheus, prometheus-node-exporter, docker-compose and root for
//! the private engine (scripts/setup-engine.sh installs them on Debian).

#![allow(clippy::unwrap_used)]

mod grafana;
mod procs;
mod promql;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::accounted;
use common::engines::PrivateEngine;
use common::TempDir;
use serde_json::Value;

const DASHBOARDS: [&str; 2] = [
    "deploy/grafana/dashboards/docker-containers.json",
    "deploy/grafana/dashboards/docker-stats.json",
];
const PROMETHEUS_CONFIG: &str = "deploy/prometheus/prometheus.yml";
const ALERTS: &str = "deploy/prometheus/alerts.yml";
const FLEET: &str = "tests/dashboards/compose.yaml";
const STACK_FILE: &str = "tests/dashboards/stack.yaml";
/// dockprom's "Monitor Services" dashboard: its panels over the monitoring
/// stack's own containers, which dockprom labels
/// `org.label-schema.group: "monitoring"` (the fleet's web service is).
const DOCKPROM_QUERIES: [&str; 3] = [
    r#"sum(container_memory_usage_bytes{container_label_org_label_schema_group="monitoring"})"#,
    r#"sum(rate(container_cpu_user_seconds_total{container_label_org_label_schema_group="monitoring"}[1m]) * 100  / scalar(count(node_cpu_seconds_total{mode="user"}))) by (name)"#,
    r#"sum(container_memory_usage_bytes{container_label_org_label_schema_group="monitoring"}) by (name)"#,
];
/// The private engine that runs the Swarm stack.
const SWARM_ENGINE: &str = "dashboards";
const STACK: &str = "dsedash";
/// Scrape and rule evaluation intervals: short, and still above the 1 s the
/// engine's stats tick makes a scrape of Docker 20.10 take.
const SCRAPE_INTERVAL: &str = "2s";
const EVALUATION_INTERVAL: &str = "1s";
const WAIT: Duration = Duration::from_secs(90);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

// ---------------------------------------------------------------------------
// The fleet

/// The Compose fleet; taken down (with its volume) when dropped.
struct Fleet {
    project: String,
}

impl Fleet {
    fn up(project: &str) -> Self {
        let fleet = Fleet {
            project: project.to_string(),
        };
        fleet.compose(&["up", "-d", "--no-build"]);
        fleet
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("docker-compose");
        cmd.current_dir(root())
            .args(["-p", &self.project, "-f", FLEET])
            .args(args)
            .env("DSE_DASH_IMAGE", common::image())
            .env("DOCKER_HOST", "unix:///var/run/docker.sock");
        cmd
    }

    fn compose(&self, args: &[&str]) -> String {
        let out = self.command(args).output().unwrap_or_else(|e| {
            panic!("cannot run docker-compose ({e}); apt-get install docker-compose")
        });
        assert!(
            out.status.success(),
            "docker-compose {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// The container name of `service`.
    fn name(&self, service: &str) -> String {
        let id = self.compose(&["ps", "-q", service]);
        common::docker(&["inspect", "--format", "{{.Name}}", &id])
            .trim_start_matches('/')
            .to_string()
    }
}

impl Drop for Fleet {
    fn drop(&mut self) {
        let _ = self
            .command(&["down", "-v", "-t", "1", "--remove-orphans"])
            .output();
    }
}

/// A Swarm stack on a private engine; the engine leaves the swarm (removing
/// the tasks) and stops when dropped.
struct Swarm {
    engine: PrivateEngine,
}

impl Swarm {
    fn deploy() -> Self {
        let engine = PrivateEngine::start(SWARM_ENGINE, "20.10");
        // A run that died may have left the engine in a swarm.
        let _ = Command::new(common::DOCKER)
            .args(["-H", &engine.url, "swarm", "leave", "--force"])
            .output();
        engine.docker(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
        let stack = root().join(STACK_FILE);
        let out = Command::new(common::DOCKER)
            .args(["-H", &engine.url, "stack", "deploy", "-c"])
            .arg(&stack)
            .arg(STACK)
            .env("DSE_DASH_IMAGE", common::image_name())
            .output()
            .expect("run docker stack deploy");
        assert!(
            out.status.success(),
            "docker stack deploy: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        Swarm { engine }
    }

    /// Waits until `n` task containers run.
    fn wait_for_tasks(&self, n: usize) {
        let until = Instant::now() + WAIT;
        loop {
            let ps = self.engine.docker(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.stack.namespace={STACK}"),
            ]);
            if ps.lines().count() >= n {
                return;
            }
            assert!(Instant::now() < until, "{n} tasks of {STACK} not running");
            std::thread::sleep(Duration::from_millis(300));
        }
    }
}

impl Drop for Swarm {
    fn drop(&mut self) {
        let _ = Command::new(common::DOCKER)
            .args(["-H", &self.engine.url, "swarm", "leave", "--force"])
            .output();
    }
}

// ---------------------------------------------------------------------------
// Prometheus

/// The shipped Prometheus configuration with every job's targets replaced
/// by `targets[job]`, intervals shortened and rule files made absolute.
fn prometheus_config(targets: &BTreeMap<&str, Vec<String>>) -> String {
    use serde_norway::Value as Y;
    let path = root().join(PROMETHEUS_CONFIG);
    let text = std::fs::read_to_string(&path).expect("read the shipped prometheus.yml");
    let mut config: Y = serde_norway::from_str(&text).expect("shipped prometheus.yml parses");
    let global = &mut config["global"];
    global["scrape_interval"] = Y::from(SCRAPE_INTERVAL);
    global["evaluation_interval"] = Y::from(EVALUATION_INTERVAL);
    let dir = path.parent().unwrap();
    if let Some(files) = config["rule_files"].as_sequence_mut() {
        for file in files {
            let abs = dir.join(file.as_str().expect("rule file name"));
            *file = Y::from(abs.to_string_lossy().into_owned());
        }
    }
    let jobs = config["scrape_configs"]
        .as_sequence_mut()
        .expect("scrape_configs");
    for job in jobs {
        let name = job["job_name"].as_str().unwrap_or("").to_string();
        let list = targets.get(name.as_str()).unwrap_or_else(|| {
            panic!("{PROMETHEUS_CONFIG} has job {name}: give this test a target for it")
        });
        let statics = job["static_configs"]
            .as_sequence_mut()
            .unwrap_or_else(|| panic!("job {name}: no static_configs"));
        statics.truncate(1);
        statics[0]["targets"] = Y::Sequence(list.iter().map(|t| Y::from(t.as_str())).collect());
        for key in ["scrape_interval", "scrape_timeout"] {
            if job.get(key).is_some() {
                job[key] = Y::from(SCRAPE_INTERVAL);
            }
        }
    }
    serde_norway::to_string(&config).unwrap()
}

/// Prometheus' HTTP API.
struct Prom(SocketAddr);

impl Prom {
    async fn get(&self, path: &str) -> Result<Value, String> {
        let (status, body) = common::get(self.0, path, &[]).await;
        let v: Value =
            serde_json::from_str(&body).map_err(|e| format!("HTTP {status}: {e}: {body}"))?;
        if v["status"] != "success" {
            return Err(format!("HTTP {status}: {}", v["error"]));
        }
        Ok(v["data"].clone())
    }

    /// An instant query's result: the series of a vector, or a scalar as
    /// one element.
    async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let data = self
            .get(&format!(
                "/api/v1/query?query={}",
                common::http::query_escape(expr)
            ))
            .await?;
        match data["resultType"].as_str() {
            Some("vector") | Some("matrix") => {
                Ok(data["result"].as_array().cloned().unwrap_or_default())
            }
            _ => Ok(vec![data["result"].clone()]),
        }
    }

    /// Values of `label`, among the series `selector` matches, as Grafana's
    /// `label_values()` asks for them.
    async fn label_values(
        &self,
        label: &str,
        selector: Option<&str>,
    ) -> Result<Vec<String>, String> {
        let mut path = format!("/api/v1/label/{label}/values");
        if let Some(s) = selector {
            path.push_str(&format!("?match[]={}", common::http::query_escape(s)));
        }
        let data = self.get(&path).await?;
        Ok(data
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|v| v.as_str().map(str::to_string))
            .collect())
    }

    /// Polls `expr` until `ok` holds for its result.
    async fn wait_for(&self, what: &str, expr: &str, ok: impl Fn(&[Value]) -> bool) -> Vec<Value> {
        let until = Instant::now() + WAIT;
        loop {
            let last = self.query(expr).await;
            if let Ok(result) = &last {
                if ok(result) {
                    return result.clone();
                }
            }
            assert!(
                Instant::now() < until,
                "{what}: not within {WAIT:?}; last answer to {expr}:\n{last:?}"
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
}

fn value(series: &Value) -> f64 {
    series["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN)
}

fn label<'a>(series: &'a Value, name: &str) -> &'a str {
    series["metric"][name].as_str().unwrap_or("")
}

// ---------------------------------------------------------------------------
// What the engines report

/// The metric names `expr` selects.
fn families(expr: &str) -> Vec<String> {
    promql::selectors(expr)
        .iter()
        .map(|s| s.split('{').next().unwrap_or("").to_string())
        .filter(|name| !name.is_empty())
        .collect()
}

/// The accounted families (block I/O, swap, failcnt, ...) that no running
/// container of the engines at `sockets` reports in its stats answer: on
/// this host the kernel does not account them, and the exporter must leave
/// their series out.
fn unreported(sockets: &[&str]) -> BTreeSet<&'static str> {
    let answers: Vec<Value> = sockets
        .iter()
        .flat_map(|s| accounted::all_engine_stats(s))
        .collect();
    accounted::unreported(&answers)
}

/// The first family of `expr` in `unreported`.
fn unreported_family(expr: &str, unreported: &BTreeSet<&'static str>) -> Option<String> {
    families(expr)
        .into_iter()
        .find(|f| unreported.contains(f.as_str()))
}

// ---------------------------------------------------------------------------
// The checks

/// Every `label_values()` variable of `dashboard`, resolved in order through
/// Prometheus; `project` is set to `choice`'s value, multi-value variables
/// to "All" and the others to their first option.
async fn resolve_variables(
    prom: &Prom,
    file: &str,
    dashboard: &Value,
    choices: &HashMap<&str, String>,
    failures: &mut Vec<String>,
) -> HashMap<String, String> {
    let mut values = HashMap::new();
    for var in grafana::variables(dashboard) {
        let selector = var
            .selector
            .as_deref()
            .map(|s| grafana::substitute(s, &values))
            .transpose();
        let options = match selector {
            Ok(sel) => prom.label_values(&var.label, sel.as_deref()).await,
            Err(e) => Err(e),
        };
        let options = match options {
            Ok(o) if !o.is_empty() => o,
            other => {
                failures.push(format!(
                    "{file}: variable ${} has no options: {other:?}",
                    var.name
                ));
                continue;
            }
        };
        let chosen = if let Some(want) = choices.get(var.name.as_str()) {
            if !options.contains(want) {
                failures.push(format!(
                    "{file}: variable ${} lacks {want}: {options:?}",
                    var.name
                ));
            }
            grafana::regex_escape(want)
        } else if let Some(all) = &var.all_value {
            all.clone()
        } else {
            options[0].clone()
        };
        values.insert(var.name.clone(), chosen);
    }
    values
}

/// Runs every target of the dashboards until each returned data or the
/// time is up; the failures. A target over a family in `absent` (what the
/// engines at `sockets` did not report, asked again at the end) must return
/// nothing.
async fn check_dashboards(
    prom: &Prom,
    choices: &HashMap<&str, String>,
    sockets: &[&str],
    absent: &BTreeSet<&'static str>,
) -> (usize, Vec<String>) {
    let mut pending = Vec::new();
    let mut failures = Vec::new();
    for file in DASHBOARDS {
        let text = std::fs::read_to_string(root().join(file)).expect("read dashboard");
        let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
        let values = resolve_variables(prom, file, &dashboard, choices, &mut failures).await;
        for target in grafana::targets(&dashboard) {
            match grafana::substitute(&target.expr, &values) {
                Ok(expr) => pending.push((format!("{file}: {}", target.place), expr)),
                Err(e) => failures.push(format!("{file}: {}: {e}", target.place)),
            }
        }
    }
    let total = pending.len();
    eprintln!("dashboards: {total} queries; not reported by the engines: {absent:?}");
    let (expect_none, mut pending): (Vec<_>, Vec<_>) = pending
        .into_iter()
        .partition(|(_, expr)| unreported_family(expr, absent).is_some());
    let mut made_up = Vec::new();
    for (place, expr) in expect_none {
        match prom.query(&expr).await {
            Ok(result) if result.is_empty() => {}
            other => made_up.push((place, expr, other)),
        }
    }
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let mut still = Vec::new();
        for (place, expr) in pending {
            match prom.query(&expr).await {
                Ok(result) if !result.is_empty() => {}
                other => still.push((place, expr, other)),
            }
        }
        if still.is_empty() || Instant::now() >= until {
            for (place, expr, answer) in still {
                failures.push(format!(
                    "{place}: no data for\n    {expr}\n    answer: {answer:?}"
                ));
            }
            break;
        }
        pending = still.into_iter().map(|(p, e, _)| (p, e)).collect();
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    // A container may have started doing I/O since: data is made up only
    // where the engines still report nothing.
    let absent = unreported(sockets);
    for (place, expr, answer) in made_up {
        if let Some(family) = unreported_family(&expr, &absent) {
            failures.push(format!(
                "{place}: the engines report no {family}, yet\n    {expr}\n    answered {answer:?}"
            ));
        }
    }
    (total, failures)
}

/// dockprom's queries return the labelled web service; cAdvisor's
/// `container_scrape_error` is 0 where the engine answers and 1 where it does
/// not. The failures.
async fn check_dockprom_and_scrape_error(
    prom: &Prom,
    web: &str,
    answering: &str,
    blind: &str,
) -> Vec<String> {
    let mut failures = Vec::new();
    for expr in DOCKPROM_QUERIES {
        let result = prom.query(expr).await;
        let by_name = expr.contains("by (name)");
        let ok = match &result {
            Ok(r) if by_name => r.iter().any(|s| label(s, "name") == web),
            Ok(r) => r.first().map(value).is_some_and(|v| v > 0.0),
            Err(_) => false,
        };
        if !ok {
            failures.push(format!("dockprom: {expr} does not show {web}: {result:?}"));
        }
    }
    for (instance, want) in [(answering, 0.0), (blind, 1.0)] {
        let expr = format!("container_scrape_error{{instance=\"{instance}\"}}");
        let result = prom.query(&expr).await;
        if !matches!(&result, Ok(r) if r.len() == 1 && value(&r[0]) == want) {
            failures.push(format!("{expr} should be {want}: {result:?}"));
        }
    }
    failures
}

/// The alert rules of the shipped file: (name, expr).
fn alert_rules() -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join(ALERTS)).expect("read alerts.yml");
    let rules: serde_norway::Value = serde_norway::from_str(&text).expect("alerts.yml parses");
    let mut out = Vec::new();
    for group in rules["groups"].as_sequence().into_iter().flatten() {
        for rule in group["rules"].as_sequence().into_iter().flatten() {
            let name = rule["alert"]
                .as_str()
                .or(rule["record"].as_str())
                .unwrap_or("?");
            let expr = rule["expr"].as_str().expect("rule expr");
            out.push((name.to_string(), expr.to_string()));
        }
    }
    out
}

/// Every rule evaluates without error; every selector in it matches series,
/// or none where the engines do not report its family (`unreported`); each
/// rule in `forced` returns a series whose `label` is the given value.
async fn check_alerts(
    prom: &Prom,
    forced: &HashMap<&str, (&str, String)>,
    unreported: &BTreeSet<&'static str>,
) -> Vec<String> {
    let mut failures = Vec::new();
    let rules = alert_rules();
    let until = Instant::now() + Duration::from_secs(30);
    let states = loop {
        let data = prom.get("/api/v1/rules").await.expect("GET /api/v1/rules");
        let states: Vec<(String, String, String)> = data["groups"]
            .as_array()
            .into_iter()
            .flatten()
            .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
            .map(|r| {
                let s = |k: &str| r[k].as_str().unwrap_or("").to_string();
                (s("name"), s("health"), s("lastError"))
            })
            .collect();
        if states.len() == rules.len() && states.iter().all(|(_, h, _)| h != "unknown") {
            break states;
        }
        assert!(
            Instant::now() < until,
            "rules not all evaluated: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    for name in forced.keys() {
        if !rules.iter().any(|(n, _)| n == name) {
            failures.push(format!(
                "{ALERTS} has no rule {name} any more: update this test"
            ));
        }
    }
    for (name, health, error) in states {
        if health != "ok" {
            failures.push(format!("rule {name}: health {health}: {error}"));
        }
    }
    for (name, expr) in &rules {
        for selector in promql::selectors(expr) {
            let answer = prom.query(&selector).await;
            if let Some(family) = unreported_family(&selector, unreported) {
                if !matches!(&answer, Ok(r) if r.is_empty()) {
                    failures.push(format!(
                        "rule {name}: the engines report no {family}, yet {selector} answered {answer:?}"
                    ));
                }
            } else if !matches!(&answer, Ok(r) if !r.is_empty()) {
                failures.push(format!("rule {name}: selector {selector} matches nothing"));
            }
        }
        if let Some((key, want)) = forced.get(name.as_str()) {
            let result = prom.query(expr).await;
            let hit = matches!(&result, Ok(r) if r.iter().any(|s| label(s, key) == want));
            if !hit {
                failures.push(format!(
                    "rule {name}: its condition is forced for {key}={want}, but the expression returns {result:?}"
                ));
            }
        }
    }
    failures
}

// ---------------------------------------------------------------------------
// The run

/// Prometheus, node_exporter and the exporters, stopped when dropped.
struct Monitoring {
    prom: Prom,
    /// The exporter targets: the shared engine's, the Swarm engine's, the
    /// one without an engine, the hung one.
    exporters: Vec<String>,
    node: SocketAddr,
    blind: String,
    hung: String,
    // Holds the hung target's port: connections queue and get no answer.
    _hung_listener: TcpListener,
    _procs: Vec<procs::Proc>,
}

impl Monitoring {
    async fn start(dir: &Path, swarm_engine: &str) -> Self {
        let log = |name: &str| -> PathBuf { dir.join(format!("{name}.log")) };
        let mut procs = Vec::new();
        let mut exporters = Vec::new();
        // An exporter whose engine is gone (docker_up 0), and a target that
        // never answers (up 0): the two "down" alerts' conditions.
        let no_engine = format!("unix://{}", dir.join("no-engine.sock").display());
        for (what, host) in [
            ("exporter", "unix:///var/run/docker.sock"),
            ("swarm-exporter", swarm_engine),
            ("blind-exporter", no_engine.as_str()),
        ] {
            let (proc, addr) = procs::exporter(what, &log(what), host).await;
            procs.push(proc);
            exporters.push(addr.to_string());
        }
        let blind = exporters[2].clone();
        let hung_listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let hung = hung_listener.local_addr().unwrap().to_string();
        exporters.push(hung.clone());

        let (proc, node) = procs::on_free_port(
            "prometheus-node-exporter (Debian package prometheus-node-exporter)",
            &log("node-exporter"),
            "/metrics",
            |port| {
                let mut cmd = Command::new("prometheus-node-exporter");
                cmd.arg(format!("--web.listen-address=127.0.0.1:{port}"));
                cmd
            },
        )
        .await;
        procs.push(proc);
        let config_path = dir.join("prometheus.yml");
        let (proc, prom) = procs::on_free_port(
            "prometheus (Debian package prometheus)",
            &log("prometheus"),
            "/-/ready",
            |port| {
                let targets = BTreeMap::from([
                    ("docker-stats-exporter", exporters.clone()),
                    ("node-exporter", vec![node.to_string()]),
                    ("prometheus", vec![format!("127.0.0.1:{port}")]),
                ]);
                std::fs::write(&config_path, prometheus_config(&targets)).unwrap();
                let mut cmd = Command::new("prometheus");
                cmd.arg(format!("--config.file={}", config_path.display()))
                    .arg(format!(
                        "--storage.tsdb.path={}",
                        dir.join("data").display()
                    ))
                    .arg(format!("--web.listen-address=127.0.0.1:{port}"));
                cmd
            },
        )
        .await;
        // Prometheus stops first.
        procs.insert(0, proc);
        Monitoring {
            prom: Prom(prom),
            exporters,
            node,
            blind,
            hung,
            _hung_listener: hung_listener,
            _procs: procs,
        }
    }

    /// Waits until every target was scraped (the hung one down) and every
    /// container has samples enough for rate().
    async fn wait_for_targets_and_samples(&self, project: &str) {
        let want_up: Vec<(String, f64)> = self
            .exporters
            .iter()
            .map(|t| (t.clone(), if *t == self.hung { 0.0 } else { 1.0 }))
            .chain([(self.node.to_string(), 1.0), (self.prom.0.to_string(), 1.0)])
            .collect();
        self.prom
            .wait_for("every target scraped", "up", |r| {
                want_up.iter().all(|(t, v)| {
                    r.iter()
                        .any(|s| label(s, "instance") == t && value(s) == *v)
                })
            })
            .await;
        for (what, selector, n) in [
            (
                "the four Compose services",
                format!("container_label_com_docker_compose_project=\"{project}\""),
                4.0,
            ),
            (
                "the two Swarm tasks",
                format!("container_label_com_docker_stack_namespace=\"{STACK}\""),
                2.0,
            ),
        ] {
            let expr = format!(
                "count(count_over_time(container_cpu_usage_seconds_total{{{selector}}}[20s]) >= 4)"
            );
            self.prom
                .wait_for(&format!("samples of {what}"), &expr, |r| {
                    r.first().map(value) == Some(n)
                })
                .await;
        }
    }
}

/// OOM-kills the crash service's first run and waits until Prometheus has
/// its restart; whether the engine reported the OOM kill.
async fn crash_once(prom: &Prom, crash: &str) -> bool {
    common::docker(&["exec", crash, "sh", "-c", "touch /go"]);
    prom.wait_for(
        "the restart of the crash service",
        &format!("container_restarts_total{{name=\"{crash}\"}} >= 1"),
        |r| !r.is_empty(),
    )
    .await;
    common::docker(&["inspect", "--format", "{{.State.OOMKilled}}", crash]) == "true"
}

#[tokio::test(flavor = "multi_thread")]
async fn cadvisor_dashboards_and_alert_rules_answer() {
    let started = Instant::now();
    let dir = TempDir::new("dashboards");
    common::image();
    let project = format!("dse-dash-{}", std::process::id());

    // The fleets start first: the writable-layer sizes of the first scrape
    // then include them (later containers wait for fs_usage_max_age).
    let fleet = Fleet::up(&project);
    let swarm = Swarm::deploy();
    swarm.wait_for_tasks(2);
    let (hog, crash) = (fleet.name("hog"), fleet.name("crash"));
    let monitoring = Monitoring::start(&dir.0, &swarm.engine.url).await;
    eprintln!("dashboards: all started after {:.1?}", started.elapsed());
    monitoring.wait_for_targets_and_samples(&project).await;
    // Samples of the crash service with no restart come first, so that
    // increase() and changes() see the restart.
    let oom_seen = crash_once(&monitoring.prom, &crash).await;
    eprintln!(
        "dashboards: fleet observed after {:.1?} (OOM kill reported by the engine: {oom_seen})",
        started.elapsed()
    );

    let mut forced: HashMap<&str, (&str, String)> = HashMap::from([
        (
            "DockerStatsExporterDown",
            ("instance", monitoring.hung.clone()),
        ),
        ("DockerEngineDown", ("instance", monitoring.blind.clone())),
        (
            "ContainerScrapeError",
            ("instance", monitoring.blind.clone()),
        ),
        ("ContainerMemoryNearLimit", ("name", hog.clone())),
        ("ContainerCpuThrottlingHigh", ("name", hog.clone())),
        ("ContainerRestarting", ("name", crash.clone())),
    ]);
    if oom_seen {
        // Docker 20.10 on cgroup v1 sometimes misses an OOM event (exit 137,
        // OOMKilled false); then only the rule's selectors are checked.
        forced.insert("ContainerOomKilled", ("name", crash.clone()));
    }
    let sockets = [
        common::MACHINE_ENGINE.trim_start_matches("unix://"),
        swarm.engine.url.trim_start_matches("unix://"),
    ];
    let absent = unreported(&sockets);
    let rules = alert_rules();
    // A rule over a family the engines do not report cannot be forced.
    forced.retain(|rule, _| {
        rules
            .iter()
            .find(|(n, _)| n == rule)
            .is_none_or(|(_, expr)| unreported_family(expr, &absent).is_none())
    });
    let mut failures = check_alerts(&monitoring.prom, &forced, &absent).await;
    let choices = HashMap::from([("project", project.clone())]);
    let (queries, dashboard_failures) =
        check_dashboards(&monitoring.prom, &choices, &sockets, &absent).await;
    failures.extend(dashboard_failures);
    failures.extend(
        check_dockprom_and_scrape_error(
            &monitoring.prom,
            &fleet.name("web"),
            &monitoring.exporters[0],
            &monitoring.blind,
        )
        .await,
    );
    eprintln!(
        "dashboards: {queries} dashboard queries and {} alert rules checked after {:.1?}",
        rules.len(),
        started.elapsed()
    );
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
