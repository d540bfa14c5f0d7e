//! The engine the docker CLI would use when nothing names one: the current
//! docker context (`DOCKER_CONTEXT`, else `currentContext` in the CLI's
//! `config.json`), read from the CLI's context store, else the platform
//! socket. This is how Docker Desktop's socket (`~/.docker/run/docker.sock`)
//! is found without any setting.
//!
//! The store's layout is docker/cli's: `<config dir>/contexts/meta/<sha256 of
//! the name>/meta.json` holds `{"Name", "Metadata", "Endpoints": {"docker":
//! {"Host", "SkipTLSVerify"}}}`, and `<config dir>/contexts/tls/<sha256 of the
//! name>/docker/` the endpoint's `ca.pem`, `cert.pem` and `key.pem`. Field names
//! match regardless of case, as Go's JSON decoder matches them.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::{anyhow, bail, Context as _};
use serde_json::Value;

use crate::config::engine_address::{check_docker_host, DEFAULT_DOCKER_HOST};

/// The context name that means "no context": the platform socket.
pub const DEFAULT_CONTEXT: &str = "default";

/// What the docker CLI reads from the process environment to find its engine
/// (`DOCKER_HOST` aside, which the configuration handles before this).
/// Explicit, so that resolution can be tested without touching the real
/// environment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DockerEnv {
    /// `DOCKER_CONTEXT`.
    pub docker_context: Option<String>,
    /// `DOCKER_CONFIG`: the CLI's configuration directory.
    pub docker_config: Option<PathBuf>,
    /// `HOME`: the configuration directory is `$HOME/.docker` by default.
    pub home: Option<PathBuf>,
}

impl DockerEnv {
    /// The values of this process's environment (empty ones count as unset).
    pub fn from_process() -> Self {
        let var = |name: &str| std::env::var_os(name).filter(|v| !v.is_empty());
        Self {
            docker_context: var("DOCKER_CONTEXT").map(|v| v.to_string_lossy().into_owned()),
            docker_config: var("DOCKER_CONFIG").map(PathBuf::from),
            home: var("HOME").map(PathBuf::from),
        }
    }

    /// The CLI's configuration directory, if it can be known.
    pub fn config_dir(&self) -> Option<PathBuf> {
        self.docker_config
            .clone()
            .or_else(|| self.home.as_ref().map(|h| h.join(".docker")))
    }
}

/// An engine found through the docker CLI's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The engine's address (`unix://...`, `tcp://...`).
    pub host: String,
    /// Directory with `ca.pem`, `cert.pem` and `key.pem` when the engine is
    /// reached over TLS.
    pub tls: Option<PathBuf>,
    /// Where it came from, for the start-up log, e.g. `docker context
    /// "desktop-linux" from /Users/me/.docker/config.json`.
    pub source: String,
}

/// Where a context's name was given.
#[derive(Debug, Clone, PartialEq, Eq)]
enum NamedBy {
    EnvVar,
    ConfigFile(PathBuf),
}

impl std::fmt::Display for NamedBy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NamedBy::EnvVar => f.write_str("DOCKER_CONTEXT"),
            NamedBy::ConfigFile(path) => write!(f, "{}", path.display()),
        }
    }
}

/// The engine of the current docker context, as the CLI resolves it when
/// neither `--host` nor `DOCKER_HOST` is given: `DOCKER_CONTEXT`, else
/// `currentContext` in `config.json`, else the platform socket. The context
/// `default` is the platform socket too.
///
/// Errors name the file at fault: a named context without its `meta.json`, a
/// `config.json` or `meta.json` that does not parse (with its line), a context
/// without a docker endpoint, an address the exporter cannot use.
pub fn resolve(env: &DockerEnv) -> anyhow::Result<Endpoint> {
    let config_dir = env.config_dir();
    let (name, by) = match (&env.docker_context, &config_dir) {
        (Some(name), _) => (name.clone(), NamedBy::EnvVar),
        (None, Some(dir)) => {
            let file = dir.join("config.json");
            match current_context(&file)? {
                Some(name) => (name, NamedBy::ConfigFile(file)),
                None => {
                    return Ok(platform(format!(
                        "no DOCKER_CONTEXT, no current context in {}",
                        file.display()
                    )))
                }
            }
        }
        (None, None) => {
            return Ok(platform(
                "no DOCKER_CONTEXT, and neither DOCKER_CONFIG nor HOME to find config.json".into(),
            ))
        }
    };
    let source = format!("docker context {name:?} from {by}");
    if name == DEFAULT_CONTEXT {
        return Ok(platform(source));
    }
    let Some(dir) = config_dir else {
        bail!(
            "{source}: cannot find the context store: neither DOCKER_CONFIG nor HOME is set \
             (set one, or name the engine with --docker-host or DOCKER_HOST)"
        );
    };
    let (host, meta) = context_host(&dir, &name, &source)?;
    let tls = context_tls(&dir, &name, &host, &meta, &source)?;
    Ok(Endpoint { host, tls, source })
}

fn platform(source: String) -> Endpoint {
    Endpoint {
        host: DEFAULT_DOCKER_HOST.to_string(),
        tls: None,
        source,
    }
}

/// The directory name docker/cli gives a context in its store: the SHA-256
/// of the name, in lowercase hex.
pub fn context_dir_name(name: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, name.as_bytes());
    digest
        .as_ref()
        .iter()
        .fold(String::with_capacity(64), |mut hex, b| {
            let _ = write!(hex, "{b:02x}");
            hex
        })
}

/// `meta.json` of context `name` under the configuration directory `dir`.
pub fn meta_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("contexts")
        .join("meta")
        .join(context_dir_name(name))
        .join("meta.json")
}

/// The docker endpoint's TLS directory of context `name`.
pub fn tls_path(dir: &Path, name: &str) -> PathBuf {
    dir.join("contexts")
        .join("tls")
        .join(context_dir_name(name))
        .join("docker")
}

/// `currentContext` from the CLI's `config.json`; `None` when the file does
/// not exist or names none.
fn current_context(file: &Path) -> anyhow::Result<Option<String>> {
    let text = match std::fs::read_to_string(file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
    };
    let value = parse_json(file, &text)?;
    match field(&value, "currentContext") {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.is_empty() => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => bail!(
            "{}: key `currentContext` must be a string, found {other}",
            file.display()
        ),
    }
}

/// The docker endpoint's address from the context's `meta.json`, and the
/// endpoint object itself.
fn context_host(dir: &Path, name: &str, source: &str) -> anyhow::Result<(String, Value)> {
    let file = meta_path(dir, name);
    let text = match std::fs::read_to_string(&file) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{source}: no such context: {} does not exist (`docker context ls` lists the \
             contexts; `docker context use default` goes back to the platform socket)",
            file.display()
        ),
        Err(e) => {
            return Err(e).with_context(|| format!("{source}: cannot read {}", file.display()))
        }
    };
    let meta = parse_json(&file, &text).with_context(|| source.to_string())?;
    let endpoint = match field(&meta, "Endpoints").and_then(|e| e.get("docker")) {
        Some(endpoint @ Value::Object(_)) => endpoint.clone(),
        _ => bail!(
            "{source}: {} has no docker endpoint (key `Endpoints.docker`)",
            file.display()
        ),
    };
    let host = match field(&endpoint, "Host") {
        // The CLI's client falls back to its default address.
        None | Some(Value::Null) => DEFAULT_DOCKER_HOST.to_string(),
        Some(Value::String(h)) if h.is_empty() => DEFAULT_DOCKER_HOST.to_string(),
        Some(Value::String(h)) => h.clone(),
        Some(other) => bail!(
            "{source}: {}, key `Endpoints.docker.Host` must be a string, found {other}",
            file.display()
        ),
    };
    let host = check_docker_host(&host)
        .with_context(|| format!("{source}: {}, key `Endpoints.docker.Host`", file.display()))?;
    Ok((host, endpoint))
}

/// The TLS directory for a context whose address is not a local socket: the
/// CLI uses TLS when the context has TLS material (or skips verification,
/// which the exporter does not do).
fn context_tls(
    dir: &Path,
    name: &str,
    host: &str,
    endpoint: &Value,
    source: &str,
) -> anyhow::Result<Option<PathBuf>> {
    if host.starts_with("unix://") || host.starts_with("npipe://") {
        return Ok(None);
    }
    if let Some(Value::Bool(true)) = field(endpoint, "SkipTLSVerify") {
        bail!(
            "{source}: {}: `SkipTLSVerify` is set, and the exporter always verifies the \
             engine's certificate: give the context the engine's CA (`docker context update \
             --docker \"host={host},ca=...,cert=...,key=...\"`), or name the engine with \
             --docker-host and DOCKER_CERT_PATH",
            meta_path(dir, name).display()
        );
    }
    let tls = tls_path(dir, name);
    if !tls.is_dir() {
        return Ok(None);
    }
    for file in ["ca.pem", "cert.pem", "key.pem"] {
        if !tls.join(file).is_file() {
            bail!(
                "{source}: TLS material in {} lacks {file}: the exporter needs ca.pem, \
                 cert.pem and key.pem",
                tls.display()
            );
        }
    }
    Ok(Some(tls))
}

fn parse_json(file: &Path, text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).map_err(|e| {
        // The message without its own " at line L column C".
        let message = e.to_string();
        let what = message.split(" at line ").next().unwrap_or(&message);
        anyhow!(
            "{}, line {}, column {}: not valid JSON: {what}",
            file.display(),
            e.line(),
            e.column()
        )
    })
}

/// A field of a JSON object, by exact name or else regardless of case (Go's
/// decoder matches struct fields that way).
fn field<'a>(value: &'a Value, name: &str) -> Option<&'a Value> {
    let object = value.as_object()?;
    object.get(name).or_else(|| {
        object
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A configuration directory made for one test, removed when dropped.
    struct Store(PathBuf);

    impl Store {
        fn new(tag: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("dse-context-{tag}-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            Self(dir)
        }

        fn config(&self, text: &str) -> &Self {
            std::fs::write(self.0.join("config.json"), text).unwrap();
            self
        }

        fn context(&self, name: &str, meta: &str) -> &Self {
            let file = meta_path(&self.0, name);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, meta).unwrap();
            self
        }

        fn tls(&self, name: &str, files: &[&str]) -> &Self {
            let dir = tls_path(&self.0, name);
            std::fs::create_dir_all(&dir).unwrap();
            for f in files {
                std::fs::write(dir.join(f), "pem").unwrap();
            }
            self
        }

        fn env(&self) -> DockerEnv {
            DockerEnv {
                docker_config: Some(self.0.clone()),
                ..Default::default()
            }
        }
    }

    impl Drop for Store {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn meta(name: &str, host: &str) -> String {
        format!(
            r#"{{"Name":"{name}","Metadata":{{"Description":"test"}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#
        )
    }

    fn err(env: &DockerEnv) -> String {
        format!("{:#}", resolve(env).unwrap_err())
    }

    #[test]
    fn directory_names_are_the_cli_digests() {
        // As `docker context create` names them (sha256 of the name).
        assert_eq!(
            context_dir_name("default"),
            "37a8eec1ce19687d132fe29051dca629d164e2c4958ba141d5f4133a33f0688f"
        );
        assert_eq!(
            context_dir_name("desktop-linux"),
            "fe9c6bd7a66301f49ca9b6a70b217107cd1284598bfc254700c989b916da791e"
        );
    }

    #[test]
    fn current_context_from_config_json() {
        let s = Store::new("current");
        s.config(r#"{"auths":{},"currentContext":"desktop-linux"}"#)
            .context(
                "desktop-linux",
                &meta("desktop-linux", "unix:///Users/me/.docker/run/docker.sock"),
            );
        let ep = resolve(&s.env()).unwrap();
        assert_eq!(ep.host, "unix:///Users/me/.docker/run/docker.sock");
        assert_eq!(ep.tls, None);
        assert_eq!(
            ep.source,
            format!(
                "docker context \"desktop-linux\" from {}",
                s.0.join("config.json").display()
            )
        );
    }

    #[test]
    fn docker_context_wins_over_config_json() {
        let s = Store::new("envwins");
        s.config(r#"{"currentContext":"a"}"#)
            .context("a", &meta("a", "unix:///a.sock"))
            .context("b", &meta("b", "unix:///b.sock"));
        let env = DockerEnv {
            docker_context: Some("b".into()),
            ..s.env()
        };
        let ep = resolve(&env).unwrap();
        assert_eq!(ep.host, "unix:///b.sock");
        assert_eq!(ep.source, "docker context \"b\" from DOCKER_CONTEXT");
    }

    #[test]
    fn home_dot_docker_without_docker_config() {
        let s = Store::new("home");
        let dir = s.0.join(".docker");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("config.json"), r#"{"currentContext":"x"}"#).unwrap();
        let file = meta_path(&dir, "x");
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(&file, meta("x", "tcp://10.0.0.1:2375")).unwrap();
        let env = DockerEnv {
            home: Some(s.0.clone()),
            ..Default::default()
        };
        assert_eq!(resolve(&env).unwrap().host, "tcp://10.0.0.1:2375");
    }

    #[test]
    fn nothing_set_or_default_means_the_platform_socket() {
        let s = Store::new("none");
        let ep = resolve(&s.env()).unwrap();
        assert_eq!(ep.host, DEFAULT_DOCKER_HOST);
        assert!(ep.source.contains("no current context"), "{}", ep.source);
        s.config(r#"{"auths":{}}"#);
        assert_eq!(resolve(&s.env()).unwrap().host, DEFAULT_DOCKER_HOST);
        s.config(r#"{"currentContext":"default"}"#);
        let ep = resolve(&s.env()).unwrap();
        assert_eq!(ep.host, DEFAULT_DOCKER_HOST);
        assert!(
            ep.source.starts_with("docker context \"default\""),
            "{}",
            ep.source
        );
        let ep = resolve(&DockerEnv::default()).unwrap();
        assert_eq!(ep.host, DEFAULT_DOCKER_HOST);
    }

    #[test]
    fn missing_context_names_the_meta_json_expected() {
        let s = Store::new("missing");
        s.config(r#"{"currentContext":"gone"}"#);
        let e = err(&s.env());
        let expected = meta_path(&s.0, "gone");
        assert!(e.contains(&expected.display().to_string()), "{e}");
        assert!(e.contains("\"gone\"") && e.contains("config.json"), "{e}");
        assert!(e.contains("does not exist"), "{e}");
    }

    #[test]
    fn broken_files_are_named_with_their_line() {
        let s = Store::new("broken");
        s.config("{\n  \"currentContext\": \"x\",\n  oops\n}\n");
        let e = err(&s.env());
        assert!(e.contains("config.json, line 3"), "{e}");

        s.config(r#"{"currentContext": 7}"#);
        let e = err(&s.env());
        assert!(e.contains("currentContext") && e.contains("string"), "{e}");

        s.config(r#"{"currentContext":"x"}"#)
            .context("x", "{\"Name\":\"x\",\n\"Endpoints\": {\n");
        let e = err(&s.env());
        assert!(
            e.contains(&format!("{}, line 3", meta_path(&s.0, "x").display())),
            "{e}"
        );
    }

    #[test]
    fn context_without_docker_endpoint_is_named() {
        let s = Store::new("noendpoint");
        s.config(r#"{"currentContext":"k8s"}"#).context(
            "k8s",
            r#"{"Name":"k8s","Endpoints":{"kubernetes":{"Host":"https://k"}}}"#,
        );
        let e = err(&s.env());
        assert!(e.contains("no docker endpoint"), "{e}");
        assert!(
            e.contains(&meta_path(&s.0, "k8s").display().to_string()),
            "{e}"
        );
    }

    #[test]
    fn ssh_is_refused_with_what_to_do() {
        let s = Store::new("ssh");
        s.config(r#"{"currentContext":"remote"}"#)
            .context("remote", &meta("remote", "ssh://me@build-host"));
        let e = err(&s.env());
        assert!(e.contains("ssh://me@build-host"), "{e}");
        assert!(e.contains("not supported"), "{e}");
        assert!(e.contains("ssh -nNT -L"), "{e}");
        assert!(e.contains("Endpoints.docker.Host"), "{e}");
    }

    #[test]
    fn field_names_match_regardless_of_case_and_empty_host_is_the_default() {
        let s = Store::new("case");
        s.config(r#"{"CURRENTCONTEXT":"c"}"#).context(
            "c",
            r#"{"name":"c","endpoints":{"docker":{"host":"unix:///c.sock"}}}"#,
        );
        assert_eq!(resolve(&s.env()).unwrap().host, "unix:///c.sock");
        s.context("c", r#"{"Name":"c","Endpoints":{"docker":{"Host":""}}}"#);
        assert_eq!(resolve(&s.env()).unwrap().host, DEFAULT_DOCKER_HOST);
    }

    #[test]
    fn tls_material_is_used_for_tcp_only_and_must_be_complete() {
        let s = Store::new("tls");
        s.config(r#"{"currentContext":"remote"}"#)
            .context("remote", &meta("remote", "tcp://engine:2376"));
        assert_eq!(resolve(&s.env()).unwrap().tls, None);
        s.tls("remote", &["ca.pem", "cert.pem"]);
        let e = err(&s.env());
        assert!(e.contains("lacks key.pem"), "{e}");
        s.tls("remote", &["key.pem"]);
        assert_eq!(
            resolve(&s.env()).unwrap().tls,
            Some(tls_path(&s.0, "remote"))
        );
        // A socket never uses TLS, whatever the store holds.
        s.context("remote", &meta("remote", "unix:///r.sock"));
        assert_eq!(resolve(&s.env()).unwrap().tls, None);
        // Skipping verification is refused rather than silently verifying.
        s.context(
            "remote",
            r#"{"Name":"remote","Endpoints":{"docker":{"Host":"tcp://engine:2376","SkipTLSVerify":true}}}"#,
        );
        let e = err(&s.env());
        assert!(e.contains("SkipTLSVerify"), "{e}");
    }

    #[test]
    fn named_context_without_a_config_dir_is_an_error() {
        let env = DockerEnv {
            docker_context: Some("desktop-linux".into()),
            ..Default::default()
        };
        let e = err(&env);
        assert!(e.contains("neither DOCKER_CONFIG nor HOME"), "{e}");
    }
}
