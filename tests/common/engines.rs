//! Private Docker engines a test starts and stops itself
//! (`scripts/private-engine.sh`): a dockerd of its own, in a network namespace
//! of its own, beside the shared engine. A test may stop, restart or load it
//! without disturbing anyone else's tests.

use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::DOCKER;

const SCRIPT: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../scripts/private-engine.sh"
);

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
    /// Its own hostname (`DSE_ENGINE_HOSTNAME`), else the host's.
    hostname: Option<String>,
    /// Whether dropping it deletes its data root too.
    purge_on_drop: bool,
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

    /// Starts engine `name` anew: whatever an earlier run left of it (a
    /// dockerd, its data root: containers, images, Swarm state) is deleted
    /// first, and again when it is dropped. It runs with its own `hostname`,
    /// the name it reports (a Swarm node's hostname).
    pub fn start_fresh(name: &str, version: &str, hostname: &str) -> Self {
        let mut engine = Self {
            name: name.to_string(),
            version: version.to_string(),
            url: String::new(),
            log_requests: false,
            hostname: Some(hostname.to_string()),
            purge_on_drop: true,
        };
        engine.script(&["purge", name]);
        engine.url = engine.script(&["start", name, version]);
        engine
    }

    fn launch(name: &str, version: &str, log_requests: bool) -> Self {
        let mut engine = Self {
            name: name.to_string(),
            version: version.to_string(),
            url: String::new(),
            log_requests,
            hostname: None,
            purge_on_drop: false,
        };
        engine.url = engine.script(&["start", name, version]);
        engine
    }

    /// Its network namespace, for `nsenter --net=...` and `ip -n`.
    pub fn netns(&self) -> String {
        format!("dse-{}", self.name)
    }

    /// Imports directory `dir` as image `tag` (`tar | docker import`), with
    /// Dockerfile instructions `changes` (`ENTRYPOINT [...]`, `USER ...`).
    pub fn import_dir(&self, dir: &Path, changes: &[&str], tag: &str) {
        let mut tar = Command::new("tar")
            .args(["--numeric-owner", "-C"])
            .arg(dir)
            .args(["-c", "."])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run tar: {e}"));
        let stdout = tar.stdout.take().expect("piped stdout");
        let mut args = vec!["-H", &self.url, "import"];
        for change in changes {
            args.extend(["--change", change]);
        }
        args.extend(["-", tag]);
        let import = Command::new(DOCKER)
            .args(&args)
            .stdin(stdout)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}"));
        let tarred = tar.wait().expect("wait for tar");
        assert!(
            tarred.success() && import.status.success(),
            "tar -C {} | docker {} failed: {}",
            dir.display(),
            args.join(" "),
            String::from_utf8_lossy(&import.stderr)
        );
    }

    /// Copies image `id` from the shared engine into this one (`docker
    /// save | docker load`, no registry) and tags it `tag` here.
    pub fn load_image(&self, id: &str, tag: &str) {
        let mut save = Command::new(DOCKER)
            .args(["save", id])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}"));
        let stdout = save.stdout.take().expect("piped stdout");
        let load = Command::new(DOCKER)
            .args(["-H", &self.url, "load", "-q"])
            .stdin(stdout)
            .output()
            .unwrap_or_else(|e| panic!("cannot run {DOCKER}: {e}"));
        let saved = save.wait().expect("wait for docker save");
        assert!(
            saved.success() && load.status.success(),
            "docker save {id} | docker -H {} load failed: {}",
            self.url,
            String::from_utf8_lossy(&load.stderr)
        );
        self.docker(&["tag", id, tag]);
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
        self.script(&["stop", &self.name]);
    }

    /// Starts it again after [`Self::stop`], with the same data.
    pub fn start_again(&self) {
        let url = self.script(&["start", &self.name, &self.version]);
        assert_eq!(url, self.url, "engine {} came back elsewhere", self.name);
    }

    /// Runs the script with this engine's settings; its last line of
    /// stdout. Panics with its stderr on failure.
    fn script(&self, args: &[&str]) -> String {
        let mut cmd = self.script_command(args);
        let out = cmd
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

    fn script_command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new("bash");
        cmd.arg(SCRIPT)
            .args(args)
            .env(
                "DSE_ENGINE_DEBUG",
                if self.log_requests { "1" } else { "0" },
            )
            .env_remove("DSE_ENGINE_HOSTNAME");
        if let Some(h) = &self.hostname {
            cmd.env("DSE_ENGINE_HOSTNAME", h);
        }
        cmd
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
        let action = if self.purge_on_drop { "purge" } else { "stop" };
        let out = self.script_command(&[action, &self.name]).output();
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
