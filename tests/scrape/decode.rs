//! Recorded engine answers decoded into samples: Docker on cgroup v1, Podman
//! 4.3 and 5.4 and a published cgroup v2 answer (see tests/fixtures/README.md).

#![allow(clippy::unwrap_used)]

use docker_stats_exporter::engine::model::Stats;
use docker_stats_exporter::scrape::cpu::{cpu_percent, cpu_percent_wall, CpuReading};
use docker_stats_exporter::scrape::sample::Sample;

fn fixture(name: &str) -> Stats {
    let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

fn sample(name: &str) -> Sample {
    Sample::from_stats(&fixture(name)).expect("a running container")
}

#[test]
fn docker_v1_busy_container() {
    let s = sample("stats-cgroupv1-docker20.10-cap-busy.json");
    let (now, before) = (s.cpu.unwrap(), s.precpu.unwrap());
    let pct = cpu_percent(now, before).unwrap();
    // `yes` capped at 0.5 CPU on a 2-core host: a quarter of the host.
    assert!((pct - 24.766).abs() < 0.01, "{pct}");
    assert_eq!(s.memory_usage, Some(2_650_112));
    assert_eq!(s.memory_limit, Some(67_108_864));
    // v1 working set: usage - total_inactive_file.
    assert_eq!(s.memory_working_set, Some(2_650_112 - 270_336));
    assert_eq!(s.memory_rss, Some(57_344));
    assert_eq!(s.memory_cache, Some(1_974_272));
    assert!(s.memory_max_usage.is_some());
    assert_eq!(s.network_rx_bytes(), Some(736));
    assert_eq!(s.network_tx_bytes(), Some(0));
    assert_eq!(s.interfaces.len(), 1);
    assert_eq!(s.interfaces[0].name, "eth0");
    assert_eq!(s.pids, Some(1));
    // Empty blkio lists on this host mean "not reported", not zero.
    assert_eq!(s.fs_read_bytes, None);
    assert!(s.cfs_throttled_periods.unwrap() > 0);
}

#[test]
fn one_shot_answer_has_no_engine_window_but_pairs_with_the_previous_scrape() {
    let earlier = sample("stats-cgroupv1-docker20.10-cap-busy.json");
    let later = sample("stats-cgroupv1-docker20.10-cap-busy-oneshot.json");
    assert_eq!(later.precpu, None, "one-shot zeroes precpu_stats");
    let pct = cpu_percent(later.cpu.unwrap(), earlier.cpu.unwrap()).unwrap();
    assert!((pct - 24.88).abs() < 0.01, "{pct}");
}

#[test]
fn idle_container_uses_no_cpu() {
    let s = sample("stats-cgroupv1-docker20.10-cap-idle.json");
    assert_eq!(cpu_percent(s.cpu.unwrap(), s.precpu.unwrap()), Some(0.0));
    assert_eq!(s.memory_limit, Some(33_554_432));
    // total_inactive_file = 0: working set is usage.
    assert_eq!(s.memory_working_set, s.memory_usage);
}

#[test]
fn podman_answer_without_precpu_memory_stats_or_blkio() {
    let s = sample("stats-podman4.3-cgroupv1-busy.json");
    assert!(s.cpu.is_some());
    assert_eq!(s.precpu, None);
    assert_eq!(s.memory_usage, Some(598_016));
    assert_eq!(s.memory_limit, Some(67_108_864));
    assert_eq!(s.memory_working_set, Some(598_016));
    assert_eq!((s.memory_rss, s.memory_cache), (None, None));
    assert_eq!((s.fs_reads, s.fs_read_bytes), (None, None));
    assert_eq!(s.network_tx_bytes(), Some(1360));
    assert_eq!(s.interfaces[0].name, "network");
}

#[test]
fn cgroup_v2_answer_with_unlimited_memory_and_lowercase_io_ops() {
    let s = sample("stats-cgroupv2-ecs-docs-example.json");
    assert_eq!(s.memory_limit, Some(u64::MAX));
    // v2 working set: usage - inactive_file.
    assert_eq!(s.memory_working_set, Some(83_562_496 - 48_271_360));
    assert_eq!(s.memory_rss, Some(32_264_192));
    assert_eq!(s.memory_cache, Some(48_533_504));
    assert_eq!((s.memory_max_usage, s.memory_failcnt), (None, None));
    assert_eq!(s.fs_read_bytes, Some(2 * 48_173_056));
    assert_eq!(s.fs_write_bytes, Some(131_072));
    assert_eq!(s.fs_reads, None);
    assert_eq!((s.pids, s.pids_limit), (None, None));
    assert_eq!(s.network_rx_bytes(), None, "no interfaces reported");
    let pct = cpu_percent(s.cpu.unwrap(), s.precpu.unwrap()).unwrap();
    assert!(pct > 0.0 && pct < 100.0);
}

#[test]
fn podman5_bytes_are_the_read_and_write_entries_not_its_operation_counts() {
    let s = sample("stats-podman5.4-cgroupv2-rootless-io.json");
    // 4 MiB each way; `rios`/`wios` (64 each) are counts, not bytes.
    assert_eq!(s.fs_read_bytes, Some(4_194_304));
    assert_eq!(s.fs_write_bytes, Some(4_194_304));
    assert_eq!((s.fs_reads, s.fs_writes), (None, None));
    assert_eq!(s.memory_limit, Some(67_108_864));
    assert_eq!(s.memory_working_set, s.memory_usage, "no stats map");
    assert_eq!(s.precpu, None);
    assert!(s.cpu.is_some());
    assert!(s.network_rx_bytes().is_some());
}

#[test]
fn stopped_container_answer_is_not_a_sample() {
    let mut stats = fixture("stats-cgroupv1-docker20.10-cap-idle.json");
    stats.read = Some("0001-01-01T00:00:00Z".into());
    assert_eq!(Sample::from_stats(&stats), None);
}

#[test]
fn dying_container_with_zeroed_cpu_gives_no_percent_instead_of_underflow() {
    let mut stats = fixture("stats-cgroupv1-docker20.10-cap-busy.json");
    if let Some(usage) = stats.cpu_stats.as_mut().and_then(|c| c.cpu_usage.as_mut()) {
        usage.total_usage = Some(0);
    }
    let s = Sample::from_stats(&stats).unwrap();
    assert_eq!(s.cpu, None);
}

#[test]
fn cpu_seconds_do_not_depend_on_the_hosts_counter() {
    let mut stats = fixture("stats-cgroupv1-docker20.10-cap-busy.json");
    if let Some(cpu) = stats.cpu_stats.as_mut() {
        cpu.system_cpu_usage = None;
    }
    let s = Sample::from_stats(&stats).unwrap();
    let cpu = s.cpu.expect("a reading without system_cpu_usage");
    assert!(cpu.total_ns > 0);
    assert_eq!(cpu.system_ns, None);
}

#[test]
fn counters_going_backwards_or_standing_still_give_no_percent() {
    let a = CpuReading {
        total_ns: 10,
        system_ns: Some(100),
        at: Some(1.0),
        cpus: Some(2),
    };
    let b = CpuReading {
        total_ns: 5,
        system_ns: Some(200),
        at: Some(2.0),
        cpus: Some(2),
    };
    assert_eq!(cpu_percent(b, a), None, "total went backwards");
    assert_eq!(cpu_percent(a, b), None, "system went backwards");
    assert_eq!(cpu_percent(a, a), None, "same tick");
}

#[test]
fn container_lists_of_both_engines_decode() {
    for name in [
        "containers-list-docker20.10.json",
        "containers-list-podman4.3.json",
    ] {
        let path = format!("{}/tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        let list: Vec<bollard::models::ContainerSummary> =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert!(!list.is_empty());
        assert!(list.iter().all(|c| c.id.is_some() && c.names.is_some()));
    }
}

#[test]
fn podman_cpu_percent_uses_wall_time_not_its_busy_only_system_counter() {
    // Two Podman 4.3 readings of a 0.5-CPU burner one second apart on a
    // 2-CPU host: its system_cpu_usage advanced by the host's busy time only
    // (0.759 s), so docker's formula would say 67 %; a quarter of the host is
    // right.
    let earlier = sample("stats-podman4.3-cgroupv1-busy.json").cpu.unwrap();
    assert_eq!(earlier.cpus, Some(2));
    let at = earlier.at.expect("read timestamp");
    let later = CpuReading {
        total_ns: earlier.total_ns + 510_558_987,
        system_ns: earlier.system_ns.map(|n| n + 758_985_032),
        at: Some(at + 1.0),
        cpus: Some(2),
    };
    let busy_only = cpu_percent(later, earlier).unwrap();
    assert!((busy_only - 67.27).abs() < 0.01, "{busy_only}");
    let wall = cpu_percent_wall(later, earlier).unwrap();
    assert!((wall - 25.53).abs() < 0.01, "{wall}");
    assert_eq!(cpu_percent_wall(earlier, later), None, "backwards");
}

#[path = "../../fuzz/fuzz_targets/checks.rs"]
mod checks;

/// The inputs of one fuzz target: its committed seeds and every input a
/// fuzzer failed on (fuzz/artifacts-found/, named after the target).
fn fuzz_inputs(target: &str) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut inputs = Vec::new();
    for (dir, found) in [
        (root.join("corpus").join(target), false),
        (root.join("artifacts-found"), true),
    ] {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if found && !name.starts_with(target) || name.ends_with(".md") {
                continue;
            }
            let data = std::fs::read(&path).unwrap();
            inputs.push((path, data));
        }
    }
    inputs
}

/// Every fuzz target's checks over its seeds and past findings: what the
/// fuzzers assert holds for the inputs that matter most, in every test run.
#[test]
fn fuzz_findings_and_seeds_pass_the_fuzz_targets_checks() {
    for (target, check) in [
        ("stats_decode", checks::stats as fn(&[u8])),
        ("inspect_decode", checks::inspect),
        ("config_parse", checks::config),
    ] {
        let inputs = fuzz_inputs(target);
        assert!(inputs.len() >= 3, "{target}: {} inputs", inputs.len());
        for (path, data) in inputs {
            let outcome = std::panic::catch_unwind(|| check(&data));
            assert!(outcome.is_ok(), "{target} fails on {}", path.display());
        }
    }
}
