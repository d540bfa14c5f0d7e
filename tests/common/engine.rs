//! The engine the live tests run against, through the docker CLI: one place
//! that says which engine (`DSE_ENGINE_HOST`), containers named after their
//! test, and the test image. A container's cgroup files: common::cgroup.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use docker_stats_exporter::engine::{EngineVersion, Flavor};

/// The docker client that matches the engine installed here.
pub const DOCKER: &str = "/usr/bin/docker";

/// The newest API version [`DOCKER`] speaks (Debian 12's CLI, Docker 20.10).
const DOCKER_API: (u32, u32) = (1, 41);

/// A docker client for engines that refuse [`DOCKER`]'s API version (Docker
/// 28.5 with `DOCKER_MIN_API_VERSION=1.44`, as Engine 29 has it): the
/// machine image's CLI 28.2, or `DSE_NEWER_DOCKER`.
pub const NEWER_DOCKER: &str = "/usr/local/bin/docker";

/// The docker client for the engine at `host`: `$DOCKER` when set, else
/// [`DOCKER`] unless the engine's `/version` says its `MinAPIVersion` is
/// above what that client speaks, then [`NEWER_DOCKER`]. Asked once per
/// engine.
pub fn docker_for(host: &str) -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER") {
        return PathBuf::from(d);
    }
    static CLIENTS: OnceLock<Mutex<HashMap<String, PathBuf>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(|| Mutex::new(HashMap::new()));
    if let Some(c) = clients.lock().expect("clients lock").get(host) {
        return c.clone();
    }
    let client = match host.strip_prefix("unix://").and_then(min_api_version) {
        Some(min) if min > DOCKER_API => {
            let newer = std::env::var("DSE_NEWER_DOCKER").unwrap_or_else(|_| NEWER_DOCKER.into());
            assert!(
                Path::new(&newer).is_file(),
                "the engine at {host} wants API {}.{} at the least, which {DOCKER} does not \
                 speak, and {newer} (a docker CLI of 25 or later; DSE_NEWER_DOCKER names \
                 another) is missing",
                min.0,
                min.1
            );
            PathBuf::from(newer)
        }
        _ => PathBuf::from(DOCKER),
    };
    clients
        .lock()
        .expect("clients lock")
        .insert(host.to_string(), client.clone());
    client
}

/// `MinAPIVersion` of the engine on unix socket `socket`, if it answers.
fn min_api_version(socket: &str) -> Option<(u32, u32)> {
    let out = Command::new("curl")
        .args(["-s", "--max-time", "10", "--unix-socket", socket])
        .arg("http://engine/version")
        .output()
        .ok()?;
    let version: serde_json::Value = serde_json::from_slice(&out.stdout).ok()?;
    let (major, minor) = version.get("MinAPIVersion")?.as_str()?.split_once('.')?;
    Some((major.parse().ok()?, minor.parse().ok()?))
}

/// This machine's own engine. Tests that need it by nature (its socket's
/// file permissions, mounting it into a container) name it; all others use
/// [`engine_host`].
pub const MACHINE_ENGINE: &str = "unix:///var/run/docker.sock";

/// The engine under test: `DSE_ENGINE_HOST` (a `unix://` URL), else
/// [`MACHINE_ENGINE`].
pub fn engine_host() -> &'static str {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::env::var("DSE_ENGINE_HOST")
            .ok()
            .filter(|h| !h.trim().is_empty())
            .unwrap_or_else(|| MACHINE_ENGINE.to_string())
    })
}

/// The socket path of [`engine_host`], for tests that put something between
/// the exporter and the engine.
pub fn engine_socket() -> &'static str {
    engine_host().strip_prefix("unix://").unwrap_or_else(|| {
        panic!(
            "DSE_ENGINE_HOST={} is not a unix:// URL; the live tests need a socket",
            engine_host()
        )
    })
}

/// The docker CLI, talking to [`engine_host`].
pub fn docker_cmd() -> Command {
    let mut cmd = Command::new(docker_for(engine_host()));
    cmd.args(["-H", engine_host()]);
    cmd
}

/// Runs the docker CLI and returns stdout; panics with stderr on failure.
pub fn docker(args: &[&str]) -> String {
    docker_on(engine_host(), args)
}

/// [`docker`] on the engine at `host`.
pub fn docker_on(host: &str, args: &[&str]) -> String {
    let docker = docker_for(host);
    let out = Command::new(&docker)
        .args(["-H", host])
        .args(args)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e}; run scripts/setup-engine.sh",
                docker.display()
            )
        });
    assert!(
        out.status.success(),
        "docker -H {host} {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// The busybox test image, made on the engine under test if it lacks it.
pub fn image() -> &'static str {
    static IMAGE: OnceLock<String> = OnceLock::new();
    IMAGE.get_or_init(|| {
        let image = image_name();
        let present = docker_cmd()
            .args(["image", "inspect", &image])
            .output()
            .map(|o| o.status.success())
            .unwrap_or(false);
        if !present {
            make_image(&image);
        }
        image
    })
}

/// A container's image as the engine's list names it, as the exporter's
/// `image` label does (Podman's is fully qualified, `docker.io/...`, which
/// the docker CLI would shorten).
pub fn listed_image(c: &Container) -> String {
    let list = crate::vm::unix_get(c.host(), "/containers/json?all=true");
    let list: serde_json::Value = serde_json::from_str(&list).expect("the container list");
    let image = (list.as_array().into_iter().flatten())
        .find(|l| l["Id"] == c.id.as_str())
        .and_then(|l| l["Image"].as_str())
        .unwrap_or_else(|| panic!("{} not in the list: {list}", c.id))
        .to_string();
    assert!(image.ends_with(&image_name()), "{image}");
    image
}

/// The name of the busybox test image (scripts/busybox-rootfs.sh), which
/// every engine the tests use gets under this name.
pub fn image_name() -> String {
    std::env::var("DSE_TEST_IMAGE").unwrap_or_else(|_| "dse-test/busybox:latest".into())
}

/// On this machine's engine the setup script also starts the engine and
/// installs what is missing; elsewhere only the image is imported.
fn make_image(image: &str) {
    let scripts = Path::new(crate::ROOT).join("scripts");
    let mut cmd = Command::new("bash");
    if engine_host() == MACHINE_ENGINE {
        cmd.arg(scripts.join("setup-engine.sh"));
    } else {
        cmd.arg(scripts.join("import-test-image.sh"))
            .arg(engine_host());
    }
    let status = cmd
        .env("DSE_TEST_IMAGE", image)
        .env("DOCKER", docker_for(engine_host()))
        .status()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    assert!(status.success(), "{cmd:?} failed");
}

/// `name` made unique to this test process (`dse-web` becomes
/// `dse-PID-web`, `grp` becomes `grp-PID`), for container names and label
/// values: concurrent runs on a shared engine then never select or remove
/// each other's containers. Prefixes stay prefixes (`dse-web` of
/// `dse-web-10`).
pub fn unique(name: &str) -> String {
    let pid = std::process::id();
    match name.strip_prefix("dse-") {
        Some(rest) => format!("dse-{pid}-{rest}"),
        None => format!("{name}-{pid}"),
    }
}

/// A container named after its test; removed when dropped. Give it a
/// [`unique`] name unless the engine is the test's alone.
pub struct Container {
    pub name: String,
    pub id: String,
    /// The engine it runs on.
    host: String,
}

impl Container {
    /// `docker run -d --name NAME [extra...] IMAGE cmd...` on the engine under
    /// test, after removing any leftover of the same name.
    pub fn run(name: &str, extra: &[&str], cmd: &[&str]) -> Self {
        Self::run_on(engine_host(), name, extra, cmd)
    }

    /// [`Container::run`] on the engine at `host`, which has the test image.
    pub fn run_on(host: &str, name: &str, extra: &[&str], cmd: &[&str]) -> Self {
        let mut c = Self {
            name: name.to_string(),
            id: String::new(),
            host: host.to_string(),
        };
        c.remove();
        let image = if host == engine_host() {
            image().to_string()
        } else {
            image_name()
        };
        let mut args = vec!["run", "-d", "--name", name, "--label", "dse.test=1"];
        args.extend_from_slice(extra);
        args.push(&image);
        args.extend_from_slice(cmd);
        c.id = docker_on(host, &args);
        c
    }

    /// The engine it runs on.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// Pauses it. runc on cgroup v1 gives up freezing a cgroup whose
    /// processes keep running through its tries ("unable to freeze", seen on
    /// Docker 20.10 with the machine loaded) and leaves the container
    /// running: asked again until the engine freezes it.
    pub fn pause(&self) {
        let docker = docker_for(&self.host);
        super::wait_until(&format!("{} paused", self.name), super::PATIENCE, || {
            let out = Command::new(&docker)
                .args(["-H", &self.host, "pause", &self.name])
                .output()
                .map_err(|e| format!("{}: {e}", docker.display()))?;
            let err = String::from_utf8_lossy(&out.stderr).into_owned();
            match out.status.success() {
                true => Ok(()),
                false if err.contains("unable to freeze") => Err(err),
                false => panic!("docker -H {} pause {}: {err}", self.host, self.name),
            }
        })
    }

    /// A container that just sleeps.
    pub fn sleeper(name: &str, extra: &[&str]) -> Self {
        Self::run(name, extra, &["sleep", "3600"])
    }

    /// Removes it now, with its anonymous volumes.
    pub fn remove(&self) {
        let _ = Command::new(docker_for(&self.host))
            .args(["-H", &self.host, "rm", "-f", "-v", &self.name])
            .output();
    }

    /// `docker inspect --format FORMAT` of it.
    pub fn inspect(&self, format: &str) -> String {
        docker_on(&self.host, &["inspect", "--format", format, &self.name])
    }

    /// Waits until `docker inspect --format FORMAT` prints `want`.
    pub fn wait_inspect(&self, format: &str, want: &str) {
        super::wait_until(
            &format!("{}: {format} = {want:?}", self.name),
            super::PATIENCE,
            || match self.inspect(format) {
                got if got == want => Ok(()),
                got => Err(got),
            },
        );
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Whether the engine answers stats calls at once rather than at its 1 s
/// collection tick (Docker 25 and later): the exporter then reads a new
/// container twice, and stats calls are not paced by ticks.
pub fn direct_stats() -> bool {
    static DIRECT: OnceLock<bool> = OnceLock::new();
    *DIRECT.get_or_init(|| {
        let version = EngineVersion {
            flavor: engine_flavor(),
            version: docker(&["version", "--format", "{{.Server.Version}}"]),
        };
        version.quirks().direct_stats
    })
}

/// Docker or Podman, as the engine under test names its components in
/// `/version` (Podman's is "Podman Engine").
pub fn engine_flavor() -> Flavor {
    static FLAVOR: OnceLock<Flavor> = OnceLock::new();
    *FLAVOR.get_or_init(|| {
        let names = docker(&[
            "version",
            "--format",
            "{{range .Server.Components}}{{.Name}};{{end}}",
        ]);
        if names.contains("Podman") {
            Flavor::Podman
        } else {
            Flavor::Docker
        }
    })
}

/// Stats calls the exporter makes for a container it has not seen before:
/// two on engines with [`direct_stats`], one otherwise.
pub fn first_round_stats_calls() -> usize {
    if direct_stats() {
        2
    } else {
        1
    }
}

/// Host cores, as the engine counts them.
pub fn host_cpus() -> f64 {
    docker(&["info", "--format", "{{.NCPU}}"])
        .parse()
        .expect("NCPU")
}
