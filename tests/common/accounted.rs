//! What the engine reports for a container, read from its own stats answer:
//! the series that exist only where the kernel accounts something (block
//! I/O, swap, failcnt, max_usage, pids limits, CFS throttling). A test that
//! expects one of these series first asks the engine whether it reports the
//! field; where it does not, the test asserts the series is absent.

use std::collections::BTreeSet;
use std::process::Command;

use docker_stats_exporter::engine::Flavor;
use serde_json::Value;

/// Whether a stats answer carries a field.
type Reported = fn(&Value) -> bool;

/// The families that depend on kernel accounting, each with the stats field
/// that feeds it.
const ACCOUNTED: &[(&[&str], Reported)] = &[
    (
        &[
            "container_fs_reads_bytes_total",
            "container_fs_writes_bytes_total",
        ],
        |s| non_empty(&s["blkio_stats"]["io_service_bytes_recursive"]),
    ),
    (
        &["container_fs_reads_total", "container_fs_writes_total"],
        |s| non_empty(&s["blkio_stats"]["io_serviced_recursive"]),
    ),
    (&["container_memory_swap"], |s| {
        s["memory_stats"]["stats"]["total_swap"].is_u64()
    }),
    (&["container_memory_max_usage_bytes"], |s| {
        s["memory_stats"]["max_usage"].is_u64()
    }),
    // Docker leaves a cgroup v1 failcnt of 0 out of its answer: a v1 answer
    // (its `total_*` keys) stands for 0.
    (&["container_memory_failcnt"], |s| {
        s["memory_stats"]["failcnt"].is_u64()
            || s["memory_stats"]["stats"]["total_inactive_file"].is_u64()
    }),
    (
        &["container_pids_limit"],
        |s| matches!(s["pids_stats"]["limit"].as_u64(), Some(l) if l > 0 && l != u64::MAX),
    ),
    (
        &[
            "container_cpu_cfs_periods_total",
            "container_cpu_cfs_throttled_periods_total",
            "container_cpu_cfs_throttled_seconds_total",
        ],
        // Podman's throttling counters are zeros whatever the cgroup
        // counted: no report (the exporter leaves them out).
        |s| {
            s["cpu_stats"]["throttling_data"].is_object()
                && super::engine::engine_flavor() == Flavor::Docker
        },
    ),
];

fn non_empty(v: &Value) -> bool {
    v.as_array().is_some_and(|a| !a.is_empty())
}

/// Whether `family` depends on what the kernel accounts.
pub fn is_accounted(family: &str) -> bool {
    ACCOUNTED.iter().any(|(names, _)| names.contains(&family))
}

/// Whether the engine's stats answer `stats` carries what `family` is made
/// from. Families that do not depend on accounting are always reported.
pub fn reports(stats: &Value, family: &str) -> bool {
    ACCOUNTED
        .iter()
        .find(|(names, _)| names.contains(&family))
        .is_none_or(|(_, reported)| reported(stats))
}

/// The accounted families that none of `answers` carries.
pub fn unreported(answers: &[Value]) -> BTreeSet<&'static str> {
    ACCOUNTED
        .iter()
        .filter(|(_, reported)| !answers.iter().any(reported))
        .flat_map(|(names, _)| names.iter().copied())
        .collect()
}

/// The engine's own stats answer for container `id`, asked on `socket`
/// (a unix socket path) as the exporter asks: `stream=false`, one-shot.
pub fn engine_stats(socket: &str, id: &str) -> Value {
    let url = format!("http://engine/containers/{id}/stats?stream=false&one-shot=true");
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "30", "--unix-socket", socket, &url])
        .output()
        .unwrap_or_else(|e| panic!("cannot run curl ({e}); scripts/setup-engine.sh installs it"));
    assert!(
        out.status.success(),
        "GET {url} on {socket}: curl exit {:?}",
        out.status.code()
    );
    serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("GET {url} on {socket}: not JSON: {e}"))
}

/// The stats answers of every running container on the engine at `socket`,
/// asked side by side (on Docker 20.10 each waits for the engine's tick).
pub fn all_engine_stats(socket: &str) -> Vec<Value> {
    let host = format!("unix://{socket}");
    let docker = super::docker_for(&host);
    let out = Command::new(&docker)
        .args(["-H", &host, "ps", "-q", "--no-trunc"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", docker.display()));
    let ids = String::from_utf8_lossy(&out.stdout).into_owned();
    std::thread::scope(|scope| {
        let calls: Vec<_> = ids
            .lines()
            .map(|id| scope.spawn(move || engine_stats(socket, id.trim())))
            .collect();
        calls
            .into_iter()
            .map(|c| c.join().expect("stats call thread"))
            .collect()
    })
}
