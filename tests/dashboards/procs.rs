//! Child processes on loopback ports: Prometheus, node_exporter and the
//! exporter binary, each logging to a file, killed by handle when dropped.

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const START_TIMEOUT: Duration = Duration::from_secs(60);

/// A running child; killed and reaped when dropped.
pub struct Proc {
    child: Child,
    /// Its stdout and stderr.
    pub log: PathBuf,
}

impl Proc {
    /// Starts `cmd` with stdout and stderr going to `log`.
    pub fn spawn(what: &str, cmd: &mut Command, log: &Path) -> Self {
        let file = std::fs::File::create(log).unwrap_or_else(|e| panic!("{}: {e}", log.display()));
        let err = file.try_clone().expect("clone log handle");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(file)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {what} ({:?}): {e}", cmd.get_program()));
        Self {
            child,
            log: log.to_path_buf(),
        }
    }

    /// Whether it still runs.
    pub fn running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines of its log.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts a program that takes its port on the command line (`make(port)`)
/// on a port that was free a moment ago, and picks another one when it
/// loses the race for it. Ready when `GET ready_path` answers 200.
pub async fn on_free_port(
    what: &str,
    log: &Path,
    ready_path: &str,
    make: impl Fn(u16) -> Command,
) -> (Proc, SocketAddr) {
    for _ in 0..5 {
        let port = common::candidate_port();
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let mut proc = Proc::spawn(what, &mut make(port), log);
        let until = Instant::now() + START_TIMEOUT;
        loop {
            if !proc.running() {
                let tail = proc.log_tail();
                if tail.contains("address already in use") {
                    break;
                }
                panic!("{what} exited at start:\n{tail}");
            }
            if answers_200(addr, ready_path).await && proc.running() {
                return (proc, addr);
            }
            assert!(
                Instant::now() < until,
                "{what} not ready on {addr} within {START_TIMEOUT:?}:\n{}",
                proc.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    panic!("{what}: five ports taken by others in a row");
}

/// Starts the exporter binary on 127.0.0.1:0 against `docker_host`, with
/// its default configuration otherwise; its address is read from its log.
pub async fn exporter(what: &str, log: &Path, docker_host: &str) -> (Proc, SocketAddr) {
    let mut proc = Proc::spawn(
        what,
        Command::new(common::BIN).args(["--listen", "127.0.0.1:0", "--docker-host", docker_host]),
        log,
    );
    let until = Instant::now() + START_TIMEOUT;
    loop {
        let text = std::fs::read_to_string(log).unwrap_or_default();
        let addr = text
            .split_whitespace()
            .find_map(|w| w.strip_prefix("listen="))
            .and_then(|a| a.parse::<SocketAddr>().ok());
        if let Some(addr) = addr {
            if answers_200(addr, "/healthz").await {
                return (proc, addr);
            }
        }
        assert!(
            proc.running(),
            "{what} exited at start:\n{}",
            proc.log_tail()
        );
        assert!(
            Instant::now() < until,
            "{what} did not log its address:\n{}",
            proc.log_tail()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn answers_200(addr: SocketAddr, path: &str) -> bool {
    // common::get panics when nothing listens: try a connection first.
    if TcpStream::connect_timeout(&addr, Duration::from_millis(300)).is_err() {
        return false;
    }
    common::get(addr, path, &[]).await.0 == 200
}
