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

/// The VM's own system, for what its engine's API cannot do (install a
/// package, ask systemd): a privileged container on the VM's engine whose
/// commands enter the namespaces of the VM's PID 1. Removed when dropped.
pub struct VmHost {
    shell: super::Container,
}

impl VmHost {
    /// A shell on the system of the VM whose engine is `docker_host`.
    pub fn on(docker_host: &str, test: &str) -> Self {
        let shell = super::Container::run_on(
            docker_host,
            &super::unique(&format!("dse-vm-host-{test}")),
            &[
                "--privileged",
                "--pid",
                "host",
                "--network",
                "host",
                "-v",
                "/:/host",
            ],
            &["sleep", "3600"],
        );
        Self { shell }
    }

    /// Runs `script` with `sh` on the VM's system: its stdout, or its exit
    /// status and output.
    pub fn sh(&self, script: &str) -> Result<String, String> {
        self.exec(
            &[
                "busybox", "nsenter", "-t", "1", "-m", "-u", "-i", "-n", "--", "/bin/sh",
            ],
            script,
        )
    }

    /// Runs `script` with busybox's `sh` in the shell's own container,
    /// which shares the VM's network: for what the VM's system lacks (a
    /// minimal Debian has neither curl nor wget).
    pub fn busybox(&self, script: &str) -> Result<String, String> {
        self.exec(&["sh"], script)
    }

    /// `docker exec` of `shell -c script` in the shell container.
    fn exec(&self, shell: &[&str], script: &str) -> Result<String, String> {
        let host = self.shell.host();
        let out = std::process::Command::new(super::docker_for(host))
            .args(["-H", host, "exec", &self.shell.name])
            .args(shell)
            .args(["-c", script])
            .output()
            .map_err(|e| format!("docker exec: {e}"))?;
        if out.status.success() {
            return Ok(String::from_utf8_lossy(&out.stdout).into_owned());
        }
        Err(format!(
            "`{script}` in {}: {}: {}{}",
            self.shell.name,
            out.status,
            String::from_utf8_lossy(&out.stdout).trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }

    /// The shell container's name.
    pub fn name(&self) -> &str {
        &self.shell.name
    }

    /// Copies the file `local` to `remote` (an absolute path) on the VM.
    pub fn put(&self, local: &Path, remote: &str) {
        let host = self.shell.host();
        let to = format!("{}:/host{remote}", self.shell.name);
        let out = std::process::Command::new(super::docker_for(host))
            .args(["-H", host, "cp"])
            .arg(local)
            .arg(&to)
            .output()
            .unwrap_or_else(|e| panic!("docker cp: {e}"));
        assert!(
            out.status.success(),
            "docker cp {} {to}: {}",
            local.display(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
}
