//! Why the engine's unix socket refuses this process, and the one change that
//! fixes it. Connecting to a unix socket needs write permission on it, so the
//! socket's owner, group and mode against the process's uid and groups say
//! whether a group (`--group-add`), the socket's owner (root), or something
//! outside the mode (a directory, SELinux) is in the way.

use std::io;
use std::path::Path;

/// Owner and mode of the socket file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketOwner {
    /// Owning user id.
    pub uid: u32,
    /// Owning group id.
    pub gid: u32,
    /// Mode bits (`st_mode`; only the permission bits are read).
    pub mode: u32,
}

/// Who this process is, for permission checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Effective user id.
    pub uid: u32,
    /// Effective group id.
    pub gid: u32,
    /// Supplementary group ids.
    pub groups: Vec<u32>,
}

impl Identity {
    fn in_group(&self, gid: u32) -> bool {
        self.gid == gid || self.groups.contains(&gid)
    }

    /// `65532, 0`: the primary group first, then the others.
    fn group_list(&self) -> String {
        let mut all = vec![self.gid];
        all.extend(self.groups.iter().filter(|g| **g != self.gid));
        all.iter()
            .map(u32::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// Reads the `Uid:`, `Gid:` and `Groups:` lines of `/proc/<pid>/status`.
    pub fn from_proc_status(text: &str) -> Option<Self> {
        let line = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(key))
                .map(|rest| rest.split_whitespace().collect::<Vec<_>>())
        };
        // Real, effective, saved, filesystem: permission checks use the
        // effective one (the filesystem one follows it).
        let effective = |key: &str| line(key)?.get(1)?.parse::<u32>().ok();
        let groups = line("Groups:")?
            .iter()
            .map(|g| g.parse::<u32>().ok())
            .collect::<Option<Vec<_>>>()?;
        Some(Self {
            uid: effective("Uid:")?,
            gid: effective("Gid:")?,
            groups,
        })
    }
}

const WRITE: u32 = 0o2;

/// What refused `me` the socket at `path` and what to change, or `None` when
/// `err` is not a permission error.
pub fn diagnose(
    path: &Path,
    socket: &SocketOwner,
    me: &Identity,
    err: &io::Error,
) -> Option<String> {
    if err.kind() != io::ErrorKind::PermissionDenied {
        return None;
    }
    let SocketOwner { uid, gid, mode } = *socket;
    let (relation, bits) = if me.uid == uid {
        ("is its owner", (mode >> 6) & 7)
    } else if me.in_group(gid) {
        ("is in its group", (mode >> 3) & 7)
    } else {
        ("is neither its owner nor in its group", mode & 7)
    };
    let facts = format!(
        "{} is {uid}:{gid} mode {:04o}, and the exporter (uid {}, groups {}) {relation}",
        path.display(),
        mode & 0o7777,
        me.uid,
        me.group_list()
    );
    let owner_only = "connecting needs write permission, which the mode gives only the owner";
    let group_may = (mode >> 3) & WRITE != 0;
    let owner_may = (mode >> 6) & WRITE != 0;
    let message = if bits & WRITE != 0 {
        format!(
            "{facts}, which the mode allows: a directory on the way to the socket or a \
             security module (SELinux, AppArmor) refuses the connection; for SELinux in a \
             container, --security-opt label=disable"
        )
    } else if me.uid != uid && !me.in_group(gid) && group_may {
        format!(
            "{facts}: add the socket's group, `--group-add {gid}` (docker run) or \
             `DOCKER_GID={gid}` (compose.yaml); on the host, run it as a member of group {gid}"
        )
    } else if me.uid != uid && owner_may && uid == 0 {
        let desktop = if gid == 0 {
            "; Docker Desktop 4.19 and 4.20 hand containers this socket (later releases \
             make it 0660, open to group 0)"
        } else {
            ""
        };
        format!(
            "{facts}: {owner_only}: run as root (user: \"0\"), `--user 0` (docker run) or \
             `DSE_USER=0` (compose.yaml){desktop}"
        )
    } else if me.uid != uid && owner_may {
        format!("{facts}: {owner_only}: run as uid {uid} (`--user {uid}`)")
    } else {
        format!(
            "{facts}: connecting needs write permission, which the mode does not give {}: \
             make the socket writable for its group (chmod g+w) and add that group",
            if me.uid == uid {
                "the owner"
            } else {
                "this process"
            }
        )
    };
    Some(message)
}

/// The fix to put in front of an engine error, when `err` is a refused
/// connection to the unix socket of `host`.
pub fn advice(host: &str, err: &io::Error) -> Option<String> {
    if err.kind() != io::ErrorKind::PermissionDenied {
        return None;
    }
    let path = Path::new(host.strip_prefix("unix://")?);
    facts(path).and_then(|(socket, me)| diagnose(path, &socket, &me, err))
}

/// The socket's owner and mode, and this process's identity; `None` where
/// either cannot be read (no `/proc`).
#[cfg(unix)]
fn facts(path: &Path) -> Option<(SocketOwner, Identity)> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let socket = SocketOwner {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode(),
    };
    Some((socket, Identity::from_proc_status(&status)?))
}

#[cfg(not(unix))]
fn facts(_path: &Path) -> Option<(SocketOwner, Identity)> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn denied() -> io::Error {
        io::Error::from(io::ErrorKind::PermissionDenied)
    }

    fn nobody(groups: &[u32]) -> Identity {
        Identity {
            uid: 65532,
            gid: 65532,
            groups: groups.to_vec(),
        }
    }

    fn say(uid: u32, gid: u32, mode: u32, me: &Identity) -> String {
        let socket = SocketOwner {
            uid,
            gid,
            mode: 0o140000 | mode,
        };
        diagnose(Path::new("/var/run/docker.sock"), &socket, me, &denied()).unwrap()
    }

    #[test]
    fn group_readable_socket_names_the_group_to_add() {
        let m = say(0, 999, 0o660, &nobody(&[]));
        assert!(m.contains("`--group-add 999`"), "{m}");
        assert!(m.contains("`DOCKER_GID=999`"), "{m}");
        assert!(m.contains("/var/run/docker.sock is 0:999 mode 0660"), "{m}");
        assert!(
            m.contains("the exporter (uid 65532, groups 65532) is neither"),
            "{m}"
        );
        // Docker Desktop's socket as containers see it in most releases.
        let m = say(0, 0, 0o660, &nobody(&[]));
        assert!(
            m.contains("`--group-add 0`") && m.contains("DOCKER_GID=0"),
            "{m}"
        );
        // In another group than the socket's.
        let m = say(0, 999, 0o660, &nobody(&[0, 100]));
        assert!(m.contains("(uid 65532, groups 65532, 0, 100)"), "{m}");
        assert!(m.contains("--group-add 999"), "{m}");
    }

    #[test]
    fn owner_only_socket_says_run_as_root() {
        // Docker Desktop 4.19 and 4.20: root:root 0755.
        let m = say(0, 0, 0o755, &nobody(&[0]));
        assert!(m.contains("run as root (user: \"0\")"), "{m}");
        assert!(
            m.contains("`--user 0`") && m.contains("`DSE_USER=0`"),
            "{m}"
        );
        assert!(m.contains("Docker Desktop 4.19 and 4.20"), "{m}");
        assert!(!m.contains("--group-add"), "{m}");
        let m = say(0, 999, 0o600, &nobody(&[]));
        assert!(m.contains("run as root"), "{m}");
        assert!(!m.contains("Docker Desktop"), "{m}");
        let m = say(1000, 1000, 0o700, &nobody(&[]));
        assert!(m.contains("run as uid 1000 (`--user 1000`)"), "{m}");
    }

    #[test]
    fn mode_that_allows_the_process_points_elsewhere() {
        let m = say(0, 999, 0o660, &nobody(&[999]));
        assert!(m.contains("is in its group, which the mode allows"), "{m}");
        assert!(m.contains("SELinux"), "{m}");
        let m = say(0, 0, 0o666, &nobody(&[]));
        assert!(m.contains("which the mode allows"), "{m}");
        let me = Identity {
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        let m = say(0, 0, 0o755, &me);
        assert!(m.contains("is its owner, which the mode allows"), "{m}");
    }

    #[test]
    fn mode_without_any_write_bit() {
        let m = say(0, 999, 0o444, &nobody(&[]));
        assert!(m.contains("chmod g+w"), "{m}");
        let me = Identity {
            uid: 0,
            gid: 0,
            groups: vec![],
        };
        let m = say(0, 0, 0o555, &me);
        assert!(m.contains("does not give the owner"), "{m}");
    }

    #[test]
    fn other_errors_get_no_diagnosis() {
        let socket = SocketOwner {
            uid: 0,
            gid: 999,
            mode: 0o660,
        };
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            diagnose(Path::new("/s"), &socket, &nobody(&[]), &refused),
            None
        );
        assert_eq!(advice("tcp://127.0.0.1:1", &denied()), None);
        assert_eq!(advice("unix:///nonexistent/e.sock", &refused), None);
    }

    #[test]
    fn proc_status_lines() {
        let text = "Name:\tx\nUid:\t1000\t65534\t65534\t65534\nGid:\t1000\t65533\t65533\t65533\n\
                    FDSize:\t64\nGroups:\t4 24 999 \n";
        assert_eq!(
            Identity::from_proc_status(text),
            Some(Identity {
                uid: 65534,
                gid: 65533,
                groups: vec![4, 24, 999]
            })
        );
        let none = "Uid:\t0\t0\t0\t0\nGid:\t0\t0\t0\t0\nGroups:\t\n";
        assert!(Identity::from_proc_status(none).unwrap().groups.is_empty());
        assert_eq!(Identity::from_proc_status("Uid:\t0\n"), None);
    }

    #[test]
    fn advice_names_the_socket_and_the_fix() {
        // A socket this test owns; the owner and mode are read from it.
        let dir = std::env::temp_dir().join(format!("dse-sockacc-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("e.sock");
        let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let text = advice(&format!("unix://{}", path.display()), &denied());
        let _ = std::fs::remove_dir_all(&dir);
        let text = text.expect("advice for a refused unix socket");
        assert!(
            text.starts_with(&format!("{} is ", path.display())),
            "{text}"
        );
    }
}
