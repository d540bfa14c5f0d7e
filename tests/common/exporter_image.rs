//! The exporter's container image, built from the real Dockerfile on the
//! shared engine without any registry: a locally made builder base
//! (scripts/make-base-images.sh; `DSE_RUST_IMAGE` overrides it, e.g. with the
//! public one) and vendored crates. The runtime stage is `FROM scratch`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use super::cmd::{docker_bin, run, tail};
use super::lock::DirLock;

/// The builder base scripts/make-base-images.sh makes.
pub const LOCAL_RUST_IMAGE: &str = "dse-local/rust:bookworm";

/// A built image.
pub struct ExporterImage {
    /// The tag it was given on the shared engine.
    pub tag: String,
    /// Its id (`sha256:...`): the tag may be moved by a build elsewhere
    /// (another checkout), the id names exactly this build.
    pub id: String,
}

fn root() -> &'static Path {
    Path::new(crate::ROOT)
}

/// The tag prefix of the image the tests build on this machine's engine;
/// every test of one process shares the one image.
pub const TEST_TAG: &str = "docker-stats-exporter:test";

/// `prefix-<hash of this checkout's path>`: checkouts that test at the same
/// time on one engine do not test each other's image.
pub fn checkout_tag(prefix: &str) -> String {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    root().hash(&mut h);
    format!("{prefix}-{:08x}", h.finish() as u32)
}

/// Builds the image from the real Dockerfile once per test process, tagged
/// `tag` (every caller in one process must pass the same tag). Panics, in
/// every caller, with the build's log when it fails.
pub fn exporter_image(tag: &str) -> &'static ExporterImage {
    static BUILT: OnceLock<Result<ExporterImage, String>> = OnceLock::new();
    let result = BUILT.get_or_init(|| {
        std::panic::catch_unwind(|| build(tag)).map_err(|e| {
            e.downcast_ref::<String>()
                .cloned()
                .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "image build panicked".into())
        })
    });
    match result {
        Ok(image) => {
            assert_eq!(image.tag, tag, "one image tag per test process");
            image
        }
        Err(e) => panic!("the image could not be built: {e}"),
    }
}

fn engine_up() {
    let out = Command::new(docker_bin())
        .args(["version", "--format", "{{.Server.APIVersion}}"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {}: {e}", docker_bin().display()));
    assert!(
        out.status.success(),
        "no Docker engine answers ({}); start one with scripts/setup-engine.sh",
        String::from_utf8_lossy(&out.stderr).trim()
    );
}

fn build(tag: &str) -> ExporterImage {
    engine_up();
    // One build at a time per checkout: they share target/.
    let _lock = DirLock::acquire(
        &root().join("target").join("packaging-build.lock"),
        Duration::from_secs(30 * 60),
    );
    let rust_image = builder_image();
    vendor_crates();

    let t = Instant::now();
    let log_path = root().join(format!(
        "target/docker-build-{}.log",
        tag.replace([':', '/'], "-")
    ));
    let iid_path = log_path.with_extension("iid");
    let log = std::fs::File::create(&log_path).expect("create build log");
    let status = Command::new(docker_bin())
        .current_dir(root())
        .args(["build", "--pull=false", "--force-rm", "-t", tag])
        .arg("--iidfile")
        .arg(&iid_path)
        .arg("--build-arg")
        .arg(format!("RUST_IMAGE={rust_image}"))
        // As scripts/release.sh builds it, so that its build is this one.
        .arg("--build-arg")
        .arg(format!("DSE_COMMIT={}", head_commit()))
        .arg(".")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("clone log handle"))
        .stderr(log)
        .status()
        .expect("run docker build");
    let text = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(
        status.success(),
        "docker build failed ({status}); full log in {}:\n{}",
        log_path.display(),
        tail(&text, 60)
    );
    let id = std::fs::read_to_string(&iid_path)
        .unwrap_or_else(|e| panic!("docker build wrote no {}: {e}", iid_path.display()))
        .trim()
        .to_string();
    eprintln!("docker build of {tag} ({id}) took {:.1?}", t.elapsed());
    ExporterImage {
        tag: tag.to_string(),
        id,
    }
}

/// The checkout's commit as `--version` names it, or nothing outside git.
fn head_commit() -> String {
    Command::new("git")
        .current_dir(root())
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default()
}

/// The builder base: `DSE_RUST_IMAGE`, else the local one, made if missing.
fn builder_image() -> String {
    match std::env::var("DSE_RUST_IMAGE") {
        Ok(r) => r,
        Err(_) => {
            let t = Instant::now();
            run(Command::new("bash")
                .arg(root().join("scripts/make-base-images.sh"))
                .env("DOCKER", docker_bin()));
            eprintln!("builder image ready in {:.1?}", t.elapsed());
            LOCAL_RUST_IMAGE.to_string()
        }
    }
}

/// Vendored crates make the build inside the container offline; redone only
/// when Cargo.lock changes.
fn vendor_crates() {
    let vendor: PathBuf = root().join("target/docker-vendor");
    let stamp = root().join("target/docker-vendor.stamp");
    let lock = std::fs::read_to_string(root().join("Cargo.lock")).expect("read Cargo.lock");
    if !vendor.is_dir() || std::fs::read_to_string(&stamp).ok().as_deref() != Some(lock.as_str()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        run(Command::new(cargo)
            .current_dir(root())
            .args([
                "vendor",
                "--locked",
                "--versioned-dirs",
                "target/docker-vendor",
            ])
            .stdout(Stdio::null()));
        std::fs::write(&stamp, &lock).expect("write vendor stamp");
    }
}
