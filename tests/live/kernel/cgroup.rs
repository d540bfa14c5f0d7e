//! Every series the exporter takes from a container's cgroup, checked against
//! the cgroup's own files on the engine's machine (common::cgroup): memory
//! (v1 memory.usage_in_bytes and memory.stat `total_*`, v2 memory.current
//! and memory.stat), CPU (v1 cpuacct.usage, cpuacct.stat and cpu.stat, v2
//! cpu.stat's `usage_usec`, `user_usec`, `system_usec`, `nr_periods`,
//! `nr_throttled`, `throttled_usec`), the CPU and memory limits (v1
//! cpu.cfs_*, memory.limit_in_bytes, v2 cpu.max, memory.max), block I/O (v1
//! blkio.throttle.io_service_bytes_recursive, v2 io.stat) and pids
//! (pids.current, pids.max), in the directory the exporter's `id` label
//! names.
//!
//! Counters move between two reads, so the exporter's value must lie between
//! a read before its scrape and one after; gauges must lie within both reads
//! of one round, and a round is repeated until they do (memory moves a
//! little while a container runs). Where the cgroup lists nothing (block I/O
//! on a kernel that accounts none), the series must be absent.

use common::cgroup::{Cgroup, Cgroups, IoOp, MemoryStat, Reading};
use common::engine::engine_flavor;
use common::{
    names_config, unique, wait_until, wait_until_async, Container, Exporter, Metrics, PATIENCE,
};
use docker_stats_exporter::engine::Flavor;

/// An exporter in process that selects `names`, with time for a slow engine.
async fn exporter(names: &[&str]) -> Exporter {
    let config = names_config(
        names,
        &format!("{}\nfs_usage = false\n", common::SLOW_ENGINE),
    );
    Exporter::local(&config).await
}

/// One round: the cgroup read, a scrape, the cgroup read again.
struct Round {
    before: Reading,
    metrics: Metrics,
    after: Reading,
}

async fn round(exporter: &Exporter, cgroups: &Cgroups, cgroup: &Cgroup) -> Result<Round, String> {
    let before = cgroups.read(cgroup)?;
    let metrics = exporter.metrics().await;
    let after = cgroups.read(cgroup)?;
    Ok(Round {
        before,
        metrics,
        after,
    })
}

/// `before <= value <= after` for a counter, allowing for the exposition's
/// decimal rounding.
fn between(what: &str, before: f64, value: Option<f64>, after: f64) -> Result<(), String> {
    let value = value.ok_or_else(|| format!("{what}: no series"))?;
    let slack = 1e-9 * value.abs().max(1.0);
    if before - slack <= value && value <= after + slack {
        Ok(())
    } else {
        Err(format!(
            "{what}: exporter {value}, cgroup {before} before and {after} after"
        ))
    }
}

/// A gauge that must lie within the cgroup's two reads of the round (equal
/// to both while it holds still).
fn within(what: &str, before: u64, value: Option<f64>, after: u64) -> Result<(), String> {
    let (lo, hi) = (before.min(after) as f64, before.max(after) as f64);
    between(what, lo, value, hi)
}

/// A setting that must be exactly the cgroup's (`None`: no series).
fn same(what: &str, cgroup: Option<u64>, value: Option<f64>) -> Result<(), String> {
    if value == cgroup.map(|c| c as f64) {
        Ok(())
    } else {
        Err(format!("{what}: exporter {value:?}, cgroup {cgroup:?}"))
    }
}

/// The memory series against the cgroup's usage and memory.stat, all of one
/// round; a container without --memory has no cgroup limit and a spec limit
/// of 0. Podman's answer has no memory.stat: no rss or cache series there.
fn memory_matches(r: &Round, name: &str) -> Result<(), String> {
    let (b, a, m) = (&r.before, &r.after, &r.metrics);
    let usage = m.get("container_memory_usage_bytes", name);
    match engine_flavor() {
        Flavor::Docker => within(
            "container_memory_usage_bytes vs the cgroup's usage",
            b.memory_usage(),
            usage,
            a.memory_usage(),
        )?,
        // Podman sums it itself: anonymous memory on 5.4, usage less
        // inactive_file on later ones; no page cache either way.
        Flavor::Podman => within(
            "container_memory_usage_bytes vs memory.stat anon",
            b.memory_stat(MemoryStat::Rss),
            usage,
            a.memory_stat(MemoryStat::Rss),
        )
        .or_else(|anon| {
            within(
                "container_memory_usage_bytes vs usage - inactive_file",
                b.memory_working_set(),
                usage,
                a.memory_working_set(),
            )
            .map_err(|ws| format!("{anon}; {ws}"))
        })?,
    }
    let working_set = m.get("container_memory_working_set_bytes", name);
    match engine_flavor() {
        Flavor::Docker => within(
            "container_memory_working_set_bytes vs usage - inactive_file",
            b.memory_working_set(),
            working_set,
            a.memory_working_set(),
        )?,
        // Without memory.stat, the working set is Podman's usage.
        Flavor::Podman if working_set == usage => {}
        Flavor::Podman => {
            return Err(format!(
                "container_memory_working_set_bytes {working_set:?}, Podman's usage {usage:?}"
            ))
        }
    }
    for (stat, metric) in [
        (MemoryStat::Rss, "container_memory_rss"),
        (MemoryStat::Cache, "container_memory_cache"),
    ] {
        if engine_flavor() == Flavor::Podman {
            same(metric, None, m.get(metric, name))?;
            continue;
        }
        within(
            &format!("{metric} vs memory.stat {stat:?}"),
            b.memory_stat(stat),
            m.get(metric, name),
            a.memory_stat(stat),
        )?;
    }
    let limit = a.memory_limit();
    same(
        "container_spec_memory_limit_bytes vs the cgroup's limit",
        Some(limit.unwrap_or(0)),
        m.get("container_spec_memory_limit_bytes", name),
    )?;
    if limit.is_some() {
        same(
            "container_memory_limit_bytes vs the cgroup's limit",
            limit,
            m.get("container_memory_limit_bytes", name),
        )?;
    }
    Ok(())
}

/// The CPU counters against the cgroup's, and the quota and period.
fn cpu_matches(r: &Round, name: &str) -> Result<(), String> {
    let (b, a, m) = (&r.before, &r.after, &r.metrics);
    // Each counter as (metric, cgroup before, cgroup after).
    let counters = [
        (
            "container_cpu_usage_seconds_total",
            b.cpu_seconds(),
            a.cpu_seconds(),
        ),
        (
            "container_cpu_user_seconds_total",
            b.cpu_user_seconds(),
            a.cpu_user_seconds(),
        ),
        (
            "container_cpu_system_seconds_total",
            b.cpu_system_seconds(),
            a.cpu_system_seconds(),
        ),
        (
            "container_cpu_cfs_throttled_seconds_total",
            b.cfs_throttled_seconds(),
            a.cfs_throttled_seconds(),
        ),
        (
            "container_cpu_cfs_periods_total",
            b.cfs_periods() as f64,
            a.cfs_periods() as f64,
        ),
        (
            "container_cpu_cfs_throttled_periods_total",
            b.cfs_throttled_periods() as f64,
            a.cfs_throttled_periods() as f64,
        ),
    ];
    for (metric, before, after) in counters {
        // Podman's throttling counters are zeros whatever the cgroup
        // counted, and its user and system times are not the cgroup's.
        if engine_flavor() == Flavor::Podman && metric != "container_cpu_usage_seconds_total" {
            same(metric, None, m.get(metric, name))?;
            continue;
        }
        between(metric, before, m.get(metric, name), after)?;
    }
    same(
        "container_spec_cpu_period vs the cgroup's",
        Some(a.cpu_period()),
        m.get("container_spec_cpu_period", name),
    )?;
    same(
        "container_spec_cpu_quota vs the cgroup's",
        a.cpu_quota(),
        m.get("container_spec_cpu_quota", name),
    )
}

/// Block I/O bytes against the cgroup's: between the reads where it lists
/// devices, and no series where it lists none.
fn io_matches(r: &Round, name: &str) -> Result<(), String> {
    for (op, metric) in [
        (IoOp::Read, "container_fs_reads_bytes_total"),
        (IoOp::Write, "container_fs_writes_bytes_total"),
    ] {
        let value = r.metrics.get(metric, name);
        match (r.before.io_bytes(op), r.after.io_bytes(op)) {
            (Some(b), Some(a)) => between(metric, b as f64, value, a as f64)?,
            (None, None) => {
                if let Some(v) = value {
                    return Err(format!("{metric} is {v}, but the cgroup lists no device"));
                }
            }
            // The first device appeared during the round.
            (None, Some(a)) => between(metric, 0.0, value.or(Some(0.0)), a as f64)?,
            (Some(_), None) => return Err("the cgroup lost its devices".into()),
        }
    }
    Ok(())
}

/// pids.current and pids.max against container_pids and
/// container_pids_limit (no series without a limit).
fn pids_match(r: &Round, name: &str) -> Result<(), String> {
    let (b, a, m) = (&r.before, &r.after, &r.metrics);
    within(
        "container_pids vs pids.current",
        b.pids(),
        m.get("container_pids", name),
        a.pids(),
    )?;
    // Podman's answer has no pids limit.
    let limit = match engine_flavor() {
        Flavor::Docker => a.pids_max(),
        Flavor::Podman => None,
    };
    same(
        "container_pids_limit vs pids.max",
        limit,
        m.get("container_pids_limit", name),
    )
}

/// Every check for one container, on one round.
fn all_match(r: &Round, name: &str) -> Result<(), String> {
    memory_matches(r, name)?;
    cpu_matches(r, name)?;
    io_matches(r, name)?;
    pids_match(r, name)
}

/// Repeats rounds until every check of container `c` holds in one. The
/// exporter's `id` label must name its cgroup, as the kernel does.
async fn agrees(exporter: &Exporter, cgroups: &Cgroups, c: &Container) -> Round {
    let cgroup = cgroups.of(c);
    let first = exporter.metrics().await;
    for metric in [
        "container_memory_usage_bytes",
        "container_cpu_usage_seconds_total",
    ] {
        assert_eq!(
            first.label(metric, &c.name, "id").as_deref(),
            Some(cgroup.path()),
            "{metric}'s id label is the container's cgroup path"
        );
    }
    let r = wait_until_async(
        &format!(
            "the exporter's series of {} to agree with its cgroup files in {}",
            c.name,
            cgroup.path()
        ),
        PATIENCE,
        || async {
            let r = round(exporter, cgroups, &cgroup).await?;
            all_match(&r, &c.name)?;
            Ok(r)
        },
    )
    .await;
    eprintln!(
        "{} agrees with {} (cgroup {:?}): CPU {:.3} .. {:.3} s, throttled periods {}, \
         memory {}, block I/O read {:?} written {:?}, pids {}",
        c.name,
        cgroup.path(),
        r.after.version(),
        r.before.cpu_seconds(),
        r.after.cpu_seconds(),
        r.after.cfs_throttled_periods(),
        r.after.memory_usage(),
        r.after.io_bytes(IoOp::Read),
        r.after.io_bytes(IoOp::Write),
        r.after.pids(),
    );
    r
}

/// A read of a running container's cgroup once `check` holds for it.
fn wait_cgroup(
    what: &str,
    cgroups: &Cgroups,
    c: &Container,
    check: impl Fn(&Reading) -> Result<(), String>,
) -> Reading {
    let cgroup = cgroups.of(c);
    wait_until(what, PATIENCE, || {
        let r = cgroups.read(&cgroup)?;
        check(&r)?;
        Ok(r)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_capped_burner_matches_the_cgroups_cpu_counters_and_throttling() {
    let cgroups = Cgroups::of_engine("cpu");
    let burner = Container::run(
        &unique("dse-cg-burner"),
        &["--cpus", "0.5"],
        &["sh", "-c", "yes >/dev/null"],
    );
    wait_cgroup(
        "the burner to be throttled",
        &cgroups,
        &burner,
        |r| match r.cfs_throttled_periods() {
            0 => Err(format!("not throttled yet:\n{}", r.text("cpu.stat"))),
            _ => Ok(()),
        },
    );
    let exporter = exporter(&[&burner.name]).await;
    let r = agrees(&exporter, &cgroups, &burner).await;
    assert!(r.after.cfs_throttled_periods() > 0);
    let throttled = r
        .metrics
        .get("container_cpu_cfs_throttled_seconds_total", &burner.name);
    match engine_flavor() {
        Flavor::Docker => assert!(throttled > Some(0.0), "throttled {throttled:?}"),
        Flavor::Podman => assert_eq!(throttled, None, "Podman reports zeros"),
    }
    assert_eq!(r.after.cpu_quota(), Some(50_000));
    assert_eq!(r.after.cpu_period(), 100_000);
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hog_with_a_limit_matches_the_cgroups_memory_files() {
    let cgroups = Cgroups::of_engine("mem");
    // 24 MB of anonymous memory held by the shell, under a 96 MiB limit.
    // The loop keeps the shell: a last plain command would replace it.
    let hog = Container::run(
        &unique("dse-cg-hog"),
        &["--memory", "96m"],
        &[
            "sh",
            "-c",
            "x=$(yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 24000000); while :; do sleep 3600; done",
        ],
    );
    wait_cgroup("the hog to hold its memory", &cgroups, &hog, |r| {
        match r.memory_stat(MemoryStat::Rss) {
            anon if anon >= 24_000_000 => Ok(()),
            anon => Err(format!("anonymous memory {anon}")),
        }
    });
    let exporter = exporter(&[&hog.name]).await;
    let r = agrees(&exporter, &cgroups, &hog).await;
    assert_eq!(r.after.memory_limit(), Some(96 * 1024 * 1024));
    assert_eq!(
        r.metrics
            .get("container_spec_memory_limit_bytes", &hog.name),
        Some((96 * 1024 * 1024) as f64)
    );
    // Podman reports no memory.stat, but its usage holds the anonymous memory.
    let anon = match engine_flavor() {
        Flavor::Docker => "container_memory_rss",
        Flavor::Podman => "container_memory_usage_bytes",
    };
    assert!(r.metrics.get(anon, &hog.name) >= Some(24e6), "{anon}");
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_writes_and_reads_match_the_cgroups_block_io() {
    let cgroups = Cgroups::of_engine("io");
    // O_DIRECT on a volume (overlayfs may refuse it), so the bytes reach the
    // disk in the container's own name rather than later from the kernel's
    // writeback. Each pass says so in the container's log (its log rather
    // than a file for `docker exec`: through the VM's forwarded sockets,
    // Podman's exec streams come back empty).
    let writer = Container::run(
        &unique("dse-cg-writer"),
        &["-v", "/data"],
        &[
            "sh",
            "-c",
            "while true; do \
               dd if=/dev/zero of=/data/f bs=64k count=32 oflag=direct 2>/dev/null; \
               dd if=/data/f of=/dev/null bs=64k iflag=direct 2>/dev/null; \
               echo pass; \
               sleep 1; \
             done",
        ],
    );
    // Where the kernel accounts block I/O, wait for 2 MiB each way; where it
    // accounts none, for three passes of the loop with nothing listed.
    wait_cgroup("the writer's block I/O", &cgroups, &writer, |r| {
        match (r.io_bytes(IoOp::Write), r.io_bytes(IoOp::Read)) {
            (Some(w), Some(rd)) if w >= 2 << 20 && rd >= 2 << 20 => Ok(()),
            (None, None) => {
                let passes = common::docker_cmd()
                    .args(["logs", &writer.name])
                    .output()
                    .map(|o| String::from_utf8_lossy(&o.stdout).lines().count())
                    .unwrap_or(0);
                match passes {
                    n if n >= 3 => Ok(()),
                    n => Err(format!("{n} passes, nothing listed")),
                }
            }
            (w, rd) => Err(format!("written {w:?}, read {rd:?}")),
        }
    });
    let exporter = exporter(&[&writer.name]).await;
    let r = agrees(&exporter, &cgroups, &writer).await;
    if r.after.io_bytes(IoOp::Write).is_some() {
        for metric in [
            "container_fs_writes_bytes_total",
            "container_fs_reads_bytes_total",
        ] {
            assert!(r.metrics.get(metric, &writer.name) >= Some(2.0 * 1048576.0));
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pids_limit_matches_pids_current_and_max() {
    let cgroups = Cgroups::of_engine("pids");
    // The shell and five sleeps: six processes under a limit of 20.
    let forker = Container::run(
        &unique("dse-cg-pids"),
        &["--pids-limit", "20"],
        &["sh", "-c", "for i in 1 2 3 4 5; do sleep 3600 & done; wait"],
    );
    wait_cgroup(
        "the forker's six processes",
        &cgroups,
        &forker,
        |r| match r.pids() {
            6 => Ok(()),
            n => Err(format!("pids.current {n}")),
        },
    );
    let exporter = exporter(&[&forker.name]).await;
    let r = agrees(&exporter, &cgroups, &forker).await;
    assert_eq!(r.after.pids_max(), Some(20));
    assert_eq!(r.metrics.get("container_pids", &forker.name), Some(6.0));
    let limit = r.metrics.get("container_pids_limit", &forker.name);
    match engine_flavor() {
        Flavor::Docker => assert_eq!(limit, Some(20.0)),
        Flavor::Podman => assert_eq!(limit, None, "Podman reports no pids limit"),
    }
}
