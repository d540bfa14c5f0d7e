//! Private Docker engines a test starts and stops itself
//! (`scripts/private-engine.sh`): a dockerd of its own, in a network namespace
//! of its own, beside the shared engine. A test may stop, restart or load it
//! without disturbing anyone else's tests.

use std::io::{Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use super::DOCKER;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/private-engine.sh");

/// A private engine; stopped when dropped. Its data root (images, containers)
/// stays for the next start under the same name.
pub struct PrivateEngine {
    /// 1-16 characters of a-z, 0-9 and `-`; names the engine's directories
    /// and network namespace.
    pub name: String,
    /// `20.10` (this machine's dockerd) or `26.1` (Debian 13's).
    pub version: String,
    /// Its `DOCKER_HOST`: `unix:///run/dse-engines/NAME/docker.sock`.
    pub url: String,
    log_requests: bool,
}

impl PrivateEngine {
    /// Starts engine `name` running Docker `version`, or reuses it if it
    /// already answers.
    pub fn start(name: &str, version: &str) -> Self {
        Self::launch(name, version, false)
    }

    /// Like [`Self::start`], with dockerd logging every API request it
    /// receives, for [`Self::wait_for_request`].
    pub fn start_logging_requests(name: &str, version: &str) -> Self {
        Self::launch(name, version, true)
    }

    fn launch(name: &str, version: &str, log_requests: bool) -> Self {
        let url = script(&["start", name, version], log_requests);
        Self {
            name: name.to_string(),
            version: version.to_string(),
            url,
            log_requests,
        }
    }

    /// The path of its unix socket.
    pub fn socket(&self) -> PathBuf {
        PathBuf::from(self.url.trim_start_matches("unix://"))
    }

    /// dockerd's log (appended to across starts).
    pub fn log_path(&self) -> PathBuf {
        PathBuf::from(format!("/run/dse-engines/{}/dockerd.log", self.name))
    }

    /// Runs the docker CLI against this engine and returns stdout; panics
    /// with stderr on failure.
    pub fn docker(&self, args: &[&str]) -> String {
        let out = Command::new(DOCKER)
            .arg("-H")
            .arg(&self.url)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}"));
        assert!(
            out.status.success(),
            "docker -H {} {} failed: {}",
            self.url,
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// `docker run -d --name NAME [extra...] IMAGE cmd...` on this engine,
    /// after removing any leftover of the same name; the container's id.
    pub fn run_container(&self, name: &str, extra: &[&str], cmd: &[&str]) -> String {
        let _ = Command::new(DOCKER)
            .args(["-H", &self.url, "rm", "-f", name])
            .output();
        let image = super::image_name();
        let mut args = vec!["run", "-d", "--name", name, "--label", "dse.test=1"];
        args.extend_from_slice(extra);
        args.push(&image);
        args.extend_from_slice(cmd);
        self.docker(&args)
    }

    /// Whether it answers `GET /_ping`.
    pub fn answers(&self) -> bool {
        Command::new("bash")
            .args([SCRIPT, "status", &self.name])
            .status()
            .map(|s| s.success())
            .unwrap_or(false)
    }

    /// Stops its dockerd (by its pidfile) and waits until it is gone.
    pub fn stop(&self) {
        script(&["stop", &self.name], self.log_requests);
    }

    /// Starts it again after [`Self::stop`], with the same data.
    pub fn start_again(&self) {
        let url = script(&["start", &self.name, &self.version], self.log_requests);
        assert_eq!(url, self.url, "engine {} came back elsewhere", self.name);
    }

    /// The log's length now: a mark for [`Self::wait_for_request`].
    pub fn log_len(&self) -> u64 {
        std::fs::metadata(self.log_path())
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// Waits until dockerd has logged receiving a `method` request whose
    /// path contains `part`, after log offset `since`. Needs an engine from
    /// [`Self::start_logging_requests`].
    pub fn wait_for_request(&self, since: u64, method: &str, part: &str, timeout: Duration) {
        assert!(
            self.log_requests,
            "engine {} does not log requests: start it with start_logging_requests",
            self.name
        );
        let needle = format!("Calling {method} ");
        let until = Instant::now() + timeout;
        loop {
            let seen = self
                .log_since(since)
                .lines()
                .any(|l| l.contains(&needle) && l.contains(part));
            if seen {
                return;
            }
            assert!(
                Instant::now() < until,
                "engine {} received no {method} request for {part} within {timeout:?}",
                self.name
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_since(&self, since: u64) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(self.log_path()) {
            if f.seek(SeekFrom::Start(since)).is_ok() {
                let mut raw = Vec::new();
                let _ = f.read_to_end(&mut raw);
                text = String::from_utf8_lossy(&raw).into_owned();
            }
        }
        text
    }
}

impl Drop for PrivateEngine {
    fn drop(&mut self) {
        // No panic here: this may run while a failed test unwinds.
        let out = Command::new("bash")
            .args([SCRIPT, "stop", &self.name])
            .output();
        match out {
            Ok(o) if o.status.success() => {}
            Ok(o) => eprintln!(
                "stopping private engine {} failed: {}",
                self.name,
                String::from_utf8_lossy(&o.stderr)
            ),
            Err(e) => eprintln!("cannot run {SCRIPT}: {e}"),
        }
    }
}

/// Runs the script; its last line of stdout. Panics with its stderr on failure.
fn script(args: &[&str], log_requests: bool) -> String {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .args(args)
        .env("DSE_ENGINE_DEBUG", if log_requests { "1" } else { "0" })
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
    assert!(
        out.status.success(),
        "scripts/private-engine.sh {} failed:\n{}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .last()
        .unwrap_or_default()
        .trim()
        .to_string()
}
