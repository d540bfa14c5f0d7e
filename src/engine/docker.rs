//! The engine over its real API: a unix socket, TCP, or TCP with TLS as the
//! docker CLI sets it up, each answer decoded into `model.rs`'s types (a
//! Windows named pipe through bollard's own client).

use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use bollard::errors::Error as BollardError;
use futures::FutureExt;

use crate::engine::socket_access;
use bytes::Bytes;

use super::model::{Info, Inspect, Stats, Summary, Version};
use super::transport::Transport;
use super::{
    ContainerRef, EngineApi, EngineError, EngineFuture, EngineInfo, EngineVersion, Failure, Flavor,
    ListQuery, Listed,
};

/// First pause before a request the engine's full listen queue refused is
/// sent again; it doubles up to [`BUSY_RETRY_MAX`].
const BUSY_RETRY_FIRST: Duration = Duration::from_millis(5);
const BUSY_RETRY_MAX: Duration = Duration::from_millis(200);

/// A lazily connected engine client. Connecting fails while the socket file
/// is missing; it is retried at the next request, and once made the client
/// is reused by every request after.
#[derive(Debug)]
pub struct DockerEngine {
    host: String,
    request_timeout: Duration,
    tls: Option<PathBuf>,
    client: Mutex<Option<Connected>>,
}

/// A made client: the transport the exporter sends its requests on and
/// decodes their answers from, or on Windows the client library's own
/// client for a named pipe.
#[derive(Debug, Clone)]
enum Connected {
    Transport(Transport),
    #[cfg(windows)]
    Pipe(bollard::Docker),
}

impl DockerEngine {
    /// An engine at `host` (`unix://`, `tcp://`, `http://`, `https://`);
    /// nothing is contacted until the first request. `request_timeout` backs
    /// up the scrape's own deadline.
    pub fn new(host: impl Into<String>, request_timeout: Duration) -> Self {
        Self {
            host: host.into(),
            request_timeout,
            tls: None,
            client: Mutex::new(None),
        }
    }

    /// Reaches the engine over TLS with `ca.pem`, `cert.pem` and `key.pem`
    /// from `dir`.
    pub fn with_tls(mut self, dir: Option<PathBuf>) -> Self {
        self.tls = dir;
        self
    }

    fn client(&self) -> Result<Connected, EngineError> {
        let mut slot = self.client.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(made) = slot.as_ref() {
            return Ok(made.clone());
        }
        let made = self.connect().map_err(|e: anyhow::Error| {
            EngineError::new(
                Failure::Engine,
                format!("cannot connect to the engine at {}: {e:#}", self.host),
            )
        })?;
        *slot = Some(made.clone());
        Ok(made)
    }

    fn connect(&self) -> anyhow::Result<Connected> {
        let transport = if let Some(dir) = &self.tls {
            super::tls::connect(&self.host, dir)?
        } else if self.host.starts_with("unix://") {
            super::plain::connect_unix(&self.host)?
        } else if self.host.starts_with("npipe://") {
            return named_pipe(&self.host);
        } else {
            super::plain::connect_tcp(&self.host)
        };
        Ok(Connected::Transport(transport))
    }

    /// The client library's client where the engine is a named pipe.
    #[cfg(windows)]
    fn pipe(&self) -> Result<Option<bollard::Docker>, EngineError> {
        Ok(match self.client()? {
            Connected::Pipe(d) => Some(d),
            Connected::Transport(_) => None,
        })
    }

    /// Runs `call` on the named pipe's client ([`while_busy`]).
    #[cfg(windows)]
    async fn on_pipe<T, F, Fut>(&self, call: F) -> Result<T, EngineError>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<T, BollardError>>,
    {
        while_busy(call).await.map_err(|e| self.classify(e))
    }

    /// Sorts a client error into the kinds a scrape counts; a socket that
    /// refused the connection for lack of permission gets the fix first.
    fn classify(&self, err: BollardError) -> EngineError {
        let mut e = classify(&err);
        if let Some(fix) = io_error(&err).and_then(|io| socket_access::advice(&self.host, io)) {
            e.message = format!("{fix}: {}", e.message);
        }
        e
    }
}

impl DockerEngine {
    /// `GET path` through the transport, by the request timeout, sent again
    /// while the engine's listen queue is full: the body of a 2xx answer,
    /// else the engine's error as the client library would report it.
    async fn get(&self, path: &str) -> Result<Bytes, EngineError> {
        #[allow(irrefutable_let_patterns)] // a named pipe only on Windows
        let Connected::Transport(transport) = self.client()?
        else {
            return Err(EngineError::new(
                Failure::Engine,
                format!("{}: no such request on this transport", self.host),
            ));
        };
        let answer = while_busy(|| async {
            tokio::time::timeout(self.request_timeout, transport.get(path))
                .await
                .unwrap_or(Err(BollardError::RequestTimeoutError))
        })
        .await
        .map_err(|e| self.classify(e))?;
        match answer {
            (status, body) if status.is_success() => Ok(body),
            (status, body) => Err(self.classify(BollardError::DockerResponseServerError {
                status_code: status.as_u16(),
                message: engine_message(&body),
            })),
        }
    }

    /// `GET path`, decoded as `T`.
    async fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<T, EngineError> {
        decode(path, &self.get(path).await?)
    }

    /// The cgroup controllers Podman's own `/libpod/info` lists for its
    /// containers; `None` from Docker (no such path) or when it fails: the
    /// compatible `/info` does not tell.
    async fn podman_cgroup_controllers(&self) -> Option<Vec<String>> {
        match self.get("/v4.0.0/libpod/info").await {
            Ok(body) => podman_controllers(&body),
            Err(e) => {
                tracing::debug!("GET /v4.0.0/libpod/info: {e}");
                None
            }
        }
    }
}

/// Sends the request `send` makes, again while the engine's listen queue is
/// full (EAGAIN on a unix socket under a burst of connections): the scrape's
/// deadline, not this loop, decides when to give up.
async fn while_busy<T, Fut>(send: impl Fn() -> Fut) -> Result<T, BollardError>
where
    Fut: Future<Output = Result<T, BollardError>>,
{
    let mut pause = BUSY_RETRY_FIRST;
    loop {
        match send().await {
            Err(e) if listen_queue_full(&e) => {
                tracing::debug!("engine busy ({e}); asking again in {pause:?}");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(BUSY_RETRY_MAX);
            }
            other => return other,
        }
    }
}

/// The answer to `GET path` decoded as `T`.
fn decode<T: serde::de::DeserializeOwned>(path: &str, body: &[u8]) -> Result<T, EngineError> {
    serde_json::from_slice(body).map_err(|e| {
        EngineError::new(
            Failure::Decode,
            format!("GET {path}: the answer did not decode: {e}"),
        )
    })
}

/// The `message` of an engine's error answer, else its text.
fn engine_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct Message {
        message: String,
    }
    match serde_json::from_slice::<Message>(body) {
        Ok(m) => m.message,
        Err(_) => String::from_utf8_lossy(body).trim().to_string(),
    }
}

/// `host.cgroupControllers` of a `/libpod/info` answer.
fn podman_controllers(body: &[u8]) -> Option<Vec<String>> {
    #[derive(serde::Deserialize)]
    struct Info {
        host: Host,
    }
    #[derive(serde::Deserialize)]
    struct Host {
        #[serde(rename = "cgroupControllers")]
        cgroup_controllers: Option<Vec<String>>,
    }
    serde_json::from_slice::<Info>(body)
        .ok()?
        .host
        .cgroup_controllers
}

impl EngineApi for DockerEngine {
    fn host(&self) -> &str {
        &self.host
    }

    fn ping(&self) -> EngineFuture<'_, ()> {
        async move {
            #[cfg(windows)]
            if let Some(d) = self.pipe()? {
                return self.on_pipe(|| d.ping()).await.map(|_| ());
            }
            self.get("/_ping").await.map(|_| ())
        }
        .boxed()
    }

    fn version(&self) -> EngineFuture<'_, EngineVersion> {
        async move {
            #[cfg(windows)]
            if let Some(d) = self.pipe()? {
                let v = self.on_pipe(|| d.version()).await?;
                return remodel(&v).map(engine_version);
            }
            self.get_json("/version").await.map(engine_version)
        }
        .boxed()
    }

    fn info(&self) -> EngineFuture<'_, EngineInfo> {
        async move {
            #[cfg(windows)]
            if let Some(d) = self.pipe()? {
                let i = self.on_pipe(|| d.info()).await?;
                return remodel(&i).map(|i| machine(&i));
            }
            let mut info = machine(&self.get_json("/info").await?);
            if info.rootless {
                info.cgroup_controllers = self.podman_cgroup_controllers().await;
            }
            Ok(info)
        }
        .boxed()
    }

    fn list<'a>(&'a self, query: &'a ListQuery) -> EngineFuture<'a, Vec<Listed>> {
        async move {
            let summaries: Vec<Summary> = self.get_json(&list_path(query)).await.map_err(|e| {
                EngineError::new(e.kind, format!("listing containers at {}: {e}", self.host))
            })?;
            Ok(summaries.into_iter().filter_map(listed).collect())
        }
        .boxed()
    }

    fn inspect<'a>(&'a self, id: &'a str) -> EngineFuture<'a, Inspect> {
        async move {
            // Named pipes go through bollard's own client (Windows only).
            #[cfg(windows)]
            if let Some(d) = self.pipe()? {
                let answer = self.on_pipe(|| d.inspect_container(id, None)).await?;
                return remodel(&answer);
            }
            self.get_json(&format!("/containers/{id}/json")).await
        }
        .boxed()
    }

    fn stats<'a>(&'a self, id: &'a str, one_shot: bool) -> EngineFuture<'a, Option<Stats>> {
        async move {
            #[cfg(windows)]
            if let Some(d) = self.pipe()? {
                use bollard::query_parameters::StatsOptionsBuilder;
                use futures::StreamExt;
                let answer = self
                    .on_pipe(|| {
                        let options = StatsOptionsBuilder::default()
                            .stream(false)
                            .one_shot(one_shot)
                            .build();
                        let d = d.clone();
                        async move { d.stats(id, Some(options)).next().await.transpose() }
                    })
                    .await?;
                return answer.map(|a| remodel(&a)).transpose();
            }
            let path = format!("/containers/{id}/stats?stream=false&one-shot={one_shot}");
            let body = self.get(&path).await?;
            stats_answer(&path, &body)
        }
        .boxed()
    }
}

/// A stats call's answer: `None` for an empty body (the container was
/// removed during the call). Podman 5 answers failures with status 200 and
/// its error object as the body: a container that stopped is gone from the
/// scrape (its `cause` is Podman's `container is stopped`); any other, such
/// as its "nil pointer dereference" for a container with
/// `--memory-reservation` alone, is the engine's error.
fn stats_answer(path: &str, body: &[u8]) -> Result<Option<Stats>, EngineError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let stats: Stats = decode(path, body)?;
    if stats.read.is_none() {
        #[derive(serde::Deserialize)]
        struct InBody {
            message: String,
            response: u16,
            #[serde(default)]
            cause: String,
        }
        if let Ok(e) = serde_json::from_slice::<InBody>(body) {
            let kind = match e.response {
                404 | 409 => Failure::Gone,
                _ if e.cause == "container is stopped" => Failure::Gone,
                _ => Failure::Engine,
            };
            let message = format!(
                "GET {path}: the engine answered 200 with its error {}: {}",
                e.response, e.message
            );
            return Err(EngineError::new(kind, message));
        }
    }
    Ok(Some(stats))
}

/// A client library model as the engine stage's own type, through the JSON
/// both describe (named pipes only, where requests go through the library).
#[cfg(windows)]
fn remodel<T: serde::Serialize, U: serde::de::DeserializeOwned>(
    answer: &T,
) -> Result<U, EngineError> {
    serde_json::to_value(answer)
        .and_then(serde_json::from_value)
        .map_err(|e| EngineError::new(Failure::Decode, format!("re-reading an answer: {e}")))
}

/// A Windows named pipe, through bollard's own client for them.
#[cfg(windows)]
fn named_pipe(host: &str) -> anyhow::Result<Connected> {
    Ok(Connected::Pipe(bollard::Docker::connect_with_host(host)?))
}

#[cfg(not(windows))]
fn named_pipe(host: &str) -> anyhow::Result<Connected> {
    anyhow::bail!("{host}: named pipes exist only on Windows")
}

/// Docker or Podman, and the version it gives.
fn engine_version(v: Version) -> EngineVersion {
    let podman = v
        .components
        .unwrap_or_default()
        .iter()
        .any(|c| c.name.as_deref().is_some_and(|n| n.contains("Podman")));
    EngineVersion {
        flavor: if podman {
            Flavor::Podman
        } else {
            Flavor::Docker
        },
        version: v.version.unwrap_or_default(),
    }
}

/// The machine as an `/info` answer describes it (the cgroup controllers
/// of a rootless Podman come from a call of their own).
fn machine(i: &Info) -> EngineInfo {
    let rootless = i
        .security_options
        .as_deref()
        .unwrap_or_default()
        .iter()
        .any(|o| o.split(',').any(|kv| kv == "name=rootless"));
    EngineInfo {
        cpus: i.ncpu.and_then(|n| u64::try_from(n).ok()),
        memory_bytes: i.mem_total.and_then(|n| u64::try_from(n).ok()),
        cgroup_driver: i.cgroup_driver.clone(),
        cgroup_version: i.cgroup_version.clone(),
        rootless,
        cgroup_controllers: None,
    }
}

/// `GET /containers/json` for `query`: stopped containers too with `all`,
/// writable-layer sizes with `size`, the engine's own label filters.
fn list_path(query: &ListQuery) -> String {
    let mut path = format!("/containers/json?all={}&size={}", query.all, query.size);
    if !query.label_filters.is_empty() {
        let filters = serde_json::json!({ "label": query.label_filters }).to_string();
        path.push_str("&filters=");
        path.push_str(&query_encode(&filters));
    }
    path
}

/// `text` as a query value: every byte but the unreserved ones as `%XX`.
fn query_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn listed(s: Summary) -> Option<Listed> {
    let (Some(id), Some(names)) = (s.id, s.names) else {
        return None;
    };
    let name = names.first()?.trim_start_matches('/').to_string();
    // Podman's `stopped` is a container that has just exited: `exited`
    // moments later, and so for the scrape.
    let state = match s.state.unwrap_or_default() {
        st if st == "stopped" => "exited".to_string(),
        st => st,
    };
    Some(Listed {
        container: ContainerRef {
            id,
            name,
            labels: s.labels.unwrap_or_default(),
            image: s.image.unwrap_or_default(),
            image_id: s.image_id.unwrap_or_default(),
            state,
            status: s.status.unwrap_or_default(),
            size_rw: s.size_rw.and_then(|n| u64::try_from(n).ok()),
            health: s
                .health
                .map(|h| h.status.filter(|st| !st.is_empty() && st != "none")),
        },
        names,
    })
}

/// Sorts a client error into the kinds a scrape counts.
fn classify(err: &BollardError) -> EngineError {
    let kind = match err {
        // 404: removed; 409: Podman's answer for a stopped container.
        BollardError::DockerResponseServerError {
            status_code: 404 | 409,
            ..
        } => Failure::Gone,
        BollardError::JsonDataError { .. } | BollardError::JsonSerdeError { .. } => Failure::Decode,
        BollardError::RequestTimeoutError => Failure::Timeout,
        _ => Failure::Engine,
    };
    EngineError::new(kind, error_chain(err))
}

/// The error and its causes on one line: bollard's own message often hides
/// the cause that says what to do ("Permission denied").
fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = cause.source();
    }
    out
}

/// The I/O error behind a client error, if one is.
fn io_error(err: &BollardError) -> Option<&std::io::Error> {
    // `IOError` is transparent: its `source()` skips the io::Error itself.
    if let BollardError::IOError { err } = err {
        return Some(err);
    }
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(err);
    while let Some(e) = source {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = e.source();
    }
    None
}

/// Whether the request failed because the engine's listen queue was full:
/// a non-blocking connect to a unix socket then fails with EAGAIN.
fn listen_queue_full(err: &BollardError) -> bool {
    io_error(err).is_some_and(|io| io.kind() == std::io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_and_info_answers_decode_into_the_stage_types() {
        let v = include_str!("../../tests/fixtures/version-docker26.1.json");
        let v = engine_version(serde_json::from_str(v).unwrap());
        assert_eq!(v.flavor, Flavor::Docker);
        assert_eq!(v.version, "26.1.5+dfsg1");
        let podman = r#"{"Components":[{"Name":"Podman Engine"}],"Version":"5.4.2"}"#;
        assert_eq!(
            engine_version(serde_json::from_str(podman).unwrap()).flavor,
            Flavor::Podman
        );

        let i = include_str!("../../tests/fixtures/info-docker26.1.json");
        let i = machine(&serde_json::from_str(i).unwrap());
        assert_eq!(i.cpus, Some(2));
        assert_eq!(i.memory_bytes, Some(25_276_502_016));
        assert_eq!(i.cgroup_driver.as_deref(), Some("cgroupfs"));
        assert_eq!(i.cgroup_version.as_deref(), Some("1"));
        assert!(!i.rootless);
        let rootless = r#"{"NCPU":2,"SecurityOptions":["name=seccomp,profile=default","name=rootless"],"CgroupVersion":"2"}"#;
        let i = machine(&serde_json::from_str(rootless).unwrap());
        assert!(i.rootless);
        assert_eq!(i.memory_bytes, None);
    }

    #[test]
    fn health_is_taken_from_lists_that_carry_it() {
        let text = include_str!("../../tests/fixtures/containers-list-api1.52-published.json");
        let list: Vec<Summary> = serde_json::from_str(text).unwrap();
        let health: Vec<_> = list
            .into_iter()
            .filter_map(listed)
            .map(|l| (l.container.name, l.container.health))
            .collect();
        assert_eq!(
            health,
            [
                (
                    "funny_chatelet".to_string(),
                    Some(Some("healthy".to_string()))
                ),
                ("no_check".to_string(), Some(None)),
            ]
        );
        let older = include_str!("../../tests/fixtures/containers-list-docker20.10.json");
        let list: Vec<Summary> = serde_json::from_str(older).unwrap();
        assert!(list
            .into_iter()
            .filter_map(listed)
            .all(|l| l.container.health.is_none()));
    }

    #[test]
    fn a_state_outside_dockers_list_spares_the_rest_of_the_list() {
        // Podman's `stopped`, which bollard's list type refused for the
        // whole answer.
        let text = r#"[
            {"Id":"a1","Names":["/web"],"State":"running","Status":"Up 1 minute"},
            {"Id":"b2","Names":["/job"],"State":"stopped","Status":"Stopped"},
            {"Id":"c3","Names":["/odd"],"State":"something-new","Labels":null}
        ]"#;
        let list: Vec<Summary> = serde_json::from_str(text).unwrap();
        let states: Vec<(String, String)> = list
            .into_iter()
            .filter_map(listed)
            .map(|l| (l.container.name, l.container.state))
            .collect();
        assert_eq!(
            states,
            [
                ("web".to_string(), "running".to_string()),
                ("job".to_string(), "exited".to_string()),
                ("odd".to_string(), "something-new".to_string()),
            ]
        );
    }

    #[test]
    fn list_requests_carry_their_filters_encoded() {
        let query = ListQuery {
            all: true,
            label_filters: vec!["com.example.group=web".into()],
            size: false,
        };
        assert_eq!(
            list_path(&query),
            "/containers/json?all=true&size=false&filters=\
             %7B%22label%22%3A%5B%22com.example.group%3Dweb%22%5D%7D"
        );
        assert_eq!(
            list_path(&ListQuery::default()),
            "/containers/json?all=false&size=false"
        );
    }

    #[test]
    fn podmans_controllers_come_from_its_own_info() {
        let text =
            include_str!("../../tests/fixtures/libpod-info-podman5.4-rootless-nodelegate.json");
        assert_eq!(
            podman_controllers(text.as_bytes()),
            Some(vec!["memory".to_string(), "pids".to_string()])
        );
        assert_eq!(podman_controllers(b"Not Found"), None);
        assert_eq!(podman_controllers(br#"{"host":{}}"#), None);
    }

    #[test]
    fn an_error_in_a_200_stats_answer_is_the_engines_error() {
        let path = "/containers/x/stats?stream=false&one-shot=true";
        let body = include_bytes!("../../tests/fixtures/stats-podman5.4-in-body-error.json");
        let e = stats_answer(path, body).unwrap_err();
        assert_eq!(e.kind, Failure::Engine);
        assert!(
            e.message.contains("nil pointer dereference"),
            "{}",
            e.message
        );
        let gone = br#"{"cause":"no such container","message":"no such container","response":404}"#;
        assert_eq!(stats_answer(path, gone).unwrap_err().kind, Failure::Gone);
        let stopped = include_bytes!("../../tests/fixtures/stats-podman5.4-in-body-stopped.json");
        assert_eq!(stats_answer(path, stopped).unwrap_err().kind, Failure::Gone);
        assert!(stats_answer(path, b" \n").unwrap().is_none());
        // A stopped container's stats: no read time and no error either.
        let stopped = stats_answer(path, br#"{"read":"0001-01-01T00:00:00Z"}"#).unwrap();
        assert!(stopped.is_some());
        let podman =
            include_bytes!("../../tests/fixtures/stats-podman5.4-cgroupv2-rootless-io.json");
        assert!(stats_answer(path, podman).unwrap().is_some());
    }

    #[test]
    fn not_found_and_conflict_mean_gone() {
        for code in [404, 409] {
            let e = classify(&BollardError::DockerResponseServerError {
                status_code: code,
                message: "no such container".into(),
            });
            assert_eq!(e.kind, Failure::Gone);
        }
        let e = classify(&BollardError::DockerResponseServerError {
            status_code: 500,
            message: "boom".into(),
        });
        assert_eq!(
            (e.kind, e.message.contains("boom")),
            (Failure::Engine, true)
        );
    }

    #[test]
    fn a_full_listen_queue_is_recognised_through_the_error_chain() {
        let busy = BollardError::IOError {
            err: std::io::Error::from(std::io::ErrorKind::WouldBlock),
        };
        assert!(listen_queue_full(&busy));
        let refused = BollardError::IOError {
            err: std::io::Error::from(std::io::ErrorKind::ConnectionRefused),
        };
        assert!(!listen_queue_full(&refused));
    }
}
