//! CPU readings and the window a CPU percent is computed over. Pure: no
//! engine, no clock; the scraper feeds readings in.

use bollard::models::ContainerCpuStats;

use crate::engine::Flavor;

/// Cumulative CPU counters at one instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuReading {
    /// The container's total CPU time in nanoseconds.
    pub total_ns: u64,
    /// The host's CPU time (all cores) as the engine counts it, where the
    /// engine reports it.
    pub system_ns: Option<u64>,
    /// When the engine read it (Unix seconds), where known.
    pub at: Option<f64>,
    /// CPUs online at the time, where known.
    pub cpus: Option<u32>,
}

impl CpuReading {
    /// A reading, or `None` where the engine left the counters zeroed (one-shot
    /// or Podman `precpu_stats`, a container that died mid-call).
    pub fn from_stats(cpu: &ContainerCpuStats) -> Option<Self> {
        let total_ns = cpu.cpu_usage.as_ref()?.total_usage.filter(|n| *n > 0)?;
        let cpus = cpu.online_cpus.filter(|n| *n > 0).or_else(|| {
            let n = cpu.cpu_usage.as_ref()?.percpu_usage.as_ref()?.len();
            u32::try_from(n).ok().filter(|n| *n > 0)
        });
        Some(Self {
            total_ns,
            system_ns: cpu.system_cpu_usage.filter(|n| *n > 0),
            at: None,
            cpus,
        })
    }

    /// How this reading is ordered against `other` in the engine's time:
    /// by the host counter where both have it, else by read time.
    fn order(&self, other: &CpuReading) -> Option<std::cmp::Ordering> {
        match (self.system_ns, other.system_ns) {
            (Some(a), Some(b)) => Some(a.cmp(&b)),
            _ => self.at?.partial_cmp(&other.at?),
        }
    }
}

/// Percent of the whole host's CPU used between two readings: docker/cli's
/// formula without the `online_cpus` factor, so 100 means every core is busy.
/// `None` when the counters did not advance or went backwards.
pub fn cpu_percent(now: CpuReading, before: CpuReading) -> Option<f64> {
    let cpu = now.total_ns.checked_sub(before.total_ns)?;
    let system = now.system_ns?.checked_sub(before.system_ns?)?;
    (system > 0).then(|| cpu as f64 / system as f64 * 100.0)
}

/// Percent of the whole host's CPU between two readings, from wall time and
/// online CPUs: for engines whose `system_cpu_usage` is not the host's
/// capacity (Podman counts only busy time).
pub fn cpu_percent_wall(now: CpuReading, before: CpuReading) -> Option<f64> {
    let cpu = now.total_ns.checked_sub(before.total_ns)?;
    let wall = now.at? - before.at?;
    let cpus = f64::from(now.cpus?);
    (wall > 0.0).then(|| cpu as f64 / (wall * 1e9 * cpus) * 100.0)
}

/// The formula that fits the engine.
pub fn percent_for(flavor: Flavor, now: CpuReading, before: CpuReading) -> Option<f64> {
    match flavor {
        Flavor::Docker => cpu_percent(now, before),
        Flavor::Podman => cpu_percent_wall(now, before),
    }
}

/// The last two distinct CPU readings of a container. Two of them, so that
/// scrapes landing in the same engine tick (HA Prometheus pairs) still get the
/// window before it instead of a zero-length one.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CpuWindow {
    last: CpuReading,
    before: Option<CpuReading>,
}

impl CpuWindow {
    /// A window that starts at `first`.
    pub fn new(first: CpuReading) -> Self {
        Self {
            last: first,
            before: None,
        }
    }

    /// The latest reading.
    pub fn last(&self) -> CpuReading {
        self.last
    }

    /// Whether `now` shows the container started again since the last
    /// reading: a later reading whose CPU counter went backwards.
    pub fn restarted(&self, now: &CpuReading) -> bool {
        now.order(&self.last) == Some(std::cmp::Ordering::Greater)
            && now.total_ns < self.last.total_ns
    }

    /// Takes `now` in and returns the percent since the previous distinct
    /// reading:
    /// - a later reading closes the window since the last one;
    /// - a reading of the same engine tick reuses the window before it;
    /// - counters that went backwards (the container restarted in place)
    ///   start a new window and give nothing this time;
    /// - an older reading (a slow answer overtaken by a newer one) is
    ///   ignored.
    pub fn observe(&mut self, now: CpuReading, flavor: Flavor) -> Option<f64> {
        use std::cmp::Ordering::*;
        match now.order(&self.last) {
            Some(Greater) if self.restarted(&now) => {
                *self = Self::new(now);
                None
            }
            Some(Greater) => {
                let pct = percent_for(flavor, now, self.last);
                self.before = Some(self.last);
                self.last = now;
                pct
            }
            Some(Equal) => self.before.and_then(|b| percent_for(flavor, now, b)),
            Some(Less) => None,
            // Nothing to order by: start over from this reading.
            None => {
                *self = Self::new(now);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(total_ns: u64, system_ns: u64) -> CpuReading {
        CpuReading {
            total_ns,
            system_ns: Some(system_ns),
            at: None,
            cpus: Some(2),
        }
    }

    #[test]
    fn later_reading_closes_the_window_since_the_last() {
        let mut w = CpuWindow::new(r(1_000, 10_000));
        assert_eq!(w.observe(r(2_000, 20_000), Flavor::Docker), Some(10.0));
        assert_eq!(w.observe(r(4_000, 30_000), Flavor::Docker), Some(20.0));
    }

    #[test]
    fn same_tick_reading_reuses_the_window_before_it() {
        let mut w = CpuWindow::new(r(1_000, 10_000));
        assert_eq!(w.observe(r(2_000, 20_000), Flavor::Docker), Some(10.0));
        // The HA twin scrape lands in the same engine tick.
        assert_eq!(w.observe(r(2_000, 20_000), Flavor::Docker), Some(10.0));
        assert_eq!(w.last(), r(2_000, 20_000));
    }

    #[test]
    fn same_tick_without_an_earlier_window_gives_nothing() {
        let mut w = CpuWindow::new(r(1_000, 10_000));
        assert_eq!(w.observe(r(1_000, 10_000), Flavor::Docker), None);
    }

    #[test]
    fn counter_reset_starts_a_new_window() {
        let mut w = CpuWindow::new(r(5_000, 10_000));
        assert!(w.restarted(&r(100, 20_000)));
        assert!(!w.restarted(&r(6_000, 20_000)));
        assert_eq!(w.observe(r(100, 20_000), Flavor::Docker), None);
        assert_eq!(w.observe(r(1_100, 30_000), Flavor::Docker), Some(10.0));
    }

    #[test]
    fn overtaken_answer_is_ignored() {
        let mut w = CpuWindow::new(r(2_000, 20_000));
        assert_eq!(w.observe(r(1_000, 10_000), Flavor::Docker), None);
        assert_eq!(w.last(), r(2_000, 20_000));
    }

    #[test]
    fn podman_uses_wall_time_and_online_cpus() {
        let at = |total_ns, at| CpuReading {
            total_ns,
            system_ns: Some(total_ns + 1),
            at: Some(at),
            cpus: Some(2),
        };
        let mut w = CpuWindow::new(at(1_000_000_000, 100.0));
        // Half a CPU for 2 s on a 2-CPU host: 25 % of the host.
        assert_eq!(
            w.observe(at(2_000_000_000, 102.0), Flavor::Podman),
            Some(25.0)
        );
    }

    #[test]
    fn no_host_counter_orders_by_read_time() {
        let at = |total_ns, at| CpuReading {
            total_ns,
            system_ns: None,
            at: Some(at),
            cpus: Some(2),
        };
        let mut w = CpuWindow::new(at(1_000, 1.0));
        // Docker's formula needs the host counter: no percent, but the window moves on.
        assert_eq!(w.observe(at(2_000, 2.0), Flavor::Docker), None);
        assert_eq!(w.last(), at(2_000, 2.0));
    }

    #[test]
    fn zeroed_precpu_is_no_reading_but_a_missing_host_counter_is() {
        let zeroed = ContainerCpuStats::default();
        assert_eq!(CpuReading::from_stats(&zeroed), None);
        let no_system = ContainerCpuStats {
            cpu_usage: Some(bollard::models::ContainerCpuUsage {
                total_usage: Some(42),
                ..Default::default()
            }),
            ..Default::default()
        };
        let reading = CpuReading::from_stats(&no_system).unwrap();
        assert_eq!((reading.total_ns, reading.system_ns), (42, None));
    }
}
