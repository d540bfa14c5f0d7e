//! The live view's routes in process, through `app()` with scripted engines:
//! `/api/containers` is the same snapshot as `/metrics` with the same
//! selection parameters, names the engine that does not answer, and the page
//! comes with a strict Content-Security-Policy.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use common::http::Get;
use common::Metrics;
use docker_stats_exporter::engine::fake::{Behaviour, FakeEngine};
use docker_stats_exporter::engine::EngineApi;
use serde_json::Value;

/// `app()` served in process on 127.0.0.1:0; stops when dropped.
pub struct InProcess {
    pub addr: std::net::SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl InProcess {
    pub async fn serve(state: Arc<docker_stats_exporter::AppState>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = docker_stats_exporter::app(state);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, task }
    }

    async fn metrics(&self) -> Metrics {
        let (status, body) = common::get(self.addr, "/metrics", &[]).await;
        assert_eq!(status, 200, "{body}");
        Metrics::parse(&body)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An exporter reading one unnamed scripted engine.
async fn exporter(engine: &FakeEngine) -> InProcess {
    exporter_with("", engine).await
}

async fn exporter_with(config: &str, engine: &FakeEngine) -> InProcess {
    let config = common::Exporter::config(config, "unix:///run/fake-engine.sock");
    let engine: Arc<dyn EngineApi> = Arc::new(engine.clone());
    InProcess::serve(docker_stats_exporter::state_with_engine(&config, engine)).await
}

fn engine_with(names: &[&str]) -> FakeEngine {
    let e = FakeEngine::docker("26.1.5");
    for n in names {
        e.add(n, 100_000_000);
    }
    e
}

async fn api(addr: std::net::SocketAddr, path: &str) -> (u16, Option<String>, Value) {
    let answer = Get::new(addr, path).send().await.unwrap();
    let json = serde_json::from_str(&answer.body)
        .unwrap_or_else(|e| panic!("{path}: not JSON ({e}): {}", answer.body));
    (
        answer.status,
        answer.header("content-type").map(str::to_string),
        json,
    )
}

fn names(json: &Value) -> Vec<&str> {
    json["containers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn containers_as_json_match_metrics() {
    let engine = engine_with(&["web", "db"]);
    let mut labels = HashMap::new();
    labels.insert("com.docker.compose.project".to_string(), "shop".to_string());
    labels.insert(
        "com.docker.compose.service".to_string(),
        "cache".to_string(),
    );
    engine.add_with("cache", "running", 0, labels, Behaviour::default());
    let exporter = exporter(&engine).await;

    let (status, content_type, json) = api(exporter.addr, "/api/containers").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert!(json.get("error").is_none(), "{json}");
    assert_eq!(names(&json), ["cache", "db", "web"]);
    let engines = json["engines"].as_array().unwrap();
    assert_eq!(engines.len(), 1);
    assert_eq!(engines[0]["up"], true);
    assert_eq!(engines[0]["host"], "fake://engine");
    assert_eq!(engines[0]["cpus"], 2);

    let m = exporter.metrics().await;
    for c in json["containers"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        assert_eq!(
            c["memory_usage_bytes"].as_f64(),
            m.get("container_memory_usage_bytes", name),
            "{c}"
        );
        assert_eq!(
            c["restarts"].as_f64(),
            m.get("container_restarts_total", name)
        );
        assert_eq!(c["image"], "busybox:latest");
        assert_eq!(c["state"], "running");
        // The scripted engine reports no block I/O or network: left out, not 0.
        for absent in [
            "fs_read_bytes_total",
            "fs_write_bytes_total",
            "network_rx_bytes_total",
        ] {
            assert!(c.get(absent).is_none(), "{absent} in {c}");
        }
        assert!(c["cpu_seconds_total"].as_f64().unwrap() > 0.0, "{c}");
    }
    let cache = &json["containers"][0];
    assert_eq!(cache["compose_project"], "shop");
    assert_eq!(cache["compose_service"], "cache");
    // The allow-listed labels, as /metrics exports them.
    assert_eq!(cache["labels"]["com.docker.compose.project"], "shop");
    assert!(json["containers"][1].get("compose_project").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn the_selection_parameters_of_metrics_apply() {
    let engine = engine_with(&["web", "db", "cache"]);
    let exporter = exporter(&engine).await;
    let (status, _, json) = api(exporter.addr, "/api/containers?name=web&name=db").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(names(&json), ["db", "web"]);

    let (status, content_type, json) = api(exporter.addr, "/api/containers?nmae=web").await;
    assert_eq!(status, 400);
    assert_eq!(content_type.as_deref(), Some("application/json"));
    let error = json["error"].as_str().unwrap();
    assert!(
        error.contains("unknown query parameter \"nmae\""),
        "{error}"
    );

    let (status, _, json) = api(exporter.addr, "/api/containers?engine=other").await;
    assert_eq!(status, 400);
    assert!(
        json["error"].as_str().unwrap().contains("engine="),
        "{json}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_engine_that_does_not_answer_is_named_in_a_json_error() {
    let engine = engine_with(&["web"]);
    let exporter = exporter(&engine).await;
    engine.set_down(true);
    let (status, content_type, json) = api(exporter.addr, "/api/containers").await;
    assert_eq!(status, 503, "{json}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    // Why, in the engine's words, as /readyz and the log give it.
    let why = "connection refused (fake engine is down)";
    assert_eq!(
        json["error"],
        format!("engine fake://engine not answering: {why}")
    );
    assert_eq!(json["engines"][0]["up"], false);
    assert_eq!(json["engines"][0]["error"], why);
    assert_eq!(json["containers"].as_array().unwrap().len(), 0);

    engine.set_down(false);
    let (status, _, json) = api(exporter.addr, "/api/containers").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(names(&json), ["web"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn with_several_engines_the_others_still_answer() {
    let (a, b) = (engine_with(&["web"]), engine_with(&["cache"]));
    b.set_down(true);
    let engines: Vec<(&str, Arc<dyn EngineApi>)> =
        vec![("laptop", Arc::new(a.clone())), ("buildbox", Arc::new(b))];
    let exporter = common::Exporter::with_engines(engines).await;
    let (status, _, json) = api(exporter.addr, "/api/containers").await;
    assert_eq!(status, 503);
    let error = json["error"].as_str().unwrap();
    assert!(
        error.starts_with("engine buildbox (") && error.contains(") not answering: "),
        "{error}"
    );
    assert_eq!(names(&json), ["web"]);
    assert_eq!(json["containers"][0]["engine"], "laptop");

    let (status, _, json) = api(exporter.addr, "/api/containers?engine=laptop").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(json["engines"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_page_and_its_assets_carry_a_strict_csp() {
    let exporter = exporter(&engine_with(&["web"])).await;
    let csp = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
               img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";
    for (path, kind) in [
        ("/", "text/html"),
        ("/live.js", "text/javascript"),
        ("/live.css", "text/css"),
    ] {
        let answer = Get::new(exporter.addr, path).send().await.unwrap();
        assert_eq!(answer.status, 200, "{path}");
        assert_eq!(
            answer.header("content-security-policy"),
            Some(csp),
            "{path}"
        );
        assert_eq!(answer.header("x-content-type-options"), Some("nosniff"));
        let content_type = answer.header("content-type").unwrap_or_default();
        assert!(content_type.starts_with(kind), "{path}: {content_type}");
    }
    let page = Get::new(exporter.addr, "/").send().await.unwrap().body;
    for link in ["/metrics", "/healthz", "/readyz", "/api/containers"] {
        assert!(page.contains(&format!("href=\"{link}\"")), "{link}: {page}");
    }
    assert!(page.contains("<code>fake://engine</code>"), "{page}");
    assert!(page.contains("Selected: every running container"));
}

#[tokio::test(flavor = "multi_thread")]
async fn the_landing_page_escapes_the_configured_selection() {
    let exporter = exporter_with(
        "[containers]\nnames = [\"<b>web</b>\"]\n",
        &engine_with(&["web"]),
    )
    .await;
    let page = Get::new(exporter.addr, "/").send().await.unwrap().body;
    assert!(page.contains("names: [&lt;b&gt;web&lt;/b&gt;]"), "{page}");
    assert!(!page.contains("<b>web"));
}

#[tokio::test(flavor = "multi_thread")]
async fn json_requests_share_rounds_with_metrics_and_nothing_runs_between_them() {
    let engine = engine_with(&["web", "db"]);
    engine.set_behaviour(
        "web",
        Behaviour {
            stats_delay: Duration::from_millis(600),
            ..Default::default()
        },
    );
    let exporter = exporter(&engine).await;
    let before = engine.calls();
    assert_eq!(before.list, 0, "nothing asked before a request");
    let addr = exporter.addr;
    let page = tokio::spawn(async move { api(addr, "/api/containers").await });
    common::wait_until_async("the round's list call", Duration::from_secs(10), || async {
        match engine.calls().list {
            0 => Err("no list call yet".to_string()),
            _ => Ok(()),
        }
    })
    .await;
    // /metrics arriving while the page's round is in flight joins it.
    let metrics = exporter.metrics().await;
    let (status, _, json) = page.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(engine.calls().list, 1, "one round for both");
    assert_eq!(
        json["containers"][1]["memory_usage_bytes"].as_f64(),
        metrics.get("container_memory_usage_bytes", "web")
    );
    let after = engine.calls();
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(engine.calls(), after, "no engine call without a request");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_true_adds_every_stopped_container_with_its_exit_code() {
    let engine = engine_with(&["web"]);
    engine.add_with("ended", "exited", 0, HashMap::new(), Behaviour::default());
    let exporter = exporter(&engine).await;
    let (status, _, json) = api(exporter.addr, "/api/containers").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(names(&json), ["web"]);
    let (status, _, json) = api(exporter.addr, "/api/containers?stopped=true").await;
    assert_eq!(status, 200, "{json}");
    assert_eq!(names(&json), ["ended", "web"]);
    let ended = &json["containers"][0];
    assert_eq!(ended["state"], "exited");
    assert_eq!(ended["exit_code"], 0, "{ended}");
    assert!(ended.get("cpu_percent").is_none(), "{ended}");
    // A running container has no exit code.
    assert!(json["containers"][1].get("exit_code").is_none());
    let (status, _, json) = api(exporter.addr, "/api/containers?stopped=maybe").await;
    assert_eq!(status, 400);
    assert!(
        json["error"].as_str().unwrap().contains("stopped="),
        "{json}"
    );
}
