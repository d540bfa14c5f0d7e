//! Finding the engine through the docker CLI's current context, as on Docker
//! Desktop: the real binary, with a context store that the real docker CLI
//! made in a temporary directory standing for `~/.docker`.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use common::process::{fails, Running};
use common::{TempDir, BIN, DOCKER};

const ENGINE: &str = "unix:///var/run/docker.sock";

/// The docker CLI working on the configuration directory `config`.
fn cli(config: &Path, args: &[&str]) {
    let out = Command::new(DOCKER)
        .env("DOCKER_CONFIG", config)
        .env_remove("DOCKER_HOST")
        .env_remove("DOCKER_CONTEXT")
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `docker context create NAME --docker host=HOST`.
fn create(config: &Path, name: &str, host: &str) {
    cli(
        config,
        &[
            "context",
            "create",
            name,
            "--docker",
            &format!("host={host}"),
        ],
    );
}

/// The binary with none of the docker CLI's variables but `vars`, and HOME
/// at `home`.
fn exporter(home: &Path, vars: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(BIN);
    for var in [
        "DOCKER_HOST",
        "DOCKER_CONTEXT",
        "DOCKER_CONFIG",
        "DOCKER_TLS_VERIFY",
        "DOCKER_CERT_PATH",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HOME", home).envs(vars.iter().copied());
    cmd
}

/// Where docker/cli keeps a context's metadata: the SHA-256 of its name.
fn meta_json(config: &Path, name: &str) -> PathBuf {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    config.join("contexts/meta").join(hex).join("meta.json")
}

#[tokio::test(flavor = "multi_thread")]
async fn current_context_in_home_config_json_reaches_the_engine() {
    let home = TempDir::new("ctx-home");
    let config = home.0.join(".docker");
    create(&config, "dse-ctx-home", ENGINE);
    cli(&config, &["context", "use", "dse-ctx-home"]);

    let running = Running::start(exporter(&home.0, &[]), home.0.join("log")).await;
    let m = running.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(1.0), "{}", running.log());
    let expected = format!(
        "engine = {ENGINE} (docker context \"dse-ctx-home\" from {}/config.json)",
        config.display()
    );
    assert!(running.log().contains(&expected), "{}", running.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn docker_context_wins_over_config_json_and_docker_host_over_both() {
    let dir = TempDir::new("ctx-order");
    let config = dir.0.join("docker-config");
    let nowhere = format!("unix://{}/nothing-here.sock", dir.0.display());
    create(&config, "dse-ctx-engine", ENGINE);
    create(&config, "dse-ctx-nowhere", &nowhere);
    cli(&config, &["context", "use", "dse-ctx-engine"]);
    let config_var = config.to_str().unwrap();

    // DOCKER_CONTEXT names a context whose socket does not exist: the
    // exporter goes there (and finds no engine) rather than to the platform
    // socket or the current context.
    let vars = [
        ("DOCKER_CONFIG", config_var),
        ("DOCKER_CONTEXT", "dse-ctx-nowhere"),
    ];
    let running = Running::start(exporter(&dir.0, &vars), dir.0.join("log1")).await;
    let m = running.metrics().await;
    let log = running.log();
    assert_eq!(m.value("docker_up", &[]), Some(0.0), "{log}");
    assert!(
        log.contains(&format!(
            "engine = {nowhere} (docker context \"dse-ctx-nowhere\" from DOCKER_CONTEXT)"
        )),
        "{log}"
    );
    drop(running);

    // DOCKER_HOST beats DOCKER_CONTEXT, as with the CLI.
    let vars = [
        ("DOCKER_CONFIG", config_var),
        ("DOCKER_CONTEXT", "dse-ctx-nowhere"),
        ("DOCKER_HOST", ENGINE),
    ];
    let running = Running::start(exporter(&dir.0, &vars), dir.0.join("log2")).await;
    let m = running.metrics().await;
    let log = running.log();
    assert_eq!(m.value("docker_up", &[]), Some(1.0), "{log}");
    assert!(
        log.contains(&format!("engine = {ENGINE} (DOCKER_HOST)")),
        "{log}"
    );
}

#[test]
fn broken_context_stores_stop_the_exporter_naming_the_file() {
    let dir = TempDir::new("ctx-broken");
    let config = dir.0.join("docker-config");
    create(&config, "dse-ctx-broken", ENGINE);
    create(&config, "dse-ctx-ssh", "ssh://me@build-host.invalid");
    let config_var = config.to_str().unwrap();
    let with = |context: &str| {
        exporter(
            &dir.0,
            &[("DOCKER_CONFIG", config_var), ("DOCKER_CONTEXT", context)],
        )
    };

    // Named but never created: the meta.json expected is named.
    let err = fails(with("dse-ctx-absent"));
    let expected = meta_json(&config, "dse-ctx-absent");
    assert!(
        err.contains(&format!("{} does not exist", expected.display())),
        "{err}"
    );
    assert!(
        err.contains("\"dse-ctx-absent\" from DOCKER_CONTEXT"),
        "{err}"
    );

    // A meta.json that does not parse: file and line.
    let meta = meta_json(&config, "dse-ctx-broken");
    assert!(
        meta.is_file(),
        "the CLI keeps contexts at {}",
        meta.display()
    );
    std::fs::write(&meta, "{\"Name\": \"dse-ctx-broken\",\n\"Endpoints\": {\n").unwrap();
    let err = fails(with("dse-ctx-broken"));
    assert!(
        err.contains(&format!("{}, line 3", meta.display())),
        "{err}"
    );

    // Without a docker endpoint.
    std::fs::write(&meta, r#"{"Name":"dse-ctx-broken","Endpoints":{}}"#).unwrap();
    let err = fails(with("dse-ctx-broken"));
    assert!(err.contains("no docker endpoint"), "{err}");
    assert!(err.contains(&meta.display().to_string()), "{err}");

    // ssh:// is refused with what to do instead.
    let err = fails(with("dse-ctx-ssh"));
    assert!(
        err.contains("ssh://me@build-host.invalid") && err.contains("not supported"),
        "{err}"
    );
    assert!(
        err.contains("ssh -nNT -L 127.0.0.1:2375:/var/run/docker.sock me@build-host.invalid"),
        "{err}"
    );
}
