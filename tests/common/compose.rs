//! Docker Compose as a user runs the repository's compose.yaml, on the engine
//! a test names: `DSE_COMPOSE` (e.g. "docker compose"), else docker-compose.

use std::path::Path;
use std::process::{Command, Stdio};

use super::cmd::{docker_bin, require_tool};

/// The Compose command in the repository's root, talking to `host`.
pub fn compose(host: &str) -> Command {
    let spec = std::env::var("DSE_COMPOSE").unwrap_or_else(|_| "docker-compose".into());
    let mut words = spec.split_whitespace();
    let program = words.next().unwrap_or("docker-compose");
    let program = if program == "docker" {
        docker_bin()
    } else {
        require_tool(
            program,
            "install Docker Compose (Debian: apt-get install docker-compose) or set DSE_COMPOSE",
        )
    };
    let mut cmd = Command::new(program);
    cmd.args(words);
    cmd.current_dir(Path::new(crate::ROOT));
    cmd.env("DOCKER_HOST", host);
    cmd
}

/// A Compose project of compose.yaml named after its test, taken down
/// (containers, networks, volumes) when dropped.
pub struct Project {
    /// The project name.
    pub name: String,
    host: String,
    env: Vec<(String, String)>,
}

impl Project {
    /// The project for `test` on engine `host`, with the settings `env`
    /// (compose.yaml's variables); anything a run before left is taken down.
    pub fn new(test: &str, host: &str, env: Vec<(String, String)>) -> Self {
        // The process id keeps two concurrent runs of one test apart.
        let name = format!("dse{}{}", test.replace(['_', '-'], ""), std::process::id());
        let project = Project {
            name,
            host: host.to_string(),
            env,
        };
        let _ = project.cmd(&["down", "-v", "--remove-orphans"]).output();
        project
    }

    /// The same project with other settings.
    pub fn with_env(&self, env: Vec<(String, String)>) -> Self {
        Project {
            name: self.name.clone(),
            host: self.host.clone(),
            env,
        }
    }

    /// `compose -f compose.yaml -p NAME args...` with the project's settings.
    pub fn cmd(&self, args: &[&str]) -> Command {
        let mut c = compose(&self.host);
        c.args(["-f", "compose.yaml", "-p", &self.name]).args(args);
        for (k, v) in &self.env {
            c.env(k, v);
        }
        c.stdin(Stdio::null());
        c
    }

    /// Its services' last log lines, for messages.
    pub fn logs(&self) -> String {
        self.cmd(&["logs", "--tail", "50"])
            .output()
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let _ = self.cmd(&["down", "-v", "--remove-orphans"]).output();
    }
}
