//! The configuration file: raw TOML as written, validated into [`Config`]
//! before anything binds or connects.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;
use toml::Spanned;

use crate::config::context::DockerEnv;
use crate::config::engine_address::{check_docker_host, EngineSource, DEFAULT_DOCKER_HOST};
use crate::config::selector::{LabelSelector, Selection};

/// Address the exporter listens on when neither file nor flag says otherwise.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:8091";
/// Longest a scrape may take when the scraper sends no timeout header.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Containers asked at once. On Docker up to 24 every wave of stats calls
/// costs one 1 s engine tick, so the default covers a 300-container host in
/// one wave (see the benchmark in the README).
pub const DEFAULT_MAX_CONCURRENCY: usize = 512;
/// Client connections served at once, all clients together.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;
/// Connections one client address (an IPv6 /64) may hold. One Prometheus
/// keeps one per target, a browser six; 64 leaves room for an HA pair behind
/// one NAT and for proxies, and keeps most of the global cap for others.
pub const DEFAULT_MAX_CONNECTIONS_PER_CLIENT: usize = 64;
/// How long an inspect answer (restart count, health, limits) is reused while
/// the container's listed state stays the same.
pub const DEFAULT_INSPECT_MAX_AGE: Duration = Duration::from_secs(60);
/// The shortest window a CPU percent is computed over, and on engines that
/// answer stats at once (Docker 25+, Podman) how far apart a new container's
/// two first readings are taken. Ten CFS periods: a quota-capped container's
/// percent over it is within about 1.5 points of its true rate (README, "What
/// window each value covers"), and it is the engine's own tick on Docker 24
/// and older.
pub const DEFAULT_CPU_PERCENT_MIN_WINDOW: Duration = Duration::from_secs(1);
/// The bounds of `cpu_percent_min_window`: under one CFS period (100 ms) a
/// percent is mostly aliasing with the quota; over 5 s a new container's
/// first scrape waits longer than a scrape should.
pub const CPU_PERCENT_MIN_WINDOW_RANGE: (Duration, Duration) =
    (Duration::from_millis(100), Duration::from_secs(5));
/// How long one answer of writable-layer sizes (`container_fs_usage_bytes`)
/// is reused: the engine walks every container's files to give it.
pub const DEFAULT_FS_USAGE_MAX_AGE: Duration = Duration::from_secs(300);
/// Container labels put on every container series unless configured
/// otherwise: what common dashboards filter and group by.
pub const DEFAULT_LABELS: [&str; 7] = [
    "com.docker.compose.project",
    "com.docker.compose.service",
    "com.docker.swarm.service.name",
    "com.docker.swarm.task.name",
    "com.docker.swarm.node.id",
    "com.docker.stack.namespace",
    // dockprom labels its services with it, and its dashboards select them by it.
    "org.label-schema.group",
];
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    listen: Option<Spanned<String>>,
    docker_host: Option<Spanned<String>>,
    timeout: Option<Spanned<String>>,
    max_concurrency: Option<Spanned<i64>>,
    max_connections: Option<Spanned<i64>>,
    max_connections_per_client: Option<Spanned<i64>>,
    inspect_max_age: Option<Spanned<String>>,
    // Its name up to 0.1: it was only the first scrape's gap then.
    #[serde(alias = "first_cpu_window")]
    cpu_percent_min_window: Option<Spanned<String>>,
    fs_usage: Option<Spanned<bool>>,
    engines: Option<Vec<RawEngine>>,
    fs_usage_max_age: Option<Spanned<String>>,
    containers: Option<RawContainers>,
    labels: Option<RawLabels>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEngine {
    name: Spanned<String>,
    docker_host: Spanned<String>,
    tls_verify: Option<Spanned<bool>>,
    cert_path: Option<Spanned<String>>,
}

/// One of several engines read by one exporter (`[[engines]]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineConfig {
    /// The value of the `engine` label on its series, and of `?engine=`.
    pub name: String,
    /// Its address (`unix://`, `tcp://`, `http://` or `https://`).
    pub docker_host: String,
    /// Directory with `ca.pem`, `cert.pem` and `key.pem` when reached over TLS.
    pub docker_tls: Option<PathBuf>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLabels {
    include: Option<Vec<Spanned<String>>>,
    on: Option<Spanned<String>>,
}

/// Which series carry the allow-listed container labels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelsOn {
    /// Only `container_info` (join with `* on(name) group_left(...)`).
    Info,
    /// Every per-container series.
    All,
}

/// Container labels exported as metric labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelExport {
    /// `(container label key, metric label name)`, e.g.
    /// `("com.docker.compose.service", "container_label_com_docker_compose_service")`.
    pub include: Vec<(String, String)>,
    /// Where they appear.
    pub on: LabelsOn,
}

impl Default for LabelExport {
    fn default() -> Self {
        Self {
            include: DEFAULT_LABELS
                .iter()
                .map(|k| (k.to_string(), label_name(k)))
                .collect(),
            on: LabelsOn::All,
        }
    }
}

/// The metric label name for a container label key, cAdvisor style:
/// `container_label_` and the key with every character outside
/// `[a-zA-Z0-9_]` replaced by `_`.
pub fn label_name(key: &str) -> String {
    let mut out = String::from("container_label_");
    out.extend(key.chars().map(|c| {
        if c.is_ascii_alphanumeric() || c == '_' {
            c
        } else {
            '_'
        }
    }));
    out
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawContainers {
    names: Option<Vec<Spanned<String>>>,
    labels: Option<Vec<Spanned<String>>>,
}

/// Values given on the command line; they win over the file.
#[derive(Debug, Default, Clone)]
pub struct Overrides {
    /// `--listen` / `--web.listen-address`.
    pub listen: Option<String>,
    /// `--docker-host`.
    pub docker_host: Option<String>,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where `/metrics` is served.
    pub listen: SocketAddr,
    /// The engine's address (`unix://`, `tcp://`, `http://` or `https://`).
    pub docker_host: String,
    /// Directory with `ca.pem`, `cert.pem` and `key.pem` when the engine is
    /// reached over TLS (`https://`, or `tcp://` with `DOCKER_TLS_VERIFY`).
    pub docker_tls: Option<PathBuf>,
    /// Where `docker_host` came from.
    pub engine_source: EngineSource,
    /// Several named engines (`[[engines]]`) instead of `docker_host`; empty
    /// for the usual single engine.
    pub engines: Vec<EngineConfig>,
    /// Upper bound for one scrape.
    pub timeout: Duration,
    /// Stats calls in flight at once.
    pub max_concurrency: usize,
    /// Client connections served at once; more are refused.
    pub max_connections: usize,
    /// Client connections one address may hold; more are refused.
    pub max_connections_per_client: usize,
    /// Reuse of inspect answers.
    pub inspect_max_age: Duration,
    /// The shortest window of a CPU percent; also the gap between a new
    /// container's two first readings on engines that answer directly.
    pub cpu_percent_min_window: Duration,
    /// Reuse of writable-layer sizes; `None` when `fs_usage = false`.
    pub fs_usage_max_age: Option<Duration>,
    /// Which containers are exported.
    pub selection: Selection,
    /// Container labels exported as metric labels.
    pub labels: LabelExport,
}

impl Config {
    /// Reads and validates `path` (or defaults when `None`), applying
    /// command-line overrides and then `DOCKER_HOST` as given in `env_host`.
    pub fn load(
        path: Option<&Path>,
        overrides: &Overrides,
        env_host: Option<String>,
    ) -> anyhow::Result<Self> {
        let (origin, text) = match path {
            Some(p) => {
                let text = std::fs::read_to_string(p)
                    .with_context(|| format!("cannot read config file {}", p.display()))?;
                (p.display().to_string(), text)
            }
            None => ("<defaults>".to_string(), String::new()),
        };
        Self::parse(&origin, &text, overrides, env_host)
    }

    /// Validates config text; `origin` names it in errors.
    pub fn parse(
        origin: &str,
        text: &str,
        overrides: &Overrides,
        env_host: Option<String>,
    ) -> anyhow::Result<Self> {
        let raw: RawConfig = toml::from_str(text)
            .map_err(|e| anyhow::anyhow!("config file {origin}: {}", e.to_string().trim_end()))?;
        let at = |span: std::ops::Range<usize>, key: &str| {
            format!(
                "config file {origin}, line {}, key `{key}`",
                line_of(text, span.start)
            )
        };
        let listen = match (&overrides.listen, &raw.listen) {
            (Some(flag), _) => parse_listen(flag).context("--listen")?,
            (None, Some(v)) => parse_listen(v.get_ref()).context(at(v.span(), "listen"))?,
            (None, None) => parse_listen(DEFAULT_LISTEN)?,
        };
        let (docker_host, engine_source) = engine_address(origin, overrides, &raw, env_host, &at)?;
        let engines = match &raw.engines {
            None => Vec::new(),
            Some(list) => {
                one_engine_source(overrides, &raw, &at)?;
                parse_engines(list, &at)?
            }
        };
        let (max_connections, max_connections_per_client) = connection_caps(&raw, &at)?;
        let fs_usage_max_age = match &raw.fs_usage {
            Some(on) if !*on.get_ref() => None,
            _ => Some(duration_or(
                &raw.fs_usage_max_age,
                "fs_usage_max_age",
                DEFAULT_FS_USAGE_MAX_AGE,
                &at,
            )?),
        };
        Ok(Self {
            listen,
            docker_tls: None,
            docker_host,
            engine_source,
            timeout: duration_or(&raw.timeout, "timeout", DEFAULT_TIMEOUT, &at)?,
            max_concurrency: max_concurrency(&raw, &at)?,
            max_connections,
            max_connections_per_client,
            inspect_max_age: duration_or(
                &raw.inspect_max_age,
                "inspect_max_age",
                DEFAULT_INSPECT_MAX_AGE,
                &at,
            )?,
            cpu_percent_min_window: cpu_percent_min_window(&raw, &at)?,
            fs_usage_max_age,
            engines,
            selection: selection(raw.containers, &at)?,
            labels: label_export(raw.labels, &at)?,
        })
    }
}

/// Where in a config file a key is, for errors: `config file F, line N,
/// key `K``.
type At<'a> = &'a dyn Fn(std::ops::Range<usize>, &str) -> String;

/// The one engine's address and what named it: `--docker-host`, the file's
/// `docker_host`, `DOCKER_HOST` (`env_host`), else the default.
fn engine_address(
    origin: &str,
    overrides: &Overrides,
    raw: &RawConfig,
    env_host: Option<String>,
    at: At<'_>,
) -> anyhow::Result<(String, EngineSource)> {
    Ok(match (&overrides.docker_host, &raw.docker_host) {
        (Some(flag), _) => (
            check_docker_host(flag).context("--docker-host")?,
            EngineSource::Flag,
        ),
        (None, Some(v)) => (
            check_docker_host(v.get_ref()).context(at(v.span(), "docker_host"))?,
            EngineSource::File(origin.to_string()),
        ),
        (None, None) => match env_host.filter(|h| !h.is_empty()) {
            Some(env) => (
                check_docker_host(&env).context("environment variable DOCKER_HOST")?,
                EngineSource::Environment,
            ),
            None => (DEFAULT_DOCKER_HOST.to_string(), EngineSource::Default),
        },
    })
}

/// `[[engines]]` is given: neither `--docker-host` nor `docker_host` may be.
fn one_engine_source(overrides: &Overrides, raw: &RawConfig, at: At<'_>) -> anyhow::Result<()> {
    if overrides.docker_host.is_some() {
        bail!("--docker-host names one engine; the config file lists [[engines]]: use one or the other");
    }
    if let Some(v) = &raw.docker_host {
        bail!(
            "{}: docker_host and [[engines]] cannot both be given; \
             put this engine in [[engines]] with a name",
            at(v.span(), "docker_host")
        );
    }
    Ok(())
}

/// The duration at `key`, or `default` where the file has none.
fn duration_or(
    value: &Option<Spanned<String>>,
    key: &str,
    default: Duration,
    at: At<'_>,
) -> anyhow::Result<Duration> {
    match value {
        Some(v) => parse_duration(v.get_ref()).context(at(v.span(), key)),
        None => Ok(default),
    }
}

/// `max_concurrency`, 1 to 4096.
fn max_concurrency(raw: &RawConfig, at: At<'_>) -> anyhow::Result<usize> {
    Ok(match &raw.max_concurrency {
        Some(v) => match usize::try_from(*v.get_ref()) {
            Ok(n) if (1..=4096).contains(&n) => n,
            _ => bail!(
                "{}: must be between 1 and 4096, got {}",
                at(v.span(), "max_concurrency"),
                v.get_ref()
            ),
        },
        None => DEFAULT_MAX_CONCURRENCY,
    })
}

/// `cpu_percent_min_window`, within [`CPU_PERCENT_MIN_WINDOW_RANGE`].
fn cpu_percent_min_window(raw: &RawConfig, at: At<'_>) -> anyhow::Result<Duration> {
    let Some(v) = &raw.cpu_percent_min_window else {
        return Ok(DEFAULT_CPU_PERCENT_MIN_WINDOW);
    };
    let key = "cpu_percent_min_window";
    let d = parse_duration(v.get_ref()).context(at(v.span(), key))?;
    let (lo, hi) = CPU_PERCENT_MIN_WINDOW_RANGE;
    if d < lo || d > hi {
        bail!(
            "{}: {:?} is out of range: from {} to {} (a shorter window aliases with the CPU quota, a longer one holds up a new container's first scrape)",
            at(v.span(), key),
            v.get_ref(),
            humantime::format_duration(lo),
            humantime::format_duration(hi)
        );
    }
    Ok(d)
}

/// `[labels]`: which container labels become metric labels, and on which
/// series.
fn label_export(labels: Option<RawLabels>, at: At<'_>) -> anyhow::Result<LabelExport> {
    let mut export = LabelExport::default();
    let Some(l) = labels else {
        return Ok(export);
    };
    if let Some(include) = l.include {
        export.include.clear();
        for key in include {
            let k = key.get_ref().trim();
            if k.is_empty() {
                bail!("{}: empty label key", at(key.span(), "labels.include"));
            }
            let name = label_name(k);
            if export.include.iter().any(|(_, n)| *n == name) {
                bail!(
                    "{}: {k:?} gives the metric label {name} a second time",
                    at(key.span(), "labels.include")
                );
            }
            export.include.push((k.to_string(), name));
        }
    }
    if let Some(on) = l.on {
        export.on = match on.get_ref().as_str() {
            "info" => LabelsOn::Info,
            "all" => LabelsOn::All,
            other => bail!(
                "{}: {other:?} is not \"info\" or \"all\"",
                at(on.span(), "labels.on")
            ),
        };
    }
    Ok(export)
}

/// `[containers]`: the names and label selectors that choose containers.
fn selection(containers: Option<RawContainers>, at: At<'_>) -> anyhow::Result<Selection> {
    let containers = containers.unwrap_or_default();
    let mut names = Vec::new();
    for n in containers.names.unwrap_or_default() {
        let name = n.get_ref().trim().trim_start_matches('/');
        if name.is_empty() {
            bail!("{}: empty container name", at(n.span(), "containers.names"));
        }
        names.push(name.to_string());
    }
    let mut selectors = Vec::new();
    for l in containers.labels.unwrap_or_default() {
        let sel = LabelSelector::parse(l.get_ref())
            .map_err(|e| anyhow::anyhow!("{}: {e}", at(l.span(), "containers.labels")))?;
        selectors.push(sel);
    }
    Ok(Selection::new(names, selectors))
}

/// `max_connections` (1 to 65536) and `max_connections_per_client` (1 to
/// `max_connections`).
fn connection_caps(raw: &RawConfig, at: At<'_>) -> anyhow::Result<(usize, usize)> {
    let cap = |v: &Option<Spanned<i64>>, key: &str, default: usize, most: usize| match v {
        None => Ok(default),
        Some(v) => match usize::try_from(*v.get_ref()) {
            Ok(n) if (1..=most).contains(&n) => Ok(n),
            _ => Err(anyhow::anyhow!(
                "{}: must be between 1 and {most}, got {}",
                at(v.span(), key),
                v.get_ref()
            )),
        },
    };
    let global = cap(
        &raw.max_connections,
        "max_connections",
        DEFAULT_MAX_CONNECTIONS,
        65536,
    )?;
    let per_client = cap(
        &raw.max_connections_per_client,
        "max_connections_per_client",
        DEFAULT_MAX_CONNECTIONS_PER_CLIENT.min(global),
        global,
    )?;
    Ok((global, per_client))
}

impl Config {
    /// Applies docker's TLS variables: `DOCKER_TLS_VERIFY` (any non-empty
    /// value) turns `tcp://` into TLS, `https://` always is; certificates come
    /// from `DOCKER_CERT_PATH`, else `~/.docker`.
    pub fn with_engine_tls(
        mut self,
        tls_verify: Option<String>,
        cert_path: Option<String>,
        home: Option<String>,
    ) -> Self {
        // A docker context brings its own TLS material; these variables
        // only apply to addresses given otherwise, as with the CLI.
        if matches!(self.engine_source, EngineSource::Docker(_)) {
            return self;
        }
        let verify = tls_verify.is_some_and(|v| !v.is_empty());
        let tcp = self.docker_host.starts_with("tcp://");
        if self.docker_host.starts_with("https://") || (tcp && verify) {
            let dir = cert_path
                .filter(|p| !p.is_empty())
                .map(PathBuf::from)
                .or_else(|| home.map(|h| Path::new(&h).join(".docker")))
                .unwrap_or_else(|| PathBuf::from(".docker"));
            self.docker_tls = Some(dir);
        }
        self
    }

    /// Where nothing named the engine, finds it as the docker CLI does: the
    /// current docker context (`DOCKER_CONTEXT`, else `currentContext` in
    /// its `config.json`), else the platform socket. `--docker-host`, the
    /// file's `docker_host` and `DOCKER_HOST` win over any context.
    pub fn with_docker_context(mut self, env: &DockerEnv) -> anyhow::Result<Self> {
        if self.engine_source != EngineSource::Default {
            return Ok(self);
        }
        let endpoint = crate::config::context::resolve(env)?;
        self.docker_host = endpoint.host;
        self.docker_tls = endpoint.tls;
        self.engine_source = EngineSource::Docker(endpoint.source);
        Ok(self)
    }
}

/// Validates `[[engines]]`: distinct names that fit in a URL query, a
/// supported address each, TLS with its own certificate directory.
fn parse_engines(list: &[RawEngine], at: At<'_>) -> anyhow::Result<Vec<EngineConfig>> {
    if list.is_empty() {
        bail!("config file: [[engines]] is empty; list at least one engine or leave it out");
    }
    let mut out: Vec<EngineConfig> = Vec::with_capacity(list.len());
    for e in list {
        let name = e.name.get_ref().trim();
        let name_ok = !name.is_empty()
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
        if !name_ok {
            bail!(
                "{}: {name:?} is not a name of letters, digits, '-', '_' or '.'",
                at(e.name.span(), "engines.name")
            );
        }
        if out.iter().any(|o| o.name == name) {
            bail!(
                "{}: the engine name {name:?} is used twice",
                at(e.name.span(), "engines.name")
            );
        }
        let docker_host = check_docker_host(e.docker_host.get_ref())
            .context(at(e.docker_host.span(), "engines.docker_host"))?;
        let verify = e.tls_verify.as_ref().is_some_and(|v| *v.get_ref());
        let tls = docker_host.starts_with("https://") || verify;
        let docker_tls = match (&e.cert_path, tls) {
            (Some(p), true) => Some(PathBuf::from(p.get_ref())),
            (None, true) => bail!(
                "{}: engine {name:?} is reached over TLS; give cert_path, the directory with \
                 its ca.pem, cert.pem and key.pem",
                at(e.name.span(), "engines")
            ),
            (Some(p), false) => bail!(
                "{}: cert_path is only used over TLS: set tls_verify = true or use https://",
                at(p.span(), "engines.cert_path")
            ),
            (None, false) => None,
        };
        out.push(EngineConfig {
            name: name.to_string(),
            docker_host,
            docker_tls,
        });
    }
    Ok(out)
}

fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset)
        .map_or(1, |before| before.matches('\n').count() + 1)
}

fn parse_listen(value: &str) -> anyhow::Result<SocketAddr> {
    value
        .parse()
        .with_context(|| format!("{value:?} is not an address like 0.0.0.0:8091 or [::1]:8091"))
}

/// Parses durations such as `500ms`, `10s`, `2m` or `1m30s`, more than
/// nothing and at most an hour.
pub fn parse_duration(value: &str) -> anyhow::Result<Duration> {
    let d = humantime::parse_duration(value.trim()).map_err(|e| {
        anyhow::anyhow!("{value:?} is not a duration like 500ms, 10s or 1m30s ({e})")
    })?;
    if d.is_zero() || d > Duration::from_secs(3600) {
        bail!("{value:?} must be more than 0 and at most 1h");
    }
    Ok(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> anyhow::Result<Config> {
        Config::parse("test.toml", text, &Overrides::default(), None)
    }

    fn err(text: &str) -> String {
        format!("{:#}", parse(text).unwrap_err())
    }

    #[test]
    fn empty_file_gives_defaults() {
        let c = parse("").unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8091");
        assert_eq!(c.docker_host, DEFAULT_DOCKER_HOST);
        assert_eq!(c.timeout, DEFAULT_TIMEOUT);
        assert_eq!(c.max_concurrency, DEFAULT_MAX_CONCURRENCY);
        assert!(c.selection.is_all());
    }

    #[test]
    fn example_config_is_valid() {
        let text = include_str!("../../config.example.toml");
        let c = parse(text).unwrap();
        assert!(!c.selection.is_all());
    }

    #[test]
    fn unknown_key_names_file_key_and_line() {
        let e = err("listen = \"127.0.0.1:1\"\nlisten_port = 3\n");
        assert!(e.contains("test.toml"), "{e}");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("listen_port"), "{e}");
    }

    #[test]
    fn connection_caps_default_and_are_checked() {
        let c = parse("").unwrap();
        assert_eq!(c.max_connections, DEFAULT_MAX_CONNECTIONS);
        assert_eq!(
            c.max_connections_per_client,
            DEFAULT_MAX_CONNECTIONS_PER_CLIENT
        );
        let c = parse("max_connections = 10\n").unwrap();
        assert_eq!((c.max_connections, c.max_connections_per_client), (10, 10));
        let e = err("max_connections = 0\n");
        assert!(e.contains("line 1, key `max_connections`"), "{e}");
        let e = err("max_connections = 100\nmax_connections_per_client = 101\n");
        assert!(
            e.contains("line 2, key `max_connections_per_client`") && e.contains("1 and 100"),
            "{e}"
        );
    }

    #[test]
    fn unknown_key_in_containers_table_is_rejected() {
        let e = err("[containers]\nname = [\"web\"]\n");
        assert!(e.contains("unknown field `name`"), "{e}");
        assert!(e.contains("line 2"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_key() {
        let e = err("[containers]\nnames = \"web\"\n");
        assert!(e.contains("line 2"), "{e}");
        assert!(e.contains("names"), "{e}");
    }

    #[test]
    fn empty_label_key_names_file_key_and_line() {
        let e = err("[containers]\nlabels = [\n  \"ok\",\n  \"=web\",\n]\n");
        assert!(
            e.contains("test.toml, line 4, key `containers.labels`"),
            "{e}"
        );
        assert!(e.contains("empty label key"), "{e}");
    }

    #[test]
    fn bad_listen_and_host_are_named() {
        let e = err("listen = \"8091\"\n");
        assert!(e.contains("key `listen`") && e.contains("line 1"), "{e}");
        let e = err("docker_host = \"ssh://me@host\"\n");
        assert!(
            e.contains("key `docker_host`") && e.contains("unsupported"),
            "{e}"
        );
        assert!(
            e.contains("ssh -nNT -L 127.0.0.1:2375:/var/run/docker.sock me@host"),
            "{e}"
        );
        let e = err("docker_host = \"ssh://me@host:2222\"\n");
        assert!(e.contains("docker.sock -p 2222 me@host`"), "{e}");
        let e = err("max_concurrency = 0\n");
        assert!(e.contains("key `max_concurrency`"), "{e}");
        let e = err("timeout = \"10 parsecs\"\n");
        assert!(e.contains("key `timeout`"), "{e}");
    }

    #[test]
    fn flags_win_over_file_and_file_over_environment() {
        let text = "listen = \"127.0.0.1:1\"\ndocker_host = \"tcp://file:2375\"\n";
        let flags = Overrides {
            listen: Some("127.0.0.1:2".into()),
            docker_host: Some("unix:///flag.sock".into()),
        };
        let c = Config::parse("t", text, &flags, Some("tcp://env:1".into())).unwrap();
        assert_eq!(c.listen.port(), 2);
        assert_eq!(c.docker_host, "unix:///flag.sock");
        let c =
            Config::parse("t", text, &Overrides::default(), Some("tcp://env:1".into())).unwrap();
        assert_eq!(c.docker_host, "tcp://file:2375");
        let c = Config::parse("t", "", &Overrides::default(), Some("tcp://env:1".into())).unwrap();
        assert_eq!(c.docker_host, "tcp://env:1");
    }

    #[test]
    fn any_named_engine_wins_over_the_docker_context() {
        // The context named here does not exist: looking at it would fail.
        let env = DockerEnv {
            docker_context: Some("nowhere".into()),
            docker_config: Some(PathBuf::from("/nonexistent/docker-config")),
            home: None,
        };
        let flag = Overrides {
            docker_host: Some("unix:///flag.sock".into()),
            ..Default::default()
        };
        let c = Config::parse("t", "", &flag, None)
            .unwrap()
            .with_docker_context(&env)
            .unwrap();
        assert_eq!(c.docker_host, "unix:///flag.sock");
        assert_eq!(c.engine_source, EngineSource::Flag);
        let c = parse("docker_host = \"tcp://file:1\"\n")
            .unwrap()
            .with_docker_context(&env)
            .unwrap();
        assert_eq!(
            c.engine_source.to_string(),
            "docker_host in config file test.toml"
        );
        let c = Config::parse("t", "", &Overrides::default(), Some("tcp://env:1".into()))
            .unwrap()
            .with_docker_context(&env)
            .unwrap();
        assert_eq!(c.docker_host, "tcp://env:1");
        assert_eq!(c.engine_source, EngineSource::Environment);
        // Nothing named: the context is looked up, and its error surfaces.
        let e = parse("").unwrap().with_docker_context(&env).unwrap_err();
        assert!(format!("{e:#}").contains("\"nowhere\""), "{e:#}");
        // No context anywhere: the platform socket.
        let c = parse("")
            .unwrap()
            .with_docker_context(&DockerEnv::default())
            .unwrap();
        assert_eq!(c.docker_host, DEFAULT_DOCKER_HOST);
        assert!(matches!(c.engine_source, EngineSource::Docker(_)));
    }

    #[test]
    fn tls_variables_do_not_apply_to_a_context_address() {
        let c = Config {
            docker_host: "tcp://ctx:2376".into(),
            engine_source: EngineSource::Docker("docker context \"r\"".into()),
            ..parse("").unwrap()
        };
        let c = c.with_engine_tls(Some("1".into()), Some("/certs".into()), None);
        assert_eq!(c.docker_tls, None);
    }

    #[test]
    fn missing_file_names_the_file() {
        let e = Config::load(
            Some(Path::new("/nonexistent/dse.toml")),
            &Overrides::default(),
            None,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/dse.toml"));
    }

    #[test]
    fn several_engines_each_with_a_name_and_their_own_tls() {
        let c = parse(
            "[[engines]]\nname = \"laptop\"\ndocker_host = \"unix:///run/docker.sock\"\n\
             [[engines]]\nname = \"build-box\"\ndocker_host = \"tcp://build:2376\"\n\
             tls_verify = true\ncert_path = \"/etc/dse/build\"\n",
        )
        .unwrap();
        assert_eq!(
            c.engines,
            vec![
                EngineConfig {
                    name: "laptop".into(),
                    docker_host: "unix:///run/docker.sock".into(),
                    docker_tls: None,
                },
                EngineConfig {
                    name: "build-box".into(),
                    docker_host: "tcp://build:2376".into(),
                    docker_tls: Some(PathBuf::from("/etc/dse/build")),
                },
            ]
        );
        // Today's single engine: no [[engines]] at all.
        assert!(parse("docker_host = \"tcp://h:2375\"\n")
            .unwrap()
            .engines
            .is_empty());
    }

    #[test]
    fn engine_list_mistakes_name_the_line() {
        let e = err("[[engines]]\nname = \"a\"\ndocker_host = \"unix:///a\"\n\
                     [[engines]]\nname = \"a\"\ndocker_host = \"unix:///b\"\n");
        assert!(e.contains("line 5") && e.contains("used twice"), "{e}");
        let e = err("[[engines]]\nname = \"a b\"\ndocker_host = \"unix:///a\"\n");
        assert!(e.contains("engines.name") && e.contains("line 2"), "{e}");
        let e = err("[[engines]]\nname = \"x\"\ndocker_host = \"https://h:2376\"\n");
        assert!(e.contains("cert_path"), "{e}");
        let e = err(
            "docker_host = \"unix:///a\"\n[[engines]]\nname = \"x\"\ndocker_host = \"unix:///b\"\n",
        );
        assert!(e.contains("line 1") && e.contains("[[engines]]"), "{e}");
        let e = err("[[engines]]\nname = \"x\"\n");
        assert!(e.contains("docker_host"), "{e}");
        let flag = Overrides {
            docker_host: Some("unix:///flag.sock".into()),
            ..Default::default()
        };
        let e = Config::parse(
            "t",
            "[[engines]]\nname = \"x\"\ndocker_host = \"unix:///b\"\n",
            &flag,
            None,
        )
        .unwrap_err();
        assert!(format!("{e:#}").contains("--docker-host"), "{e:#}");
    }

    #[test]
    fn label_allow_list_is_sanitised_and_checked() {
        let c = parse("").unwrap();
        assert_eq!(c.labels, LabelExport::default());
        assert_eq!(
            c.labels.include[1].1,
            "container_label_com_docker_compose_service"
        );
        let c = parse("[labels]\ninclude = [\"app.kubernetes.io/name\"]\non = \"all\"\n").unwrap();
        assert_eq!(
            c.labels.include,
            vec![(
                "app.kubernetes.io/name".to_string(),
                "container_label_app_kubernetes_io_name".to_string()
            )]
        );
        assert_eq!(c.labels.on, LabelsOn::All);
        let e = err("[labels]\ninclude = [\"a.b\", \"a-b\"]\n");
        assert!(e.contains("line 2") && e.contains("second time"), "{e}");
        let e = err("[labels]\non = \"everywhere\"\n");
        assert!(e.contains("key `labels.on`"), "{e}");
    }

    #[test]
    fn docker_tls_variables() {
        let c = |host: &str| {
            Config::parse(
                "t",
                "",
                &Overrides {
                    docker_host: Some(host.into()),
                    ..Default::default()
                },
                None,
            )
            .unwrap()
        };
        let home = Some("/home/u".to_string());
        assert_eq!(
            c("tcp://h:2376")
                .with_engine_tls(None, None, home.clone())
                .docker_tls,
            None
        );
        assert_eq!(
            c("tcp://h:2376")
                .with_engine_tls(Some("1".into()), None, home.clone())
                .docker_tls,
            Some(PathBuf::from("/home/u/.docker"))
        );
        assert_eq!(
            c("https://h:2376")
                .with_engine_tls(None, Some("/certs".into()), home.clone())
                .docker_tls,
            Some(PathBuf::from("/certs"))
        );
        assert_eq!(
            c("unix:///s.sock")
                .with_engine_tls(Some("1".into()), None, home)
                .docker_tls,
            None
        );
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(
            parse_duration("1500ms").unwrap(),
            Duration::from_millis(1500)
        );
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("0s").is_err());
        assert!(parse_duration("5").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cpu_percent_min_window_is_checked_and_keeps_its_old_name() {
        assert_eq!(
            parse("").unwrap().cpu_percent_min_window,
            DEFAULT_CPU_PERCENT_MIN_WINDOW
        );
        let c = parse("cpu_percent_min_window = \"2s\"").unwrap();
        assert_eq!(c.cpu_percent_min_window, Duration::from_secs(2));
        let c = parse("first_cpu_window = \"500ms\"").unwrap();
        assert_eq!(c.cpu_percent_min_window, Duration::from_millis(500));
        let e = err("timeout = \"10s\"\ncpu_percent_min_window = \"50ms\"");
        assert!(
            e.contains("test.toml, line 2")
                && e.contains("cpu_percent_min_window")
                && e.contains("100ms"),
            "{e}"
        );
        let e = err("cpu_percent_min_window = \"6s\"");
        assert!(e.contains("out of range") && e.contains("5s"), "{e}");
        let e = err("cpu_percent_min_window = \"soon\"");
        assert!(e.contains("cpu_percent_min_window"), "{e}");
    }
}
