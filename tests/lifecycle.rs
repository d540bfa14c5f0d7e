//! The full metric set against the real engine: memory as docker stats shows
//! it, CPU and network counters, restarts, OOM kills, ad-hoc queries, and
//! promtool on a real answer.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{docker, Container, Exporter, TempDir};

/// Bytes from docker's human sizes (`772KiB`, `1.23MiB`, `48MiB`).
fn bytes(human: &str) -> f64 {
    let human = human.trim();
    let split = human
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(human.len());
    let (n, unit) = human.split_at(split);
    let n: f64 = n.parse().unwrap_or_else(|_| panic!("size {human:?}"));
    n * match unit {
        "B" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        other => panic!("unit {other:?} in {human:?}"),
    }
}

/// Waits until `docker inspect --format F NAME` prints `want`.
fn wait_inspect(name: &str, format: &str, want: &str) {
    let until = Instant::now() + Duration::from_secs(30);
    loop {
        let got = docker(&["inspect", "--format", format, name]);
        if got == want {
            return;
        }
        assert!(
            Instant::now() < until,
            "{name}: {format} is {got:?}, want {want:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn working_set_and_limit_match_docker_stats() {
    // Page cache from a file written inside, so usage and working set differ.
    let c = Container::run(
        "dse-lc-workingset",
        &["--memory", "48m"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/tmp/f bs=1M count=8 2>/dev/null; sync; sleep 3600",
        ],
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let exporter = Exporter::local("[containers]\nnames = [\"dse-lc-workingset\"]\n").await;
    let m = exporter.metrics().await;
    let cli = docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", &c.name]);
    let (usage, limit) = cli.split_once(" / ").unwrap();
    let ws = m
        .get("container_memory_working_set_bytes", &c.name)
        .unwrap();
    assert!(
        (ws - bytes(usage)).abs() <= bytes(usage) * 0.01 + 8192.0,
        "working set {ws} vs docker stats {usage}"
    );
    assert_eq!(
        m.get("container_memory_limit_bytes", &c.name),
        Some(bytes(limit))
    );
    let raw = m.get("container_memory_usage_bytes", &c.name).unwrap();
    assert!(
        raw > ws,
        "usage {raw} includes the page cache, working set {ws} not"
    );
    assert!(m.get("container_memory_cache", &c.name).unwrap() >= 8.0 * 1024.0 * 1024.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_seconds_of_a_half_cpu_burner_grow_half_a_second_per_second() {
    let c = Container::run(
        "dse-lc-cpu-seconds",
        &["--cpus", "0.5"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let exporter = Exporter::local("[containers]\nnames = [\"dse-lc-cpu-seconds\"]\n").await;
    exporter.metrics().await;
    let a = exporter.metrics().await;
    let ta = Instant::now();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let b = exporter.metrics().await;
    let tb = Instant::now();
    let metric = "container_cpu_usage_seconds_total";
    let rate = (b.get(metric, &c.name).unwrap() - a.get(metric, &c.name).unwrap())
        / (tb - ta).as_secs_f64();
    assert!((rate - 0.5).abs() <= 0.1, "{rate} CPU-seconds per second");
    let throttled = b
        .get("container_cpu_cfs_throttled_periods_total", &c.name)
        .unwrap();
    assert!(throttled > 0.0, "a capped burner is throttled");
    assert_eq!(b.get("container_spec_cpu_quota", &c.name), Some(50_000.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn network_counters_grow_after_traffic_inside_the_container() {
    let c = Container::sleeper("dse-lc-network", &[]);
    let gateway = docker(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Gateway}}",
        &c.name,
    ]);
    assert!(!gateway.is_empty(), "container has no bridge gateway");
    let exporter = Exporter::local("[containers]\nnames = [\"dse-lc-network\"]\n").await;
    let before = exporter.metrics().await;
    docker(&["exec", &c.name, "ping", "-c", "5", "-s", "1000", &gateway]);
    let after = exporter.metrics().await;
    let grew = |metric: &str, labels: &[(&str, &str)]| {
        after.value(metric, labels).unwrap() - before.value(metric, labels).unwrap()
    };
    let eth0 = [("name", c.name.as_str()), ("interface", "eth0")];
    assert!(grew("container_network_transmit_bytes_total", &eth0) >= 5000.0);
    assert!(grew("container_network_receive_bytes_total", &eth0) >= 5000.0);
    assert!(grew("container_network_transmit_packets_total", &eth0) >= 5.0);
    let name = [("name", c.name.as_str())];
    assert!(grew("container_network_tx_bytes", &name) >= 5000.0);
    assert!(grew("container_network_rx_bytes", &name) >= 5000.0);
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_and_exit_code_of_a_failing_container_with_on_failure_policy() {
    let c = Container::run(
        "dse-lc-restarting",
        &["--restart", "on-failure:2"],
        &["sh", "-c", "exit 3"],
    );
    wait_inspect(&c.name, "{{.RestartCount}} {{.State.Status}}", "2 exited");
    let exporter = Exporter::local("[containers]\nnames = [\"dse-lc-restarting\"]\n").await;
    let m = exporter.metrics().await;
    assert_eq!(m.get("container_restarts_total", &c.name), Some(2.0));
    assert_eq!(m.get("container_exit_code", &c.name), Some(3.0));
    assert_eq!(
        m.value(
            "container_state",
            &[("name", c.name.as_str()), ("state", "exited")]
        ),
        Some(1.0)
    );
    assert_eq!(m.get("container_oom_killed", &c.name), Some(0.0));
    // Not running: no resource series.
    assert_eq!(m.get("container_memory_usage_bytes", &c.name), None);
    assert_eq!(m.value("docker_stats_containers_selected", &[]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn container_killed_by_its_memory_limit_is_oom_killed() {
    // Docker 20.10 on cgroup v1 sometimes misses the OOM event of a process
    // it killed (exit 137, OOMKilled false); try until the engine saw it.
    let mut attempt = 0;
    let c = loop {
        let c = Container::run(
            "dse-lc-oom",
            &["--memory", "8m", "--memory-swap", "8m"],
            &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=32M count=1"],
        );
        wait_inspect(
            &c.name,
            "{{.State.Status}} {{.State.ExitCode}}",
            "exited 137",
        );
        if docker(&["inspect", "--format", "{{.State.OOMKilled}}", &c.name]) == "true" {
            break c;
        }
        attempt += 1;
        assert!(attempt < 5, "the engine never reported the OOM kill");
    };
    let exporter = Exporter::local("[containers]\nlabels = [\"dse.test\"]\n").await;
    let m = exporter.metrics().await;
    assert_eq!(m.get("container_oom_killed", &c.name), Some(1.0));
    assert_eq!(m.get("container_exit_code", &c.name), Some(137.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_query_narrows_one_scrape_and_only_those_are_asked() {
    let web = Container::sleeper("dse-lc-adhoc-web", &["--label", "dse.adhoc=web"]);
    let db = Container::sleeper("dse-lc-adhoc-db", &["--label", "dse.adhoc=db"]);
    let dir = TempDir::new("adhoc");
    let proxy = Proxy::start(&dir.0.join("e.sock"), "/var/run/docker.sock");
    let exporter = Exporter::start("[containers]\nlabels = [\"dse.adhoc\"]\n", &proxy.url()).await;

    let (status, body) = common::get(exporter.addr, "/metrics?name=dse-lc-adhoc-web", &[]).await;
    assert_eq!(status, 200);
    let m = common::Metrics::parse(&body);
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![web.name.clone()]
    );
    let stats: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/stats"))
        .collect();
    assert_eq!(stats.len(), 1, "{stats:?}");
    assert!(stats[0].path.contains(&web.id), "{stats:?}");

    let (_, body) = common::get(exporter.addr, "/metrics?label=dse.adhoc%3Ddb", &[]).await;
    let m = common::Metrics::parse(&body);
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![db.name.clone()]
    );

    // A query never widens the configured selection.
    let _outside = Container::sleeper("dse-lc-adhoc-outside", &[]);
    let (_, body) = common::get(exporter.addr, "/metrics?name=dse-lc-adhoc-outside", &[]).await;
    let m = common::Metrics::parse(&body);
    assert!(m.names("container_memory_usage_bytes").is_empty());

    let (status, body) = common::get(exporter.addr, "/metrics?nmae=x", &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("nmae"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_accepts_a_real_answer_with_compose_labels() {
    let _c = Container::sleeper(
        "dse-lc-promtool",
        &[
            "--label",
            "com.docker.compose.project=shop",
            "--label",
            "com.docker.compose.service=web",
            "--cpus",
            "0.25",
            "--memory-reservation",
            "16m",
        ],
    );
    let exporter = Exporter::local("[containers]\nnames = [\"dse-lc-promtool\"]\n").await;
    exporter.metrics().await;
    let (_, body) = exporter.scrape().await;
    assert!(body.contains("container_info{name=\"dse-lc-promtool\",id=\""));
    assert!(body.contains(
        "container_label_com_docker_compose_project=\"shop\",container_label_com_docker_compose_service=\"web\"} 1"
    ));
    let m = common::Metrics::parse(&body);
    let cpu =
        m.0.iter()
            .find(|s| s.name == "container_cpu_usage_percent")
            .expect("a CPU percent");
    assert_eq!(cpu.labels["name"], "dse-lc-promtool");
    assert_eq!(
        cpu.labels["container_label_com_docker_compose_project"],
        "shop"
    );
    common::promtool_check_metrics(&body);
}
