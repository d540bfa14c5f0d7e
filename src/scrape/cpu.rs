//! CPU readings and the window a CPU percent is computed over. Pure: no
//! engine, no clock; the scraper feeds readings in.

use std::collections::VecDeque;
use std::time::Duration;

use crate::engine::model::CpuStats;

use crate::engine::quirks::CpuClock;

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
    pub fn from_stats(cpu: &CpuStats) -> Option<Self> {
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
    /// by read time where both have it, else by the host counter. An engine
    /// that reads on request stamps the reading as it reads the container's
    /// counter, but reads /proc/stat after that (Docker 28 on a loaded VM:
    /// up to a second later): two crossing calls' host counters can be in
    /// the other order, and the container's counter would seem to go back.
    fn order(&self, other: &CpuReading) -> Option<std::cmp::Ordering> {
        match (self.at, other.at) {
            (Some(a), Some(b)) => a.partial_cmp(&b),
            _ => Some(self.system_ns?.cmp(&other.system_ns?)),
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

/// The formula for the engine's clock.
pub fn percent_for(clock: CpuClock, now: CpuReading, before: CpuReading) -> Option<f64> {
    match clock {
        CpuClock::HostCounter => cpu_percent(now, before),
        CpuClock::WallTime => cpu_percent_wall(now, before),
    }
}

/// The last few distinct CPU readings of a container, oldest first, enough
/// to close every window at a reading at least a floor old. A percent over
/// a shorter window aliases with the CFS quota period: a container capped at
/// half a CPU runs 50 ms of every 100 ms, so a window of a few periods reads
/// anywhere from 13 to 39 % of a 2-CPU host for a true 25 %. Two readers
/// close together (an HA Prometheus pair, the live view beside Prometheus,
/// an ad-hoc curl) would otherwise make each other's windows that short.
#[derive(Debug, Clone, PartialEq)]
pub struct CpuWindow {
    /// Never empty; in the engine's time order.
    readings: VecDeque<CpuReading>,
}

/// Readings kept at most: a flood of readers within one floor keeps the
/// base and the newest few, and the windows only get longer.
const KEPT: usize = 8;

impl CpuWindow {
    /// A window that starts at `first`.
    pub fn new(first: CpuReading) -> Self {
        Self {
            readings: VecDeque::from([first]),
        }
    }

    /// The latest reading.
    pub fn last(&self) -> CpuReading {
        *self.readings.back().unwrap_or(&EMPTY)
    }

    /// Whether `now` shows the container started again since the last
    /// reading: a later reading whose CPU counter went backwards, later by
    /// more than [`STAMP_SKEW`] where both have read times (closer than
    /// that, it is a crossing call's older counter stamped later).
    pub fn restarted(&self, now: &CpuReading) -> bool {
        let last = self.last();
        let later = match (now.at, last.at) {
            (Some(a), Some(b)) => a - b > STAMP_SKEW,
            _ => now.order(&last) == Some(std::cmp::Ordering::Greater),
        };
        later && now.total_ns < last.total_ns
    }

    /// Takes `now` in and returns the percent over the window that ends at
    /// `now` and starts at the latest reading at least `floor` before it:
    /// - a later reading closes that window and is kept;
    /// - a reading of the same engine tick as the last one gives the same
    ///   kind of window and is not kept twice;
    /// - where no reading is `floor` old yet, nothing;
    /// - counters that went backwards (the container restarted in place)
    ///   start a new window and give nothing this time;
    /// - an older reading (a slow answer overtaken by a newer one, as two
    ///   readers' calls cross on a busy engine) gives the same kind of
    ///   window and is not kept.
    pub fn observe(&mut self, now: CpuReading, clock: CpuClock, floor: Duration) -> Option<f64> {
        use std::cmp::Ordering::*;
        match now.order(&self.last()) {
            Some(Greater) if self.restarted(&now) => {
                *self = Self::new(now);
                None
            }
            // Stamped later, counted earlier: overtaken all the same.
            Some(Greater) if now.total_ns < self.last().total_ns => {
                self.percent_since_floor(now, clock, floor)
            }
            Some(Greater) => {
                let pct = self.percent_since_floor(now, clock, floor);
                self.keep(now, clock, floor);
                pct
            }
            Some(Equal | Less) => self.percent_since_floor(now, clock, floor),
            // Nothing to order by: start over from this reading.
            None => {
                *self = Self::new(now);
                None
            }
        }
    }

    /// The percent from the latest reading at least `floor` before `now`.
    fn percent_since_floor(
        &self,
        now: CpuReading,
        clock: CpuClock,
        floor: Duration,
    ) -> Option<f64> {
        let base = self.base_for(&now, clock, floor)?;
        percent_for(clock, now, self.readings[base])
    }

    /// The index of the latest reading at least `floor` before `now`, to a
    /// millisecond: read times are Unix seconds in an `f64`, good to a
    /// microsecond, and a reading taken a floor after another must count.
    fn base_for(&self, now: &CpuReading, clock: CpuClock, floor: Duration) -> Option<usize> {
        let floor = floor.as_secs_f64();
        let floor = floor - (floor / 2.0).min(0.001);
        (0..self.readings.len())
            .rev()
            .find(|&i| seconds_between(clock, now, &self.readings[i]).is_some_and(|s| s >= floor))
    }

    /// Appends `now` and drops what no later window can start at: readings
    /// older than the current base, and the newest one where `now` follows
    /// the one before it by less than a quarter of the floor (so that kept
    /// readings stay a quarter floor apart and few, and a window is at most
    /// that much longer than the floor needs).
    fn keep(&mut self, now: CpuReading, clock: CpuClock, floor: Duration) {
        let close = floor.as_secs_f64() / 4.0;
        let n = self.readings.len();
        let crowded = n >= 2
            && seconds_between(clock, &now, &self.readings[n - 2]).is_some_and(|s| s < close);
        if crowded {
            self.readings.pop_back();
        }
        self.readings.push_back(now);
        if let Some(base) = self.base_for(&now, clock, floor) {
            self.readings.drain(..base);
        }
        while self.readings.len() > KEPT {
            // Keep the oldest, a base for the next reading.
            self.readings.remove(1);
        }
    }
}

/// How much later an engine may stamp a reading than it read the
/// container's counter, as seen between two calls that cross: Podman 5
/// stamped a reading 3 ms after another whose counter it had read 20 ms
/// later. A counter that went backwards in a reading stamped within this
/// of the last one is that, not a restart.
const STAMP_SKEW: f64 = 1.0;

/// A reading to stand for none; never held.
const EMPTY: CpuReading = CpuReading {
    total_ns: 0,
    system_ns: None,
    at: None,
    cpus: None,
};

/// Seconds from `then` to `now` in the engine's time: its read times where
/// both have them, else, on Docker, the host counter by CPUs (Podman's
/// counts busy time only).
fn seconds_between(clock: CpuClock, now: &CpuReading, then: &CpuReading) -> Option<f64> {
    if let (Some(a), Some(b)) = (now.at, then.at) {
        return Some(a - b);
    }
    match clock {
        CpuClock::HostCounter => {
            let system = now.system_ns?.checked_sub(then.system_ns?)?;
            Some(system as f64 / 1e9 / f64::from(now.cpus?.max(1)))
        }
        CpuClock::WallTime => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A floor under the engine's resolution: the window since the previous
    /// distinct reading.
    const TICK_FLOOR: Duration = Duration::from_nanos(1);
    const FLOOR: Duration = Duration::from_secs(1);

    /// A reading at `t` s of a container capped at half a CPU on a 2-CPU
    /// host, which the CFS quota lets run the first 50 ms of every 100 ms
    /// period: 25 % of the host over a long window, 0 or 50 % over 50 ms.
    fn capped(t: f64) -> CpuReading {
        let ms = (t * 1000.0).round() as u64;
        let run_ms = ms / 100 * 50 + (ms % 100).min(50);
        CpuReading {
            total_ns: 1_000_000 + run_ms * 1_000_000,
            system_ns: Some(ms * 2_000_000),
            at: Some(1_800_000_000.0 + t),
            cpus: Some(2),
        }
    }

    /// The age of the reading the next window would start at.
    fn base_age(w: &CpuWindow, now: f64) -> Option<f64> {
        let base = w.base_for(&capped(now), CpuClock::HostCounter, FLOOR)?;
        Some(now - (w.readings[base].at? - 1_800_000_000.0))
    }

    #[test]
    fn two_readers_50_ms_apart_each_get_a_window_of_at_least_the_floor() {
        let mut w = CpuWindow::new(capped(0.0));
        for k in 1..=10 {
            let a = f64::from(k) * 1.5;
            for (who, t) in [("first", a), ("second", a + 0.05)] {
                assert!(base_age(&w, t).unwrap() > 0.999, "{who} reader at {t}");
                let pct = w.observe(capped(t), CpuClock::HostCounter, FLOOR).unwrap();
                // Over 50 ms the same burner reads 0 or 50 %.
                assert!((pct - 25.0).abs() <= 1.7, "{who} reader at {t}: {pct} %");
            }
        }
    }

    #[test]
    fn without_the_floor_the_second_reader_aliases() {
        // What the floor prevents: the window since the previous reading.
        let mut w = CpuWindow::new(capped(0.0));
        w.observe(capped(1.5), CpuClock::HostCounter, TICK_FLOOR);
        let pct = w
            .observe(capped(1.55), CpuClock::HostCounter, TICK_FLOOR)
            .unwrap();
        assert!((pct - 25.0).abs() > 10.0, "{pct} %");
    }

    #[test]
    fn no_reading_a_floor_old_gives_nothing_until_there_is_one() {
        let mut w = CpuWindow::new(capped(0.0));
        assert_eq!(w.observe(capped(0.3), CpuClock::HostCounter, FLOOR), None);
        assert_eq!(w.observe(capped(0.9), CpuClock::HostCounter, FLOOR), None);
        let pct = w
            .observe(capped(1.0), CpuClock::HostCounter, FLOOR)
            .unwrap();
        assert!(
            (pct - 25.0).abs() < 1e-9,
            "a window of exactly the floor: {pct}"
        );
    }

    #[test]
    fn a_flood_of_readers_keeps_few_readings_and_windows_near_the_floor() {
        let mut w = CpuWindow::new(capped(0.0));
        for k in 1..=2000 {
            let t = f64::from(k) * 0.01;
            let age = base_age(&w, t);
            let pct = w.observe(capped(t), CpuClock::HostCounter, FLOOR);
            assert!(w.readings.len() <= KEPT, "{} readings", w.readings.len());
            if t >= 1.0 {
                let age = age.unwrap();
                // A quarter floor apart: the base is at most that past it.
                assert!((0.999..=1.26).contains(&age), "window of {age} s at {t}");
                assert!((pct.unwrap() - 25.0).abs() <= 1.7);
            }
        }
    }

    #[test]
    fn an_overtaken_reading_still_gets_a_window_of_at_least_the_floor() {
        // Two readers' calls cross: the second reader's answer is read
        // before the first's, but arrives after it.
        let mut w = CpuWindow::new(capped(0.0));
        w.observe(capped(1.5), CpuClock::HostCounter, FLOOR);
        w.observe(capped(3.05), CpuClock::HostCounter, FLOOR);
        let pct = w
            .observe(capped(3.0), CpuClock::HostCounter, FLOOR)
            .unwrap();
        assert!((pct - 25.0).abs() <= 1.7, "{pct} %");
        assert_eq!(w.last(), capped(3.05), "not kept");
    }

    #[test]
    fn host_counters_read_late_neither_restart_nor_lose_the_window() {
        // Two readers 50 ms apart; the engine read the first reader's host
        // counter 0.8 s after its container counter, the second's at once,
        // and answered the second first.
        let late_host = |t: f64, late: f64| CpuReading {
            system_ns: capped(t + late).system_ns,
            ..capped(t)
        };
        let mut w = CpuWindow::new(capped(0.0));
        for k in 1..=5 {
            let a = f64::from(k) * 1.5;
            let second = w.observe(capped(a + 0.05), CpuClock::HostCounter, FLOOR);
            let first = w.observe(late_host(a, 0.8), CpuClock::HostCounter, FLOOR);
            assert!(
                second.is_some() && first.is_some(),
                "pair {k}: {second:?} {first:?}"
            );
            assert_eq!(w.last(), capped(a + 0.05), "the overtaken one is not kept");
        }
    }

    #[test]
    fn a_crossing_call_stamped_later_but_counted_earlier_is_no_restart() {
        // Podman 5, two calls 50 ms apart: the second answer's stamp is 3 ms
        // before the first's, its counter 20 ms of CPU ahead.
        let at = |total_ms: u64, t: f64| CpuReading {
            total_ns: total_ms * 1_000_000,
            system_ns: None,
            at: Some(100.0 + t),
            cpus: Some(2),
        };
        let mut w = CpuWindow::new(at(1_000, 0.0));
        assert!(w
            .observe(at(1_750, 1.503), CpuClock::WallTime, FLOOR)
            .is_some());
        let first = w.observe(at(1_730, 1.506), CpuClock::WallTime, FLOOR);
        assert!(first.is_some(), "not a restart");
        assert_eq!(w.last(), at(1_750, 1.503), "not kept");
        // A counter lower two seconds on: the container started again.
        assert_eq!(w.observe(at(200, 3.6), CpuClock::WallTime, FLOOR), None);
        assert_eq!(w.last(), at(200, 3.6));
    }

    #[test]
    fn podman_windows_are_measured_by_read_time() {
        let at = |total_ns, t| CpuReading {
            total_ns,
            system_ns: Some(total_ns + 1),
            at: Some(t),
            cpus: Some(2),
        };
        let mut w = CpuWindow::new(at(1_000_000_000, 100.0));
        assert_eq!(
            w.observe(at(1_100_000_000, 100.2), CpuClock::WallTime, FLOOR),
            None
        );
        // Half a CPU on a 2-CPU host, from the latest reading a floor old.
        let pct = w.observe(at(2_000_000_000, 102.0), CpuClock::WallTime, FLOOR);
        assert!((pct.unwrap() - 25.0).abs() < 1e-6, "{pct:?}");
    }

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
        assert_eq!(
            w.observe(r(2_000, 20_000), CpuClock::HostCounter, TICK_FLOOR),
            Some(10.0)
        );
        assert_eq!(
            w.observe(r(4_000, 30_000), CpuClock::HostCounter, TICK_FLOOR),
            Some(20.0)
        );
    }

    #[test]
    fn same_tick_reading_reuses_the_window_before_it() {
        let mut w = CpuWindow::new(r(1_000, 10_000));
        assert_eq!(
            w.observe(r(2_000, 20_000), CpuClock::HostCounter, TICK_FLOOR),
            Some(10.0)
        );
        // The HA twin scrape lands in the same engine tick.
        assert_eq!(
            w.observe(r(2_000, 20_000), CpuClock::HostCounter, TICK_FLOOR),
            Some(10.0)
        );
        assert_eq!(w.last(), r(2_000, 20_000));
    }

    #[test]
    fn same_tick_without_an_earlier_window_gives_nothing() {
        let mut w = CpuWindow::new(r(1_000, 10_000));
        assert_eq!(
            w.observe(r(1_000, 10_000), CpuClock::HostCounter, TICK_FLOOR),
            None
        );
    }

    #[test]
    fn counter_reset_starts_a_new_window() {
        let mut w = CpuWindow::new(r(5_000, 10_000));
        assert!(w.restarted(&r(100, 20_000)));
        assert!(!w.restarted(&r(6_000, 20_000)));
        assert_eq!(
            w.observe(r(100, 20_000), CpuClock::HostCounter, TICK_FLOOR),
            None
        );
        assert_eq!(
            w.observe(r(1_100, 30_000), CpuClock::HostCounter, TICK_FLOOR),
            Some(10.0)
        );
    }

    #[test]
    fn overtaken_answer_is_ignored() {
        let mut w = CpuWindow::new(r(2_000, 20_000));
        assert_eq!(
            w.observe(r(1_000, 10_000), CpuClock::HostCounter, TICK_FLOOR),
            None
        );
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
            w.observe(at(2_000_000_000, 102.0), CpuClock::WallTime, TICK_FLOOR),
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
        assert_eq!(
            w.observe(at(2_000, 2.0), CpuClock::HostCounter, TICK_FLOOR),
            None
        );
        assert_eq!(w.last(), at(2_000, 2.0));
    }

    #[test]
    fn zeroed_precpu_is_no_reading_but_a_missing_host_counter_is() {
        let zeroed = CpuStats::default();
        assert_eq!(CpuReading::from_stats(&zeroed), None);
        let no_system = CpuStats {
            cpu_usage: Some(crate::engine::model::CpuUsage {
                total_usage: Some(42),
                ..Default::default()
            }),
            ..Default::default()
        };
        let reading = CpuReading::from_stats(&no_system).unwrap();
        assert_eq!((reading.total_ns, reading.system_ns), (42, None));
    }
}
