//! Outside programs as a test needs them: found on PATH with an install hint,
//! run to completion, their output in the panic message when they fail.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Finds an executable on PATH (or takes a path as given); panics with an
/// install hint when it is missing.
pub fn require_tool(name: &str, hint: &str) -> PathBuf {
    let candidate = Path::new(name);
    if candidate.components().count() > 1 {
        if candidate.is_file() {
            return candidate.to_path_buf();
        }
    } else if let Some(paths) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&paths) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    panic!("required tool `{name}` not found: {hint}");
}

/// The docker client: `$DOCKER`, else /usr/bin/docker, else `docker` on PATH.
pub fn docker_bin() -> PathBuf {
    if let Some(d) = std::env::var_os("DOCKER") {
        return require_tool(&d.to_string_lossy(), "DOCKER names a missing program");
    }
    if Path::new(super::DOCKER).is_file() {
        return PathBuf::from(super::DOCKER);
    }
    require_tool(
        "docker",
        "install a Docker engine and client (scripts/setup-engine.sh on Debian)",
    )
}

/// The command line, for messages.
pub fn describe(cmd: &Command) -> String {
    let mut s = cmd.get_program().to_string_lossy().into_owned();
    for a in cmd.get_args() {
        s.push(' ');
        s.push_str(&a.to_string_lossy());
    }
    s
}

/// Runs a command to completion; panics with its output when it fails.
pub fn run(cmd: &mut Command) -> Output {
    let what = describe(cmd);
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run `{what}`: {e}"));
    if !out.status.success() {
        panic!(
            "`{what}` failed ({}):\n--- stdout\n{}\n--- stderr\n{}",
            out.status,
            tail(&String::from_utf8_lossy(&out.stdout), 60),
            tail(&String::from_utf8_lossy(&out.stderr), 60)
        );
    }
    out
}

/// [`run`], then its stdout, trimmed.
pub fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&run(cmd).stdout).trim().to_string()
}

/// The last `lines` lines of `s`.
pub fn tail(s: &str, lines: usize) -> String {
    let v: Vec<&str> = s.lines().collect();
    v[v.len().saturating_sub(lines)..].join("\n")
}
