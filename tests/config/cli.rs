//! The binary as a user runs it: flags, config errors, health check, shutdown.

#![allow(clippy::unwrap_used)]

use common::{run_failing, ChildServer, TempDir, BIN};

use std::path::PathBuf;
use std::process::{Command, Stdio};
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
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains(env!("CARGO_PKG_VERSION")), "{printed}");
    // Built from a git checkout: the commit too.
    let head = Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    if head.status.success() {
        let head = String::from_utf8_lossy(&head.stdout);
        assert!(
            printed.contains(&format!("(commit {})", head.trim())),
            "{printed}"
        );
    }
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

/// What the exporter logs on its own between start and SIGTERM with `level`.
/// Below `info` it does not log the address it bound, so it gets a port
/// picked here, and another one if that was taken meanwhile.
fn logs_at(level: &str) -> String {
    for _ in 0..5 {
        let listen = format!("127.0.0.1:{}", common::candidate_port());
        let mut child = Command::new(BIN)
            .args(["--listen", &listen, "--log-level", level])
            .env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let exited = common::wait_until(
            &format!("--log-level {level:?}: healthy on {listen}"),
            Duration::from_secs(10),
            || {
                if let Ok(Some(status)) = child.try_wait() {
                    return Ok(Some(status));
                }
                let ok = Command::new(BIN)
                    .args(["--healthcheck", "--listen", &listen])
                    .stderr(Stdio::null())
                    .status()
                    .unwrap()
                    .success();
                if ok {
                    Ok(None)
                } else {
                    Err("not yet".to_string())
                }
            },
        );
        if exited.is_some() {
            // It exited before it was healthy: the port was taken; again.
            let out = child.wait_with_output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains("cannot listen"), "{err}");
            continue;
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
        return String::from_utf8_lossy(&out.stderr).into_owned();
    }
    panic!("five ports in a row were taken");
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
