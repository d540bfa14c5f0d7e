//! Memory as the engine's own tools show it: the working set and limit as
//! `docker stats` prints them, and a kill by the memory limit (every memory
//! series against the cgroup's files is in `cgroup`).

use common::cgroup::{Cgroups, MemoryStat};
use common::engine::engine_flavor;
use common::{
    docker, names_config, unique, wait_until, wait_until_async, Container, Exporter, PATIENCE,
};
use docker_stats_exporter::engine::Flavor;

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
    let exporter = Exporter::local(&names_config(&[&c.name], common::SLOW_ENGINE)).await;
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
    let raw = m
        .get("container_memory_usage_bytes", &c.name)
        .expect("memory usage");
    let cache = m.get("container_memory_cache", &c.name);
    match engine_flavor() {
        Flavor::Docker => {
            assert!(
                raw > ws,
                "usage {raw} includes the page cache, working set {ws} not"
            );
            assert!(cache >= Some(8.0 * 1024.0 * 1024.0), "cache {cache:?}");
        }
        // Podman's usage is its own sum without page cache (anonymous
        // memory on 5.4, usage less inactive_file later), and it reports no
        // memory.stat: the page cache is in the cgroup only.
        Flavor::Podman => {
            assert_eq!(raw, ws, "Podman's usage is its working set");
            assert_eq!(cache, None, "Podman reports no page cache");
            let current = cgroups.read_now(&cgroup).memory_usage() as f64;
            assert!(
                current >= ws + 8.0 * 1024.0 * 1024.0,
                "the cgroup's usage {current} holds the 8 MiB of page cache"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn container_killed_by_its_memory_limit_is_oom_killed() {
    // Docker 20.10 on cgroup v1 sometimes misses the OOM event of a process
    // it killed (exit 137, OOMKilled false); try until the engine saw it.
    // The limit leaves room for runc's own start in the container's cgroup:
    // at 8 MiB, on an emulated VM, runc was killed before the command ran
    // ("cannot start a stopped process").
    let mut attempt = 0;
    let c = loop {
        let c = Container::run(
            &unique("dse-lc-oom"),
            &["--memory", "32m", "--memory-swap", "32m"],
            &["sh", "-c", "dd if=/dev/zero of=/dev/null bs=128M count=1"],
        );
        c.wait_inspect("{{.State.Status}} {{.State.ExitCode}}", "exited 137");
        if c.inspect("{{.State.OOMKilled}}") == "true" {
            break c;
        }
        attempt += 1;
        assert!(attempt < 5, "the engine never reported the OOM kill");
    };
    let exporter = Exporter::local(&names_config(&[&c.name], common::SLOW_ENGINE)).await;
    let m = exporter.whole_metrics().await;
    assert_eq!(m.get("container_oom_killed", &c.name), Some(1.0));
    assert_eq!(m.get("container_exit_code", &c.name), Some(137.0));
}
