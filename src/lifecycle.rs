//! What a container's inspect answer says about its life: restarts, OOM kill,
//! health, start time and configured limits.

use bollard::models::ContainerInspectResponse;

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
    /// CFS quota in microseconds per period (from `--cpus` or `--cpu-quota`).
    pub cpu_quota: Option<u64>,
    /// CFS period in microseconds.
    pub cpu_period: Option<u64>,
    /// Relative CPU weight, where set.
    pub cpu_shares: Option<u64>,
    /// Soft memory limit in bytes, where set.
    pub memory_reservation: Option<u64>,
}

/// The kernel's CFS period when the container sets none.
const DEFAULT_CFS_PERIOD_US: u64 = 100_000;

impl Lifecycle {
    /// Extracts the values from an inspect answer.
    pub fn from_inspect(i: &ContainerInspectResponse) -> Self {
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
                .and_then(|h| h.status)
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty() && s != "none");
            l.started_at = state
                .started_at
                .as_deref()
                .and_then(crate::timestamp::parse_rfc3339);
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
            l.cpu_period = l.cpu_quota.map(|_| period.unwrap_or(DEFAULT_CFS_PERIOD_US));
            l.cpu_shares = positive(hc.cpu_shares);
            l.memory_reservation = positive(hc.memory_reservation);
        }
        l
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_nano_cpus_is_left_out_not_an_overflow() {
        let inspect: ContainerInspectResponse =
            serde_json::from_str(r#"{"HostConfig":{"NanoCpus":9000000000000000000}}"#).unwrap();
        assert_eq!(Lifecycle::from_inspect(&inspect).cpu_quota, None);
    }
}
