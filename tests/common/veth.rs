//! A veth pair between two network namespaces the test made (its private
//! engines' namespaces), with an address on each end: a wire between two
//! "hosts" that never touches the host's own namespace.

use std::process::Command;

use super::cmd::run;

/// One end: its namespace, interface name and address with prefix length.
pub struct End<'a> {
    pub netns: &'a str,
    pub name: &'a str,
    pub cidr: &'a str,
}

/// The pair; deleted when dropped (deleting one end deletes both).
pub struct Veth {
    netns: String,
    name: String,
}

impl Veth {
    /// Creates the pair straight inside both namespaces, after deleting a
    /// leftover of the same name there, and brings both ends up.
    pub fn connect(a: &End, b: &End) -> Self {
        for end in [a, b] {
            let _ = ip(end.netns).args(["link", "del", end.name]).output();
        }
        run(Command::new("ip").args([
            "link", "add", a.name, "netns", a.netns, "type", "veth", "peer", "name", b.name,
            "netns", b.netns,
        ]));
        let veth = Veth {
            netns: a.netns.to_string(),
            name: a.name.to_string(),
        };
        for end in [a, b] {
            run(ip(end.netns).args(["addr", "add", end.cidr, "dev", end.name]));
            run(ip(end.netns).args(["link", "set", end.name, "up"]));
        }
        veth
    }
}

impl Drop for Veth {
    fn drop(&mut self) {
        // No panic: this may run while a failed test unwinds, and the
        // namespace may already be gone with its engine.
        let _ = ip(&self.netns).args(["link", "del", &self.name]).output();
    }
}

fn ip(netns: &str) -> Command {
    let mut cmd = Command::new("ip");
    cmd.args(["-n", netns]);
    cmd
}
