//! How long a container has been up, at least and at most, from the list
//! call's human status (`Up 14 seconds`, `Up About an hour (healthy)`):
//! enough to see that a container started again since its cached inspect
//! answer, which a restart policy does without the listed state ever
//! changing. Only the engine's own texts and our own clock's intervals are
//! compared, never the engine's clock with ours: an engine in a VM whose
//! clock drifts (Docker Desktop's after a sleep) costs no inspect calls.

use std::time::Duration;

use tokio::time::Instant;

const MINUTE: u64 = 60;
const HOUR: u64 = 60 * MINUTE;
const DAY: u64 = 24 * HOUR;

/// The longest the container can have been up for the engine to write
/// `status` (Docker rounds down, as go-units' `HumanDuration` does); `None`
/// when it is not up or the text is not recognised.
pub fn uptime_at_most(status: &str) -> Option<Duration> {
    let rest = status.strip_prefix("Up ")?;
    // Drop a trailing "(healthy)", "(Paused)" and the like.
    let rest = rest.split(" (").next()?.trim();
    let secs = match rest {
        "Less than a second" => 1,
        "About a minute" => 2 * MINUTE,
        "About an hour" => 2 * HOUR,
        _ => {
            let (n, unit) = rest.split_once(' ')?;
            let n: u64 = n.parse().ok()?;
            let unit_secs = match unit.trim_end_matches('s') {
                "second" => 1,
                "minute" => MINUTE,
                "hour" => HOUR,
                "day" => DAY,
                "week" => 7 * DAY,
                "month" => 30 * DAY,
                "year" => 365 * DAY,
                _ => return None,
            };
            (n + 1).saturating_mul(unit_secs)
        }
    };
    Some(Duration::from_secs(secs))
}

/// The shortest the container can have been up for the engine to write
/// `status` (go-units' `HumanDuration`: seconds and minutes rounded down,
/// hours to the nearest); `None` when it is not up or the text is not
/// recognised.
pub fn uptime_at_least(status: &str) -> Option<Duration> {
    let rest = status.strip_prefix("Up ")?;
    let rest = rest.split(" (").next()?.trim();
    let secs = match rest {
        "Less than a second" => 0,
        "About a minute" => MINUTE,
        "About an hour" => HOUR,
        _ => {
            let (n, unit) = rest.split_once(' ')?;
            let n: u64 = n.parse().ok()?;
            let (unit_secs, rounded) = match unit.trim_end_matches('s') {
                "second" => (1, false),
                "minute" => (MINUTE, false),
                "hour" => (HOUR, true),
                "day" => (DAY, true),
                "week" => (7 * DAY, true),
                "month" => (30 * DAY, true),
                "year" => (365 * DAY, false),
                _ => return None,
            };
            // Half an hour less where the hours were rounded.
            let secs = n.checked_mul(unit_secs)?;
            if rounded {
                secs.saturating_sub(HOUR / 2)
            } else {
                secs
            }
        }
    };
    Some(Duration::from_secs(secs))
}

/// One listing of a container: when it was asked and answered, by our
/// clock, and the uptime its status shows.
#[derive(Debug, Clone, Copy)]
pub struct Listing {
    /// When the list call was sent.
    pub asked: Instant,
    /// When its answer was in.
    pub answered: Instant,
    /// The least the container was up at the engine's listing.
    pub up_at_least: Option<Duration>,
    /// The most the container was up at the engine's listing.
    pub up_at_most: Option<Duration>,
}

impl Listing {
    /// `status` as listed by a call sent at `asked` and answered at
    /// `answered`.
    pub fn new(status: &str, asked: Instant, answered: Instant) -> Self {
        Self {
            asked,
            answered,
            up_at_least: uptime_at_least(status),
            up_at_most: uptime_at_most(status),
        }
    }

    /// Whether the container must have started again between `self` and the
    /// later listing `now`: up for less than it was then plus the time in
    /// between. The time in between is taken short (from this answer to
    /// that call), so that a container that kept running is never taken for
    /// a restarted one.
    pub fn started_again_by(&self, now: &Listing) -> bool {
        let (Some(was), Some(is)) = (self.up_at_least, now.up_at_most) else {
            return false;
        };
        was + now.asked.saturating_duration_since(self.answered) > is
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::fake::human_duration;

    #[test]
    fn docker_status_texts() {
        let s = |text| uptime_at_most(text).map(|d| d.as_secs());
        assert_eq!(s("Up Less than a second"), Some(1));
        assert_eq!(s("Up 1 second"), Some(2));
        assert_eq!(s("Up 14 seconds"), Some(15));
        assert_eq!(s("Up About a minute"), Some(120));
        assert_eq!(s("Up 5 minutes (healthy)"), Some(360));
        assert_eq!(s("Up About an hour"), Some(7200));
        assert_eq!(s("Up 3 hours (Paused)"), Some(4 * 3600));
        assert_eq!(s("Up 2 days"), Some(3 * 86_400));
        assert_eq!(s("Up 3 weeks"), Some(28 * 86_400));
        assert_eq!(s("Up 2 months"), Some(90 * 86_400));
        assert_eq!(s("Up 2 years"), Some(3 * 365 * 86_400));
    }

    #[test]
    fn not_up_or_not_recognised() {
        assert_eq!(uptime_at_most("Exited (0) 5 minutes ago"), None);
        assert_eq!(uptime_at_most("Created"), None);
        assert_eq!(uptime_at_most("Up forever"), None);
        assert_eq!(uptime_at_most(""), None);
        assert_eq!(uptime_at_most("Up 9999999999999999999999 years"), None);
    }

    #[test]
    fn least_uptime_of_each_text() {
        let s = |text| uptime_at_least(text).map(|d| d.as_secs());
        assert_eq!(s("Up Less than a second"), Some(0));
        assert_eq!(s("Up 1 second"), Some(1));
        assert_eq!(s("Up 14 seconds"), Some(14));
        assert_eq!(s("Up About a minute"), Some(60));
        assert_eq!(s("Up 5 minutes (healthy)"), Some(300));
        assert_eq!(s("Up About an hour"), Some(3600));
        // "3 hours" is 2.5 h or more: hours are rounded.
        assert_eq!(s("Up 3 hours (Paused)"), Some(3 * 3600 - 1800));
        assert_eq!(s("Up 2 days"), Some(2 * 86_400 - 1800));
        assert_eq!(s("Up 3 weeks"), Some(21 * 86_400 - 1800));
        assert_eq!(s("Up 2 months"), Some(60 * 86_400 - 1800));
        assert_eq!(s("Up 2 years"), Some(2 * 365 * 86_400));
        assert_eq!(uptime_at_least("Exited (0) 5 minutes ago"), None);
        assert_eq!(uptime_at_least("Up 9999999999999999999999 years"), None);
    }

    #[test]
    fn every_text_bounds_the_uptime_that_produced_it() {
        let mut secs = 0;
        while secs < 3 * 365 * DAY {
            let status = format!("Up {}", human_duration(Duration::from_secs(secs)));
            let (lo, hi) = (uptime_at_least(&status), uptime_at_most(&status));
            assert!(
                lo.is_some_and(|lo| lo.as_secs() <= secs)
                    && hi.is_some_and(|hi| secs < hi.as_secs()),
                "{secs} s is {status:?}: {lo:?} .. {hi:?}"
            );
            secs += 1 + secs / 50;
        }
    }

    #[test]
    fn a_start_again_shows_as_less_uptime_than_time_has_passed() {
        let t0 = Instant::now();
        let at = |secs: u64| t0 + Duration::from_secs(secs);
        let listed = |status: &str, secs: u64| Listing::new(status, at(secs), at(secs));
        let then = listed("Up 10 minutes", 0);
        // Kept running: the text grows with the time passed.
        assert!(!then.started_again_by(&listed("Up 10 minutes", 30)));
        assert!(!then.started_again_by(&listed("Up 11 minutes", 60)));
        assert!(!then.started_again_by(&listed("Up About an hour", 3000)));
        // Up for less than the time passed since then.
        assert!(then.started_again_by(&listed("Up 14 seconds", 30)));
        assert!(then.started_again_by(&listed("Up 10 minutes", 660)));
        // Not up, or a text not understood: nothing to tell.
        assert!(!then.started_again_by(&listed("Exited (1) 3 seconds ago", 30)));
        assert!(!listed("Created", 0).started_again_by(&listed("Up 1 second", 30)));
    }

    #[test]
    fn the_time_between_listings_is_taken_short() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        // Up 14.9 s at the first listing, whose answer took 2 s; up 16 s
        // ("16 seconds") at the next, asked 1 s after that answer: it ran
        // on, though 14 + 3 s (from call to call) would say otherwise.
        let then = Listing::new("Up 14 seconds", t0, t0 + s(2));
        let now = Listing::new("Up 16 seconds", t0 + s(3), t0 + s(3));
        assert!(!then.started_again_by(&now));
    }
}
