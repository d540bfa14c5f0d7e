//! scripts/rust-target.sh, which picks the Rust target in the Dockerfile's
//! builder stage: BuildKit's platform variables, else the host of the
//! `rustc` on PATH, and a clear error for any other platform.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/rust-target.sh")
}

/// Runs the script with `sh` (POSIX, as in the builder image) and only the
/// given variables of the two it reads.
fn run(vars: &[(&str, &str)], path: Option<&Path>) -> Output {
    let mut cmd = Command::new("sh");
    cmd.arg(script())
        .env_remove("TARGETPLATFORM")
        .env_remove("TARGETARCH");
    for (k, v) in vars {
        cmd.env(k, v);
    }
    if let Some(dir) = path {
        let old = std::env::var_os("PATH").unwrap_or_default();
        let mut paths = vec![dir.to_path_buf()];
        paths.extend(std::env::split_paths(&old));
        cmd.env("PATH", std::env::join_paths(paths).unwrap());
    }
    cmd.output().unwrap()
}

fn target(vars: &[(&str, &str)]) -> String {
    let out = run(vars, None);
    assert!(
        out.status.success(),
        "{vars:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

fn refused(vars: &[(&str, &str)]) -> String {
    let out = run(vars, None);
    assert!(!out.status.success(), "{vars:?} should be refused");
    assert!(out.stdout.is_empty(), "{vars:?} printed a target");
    String::from_utf8(out.stderr).unwrap()
}

#[test]
fn amd64_builds_for_x86_64() {
    assert_eq!(
        target(&[("TARGETPLATFORM", "linux/amd64"), ("TARGETARCH", "amd64")]),
        "x86_64-unknown-linux-gnu"
    );
    assert_eq!(
        target(&[("TARGETARCH", "amd64")]),
        "x86_64-unknown-linux-gnu"
    );
}

#[test]
fn arm64_builds_for_aarch64() {
    assert_eq!(
        target(&[("TARGETPLATFORM", "linux/arm64"), ("TARGETARCH", "arm64")]),
        "aarch64-unknown-linux-gnu"
    );
    assert_eq!(
        target(&[("TARGETPLATFORM", "linux/arm64/v8")]),
        "aarch64-unknown-linux-gnu"
    );
    assert_eq!(
        target(&[("TARGETARCH", "arm64")]),
        "aarch64-unknown-linux-gnu"
    );
}

#[test]
fn unset_takes_the_host_of_rustc() {
    let host = String::from_utf8(
        Command::new("rustc")
            .arg("-vV")
            .output()
            .expect("run rustc -vV")
            .stdout,
    )
    .unwrap()
    .lines()
    .find_map(|l| l.strip_prefix("host: ").map(str::to_string))
    .expect("rustc -vV names its host");
    assert_eq!(target(&[]), host);
    // Empty, as the classic builder leaves a declared ARG.
    assert_eq!(target(&[("TARGETPLATFORM", ""), ("TARGETARCH", "")]), host);

    // The answer comes from the rustc on PATH, whatever this machine is.
    let dir = std::env::temp_dir().join(format!("dse-rust-target-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let fake = dir.join("rustc");
    std::fs::write(
        &fake,
        "#!/bin/sh\nprintf 'rustc 1.0.0\\nhost: riscv64gc-unknown-linux-gnu\\n'\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&fake, std::fs::Permissions::from_mode(0o755)).unwrap();
    let out = run(&[], Some(&dir));
    let _ = std::fs::remove_dir_all(&dir);
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "riscv64gc-unknown-linux-gnu"
    );
}

#[test]
fn unknown_platforms_are_refused_by_name() {
    for (vars, name) in [
        (vec![("TARGETPLATFORM", "linux/arm/v7")], "linux/arm/v7"),
        (vec![("TARGETPLATFORM", "linux/s390x")], "linux/s390x"),
        (vec![("TARGETARCH", "riscv64")], "linux/riscv64"),
        (vec![("TARGETPLATFORM", "windows/amd64")], "windows/amd64"),
        (vec![("TARGETPLATFORM", "linux")], "linux"),
    ] {
        let err = refused(&vars);
        assert!(
            err.contains(&format!("unsupported platform {name} ")) && err.contains("linux/arm64"),
            "{vars:?}: {err}"
        );
    }
}
