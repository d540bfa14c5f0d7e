//! The exporter's image the way Docker Desktop users run it: the engine in a
//! VM on cgroup v2 (`scripts/cgroup2-vm.sh`, named by `DSE_CGROUP2_HOST`),
//! `docker compose up -d` from the host with compose.yaml's defaults, the
//! container reading the VM's engine through the socket as Desktop hands it
//! to containers (root:root 0660), and `/metrics` asked on the published
//! port from the VM's own network, as a Mac's browser asks localhost:8091.
//!
//! ```sh
//! DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2) cargo test --test deploy desktop_vm
//! ```
//!
//! Without `DSE_CGROUP2_HOST` the test skips, except under `CI=true`, where
//! it fails.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};

use common::cmd::{docker_bin, run, stdout_of, tail};
use common::compose::Project;
use common::exporter_image::{checkout_tag, exporter_image, TEST_TAG};
use common::{
    docker_for, docker_on, image_name, unique, wait_until, Container, Metrics, TempDir, PATIENCE,
};

/// compose.yaml's image when `DSE_IMAGE` is unset.
const COMPOSE_IMAGE: &str = "docker-stats-exporter:latest";
/// compose.yaml's variables: none is set, so each takes its default.
const COMPOSE_VARIABLES: &[&str] = &[
    "DSE_IMAGE",
    "DSE_PORT",
    "DOCKER_SOCKET",
    "DOCKER_GID",
    "DSE_USER",
];

/// The docker CLI on `host`: one that speaks the VM engine's API floor
/// (1.44; Debian 12's CLI speaks 1.41).
fn docker(host: &str) -> Command {
    let mut cmd = Command::new(docker_for(host));
    cmd.args(["-H", host]);
    cmd
}

/// The running containers on `host`: full id and name.
fn running(host: &str) -> BTreeSet<(String, String)> {
    docker_on(
        host,
        &["ps", "--no-trunc", "--format", "{{.ID}} {{.Names}}"],
    )
    .lines()
    .filter_map(|l| l.split_once(' '))
    .map(|(id, name)| (id.to_string(), name.to_string()))
    .collect()
}

/// Copies the image built here from the Dockerfile into the VM's engine
/// under compose.yaml's default name.
fn load_image(host: &str) {
    let image = exporter_image(&checkout_tag(TEST_TAG));
    let mut save = Command::new(docker_bin())
        .args(["save", &image.id])
        .stdout(Stdio::piped())
        .spawn()
        .expect("docker save");
    let load = docker(host)
        .arg("load")
        .stdin(save.stdout.take().expect("save's stdout"))
        .output()
        .expect("docker load");
    assert!(
        save.wait().expect("docker save").success(),
        "docker save failed"
    );
    assert!(
        load.status.success(),
        "docker load into {host}: {}",
        String::from_utf8_lossy(&load.stderr)
    );
    // The VM's containerd image store names what it loaded by its
    // manifest's digest, not by the config's id the machine's engine
    // reports: tag what load says it loaded.
    let out = String::from_utf8_lossy(&load.stdout).into_owned();
    let loaded = out
        .lines()
        .find_map(|l| {
            l.strip_prefix("Loaded image ID: ")
                .or_else(|| l.strip_prefix("Loaded image: "))
        })
        .unwrap_or_else(|| panic!("docker load into {host} named no image: {out}"))
        .trim()
        .to_string();
    run(docker(host).args(["tag", &loaded, COMPOSE_IMAGE]));
}

#[test]
fn compose_up_in_a_cgroup_v2_vm_exports_every_running_container() {
    let Some(host) = common::vm::cgroup2_host() else {
        return;
    };
    let info = docker_on(
        &host,
        &["info", "--format", "{{.CgroupVersion}} {{.CgroupDriver}}"],
    );
    assert_eq!(info, "2 systemd", "{host} is not a cgroup v2 engine");
    // The socket as Desktop hands it to containers.
    let image = image_name();
    let socket = docker_on(
        &host,
        &[
            "run",
            "--rm",
            "--network",
            "none",
            "-v",
            "/var/run/docker.sock:/s:ro",
            &image,
            "busybox",
            "stat",
            "-L",
            "-c",
            "%u:%g %a",
            "/s",
        ],
    );
    assert_eq!(socket, "0:0 660", "the VM's socket as containers see it");
    load_image(&host);
    // Containers for it to find: one with a memory limit, one without.
    let limited = Container::run_on(
        &host,
        &unique("dse-desktop-limited"),
        &["--memory", "32m"],
        &["sleep", "3600"],
    );
    let plain = Container::run_on(&host, &unique("dse-desktop-plain"), &[], &["sleep", "3600"]);

    // `docker compose up -d`, nothing set: compose.yaml's defaults (an
    // empty env file in place of a .env a checkout may have).
    let dir = TempDir::new("desktop-vm");
    let env_file = dir.0.join("empty.env");
    std::fs::write(&env_file, "").expect("empty env file");
    // docker-compose 1.29 asks for API 1.38 unless told: "auto" takes the
    // engine's own version, above the VM's floor of 1.44.
    let project = Project::new(
        "desktopvm",
        &host,
        vec![("COMPOSE_API_VERSION".into(), "auto".into())],
    );
    let env_file = env_file.display().to_string();
    let mut up = project.cmd(&["--env-file", &env_file, "up", "-d", "--no-build"]);
    for var in COMPOSE_VARIABLES {
        up.env_remove(var);
    }
    run(&mut up);
    let id = stdout_of(&mut project.cmd(&["ps", "-q", "stats-exporter"]));
    let inspect = |format: &str| docker_on(&host, &["inspect", "--format", format, &id]);
    assert_eq!(inspect("{{.Config.User}}"), "65532:65532");
    assert_eq!(inspect("{{json .HostConfig.GroupAdd}}"), r#"["0"]"#);
    assert_eq!(inspect("{{.Config.Image}}"), COMPOSE_IMAGE);
    wait_until(
        "the image's health check to pass in the VM",
        PATIENCE,
        || match inspect("{{.State.Health.Status}}") {
            s if s == "healthy" => Ok(()),
            s => Err(format!("{s}\n{}", tail(&project.logs(), 20))),
        },
    );

    // /metrics on the published port, from the VM's own network; every
    // container running before and after the scrape is in the answer, with
    // its cgroup v2 path as the id, and nothing else is.
    let wget = unique("dse-desktop-wget");
    let (body, before, after) = wait_until("a complete answer on :8091", PATIENCE, || {
        let before = running(&host);
        let out = docker(&host)
            .args(["run", "--rm", "--name", &wget, "--network", "host", &image])
            .args(["wget", "-q", "-O", "-", "http://127.0.0.1:8091/metrics"])
            .output()
            .map_err(|e| e.to_string())?;
        let after = running(&host);
        let body = String::from_utf8_lossy(&out.stdout).into_owned();
        match body.lines().any(|l| l == "docker_up 1") {
            true => Ok((body, before, after)),
            false => Err(format!(
                "{}{}\n{}",
                tail(&body, 20),
                String::from_utf8_lossy(&out.stderr),
                tail(&project.logs(), 20)
            )),
        }
    });
    let m = Metrics::parse(&body);
    let exported: BTreeSet<String> = m
        .names("container_memory_usage_bytes")
        .into_iter()
        .collect();
    for (id, name) in before.intersection(&after) {
        assert!(
            exported.contains(name),
            "{name} ran throughout, but is not in the answer:\n{}",
            tail(&body, 40)
        );
        assert_eq!(
            m.label("container_memory_usage_bytes", name, "id"),
            Some(format!("/system.slice/docker-{id}.scope")),
            "{name}'s id label"
        );
    }
    let known: BTreeSet<&String> = before.union(&after).map(|(_, name)| name).collect();
    for name in &exported {
        // The one-off wget container runs only during the scrape.
        assert!(
            known.contains(name) || *name == wget,
            "{name} is in the answer but was not running"
        );
    }
    let own = inspect("{{.Name}}");
    for name in [own.trim_start_matches('/'), &limited.name, &plain.name] {
        assert!(exported.contains(name), "{name} is not in the answer");
    }
    assert_eq!(
        m.get("container_memory_limit_bytes", &limited.name),
        Some(33_554_432.0)
    );
    assert_eq!(
        m.get("container_spec_memory_limit_bytes", &plain.name),
        Some(0.0)
    );
    eprintln!(
        "the exporter in the VM exported {} containers: {exported:?}",
        exported.len()
    );
}
