//! The Debian packages of scripts/package-deb.sh: built from the image's
//! amd64 binary and the cross-built arm64 one, linted by lintian (nothing
//! at error or warning level that is not overridden with its reason), the
//! unit rated by `systemd-analyze security --offline=yes`, and the amd64
//! package installed as a service in the cgroup v2 VM, where systemd is
//! PID 1 (`service_in_vm`; scripts/test runs it in the VM's pass).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cmd::{describe, require_tool, stdout_of};
use common::exporter_image::{checkout_tag, exporter_image, TEST_TAG};
use common::vm::{cgroup2_host, VmHost};
use common::{docker, wait_until, TempDir};

const UNIT: &str = "docker-stats-exporter.service";

/// The highest exposure the unit may have: systemd's "OK" band.
const MAX_EXPOSURE: f64 = 2.0;

fn repo() -> &'static Path {
    Path::new(common::ROOT)
}

/// The release binary the image ships, copied out of it into `dir`.
fn image_binary(dir: &Path) -> PathBuf {
    let image = exporter_image(&checkout_tag(TEST_TAG));
    let id = docker(&["create", &image.id]);
    let bin = dir.join("docker-stats-exporter");
    let copied = Command::new(common::cmd::docker_bin())
        .args(["cp", &format!("{id}:/docker-stats-exporter")])
        .arg(&bin)
        .output();
    docker(&["rm", &id]);
    let copied = copied.expect("docker cp");
    assert!(
        copied.status.success(),
        "docker cp out of {}: {}",
        image.tag,
        String::from_utf8_lossy(&copied.stderr)
    );
    bin
}

/// Builds the package of `binary` for `arch` into `out`, Debian revision
/// `revision`; the man page's help text comes from `help_bin`.
fn package(arch: &str, binary: &Path, help_bin: &Path, out: &Path, revision: u32) -> PathBuf {
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/package-deb.sh"))
        .args([arch])
        .arg(binary)
        .arg(out)
        .env("DSE_HELP_BIN", help_bin)
        .env("DEB_REVISION", revision.to_string());
    let stdout = stdout_of(&mut cmd);
    let deb = PathBuf::from(stdout.lines().last().unwrap_or_default().trim());
    assert!(
        deb.is_file(),
        "`{}` made no package: {stdout}",
        describe(&cmd)
    );
    deb
}

/// Fails with lintian's findings at error or warning level, overrides
/// applied, if it has any for `deb`.
pub(crate) fn assert_lintian_clean(deb: &Path) {
    let complaints = lintian_complaints(deb);
    assert!(
        complaints.is_empty(),
        "lintian on {}:\n{}",
        deb.display(),
        complaints.join("\n")
    );
}

/// lintian's findings at error or warning level, overrides applied.
fn lintian_complaints(deb: &Path) -> Vec<String> {
    let lintian = require_tool(
        "lintian",
        "apt-get install lintian (scripts/setup-engine.sh)",
    );
    let out = Command::new(lintian)
        .args(["--tag-display-limit", "0"])
        .arg(deb)
        .output()
        .expect("lintian");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .filter(|l| l.starts_with("E: ") || l.starts_with("W: "))
        .map(str::to_string)
        .collect()
}

/// The amd64 package here; the arm64 one, which waits for the cross-build,
/// in `release.rs` with the release's artifacts.
#[test]
fn amd64_package_has_its_files_and_passes_lintian() {
    let dir = TempDir::new("deb-lint");
    let amd64 = image_binary(&dir.0);
    {
        let (arch, bin) = ("amd64", &amd64);
        let deb = package(arch, bin, &amd64, &dir.0, 1);
        let contents = stdout_of(Command::new("dpkg-deb").arg("--contents").arg(&deb));
        for file in [
            "./usr/bin/docker-stats-exporter",
            "./usr/lib/systemd/system/docker-stats-exporter.service",
            "./etc/default/docker-stats-exporter",
            "./etc/docker-stats-exporter/config.toml",
            "./usr/share/man/man1/docker-stats-exporter.1.gz",
            "./usr/share/doc/docker-stats-exporter/copyright",
        ] {
            assert!(contents.contains(file), "{arch}: no {file} in\n{contents}");
        }
        let field = |name: &str| {
            stdout_of(Command::new("dpkg-deb").arg("--field").arg(&deb).arg(name))
                .trim()
                .to_string()
        };
        assert_eq!(field("Architecture"), arch);
        assert_eq!(
            stdout_of(
                Command::new("dpkg-deb")
                    .arg("--info")
                    .arg(&deb)
                    .arg("conffiles")
            )
            .lines()
            .collect::<Vec<_>>(),
            [
                "/etc/default/docker-stats-exporter",
                "/etc/docker-stats-exporter/config.toml"
            ]
        );
        // Its commented config is a valid one: the binary reads it.
        let unpacked = dir.0.join(format!("root-{arch}"));
        let x = Command::new("dpkg-deb")
            .arg("-x")
            .arg(&deb)
            .arg(&unpacked)
            .status();
        assert!(x.unwrap().success());
        let conf = unpacked.join("etc/docker-stats-exporter/config.toml");
        let out = Command::new(&amd64)
            .arg("--config")
            .arg(&conf)
            .args(["--listen", "127.0.0.1:1", "--healthcheck"])
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("config file"), "{arch}: {err}");
        assert_lintian_clean(&deb);
    }
}

/// `systemd-analyze security --offline=yes`'s overall exposure of `unit`.
fn exposure(unit: &Path) -> (f64, String) {
    let out = Command::new("systemd-analyze")
        .args(["security", "--offline=yes", "--no-pager"])
        .arg(unit)
        .output()
        .expect("systemd-analyze");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    let level = text
        .lines()
        .find_map(|l| l.split("Overall exposure level for ").nth(1))
        .and_then(|rest| rest.split_whitespace().nth(1))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| {
            panic!(
                "no exposure level in:\n{text}{}",
                String::from_utf8_lossy(&out.stderr)
            )
        });
    (level, text)
}

#[test]
fn the_unit_rates_ok_or_better_in_systemd_analyze_security() {
    let (level, text) = exposure(&repo().join("deploy/debian").join(UNIT));
    assert!(
        level <= MAX_EXPOSURE,
        "exposure {level} > {MAX_EXPOSURE}:\n{text}"
    );
    // The check can fail: the same unit without its hardening rates worse.
    let dir = TempDir::new("unit-bare");
    let bare = dir.0.join(UNIT);
    std::fs::write(
        &bare,
        "[Service]\nExecStart=/usr/bin/docker-stats-exporter\n",
    )
    .unwrap();
    let (bare_level, _) = exposure(&bare);
    assert!(bare_level > MAX_EXPOSURE, "a bare unit rates {bare_level}");
    // The README gives the score.
    let readme = std::fs::read_to_string(repo().join("README.md")).unwrap();
    assert!(
        readme.contains(&format!("exposure {level:.1}")),
        "README.md does not say `exposure {level:.1}`"
    );
}

/// What `ask` gets from the VM, once `check` says yes.
fn wait_vm(
    vm: &VmHost,
    what: &str,
    ask: impl Fn(&VmHost) -> Result<String, String>,
    check: impl Fn(&str) -> bool,
) -> String {
    wait_until(what, Duration::from_secs(120), || match ask(vm) {
        Ok(out) if check(&out) => Ok(out),
        Ok(out) => Err(out),
        Err(e) => Err(e),
    })
}

/// The service's main pid, once systemd says it is active.
fn active_pid(vm: &VmHost, not: &str) -> String {
    wait_vm(
        vm,
        "the service active with a new main pid",
        |vm| {
            // What systemd and the service said follows, for the message
            // of a wait that fails.
            vm.sh(&format!(
                "systemctl show -P ActiveState {UNIT}; systemctl show -P MainPID {UNIT}; \
                 systemctl status --no-pager -n 0 {UNIT}; journalctl -u {UNIT} --no-pager -n 30 -o short-monotonic; true"
            ))
        },
        |out| {
            let mut l = out.lines();
            l.next() == Some("active") && l.next().is_some_and(|p| p != "0" && p != not)
        },
    )
    .lines()
    .nth(1)
    .unwrap_or_default()
    .to_string()
}

/// `/metrics` of the service on the VM at `port`, once it answers with the
/// containers `names` among its `container_last_seen` series.
fn vm_metrics(vm: &VmHost, port: u16, names: &[&str]) -> String {
    wait_vm(
        vm,
        &format!("the service's /metrics to list {names:?}"),
        |vm| vm.busybox(&format!("wget -qO- http://127.0.0.1:{port}/metrics")),
        |out| {
            out.contains("docker_up 1")
                && names.iter().all(|n| {
                    out.lines().any(|l| {
                        l.starts_with("container_last_seen{")
                            && l.contains(&format!("name=\"{n}\""))
                    })
                })
        },
    )
}

#[test]
fn service_in_vm_installs_scrapes_survives_a_kill_and_purges_clean() {
    let Some(vm_engine) = cgroup2_host() else {
        return;
    };
    let dir = TempDir::new("deb-vm");
    let amd64 = image_binary(&dir.0);
    let first = package("amd64", &amd64, &amd64, &dir.0, 1);
    let second = package("amd64", &amd64, &amd64, &dir.0, 2);
    let vm = VmHost::on(&vm_engine, "deb");
    // Leftovers of an earlier run that did not finish go first; this run's
    // go however it ends, so a failure here leaves port 8091 free.
    let purge = Purge(&vm);
    purge.run();
    vm.put(&first, "/var/tmp/dse-1.deb");
    vm.put(&second, "/var/tmp/dse-2.deb");
    // Containers the service must list: one of the test's own.
    let sleeper = common::Container::run_on(
        &vm_engine,
        &common::unique("dse-deb-sleeper"),
        &[],
        &["sleep", "3600"],
    );

    // The VM's engine socket is root:root 0660, as Docker Desktop hands it
    // to containers, not root:docker: the service joins the socket's group
    // the way README.Debian says for such a socket, by a drop-in.
    let socket_gid = vm.sh("stat -L -c %g /var/run/docker.sock").unwrap();
    let socket_gid = socket_gid.trim();
    let group = vm
        .sh(&format!("getent group {socket_gid} | cut -d: -f1"))
        .unwrap();
    let dropin = format!("/etc/systemd/system/{UNIT}.d");
    vm.sh(&format!(
        "mkdir -p {dropin} && printf '[Service]\\nSupplementaryGroups={}\\n' >{dropin}/socket-group.conf",
        group.trim()
    ))
    .unwrap();
    vm.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q /var/tmp/dse-1.deb")
        .unwrap();
    let pid = active_pid(&vm, "");
    // Not root, no capabilities, in the socket's group.
    let status = vm.sh(&format!("cat /proc/{pid}/status")).unwrap();
    let line = |key: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .unwrap_or_default()
            .split_whitespace()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    assert!(
        line("Uid:").iter().all(|u| u != "0"),
        "runs as root:\n{status}"
    );
    assert_eq!(line("CapEff:"), ["0000000000000000"], "{status}");
    let docker_gid = vm.sh("getent group docker | cut -d: -f3").unwrap();
    for (what, gid) in [("docker", docker_gid.trim()), ("the socket's", socket_gid)] {
        assert!(
            line("Groups:").iter().any(|g| g == gid),
            "not in {what} group ({gid}):\n{status}"
        );
    }
    // It lists the VM's containers: the test's own two at least.
    let mine = [sleeper.name.as_str(), vm.name()];
    vm_metrics(&vm, 8091, &mine);
    let journal = vm
        .sh(&format!("journalctl -u {UNIT} --no-pager -o cat"))
        .unwrap();
    assert!(journal.contains("serving /metrics"), "journal: {journal}");

    // Restarted by hand, and after a kill by systemd (Restart=on-failure).
    vm.sh(&format!("systemctl restart {UNIT}")).unwrap();
    let pid = active_pid(&vm, &pid);
    vm.sh(&format!("kill -KILL {pid}")).unwrap();
    let pid = active_pid(&vm, &pid);
    vm_metrics(&vm, 8091, &mine);

    // An upgrade keeps the edited defaults file, and restarts on them.
    vm.sh("sed -i 's/^LISTEN_ADDRESS=.*/LISTEN_ADDRESS=\"127.0.0.1:18091\"/' /etc/default/docker-stats-exporter").unwrap();
    vm.sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -q /var/tmp/dse-2.deb")
        .unwrap();
    assert!(vm
        .sh("dpkg-query -W -f '${Version}' docker-stats-exporter")
        .unwrap()
        .ends_with("-2"));
    let kept = vm.sh("cat /etc/default/docker-stats-exporter").unwrap();
    assert!(
        kept.contains("127.0.0.1:18091"),
        "the edit is gone:\n{kept}"
    );
    active_pid(&vm, &pid);
    vm_metrics(&vm, 18091, &mine);

    // Purged, nothing of it is left.
    vm.sh("DEBIAN_FRONTEND=noninteractive apt-get purge -y -q docker-stats-exporter")
        .unwrap();
    let left = vm
        .sh(&format!(
            "ls -d /etc/docker-stats-exporter /etc/default/docker-stats-exporter \
             /usr/lib/systemd/system/{UNIT} /etc/systemd/system/multi-user.target.wants/{UNIT} \
             /var/lib/systemd/deb-systemd-helper-enabled/{UNIT} /var/lib/private/docker-stats-exporter \
             /usr/bin/docker-stats-exporter 2>/dev/null; \
             systemctl list-units --all --no-legend {UNIT} | grep -v 'not-found' ; \
             rm -f /var/tmp/dse-1.deb /var/tmp/dse-2.deb; true"
        ))
        .unwrap();
    assert!(left.trim().is_empty(), "left after purge:\n{left}");
    // The drop-in goes with `purge`.
}

/// Purges the package and the test's drop-in from the VM when dropped.
struct Purge<'a>(&'a VmHost);

impl Purge<'_> {
    fn run(&self) {
        let _ = self.0.sh(&format!(
            "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q docker-stats-exporter >/dev/null 2>&1; \
             rm -rf /etc/systemd/system/{UNIT}.d /var/tmp/dse-1.deb /var/tmp/dse-2.deb; \
             systemctl daemon-reload; systemctl reset-failed {UNIT} 2>/dev/null; true"
        ));
    }
}

impl Drop for Purge<'_> {
    fn drop(&mut self) {
        self.run();
    }
}
