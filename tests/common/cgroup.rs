//! A container's cgroup files as the kernel of the engine's own machine shows
//! them: what the live tests compare the exporter with.
//!
//! They are read through the engine under test: a reader container with that
//! machine's /sys/fs/cgroup mounted read-only, in its pid and cgroup
//! namespaces, `cat`s them, in a shell kept open there ([`Shell`]). One path
//! serves this machine's engines (cgroup v1) and the VM's (cgroup v2, whose
//! files the host cannot see). An engine whose containers live on this
//! machine but that is not the engine under test (Podman) reads them here
//! instead ([`Cgroups::here`]).
//!
//! Each value is named for what it means and taken from the file that holds
//! it on the engine's cgroup version: [`Reading::cpu_seconds`] is v1
//! `cpuacct.usage` or v2 `cpu.stat` `usage_usec`, and so on.

use std::collections::BTreeMap;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use docker_stats_exporter::engine::Flavor;

use super::engine::{
    docker, docker_for, docker_on, engine_flavor, engine_host, host_cpus, unique, Container,
};
use super::shell::{Ran, Shell};
use super::vm::unix_get;
use super::{wait_until, Exporter, Metrics, PATIENCE};

/// The cgroup interface of the engine's machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// How the engine names its containers' cgroups.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Driver {
    /// `/docker/<id>` (or `<parent>/<id>`).
    Cgroupfs,
    /// `/system.slice/docker-<id>.scope` (or `.../<parent>.slice/docker-<id>.scope`).
    Systemd,
}

/// The engine under test's cgroup version and driver, as it reports them.
pub fn engine_cgroups() -> (Version, Driver) {
    let info = docker(&["info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"]);
    let version = match info.split_whitespace().next() {
        Some("2") => Version::V2,
        Some("1") => Version::V1,
        other => panic!("the engine reports cgroup version {other:?}"),
    };
    let driver = match info.split_whitespace().nth(1) {
        Some("systemd") => Driver::Systemd,
        Some("cgroupfs") => Driver::Cgroupfs,
        other => panic!("the engine reports cgroup driver {other:?}"),
    };
    (version, driver)
}

/// The `id` label of a container with the engine's default cgroup parent,
/// as cAdvisor writes it: the container's cgroup path
/// (`id_label_is_the_containers_real_cgroup_path` checks it against the
/// kernel's).
pub fn default_id_label(container_id: &str) -> String {
    match engine_cgroups().1 {
        Driver::Cgroupfs => format!("/docker/{container_id}"),
        Driver::Systemd => format!("/system.slice/docker-{container_id}.scope"),
    }
}

/// The `id` label of a container of the engine under test with its
/// engine's default cgroup parent: [`default_id_label`] on Docker, the
/// scope Podman's own API names on Podman.
pub fn id_label(c: &Container) -> String {
    match engine_flavor() {
        Flavor::Docker => default_id_label(&c.id),
        Flavor::Podman => podman_cgroup_path(c),
    }
}

/// A Podman container's cgroup as Podman's own API (`/libpod`) names it.
pub fn podman_cgroup_path(c: &Container) -> String {
    let url = format!("/v4.0.0/libpod/containers/{}/json", c.id);
    let body = unix_get(c.host(), &url);
    let answer: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    match answer["State"]["CgroupPath"].as_str() {
        Some(path) if path.starts_with('/') => path.to_string(),
        _ => panic!("{url}: no State.CgroupPath in {body}"),
    }
}

/// Where cgroup files are read.
enum Where {
    /// Through a reader container on the engine under test; its view of the
    /// machine's /sys/fs/cgroup is /host-cgroup. A shell kept open in it
    /// runs the reads (started at the first).
    Engine(Container, Mutex<Option<Shell>>),
    /// This machine's /sys/fs/cgroup.
    Here,
}

/// Reads the cgroup files of containers on one machine.
pub struct Cgroups {
    at: Where,
    version: Version,
    /// What the exporter's engine divides CPU time by for its percent.
    clock: Clock,
}

/// The v1 controllers whose files [`Reading`] uses.
const V1_CONTROLLERS: &[&str] = &["memory", "cpuacct", "cpu", "blkio", "pids"];

/// Files read on each version: (key, controller, file name). v2 has one
/// directory, so its controller is empty.
const V1_FILES: &[(&str, &str)] = &[
    ("memory", "memory.usage_in_bytes"),
    ("memory", "memory.limit_in_bytes"),
    ("memory", "memory.stat"),
    ("memory", "cgroup.procs"),
    ("cpuacct", "cpuacct.usage"),
    ("cpuacct", "cpuacct.stat"),
    ("cpu", "cpu.stat"),
    ("cpu", "cpu.cfs_quota_us"),
    ("cpu", "cpu.cfs_period_us"),
    ("blkio", "blkio.throttle.io_service_bytes_recursive"),
    ("pids", "pids.current"),
    ("pids", "pids.max"),
];
const V2_FILES: &[&str] = &[
    "memory.current",
    "memory.max",
    "memory.stat",
    "cgroup.procs",
    "cpu.stat",
    "cpu.max",
    "io.stat",
    "pids.current",
    "pids.max",
];

impl Cgroups {
    /// A reader container on the engine under test, removed when dropped.
    /// Podman's Docker-compatible API gives a container neither the
    /// machine's pid namespace nor its cgroup namespace: on Podman the files
    /// are read through `DSE_CGROUP_READER`, a Docker engine on the same
    /// machine (`unix://...`; the cgroup v2 VM's), or `here` when Podman runs
    /// on this one.
    pub fn of_engine(test: &str) -> Self {
        match engine_flavor() {
            Flavor::Docker => Self::on_engine(engine_host(), engine_cgroups().0, test),
            Flavor::Podman => match std::env::var("DSE_CGROUP_READER").as_deref() {
                Ok("here") => Self::here().on_wall_time(),
                Ok(host) if host.starts_with("unix://") => {
                    Self::on_engine(host, engine_cgroups().0, test).on_wall_time()
                }
                other => panic!(
                    "the engine under test ({}) is Podman, whose containers cannot read the \
                     machine's cgroups: set DSE_CGROUP_READER to a Docker engine on the same \
                     machine (unix://...) or to `here` (it is {other:?})",
                    engine_host()
                ),
            },
        }
    }

    /// A reader container on the engine at `host`, whose machine's
    /// cgroups are `version`; removed when dropped. It reads every cgroup
    /// of that machine, other engines' containers' too.
    pub fn on_engine(host: &str, version: Version, test: &str) -> Self {
        // The machine's pid namespace, so cgroup.procs and /proc/PID speak
        // of the pids the engine reports; its cgroup namespace, so
        // /proc/PID/cgroup gives whole paths; no network, which nothing here
        // needs.
        let reader = Container::run_on(
            host,
            &unique(&format!("dse-cgroup-reader-{test}")),
            &[
                "--pid",
                "host",
                "--cgroupns",
                "host",
                "--network",
                "none",
                "-v",
                "/sys/fs/cgroup:/host-cgroup:ro",
            ],
            &["sleep", "3600"],
        );
        Self {
            at: Where::Engine(reader, Mutex::new(None)),
            version,
            clock: Clock::ProcStat,
        }
    }

    /// For Podman, whose percent is over wall time and the machine's CPUs.
    fn on_wall_time(mut self) -> Self {
        self.clock = Clock::Wall(host_cpus());
        self
    }

    /// This machine's cgroups, on the version its /sys/fs/cgroup has.
    pub fn here() -> Self {
        let version = if std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists() {
            Version::V2
        } else {
            Version::V1
        };
        Self {
            at: Where::Here,
            version,
            clock: Clock::ProcStat,
        }
    }

    /// Runs `script` where the files are, with `$C` the cgroup root.
    fn sh(&self, script: &str) -> Result<String, String> {
        let ran = match &self.at {
            Where::Engine(reader, shell) => {
                Self::in_reader(reader, shell, &format!("C=/host-cgroup; {script}"))?
            }
            Where::Here => {
                let mut cmd = Command::new("sh");
                cmd.arg("-c").arg(format!("C=/sys/fs/cgroup; {script}"));
                let out = cmd.output().map_err(|e| format!("{cmd:?}: {e}"))?;
                let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
                Ran {
                    // A signal as the shell reports it, 128 + its number.
                    status: (out.status.code())
                        .unwrap_or_else(|| 128 + out.status.signal().unwrap_or(0)),
                    stdout: text(&out.stdout),
                    stderr: text(&out.stderr),
                }
            }
        };
        match ran.status {
            0 => Ok(ran.stdout),
            status => Err(format!(
                "reading cgroup files failed (exit {status}): {}",
                ran.stderr.trim()
            )),
        }
    }

    /// Runs `script` in the reader's shell, starting one where there is none
    /// or the last one ended (once: a second failure is the reader's).
    fn in_reader(
        reader: &Container,
        shell: &Mutex<Option<Shell>>,
        script: &str,
    ) -> Result<Ran, String> {
        let mut shell = shell.lock().unwrap_or_else(|e| e.into_inner());
        let mut last = String::new();
        for _ in 0..2 {
            let open = match shell.as_mut() {
                Some(open) => open,
                None => {
                    let mut cmd = Command::new(docker_for(reader.host()));
                    cmd.args(["-H", reader.host(), "exec", "-i", &reader.name, "sh"]);
                    shell.insert(Shell::start(cmd, "/tmp")?)
                }
            };
            match open.run(script) {
                Ok(ran) => return Ok(ran),
                Err(e) => last = e,
            }
            *shell = None;
        }
        Err(format!("the shell in {}: {last}", reader.name))
    }

    /// The cgroup of process `pid` (a container's main process, as the engine
    /// reports it), from the kernel's /proc/PID/cgroup.
    pub fn of_pid(&self, pid: &str) -> Result<Cgroup, String> {
        if !pid.chars().all(|c| c.is_ascii_digit()) || pid.is_empty() || pid == "0" {
            return Err(format!("no process: pid {pid:?}"));
        }
        let table = self.sh(&format!("cat /proc/{pid}/cgroup"))?;
        // Lines are `N:controller[,controller...]:/path`; v2's is `0::/path`.
        let mut dirs = BTreeMap::new();
        for line in table.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            match self.version {
                Version::V2 if controllers.is_empty() => {
                    dirs.insert(String::new(), path.to_string());
                }
                Version::V1 => {
                    for c in controllers.split(',') {
                        if V1_CONTROLLERS.contains(&c) {
                            dirs.insert(c.to_string(), format!("/{controllers}{path}"));
                        }
                    }
                }
                Version::V2 => {}
            }
        }
        let wanted: &[&str] = match self.version {
            Version::V1 => V1_CONTROLLERS,
            Version::V2 => &[""],
        };
        if let Some(missing) = wanted.iter().find(|c| !dirs.contains_key(**c)) {
            return Err(format!(
                "no cgroup{} for pid {pid} in /proc/{pid}/cgroup:\n{table}",
                if missing.is_empty() {
                    String::new()
                } else {
                    format!(" of {missing}")
                }
            ));
        }
        Ok(Cgroup {
            version: self.version,
            dirs,
        })
    }

    /// The cgroup at `path` (v2), as an engine names it.
    pub fn at_path(&self, path: &str) -> Cgroup {
        assert_eq!(
            self.version,
            Version::V2,
            "a path names one cgroup on v2 only"
        );
        Cgroup {
            version: self.version,
            dirs: BTreeMap::from([(String::new(), path.to_string())]),
        }
    }

    /// The cgroup of a running container of the engine under test: its
    /// main process's. Podman's is the container's scope, as its own API
    /// names it, which on cgroup v2 may hold the process one level down
    /// (crun's `container`).
    pub fn of(&self, c: &Container) -> Cgroup {
        let pid = c.inspect("{{.State.Pid}}");
        let of_pid = self
            .of_pid(&pid)
            .unwrap_or_else(|e| panic!("the cgroup of {}: {e}", c.name));
        if self.version == Version::V1 || engine_flavor() != Flavor::Podman {
            return of_pid;
        }
        let scope = podman_cgroup_path(c);
        assert!(
            of_pid.path() == scope || of_pid.path().starts_with(&format!("{scope}/")),
            "{}'s main process {pid} is in {}, not within Podman's cgroup {scope}",
            c.name,
            of_pid.path()
        );
        self.at_path(&scope)
    }

    /// Every file [`Reading`] uses, of one cgroup, at once; `Err` when the
    /// directory or a file is missing (the container is gone).
    pub fn read(&self, cgroup: &Cgroup) -> Result<Reading, String> {
        let files: Vec<(String, String)> = match self.version {
            Version::V1 => V1_FILES
                .iter()
                .map(|(controller, file)| {
                    (
                        file.to_string(),
                        format!("{}/{file}", cgroup.dirs[*controller]),
                    )
                })
                .collect(),
            Version::V2 => V2_FILES
                .iter()
                .map(|file| (file.to_string(), format!("{}/{file}", cgroup.dirs[""])))
                .collect(),
        };
        // Each file framed by a line of its own, between two clock reads of
        // the machine's uptime.
        let mut script = String::from("echo '== @start'; cat /proc/uptime");
        for (key, path) in &files {
            script.push_str(&format!("; echo '== {key}'; cat \"$C{path}\" || exit 4"));
        }
        script.push_str("; echo '== @end'; cat /proc/uptime");
        let text = self.sh(&script)?;
        let mut found = BTreeMap::new();
        let mut current: Option<String> = None;
        for line in text.lines() {
            if let Some(key) = line.strip_prefix("== ") {
                found.insert(key.to_string(), String::new());
                current = Some(key.to_string());
            } else if let Some(key) = &current {
                let body = found.get_mut(key).expect("framed file");
                body.push_str(line);
                body.push('\n');
            }
        }
        let uptime = |key: &str| -> Result<f64, String> {
            found
                .get(key)
                .and_then(|t| t.split_whitespace().next())
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("no uptime in the read:\n{text}"))
        };
        let at = (uptime("@start")? + uptime("@end")?) / 2.0;
        for (key, _) in &files {
            if !found.contains_key(key) {
                return Err(format!("no {key} in the read:\n{text}"));
            }
        }
        Ok(Reading {
            version: self.version,
            path: cgroup.path().to_string(),
            files: found,
            at,
        })
    }

    /// [`Cgroups::read`] that must succeed.
    pub fn read_now(&self, cgroup: &Cgroup) -> Reading {
        self.read(cgroup).unwrap_or_else(|e| panic!("{e}"))
    }
}

impl Cgroups {
    /// Starts sampling `cgroup`'s CPU counter every 20 ms where its files
    /// are (the reader container, or this machine), with the machine's
    /// uptime and CPU time, until the trace is dropped.
    pub fn trace_cpu(&self, cgroup: &Cgroup) -> CpuTrace<'_> {
        static TRACES: AtomicUsize = AtomicUsize::new(0);
        let n = TRACES.fetch_add(1, Ordering::Relaxed);
        let file = match self.version {
            Version::V1 => format!("{}/cpuacct.usage", cgroup.dirs["cpuacct"]),
            Version::V2 => format!("{}/cpu.stat", cgroup.dirs[""]),
        };
        // `read`, `echo` and arithmetic are the shell's own: a sample costs
        // one `sleep`. The machine's CPU time is the /proc/stat sum the
        // engine's `system_cpu_usage` is (user to softirq, in 1/100 s).
        let sampler = |root: &str, out: &str| {
            format!(
                "while :; do read up idle </proc/uptime; \
                 read cpu u n s i w q sq rest </proc/stat; \
                 read a b <\"{root}{file}\" || exit 0; \
                 echo \"$up $((u + n + s + i + w + q + sq)) $a $b\"; sleep 0.02; \
                 done >>{out}"
            )
        };
        let (out, here) = match &self.at {
            // The sampler ends with the reader container.
            Where::Engine(reader, _) => {
                let out = format!("/tmp/cpu-trace-{n}");
                let script = sampler("/host-cgroup", &out);
                docker_on(
                    reader.host(),
                    &["exec", "-d", &reader.name, "sh", "-c", &script],
                );
                (out, None)
            }
            Where::Here => {
                let out = std::env::temp_dir()
                    .join(format!("dse-cpu-trace-{}-{n}", std::process::id()))
                    .display()
                    .to_string();
                let child = Command::new("sh")
                    .arg("-c")
                    .arg(sampler("/sys/fs/cgroup", &out))
                    .spawn()
                    .unwrap_or_else(|e| panic!("starting the CPU sampler: {e}"));
                (out, Some(child))
            }
        };
        CpuTrace {
            cgroups: self,
            cgroup: cgroup.clone(),
            clock: self.clock,
            out,
            here,
        }
    }
}

/// A container's CPU counter sampled on its machine every 20 ms: the rates
/// over every window a scrape may have used, where only the engine knows
/// which (its collection tick).
pub struct CpuTrace<'a> {
    cgroups: &'a Cgroups,
    cgroup: Cgroup,
    clock: Clock,
    /// The samples' file, where the sampler runs.
    out: String,
    /// The sampler, when it runs on this machine; stopped by its handle.
    here: Option<Child>,
}

impl Drop for CpuTrace<'_> {
    fn drop(&mut self) {
        if let Some(child) = &mut self.here {
            let _ = child.kill();
            let _ = child.wait();
            let _ = std::fs::remove_file(&self.out);
        }
    }
}

/// What an engine divides a container's CPU time by for its percent.
#[derive(Debug, Clone, Copy)]
enum Clock {
    /// The machine's CPU time as /proc/stat counts it, idle included
    /// (Docker's `system_cpu_usage`).
    ProcStat,
    /// Wall time by this many CPUs (Podman, whose system counter counts
    /// only busy time).
    Wall(f64),
}

/// One `GET /metrics` between two reads of a traced cgroup.
pub struct TracedScrape {
    /// The read just before the scrape.
    pub before: Reading,
    /// The scrape.
    pub metrics: Metrics,
    /// The read just after it.
    pub after: Reading,
}

impl TracedScrape {
    /// The machine uptimes the scrape lies within.
    pub fn span(&self) -> (f64, f64) {
        (self.before.at, self.after.at)
    }
}

/// One sample of a [`CpuTrace`].
#[derive(Debug, Clone, Copy)]
pub struct CpuSample {
    /// The machine's uptime, in seconds.
    pub at: f64,
    /// CPU time of all the machine's CPUs, busy or idle, as /proc/stat
    /// counts it (the engine's `system_cpu_usage`), in seconds.
    pub machine: f64,
    /// The container's CPU time, in seconds.
    pub cpu: f64,
}

impl CpuTrace<'_> {
    /// For an engine whose percent is over wall time and `cpus` CPUs.
    pub fn over_wall_time(mut self, cpus: f64) -> Self {
        self.clock = Clock::Wall(cpus);
        self
    }

    /// Scrapes `exporter` between two reads of the traced cgroup.
    pub async fn scrape(&self, exporter: &Exporter) -> TracedScrape {
        let before = self.cgroups.read_now(&self.cgroup);
        let metrics = exporter.metrics().await;
        let after = self.cgroups.read_now(&self.cgroup);
        TracedScrape {
            before,
            metrics,
            after,
        }
    }

    /// Waits until the container has used `seconds` of CPU since `since`,
    /// so that a window from then on is long enough to measure.
    pub fn wait_for_cpu(&self, since: &Reading, seconds: f64) {
        wait_until(
            &format!("{seconds} CPU-seconds more"),
            PATIENCE,
            || match self.cgroups.read(&self.cgroup)?.cpu_seconds() - since.cpu_seconds() {
                s if s >= seconds => Ok(()),
                s => Err(format!("{s} s")),
            },
        );
    }

    /// Asserts that `name`'s `container_cpu_usage_percent` in `scrape` is
    /// one the trace allows over one of `windows`, each ending within the
    /// scrape ([`assert_percent_in_trace`]).
    pub fn assert_percent(
        &self,
        what: &str,
        scrape: &TracedScrape,
        name: &str,
        windows: &[Window],
    ) {
        let pct = scrape
            .metrics
            .get("container_cpu_usage_percent", name)
            .unwrap_or_else(|| {
                // What the scrape did have: the container's series and the
                // scrape's own.
                let had: Vec<String> = (scrape.metrics.0.iter())
                    .filter(|s| {
                        s.labels.get("name").is_some_and(|n| n == name)
                            || s.name.starts_with("docker_")
                    })
                    .map(|s| format!("{} {:?} {}", s.name, s.labels, s.value))
                    .collect();
                panic!("{what}: no cpu percent for {name}; it had {had:#?}")
            });
        let samples = self.samples_past(scrape.after.at);
        assert_percent_in_trace(what, pct, &samples, windows, scrape.span());
    }

    /// Two readers 50 ms apart, `pairs` times: each reader's percent for
    /// `name` must be the trace's rate over a window starting at a reading
    /// of the pair before (or, on an engine that reads at its 1 s tick,
    /// the second reader waiting for the tick after the first's, at the
    /// first reader's) and at least a second long, not over the 50 ms
    /// between them. The second reader asks for `name` by query, a
    /// selection of its own, so that neither joins the other's round.
    pub async fn two_readers(&self, exporter: &Exporter, name: &str, pairs: u32) {
        let second_reader = format!("/metrics?name={name}");
        let first_scrape = self.scrape(exporter).await;
        let (mut previous, mut previous_end) = (first_scrape.span(), first_scrape.after);
        for pair in 1..=pairs {
            // More than the minimum window since the last pair, in the
            // burner's own CPU time, however busy the host; and up to four
            // times the last pair's span (the cgroup reads around it
            // included: seconds on a loaded VM), so that where in its
            // scrape the engine read each counter (Window::FromScrape)
            // moves the percent by little.
            let span = previous.1 - previous.0;
            self.wait_for_cpu(&previous_end, (2.0 * span).clamp(0.7, 3.0));
            let before = self.cgroups.read_now(&self.cgroup);
            let first = exporter.scrape_in_background();
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            let (status, body) = super::get(exporter.addr, &second_reader, &[]).await;
            assert_eq!(status, 200, "{body}");
            let (status, first) = first.await.expect("first reader");
            assert_eq!(status, 200, "{first}");
            let after = self.cgroups.read_now(&self.cgroup);
            let windows = [
                Window::FromScrape { base: previous },
                Window::Together {
                    starts: (previous.0, after.at),
                    min_len: 1.0,
                },
            ];
            for (who, text) in [("first", first), ("second", body)] {
                let scrape = TracedScrape {
                    before: before.clone(),
                    metrics: Metrics::parse(&text),
                    after: after.clone(),
                };
                let what =
                    format!("pair {pair} (the one before spanned {span:.2} s), {who} reader");
                self.assert_percent(&what, &scrape, name, &windows);
            }
            (previous, previous_end) = ((before.at, after.at), after);
        }
    }

    /// The samples once one is past `at` (machine uptime), in time order.
    fn samples_past(&self, at: f64) -> Vec<CpuSample> {
        wait_until(&format!("a CPU sample past uptime {at}"), PATIENCE, || {
            let samples = self.samples();
            match samples.last() {
                Some(last) if last.at > at => Ok(samples),
                last => Err(format!("last sample {last:?}")),
            }
        })
    }

    /// The samples so far, in time order.
    fn samples(&self) -> Vec<CpuSample> {
        let text = self
            .cgroups
            .sh(&format!("cat {}", self.out))
            .unwrap_or_else(|e| panic!("the CPU trace: {e}"));
        text.lines()
            .filter_map(|l| {
                let mut f = l.split_whitespace();
                let at: f64 = f.next()?.parse().ok()?;
                let machine = f.next()?.parse::<f64>().ok()? / 100.0;
                let cpu = match self.cgroups.version {
                    // cpuacct.usage: nanoseconds.
                    Version::V1 => f.next()?.parse::<f64>().ok()? / 1e9,
                    // cpu.stat's first line: `usage_usec N`.
                    Version::V2 => {
                        (f.next()? == "usage_usec").then_some(())?;
                        f.next()?.parse::<f64>().ok()? / 1e6
                    }
                };
                let machine = match self.clock {
                    Clock::ProcStat => machine,
                    Clock::Wall(cpus) => at * cpus,
                };
                Some(CpuSample { at, machine, cpu })
            })
            .collect()
    }
}

/// Where the window of a CPU percent may lie, in machine uptime; it ends
/// within the scrape that gave the percent.
#[derive(Debug, Clone, Copy)]
pub enum Window {
    /// From a moment within `starts`, at least `min_len` seconds long, with
    /// both counters of each end read at that moment: an engine that reads
    /// the machine's counter and then each container's at its tick.
    Together { starts: (f64, f64), min_len: f64 },
    /// From a reading an earlier scrape made within `base`, each counter of
    /// each end read at any moment of its scrape: an engine that reads on
    /// request reads the container's counter and /proc/stat one after the
    /// other, and on a loaded VM that took up to a second here, so that its
    /// own percents over 2 s windows of a burner capped at 25 % of the
    /// machine read 21 to 38 %.
    FromScrape { base: (f64, f64) },
}

/// The lowest and highest CPU percent of the whole machine (the
/// container's CPU time over the machine's, as the engine computes it) a
/// traced container can have had over a window `[a, b]` with `a` in
/// `starts`, `b` in `ends` (uptime) and `b - a` at least `min_len` seconds.
/// Counters only grow: around each end lie two samples, and the window's
/// share is at least the inner pair's and at most the outer pair's. `None`
/// if the samples do not cover both ranges.
fn percent_bounds(
    samples: &[CpuSample],
    starts: (f64, f64),
    ends: (f64, f64),
    min_len: f64,
) -> Option<(f64, f64)> {
    let covers = |(lo, hi): (f64, f64)| {
        samples.first().is_some_and(|s| s.at <= lo) && samples.last().is_some_and(|s| s.at >= hi)
    };
    if !covers(starts) || !covers(ends) {
        return None;
    }
    // The first of each two adjacent samples around a point in `range`.
    let around = |(lo, hi): (f64, f64)| -> Vec<usize> {
        samples
            .windows(2)
            .enumerate()
            .filter(|(_, w)| w[0].at <= hi && w[1].at >= lo)
            .map(|(k, _)| k)
            .collect()
    };
    let mut bounds: Option<(f64, f64)> = None;
    for &i in &around(starts) {
        for &j in &around(ends) {
            let (outer_a, inner_a, inner_b, outer_b) =
                (samples[i], samples[i + 1], samples[j], samples[j + 1]);
            if j <= i || outer_b.at - outer_a.at < min_len {
                continue;
            }
            let least = (inner_b.cpu - inner_a.cpu).max(0.0);
            let most = outer_b.cpu - outer_a.cpu;
            let longest = outer_b.machine - outer_a.machine;
            let shortest = (inner_b.machine - inner_a.machine).max(0.01);
            let (lo, hi) = (100.0 * least / longest, 100.0 * most / shortest);
            bounds = Some(bounds.map_or((lo, hi), |(l, h)| (l.min(lo), h.max(hi))));
        }
    }
    bounds
}

/// The lowest and highest CPU percent over [`Window::FromScrape`]: each
/// counter's value at each end lies anywhere within that end's span, the
/// samples around the span bracketing it. `None` if the samples do not
/// cover both spans or the spans overlap.
fn percent_bounds_from_scrape(
    samples: &[CpuSample],
    base: (f64, f64),
    ends: (f64, f64),
) -> Option<(f64, f64)> {
    if base.1 >= ends.0 {
        return None;
    }
    // The last sample at or before `t`, and the first at or after it.
    let before = |t: f64| samples.iter().rev().find(|s| s.at <= t).copied();
    let after = |t: f64| samples.iter().find(|s| s.at >= t).copied();
    let (base_lo, base_hi) = (before(base.0)?, after(base.1)?);
    let (end_lo, end_hi) = (before(ends.0)?, after(ends.1)?);
    let least = (end_lo.cpu - base_hi.cpu).max(0.0);
    let most = end_hi.cpu - base_lo.cpu;
    let longest = end_hi.machine - base_lo.machine;
    let shortest = (end_lo.machine - base_hi.machine).max(0.01);
    Some((100.0 * least / longest, 100.0 * most / shortest))
}

/// Asserts that a scrape's CPU percent is one the traced counters allow
/// over one of `windows`, each ending within `ends` (machine uptime)
/// ([`percent_bounds`], [`percent_bounds_from_scrape`]). The engine picks
/// the window (its collection tick, or a reading the exporter takes a
/// moment later), and on a busy machine, a VM above all, a burner's rate
/// moves from one second to the next: the reference is every window the
/// scrape may have used, not one. The room is for the 10 ms ticks of
/// /proc/stat.
fn assert_percent_in_trace(
    what: &str,
    pct: f64,
    samples: &[CpuSample],
    windows: &[Window],
    ends: (f64, f64),
) {
    let bounds = windows.iter().filter_map(|w| match *w {
        Window::Together { starts, min_len } => percent_bounds(samples, starts, ends, min_len),
        Window::FromScrape { base } => percent_bounds_from_scrape(samples, base, ends),
    });
    let (lo, hi) = bounds
        .reduce(|(l, h), (lo, hi)| (l.min(lo), h.max(hi)))
        .unwrap_or_else(|| {
            panic!(
                "{what}: the trace does not cover {windows:?} to {ends:?}: {:?} to {:?}",
                samples.first(),
                samples.last()
            )
        });
    assert!(
        lo * 0.98 - 0.5 <= pct && pct <= hi * 1.02 + 0.5,
        "{what}: {pct} % outside what the cgroup allows, [{lo}, {hi}] %"
    );
}

/// Where one container's cgroup is: one directory on v2, one per controller
/// on v1 (`memory/docker/<id>`, `cpu,cpuacct/docker/<id>`...).
#[derive(Debug, Clone)]
pub struct Cgroup {
    version: Version,
    /// Controller (empty on v2) to its directory under the cgroup root.
    dirs: BTreeMap<String, String>,
}

impl Cgroup {
    /// The cgroup path as the kernel names it, without a hierarchy
    /// (`/docker/<id>`, `/system.slice/docker-<id>.scope`): the memory
    /// controller's on v1.
    pub fn path(&self) -> &str {
        match self.version {
            // `/memory/docker/<id>` without its hierarchy.
            Version::V1 => {
                let dir = &self.dirs["memory"];
                dir.char_indices()
                    .skip(1)
                    .find(|(_, c)| *c == '/')
                    .map_or("/", |(i, _)| &dir[i..])
            }
            Version::V2 => &self.dirs[""],
        }
    }
}

/// What a memory.stat key means; each version names it its own way.
#[derive(Debug, Clone, Copy)]
pub enum MemoryStat {
    /// Anonymous memory (v1 `total_rss`, v2 `anon`).
    Rss,
    /// Page cache (v1 `total_cache`, v2 `file`).
    Cache,
    /// Page cache the kernel may reclaim first (v1 `total_inactive_file`,
    /// v2 `inactive_file`).
    InactiveFile,
    /// Page cache not yet written back (v1 `total_dirty`, v2 `file_dirty`).
    Dirty,
}

/// One read of a container's cgroup files.
#[derive(Debug, Clone)]
pub struct Reading {
    version: Version,
    path: String,
    files: BTreeMap<String, String>,
    /// The machine's uptime, in seconds, when the files were read.
    pub at: f64,
}

/// Values a v1 file uses for "no limit" are at least this.
const V1_UNLIMITED: u64 = 1 << 62;

impl Reading {
    /// The cgroup version read.
    pub fn version(&self) -> Version {
        self.version
    }

    /// A file's text.
    pub fn text(&self, file: &str) -> &str {
        self.files
            .get(file)
            .map(String::as_str)
            .unwrap_or_else(|| panic!("{file} was not read"))
    }

    /// A one-value file; `max` (v2) and `-1` (v1) are `None`.
    fn value(&self, file: &str) -> Option<u64> {
        let text = self.text(file).trim();
        if text == "max" || text == "-1" {
            return None;
        }
        Some(
            text.parse()
                .unwrap_or_else(|e| panic!("{}/{file}: {text:?}: {e}", self.path)),
        )
    }

    /// One key of a flat keyed file (memory.stat, cpu.stat, cpuacct.stat).
    fn key(&self, file: &str, key: &str) -> u64 {
        self.text(file)
            .lines()
            .filter_map(|l| l.split_once(' '))
            .find(|(k, _)| *k == key)
            .and_then(|(_, v)| v.trim().parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {}/{file}:\n{}", self.path, self.text(file)))
    }

    /// CPU time used, in seconds.
    pub fn cpu_seconds(&self) -> f64 {
        match self.version {
            Version::V1 => self.value("cpuacct.usage").expect("cpuacct.usage") as f64 / 1e9,
            Version::V2 => self.key("cpu.stat", "usage_usec") as f64 / 1e6,
        }
    }

    /// CPU time in user mode, in seconds (v1 counts it in 10 ms ticks).
    pub fn cpu_user_seconds(&self) -> f64 {
        match self.version {
            Version::V1 => self.key("cpuacct.stat", "user") as f64 / 100.0,
            Version::V2 => self.key("cpu.stat", "user_usec") as f64 / 1e6,
        }
    }

    /// CPU time in kernel mode, in seconds (v1 counts it in 10 ms ticks).
    pub fn cpu_system_seconds(&self) -> f64 {
        match self.version {
            Version::V1 => self.key("cpuacct.stat", "system") as f64 / 100.0,
            Version::V2 => self.key("cpu.stat", "system_usec") as f64 / 1e6,
        }
    }

    /// CFS periods that have elapsed (`cpu.stat` `nr_periods`).
    pub fn cfs_periods(&self) -> u64 {
        self.key("cpu.stat", "nr_periods")
    }

    /// CFS periods in which the container was throttled (`nr_throttled`).
    pub fn cfs_throttled_periods(&self) -> u64 {
        self.key("cpu.stat", "nr_throttled")
    }

    /// Time throttled, in seconds (v1 `throttled_time` ns, v2 `throttled_usec`).
    pub fn cfs_throttled_seconds(&self) -> f64 {
        match self.version {
            Version::V1 => self.key("cpu.stat", "throttled_time") as f64 / 1e9,
            Version::V2 => self.key("cpu.stat", "throttled_usec") as f64 / 1e6,
        }
    }

    /// The CFS quota in microseconds per period; `None` without one.
    pub fn cpu_quota(&self) -> Option<u64> {
        match self.version {
            Version::V1 => self.value("cpu.cfs_quota_us"),
            Version::V2 => self.cpu_max().0,
        }
    }

    /// The CFS period in microseconds.
    pub fn cpu_period(&self) -> u64 {
        match self.version {
            Version::V1 => self.value("cpu.cfs_period_us").expect("cpu.cfs_period_us"),
            Version::V2 => self.cpu_max().1,
        }
    }

    /// v2 cpu.max: `QUOTA PERIOD`, QUOTA `max` without one.
    fn cpu_max(&self) -> (Option<u64>, u64) {
        let text = self.text("cpu.max").trim();
        let (quota, period) = text
            .split_once(' ')
            .unwrap_or_else(|| panic!("{}/cpu.max: {text:?}", self.path));
        let period = period.parse().expect("cpu.max period");
        (quota.parse().ok(), period)
    }

    /// Memory charged to the cgroup (v1 memory.usage_in_bytes, v2
    /// memory.current).
    pub fn memory_usage(&self) -> u64 {
        match self.version {
            Version::V1 => self.value("memory.usage_in_bytes"),
            Version::V2 => self.value("memory.current"),
        }
        .expect("memory usage")
    }

    /// The memory limit; `None` without one.
    pub fn memory_limit(&self) -> Option<u64> {
        match self.version {
            Version::V1 => self
                .value("memory.limit_in_bytes")
                .filter(|&l| l < V1_UNLIMITED),
            Version::V2 => self.value("memory.max"),
        }
    }

    /// A memory.stat value, by meaning.
    pub fn memory_stat(&self, stat: MemoryStat) -> u64 {
        let key = match (self.version, stat) {
            (Version::V1, MemoryStat::Rss) => "total_rss",
            (Version::V1, MemoryStat::Cache) => "total_cache",
            (Version::V1, MemoryStat::InactiveFile) => "total_inactive_file",
            (Version::V1, MemoryStat::Dirty) => "total_dirty",
            (Version::V2, MemoryStat::Rss) => "anon",
            (Version::V2, MemoryStat::Cache) => "file",
            (Version::V2, MemoryStat::InactiveFile) => "inactive_file",
            (Version::V2, MemoryStat::Dirty) => "file_dirty",
        };
        self.key("memory.stat", key)
    }

    /// The working set as docker/cli and cAdvisor count it: usage less the
    /// inactive page cache.
    pub fn memory_working_set(&self) -> u64 {
        self.memory_usage()
            .saturating_sub(self.memory_stat(MemoryStat::InactiveFile))
    }

    /// Bytes read (`read`) or written (`write`) from block devices, summed
    /// over the devices; `None` when the cgroup lists no device (the
    /// kernel accounted nothing).
    pub fn io_bytes(&self, op: IoOp) -> Option<u64> {
        let values: Vec<u64> = match self.version {
            // `MAJ:MIN Read N` per device and op, then `Total N`.
            Version::V1 => {
                let want = match op {
                    IoOp::Read => "Read",
                    IoOp::Write => "Write",
                };
                self.text("blkio.throttle.io_service_bytes_recursive")
                    .lines()
                    .filter_map(|l| {
                        let mut f = l.split_whitespace();
                        let (_, o, v) = (f.next()?, f.next()?, f.next()?);
                        (o == want).then(|| v.parse().expect("blkio value"))
                    })
                    .collect()
            }
            // `MAJ:MIN rbytes=N wbytes=N ...` per device.
            Version::V2 => {
                let want = match op {
                    IoOp::Read => "rbytes",
                    IoOp::Write => "wbytes",
                };
                self.text("io.stat")
                    .lines()
                    .flat_map(|l| l.split_whitespace())
                    .filter_map(|kv| kv.split_once('='))
                    .filter(|(k, _)| *k == want)
                    .map(|(_, v)| v.parse().expect("io.stat value"))
                    .collect()
            }
        };
        (!values.is_empty()).then(|| values.iter().sum())
    }

    /// Processes in the cgroup (`pids.current`).
    pub fn pids(&self) -> u64 {
        self.value("pids.current").expect("pids.current")
    }

    /// The pids limit; `None` without one.
    pub fn pids_max(&self) -> Option<u64> {
        self.value("pids.max")
    }

    /// The pids in cgroup.procs (of the memory hierarchy on v1).
    pub fn procs(&self) -> Vec<String> {
        self.text("cgroup.procs")
            .lines()
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect()
    }
}

/// A direction of block I/O.
#[derive(Debug, Clone, Copy)]
pub enum IoOp {
    Read,
    Write,
}
