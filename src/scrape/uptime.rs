//! How long a container has been up, at most, from the list call's human
//! status (`Up 14 seconds`, `Up About an hour (healthy)`): enough to see that
//! a container started again since its cached inspect answer, which a
//! restart policy does without the listed state ever changing.

use std::time::Duration;

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

#[cfg(test)]
mod tests {
    use super::*;

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
}
