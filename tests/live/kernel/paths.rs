//! The `id` label: the container's cgroup path as the kernel of the
//! engine's machine names it, on cgroupfs (`/docker/<id>`) and systemd
//! (`/system.slice/docker-<id>.scope`) drivers.

use common::cgroup::{engine_cgroups, id_label, Cgroups, Driver};
use common::engine::engine_flavor;
use common::{names_config, unique, Container, Exporter};
use docker_stats_exporter::engine::Flavor;

/// The `id` label is the container's cgroup path as cAdvisor writes it: the
/// kernel's own path of the container's main process, whose cgroup holds it,
/// with the default parent and with `--cgroup-parent` (a directory of the
/// test's own on cgroupfs, a nested slice on systemd).
#[tokio::test(flavor = "multi_thread")]
async fn id_label_is_the_containers_real_cgroup_path() {
    let cgroups = Cgroups::of_engine("id");
    let driver = engine_cgroups().1;
    let plain = Container::sleeper(&unique("dse-cgroup-plain"), &[]);
    let parent = match driver {
        Driver::Cgroupfs => format!("/{}", unique("dse-cgroup-parent")),
        // Each dash opens a level: dse.slice/dse-PID.slice/...
        Driver::Systemd => format!("{}.slice", unique("dse-cgroup-parent")),
    };
    let _parent_dirs = CgroupDirs(parent.clone());
    let nested = Container::sleeper(&unique("dse-cgroup-nested"), &["--cgroup-parent", &parent]);
    let exporter = Exporter::local(&names_config(
        &[&plain.name, &nested.name],
        common::SLOW_ENGINE,
    ))
    .await;
    let m = exporter.whole_metrics().await;
    for c in [&plain, &nested] {
        let id = m
            .label("container_memory_usage_bytes", &c.name, "id")
            .unwrap_or_else(|| panic!("no series for {}", c.name));
        // `of` takes the kernel's cgroup of its main process (on Podman
        // the scope its API names, holding that process's cgroup).
        let cgroup = cgroups.of(c);
        assert_eq!(id, cgroup.path(), "the kernel's cgroup of {}", c.name);
        if engine_flavor() == Flavor::Docker {
            let pid = c.inspect("{{.State.Pid}}");
            let procs = cgroups.read_now(&cgroup).procs();
            assert!(procs.contains(&pid), "{pid} not in {id}: {procs:?}");
        }
    }
    let nested_id = m
        .label("container_memory_usage_bytes", &nested.name, "id")
        .unwrap_or_default();
    // A rootless Podman's slices are its user manager's, below
    // user@UID.service.
    let scope = match engine_flavor() {
        Flavor::Docker => "docker",
        Flavor::Podman => "libpod",
    };
    match driver {
        Driver::Cgroupfs => assert_eq!(nested_id, format!("{parent}/{}", nested.id)),
        Driver::Systemd => assert!(
            nested_id.ends_with(&format!("/{parent}/{scope}-{}.scope", nested.id))
                && (nested_id.starts_with("/dse.slice/")
                    || nested_id.contains(".service/dse.slice/")),
            "{nested_id}"
        ),
    }
    // Every series of the container carries the same id and its image as
    // the engine's list names it.
    let plain_id = id_label(&plain);
    let image = common::listed_image(&plain);
    for s in
        m.0.iter()
            .filter(|s| s.labels.get("name") == Some(&plain.name))
    {
        assert_eq!(s.labels["id"], plain_id, "{s:?}");
        assert_eq!(s.labels["image"], image, "{s:?}");
    }
}

/// Removes the cgroup directories a `--cgroup-parent` made on this
/// machine's cgroupfs engines, once the containers in them are gone
/// (declared before them, so dropped after). A slice of a systemd engine is
/// a unit of that machine's systemd, left to it.
struct CgroupDirs(String);

impl Drop for CgroupDirs {
    fn drop(&mut self) {
        if !self.0.starts_with('/') {
            return;
        }
        if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in hierarchies.flatten() {
                let _ = std::fs::remove_dir(h.path().join(self.0.trim_start_matches('/')));
            }
        }
    }
}
