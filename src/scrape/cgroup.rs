//! A container's cgroup path, as cAdvisor writes it in its `id` label, from
//! what the engine says: its cgroup driver (`GET /info`) and the container's
//! `CgroupParent` (inspect). The same on cgroup v1 and v2: the path under
//! each hierarchy's root.

use crate::engine::quirks::CgroupLayout;

/// The cgroup path of container `id` in the engine's `layout`, e.g.
/// `/docker/<id>` (Docker, cgroupfs), `/system.slice/docker-<id>.scope`
/// (Docker, systemd), `/libpod_parent/libpod-<id>` or
/// `/machine.slice/libpod-<id>.scope` (Podman),
/// `/user.slice/user-<uid>.slice/user@<uid>.service/user.slice/libpod-<id>.scope`
/// (rootless Podman). `parent` is the container's own `CgroupParent`, if it
/// set one; `user` the rootless user ([`Lifecycle::runtime_uid`]).
///
/// [`Lifecycle::runtime_uid`]: crate::scrape::lifecycle::Lifecycle::runtime_uid
pub fn cgroup_id(
    layout: &CgroupLayout,
    driver: Option<&str>,
    parent: Option<&str>,
    user: Option<u32>,
    id: &str,
) -> String {
    let systemd = driver == Some("systemd");
    let parent = parent.map(str::trim).filter(|p| !p.is_empty());
    let prefix = layout.scope_prefix;
    if let (true, true, Some(uid)) = (systemd, layout.rootless_under_user_manager, user) {
        // Its slice is under the user's own systemd manager.
        let slice = expand_slice(parent.unwrap_or("user.slice"));
        return format!(
            "/user.slice/user-{uid}.slice/user@{uid}.service{slice}/{prefix}-{id}.scope"
        );
    }
    if systemd {
        let slice = parent.unwrap_or(layout.systemd_slice);
        format!("{}/{prefix}-{id}.scope", expand_slice(slice))
    } else {
        let parent = parent.unwrap_or(layout.cgroupfs_parent);
        let parent = parent.trim_end_matches('/');
        let sep = if parent.starts_with('/') { "" } else { "/" };
        if layout.cgroupfs_prefixed {
            format!("{sep}{parent}/{prefix}-{id}")
        } else {
            format!("{sep}{parent}/{id}")
        }
    }
}

/// A systemd slice's path: every dash opens a level, as systemd nests
/// `a-b.slice` inside `a.slice`.
fn expand_slice(slice: &str) -> String {
    let Some(name) = slice.strip_suffix(".slice") else {
        // Not a slice name: the engine uses it as a path as it is.
        return format!("/{}", slice.trim_matches('/'));
    };
    if name.is_empty() || name == "-" {
        return String::new();
    }
    let mut path = String::new();
    let mut prefix = String::new();
    for part in name.split('-') {
        if !prefix.is_empty() {
            prefix.push('-');
        }
        prefix.push_str(part);
        path.push('/');
        path.push_str(&prefix);
        path.push_str(".slice");
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "4f1c0de5";

    #[test]
    fn docker_with_cgroupfs() {
        assert_eq!(
            cgroup_id(&CgroupLayout::DOCKER, Some("cgroupfs"), None, None, ID),
            "/docker/4f1c0de5"
        );
        assert_eq!(
            cgroup_id(&CgroupLayout::DOCKER, None, Some(""), None, ID),
            "/docker/4f1c0de5"
        );
        assert_eq!(
            cgroup_id(
                &CgroupLayout::DOCKER,
                Some("cgroupfs"),
                Some("/ci/jobs/"),
                None,
                ID
            ),
            "/ci/jobs/4f1c0de5"
        );
        assert_eq!(
            cgroup_id(
                &CgroupLayout::DOCKER,
                Some("cgroupfs"),
                Some("batch"),
                None,
                ID
            ),
            "/batch/4f1c0de5"
        );
    }

    #[test]
    fn docker_with_systemd() {
        assert_eq!(
            cgroup_id(&CgroupLayout::DOCKER, Some("systemd"), None, None, ID),
            "/system.slice/docker-4f1c0de5.scope"
        );
        assert_eq!(
            cgroup_id(
                &CgroupLayout::DOCKER,
                Some("systemd"),
                Some("ci-jobs.slice"),
                None,
                ID
            ),
            "/ci.slice/ci-jobs.slice/docker-4f1c0de5.scope"
        );
        assert_eq!(
            cgroup_id(
                &CgroupLayout::DOCKER,
                Some("systemd"),
                Some("-.slice"),
                None,
                ID
            ),
            "/docker-4f1c0de5.scope"
        );
    }

    #[test]
    fn podman_layouts() {
        assert_eq!(
            cgroup_id(&CgroupLayout::PODMAN, Some("cgroupfs"), None, None, ID),
            "/libpod_parent/libpod-4f1c0de5"
        );
        assert_eq!(
            cgroup_id(&CgroupLayout::PODMAN, Some("systemd"), None, None, ID),
            "/machine.slice/libpod-4f1c0de5.scope"
        );
    }

    #[test]
    fn rootless_podman_is_under_its_users_manager() {
        // As Podman 5.4's libpod inspect gives `State.CgroupPath`.
        assert_eq!(
            cgroup_id(
                &CgroupLayout::PODMAN,
                Some("systemd"),
                Some("user.slice"),
                Some(1000),
                ID
            ),
            "/user.slice/user-1000.slice/user@1000.service/user.slice/libpod-4f1c0de5.scope"
        );
        assert_eq!(
            cgroup_id(
                &CgroupLayout::PODMAN,
                Some("systemd"),
                Some("app.slice"),
                Some(1000),
                ID
            ),
            "/user.slice/user-1000.slice/user@1000.service/app.slice/libpod-4f1c0de5.scope"
        );
        // Rootful: no user's runtime directory.
        assert_eq!(
            cgroup_id(&CgroupLayout::PODMAN, Some("systemd"), None, None, ID),
            "/machine.slice/libpod-4f1c0de5.scope"
        );
    }
}
