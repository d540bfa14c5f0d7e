//! The cgroup v2 VM of `scripts/cgroup2-vm.sh`, named by `DSE_CGROUP2_HOST`:
//! its Docker engine and, beside its socket, its Podman sockets; and a raw
//! `GET` on a unix socket, for what only Podman's own API says.

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;

/// The VM's Docker engine, or `None` (the test skips) when none is named
/// outside CI; under `CI=true` a missing one fails the test.
pub fn cgroup2_host() -> Option<String> {
    match std::env::var("DSE_CGROUP2_HOST") {
        Ok(host) if !host.trim().is_empty() => Some(host.trim().to_string()),
        _ if std::env::var("CI").as_deref() == Ok("true") => panic!(
            "DSE_CGROUP2_HOST is not set; CI must run this test against \
             scripts/cgroup2-vm.sh's engine: DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2)"
        ),
        _ => {
            eprintln!(
                "skipped: set DSE_CGROUP2_HOST to the VM's engine \
                 (DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2))"
            );
            None
        }
    }
}

/// The VM's Podman socket `file` (`podman.sock`, `podman-rootless.sock`,
/// `podman-nodelegate.sock`) as a `unix://` URL, beside its Docker socket.
pub fn podman_host(docker_host: &str, file: &str) -> String {
    let path = docker_host.strip_prefix("unix://").unwrap_or(docker_host);
    let dir = Path::new(path).parent().unwrap_or(Path::new("/"));
    format!("unix://{}", dir.join(file).display())
}

/// `GET path` on the engine at `host` (`unix://...`): the body of a 200
/// answer; panics on anything else.
pub fn unix_get(host: &str, path: &str) -> String {
    let socket = host.strip_prefix("unix://").unwrap_or(host);
    let mut stream =
        UnixStream::connect(socket).unwrap_or_else(|e| panic!("connecting to {socket}: {e}"));
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    assert!(
        head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200"),
        "GET {path} on {host}: {head}\n{body}"
    );
    body.to_string()
}
