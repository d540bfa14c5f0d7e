//! The engine's stats and inspect answers as the exporter reads them: only
//! the fields it uses, named as the engine's JSON names them, every one
//! optional (an engine that leaves a field out leaves its series out).
//! Decoded here rather than through the client library's generated models,
//! which describe hundreds of fields the exporter never reads.

use std::collections::HashMap;

use serde::Deserialize;

/// `GET /containers/{id}/stats?stream=false`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Stats {
    /// When the engine read the counters (RFC 3339); zeroed for a container
    /// that is not running.
    pub read: Option<String>,
    pub cpu_stats: Option<CpuStats>,
    /// The engine's previous reading (Docker up to 24 without one-shot).
    pub precpu_stats: Option<CpuStats>,
    pub memory_stats: Option<MemoryStats>,
    /// By interface name.
    pub networks: Option<HashMap<String, NetworkStats>>,
    pub blkio_stats: Option<BlkioStats>,
    pub pids_stats: Option<PidsStats>,
}

/// CPU counters of one reading.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CpuStats {
    pub cpu_usage: Option<CpuUsage>,
    /// The host's CPU time in nanoseconds (Docker), or its busy time
    /// (Podman).
    pub system_cpu_usage: Option<u64>,
    pub online_cpus: Option<u32>,
    pub throttling_data: Option<Throttling>,
}

/// The container's CPU time in nanoseconds.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct CpuUsage {
    pub total_usage: Option<u64>,
    /// Per CPU, on cgroup v1 only.
    pub percpu_usage: Option<Vec<u64>>,
    pub usage_in_kernelmode: Option<u64>,
    pub usage_in_usermode: Option<u64>,
}

/// CFS throttling counters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct Throttling {
    pub periods: Option<u64>,
    pub throttled_periods: Option<u64>,
    pub throttled_time: Option<u64>,
}

/// Memory counters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct MemoryStats {
    pub usage: Option<u64>,
    pub max_usage: Option<u64>,
    pub failcnt: Option<u64>,
    pub limit: Option<u64>,
    /// The cgroup's own memory.stat (`total_*` keys on cgroup v1).
    pub stats: Option<HashMap<String, u64>>,
}

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct NetworkStats {
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_packets: Option<u64>,
    pub tx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_errors: Option<u64>,
    pub rx_dropped: Option<u64>,
    pub tx_dropped: Option<u64>,
}

/// Block I/O by device and operation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BlkioStats {
    pub io_service_bytes_recursive: Option<Vec<BlkioEntry>>,
    pub io_serviced_recursive: Option<Vec<BlkioEntry>>,
}

/// One device's count for one operation (`read`, `write`, `Read`, ...).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct BlkioEntry {
    pub major: Option<u64>,
    pub minor: Option<u64>,
    pub op: Option<String>,
    pub value: Option<u64>,
}

/// Process counts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct PidsStats {
    pub current: Option<u64>,
    /// 0 or `u64::MAX` when unlimited, depending on the engine.
    pub limit: Option<u64>,
}

/// One container of `GET /containers/json`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Summary {
    pub id: Option<String>,
    /// Every name, each with a leading `/`, link aliases too.
    pub names: Option<Vec<String>>,
    pub labels: Option<HashMap<String, String>>,
    pub image: Option<String>,
    #[serde(rename = "ImageID")]
    pub image_id: Option<String>,
    /// Any text: Podman briefly says `stopped`, a state Docker's API
    /// description does not list.
    pub state: Option<String>,
    pub status: Option<String>,
    pub size_rw: Option<i64>,
    /// From API 1.52.
    pub health: Option<Health>,
}

/// `GET /containers/{id}/json`.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Inspect {
    pub restart_count: Option<i64>,
    pub state: Option<InspectState>,
    pub host_config: Option<HostConfig>,
    pub config: Option<InspectConfig>,
    /// Where the engine keeps the container's `resolv.conf` (rootless
    /// Podman: under `/run/user/<uid>/`).
    pub resolv_conf_path: Option<String>,
    pub hostname_path: Option<String>,
}

/// `State` of an inspect answer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectState {
    #[serde(rename = "OOMKilled")]
    pub oom_killed: Option<bool>,
    pub exit_code: Option<i64>,
    pub started_at: Option<String>,
    /// `0001-01-01T00:00:00Z` until the container first stops.
    pub finished_at: Option<String>,
    pub health: Option<Health>,
}

/// The health check's state.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Health {
    /// `none`, `starting`, `healthy` or `unhealthy`.
    pub status: Option<String>,
}

/// `HostConfig`: the limits the container was created with.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct HostConfig {
    pub cpu_period: Option<i64>,
    pub cpu_quota: Option<i64>,
    pub cpu_shares: Option<i64>,
    pub nano_cpus: Option<i64>,
    pub memory: Option<i64>,
    pub memory_swap: Option<i64>,
    pub memory_reservation: Option<i64>,
    pub cgroup_parent: Option<String>,
}

/// `Config`: what the container was created from.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct InspectConfig {
    pub image: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_inspect_answer_decodes_to_the_fields_read() {
        let text = include_str!("../../tests/fixtures/inspect-docker20.10-oom-killed.json");
        let i: Inspect = serde_json::from_str(text).unwrap();
        let state = i.state.unwrap();
        assert_eq!(state.oom_killed, Some(true));
        assert!(state.started_at.is_some());
        assert!(i.host_config.unwrap().memory.is_some_and(|m| m > 0));
        assert!(i.config.unwrap().image.is_some());
    }

    #[test]
    fn a_stats_answer_decodes_to_the_fields_read() {
        let text = include_str!("../../tests/fixtures/stats-cgroupv1-docker20.10-cap-busy.json");
        let s: Stats = serde_json::from_str(text).unwrap();
        let cpu = s.cpu_stats.unwrap();
        assert!(cpu.cpu_usage.unwrap().total_usage.is_some_and(|n| n > 0));
        assert!(cpu.throttling_data.unwrap().periods.is_some());
        assert!(s
            .memory_stats
            .unwrap()
            .stats
            .unwrap()
            .contains_key("total_rss"));
        assert!(!s.networks.unwrap().is_empty());
    }
}

/// `GET /version`: which engine answers.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Version {
    pub version: Option<String>,
    /// Podman lists itself here (`Podman Engine`).
    pub components: Option<Vec<Component>>,
}

/// One part of the engine, as `/version` lists them.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Component {
    pub name: Option<String>,
}

/// `GET /info`: the machine the engine runs on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Info {
    #[serde(rename = "NCPU")]
    pub ncpu: Option<i64>,
    pub mem_total: Option<i64>,
    /// `cgroupfs` or `systemd`.
    pub cgroup_driver: Option<String>,
    /// `1` or `2`.
    pub cgroup_version: Option<String>,
    /// `name=rootless` among them for a rootless engine.
    pub security_options: Option<Vec<String>>,
}
