//! A Docker Swarm of private engines: the first one initialises it as the
//! manager, the others join as workers. Every engine leaves it when the
//! guard is dropped, so a failed test leaves no swarm behind.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::engines::PrivateEngine;

/// The swarm; its nodes leave it when dropped, workers first.
pub struct Swarm<'a> {
    manager: &'a PrivateEngine,
    /// The manager's address, as the workers reach it.
    addr: String,
    workers: Vec<&'a PrivateEngine>,
}

impl<'a> Swarm<'a> {
    /// `docker swarm init --advertise-addr ADDR` on `manager`. An engine in
    /// a network namespace of its own cannot choose an address by itself.
    pub fn init(manager: &'a PrivateEngine, addr: &str) -> Self {
        let swarm = Swarm {
            manager,
            addr: addr.to_string(),
            workers: Vec::new(),
        };
        manager.docker(&["swarm", "init", "--advertise-addr", addr]);
        swarm
    }

    /// `docker swarm join` of `worker` through the manager's address; waits
    /// until the manager lists every node as ready.
    pub fn join(&mut self, worker: &'a PrivateEngine) {
        let token = self
            .manager
            .docker(&["swarm", "join-token", "--quiet", "worker"]);
        self.workers.push(worker);
        worker.docker(&[
            "swarm",
            "join",
            "--token",
            &token,
            &format!("{}:2377", self.addr),
        ]);
        let until = Instant::now() + Duration::from_secs(60);
        loop {
            let states =
                self.manager
                    .docker(&["node", "ls", "--format", "{{.Hostname}} {{.Status}}"]);
            let ready = states.lines().filter(|l| l.ends_with(" Ready")).count();
            if ready == 1 + self.workers.len() {
                return;
            }
            assert!(
                Instant::now() < until,
                "not every node became ready within 60 s:\n{states}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The manager, where services are deployed and inspected.
    pub fn manager(&self) -> &PrivateEngine {
        self.manager
    }

    /// Node id by hostname.
    pub fn node_ids(&self) -> BTreeMap<String, String> {
        self.manager
            .docker(&["node", "ls", "--format", "{{.Hostname}} {{.ID}}"])
            .lines()
            .filter_map(|l| l.split_once(' '))
            .map(|(host, id)| (host.to_string(), id.to_string()))
            .collect()
    }
}

impl Drop for Swarm<'_> {
    fn drop(&mut self) {
        // No panic: this may run while a failed test unwinds.
        for engine in self.workers.iter().rev().chain([&self.manager]) {
            let out = std::process::Command::new(super::DOCKER)
                .args(["-H", &engine.url, "swarm", "leave", "--force"])
                .output();
            if let Ok(o) = out {
                if !o.status.success() {
                    eprintln!(
                        "{} could not leave the swarm: {}",
                        engine.name,
                        String::from_utf8_lossy(&o.stderr)
                    );
                }
            }
        }
    }
}
