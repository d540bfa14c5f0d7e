//! Names the commit that `--version` prints: `DSE_COMMIT` when the build is
//! given one (the Dockerfile's build argument, scripts/release.sh), else
//! the checkout's HEAD where git can tell; neither leaves the version alone.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !text.is_empty()).then_some(text)
}

fn main() {
    println!("cargo:rerun-if-env-changed=DSE_COMMIT");
    let given = std::env::var("DSE_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty());
    let commit = given.or_else(|| {
        // Built again when HEAD moves: a new commit, another branch.
        if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
            println!("cargo:rerun-if-changed={dir}/HEAD");
            if let Some(head) = git(&["symbolic-ref", "-q", "HEAD"]) {
                println!("cargo:rerun-if-changed={dir}/{head}");
            }
            println!("cargo:rerun-if-changed={dir}/packed-refs");
        }
        git(&["rev-parse", "--short=12", "HEAD"])
    });
    if let Some(commit) = commit {
        println!("cargo:rustc-env=DSE_COMMIT={}", commit.trim());
    }
}
