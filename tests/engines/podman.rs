//! The core checks against Podman's Docker-compatible API, a second real
//! engine: `scripts/setup-podman.sh` installs Podman and starts its service
//! on its own socket, next to Docker.

#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::sync::OnceLock;

use common::cgroup::{Cgroups, Window};
use common::proxy::Proxy;
use common::{host_cpus, names_config, unique, Exporter, TempDir};

/// The service's `unix://` URL, set up once per test binary.
fn podman_url() -> &'static str {
    static URL: OnceLock<String> = OnceLock::new();
    URL.get_or_init(|| {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/setup-podman.sh");
        let out = Command::new("bash").arg(script).output().unwrap();
        assert!(
            out.status.success(),
            "scripts/setup-podman.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let url = stdout.lines().last().unwrap_or("").trim().to_string();
        assert!(url.starts_with("unix://"), "no socket URL in {stdout:?}");
        url
    })
}

fn podman(args: &[&str]) -> String {
    podman_url();
    let out = Command::new("podman")
        .args(args)
        // The service's own settings (OCI runtime, rlimits that work here).
        .env("CONTAINERS_CONF", "/run/dse-podman/containers.conf")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "podman {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A Podman container named after its test; removed when dropped.
struct Pod {
    name: String,
    id: String,
}

impl Pod {
    fn run(name: &str, extra: &[&str], cmd: &[&str]) -> Self {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", name])
            .output();
        let mut args = vec![
            "run",
            "-d",
            "--name",
            name,
            "--ulimit",
            "nofile=1024:1024",
            "--ulimit",
            "nproc=1024:1024",
        ];
        args.extend_from_slice(extra);
        args.push("localhost/dse-test/busybox:latest");
        args.extend_from_slice(cmd);
        let id = podman(&args);
        Self {
            name: name.to_string(),
            id,
        }
    }

    fn remove(&self) {
        let _ = Command::new("podman")
            .args(["rm", "-f", "-t", "0", &self.name])
            .output();
    }
}

impl Drop for Pod {
    fn drop(&mut self) {
        self.remove();
    }
}

fn socket_path(url: &str) -> &str {
    url.trim_start_matches("unix://")
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_cpu_memory_and_selection() {
    let sel = format!("dse.pm={}", unique("sel"));
    let burner = Pod::run(
        &unique("dse-pm-burner"),
        &["--cpus", "0.5", "--memory", "64m"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let idle = Pod::run(
        &unique("dse-pm-idle"),
        &["--memory", "32m", "--label", &sel],
        &["sleep", "3600"],
    );
    let _other = Pod::run(&unique("dse-pm-other"), &[], &["sleep", "3600"]);
    // A first window of a second, as the Docker tests have.
    let exporter = Exporter::start(
        &format!(
            "cpu_percent_min_window = \"1s\"\n[containers]\nnames = [\"{}\"]\nlabels = [\"{sel}\"]\n",
            burner.name
        ),
        podman_url(),
    )
    .await;

    // Podman's containers live in this machine's cgroups.
    let cgroups = Cgroups::here();
    let cgroup = cgroups
        .of_pid(&podman(&[
            "inspect",
            "--format",
            "{{.State.Pid}}",
            &burner.name,
        ]))
        .unwrap_or_else(|e| panic!("the burner's cgroup: {e}"));
    // Podman's percent is over wall time and the CPUs (its system counter
    // counts only busy time).
    let trace = cgroups.trace_cpu(&cgroup).over_wall_time(host_cpus());
    let scrape = trace.scrape(&exporter).await;
    let first = &scrape.metrics;
    assert_eq!(first.value("docker_up", &[]), Some(1.0));
    assert_eq!(
        first.names("container_memory_usage_bytes"),
        vec![burner.name.clone(), idle.name.clone()]
    );
    assert_eq!(
        first.get("container_memory_limit_bytes", &burner.name),
        Some(67_108_864.0)
    );
    assert_eq!(
        first.get("container_memory_limit_bytes", &idle.name),
        Some(33_554_432.0)
    );
    assert!(first
        .get("container_cpu_usage_seconds_total", &burner.name)
        .is_some());
    // The id label is the container's cgroup in Podman's own layout.
    let id = first
        .label("container_memory_usage_bytes", &burner.name, "id")
        .expect("an id label");
    assert_eq!(id, cgroup.path(), "the kernel's cgroup of the burner");
    assert!(id.contains(&burner.id), "{id}");
    // Podman zeroes precpu_stats; the exporter reads a new container twice,
    // cpu_percent_min_window apart, so the first scrape has a percent too, over
    // a window of about a second within the scrape.
    let within_the_call = Window::Together {
        starts: scrape.span(),
        min_len: 0.75,
    };
    trace.assert_percent("first scrape", &scrape, &burner.name, &[within_the_call]);

    // From the second scrape on, the window from the first scrape's reading
    // to this one's: long enough for a CPU-second of the burner (a busy host
    // only makes it longer).
    trace.wait_for_cpu(&scrape.after, 1.0);
    let second = trace.scrape(&exporter).await;
    let since_the_first = Window::FromScrape {
        base: scrape.span(),
    };
    trace.assert_percent("second scrape", &second, &burner.name, &[since_the_first]);
}

#[tokio::test(flavor = "multi_thread")]
async fn podman_container_removed_mid_scrape_is_left_out_and_only_gets_are_sent() {
    let doomed = Pod::run(&unique("dse-pm-doomed"), &[], &["sleep", "3600"]);
    let survivor = Pod::run(&unique("dse-pm-survivor"), &[], &["sleep", "3600"]);
    let dir = TempDir::new("podman-gone");
    let proxy = Proxy::start(&dir.0.join("e.sock"), socket_path(podman_url()));
    // Podman answers stats at once; hold the doomed one's so the removal
    // lands between list and stats.
    let stats = format!("/containers/{}/stats", doomed.id);
    let gate = proxy.hold(&stats);
    let exporter = Exporter::start(
        &names_config(&[&doomed.name, &survivor.name], ""),
        &proxy.url(),
    )
    .await;
    let scrape = exporter.scrape_in_background();
    proxy.wait_for_request(&stats).await;
    doomed.remove();
    gate.open();
    let (status, body) = scrape.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let m = common::Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[]), Some(1.0));
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![survivor.name.clone()]
    );
    // Mid-removal Podman may answer 404 (gone) or fail the call (engine).
    let left_out = ["gone", "engine"]
        .iter()
        .map(|k| {
            m.value("docker_stats_scrape_errors_total", &[("kind", k)])
                .unwrap()
        })
        .sum::<f64>();
    assert_eq!(left_out, 1.0, "{body}");
    for s in proxy.seen() {
        assert_eq!(s.method, "GET", "{s:?}");
    }
}
