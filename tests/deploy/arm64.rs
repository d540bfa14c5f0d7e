//! The linux/arm64 (Apple Silicon) build, built and run: the release binary
//! for aarch64-unknown-linux-gnu from scripts/arm64-build.sh, run under
//! qemu-aarch64-static against the real engine, reads the test's own
//! containers, and its `--healthcheck` passes under qemu too.
//!
//! The binary is `DSE_ARM64_BIN` when set, else what scripts/arm64-build.sh
//! builds (minutes on a cold cache). The emulator is `DSE_QEMU_AARCH64`, else
//! `qemu-aarch64-static` on PATH (Debian's qemu-user-static, which the build
//! script installs). Without one the test fails under `CI=true` and says it
//! did not run otherwise.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::cmd::{describe, stdout_of, tail};
use common::http::Get;
use common::{
    engine_host, names_config, unique, wait_until, ChildServer, Container, Metrics, TempDir,
};

/// The metrics the exporter had from its first release.
const ORIGINAL_FIVE: [&str; 5] = [
    "container_cpu_usage_percent",
    "container_memory_usage_bytes",
    "container_memory_limit_bytes",
    "container_network_rx_bytes",
    "container_network_tx_bytes",
];

/// Every instruction is emulated: scrapes and start-up are slower than native.
const SCRAPE_TIMEOUT: Duration = Duration::from_secs(90);

/// ELF e_machine of AArch64.
const EM_AARCH64: u16 = 183;

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The arm64 binary: `DSE_ARM64_BIN`, else the build script's last line.
pub(crate) fn arm64_binary() -> PathBuf {
    if let Some(bin) = std::env::var_os("DSE_ARM64_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin);
    }
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/arm64-build.sh"));
    let out = stdout_of(&mut cmd);
    let last = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("`{}` printed no binary path", describe(&cmd)));
    PathBuf::from(last.trim())
}

/// `DSE_QEMU_AARCH64`, else `qemu-aarch64-static` on PATH.
fn qemu() -> Option<PathBuf> {
    if let Some(q) = std::env::var_os("DSE_QEMU_AARCH64").filter(|q| !q.is_empty()) {
        return Some(PathBuf::from(q));
    }
    let paths = std::env::var_os("PATH")?;
    std::env::split_paths(&paths)
        .map(|dir| dir.join("qemu-aarch64-static"))
        .find(|p| p.is_file())
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// Asserts from its ELF header that `bin` is a 64-bit little-endian
/// AArch64 executable, so nothing here runs an x86_64 build by mistake.
fn assert_aarch64_executable(bin: &Path) {
    let bytes = std::fs::read(bin).unwrap_or_else(|e| panic!("cannot read {}: {e}", bin.display()));
    assert!(
        bytes.len() >= 20 && bytes[..4] == *b"\x7fELF",
        "{} is not an ELF file",
        bin.display()
    );
    assert_eq!(bytes[4], 2, "{}: not a 64-bit ELF file", bin.display());
    assert_eq!(bytes[5], 1, "{}: not little-endian", bin.display());
    let e_type = u16::from_le_bytes([bytes[16], bytes[17]]);
    assert!(
        e_type == 2 || e_type == 3,
        "{}: ELF type {e_type}, not an executable",
        bin.display()
    );
    let machine = u16::from_le_bytes([bytes[18], bytes[19]]);
    assert_eq!(
        machine,
        EM_AARCH64,
        "{}: ELF machine {machine}, not AArch64",
        bin.display()
    );
}

/// `qemu BIN args...`.
fn under_qemu(qemu: &Path, bin: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(qemu);
    cmd.arg(bin).args(args);
    cmd
}

#[test]
fn arm64_release_binary_under_qemu_reads_the_engine_and_passes_its_healthcheck() {
    let bin = arm64_binary();
    let Some(qemu) = qemu() else {
        let why = "qemu-aarch64-static not found (Debian package qemu-user-static, which \
                   scripts/arm64-build.sh installs; or set DSE_QEMU_AARCH64)";
        if in_ci() {
            panic!("{why}: the arm64 binary cannot be run, and CI must run it");
        }
        eprintln!("arm64 test NOT RUN: {why}");
        return;
    };
    assert_aarch64_executable(&bin);

    let version = stdout_of(&mut under_qemu(&qemu, &bin, &["--version"]));
    assert!(
        version.contains(env!("CARGO_PKG_VERSION")),
        "--version under qemu: {version}"
    );

    // Two containers of this test's own; one with a memory limit that must
    // come through as set.
    let limited = Container::sleeper(&unique("dse-arm64-limited"), &["--memory", "64m"]);
    let plain = Container::sleeper(&unique("dse-arm64-plain"), &[]);
    let names = [limited.name.as_str(), plain.name.as_str()];

    let dir = TempDir::new("arm64");
    let config = dir.0.join("config.toml");
    std::fs::write(&config, names_config(&names, "")).expect("write the test config");
    let config = config.to_string_lossy().into_owned();
    let mut exporter = ChildServer::spawn_exporter(under_qemu(
        &qemu,
        &bin,
        &[
            "--web.listen-address",
            "127.0.0.1:0",
            "--docker-host",
            engine_host(),
            "--config",
            &config,
        ],
    ));

    let metrics = wait_until(
        "the arm64 exporter's /metrics to list both containers with the original five metrics",
        SCRAPE_TIMEOUT,
        || {
            let answer = Get::new(exporter.addr, "/metrics")
                .timeout(SCRAPE_TIMEOUT)
                .send_blocking()?;
            if answer.status != 200 {
                return Err(format!("status {}: {}", answer.status, answer.body));
            }
            let metrics = Metrics::parse(&answer.body);
            let missing: Vec<String> = ORIGINAL_FIVE
                .iter()
                .flat_map(|m| names.iter().map(move |n| (m, n)))
                .filter(|(m, n)| metrics.get(m, n).is_none())
                .map(|(m, n)| format!("{m}{{name=\"{n}\"}}"))
                .collect();
            if missing.is_empty() {
                Ok(metrics)
            } else {
                Err(format!(
                    "missing {}\n--- body\n{}\n--- exporter log\n{}",
                    missing.join(", "),
                    tail(&answer.body, 40),
                    tail(&exporter.logs(), 20)
                ))
            }
        },
    );
    assert_eq!(
        metrics.get("container_memory_limit_bytes", &limited.name),
        Some(64.0 * 1024.0 * 1024.0),
        "the --memory 64m container's limit"
    );
    for name in names {
        let usage = metrics
            .get("container_memory_usage_bytes", name)
            .expect("memory usage, found above");
        assert!(usage > 0.0, "{name}: memory usage {usage}");
        let cpu = metrics
            .get("container_cpu_usage_percent", name)
            .expect("cpu percent, found above");
        assert!(cpu >= 0.0, "{name}: cpu percent {cpu}");
    }

    let listen = exporter.addr.to_string();
    let mut check = under_qemu(&qemu, &bin, &["--healthcheck", "--listen", &listen]);
    let out = check
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(&check)));
    assert!(
        out.status.success(),
        "`{}` exited with {} against the arm64 exporter: {}",
        describe(&check),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );

    exporter.terminate();
    let status = exporter.wait_exit(Duration::from_secs(20));
    assert!(
        status.success(),
        "the arm64 exporter on SIGTERM: {status:?}\n{}",
        exporter.logs()
    );

    // With nothing listening any more, the same check fails.
    let out = check
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{}`: {e}", describe(&check)));
    assert!(
        !out.status.success(),
        "`{}` passed with nothing listening",
        describe(&check)
    );
}
