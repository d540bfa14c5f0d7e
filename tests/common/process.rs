//! The real binary as a child process, with its log in a file the test can
//! read while it runs.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running exporter process; killed when dropped.
pub struct Running {
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Running {
    /// Spawns `cmd` (the binary, or a wrapper such as setpriv running it) with
    /// `--listen 127.0.0.1:0` appended, its stderr going to `log`, and waits
    /// until its log names the address it bound. Panics with the log if it
    /// exits first.
    pub async fn start(mut cmd: Command, log: PathBuf) -> Self {
        let file = std::fs::File::create(&log).unwrap();
        let mut child = cmd
            .args(["--listen", "127.0.0.1:0"])
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(10);
        let addr = loop {
            let text = std::fs::read_to_string(&log).unwrap_or_default();
            if let Some(addr) = text.lines().find_map(super::child::exporter_addr) {
                break addr;
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("exporter exited with {status} before listening:\n{text}");
            }
            assert!(Instant::now() < until, "exporter did not listen:\n{text}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        };
        Self { addr, child, log }
    }

    /// `GET path`: status and body.
    pub async fn get(&self, path: &str) -> (u16, String) {
        super::get(self.addr, path, &[]).await
    }

    /// `GET /metrics`, parsed; it must answer 200.
    pub async fn metrics(&self) -> super::Metrics {
        let (status, body) = self.get("/metrics").await;
        assert_eq!(status, 200, "{body}");
        super::Metrics::parse(&body)
    }

    /// The log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `cmd`, which must exit with a failure within 10 s; its stderr.
pub fn fails(mut cmd: Command) -> String {
    let mut child = cmd
        .args(["--listen", "127.0.0.1:0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let until = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} should fail at start, but it still runs after 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    use std::io::Read;
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(!status.success(), "{cmd:?} should fail: {stderr}");
    stderr
}
