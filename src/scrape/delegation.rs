//! A rootless engine whose user systemd gives too few cgroup controllers:
//! its containers' cgroups lack the files some series come from, which the
//! scrape leaves out. Said once in the log, with the fix, rather than at
//! every scrape or never.

use std::sync::Mutex;

use crate::engine::EngineInfo;

/// What each controller's absence costs.
const SERIES: [(&str, &str); 4] = [
    ("cpu", "CPU limit and throttling"),
    ("io", "block I/O"),
    ("memory", "memory"),
    ("pids", "process count"),
];

/// The controllers last warned about.
#[derive(Debug, Default)]
pub struct Delegation {
    warned: Mutex<Vec<&'static str>>,
}

impl Delegation {
    /// Logs a warning when `info` lacks controllers and it has not been said
    /// for the same ones; whether it did.
    pub fn check(&self, host: &str, info: &EngineInfo) -> bool {
        let missing = info.undelegated();
        let mut warned = self.warned.lock().unwrap_or_else(|p| p.into_inner());
        if missing.is_empty() || *warned == missing {
            *warned = missing;
            return false;
        }
        tracing::warn!(engine = %host, "{}", message(&missing));
        *warned = missing;
        true
    }
}

/// The warning for the `missing` controllers.
fn message(missing: &[&str]) -> String {
    let lost: Vec<&str> = SERIES
        .iter()
        .filter(|(c, _)| missing.contains(c))
        .map(|(_, series)| *series)
        .collect();
    format!(
        "the rootless engine's containers lack the cgroup controllers {} (their {} \
         cannot be reported). To delegate them to the engine's user, as root: \
         `systemctl edit user@.service`, add `[Service]` and \
         `Delegate=cpu cpuset io memory pids`, then log that user out and in again",
        missing.join(", "),
        lost.join(", ")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rootless(controllers: &[&str]) -> EngineInfo {
        EngineInfo {
            rootless: true,
            cgroup_controllers: Some(controllers.iter().map(|c| c.to_string()).collect()),
            ..Default::default()
        }
    }

    #[test]
    fn says_it_once_and_again_only_when_it_changes() {
        let d = Delegation::default();
        let without = rootless(&["memory", "pids"]);
        assert!(d.check("unix:///run/podman.sock", &without));
        assert!(!d.check("unix:///run/podman.sock", &without));
        // Fixed, then broken again: said again.
        assert!(!d.check(
            "unix:///run/podman.sock",
            &rootless(&["cpu", "io", "memory", "pids"])
        ));
        assert!(d.check("unix:///run/podman.sock", &without));
        assert!(d.check(
            "unix:///run/podman.sock",
            &rootless(&["cpu", "memory", "pids"])
        ));
    }

    #[test]
    fn names_what_is_lost_and_the_fix() {
        let m = message(&["cpu", "io"]);
        let lost = "controllers cpu, io (their CPU limit and throttling, block I/O cannot";
        assert!(m.contains(lost), "{m}");
        assert!(m.contains("Delegate=cpu cpuset io memory pids"), "{m}");
    }

    #[test]
    fn silent_where_everything_is_delegated_or_unknown() {
        let d = Delegation::default();
        assert!(!d.check("h", &rootless(&["cpuset", "cpu", "io", "memory", "pids"])));
        assert!(!d.check("h", &EngineInfo::default()));
    }
}
