//! The exporter against a Docker engine on cgroup v2, checked against the
//! cgroup files themselves. The engine is the one in the VM that
//! `scripts/cgroup2-vm.sh` boots (Debian 12, systemd, unified hierarchy),
//! named by `DSE_CGROUP2_HOST`:
//!
//! ```sh
//! DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2) cargo test --test cgroup_v2
//! ```
//!
//! Without `DSE_CGROUP2_HOST` the tests skip, except under `CI=true`, where
//! they fail. The cgroup files are the VM's, so they are read through the
//! engine: a reader container mounts the VM's /sys/fs/cgroup and `cat`s the
//! directory the exporter names in its `id` label. Counters move between two
//! reads, so the exporter's value must lie between a read before its scrape
//! and one after; gauges must agree with both reads of one round, and a round
//! is repeated until they do (memory moves a little while a container runs).

use crate::common;

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use common::{image_name, names_config, unique, wait_until, wait_until_async, Exporter, Metrics};

/// Docker in a VM under TCG is slow to create containers and to answer.
const SLOW: Duration = Duration::from_secs(300);

/// The cgroup v2 engine, or `None` (the test skips) when none is named
/// outside CI.
fn vm_host() -> Option<String> {
    match std::env::var("DSE_CGROUP2_HOST") {
        Ok(host) if !host.trim().is_empty() => Some(host.trim().to_string()),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "DSE_CGROUP2_HOST is not set; CI must run these tests against \
             scripts/cgroup2-vm.sh's engine: DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2)"
        ),
        _ => {
            eprintln!(
                "skipped: set DSE_CGROUP2_HOST to a cgroup v2 engine \
                 (DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2))"
            );
            None
        }
    }
}

/// The docker CLI against the VM's engine.
struct Vm {
    host: String,
}

impl Vm {
    fn new() -> Option<Self> {
        let vm = Self { host: vm_host()? };
        let version = vm.docker(&["info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"]);
        assert_eq!(
            version, "2 systemd",
            "{} is not a cgroup v2 engine with the systemd driver",
            vm.host
        );
        vm.ensure_image();
        Some(vm)
    }

    fn try_docker(&self, args: &[&str]) -> Result<String, String> {
        let out = Command::new(common::DOCKER)
            .args(["-H", &self.host])
            .args(args)
            .output()
            .map_err(|e| format!("cannot run {}: {e}", common::DOCKER))?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(format!(
                "docker -H {} {} failed: {}",
                self.host,
                args.join(" "),
                String::from_utf8_lossy(&out.stderr)
            ))
        }
    }

    fn docker(&self, args: &[&str]) -> String {
        self.try_docker(args).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The busybox test image, imported from this machine's busybox-static
    /// if the VM's engine lacks it.
    fn ensure_image(&self) {
        if self
            .try_docker(&["image", "inspect", &image_name()])
            .is_ok()
        {
            return;
        }
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/import-test-image.sh");
        let status = Command::new("bash")
            .args([script, &self.host])
            .env("DSE_TEST_IMAGE", image_name())
            .env("DOCKER", common::DOCKER)
            .status()
            .expect("bash");
        assert!(status.success(), "{script} {} failed", self.host);
    }

    /// `docker run -d --name NAME extra... IMAGE cmd...`.
    fn run(&self, name: &str, extra: &[&str], cmd: &[&str]) -> VmContainer<'_> {
        let _ = self.try_docker(&["rm", "-f", name]);
        let image = image_name();
        // No network: the checks need none, and a veth pair and its
        // iptables rules cost seconds under TCG.
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--label",
            "dse.test=1",
            "--network",
            "none",
        ];
        args.extend_from_slice(extra);
        args.push(&image);
        args.extend_from_slice(cmd);
        let id = self.docker(&args);
        VmContainer {
            vm: self,
            name: name.to_string(),
            id,
        }
    }

    /// A container that reads the VM's cgroup tree, mounted read-only at
    /// /host-cgroup.
    fn cgroup_reader(&self, test: &str) -> CgroupReader<'_> {
        CgroupReader(self.run(
            &unique(&format!("dse-cg2-reader-{test}")),
            &["-v", "/sys/fs/cgroup:/host-cgroup:ro"],
            &["sleep", "3600"],
        ))
    }
}

/// A container on the VM's engine; removed when dropped.
struct VmContainer<'a> {
    vm: &'a Vm,
    name: String,
    id: String,
}

impl Drop for VmContainer<'_> {
    fn drop(&mut self) {
        let _ = self.vm.try_docker(&["rm", "-f", &self.name]);
    }
}

struct CgroupReader<'a>(VmContainer<'a>);

/// Files of the cgroup v2 interface the checks compare with.
const FILES: &[&str] = &[
    "memory.current",
    "memory.stat",
    "memory.max",
    "cpu.stat",
    "cpu.max",
    "io.stat",
    "pids.current",
    "pids.max",
];

impl CgroupReader<'_> {
    /// The files of the cgroup at `path` (the exporter's `id` label, e.g.
    /// `/system.slice/docker-<id>.scope`); `Err` if the directory is missing.
    fn read(&self, path: &str) -> Result<Cgroup, String> {
        assert!(
            path.starts_with('/') && !path.contains(".."),
            "cgroup path {path:?}"
        );
        // Each file framed by a line of its own; `test -d` first, so a
        // missing directory is told apart from an empty file.
        let script = format!(
            "cd /host-cgroup{path} || exit 3; for f in {}; do echo \"== $f\"; cat \"$f\" || exit 4; done",
            FILES.join(" ")
        );
        let text = self
            .0
            .vm
            .try_docker(&["exec", &self.0.name, "sh", "-c", &script])?;
        let mut files = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("== ") {
                files.insert(name.to_string(), String::new());
                current = Some(name.to_string());
            } else if let Some(name) = &current {
                let body = files.get_mut(name).expect("framed file");
                body.push_str(line);
                body.push('\n');
            }
        }
        for f in FILES {
            if !files.contains_key(*f) {
                return Err(format!("no {f} in the read of {path}:\n{text}"));
            }
        }
        Ok(Cgroup {
            path: path.to_string(),
            files,
        })
    }
}

/// One read of a container's cgroup v2 files.
#[derive(Debug, Clone)]
struct Cgroup {
    path: String,
    files: BTreeMap<String, String>,
}

impl Cgroup {
    fn text(&self, file: &str) -> &str {
        &self.files[file]
    }

    /// A one-value file; `max` is `None`.
    fn value(&self, file: &str) -> Option<u64> {
        let text = self.text(file).trim();
        if text == "max" {
            return None;
        }
        Some(
            text.parse()
                .unwrap_or_else(|e| panic!("{}/{file}: {text:?}: {e}", self.path)),
        )
    }

    /// One key of a flat keyed file (memory.stat, cpu.stat).
    fn key(&self, file: &str, key: &str) -> u64 {
        self.text(file)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {}/{file}:\n{}", self.path, self.text(file)))
    }

    /// A key of io.stat (`MAJ:MIN rbytes=N wbytes=N ...` per device) summed
    /// over the devices; `None` when io.stat lists no device.
    fn io(&self, key: &str) -> Option<u64> {
        let lines: Vec<&str> = self
            .text("io.stat")
            .lines()
            .filter(|l| !l.trim().is_empty())
            .collect();
        if lines.is_empty() {
            return None;
        }
        Some(
            lines
                .iter()
                .flat_map(|l| l.split_whitespace())
                .filter_map(|kv| kv.split_once('='))
                .filter(|(k, _)| *k == key)
                .map(|(_, v)| v.parse::<u64>().expect("io.stat value"))
                .sum(),
        )
    }
}

/// An exporter in process that selects `names`, with time for the VM.
async fn exporter(vm: &Vm, names: &[&str]) -> Exporter {
    let config = names_config(names, "timeout = \"60s\"\nfs_usage = false\n");
    Exporter::start(&config, &vm.host).await
}

/// One round: the cgroup read, a scrape, the cgroup read again.
struct Round {
    before: Cgroup,
    metrics: Metrics,
    after: Cgroup,
}

async fn round(
    exporter: &Exporter,
    reader: &CgroupReader<'_>,
    path: &str,
) -> Result<Round, String> {
    let before = reader.read(path)?;
    let metrics = exporter.metrics().await;
    let after = reader.read(path)?;
    Ok(Round {
        before,
        metrics,
        after,
    })
}

/// `before <= value <= after`, for a counter the exporter shows as `value`
/// and the cgroup counts in `unit`s of the exporter's (1e-6 for seconds from
/// microseconds); the exposition's decimal rounding is allowed for.
fn between(
    what: &str,
    before: u64,
    value: Option<f64>,
    after: u64,
    unit: f64,
) -> Result<(), String> {
    let value = value.ok_or_else(|| format!("{what}: no series"))?;
    let slack = unit / 2.0 + value.abs() * 1e-12;
    let (lo, hi) = (before as f64 * unit, after as f64 * unit);
    if lo - slack <= value && value <= hi + slack {
        Ok(())
    } else {
        Err(format!(
            "{what}: exporter {value}, cgroup {lo} before and {hi} after"
        ))
    }
}

/// A setting that must equal the cgroup's value in both reads of the round.
fn same(what: &str, before: u64, value: Option<f64>, after: u64) -> Result<(), String> {
    let value = value.ok_or_else(|| format!("{what}: no series"))?;
    if before == after && value == before as f64 {
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
    let value = value.ok_or_else(|| format!("{what}: no series"))?;
    let (lo, hi) = (before.min(after) as f64, before.max(after) as f64);
    if lo <= value && value <= hi {
        Ok(())
    } else {
        Err(format!(
            "{what}: exporter {value}, cgroup {before} before and {after} after"
        ))
    }
}

/// io.stat against container_fs_{reads,writes}_bytes_total: between the
/// reads where io.stat lists devices, and no series where it lists none.
fn io_matches(r: &Round, name: &str) -> Result<(), String> {
    for (key, metric) in [
        ("rbytes", "container_fs_reads_bytes_total"),
        ("wbytes", "container_fs_writes_bytes_total"),
    ] {
        let value = r.metrics.get(metric, name);
        match (r.before.io(key), r.after.io(key)) {
            (Some(b), Some(a)) => between(metric, b, value, a, 1.0)?,
            (None, None) => {
                if let Some(v) = value {
                    return Err(format!("{metric} is {v}, but io.stat lists no device"));
                }
            }
            // io.stat got its first device during the round.
            (None, Some(a)) => between(metric, 0, value.or(Some(0.0)), a, 1.0)?,
            (Some(_), None) => return Err("io.stat lost its devices".into()),
        }
    }
    Ok(())
}

/// The memory series against memory.current and memory.stat, all of one
/// round; a container without --memory has memory.max `max` and a spec limit
/// of 0.
fn memory_matches(r: &Round, name: &str) -> Result<(), String> {
    let (b, a, m) = (&r.before, &r.after, &r.metrics);
    within(
        "container_memory_usage_bytes vs memory.current",
        b.value("memory.current").expect("memory.current"),
        m.get("container_memory_usage_bytes", name),
        a.value("memory.current").expect("memory.current"),
    )?;
    let working_set = |c: &Cgroup| {
        let usage = c.value("memory.current").expect("memory.current");
        usage.saturating_sub(c.key("memory.stat", "inactive_file"))
    };
    within(
        "container_memory_working_set_bytes vs memory.current - inactive_file",
        working_set(b),
        m.get("container_memory_working_set_bytes", name),
        working_set(a),
    )?;
    within(
        "container_memory_rss vs memory.stat anon",
        b.key("memory.stat", "anon"),
        m.get("container_memory_rss", name),
        a.key("memory.stat", "anon"),
    )?;
    within(
        "container_memory_cache vs memory.stat file",
        b.key("memory.stat", "file"),
        m.get("container_memory_cache", name),
        a.key("memory.stat", "file"),
    )?;
    let spec = m.get("container_spec_memory_limit_bytes", name);
    match a.value("memory.max") {
        Some(max) => {
            same(
                "container_spec_memory_limit_bytes vs memory.max",
                max,
                spec,
                max,
            )?;
            same(
                "container_memory_limit_bytes vs memory.max",
                max,
                m.get("container_memory_limit_bytes", name),
                max,
            )?;
        }
        None => same(
            "container_spec_memory_limit_bytes (memory.max is max)",
            0,
            spec,
            0,
        )?,
    }
    Ok(())
}

/// The CPU counters against cpu.stat, and the quota against cpu.max.
fn cpu_matches(r: &Round, name: &str) -> Result<(), String> {
    let (b, a, m) = (&r.before, &r.after, &r.metrics);
    for (key, metric) in [
        ("usage_usec", "container_cpu_usage_seconds_total"),
        ("user_usec", "container_cpu_user_seconds_total"),
        ("system_usec", "container_cpu_system_seconds_total"),
        (
            "throttled_usec",
            "container_cpu_cfs_throttled_seconds_total",
        ),
    ] {
        between(
            &format!("{metric} vs cpu.stat {key}"),
            b.key("cpu.stat", key),
            m.get(metric, name),
            a.key("cpu.stat", key),
            1e-6,
        )?;
    }
    for (key, metric) in [
        ("nr_periods", "container_cpu_cfs_periods_total"),
        ("nr_throttled", "container_cpu_cfs_throttled_periods_total"),
    ] {
        between(
            &format!("{metric} vs cpu.stat {key}"),
            b.key("cpu.stat", key),
            m.get(metric, name),
            a.key("cpu.stat", key),
            1.0,
        )?;
    }
    let max = a.text("cpu.max").trim().to_string();
    let (quota, period) = max.split_once(' ').expect("cpu.max: QUOTA PERIOD");
    let period: u64 = period.parse().expect("cpu.max period");
    same(
        "container_spec_cpu_period vs cpu.max",
        period,
        m.get("container_spec_cpu_period", name),
        period,
    )?;
    match quota {
        "max" => {
            if let Some(v) = m.get("container_spec_cpu_quota", name) {
                return Err(format!(
                    "container_spec_cpu_quota is {v}, but cpu.max is {max}"
                ));
            }
        }
        q => {
            let q: u64 = q.parse().expect("cpu.max quota");
            same(
                "container_spec_cpu_quota vs cpu.max",
                q,
                m.get("container_spec_cpu_quota", name),
                q,
            )?;
        }
    }
    Ok(())
}

/// pids.current and pids.max against container_pids and
/// container_pids_limit (no series where pids.max is `max`).
fn pids_match(r: &Round, name: &str) -> Result<(), String> {
    let (b, a, m) = (&r.before, &r.after, &r.metrics);
    within(
        "container_pids vs pids.current",
        b.value("pids.current").expect("pids.current"),
        m.get("container_pids", name),
        a.value("pids.current").expect("pids.current"),
    )?;
    match a.value("pids.max") {
        Some(max) => same(
            "container_pids_limit vs pids.max",
            max,
            m.get("container_pids_limit", name),
            max,
        ),
        None => match m.get("container_pids_limit", name) {
            Some(v) => Err(format!("container_pids_limit is {v}, but pids.max is max")),
            None => Ok(()),
        },
    }
}

/// Every check for one container, on one round.
fn all_match(r: &Round, name: &str) -> Result<(), String> {
    memory_matches(r, name)?;
    cpu_matches(r, name)?;
    io_matches(r, name)?;
    pids_match(r, name)
}

/// Repeats rounds until every check of `name` holds in one. The cgroup
/// directory is the one the exporter's `id` label names, which must be
/// `path`.
async fn agrees(exporter: &Exporter, reader: &CgroupReader<'_>, name: &str, path: &str) -> Round {
    let first = exporter.metrics().await;
    for metric in [
        "container_memory_usage_bytes",
        "container_cpu_usage_seconds_total",
    ] {
        assert_eq!(
            first.label(metric, name, "id").as_deref(),
            Some(path),
            "{metric}'s id label is the container's cgroup path"
        );
    }
    let r = wait_until_async(
        &format!("the exporter's series of {name} to agree with its cgroup v2 files in {path}"),
        SLOW,
        || async {
            let r = round(exporter, reader, path).await?;
            all_match(&r, name)?;
            Ok(r)
        },
    )
    .await;
    eprintln!(
        "{name} agrees with {path}: cpu.stat usage_usec {} .. {}, nr_throttled {}, \
         memory.current {}, io.stat {:?}, pids.current {}",
        r.before.key("cpu.stat", "usage_usec"),
        r.after.key("cpu.stat", "usage_usec"),
        r.after.key("cpu.stat", "nr_throttled"),
        r.after.text("memory.current").trim(),
        r.after.text("io.stat").trim(),
        r.after.text("pids.current").trim(),
    );
    r
}

/// A cgroup read of a running container, by the path the exporter names,
/// once `check` holds for it.
fn wait_cgroup(
    what: &str,
    reader: &CgroupReader<'_>,
    path: &str,
    check: impl Fn(&Cgroup) -> Result<(), String>,
) -> Cgroup {
    wait_until(what, SLOW, || {
        let c = reader.read(path)?;
        check(&c)?;
        Ok(c)
    })
}

/// The systemd driver's directory of container `id`, as the exporter's `id`
/// label must name it.
fn scope_of(id: &str) -> String {
    format!("/system.slice/docker-{id}.scope")
}

#[tokio::test(flavor = "multi_thread")]
async fn cpu_capped_burner_matches_cpu_stat_and_its_throttling() {
    let Some(vm) = Vm::new() else { return };
    let reader = vm.cgroup_reader("cpu");
    let burner = vm.run(
        &unique("dse-cg2-burner"),
        &["--cpus", "0.5"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let path = scope_of(&burner.id);
    wait_cgroup("the burner to be throttled", &reader, &path, |c| {
        match c.key("cpu.stat", "nr_throttled") {
            0 => Err(format!("not throttled yet:\n{}", c.text("cpu.stat"))),
            _ => Ok(()),
        }
    });
    let exporter = exporter(&vm, &[&burner.name]).await;
    let r = agrees(&exporter, &reader, &burner.name, &path).await;
    assert!(r.after.key("cpu.stat", "nr_throttled") > 0);
    assert!(
        r.metrics
            .get("container_cpu_cfs_throttled_seconds_total", &burner.name)
            > Some(0.0)
    );
    assert_eq!(r.after.text("cpu.max").trim(), "50000 100000");
    // Nothing it did touched a block device: io.stat may list none, and
    // then there are no fs series (io_matches held).
}

#[tokio::test(flavor = "multi_thread")]
async fn memory_hog_with_a_limit_matches_memory_current_and_stat() {
    let Some(vm) = Vm::new() else { return };
    let reader = vm.cgroup_reader("mem");
    // 24 MB of anonymous memory held by the shell, under a 96 MiB limit.
    // The loop keeps the shell: a last plain command would replace it.
    let hog = vm.run(
        &unique("dse-cg2-hog"),
        &["--memory", "96m"],
        &[
            "sh",
            "-c",
            "x=$(yes 0123456789abcdefghijklmnopqrstuvwxyz | head -c 24000000); while :; do sleep 3600; done",
        ],
    );
    let path = scope_of(&hog.id);
    wait_cgroup("the hog to hold its memory", &reader, &path, |c| {
        match c.key("memory.stat", "anon") {
            anon if anon >= 24_000_000 => Ok(()),
            anon => Err(format!("anon {anon}")),
        }
    });
    let exporter = exporter(&vm, &[&hog.name]).await;
    let r = agrees(&exporter, &reader, &hog.name, &path).await;
    assert_eq!(r.after.value("memory.max"), Some(96 * 1024 * 1024));
    assert_eq!(
        r.metrics
            .get("container_spec_memory_limit_bytes", &hog.name),
        Some((96 * 1024 * 1024) as f64)
    );
    assert!(r.metrics.get("container_memory_rss", &hog.name) >= Some(24e6));
}

#[tokio::test(flavor = "multi_thread")]
async fn direct_writes_and_reads_match_io_stat() {
    let Some(vm) = Vm::new() else { return };
    let reader = vm.cgroup_reader("io");
    // O_DIRECT, so the bytes reach the disk in the container's own name
    // rather than later from the kernel's writeback.
    let writer = vm.run(
        &unique("dse-cg2-writer"),
        &[],
        &[
            "sh",
            "-c",
            "while true; do \
               dd if=/dev/zero of=/tmp/f bs=64k count=32 oflag=direct 2>/dev/null; \
               dd if=/tmp/f of=/dev/null bs=64k iflag=direct 2>/dev/null; \
               sleep 1; \
             done",
        ],
    );
    let path = scope_of(&writer.id);
    wait_cgroup("the writer's bytes in io.stat", &reader, &path, |c| match (
        c.io("wbytes"),
        c.io("rbytes"),
    ) {
        (Some(w), Some(r)) if w >= 2 << 20 && r >= 2 << 20 => Ok(()),
        _ => Err(format!("io.stat:\n{}", c.text("io.stat"))),
    });
    let exporter = exporter(&vm, &[&writer.name]).await;
    let r = agrees(&exporter, &reader, &writer.name, &path).await;
    assert!(
        r.metrics
            .get("container_fs_writes_bytes_total", &writer.name)
            >= Some(2.0 * 1048576.0)
    );
    assert!(
        r.metrics
            .get("container_fs_reads_bytes_total", &writer.name)
            >= Some(2.0 * 1048576.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn pids_limit_matches_pids_current_and_max() {
    let Some(vm) = Vm::new() else { return };
    let reader = vm.cgroup_reader("pids");
    // The shell and five sleeps: six processes under a limit of 20.
    let forker = vm.run(
        &unique("dse-cg2-pids"),
        &["--pids-limit", "20"],
        &["sh", "-c", "for i in 1 2 3 4 5; do sleep 3600 & done; wait"],
    );
    let path = scope_of(&forker.id);
    wait_cgroup("the forker's six processes", &reader, &path, |c| {
        match c.value("pids.current") {
            Some(6) => Ok(()),
            n => Err(format!("pids.current {n:?}")),
        }
    });
    let exporter = exporter(&vm, &[&forker.name]).await;
    let r = agrees(&exporter, &reader, &forker.name, &path).await;
    assert_eq!(r.after.value("pids.max"), Some(20));
    assert_eq!(r.metrics.get("container_pids", &forker.name), Some(6.0));
    assert_eq!(
        r.metrics.get("container_pids_limit", &forker.name),
        Some(20.0)
    );
}
