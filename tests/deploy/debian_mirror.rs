//! scripts/debian-mirror.sh, which finds the Debian archive in apt's sources
//! for scripts/make-base-images.sh, on made-up /etc/apt trees (APT_ETC) and on
//! this machine's own.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/debian-mirror.sh")
}

/// A made-up /etc/apt with these files (relative path, text); removed on drop.
struct AptEtc(PathBuf);

impl AptEtc {
    fn new(test: &str, files: &[(&str, &str)]) -> Self {
        let dir = std::env::temp_dir().join(format!("dse-apt-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("sources.list.d")).unwrap();
        for (path, text) in files {
            std::fs::write(dir.join(path), text).unwrap();
        }
        AptEtc(dir)
    }

    fn run(&self, suite: &str) -> Output {
        Command::new("bash")
            .arg(script())
            .arg(suite)
            .env("APT_ETC", &self.0)
            .output()
            .unwrap()
    }

    fn mirror(&self, suite: &str) -> String {
        let out = self.run(suite);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap().trim().to_string()
    }
}

impl Drop for AptEtc {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

const DEB822: &str = "\
Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main

# A comment between stanzas
Types: deb deb-src
URIs: http://mirror.example/debian/
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
";

#[test]
fn deb822_sources_give_the_main_archive_not_security() {
    let apt = AptEtc::new("deb822", &[("sources.list.d/debian.sources", DEB822)]);
    assert_eq!(apt.mirror("bookworm"), "http://mirror.example/debian");
}

#[test]
fn one_line_sources_with_options_and_comments() {
    let list = "\
# deb http://commented.example/debian bookworm main
deb-src http://src.example/debian bookworm main
deb http://security.example/debian-security bookworm-security main
deb [arch=amd64 signed-by=/usr/share/keyrings/k.gpg] http://list.example/debian bookworm main contrib
";
    let apt = AptEtc::new("oneline", &[("sources.list", list)]);
    assert_eq!(apt.mirror("bookworm"), "http://list.example/debian");
}

#[test]
fn disabled_and_third_party_sources_are_passed_over() {
    let third_party = "\
Types: deb
URIs: http://vendor.example/node
Suites: nodistro
Components: main
";
    let disabled = "\
Types: deb
URIs: http://off.example/debian
Suites: bookworm
Enabled: no
";
    let apt = AptEtc::new(
        "skip",
        &[
            ("sources.list.d/a-vendor.sources", third_party),
            ("sources.list.d/b-off.sources", disabled),
            (
                "sources.list.d/c.list.disabled",
                "deb http://ignored.example/debian bookworm main\n",
            ),
            ("sources.list.d/d-debian.sources", DEB822),
        ],
    );
    assert_eq!(apt.mirror("bookworm"), "http://mirror.example/debian");
}

#[test]
fn another_release_serves_the_wanted_suite() {
    let trixie = "\
Types: deb
URIs: http://trixie.example/debian
Suites: trixie trixie-updates
Components: main
";
    let apt = AptEtc::new("trixie", &[("sources.list.d/debian.sources", trixie)]);
    assert_eq!(apt.mirror("bookworm"), "http://trixie.example/debian");
}

#[test]
fn no_debian_source_is_a_clear_error() {
    let apt = AptEtc::new(
        "none",
        &[(
            "sources.list",
            "deb http://security.example/debian-security bookworm-security main\n",
        )],
    );
    let out = apt.run("bookworm");
    assert!(!out.status.success());
    assert!(out.stdout.is_empty());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("no Debian archive for bookworm")
            && err.contains("sources.list")
            && err.contains("DEBIAN_MIRROR"),
        "{err}"
    );
}

/// On this (Debian) machine the script finds what apt itself uses.
#[test]
fn this_machine_has_a_debian_archive() {
    let out = Command::new("bash")
        .arg(script())
        .env_remove("APT_ETC")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let uri = String::from_utf8(out.stdout).unwrap();
    let uri = uri.trim();
    assert!(
        (uri.starts_with("http://") || uri.starts_with("https://") || uri.starts_with("file:"))
            && !uri.ends_with("-security"),
        "{uri}"
    );
}
