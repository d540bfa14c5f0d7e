//! The series a kernel may or may not account (block I/O, swap, failcnt,
//! max usage, the pids limit, CFS throttling): present exactly where the
//! engine reports them, and within the engine's and the cgroup's readings.

use common::accounted;
use common::cgroup::{Cgroups, IoOp};
use common::{
    docker, engine_socket, names_config, unique, wait_until, wait_until_async, Container, Exporter,
    PATIENCE,
};

/// The sum of a blkio list's entries whose op starts with `first` (v1
/// `Read`, v2 `read`), as the engine reports them.
fn engine_blkio(stats: &serde_json::Value, list: &str, first: char) -> f64 {
    stats["blkio_stats"][list]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|e| {
            e["op"]
                .as_str()
                .and_then(|op| op.chars().next())
                .is_some_and(|c| c.eq_ignore_ascii_case(&first))
        })
        .filter_map(|e| e["value"].as_f64())
        .sum()
}

#[tokio::test(flavor = "multi_thread")]
async fn accounted_series_exist_exactly_where_the_engine_reports_them() {
    // Direct I/O on a volume (overlayfs refuses O_DIRECT), limits on memory,
    // pids and CPU: everything a kernel may or may not account.
    let c = Container::run(
        &unique("dse-lc-accounted"),
        &[
            "--memory",
            "32m",
            "--pids-limit",
            "20",
            "--cpus",
            "0.5",
            "-v",
            "/data",
        ],
        &[
            "sh",
            "-c",
            "while :; do dd if=/dev/zero of=/data/f bs=64k count=16 oflag=direct 2>/dev/null; \
             dd if=/data/f of=/dev/null bs=64k iflag=direct 2>/dev/null; echo pass; \
             sleep 0.2; done",
        ],
    );
    let cgroups = Cgroups::of_engine("accounted");
    let cgroup = cgroups.of(&c);
    let exporter = Exporter::local(&names_config(&[&c.name], common::SLOW_ENGINE)).await;
    // The loop has written and read once its first pass is in the log (the
    // log rather than `docker exec`, whose streams come back empty from
    // Podman through the VM's forwarded sockets).
    wait_until("the I/O loop ran", PATIENCE, || {
        match docker(&["logs", &c.name]) {
            out if out.contains("pass") => Ok(()),
            out => Err(out),
        }
    });
    // A scrape that says it left something out (a stats call past the
    // timeout on a loaded VM) proves nothing about accounting: take the
    // first whole one, with the engine's and the kernel's readings around it.
    let (kernel_before, before, m, after, kernel_after) =
        wait_until_async("a scrape that left nothing out", PATIENCE, || async {
            let kernel_before = cgroups.read_now(&cgroup);
            let before = accounted::engine_stats(engine_socket(), &c.id);
            let m = exporter.metrics().await;
            let after = accounted::engine_stats(engine_socket(), &c.id);
            let kernel_after = cgroups.read_now(&cgroup);
            m.whole()
                .map(|()| (kernel_before, before, m, after, kernel_after))
        })
        .await;
    let families: Vec<&str> = [
        "container_fs_reads_bytes_total",
        "container_fs_writes_bytes_total",
        "container_fs_reads_total",
        "container_fs_writes_total",
        "container_memory_swap",
        "container_memory_max_usage_bytes",
        "container_memory_failcnt",
        "container_pids_limit",
        "container_cpu_cfs_periods_total",
        "container_cpu_cfs_throttled_periods_total",
    ]
    .into_iter()
    .filter(|f| accounted::is_accounted(f))
    .collect();
    assert_eq!(families.len(), 10, "every family here is an accounted one");
    for family in families {
        let (was, is) = (
            accounted::reports(&before, family),
            accounted::reports(&after, family),
        );
        let got = m.get(family, &c.name);
        if !was && !is {
            assert_eq!(
                got, None,
                "the engine reports nothing for {family}; the exporter made up {got:?}"
            );
        } else if was && is {
            assert!(
                got.is_some(),
                "the engine reports {family}; the exporter left it out"
            );
        }
    }
    // Where block I/O is reported, the byte counters lie between the
    // engine's readings around the scrape.
    for (family, list, op) in [
        (
            "container_fs_reads_bytes_total",
            "io_service_bytes_recursive",
            'r',
        ),
        (
            "container_fs_writes_bytes_total",
            "io_service_bytes_recursive",
            'w',
        ),
        ("container_fs_reads_total", "io_serviced_recursive", 'r'),
        ("container_fs_writes_total", "io_serviced_recursive", 'w'),
    ] {
        if let Some(got) = m.get(family, &c.name) {
            let (lo, hi) = (
                engine_blkio(&before, list, op),
                engine_blkio(&after, list, op),
            );
            assert!(
                lo <= got && got <= hi,
                "{family} {got} not within the engine's [{lo}, {hi}] around the scrape"
            );
        }
    }
    // And the kernel's own count, in the container's cgroup: where it lists
    // devices the byte counters lie between its reads, where it lists none
    // they are absent.
    for (family, op) in [
        ("container_fs_reads_bytes_total", IoOp::Read),
        ("container_fs_writes_bytes_total", IoOp::Write),
    ] {
        let got = m.get(family, &c.name);
        match (kernel_before.io_bytes(op), kernel_after.io_bytes(op)) {
            (None, None) => assert_eq!(
                got, None,
                "the cgroup lists no block device; the exporter made up {family} {got:?}"
            ),
            (lo, Some(hi)) => {
                // Absent only if the first device appeared during the scrape.
                let got = got.or(lo.is_none().then_some(0.0));
                let lo = lo.unwrap_or(0) as f64;
                assert!(
                    got.is_some_and(|got| lo <= got && got <= hi as f64),
                    "{family} {got:?} not within the cgroup's [{lo}, {hi}] around the scrape"
                );
            }
            (Some(_), None) => panic!("the cgroup lost its block devices"),
        }
    }
    // The pids limit, where reported, is the one the container was given.
    if let Some(limit) = m.get("container_pids_limit", &c.name) {
        assert_eq!(limit, 20.0);
    }
    assert_eq!(kernel_after.pids_max(), Some(20));
}
