//! Servers as child processes (the exporter binary, Prometheus) that listen
//! on a port the kernel picks (`127.0.0.1:0`) and are found through their
//! own start-up log line: no test depends on a port being free.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::wait::wait_until;

/// The exporter binary cargo built for these tests.
pub static BIN: Bin = Bin;

/// The exporter binary that cargo built beside the running test binary
/// (`target/PROFILE/docker-stats-exporter`, the test in `deps/`): this
/// crate is not the package's own test, so `CARGO_BIN_EXE_*` is not set.
#[derive(Debug, Clone, Copy)]
pub struct Bin;

impl Bin {
    pub fn path(self) -> &'static std::path::Path {
        static PATH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
        PATH.get_or_init(|| {
            let exe = std::env::current_exe().expect("the test binary's path");
            let profile = exe
                .parent()
                .and_then(std::path::Path::parent)
                .expect("the test binary in target/PROFILE/deps");
            profile.join(format!(
                "docker-stats-exporter{}",
                std::env::consts::EXE_SUFFIX
            ))
        })
    }
}

impl AsRef<std::ffi::OsStr> for Bin {
    fn as_ref(&self) -> &std::ffi::OsStr {
        self.path().as_os_str()
    }
}

impl std::fmt::Display for Bin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.path().display().fmt(f)
    }
}

/// How long a busy machine may take to start the binary.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running server process; killed when dropped.
pub struct ChildServer {
    child: Child,
    /// Where it listens, as it logged.
    pub addr: SocketAddr,
    logs: Arc<Mutex<String>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl ChildServer {
    /// The exporter: `BIN --listen 127.0.0.1:0 ARGS...`, once it listens.
    pub fn exporter(args: &[&str]) -> Self {
        let mut cmd = Command::new(BIN);
        cmd.args(["--listen", "127.0.0.1:0"]).args(args);
        Self::spawn_exporter(cmd)
    }

    /// Runs `cmd`, which must start the exporter binary on a port-0
    /// address with info-level logs (the default), until it logs
    /// `serving /metrics`.
    pub fn spawn_exporter(cmd: Command) -> Self {
        Self::spawn(cmd, exporter_addr)
    }

    /// Runs `cmd` and waits until `find_addr` finds where it listens in a
    /// line of its stderr. Blocks the calling thread until then.
    pub fn spawn(mut cmd: Command, find_addr: fn(&str) -> Option<SocketAddr>) -> Self {
        let what = format!("{cmd:?}");
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
        let logs = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().expect("piped stderr");
        let sink = logs.clone();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { return };
                let mut all = sink.lock().unwrap_or_else(|p| p.into_inner());
                all.push_str(&line);
                all.push('\n');
            }
        });
        let addr = wait_until(
            &format!("the listen address in the logs of {what}"),
            START_TIMEOUT,
            || {
                let text = logs.lock().unwrap_or_else(|p| p.into_inner()).clone();
                if let Some(addr) = text.lines().find_map(find_addr) {
                    return Ok(addr);
                }
                match child.try_wait() {
                    Ok(Some(status)) => panic!("{what} exited with {status}:\n{text}"),
                    _ => Err(text),
                }
            },
        );
        Self {
            child,
            addr,
            logs,
            reader: Some(reader),
        }
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything it wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.logs.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Waits until its logs contain `needle`; the logs.
    pub fn wait_for_log(&self, needle: &str, timeout: Duration) -> String {
        wait_until(&format!("{needle:?} in the logs"), timeout, || {
            let logs = self.logs();
            if logs.contains(needle) {
                Ok(logs)
            } else {
                Err(logs)
            }
        })
    }

    /// Sends SIGTERM.
    pub fn terminate(&self) {
        let pid = self.child.id().to_string();
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -TERM {pid} failed");
    }

    /// Waits for it to exit, then for the rest of its logs; panics after
    /// `timeout`.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = &mut self.child;
        let logs = &self.logs;
        let status = wait_until("the exporter to exit", timeout, || {
            match child.try_wait().expect("try_wait") {
                Some(status) => Ok(status),
                None => Err(logs.lock().unwrap_or_else(|p| p.into_inner()).clone()),
            }
        });
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
        status
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The address in the exporter's `serving /metrics` line, text
/// (`listen=ADDR`) or JSON (`"listen":"ADDR"`) format.
pub fn exporter_addr(line: &str) -> Option<SocketAddr> {
    if !line.contains("serving /metrics") {
        return None;
    }
    let value = if let Some((_, rest)) = line.split_once("\"listen\":\"") {
        rest.split('"').next()?
    } else {
        let (_, rest) = line.split_once("listen=")?;
        rest.split_whitespace().next()?
    };
    value.parse().ok()
}

/// Runs the binary with `args`, which must fail; its stderr.
pub fn run_failing(args: &[&str]) -> String {
    let out = Command::new(BIN)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {BIN}: {e}"));
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// A loopback port the kernel just handed out and took back, for programs
/// that must be told their port. Another process may take it first: callers
/// start the program on it and try a new one when it cannot listen.
pub fn candidate_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("no loopback port: {e}"))
}
