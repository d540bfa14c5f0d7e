//! Turns one engine stats response into plain numbers, following docker/cli's
//! `stats_helpers.go` for cgroup v1 and v2. Every value is optional: a field an
//! engine does not report leaves its series out instead of failing the
//! container.

use crate::engine::model::{BlkioEntry, CpuStats, MemoryStats, Stats};

use crate::scrape::cpu::CpuReading;

/// One interface's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Interface {
    /// Interface name inside the container (`eth0`).
    pub name: String,
    pub rx_bytes: Option<u64>,
    pub tx_bytes: Option<u64>,
    pub rx_packets: Option<u64>,
    pub tx_packets: Option<u64>,
    pub rx_errors: Option<u64>,
    pub tx_errors: Option<u64>,
    pub rx_dropped: Option<u64>,
    pub tx_dropped: Option<u64>,
}

/// Everything one stats response says about a running container.
#[derive(Debug, Clone, Default, PartialEq)]
#[allow(missing_docs)]
pub struct Sample {
    /// The current CPU reading.
    pub cpu: Option<CpuReading>,
    /// The engine's previous reading, where it filled `precpu_stats`.
    pub precpu: Option<CpuReading>,
    pub cpu_user_ns: Option<u64>,
    pub cpu_system_ns: Option<u64>,
    pub cfs_periods: Option<u64>,
    pub cfs_throttled_periods: Option<u64>,
    pub cfs_throttled_ns: Option<u64>,
    pub memory_usage: Option<u64>,
    pub memory_limit: Option<u64>,
    pub memory_working_set: Option<u64>,
    pub memory_rss: Option<u64>,
    pub memory_cache: Option<u64>,
    pub memory_max_usage: Option<u64>,
    pub memory_failcnt: Option<u64>,
    /// Swap in use (cgroup v1 `total_swap`, where swap is accounted).
    pub memory_swap: Option<u64>,
    /// File-backed memory mapped into processes (v1 `total_mapped_file`,
    /// v2 `file_mapped`).
    pub memory_mapped_file: Option<u64>,
    /// Page faults, as `[pgfault, pgmajfault]`, of the container itself.
    pub page_faults_container: Option<[u64; 2]>,
    /// Page faults, as `[pgfault, pgmajfault]`, of the container and its
    /// children (the same as the container's own on cgroup v2).
    pub page_faults_hierarchy: Option<[u64; 2]>,
    /// Interfaces sorted by name.
    pub interfaces: Vec<Interface>,
    pub fs_read_bytes: Option<u64>,
    pub fs_write_bytes: Option<u64>,
    pub fs_reads: Option<u64>,
    pub fs_writes: Option<u64>,
    pub pids: Option<u64>,
    pub pids_limit: Option<u64>,
}

impl Sample {
    /// The sample, or `None` when the response describes a container that is
    /// not running (zeroed `read`, as the engine answers for stopped ones).
    pub fn from_stats(stats: &Stats) -> Option<Self> {
        let read = stats.read.as_deref().unwrap_or("");
        if read.is_empty() || read.starts_with("0001-01-01") {
            return None;
        }
        let mut s = Sample::default();
        if let Some(cpu) = &stats.cpu_stats {
            s.read_cpu(cpu, read);
        }
        s.precpu = stats.precpu_stats.as_ref().and_then(CpuReading::from_stats);
        if let Some(mem) = &stats.memory_stats {
            s.read_memory(mem);
        }
        if let Some(networks) = &stats.networks {
            s.interfaces = networks
                .iter()
                .map(|(name, n)| Interface {
                    name: name.clone(),
                    rx_bytes: n.rx_bytes,
                    tx_bytes: n.tx_bytes,
                    rx_packets: n.rx_packets,
                    tx_packets: n.tx_packets,
                    rx_errors: n.rx_errors,
                    tx_errors: n.tx_errors,
                    rx_dropped: n.rx_dropped,
                    tx_dropped: n.tx_dropped,
                })
                .collect();
            s.interfaces.sort_by(|a, b| a.name.cmp(&b.name));
        }
        if let Some(blkio) = &stats.blkio_stats {
            let bytes = blkio.io_service_bytes_recursive.as_deref();
            let ops = blkio.io_serviced_recursive.as_deref();
            s.fs_read_bytes = sum_op(bytes, "read");
            s.fs_write_bytes = sum_op(bytes, "write");
            s.fs_reads = sum_op(ops, "read");
            s.fs_writes = sum_op(ops, "write");
        }
        if let Some(pids) = &stats.pids_stats {
            s.pids = pids.current;
            // Unlimited shows as 0 or as u64::MAX depending on the engine.
            s.pids_limit = pids.limit.filter(|&l| l > 0 && l != u64::MAX);
        }
        Some(s)
    }

    /// The CPU counter stamped with the answer's `read` time, user and
    /// system time, and throttling.
    fn read_cpu(&mut self, cpu: &CpuStats, read: &str) {
        self.cpu = CpuReading::from_stats(cpu).map(|r| CpuReading {
            at: crate::scrape::timestamp::parse_rfc3339(read),
            ..r
        });
        if let Some(usage) = &cpu.cpu_usage {
            self.cpu_user_ns = usage.usage_in_usermode;
            self.cpu_system_ns = usage.usage_in_kernelmode;
        }
        if let Some(t) = &cpu.throttling_data {
            self.cfs_periods = t.periods;
            self.cfs_throttled_periods = t.throttled_periods;
            self.cfs_throttled_ns = t.throttled_time;
        }
    }

    /// Usage, limit and the cgroup's own figures, named as cgroup v1 (its
    /// hierarchy totals are `total_*`) or v2 names them.
    fn read_memory(&mut self, mem: &MemoryStats) {
        self.memory_usage = mem.usage;
        self.memory_limit = mem.limit;
        self.memory_max_usage = mem.max_usage;
        self.memory_failcnt = mem.failcnt;
        let stat = |key: &str| mem.stats.as_ref().and_then(|m| m.get(key).copied());
        let v1 = stat("total_inactive_file").is_some();
        if let Some(usage) = mem.usage {
            let inactive = if v1 {
                stat("total_inactive_file")
            } else {
                stat("inactive_file")
            };
            self.memory_working_set = Some(match inactive {
                Some(i) if i < usage => usage - i,
                _ => usage,
            });
        }
        (self.memory_rss, self.memory_cache) = if v1 {
            (stat("total_rss"), stat("total_cache"))
        } else {
            (stat("anon"), stat("file"))
        };
        let faults = |minor: &str, major: &str| Some([stat(minor)?, stat(major)?]);
        if v1 {
            // Docker leaves failcnt out of a cgroup v1 answer when it is 0.
            self.memory_failcnt = mem.failcnt.or(Some(0));
            self.memory_swap = stat("total_swap");
            self.memory_mapped_file = stat("total_mapped_file");
            self.page_faults_container = faults("pgfault", "pgmajfault");
            self.page_faults_hierarchy = faults("total_pgfault", "total_pgmajfault");
        } else {
            self.memory_mapped_file = stat("file_mapped");
            self.page_faults_container = faults("pgfault", "pgmajfault");
            self.page_faults_hierarchy = self.page_faults_container;
        }
    }

    /// Bytes received over all interfaces.
    pub fn network_rx_bytes(&self) -> Option<u64> {
        self.sum_interfaces(|i| i.rx_bytes)
    }

    /// Bytes sent over all interfaces.
    pub fn network_tx_bytes(&self) -> Option<u64> {
        self.sum_interfaces(|i| i.tx_bytes)
    }

    fn sum_interfaces(&self, field: impl Fn(&Interface) -> Option<u64>) -> Option<u64> {
        if self.interfaces.is_empty() {
            return None;
        }
        Some(
            self.interfaces
                .iter()
                .filter_map(field)
                .fold(0u64, u64::saturating_add),
        )
    }
}

/// Sums entries whose op is `op` in any case (v1 `Read`, v2 `read`).
/// docker/cli takes every op starting with the same letter, which on Podman
/// 5 also adds its `rios`/`wios` entries (io.stat's operation counts,
/// listed among the bytes) to the bytes. `None` when the engine reported no
/// entries.
fn sum_op(entries: Option<&[BlkioEntry]>, op: &str) -> Option<u64> {
    let entries = entries.filter(|e| !e.is_empty())?;
    Some(
        entries
            .iter()
            .filter(|e| e.op.as_deref().is_some_and(|o| o.eq_ignore_ascii_case(op)))
            .filter_map(|e| e.value)
            .fold(0u64, u64::saturating_add),
    )
}
