//! docker-stats-exporter: a Prometheus exporter for container stats, collected
//! from the engine at scrape time.

// The stages, in the order one scrape's data flows through them; each may
// use only the stages above it in this list (tests/architecture.rs).

// Flags, configuration file, docker contexts and container selection.
pub mod config;
// The engine API behind a trait: transports, the call limit, a fake engine.
pub mod engine;
// One round of engine calls per scrape, frozen into a snapshot.
pub mod scrape;
// The snapshot encoded as Prometheus text or OpenMetrics.
pub mod exposition;
// Routes, the server and its web configuration.
pub mod http;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

pub use crate::http::{app, AppState};

/// Shared state for a validated configuration. Nothing is contacted yet.
pub fn state(config: &config::Config) -> Arc<AppState> {
    // The client's own timeout only backs up the per-scrape deadline.
    let client_timeout = config.timeout + Duration::from_secs(5);
    let docker = |host: &str, tls: &Option<std::path::PathBuf>| -> Arc<dyn engine::EngineApi> {
        Arc::new(engine::docker::DockerEngine::new(host, client_timeout).with_tls(tls.clone()))
    };
    let engines = if config.engines.is_empty() {
        vec![(None, docker(&config.docker_host, &config.docker_tls))]
    } else {
        config
            .engines
            .iter()
            .map(|e| (Some(e.name.clone()), docker(&e.docker_host, &e.docker_tls)))
            .collect()
    };
    state_with_engines(config, engines)
}

#[cfg(any(test, feature = "testing"))]
/// Shared state reading one unnamed `engine`, for everything else as
/// `config` says.
pub fn state_with_engine(
    config: &config::Config,
    engine: Arc<dyn engine::EngineApi>,
) -> Arc<AppState> {
    state_with_engines(config, vec![(None, engine)])
}

/// Shared state reading `engines`, each named unless there is only one
/// unnamed engine; every engine gets its own rounds, state and call limit.
pub fn state_with_engines(
    config: &config::Config,
    engines: Vec<(Option<String>, Arc<dyn engine::EngineApi>)>,
) -> Arc<AppState> {
    let options = scrape::ScrapeOptions {
        max_concurrency: config.max_concurrency,
        inspect_max_age: config.inspect_max_age,
        cpu_percent_min_window: config.cpu_percent_min_window,
        fs_usage_max_age: config.fs_usage_max_age,
    };
    let engines = engines
        .into_iter()
        .map(|(name, engine)| http::EngineSlot {
            name,
            rounds: scrape::coalesce::Coalescer::new(Arc::new(scrape::Scraper::new(
                engine, &options,
            ))),
        })
        .collect();
    Arc::new(AppState {
        engines,
        labels: config.labels.clone(),
        selection: config.selection.clone(),
        timeout: config.timeout,
    })
}

/// Serves until SIGINT or SIGTERM, then finishes the requests in flight.
/// `web` adds TLS and basic auth (see [`http::web_config`]).
pub async fn serve(config: config::Config, web: http::web_config::WebConfig) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .with_context(|| format!("cannot listen on {}", config.listen))?;
    if config.engines.is_empty() {
        tracing::info!("engine = {} ({})", config.docker_host, config.engine_source);
    }
    for e in &config.engines {
        tracing::info!("engine {} = {}", e.name, e.docker_host);
    }
    // The bound address, not the configured one: port 0 becomes the real port.
    let listen = listener
        .local_addr()
        .with_context(|| format!("cannot read the address bound for {}", config.listen))?;
    tracing::info!(
        listen = %listen,
        tls = web.tls.is_some(),
        basic_auth = web.auth.is_some(),
        "serving /metrics"
    );
    let mut options = http::server::Options::new(config.timeout, web);
    options.max_connections = config.max_connections;
    options.max_connections_per_client = config.max_connections_per_client;
    http::server::run(listener, app(state(&config)), options, shutdown_signal())
        .await
        .context("server failed")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutting down");
}

/// Asks a running exporter's `/healthz` on `listen` (an unspecified address
/// means loopback); for `HEALTHCHECK` in images without a shell or curl.
pub async fn healthcheck(listen: SocketAddr) -> anyhow::Result<()> {
    let ip = match listen.ip() {
        IpAddr::V4(v4) if v4.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(v6) if v6.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    let addr = SocketAddr::new(ip, listen.port());
    let check = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        stream
            .write_all(b"GET /healthz HTTP/1.0\r\nHost: localhost\r\n\r\n")
            .await?;
        let mut head = Vec::new();
        stream.take(64).read_to_end(&mut head).await?;
        Ok::<_, std::io::Error>(head)
    };
    let head = tokio::time::timeout(Duration::from_secs(3), check)
        .await
        .with_context(|| format!("no answer from {addr} within 3 s"))?
        .with_context(|| format!("cannot reach {addr}"))?;
    let status = String::from_utf8_lossy(&head);
    if !status.starts_with("HTTP/1.0 200") && !status.starts_with("HTTP/1.1 200") {
        bail!(
            "{addr}/healthz answered {:?}",
            status.lines().next().unwrap_or("")
        );
    }
    Ok(())
}
