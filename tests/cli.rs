//! The binary as a user runs it: flags, config errors, health check, shutdown.

#![allow(clippy::unwrap_used)]

mod common;

use common::{free_port, run_failing, BIN};

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn write_config(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!("dse-cli-{tag}-{}.toml", std::process::id()));
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

#[test]
fn bad_config_exits_before_listening_and_names_file_key_and_line() {
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let path = write_config("bad", "[containers]\nlabels = [\"ok\", \" =web\"]\n");
    let err = run_failing(&["--config", path.to_str().unwrap(), "--listen", &listen]);
    assert!(err.contains(path.to_str().unwrap()), "{err}");
    assert!(err.contains("line 2"), "{err}");
    assert!(err.contains("containers.labels"), "{err}");
    assert!(err.contains("empty label key"), "{err}");
    // It never bound the port.
    assert!(std::net::TcpListener::bind(&listen).is_ok());

    let path = write_config("unknown", "listen = \"127.0.0.1:1\"\ndockerhost = \"x\"\n");
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
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let err = run_failing(&["--healthcheck", "--listen", &listen]);
    assert!(err.contains(&listen), "{err}");

    let mut child = Command::new(BIN)
        .args(["--web.listen-address", &listen, "--log-format", "json"])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let healthy = loop {
        let ok = Command::new(BIN)
            .args(["--healthcheck", "--listen", &listen])
            .status()
            .unwrap()
            .success();
        if ok || started.elapsed() > Duration::from_secs(10) {
            break ok;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(healthy, "healthcheck never passed");

    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let stopped = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(5),
            "still running 5 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "{status:?}");
    let out = child.wait_with_output().unwrap();
    let logs = String::from_utf8_lossy(&out.stderr);
    assert!(
        logs.lines()
            .any(|l| l.starts_with('{') && l.contains("shutting down")),
        "{logs}"
    );
}

/// What the exporter logs on its own between start and SIGTERM with `level`.
fn logs_at(level: &str) -> String {
    let listen = format!("127.0.0.1:{}", free_port());
    let child = Command::new(BIN)
        .args(["--listen", &listen, "--log-level", level])
        .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    while !Command::new(BIN)
        .args(["--healthcheck", "--listen", &listen])
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
    {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "--log-level {level:?}: never healthy"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "--log-level {level:?}: {:?}",
        out.status
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn log_level_takes_levels_and_target_directives_and_refuses_span_filters() {
    let serving = |logs: &str| logs.lines().any(|l| l.contains("serving /metrics"));
    assert!(serving(&logs_at("info")));
    assert!(serving(&logs_at("INFO")));
    assert!(!serving(&logs_at("warn")));
    assert!(serving(&logs_at("warn,docker_stats_exporter=info")));
    assert!(!serving(&logs_at("info,docker_stats_exporter=off")));

    let err = run_failing(&["--log-level", "info,[scrape]=debug"]);
    assert!(
        err.contains("--log-level") && err.contains("span and field filters"),
        "{err}"
    );
    let err = run_failing(&["--log-level", "docker_stats_exporter=loud"]);
    assert!(
        err.contains("--log-level") && err.contains("docker_stats_exporter=loud"),
        "{err}"
    );
}
