//! Docker Swarm: deploy/swarm/stack.yml as shipped, on a swarm of two private
//! Docker 26.1 engines (scripts/private-engine.sh), each in a network
//! namespace of its own with its own hostname, joined over a veth pair between
//! the two namespaces. The exporter runs as a global service (one task per
//! node); the stack's Prometheus finds both tasks by itself through
//! `dockerswarm_sd_configs` on the manager's socket, and labels each with its
//! node's hostname. A replicated busybox service beside it shows up with its
//! Swarm labels.
//!
//! Nothing is pulled: the exporter's image is built from the real Dockerfile
//! on the shared engine and copied into both engines, and Prometheus is
//! Debian's binary (apt-get install prometheus) imported as an image with the
//! C library it links. Prometheus is asked from inside the manager's network
//! namespace, where the stack publishes its port. The engines, their data,
//! the swarm and the veth pair are gone when the test ends, passed or failed.
//!
//! Needs root, Debian's `prometheus`, `ip`, `nsenter`, `curl`, `ldd` and `tar`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cmd::{require_tool, run, stdout_of};
use common::engines::PrivateEngine;
use common::exporter_image::{checkout_tag, exporter_image, TEST_TAG};
use common::lock::DirLock;
use common::swarm::Swarm;
use common::veth::{End, Veth};
use common::TempDir;
use serde_json::Value;

const MANAGER: &str = "swarm-a";
const WORKER: &str = "swarm-b";
const MANAGER_ADDR: &str = "10.231.0.1";
const STACK: &str = "dsesw";
const APP_STACK: &str = "dseswapp";
const EXPORTER_TAG: &str = "docker-stats-exporter:swarm-test";
const PROMETHEUS_TAG: &str = "dse-test/prometheus:swarm-test";
const PROMETHEUS_BIN: &str = "/usr/bin/prometheus";
/// Where the stack publishes Prometheus, inside the manager's namespace.
const PROMETHEUS_PORT: u16 = 9090;
const JOB: &str = "docker-stats-exporter";
/// Long enough for Swarm to schedule, Prometheus' discovery to refresh and a
/// scrape to follow; the intervals are shortened to 2 s below.
const CONVERGE: Duration = Duration::from_secs(120);

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn shipped_prometheus_config_is_valid() {
    let dir = TempDir::new("swarm-promtool");
    std::fs::copy(
        root().join("deploy/swarm/prometheus.yml"),
        dir.0.join("prometheus.yml"),
    )
    .expect("copy prometheus.yml");
    // The stack mounts the alert rules beside it.
    std::fs::copy(
        root().join("deploy/prometheus/alerts.yml"),
        dir.0.join("alerts.yml"),
    )
    .expect("copy alerts.yml");
    let promtool = require_tool(
        "promtool",
        "install Prometheus' promtool (Debian: apt-get install prometheus)",
    );
    run(Command::new(promtool)
        .current_dir(&dir.0)
        .args(["check", "config", "prometheus.yml"]));
}

#[test]
fn global_exporter_is_discovered_on_every_node() {
    let started = Instant::now();
    // Two runs at once would share the engines' names.
    let _lock = DirLock::acquire(Path::new("/run/dse-swarm-test.lock"), CONVERGE * 4);
    // Built under this checkout's own tag on the shared engine; the
    // private engines get it by id, under EXPORTER_TAG.
    let image = exporter_image(&checkout_tag(TEST_TAG));
    let built = started.elapsed();

    let manager = PrivateEngine::start_fresh(MANAGER, "26.1", MANAGER);
    let worker = PrivateEngine::start_fresh(WORKER, "26.1", WORKER);
    let _wire = Veth::connect(
        &End {
            netns: &manager.netns(),
            name: "dsesw-a",
            cidr: &format!("{MANAGER_ADDR}/30"),
        },
        &End {
            netns: &worker.netns(),
            name: "dsesw-b",
            cidr: "10.231.0.2/30",
        },
    );
    let mut swarm = Swarm::init(&manager, MANAGER_ADDR);
    swarm.join(&worker);

    for engine in [&manager, &worker] {
        engine.load_image(&image.id, EXPORTER_TAG);
    }
    import_prometheus(&manager);
    let dir = TempDir::new("swarm-test");
    deploy_stacks(&manager, &worker, &dir);
    let deployed = started.elapsed();

    let prometheus = Prometheus {
        netns: manager.netns(),
    };
    let diagnose = || diagnostics(&manager);
    prometheus.wait_ready(&diagnose);
    check_exporters_discovered(&prometheus, &swarm, &diagnose);
    check_task_series(&prometheus, &swarm, &diagnose);
    eprintln!(
        "swarm test: image {built:.1?}, swarm and stacks up at {deployed:.1?}, checked at {:.1?}",
        started.elapsed()
    );
}

/// Both exporter tasks are targets that Prometheus found itself (their task
/// ids are the service's), nothing else is, and each is up, labelled with its
/// node's hostname, and reaches its engine.
fn check_exporters_discovered(
    prometheus: &Prometheus,
    swarm: &Swarm,
    diagnose: &dyn Fn() -> String,
) {
    let hosts: BTreeSet<String> = [MANAGER, WORKER].map(String::from).into();
    let query = format!("up{{job=\"{JOB}\"}} == 1");
    let up = prometheus.wait_for(&query, diagnose, |r| instances(r) == hosts);
    assert_eq!(up.len(), 2, "{up:?}");

    let targets = prometheus.get("/api/v1/targets?state=active");
    let active = targets["data"]["activeTargets"]
        .as_array()
        .unwrap_or_else(|| panic!("no activeTargets: {targets}"));
    let tasks: BTreeSet<String> = swarm
        .manager()
        .docker(&[
            "service",
            "ps",
            "--quiet",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            &format!("{STACK}_stats-exporter"),
        ])
        .lines()
        .map(String::from)
        .collect();
    let discovered: BTreeSet<String> = active
        .iter()
        .map(|t| label(&t["discoveredLabels"], "__meta_dockerswarm_task_id"))
        .collect();
    assert_eq!(
        discovered, tasks,
        "the targets are not the exporter service's tasks (only those are kept): {targets}"
    );
    assert_eq!(
        active.len(),
        tasks.len(),
        "one target per task (its address on the stack's network): {targets}"
    );
    for t in active {
        assert_eq!(label(&t["labels"], "job"), JOB, "{t}");
        assert_eq!(
            label(&t["labels"], "instance"),
            label(&t["discoveredLabels"], "__meta_dockerswarm_node_hostname"),
            "instance is the node's hostname: {t}"
        );
    }

    let engine_up = prometheus.query("docker_up == 1");
    assert_eq!(
        instances(&engine_up),
        hosts,
        "each exporter reaches its own engine through the socket's group: {engine_up:?}"
    );
}

/// The busybox service's tasks carry their Swarm labels, each reported by the
/// exporter of the node it runs on.
fn check_task_series(prometheus: &Prometheus, swarm: &Swarm, diagnose: &dyn Fn() -> String) {
    let service = format!("{APP_STACK}_busy");
    let node_ids = swarm.node_ids();
    let tasks = placed_tasks(swarm.manager(), &service, 2);
    let on_nodes: BTreeSet<&String> = tasks.values().collect();
    assert_eq!(on_nodes.len(), 2, "one task per node: {tasks:?}");

    let query = format!(
        "container_memory_usage_bytes{{container_label_com_docker_swarm_service_name=\"{service}\"}}"
    );
    let want: BTreeSet<String> = tasks.keys().cloned().collect();
    let series = prometheus.wait_for(&query, diagnose, |r| {
        let names: BTreeSet<String> = r
            .iter()
            .filter_map(|s| s["metric"]["container_label_com_docker_swarm_task_name"].as_str())
            .map(String::from)
            .collect();
        r.len() == want.len() && names == want
    });
    for s in &series {
        let m = &s["metric"];
        let task = label(m, "container_label_com_docker_swarm_task_name");
        let node = &tasks[&task];
        assert_eq!(
            label(m, "instance"),
            *node,
            "reported by its node's exporter: {s}"
        );
        assert_eq!(label(m, "job"), JOB, "{s}");
        assert_eq!(
            label(m, "container_label_com_docker_swarm_node_id"),
            node_ids[node],
            "{s}"
        );
        assert_eq!(
            label(m, "container_label_com_docker_stack_namespace"),
            APP_STACK,
            "{s}"
        );
        assert_eq!(
            label(m, "name"),
            task,
            "the container's name is its task's: {s}"
        );
    }
}

/// Task name (NAME.ID, e.g. dseswapp_busy.1.<id>, as its container label
/// says) to node hostname, for the `count` tasks of `service` that should
/// run, once Swarm has placed them all.
fn placed_tasks(manager: &PrivateEngine, service: &str, count: usize) -> BTreeMap<String, String> {
    let until = Instant::now() + CONVERGE;
    loop {
        let listed = manager.docker(&[
            "service",
            "ps",
            "--no-trunc",
            "--filter",
            "desired-state=running",
            "--format",
            "{{.ID}} {{.Name}} {{.Node}}",
            service,
        ]);
        let tasks: BTreeMap<String, String> = listed
            .lines()
            .filter_map(|l| {
                let f: Vec<&str> = l.split_whitespace().collect();
                (f.len() == 3).then(|| (format!("{}.{}", f[1], f[0]), f[2].to_string()))
            })
            .collect();
        if tasks.len() == count && listed.lines().count() == count {
            return tasks;
        }
        assert!(
            Instant::now() < until,
            "{service}: not {count} placed tasks within {CONVERGE:?}:\n{listed}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Debian's Prometheus binary and the C library files it links (from `ldd`),
/// imported into `engine` as an image whose data directory belongs to
/// `nobody`, as the official image's does.
fn import_prometheus(engine: &PrivateEngine) {
    let binary = require_tool(PROMETHEUS_BIN, "install Debian's prometheus package");
    let dir = TempDir::new("swarm-prometheus-rootfs");
    let mut files = vec![(binary.clone(), Path::new("/bin/prometheus").to_path_buf())];
    let ldd = stdout_of(Command::new("ldd").arg(&binary));
    for lib in ldd
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
        .map(Path::new)
    {
        files.push((lib.to_path_buf(), lib.to_path_buf()));
    }
    for (from, to) in &files {
        let dest = dir.0.join(to.strip_prefix("/").expect("absolute path"));
        std::fs::create_dir_all(dest.parent().expect("parent dir")).expect("create dir");
        // copy follows symlinks (libc.so.6 -> libc-2.36.so): the file itself.
        std::fs::copy(from, &dest)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", from.display(), dest.display()));
    }
    let data = dir.0.join("prometheus");
    std::fs::create_dir(&data).expect("create /prometheus");
    std::os::unix::fs::chown(&data, Some(65534), Some(65534)).expect("chown /prometheus");
    engine.import_dir(
        &dir.0,
        &[r#"ENTRYPOINT ["/bin/prometheus"]"#, "USER 65534"],
        PROMETHEUS_TAG,
    );
}

/// Deploys deploy/swarm/stack.yml as shipped, and beside it a stack of two
/// busybox tasks. Prometheus gets the shipped configuration with only its
/// intervals shortened.
fn deploy_stacks(manager: &PrivateEngine, worker: &PrivateEngine, dir: &TempDir) {
    let config = dir.0.join("prometheus.yml");
    std::fs::write(&config, shortened_intervals()).expect("write prometheus.yml");
    // Each node's exporter mounts its own engine's socket: here the path
    // differs per engine, and holds the engine's name, which is its hostname.
    for engine in [manager, worker] {
        assert_eq!(
            engine.socket(),
            Path::new(&format!("/run/dse-engines/{}/docker.sock", engine.name))
        );
    }
    let gid = {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(manager.socket())
            .expect("the manager's socket")
            .gid()
    };
    run(
        stack_deploy(manager, Path::new("deploy/swarm/stack.yml"), STACK)
            .current_dir(root())
            .env("DOCKER_GID", gid.to_string())
            .env("DSE_IMAGE", EXPORTER_TAG)
            .env("PROMETHEUS_IMAGE", PROMETHEUS_TAG)
            .env("PROMETHEUS_CONFIG", &config)
            .env("PROMETHEUS_PORT", PROMETHEUS_PORT.to_string())
            .env(
                "DOCKER_SOCKET",
                "/run/dse-engines/{{.Node.Hostname}}/docker.sock",
            )
            .env_remove("DSE_UID"),
    );

    let app = dir.0.join("app.yml");
    std::fs::write(
        &app,
        format!(
            r#"version: "3.8"
services:
  busy:
    image: {}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    deploy:
      replicas: 2
      placement:
        max_replicas_per_node: 1
"#,
            common::image_name()
        ),
    )
    .expect("write app.yml");
    run(&mut stack_deploy(manager, &app, APP_STACK));
}

/// `docker stack deploy` of `file` as `stack` on the manager, with the
/// images already on the nodes (there is no registry to resolve them in).
fn stack_deploy(manager: &PrivateEngine, file: &Path, stack: &str) -> Command {
    let mut cmd = Command::new(common::DOCKER);
    cmd.args(["-H", &manager.url, "stack", "deploy"])
        .args(["--resolve-image", "never", "-c"])
        .arg(file)
        .arg(stack);
    cmd
}

/// deploy/swarm/prometheus.yml with 2 s instead of its scrape, evaluation and
/// discovery intervals (and a scrape timeout within them).
fn shortened_intervals() -> String {
    let shipped = std::fs::read_to_string(root().join("deploy/swarm/prometheus.yml"))
        .expect("read deploy/swarm/prometheus.yml");
    let mut text = shipped.clone();
    for key in [
        "scrape_interval",
        "evaluation_interval",
        "scrape_timeout",
        "refresh_interval",
    ] {
        let mut changed = false;
        text = text
            .lines()
            .map(|l| match l.split_once(':') {
                Some((k, _)) if k.trim() == key => {
                    changed = true;
                    format!("{k}: 2s")
                }
                _ => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
        assert!(changed, "deploy/swarm/prometheus.yml has no {key}");
    }
    text + "\n"
}

/// Prometheus' HTTP API, asked with curl from inside a network namespace.
struct Prometheus {
    netns: String,
}

impl Prometheus {
    /// `GET path` as JSON; `Value::Null` when it does not answer 200.
    fn try_get(&self, path: &str) -> Value {
        let out = Command::new("nsenter")
            .arg(format!("--net=/run/netns/{}", self.netns))
            .args(["curl", "-sf", "--max-time", "5"])
            .arg(format!("http://127.0.0.1:{PROMETHEUS_PORT}{path}"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run nsenter curl: {e}"));
        if !out.status.success() {
            return Value::Null;
        }
        serde_json::from_slice(&out.stdout).unwrap_or(Value::Null)
    }

    fn get(&self, path: &str) -> Value {
        let v = self.try_get(path);
        assert_eq!(v["status"], "success", "GET {path}: {v}");
        v
    }

    /// An instant query's result vector.
    fn query(&self, query: &str) -> Vec<Value> {
        let v = self.get(&format!(
            "/api/v1/query?query={}",
            common::http::query_escape(query)
        ));
        v["data"]["result"].as_array().cloned().unwrap_or_default()
    }

    fn wait_ready(&self, diagnose: &dyn Fn() -> String) {
        let until = Instant::now() + CONVERGE;
        while self.try_get("/api/v1/status/buildinfo")["status"] != "success" {
            assert!(
                Instant::now() < until,
                "Prometheus did not answer within {CONVERGE:?}\n{}",
                diagnose()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }

    /// Repeats `query` until its result satisfies `done`; that result.
    fn wait_for(
        &self,
        query: &str,
        diagnose: &dyn Fn() -> String,
        done: impl Fn(&[Value]) -> bool,
    ) -> Vec<Value> {
        let until = Instant::now() + CONVERGE;
        loop {
            let result = self.query(query);
            if done(&result) {
                return result;
            }
            assert!(
                Instant::now() < until,
                "`{query}` gave {result:?} after {CONVERGE:?}\ntargets: {}\n{}",
                self.try_get("/api/v1/targets"),
                diagnose()
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The `instance` labels of a result.
fn instances(result: &[Value]) -> BTreeSet<String> {
    result
        .iter()
        .map(|s| label(&s["metric"], "instance"))
        .collect()
}

fn label(labels: &Value, name: &str) -> String {
    labels[name]
        .as_str()
        .unwrap_or_else(|| panic!("no label {name} in {labels}"))
        .to_string()
}

/// What the swarm says about every service and task, for failure messages.
fn diagnostics(manager: &PrivateEngine) -> String {
    let mut out = String::new();
    for args in [
        vec!["service", "ls"],
        vec![
            "service",
            "ps",
            "--no-trunc",
            &format!("{STACK}_stats-exporter"),
        ],
        vec![
            "service",
            "ps",
            "--no-trunc",
            &format!("{STACK}_prometheus"),
        ],
        vec!["service", "ps", "--no-trunc", &format!("{APP_STACK}_busy")],
        vec![
            "service",
            "logs",
            "--tail",
            "20",
            &format!("{STACK}_prometheus"),
        ],
        vec![
            "service",
            "logs",
            "--tail",
            "20",
            &format!("{STACK}_stats-exporter"),
        ],
    ] {
        let o = Command::new(common::DOCKER)
            .args(["-H", &manager.url])
            .args(&args)
            .output();
        if let Ok(o) = o {
            out.push_str(&format!(
                "--- docker {}\n{}{}\n",
                args.join(" "),
                String::from_utf8_lossy(&o.stdout),
                String::from_utf8_lossy(&o.stderr)
            ));
        }
    }
    out
}
