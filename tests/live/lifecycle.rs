//! The full metric set against the real engine: memory as docker stats shows
//! it, CPU and network counters, restarts, OOM kills, ad-hoc queries, and
//! promtool on a real answer.

#![allow(clippy::unwrap_used)]

use crate::common;

use common::accounted;
use common::cgroup::{Cgroup, Cgroups, IoOp, MemoryStat, Reading};
use common::proxy::Proxy;
use common::{
    docker, engine_socket, first_round_stats_calls, names_config, unique, wait_until,
    wait_until_async, Container, Exporter, Metrics, TempDir, PATIENCE,
};

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
fn wait_inspect(c: &Container, format: &str, want: &str) {
    wait_until(
        &format!("{}: {format} = {want:?}", c.name),
        PATIENCE,
        || match c.inspect(format) {
            got if got == want => Ok(()),
            got => Err(got),
        },
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn working_set_and_limit_match_docker_stats() {
    let cgroups = Cgroups::of_engine("workingset");
    // Page cache from a file written inside, so usage and working set differ.
    let c = Container::run(
        &unique("dse-lc-workingset"),
        &["--memory", "48m"],
        &[
            "sh",
            "-c",
            "dd if=/dev/zero of=/tmp/f bs=1M count=8 2>/dev/null; sync; sleep 3600",
        ],
    );
    // The file is in the cgroup's page cache and written back.
    let cgroup = cgroups.of(&c);
    wait_until("8 MiB of clean page cache", PATIENCE, || {
        let r = cgroups.read(&cgroup)?;
        match (
            r.memory_stat(MemoryStat::Cache),
            r.memory_stat(MemoryStat::Dirty),
        ) {
            (cache, 0) if cache >= 8 << 20 => Ok(()),
            (cache, dirty) => Err(format!("cache {cache}, dirty {dirty}")),
        }
    });
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    // The scrape and `docker stats` read at different moments: compared
    // until one pair agrees, in case the container's memory still moves.
    let (exporter_ref, name) = (&exporter, &c.name);
    let (m, ws, limit) = wait_until_async(
        "working set as docker stats shows it",
        PATIENCE,
        move || async move {
            let m = exporter_ref.metrics().await;
            let cli = docker(&["stats", "--no-stream", "--format", "{{.MemUsage}}", name]);
            let (usage, limit) = cli
                .split_once(" / ")
                .ok_or_else(|| format!("docker stats said {cli:?}"))?;
            let ws = m
                .get("container_memory_working_set_bytes", name)
                .ok_or_else(|| "no working set".to_string())?;
            match (ws - bytes(usage)).abs() <= bytes(usage) * 0.01 + 8192.0 {
                true => Ok((m, ws, limit.to_string())),
                false => Err(format!("working set {ws} vs docker stats {usage}")),
            }
        },
    )
    .await;
    assert_eq!(
        m.get("container_memory_limit_bytes", &c.name),
        Some(bytes(&limit))
    );
    let raw = m.get("container_memory_usage_bytes", &c.name).unwrap();
    assert!(
        raw > ws,
        "usage {raw} includes the page cache, working set {ws} not"
    );
    assert!(m.get("container_memory_cache", &c.name).unwrap() >= 8.0 * 1024.0 * 1024.0);
}

/// A scrape with the cgroup's counters read just before and after it.
async fn scrape_between(
    exporter: &Exporter,
    cgroups: &Cgroups,
    cgroup: &Cgroup,
) -> (Reading, Metrics, Reading) {
    let before = cgroups.read_now(cgroup);
    let m = exporter.metrics().await;
    (before, m, cgroups.read_now(cgroup))
}

/// Asserts `value` lies between two cgroup reads taken around the scrape
/// that gave it.
fn between(what: &str, value: f64, before: f64, after: f64) {
    assert!(
        before - 0.01 <= value && value <= after + 0.01,
        "{what} {value} not within the cgroup's [{before}, {after}] around the scrape"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_seconds_and_throttling_follow_the_cgroup_counters() {
    let cgroups = Cgroups::of_engine("cpu-seconds");
    let c = Container::run(
        &unique("dse-lc-cpu-seconds"),
        &["--cpus", "0.5"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let cgroup = cgroups.of(&c);
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    exporter.metrics().await;
    let (a0, a, a1) = scrape_between(&exporter, &cgroups, &cgroup).await;
    // Enough CPU time for the growth to dwarf what the scrapes themselves
    // span; a busy host only makes this take longer.
    wait_until("2 CPU-seconds more in the cgroup", PATIENCE, || {
        match cgroups.read(&cgroup)?.cpu_seconds() - a1.cpu_seconds() {
            grew if grew >= 2.0 => Ok(()),
            grew => Err(format!("{grew} s")),
        }
    });
    let (b0, b, b1) = scrape_between(&exporter, &cgroups, &cgroup).await;

    let get = |m: &Metrics, metric: &str| {
        m.get(metric, &c.name)
            .unwrap_or_else(|| panic!("no {metric}"))
    };
    let metric = "container_cpu_usage_seconds_total";
    between(metric, get(&a, metric), a0.cpu_seconds(), a1.cpu_seconds());
    between(metric, get(&b, metric), b0.cpu_seconds(), b1.cpu_seconds());
    let grew = get(&b, metric) - get(&a, metric);
    between(
        "CPU-seconds growth",
        grew,
        b0.cpu_seconds() - a1.cpu_seconds(),
        b1.cpu_seconds() - a0.cpu_seconds(),
    );
    let periods = "container_cpu_cfs_periods_total";
    between(
        periods,
        get(&b, periods),
        b0.cfs_periods() as f64,
        b1.cfs_periods() as f64,
    );
    let throttled = "container_cpu_cfs_throttled_periods_total";
    between(
        throttled,
        get(&b, throttled),
        b0.cfs_throttled_periods() as f64,
        b1.cfs_throttled_periods() as f64,
    );
    assert_eq!(b1.cpu_quota(), Some(50_000));
    assert_eq!(b.get("container_spec_cpu_quota", &c.name), Some(50_000.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn network_counters_grow_after_traffic_inside_the_container() {
    let c = Container::sleeper(&unique("dse-lc-network"), &[]);
    let gateway = docker(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Gateway}}",
        &c.name,
    ]);
    assert!(!gateway.is_empty(), "container has no bridge gateway");
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
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
        &unique("dse-lc-restarting"),
        &["--restart", "on-failure:2"],
        &["sh", "-c", "exit 3"],
    );
    wait_inspect(&c, "{{.RestartCount}} {{.State.Status}}", "2 exited");
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
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
            &unique("dse-lc-oom"),
            &["--memory", "8m", "--memory-swap", "8m"],
            &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=32M count=1"],
        );
        wait_inspect(&c, "{{.State.Status}} {{.State.ExitCode}}", "exited 137");
        if c.inspect("{{.State.OOMKilled}}") == "true" {
            break c;
        }
        attempt += 1;
        assert!(attempt < 5, "the engine never reported the OOM kill");
    };
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    let m = exporter.metrics().await;
    assert_eq!(m.get("container_oom_killed", &c.name), Some(1.0));
    assert_eq!(m.get("container_exit_code", &c.name), Some(137.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_query_narrows_one_scrape_and_only_those_are_asked() {
    let key = unique("dse.adhoc");
    let web = Container::sleeper(
        &unique("dse-lc-adhoc-web"),
        &["--label", &format!("{key}=web")],
    );
    let db = Container::sleeper(
        &unique("dse-lc-adhoc-db"),
        &["--label", &format!("{key}=db")],
    );
    let dir = TempDir::new("adhoc");
    let proxy = Proxy::start(&dir.0.join("e.sock"), engine_socket());
    let config = format!("[containers]\nlabels = [\"{key}\"]\n");
    let exporter = Exporter::start(&config, &proxy.url()).await;

    let query = format!("/metrics?name={}", web.name);
    let (status, body) = common::get(exporter.addr, &query, &[]).await;
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
    assert_eq!(stats.len(), first_round_stats_calls(), "{stats:?}");
    assert!(stats.iter().all(|s| s.path.contains(&web.id)), "{stats:?}");

    let query = format!("/metrics?label={key}%3Ddb");
    let (_, body) = common::get(exporter.addr, &query, &[]).await;
    let m = common::Metrics::parse(&body);
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![db.name.clone()]
    );

    // A query never widens the configured selection.
    let outside = Container::sleeper(&unique("dse-lc-adhoc-outside"), &[]);
    let query = format!("/metrics?name={}", outside.name);
    let (_, body) = common::get(exporter.addr, &query, &[]).await;
    let m = common::Metrics::parse(&body);
    assert!(m.names("container_memory_usage_bytes").is_empty());

    let (status, body) = common::get(exporter.addr, "/metrics?nmae=x", &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("nmae"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_accepts_a_real_answer_with_compose_labels() {
    let c = Container::sleeper(
        &unique("dse-lc-promtool"),
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
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    exporter.metrics().await;
    let (_, body) = exporter.scrape().await;
    let name = &c.name;
    assert!(body.contains(&format!("container_info{{name=\"{name}\",id=\"")));
    assert!(body.contains(
        "container_label_com_docker_compose_project=\"shop\",container_label_com_docker_compose_service=\"web\"} 1"
    ));
    let m = common::Metrics::parse(&body);
    let cpu =
        m.0.iter()
            .find(|s| s.name == "container_cpu_usage_percent")
            .expect("a CPU percent");
    assert_eq!(&cpu.labels["name"], name);
    assert_eq!(
        cpu.labels["container_label_com_docker_compose_project"],
        "shop"
    );
    common::promtool_check_metrics(&body);
}

/// The sum of a blkio list's entries whose op starts with `first` (v1
/// `Read`, v2 `read`), as the engine reports them.
fn engine_blkio(stats: &serde_json::Value, list: &str, first: char) -> f64 {
    stats["blkio_stats"][list]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["op"]
                .as_str()
                .and_then(|op| op.chars().next())
                .is_some_and(|c| c.eq_ignore_ascii_case(&first))
        })
        .filter_map(|e| e["value"].as_f64())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn accounted_series_exist_exactly_where_the_engine_reports_them() {
    // Direct I/O on a volume (overlayfs refuses O_DIRECT), limits on memory,
    // pids and CPU: everything a kernel may or may not account.
    let c = Container::run(
        &unique("dse-lc-accounted"),
        &[
            "--memory",
            "32m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "-v",
            "/data",
        ],
        &[
            "sh",
            "-c",
            "while :; do dd if=/dev/zero of=/data/f bs=64k count=16 oflag=direct 2>/dev/null; \
             dd if=/data/f of=/dev/null bs=64k iflag=direct 2>/dev/null; sleep 0.2; done",
        ],
    );
    let cgroups = Cgroups::of_engine("accounted");
    let cgroup = cgroups.of(&c);
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    // Writes have happened once the engine's own counters moved, or after a
    // few rounds of the loop where it accounts nothing.
    wait_until("the I/O loop ran", PATIENCE, || {
        match docker(&["exec", &c.name, "ls", "/data/f"]) {
            out if out.contains("/data/f") => Ok(()),
            out => Err(out),
        }
    });
    let kernel_before = cgroups.read_now(&cgroup);
    let before = accounted::engine_stats(engine_socket(), &c.id);
    let m = exporter.metrics().await;
    let after = accounted::engine_stats(engine_socket(), &c.id);
    let kernel_after = cgroups.read_now(&cgroup);
    let families: Vec<&str> = [
        "container_fs_reads_bytes_total",
        "container_fs_writes_bytes_total",
        "container_fs_reads_total",
        "container_fs_writes_total",
        "container_memory_swap",
        "container_memory_max_usage_bytes",
        "container_memory_failcnt",
        "container_pids_limit",
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
    ]
    .into_iter()
    .filter(|f| accounted::is_accounted(f))
    .collect();
    assert_eq!(families.len(), 10, "every family here is an accounted one");
    for family in families {
        let (was, is) = (
            accounted::reports(&before, family),
            accounted::reports(&after, family),
        );
        let got = m.get(family, &c.name);
        if !was && !is {
            assert_eq!(
                got, None,
                "the engine reports nothing for {family}; the exporter made up {got:?}"
            );
        } else if was && is {
            assert!(
                got.is_some(),
                "the engine reports {family}; the exporter left it out"
            );
        }
    }
    // Where block I/O is reported, the byte counters lie between the
    // engine's readings around the scrape.
    for (family, list, op) in [
        (
            "container_fs_reads_bytes_total",
            "io_service_bytes_recursive",
            'r',
        ),
        (
            "container_fs_writes_bytes_total",
            "io_service_bytes_recursive",
            'w',
        ),
        ("container_fs_reads_total", "io_serviced_recursive", 'r'),
        ("container_fs_writes_total", "io_serviced_recursive", 'w'),
    ] {
        if let Some(got) = m.get(family, &c.name) {
            let (lo, hi) = (
                engine_blkio(&before, list, op),
                engine_blkio(&after, list, op),
            );
            assert!(
                lo <= got && got <= hi,
                "{family} {got} not within the engine's [{lo}, {hi}] around the scrape"
            );
        }
    }
    // And the kernel's own count, in the container's cgroup: where it lists
    // devices the byte counters lie between its reads, where it lists none
    // they are absent.
    for (family, op) in [
        ("container_fs_reads_bytes_total", IoOp::Read),
        ("container_fs_writes_bytes_total", IoOp::Write),
    ] {
        let got = m.get(family, &c.name);
        match (kernel_before.io_bytes(op), kernel_after.io_bytes(op)) {
            (None, None) => assert_eq!(
                got, None,
                "the cgroup lists no block device; the exporter made up {family} {got:?}"
            ),
            (lo, Some(hi)) => {
                // Absent only if the first device appeared during the scrape.
                let got = got.or(lo.is_none().then_some(0.0));
                let lo = lo.unwrap_or(0) as f64;
                assert!(
                    got.is_some_and(|got| lo <= got && got <= hi as f64),
                    "{family} {got:?} not within the cgroup's [{lo}, {hi}] around the scrape"
                );
            }
            (Some(_), None) => panic!("the cgroup lost its block devices"),
        }
    }
    // The pids limit, where reported, is the one the container was given.
    if let Some(limit) = m.get("container_pids_limit", &c.name) {
        assert_eq!(limit, 20.0);
    }
    assert_eq!(kernel_after.pids_max(), Some(20));
}
