//! The engine address: the platform default, the forms the exporter can
//! reach, and where the address came from. One place for both the file and
//! the docker context store to check an address against.

use anyhow::bail;

/// The platform socket: the engine when neither flag, file, `DOCKER_HOST` nor
/// a docker context names one.
#[cfg(unix)]
pub const DEFAULT_DOCKER_HOST: &str = "unix:///var/run/docker.sock";
/// The platform socket: the engine when neither flag, file, `DOCKER_HOST` nor
/// a docker context names one.
#[cfg(windows)]
pub const DEFAULT_DOCKER_HOST: &str = "npipe:////./pipe/docker_engine";

/// Checks that `value` is an engine address the exporter can reach:
/// `unix://` (`npipe://` on Windows), `tcp://`, `http://` or `https://`.
pub fn check_docker_host(value: &str) -> anyhow::Result<String> {
    if let Some(target) = value.strip_prefix("ssh://") {
        bail!(
            "unsupported engine address {value:?}: ssh:// is not supported; forward the \
             remote socket (`ssh -nNT -L 127.0.0.1:2375:/var/run/docker.sock {}`) and use \
             --docker-host tcp://127.0.0.1:2375, or run the exporter on that host",
            ssh_args(target)
        );
    }
    let supported: &[&str] = if cfg!(windows) {
        &["npipe://", "tcp://", "http://", "https://"]
    } else {
        &["unix://", "tcp://", "http://", "https://"]
    };
    if supported.iter().any(|s| value.starts_with(s)) && value.len() > "unix://".len() {
        Ok(value.to_string())
    } else {
        bail!(
            "unsupported engine address {value:?}: expected one of {}",
            supported
                .iter()
                .map(|s| format!("{s}..."))
                .collect::<Vec<_>>()
                .join(", ")
        )
    }
}

/// `user@host:port/path` as ssh's arguments: `-p port user@host`.
fn ssh_args(target: &str) -> String {
    let target = target.split('/').next().unwrap_or(target);
    match target.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) => {
            format!("-p {port} {host}")
        }
        _ => target.to_string(),
    }
}

/// Where the engine address came from; logged at start-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineSource {
    /// `--docker-host`.
    Flag,
    /// `docker_host` in this configuration file.
    File(String),
    /// The `DOCKER_HOST` environment variable.
    Environment,
    /// Nothing named it yet: the platform socket until
    /// [`crate::config::Config::with_docker_context`] looks at the docker CLI's settings.
    Default,
    /// The docker CLI's settings, as described (its context, read by the
    /// configuration).
    Docker(String),
}

impl std::fmt::Display for EngineSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EngineSource::Flag => f.write_str("--docker-host"),
            EngineSource::File(origin) => write!(f, "docker_host in config file {origin}"),
            EngineSource::Environment => f.write_str("DOCKER_HOST"),
            EngineSource::Default => f.write_str("platform default"),
            EngineSource::Docker(how) => f.write_str(how),
        }
    }
}
