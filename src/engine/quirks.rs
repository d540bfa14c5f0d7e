//! What differs between the engines the exporter reads, in one place: the
//! engine stage tells it from `/version`, and the scrape stage asks these
//! questions rather than branch on which engine answers.

use super::{EngineVersion, Flavor};

/// What a CPU window's length is measured against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CpuClock {
    /// The host's CPU counter (`system_cpu_usage`, Docker): the host's
    /// capacity, in nanoseconds of CPU time.
    HostCounter,
    /// The wall clock (the answers' `read` stamps) times the online CPUs:
    /// Podman's `system_cpu_usage` counts the host's busy time only.
    WallTime,
}

/// How an engine names its containers' cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CgroupLayout {
    /// The scope's prefix: `docker-<id>.scope`, `libpod-<id>.scope`.
    pub scope_prefix: &'static str,
    /// The slice with the systemd driver where the container set none.
    pub systemd_slice: &'static str,
    /// The parent with the cgroupfs driver where the container set none.
    pub cgroupfs_parent: &'static str,
    /// Whether the cgroupfs path's last part carries the prefix too
    /// (`/libpod_parent/libpod-<id>`, but `/docker/<id>`).
    pub cgroupfs_prefixed: bool,
    /// Whether a rootless engine's containers are under their user's systemd
    /// manager (`/user.slice/user-<uid>.slice/user@<uid>.service/...`).
    pub rootless_under_user_manager: bool,
}

/// How an engine's answers are to be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quirks {
    /// A stats call answers at once with `precpu_stats` zeroed (Docker 25
    /// and later with `one-shot`, Podman always), rather than waiting for
    /// the engine's 1 s collection tick (Docker up to 24).
    pub direct_stats: bool,
    /// What CPU windows are measured against.
    pub cpu_clock: CpuClock,
    /// Throttling counters are constant zeros although the cgroup throttles
    /// (Podman 4.3 and 5.4): left out rather than exported wrong.
    pub zero_throttling: bool,
    /// Packet, error and drop counters are constant zeros (Podman 4, whose
    /// one `network` entry has only bytes; Podman 5.4 reports each
    /// interface's): left out rather than exported wrong.
    pub zero_packets: bool,
    /// User and system CPU time are the cgroup's. Podman's are not (5.4 on
    /// cgroup v2 gives system time in microseconds where nanoseconds are
    /// due, and user time as the total less that): left out.
    pub cpu_modes: bool,
    /// Its cgroup paths.
    pub cgroups: CgroupLayout,
}

impl CgroupLayout {
    /// Docker's: `/system.slice/docker-<id>.scope`, `/docker/<id>`.
    pub const DOCKER: CgroupLayout = CgroupLayout {
        scope_prefix: "docker",
        systemd_slice: "system.slice",
        cgroupfs_parent: "/docker",
        cgroupfs_prefixed: false,
        rootless_under_user_manager: false,
    };

    /// Podman's: `/machine.slice/libpod-<id>.scope`,
    /// `/libpod_parent/libpod-<id>`, and rootless under the user's manager.
    pub const PODMAN: CgroupLayout = CgroupLayout {
        scope_prefix: "libpod",
        systemd_slice: "machine.slice",
        cgroupfs_parent: "/libpod_parent",
        cgroupfs_prefixed: true,
        rootless_under_user_manager: true,
    };
}

impl EngineVersion {
    /// How this engine's answers are read. An engine not identified yet is
    /// taken for a Docker before 25.
    pub fn quirks(&self) -> Quirks {
        match self.flavor {
            Flavor::Docker => Quirks {
                direct_stats: self.major().is_some_and(|major| major >= 25),
                cpu_clock: CpuClock::HostCounter,
                zero_throttling: false,
                zero_packets: false,
                cpu_modes: true,
                cgroups: CgroupLayout::DOCKER,
            },
            Flavor::Podman => Quirks {
                direct_stats: true,
                cpu_clock: CpuClock::WallTime,
                zero_throttling: true,
                zero_packets: self.major().is_none_or(|major| major < 5),
                cpu_modes: false,
                cgroups: CgroupLayout::PODMAN,
            },
        }
    }
}

impl Default for Quirks {
    fn default() -> Self {
        EngineVersion::default().quirks()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(flavor: Flavor, version: &str) -> Quirks {
        EngineVersion {
            flavor,
            version: version.into(),
        }
        .quirks()
    }

    #[test]
    fn direct_stats_from_docker_25_and_on_podman() {
        assert!(!v(Flavor::Docker, "20.10.24").direct_stats);
        assert!(!v(Flavor::Docker, "24.0.9").direct_stats);
        assert!(v(Flavor::Docker, "25.0.0").direct_stats);
        assert!(v(Flavor::Docker, "26.1.5").direct_stats);
        assert!(!v(Flavor::Docker, "").direct_stats);
        assert!(v(Flavor::Podman, "4.3.1").direct_stats);
        assert!(!Quirks::default().direct_stats);
    }

    #[test]
    fn podman_is_read_against_wall_time_without_its_zero_counters() {
        let podman = v(Flavor::Podman, "5.4.2");
        assert_eq!(podman.cpu_clock, CpuClock::WallTime);
        assert!(podman.zero_throttling);
        assert!(!podman.zero_packets);
        assert!(v(Flavor::Podman, "4.3.1").zero_packets);
        assert!(!podman.cpu_modes);
        assert_eq!(podman.cgroups, CgroupLayout::PODMAN);
        let docker = v(Flavor::Docker, "28.5.2");
        assert_eq!(docker.cpu_clock, CpuClock::HostCounter);
        assert!(!docker.zero_throttling);
        assert!(!docker.zero_packets);
        assert!(docker.cpu_modes);
        assert_eq!(docker.cgroups, CgroupLayout::DOCKER);
    }
}
