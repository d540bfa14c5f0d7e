//! What a container's inspect answer says about its life: restarts, OOM kill,
//! health, start time and configured limits. Cached per container for a
//! bounded time, so a scrape of many containers does not inspect each one.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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
            l.started_at = state.started_at.as_deref().and_then(parse_rfc3339);
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

/// Unix seconds of an RFC 3339 UTC time as the engine writes it
/// (`2026-11-24T15:38:47.920909638Z`); `None` for the zero time.
pub fn parse_rfc3339(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let num = |r: std::ops::Range<usize>| -> Option<i64> { s.get(r)?.parse().ok() };
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, min, sec) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if year <= 1 || !(1..=12).contains(&month) || !(1..=31).contains(&day) {
        return None;
    }
    let rest = &s[19..];
    let (frac, zone) = match rest.strip_prefix('.') {
        Some(r) => {
            let digits = r.find(|c: char| !c.is_ascii_digit()).unwrap_or(r.len());
            let frac: f64 = format!("0.{}", &r[..digits]).parse().ok()?;
            (frac, &r[digits..])
        }
        None => (0.0, rest),
    };
    let offset = match zone {
        "Z" | "z" => 0,
        z if z.len() == 6 && (z.starts_with('+') || z.starts_with('-')) => {
            let sign = if z.starts_with('-') { -1 } else { 1 };
            // `get`, not indexing: the bytes may not be ASCII.
            let hours: i64 = z.get(1..3)?.parse().ok()?;
            let minutes: i64 = z.get(4..6)?.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    // Days from civil (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + hour * 3600 + min * 60 + sec - offset;
    Some(secs as f64 + frac)
}

struct Cached {
    state: String,
    fetched: Instant,
    value: Arc<Lifecycle>,
}

/// Inspect answers by container id, reused while the listed state is the same
/// and the answer is younger than `max_age`.
pub struct InspectCache {
    max_age: Duration,
    entries: Mutex<HashMap<String, Cached>>,
}

impl std::fmt::Debug for InspectCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InspectCache")
            .field("max_age", &self.max_age)
            .field("entries", &self.len())
            .finish()
    }
}

impl InspectCache {
    /// An empty cache.
    pub fn new(max_age: Duration) -> Self {
        Self {
            max_age,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Cached>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A fresh cached value for `id` in listed `state`. Each container's
    /// answer expires somewhere between half and all of `max_age`, fixed per
    /// id, so refreshes spread over scrapes instead of all landing in one.
    pub fn get(&self, id: &str, state: &str) -> Option<Arc<Lifecycle>> {
        let entries = self.lock();
        let c = entries.get(id)?;
        (c.state == state && c.fetched.elapsed() < self.max_age_of(id)).then(|| c.value.clone())
    }

    fn max_age_of(&self, id: &str) -> Duration {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let spread = (h.finish() % 1000) as f64 / 1000.0;
        self.max_age.mul_f64(0.5 + 0.5 * spread)
    }

    /// Stores a value fetched now.
    pub fn put(&self, id: &str, state: &str, value: Arc<Lifecycle>) {
        self.lock().insert(
            id.to_string(),
            Cached {
                state: state.to_string(),
                fetched: Instant::now(),
                value,
            },
        );
    }

    /// Drops every entry whose id `keep` rejects.
    pub fn retain(&self, keep: impl Fn(&str) -> bool) {
        self.lock().retain(|id, _| keep(id));
    }

    /// Entries held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_as_the_engine_writes_it() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0.0));
        assert_eq!(parse_rfc3339("2000-03-01T00:00:00Z"), Some(951_868_800.0));
        let t = parse_rfc3339("2026-11-24T15:38:47.920909638Z").unwrap();
        assert!((t - 1_795_534_727.920_909_6).abs() < 1e-3, "{t}");
        assert_eq!(
            parse_rfc3339("2026-11-24T16:38:47+01:00"),
            parse_rfc3339("2026-11-24T15:38:47Z")
        );
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
        assert_eq!(parse_rfc3339("2026-13-01T00:00:00Z"), None);
    }

    #[test]
    fn non_ascii_time_zone_is_rejected_not_a_panic() {
        // Found by fuzzing (fuzz/artifacts-found/).
        for zone in ["+aé12", "+0é00", "-09é9", "+1€&", "-0😀"] {
            assert_eq!(
                parse_rfc3339(&format!("2026-11-24T15:38:47{zone}")),
                None,
                "{zone}"
            );
        }
    }

    #[test]
    fn huge_nano_cpus_is_left_out_not_an_overflow() {
        let inspect: ContainerInspectResponse =
            serde_json::from_str(r#"{"HostConfig":{"NanoCpus":9000000000000000000}}"#).unwrap();
        assert_eq!(Lifecycle::from_inspect(&inspect).cpu_quota, None);
    }

    #[test]
    fn cache_is_keyed_by_state_and_age() {
        let cache = InspectCache::new(Duration::from_secs(60));
        let v = Arc::new(Lifecycle::default());
        cache.put("a", "running", v.clone());
        assert!(cache.get("a", "running").is_some());
        assert!(cache.get("a", "exited").is_none(), "state changed");
        cache.retain(|id| id != "a");
        assert!(cache.is_empty());
        let spread = InspectCache::new(Duration::from_secs(100));
        let ages: Vec<Duration> = (0..50)
            .map(|i| spread.max_age_of(&format!("{i:064x}")))
            .collect();
        assert!(ages
            .iter()
            .all(|a| *a >= Duration::from_secs(50) && *a <= Duration::from_secs(100)));
        assert!(ages.iter().any(|a| *a < Duration::from_secs(70)));
        assert!(ages.iter().any(|a| *a > Duration::from_secs(80)));
        let stale = InspectCache::new(Duration::ZERO);
        stale.put("a", "running", v);
        assert!(stale.get("a", "running").is_none());
    }
}
