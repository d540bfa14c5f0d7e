//! A socket the exporter may not open: the log line and `/readyz` name the
//! change that fixes it. The socket is a pass-through to the real engine that
//! this test owns, given the owner group and mode under test; the binary runs
//! as nobody (uid/gid 65534) through setpriv.

#![allow(clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

use common::process::Running;
use common::proxy::Proxy;
use common::{TempDir, BIN};

/// A group no process here belongs to.
const SOCKET_GID: u32 = 4711;

/// A proxy to the engine at `dir/engine.sock`, chowned and chmodded.
fn socket(dir: &Path, uid: u32, gid: u32, mode: u32) -> Proxy {
    // nobody must be able to reach the socket through the directory.
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let proxy = Proxy::start(&dir.join("engine.sock"), "/var/run/docker.sock");
    std::os::unix::fs::chown(&proxy.socket, Some(uid), Some(gid)).unwrap();
    std::fs::set_permissions(&proxy.socket, std::fs::Permissions::from_mode(mode)).unwrap();
    proxy
}

/// The binary as uid/gid 65534 with only `groups` as supplementary groups.
fn as_nobody(groups: &[u32], host: &str) -> Command {
    let mut cmd = Command::new("setpriv");
    cmd.args(["--reuid=65534", "--regid=65534"]);
    if groups.is_empty() {
        cmd.arg("--clear-groups");
    } else {
        let list: Vec<String> = groups.iter().map(u32::to_string).collect();
        cmd.arg(format!("--groups={}", list.join(",")));
    }
    cmd.arg(BIN).args(["--docker-host", host]);
    cmd
}

/// Scrapes and asks `/readyz`: `docker_up`, the readiness status and body,
/// and the engine warning line of the log.
async fn refused(running: &Running) -> (u16, String, String) {
    let m = running.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(0.0), "{}", running.log());
    let (status, body) = running.get("/readyz").await;
    let log = running.log();
    let line = log
        .lines()
        .find(|l| l.contains("engine unavailable"))
        .unwrap_or_else(|| panic!("no engine warning in the log:\n{log}"))
        .to_string();
    (status, body, line)
}

#[tokio::test(flavor = "multi_thread")]
async fn group_socket_names_the_group_to_add_and_that_group_works() {
    let dir = TempDir::new("sockacc-group");
    let proxy = socket(&dir.0, 0, SOCKET_GID, 0o660);

    let running = Running::start(as_nobody(&[], &proxy.url()), dir.0.join("log1")).await;
    let (status, body, line) = refused(&running).await;
    assert_eq!(status, 503, "{body}");
    for text in [&body, &line] {
        assert!(
            text.contains(&format!("`--group-add {SOCKET_GID}`"))
                && text.contains(&format!("`DOCKER_GID={SOCKET_GID}`")),
            "{text}"
        );
        assert!(
            text.contains(&format!("is 0:{SOCKET_GID} mode 0660")),
            "{text}"
        );
        assert!(text.contains("(uid 65534, groups 65534)"), "{text}");
        assert!(text.contains("ermission denied"), "{text}");
    }
    drop(running);

    // The change named is enough.
    let running = Running::start(as_nobody(&[SOCKET_GID], &proxy.url()), dir.0.join("log2")).await;
    let m = running.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(1.0), "{}", running.log());
    let (status, body) = running.get("/readyz").await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn owner_only_socket_says_run_as_root() {
    // Docker Desktop 4.19 and 4.20 give containers root:root 0755: group 0
    // cannot connect, only root.
    let dir = TempDir::new("sockacc-root");
    let proxy = socket(&dir.0, 0, 0, 0o755);

    let running = Running::start(as_nobody(&[0], &proxy.url()), dir.0.join("log")).await;
    let (status, body, line) = refused(&running).await;
    assert_eq!(status, 503, "{body}");
    for text in [&body, &line] {
        assert!(text.contains("run as root (user: \"0\")"), "{text}");
        assert!(text.contains("`DSE_USER=0`"), "{text}");
        assert!(!text.contains("--group-add"), "{text}");
        assert!(text.contains("is 0:0 mode 0755"), "{text}");
        assert!(text.contains("(uid 65534, groups 65534, 0)"), "{text}");
    }
}
