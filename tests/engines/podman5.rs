//! Podman 5 on cgroup v2, as Fedora, RHEL and Debian 13 ship it: the VM of
//! `scripts/cgroup2-vm.sh` (named by `DSE_CGROUP2_HOST`) serves Podman 5.4's
//! Docker-compatible API as root, for a rootless user with Fedora's cgroup
//! delegation, and for one without the cpu and io controllers. On each, the
//! exporter's series for a container agree with what Podman's own API
//! (`/libpod`) says of it: its cgroup, its limits. The live suite's kernel
//! part runs on the rootless one too (`scripts/test`), against the cgroup
//! files.
//!
//! ```sh
//! DSE_CGROUP2_HOST=$(scripts/cgroup2-vm.sh start cg2) cargo test --test engines podman5
//! ```

use std::process::Command;

use common::cgroup::podman_cgroup_path;
use common::child::ChildServer;
use common::vm::{cgroup2_host, podman_host, unix_get};
use common::{
    docker_for, get, names_config, unique, wait_until_async, Container, Exporter, PATIENCE,
};

const MIB_64: f64 = 67_108_864.0;

/// The busybox test image on the engine at `host`, imported if missing.
fn ensure_image(host: &str) {
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/import-test-image.sh");
    let status = Command::new("bash")
        .args([script, host])
        .env("DOCKER", docker_for(host))
        .status()
        .unwrap();
    assert!(status.success(), "importing the test image on {host}");
}

/// A JSON field at `path` of Podman's own answer to `GET url`.
fn libpod(host: &str, url: &str, path: &[&str]) -> serde_json::Value {
    let body = unix_get(host, url);
    let mut v: serde_json::Value =
        serde_json::from_str(&body).unwrap_or_else(|e| panic!("{url}: {e}: {body}"));
    for key in path {
        v = v[*key].take();
    }
    v
}

/// Runs a container with a 64 MiB limit (and half a CPU where the cpu
/// controller is there) on the VM's Podman socket `file`, and checks the
/// exporter's view of it against Podman's; then that the exporter binary
/// logs the controllers its user lacks (`lacks`, as the warning lists them)
/// once, or says nothing of them.
async fn container_matches_podmans_own_view(
    file: &str,
    extra: &[&str],
    rootless: bool,
    lacks: Option<&str>,
) {
    let Some(vm) = cgroup2_host() else { return };
    let host = podman_host(&vm, file);
    let version = libpod(&host, "/v5.0.0/libpod/version", &["Version"]);
    assert!(
        version.as_str().is_some_and(|v| v.starts_with("5.")),
        "{file}: Podman {version}"
    );
    let info_rootless = libpod(
        &host,
        "/v5.0.0/libpod/info",
        &["host", "security", "rootless"],
    );
    assert_eq!(info_rootless, serde_json::Value::Bool(rootless), "{file}");
    ensure_image(&host);
    let mut args = vec!["--memory", "64m"];
    args.extend_from_slice(extra);
    // A little CPU, then asleep: a counter that moved, a VM left quiet.
    let c = Container::run_on(
        &host,
        &unique("dse-pm5"),
        &args,
        &[
            "sh",
            "-c",
            "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 3600",
        ],
    );
    let cgroup = &podman_cgroup_path(&c);
    let exporter = Exporter::start(&names_config(&[&c.name], ""), &host).await;
    // Podman's /version and /info take seconds in the VM: until they have
    // answered, the exporter takes the engine for a Docker of its own.
    let m = wait_until_async("the container's id and CPU counter", PATIENCE, || async {
        let m = exporter.metrics().await;
        let id = m.label("container_memory_usage_bytes", &c.name, "id");
        match m.get("container_cpu_usage_seconds_total", &c.name) {
            Some(s) if s > 0.0 && id.as_deref() == Some(cgroup) => Ok(m),
            other => Err(format!("id {id:?} (Podman's {cgroup}), CPU {other:?}")),
        }
    })
    .await;
    assert_eq!(
        m.get("container_memory_limit_bytes", &c.name),
        Some(MIB_64),
        "{file}"
    );
    assert_eq!(
        m.get("container_spec_memory_limit_bytes", &c.name),
        Some(MIB_64),
        "{file}"
    );
    if extra.contains(&"--cpus") {
        let quota = m.get("container_spec_cpu_quota", &c.name);
        assert_eq!(quota, Some(50_000.0), "{file}: half a CPU");
    }
    let usage = m
        .get("container_memory_usage_bytes", &c.name)
        .unwrap_or(0.0);
    assert!(
        usage > 0.0 && usage <= MIB_64,
        "{file}: memory usage {usage}"
    );
    delegation_is_said_once(&host, file, lacks).await;
}

/// The exporter binary on `host`, scraped until it has the engine's
/// `/info` (its `machine_memory_bytes`) and twice more: its log names the
/// controllers in `lacks` once, with the fix, or none at all.
async fn delegation_is_said_once(host: &str, file: &str, lacks: Option<&str>) {
    let child = ChildServer::exporter(&["--docker-host", host]);
    wait_until_async("the engine's /info", PATIENCE, || async {
        let (status, body) = get(child.addr, "/metrics", &[]).await;
        if status == 200 && body.contains("\nmachine_memory_bytes ") {
            Ok(())
        } else {
            Err(format!("{status}: no machine_memory_bytes"))
        }
    })
    .await;
    for _ in 0..2 {
        get(child.addr, "/metrics", &[]).await;
    }
    let logs = child.logs();
    let fix = "Delegate=cpu cpuset io memory pids";
    match lacks {
        Some(controllers) => {
            let said: Vec<&str> = logs.lines().filter(|l| l.contains(fix)).collect();
            assert_eq!(said.len(), 1, "{file}: said once:\n{logs}");
            let want = format!("lack the cgroup controllers {controllers} (");
            assert!(said[0].contains(&want), "{file}: {want}\n{}", said[0]);
        }
        None => assert!(!logs.contains(fix), "{file}: said of nothing:\n{logs}"),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn podman5_rootful_container_matches_podmans_own_view() {
    container_matches_podmans_own_view("podman.sock", &["--cpus", "0.5"], false, None).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn podman5_rootless_container_is_under_its_users_manager() {
    container_matches_podmans_own_view("podman-rootless.sock", &["--cpus", "0.5"], true, None)
        .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn podman5_rootless_without_cpu_delegation_reports_and_says_why_once() {
    container_matches_podmans_own_view("podman-nodelegate.sock", &[], true, Some("cpu, io")).await;
}
