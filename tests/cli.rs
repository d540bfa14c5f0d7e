//! The binary as a user runs it: flags, config errors, health check, shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use common::{run_failing, ChildServer, TempDir, BIN};

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// Writes `text` to `NAME.toml` in `dir`.
fn write_config(dir: &TempDir, name: &str, text: &str) -> PathBuf {
    let path = dir.0.join(format!("{name}.toml"));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_config_exits_before_listening_and_names_file_key_and_line() {
    // A port this test holds: an exporter that got as far as binding it
    // would fail with "cannot listen" instead of naming the bad key.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let dir = TempDir::new("cli-config");
    let path = write_config(&dir, "bad", "[containers]\nlabels = [\"ok\", \" =web\"]\n");
    let err = run_failing(&["--config", path.to_str().unwrap(), "--listen", &listen]);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("containers.labels"), "{err}");
    assert!(err.contains("empty label key"), "{err}");
    assert!(!err.contains("cannot listen"), "{err}");

    let path = write_config(
        &dir,
        "unknown",
        "listen = \"127.0.0.1:1\"\ndockerhost = \"x\"\n",
    );
    let err = run_failing(&["--config", path.to_str().unwrap()]);
    assert!(
        err.contains("line 2") && err.contains("dockerhost"),
        "{err}"
    );

    let err = run_failing(&["--config", "/nonexistent/dse.toml"]);
    assert!(err.contains("/nonexistent/dse.toml"), "{err}");

    let err = run_failing(&["--docker-host", "ssh://host"]);
    assert!(
        err.contains("--docker-host") && err.contains("ssh://host"),
        "{err}"
    );
}

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains(env!("CARGO_PKG_VERSION")));
}

#[test]
fn healthcheck_passes_against_a_running_exporter_and_sigterm_stops_it_at_once() {
    // Something that accepts and hangs up without answering: not healthy.
    let mute = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = mute.local_addr().unwrap().to_string();
    let hang_up = std::thread::spawn(move || drop(mute.accept()));
    let err = run_failing(&["--healthcheck", "--listen", &listen]);
    assert!(err.contains(&listen), "{err}");
    hang_up.join().unwrap();

    let mut cmd = Command::new(BIN);
    cmd.args([
        "--web.listen-address",
        "127.0.0.1:0",
        "--log-format",
        "json",
    ])
    .env("DOCKER_HOST", "unix:///nonexistent/docker.sock");
    let mut exporter = ChildServer::spawn_exporter(cmd);
    // It logs the address once bound: the check must pass at the first try.
    let out = Command::new(BIN)
        .args(["--healthcheck", "--listen", &exporter.addr.to_string()])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "healthcheck against {}: {}",
        exporter.addr,
        String::from_utf8_lossy(&out.stderr)
    );

    exporter.terminate();
    let status = exporter.wait_exit(Duration::from_secs(5));
    assert!(status.success(), "{status:?}");
    let logs = exporter.logs();
    assert!(
        logs.lines()
            .any(|l| l.starts_with('{') && l.contains("shutting down")),
        "{logs}"
    );
}
