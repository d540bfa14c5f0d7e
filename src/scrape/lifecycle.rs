//! What a container's inspect answer says about its life: restarts, OOM kill,
//! health, start time and configured limits.

use crate::engine::model::Inspect;

/// Lifecycle values of one container; every field optional.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    /// Times the engine restarted it under its restart policy.
    pub restart_count: Option<u64>,
    /// Whether its last exit was an OOM kill.
    pub oom_killed: Option<bool>,
    /// Exit code of its last run (meaningful when not running).
    pub exit_code: Option<i64>,
    /// `starting`, `healthy` or `unhealthy`; `None` without a health check.
    pub health: Option<String>,
    /// Unix time it last started.
    pub started_at: Option<f64>,
    /// Unix time its last run ended, once it has ended one.
    pub finished_at: Option<f64>,
    /// CFS quota in microseconds per period (from `--cpus` or `--cpu-quota`),
    /// where one is set.
    pub cpu_quota: Option<u64>,
    /// CFS period in microseconds (the kernel's default where not set).
    pub cpu_period: Option<u64>,
    /// Relative CPU weight (the kernel's default where not set).
    pub cpu_shares: Option<u64>,
    /// Memory limit in bytes; 0 when unlimited.
    pub memory_limit: Option<u64>,
    /// Memory plus swap limit in bytes; 0 when unlimited.
    pub memory_swap_limit: Option<u64>,
    /// Soft memory limit in bytes; 0 when not set.
    pub memory_reservation: Option<u64>,
    /// The image as the container was created with (`Config.Image`).
    pub image: Option<String>,
    /// The container's own `CgroupParent`, where it set one.
    pub cgroup_parent: Option<String>,
    /// The user whose runtime directory (`/run/user/<uid>`) holds the
    /// container's `resolv.conf`: rootless Podman's user, whose systemd
    /// manager the container's cgroup is under.
    pub runtime_uid: Option<u32>,
}

/// The kernel's CFS period when the container sets none.
const DEFAULT_CFS_PERIOD_US: u64 = 100_000;
/// The kernel's CPU weight (cgroup v1 `cpu.shares`) when none is set.
const DEFAULT_CPU_SHARES: u64 = 1024;

impl Lifecycle {
    /// Extracts the values from an inspect answer.
    pub fn from_inspect(i: &Inspect) -> Self {
        let positive = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).filter(|v| *v > 0);
        let mut l = Lifecycle {
            restart_count: i.restart_count.and_then(|v| u64::try_from(v).ok()),
            ..Default::default()
        };
        if let Some(state) = &i.state {
            l.oom_killed = state.oom_killed;
            l.exit_code = state.exit_code;
            l.health = state
                .health
                .as_ref()
                .and_then(|h| h.status.clone())
                .filter(|s| !s.is_empty() && s != "none");
            l.started_at = state
                .started_at
                .as_deref()
                .and_then(crate::scrape::timestamp::parse_rfc3339);
            // Docker's zero time (year 1), a container that never ended, is None.
            l.finished_at = state
                .finished_at
                .as_deref()
                .and_then(crate::scrape::timestamp::parse_rfc3339);
        }
        if let Some(hc) = &i.host_config {
            let period = positive(hc.cpu_period);
            // `--cpus` sets NanoCpus; the engine turns it into a quota over
            // the default period.
            l.cpu_quota = positive(hc.cpu_quota).or_else(|| {
                positive(hc.nano_cpus)
                    .and_then(|n| n.checked_mul(period.unwrap_or(DEFAULT_CFS_PERIOD_US)))
                    .map(|n| n / 1_000_000_000)
            });
            l.cpu_period = Some(period.unwrap_or(DEFAULT_CFS_PERIOD_US));
            l.cpu_shares = Some(positive(hc.cpu_shares).unwrap_or(DEFAULT_CPU_SHARES));
            let memory = positive(hc.memory);
            l.memory_limit = Some(memory.unwrap_or(0));
            l.memory_swap_limit = Some(swap_limit(memory, hc.memory_swap));
            l.memory_reservation = Some(positive(hc.memory_reservation).unwrap_or(0));
            l.cgroup_parent = hc.cgroup_parent.clone().filter(|p| !p.is_empty());
        }
        l.runtime_uid = [&i.resolv_conf_path, &i.hostname_path]
            .into_iter()
            .find_map(|p| runtime_uid(p.as_deref()?));
        l.image = i
            .config
            .as_ref()
            .and_then(|c| c.image.clone())
            .filter(|i| !i.is_empty());
        l
    }

    /// The health check's verdict as cAdvisor's `container_health_state`
    /// gives it: 1 healthy, 0 unhealthy or still starting, -1 without a
    /// health check.
    pub fn health_state(&self) -> i64 {
        match self.health.as_deref() {
            Some("healthy") => 1,
            Some(_) => 0,
            None => -1,
        }
    }
}

/// `<uid>` of a path under `/run/user/<uid>/`.
fn runtime_uid(path: &str) -> Option<u32> {
    let (uid, _) = path.strip_prefix("/run/user/")?.split_once('/')?;
    // `parse` alone would take "+1000".
    uid.parse()
        .ok()
        .filter(|_| uid.bytes().all(|b| b.is_ascii_digit()))
}

/// Docker's memory-plus-swap limit: `--memory-swap` where given (-1 is
/// unlimited), else twice `--memory` where that is set, else unlimited (0).
fn swap_limit(memory: Option<u64>, memory_swap: Option<i64>) -> u64 {
    match memory_swap {
        Some(n) if n > 0 => n.unsigned_abs(),
        Some(n) if n < 0 => 0,
        _ => memory.map_or(0, |m| m.saturating_mul(2)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inspect(json: &str) -> Lifecycle {
        Lifecycle::from_inspect(&serde_json::from_str(json).unwrap())
    }

    #[test]
    fn unset_limits_are_zero_and_the_kernel_defaults_apply() {
        let l = inspect(r#"{"HostConfig":{"Memory":0,"MemorySwap":0,"CpuShares":0}}"#);
        assert_eq!(l.memory_limit, Some(0));
        assert_eq!(l.memory_swap_limit, Some(0));
        assert_eq!(l.memory_reservation, Some(0));
        assert_eq!((l.cpu_period, l.cpu_quota), (Some(100_000), None));
        assert_eq!(l.cpu_shares, Some(1024));
    }

    #[test]
    fn a_run_that_ended_has_its_end_and_one_that_did_not_has_none() {
        let ended = include_str!("../../tests/fixtures/inspect-docker20.10-oom-killed.json");
        let l = Lifecycle::from_inspect(&serde_json::from_str(ended).unwrap());
        let finished = l.finished_at.unwrap();
        assert!(
            (finished - 1_795_620_614.376_924).abs() < 1e-3,
            "{finished}"
        );
        assert_eq!(l.exit_code, Some(137));
        let running = include_str!("../../tests/fixtures/inspect-docker20.10-cap-busy.json");
        let l = Lifecycle::from_inspect(&serde_json::from_str(running).unwrap());
        assert_eq!(l.finished_at, None, "Docker's year-1 zero time");
    }

    #[test]
    fn swap_limit_follows_docker_defaults() {
        let mib = 1 << 20;
        let l = inspect(r#"{"HostConfig":{"Memory":67108864,"MemorySwap":0}}"#);
        assert_eq!(l.memory_swap_limit, Some(128 * mib), "twice --memory");
        let l = inspect(r#"{"HostConfig":{"Memory":67108864,"MemorySwap":-1}}"#);
        assert_eq!(l.memory_swap_limit, Some(0), "unlimited");
        let l = inspect(r#"{"HostConfig":{"Memory":67108864,"MemorySwap":100663296}}"#);
        assert_eq!(l.memory_swap_limit, Some(96 * mib));
    }

    #[test]
    fn health_state_as_cadvisor_gives_it() {
        let state = |status: &str| {
            inspect(&format!(
                r#"{{"State":{{"Health":{{"Status":"{status}"}}}}}}"#
            ))
            .health_state()
        };
        assert_eq!(state("healthy"), 1);
        assert_eq!(state("unhealthy"), 0);
        assert_eq!(state("starting"), 0);
        assert_eq!(state("none"), -1);
        assert_eq!(inspect("{}").health_state(), -1);
    }

    #[test]
    fn rootless_podmans_user_comes_from_its_runtime_directory() {
        // Podman 5.4, rootless as uid 1000, its compat inspect.
        let l = inspect(
            r#"{"ResolvConfPath":"/run/user/1000/containers/overlay-containers/078d/userdata/resolv.conf",
                "HostConfig":{"CgroupParent":"user.slice"}}"#,
        );
        assert_eq!(l.runtime_uid, Some(1000));
        assert_eq!(l.cgroup_parent.as_deref(), Some("user.slice"));
        let l = inspect(r#"{"HostnamePath":"/run/user/42/c/hostname"}"#);
        assert_eq!(l.runtime_uid, Some(42));
        for path in [
            "/var/lib/docker/containers/078d/resolv.conf",
            "/run/containers/storage/overlay-containers/078d/userdata/resolv.conf",
            "/run/user/+1/x",
            "/run/user/1000",
        ] {
            let json = format!(r#"{{"ResolvConfPath":"{path}"}}"#);
            assert_eq!(inspect(&json).runtime_uid, None, "{path}");
        }
    }

    #[test]
    fn huge_nano_cpus_is_left_out_not_an_overflow() {
        let inspect: Inspect =
            serde_json::from_str(r#"{"HostConfig":{"NanoCpus":9000000000000000000}}"#).unwrap();
        assert_eq!(Lifecycle::from_inspect(&inspect).cpu_quota, None);
    }
}
