//! The routes: `/metrics`, the health endpoints, and those of the live
//! view (its handlers in [`super::live`]).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header::{ACCEPT, CONTENT_TYPE};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use super::state::{scrape_budget, snapshots, AppState};
use crate::exposition::collector::{render_parts, Part};
use crate::exposition::format::Format;

/// The exporter's routes; tests serve this in process on port 0.
pub fn app(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/", get(super::live::page))
        .route("/live.js", get(super::live::script))
        .route("/live.css", get(super::live::style))
        .route(
            "/api/containers",
            get(super::live::containers).head(super::live::containers_head),
        )
        .route("/metrics", get(metrics).head(metrics_head))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(state)
}

async fn metrics(
    State(state): State<Arc<AppState>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(header(ACCEPT.as_str()));
    let budget = scrape_budget(state.timeout, header("x-prometheus-scrape-timeout-seconds"));
    let parts = match snapshots(&state, &query, budget).await {
        Ok(parts) => parts,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let parts = parts
        .into_iter()
        .map(|(e, snapshot)| Part {
            engine: e.name.clone(),
            snapshot,
        })
        .collect();
    match render_parts(parts, &state.labels, format) {
        Ok(text) => (
            [(CONTENT_TYPE, format.content_type())],
            Body::new(text.into_body()),
        )
            .into_response(),
        Err(_) => (StatusCode::INTERNAL_SERVER_ERROR, "encoding failed\n").into_response(),
    }
}

/// HEAD /metrics: the headers a GET would have, without a scrape (HEAD
/// must not cost the engine a round).
async fn metrics_head(headers: HeaderMap) -> Response {
    let accept = headers.get(ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::from_accept(accept);
    ([(CONTENT_TYPE, format.content_type())], ()).into_response()
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// 200 when every engine (or those `?engine=` names) answers `_ping`; 503
/// naming each that does not, with the reason.
async fn readyz(
    State(state): State<Arc<AppState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let engines = match state.chosen(&query) {
        Ok(engines) => engines,
        Err(e) => return (StatusCode::BAD_REQUEST, format!("{e}\n")).into_response(),
    };
    let pings =
        futures::future::join_all(engines.iter().map(|e| e.rounds.scraper().engine().ping())).await;
    let failed: Vec<String> = engines
        .iter()
        .zip(pings)
        .filter_map(|(e, ping)| {
            let err = ping.err()?;
            Some(match &e.name {
                Some(name) => format!("engine {name}: {err}"),
                None => err.to_string(),
            })
        })
        .collect();
    if failed.is_empty() {
        (StatusCode::OK, "ok\n".to_string()).into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("{}\n", failed.join("\n")),
        )
            .into_response()
    }
}
