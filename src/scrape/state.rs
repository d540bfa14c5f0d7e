//! What the exporter remembers about each container between scrapes: its
//! CPU window, its cached inspect answer and whether it missed the last
//! deadline. Entries go when a full scrape no longer lists the container, or
//! when no scrape of any selection has seen it for [`FORGET_AFTER`], so an
//! exporter scraped only with ad-hoc queries stays bounded too.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::time::Instant;

use crate::engine::quirks::CpuClock;
use crate::scrape::cpu::{CpuReading, CpuWindow};
use crate::scrape::lifecycle::Lifecycle;
use crate::scrape::uptime::Listing;

/// How long a container no scrape has seen is remembered. Longer than any
/// sensible scrape interval, and past Prometheus' 5 min staleness, after
/// which a CPU window would describe a series nobody has anymore.
pub const FORGET_AFTER: Duration = Duration::from_secs(10 * 60);

#[derive(Debug)]
struct CachedInspect {
    key: String,
    fetched: Instant,
    /// The listing of the round that fetched it.
    listing: Listing,
    value: Arc<Lifecycle>,
}

#[derive(Debug)]
struct Entry {
    cpu: Option<CpuWindow>,
    inspect: Option<CachedInspect>,
    last_seen: Instant,
    missed: bool,
}

impl Entry {
    fn new() -> Self {
        Self {
            cpu: None,
            inspect: None,
            last_seen: Instant::now(),
            missed: false,
        }
    }
}

/// How a round ended, for [`StateTable::finish_round`].
#[derive(Debug, Default)]
pub struct RoundEnd<'a> {
    /// Every container the round listed.
    pub listed: Vec<&'a str>,
    /// Those whose stats missed the deadline.
    pub missed: HashSet<&'a str>,
    /// Whether the round covered the whole configured selection, so that a
    /// container it did not list is gone for good.
    pub full: bool,
}

/// Per-container state, by container id.
#[derive(Debug)]
pub struct StateTable {
    inspect_max_age: Duration,
    cpu_min_window: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl StateTable {
    /// An empty table whose inspect answers are reused for up to
    /// `inspect_max_age` and whose CPU percents cover at least
    /// `cpu_min_window`.
    pub fn new(inspect_max_age: Duration, cpu_min_window: Duration) -> Self {
        Self {
            inspect_max_age,
            cpu_min_window,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Containers held.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// True when nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether a CPU reading of this container is held, so that one more
    /// reading gives a percent.
    pub fn has_cpu_reading(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|e| e.cpu.is_some())
    }

    /// Whether the container's stats missed the previous round's deadline.
    pub fn missed_last_round(&self, id: &str) -> bool {
        self.lock().get(id).is_some_and(|e| e.missed)
    }

    /// Takes a reading into the container's window; the percent since the
    /// latest reading at least the minimum window before it.
    /// A reading that shows the container started again (its CPU counter
    /// went back) also drops its cached inspect answer, so the restart count
    /// and OOM kill are asked anew at the next scrape rather than up to
    /// `inspect_max_age` later.
    pub fn observe_cpu(&self, id: &str, reading: CpuReading, clock: CpuClock) -> Option<f64> {
        let mut entries = self.lock();
        let entry = entries.entry(id.to_string()).or_insert_with(Entry::new);
        match &mut entry.cpu {
            Some(window) => {
                if window.restarted(&reading) {
                    entry.inspect = None;
                }
                window.observe(reading, clock, self.cpu_min_window)
            }
            None => {
                entry.cpu = Some(CpuWindow::new(reading));
                None
            }
        }
    }

    /// The cached inspect answer for `id` while its listed state and health
    /// (`key`) are unchanged, it is young enough, and the container, as
    /// `listing` shows it now, has not started again since (which a restart
    /// policy does without the listed state changing). Each container's
    /// answer expires between half and all of `inspect_max_age`, fixed per
    /// id, so refreshes spread over scrapes instead of all landing in one.
    pub fn inspect(&self, id: &str, key: &str, listing: &Listing) -> Option<Arc<Lifecycle>> {
        let entries = self.lock();
        let cached = entries.get(id)?.inspect.as_ref()?;
        (cached.key == key
            && cached.fetched.elapsed() < self.inspect_max_age_of(id)
            && !cached.listing.started_again_by(listing))
        .then(|| cached.value.clone())
    }

    /// Stores an inspect answer fetched now, in a round that listed the
    /// container as `listing`.
    pub fn store_inspect(&self, id: &str, key: &str, listing: Listing, value: Arc<Lifecycle>) {
        let mut entries = self.lock();
        let entry = entries.entry(id.to_string()).or_insert_with(Entry::new);
        entry.inspect = Some(CachedInspect {
            key: key.to_string(),
            fetched: Instant::now(),
            listing,
            value,
        });
    }

    fn inspect_max_age_of(&self, id: &str) -> Duration {
        use std::hash::{Hash, Hasher};
        let mut h = std::collections::hash_map::DefaultHasher::new();
        id.hash(&mut h);
        let spread = (h.finish() % 1000) as f64 / 1000.0;
        self.inspect_max_age.mul_f64(0.5 + 0.5 * spread)
    }

    /// Records what a round saw and forgets what is gone: containers a full
    /// round did not list, and any not seen by any round for
    /// [`FORGET_AFTER`].
    pub fn finish_round(&self, round: &RoundEnd<'_>) {
        let now = Instant::now();
        let mut entries = self.lock();
        for id in &round.listed {
            if let Some(e) = entries.get_mut(*id) {
                e.last_seen = now;
                e.missed = round.missed.contains(id);
            } else if round.missed.contains(id) {
                let mut e = Entry::new();
                e.missed = true;
                entries.insert(id.to_string(), e);
            }
        }
        if round.full {
            let listed: HashSet<&str> = round.listed.iter().copied().collect();
            entries.retain(|id, _| listed.contains(id.as_str()));
        }
        entries.retain(|_, e| now.duration_since(e.last_seen) < FORGET_AFTER);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reading(total_ns: u64, system_ns: u64) -> CpuReading {
        CpuReading {
            total_ns,
            system_ns: Some(system_ns),
            at: None,
            cpus: Some(2),
        }
    }

    /// A listing made now, of a container with `status`.
    fn listed(status: &str) -> Listing {
        Listing::new(status, Instant::now(), Instant::now())
    }

    #[tokio::test(start_paused = true)]
    async fn inspect_answers_are_keyed_by_state_and_age() {
        let table = StateTable::new(Duration::from_secs(60), Duration::from_secs(1));
        let v = Arc::new(Lifecycle::default());
        table.store_inspect("a", "running", listed(""), v.clone());
        assert!(table.inspect("a", "running", &listed("")).is_some());
        assert!(
            table.inspect("a", "exited", &listed("")).is_none(),
            "state changed"
        );
        tokio::time::advance(Duration::from_secs(61)).await;
        assert!(
            table.inspect("a", "running", &listed("")).is_none(),
            "too old"
        );

        let spread = StateTable::new(Duration::from_secs(100), Duration::from_secs(1));
        let ages: Vec<Duration> = (0..50)
            .map(|i| spread.inspect_max_age_of(&format!("{i:064x}")))
            .collect();
        assert!(ages
            .iter()
            .all(|a| *a >= Duration::from_secs(50) && *a <= Duration::from_secs(100)));
        assert!(ages.iter().any(|a| *a < Duration::from_secs(70)));
        assert!(ages.iter().any(|a| *a > Duration::from_secs(80)));
    }

    #[tokio::test(start_paused = true)]
    async fn a_restart_seen_in_the_cpu_counter_drops_the_inspect_answer() {
        let table = StateTable::new(Duration::from_secs(60), Duration::from_secs(1));
        table.observe_cpu("a", reading(5_000, 10), CpuClock::HostCounter);
        table.store_inspect("a", "running", listed(""), Arc::new(Lifecycle::default()));
        table.observe_cpu("a", reading(6_000, 20), CpuClock::HostCounter);
        assert!(table.inspect("a", "running", &listed("")).is_some());
        table.observe_cpu("a", reading(100, 30), CpuClock::HostCounter);
        assert!(
            table.inspect("a", "running", &listed("")).is_none(),
            "restarted"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_start_again_seen_in_the_listed_uptime_drops_the_inspect_answer() {
        let table = StateTable::new(Duration::from_secs(600), Duration::from_secs(1));
        let v = Arc::new(Lifecycle::default());
        table.store_inspect("a", "running", listed("Up 10 minutes"), v);
        tokio::time::advance(Duration::from_secs(30)).await;
        assert!(table
            .inspect("a", "running", &listed("Up 10 minutes"))
            .is_some());
        assert!(
            table
                .inspect("a", "running", &listed("Up 20 seconds"))
                .is_none(),
            "up for less than the 30 s since"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_full_round_forgets_what_it_did_not_list() {
        let table = StateTable::new(Duration::from_secs(60), Duration::from_secs(1));
        table.observe_cpu("a", reading(1, 10), CpuClock::HostCounter);
        table.observe_cpu("b", reading(1, 10), CpuClock::HostCounter);
        // A narrowed round that listed only "a" keeps "b".
        table.finish_round(&RoundEnd {
            listed: vec!["a"],
            ..Default::default()
        });
        assert_eq!(table.len(), 2);
        table.finish_round(&RoundEnd {
            listed: vec!["a"],
            full: true,
            ..Default::default()
        });
        assert_eq!(table.len(), 1);
        assert!(table.has_cpu_reading("a"));
    }

    #[tokio::test(start_paused = true)]
    async fn what_no_round_has_seen_for_a_while_is_forgotten() {
        let table = StateTable::new(Duration::from_secs(60), Duration::from_secs(1));
        table.observe_cpu("old", reading(1, 10), CpuClock::HostCounter);
        tokio::time::advance(FORGET_AFTER / 2).await;
        table.observe_cpu("new", reading(1, 10), CpuClock::HostCounter);
        table.finish_round(&RoundEnd {
            listed: vec!["new"],
            ..Default::default()
        });
        tokio::time::advance(FORGET_AFTER / 2 + Duration::from_secs(1)).await;
        table.finish_round(&RoundEnd {
            listed: vec!["new"],
            ..Default::default()
        });
        assert!(!table.has_cpu_reading("old"));
        assert!(table.has_cpu_reading("new"));
    }

    #[tokio::test(start_paused = true)]
    async fn missed_deadlines_are_remembered_for_one_round() {
        let table = StateTable::new(Duration::from_secs(60), Duration::from_secs(1));
        table.finish_round(&RoundEnd {
            listed: vec!["slow", "fast"],
            missed: HashSet::from(["slow"]),
            full: true,
        });
        assert!(table.missed_last_round("slow"));
        assert!(!table.missed_last_round("fast"));
        table.finish_round(&RoundEnd {
            listed: vec!["slow", "fast"],
            full: true,
            ..Default::default()
        });
        assert!(!table.missed_last_round("slow"));
    }
}
