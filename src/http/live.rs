//! The live view: `GET /` (a page), `/live.js` and `/live.css` (its script
//! and style, compiled into the binary), and `GET /api/containers` (the
//! snapshot as JSON, which the page asks for every few seconds while it is
//! visible).
//!
//! Nothing here runs on its own: every `/api/containers` request is a scrape
//! through the same coalesced rounds, engine call limit and selection
//! parameters as `/metrics`, and the history the page draws lives in the
//! browser. The page is sent with a strict Content-Security-Policy, so it
//! loads only its own script and style and talks only to this exporter.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::header::{
    CACHE_CONTROL, CONTENT_SECURITY_POLICY, CONTENT_TYPE, REFERRER_POLICY, X_CONTENT_TYPE_OPTIONS,
    X_FRAME_OPTIONS,
};
use axum::http::{HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};

use super::state::{snapshots, AppState};
use crate::exposition::json::{encode, JsonPart};

/// The page's policy: its own script, style and requests only; no inline
/// code, no frames, no forms, no other origin.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     connect-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; \
     form-action 'none'";

const PAGE: &str = include_str!("live/index.html");
const SCRIPT: &str = include_str!("live/live.js");
const STYLE: &str = include_str!("live/live.css");

/// Headers every part of the view is sent with.
fn hardened(content_type: &'static str) -> [(HeaderName, &'static str); 6] {
    [
        (CONTENT_TYPE, content_type),
        (CONTENT_SECURITY_POLICY, CSP),
        (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (X_FRAME_OPTIONS, "DENY"),
        (REFERRER_POLICY, "no-referrer"),
        (CACHE_CONTROL, "no-cache"),
    ]
}

/// Text for HTML element content and attribute values.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `GET /`: the page, with the engines and the configured selection written
/// in (what the landing page showed before the view).
pub async fn page(State(state): State<Arc<AppState>>) -> Response {
    let selection = if state.selection.is_all() {
        "every running container".to_string()
    } else {
        let labels: Vec<String> = state
            .selection
            .selectors()
            .iter()
            .map(|s| s.to_string())
            .collect();
        format!(
            "names: [{}]; label selectors: [{}]",
            state.selection.names().join(", "),
            labels.join("; ")
        )
    };
    let engines: Vec<String> = state
        .engines
        .iter()
        .map(|e| {
            let host = e.rounds.scraper().engine().host();
            match &e.name {
                Some(name) => format!("{name} ({host})"),
                None => host.to_string(),
            }
        })
        .collect();
    let html = PAGE
        .replace("{{version}}", env!("CARGO_PKG_VERSION"))
        .replace("{{engines}}", &escape(&engines.join(", ")))
        .replace("{{selection}}", &escape(&selection));
    (hardened("text/html; charset=utf-8"), html).into_response()
}

/// `GET /live.js`.
pub async fn script() -> Response {
    (hardened("text/javascript; charset=utf-8"), SCRIPT).into_response()
}

/// `GET /live.css`.
pub async fn style() -> Response {
    (hardened("text/css; charset=utf-8"), STYLE).into_response()
}

/// `GET /api/containers`: one scrape, as JSON (see README, "Live view").
/// 400 with `{"error": ...}` for a bad query; 503 naming each engine that
/// did not answer, with the containers of those that did.
pub async fn containers(
    State(state): State<Arc<AppState>>,
    Query(query): Query<Vec<(String, String)>>,
) -> Response {
    let json = |status: StatusCode, body: String| {
        (
            status,
            [
                (CONTENT_TYPE, "application/json"),
                (CACHE_CONTROL, "no-store"),
                (X_CONTENT_TYPE_OPTIONS, "nosniff"),
            ],
            body,
        )
            .into_response()
    };
    let parts = match snapshots(&state, &query, state.timeout).await {
        Ok(parts) => parts,
        Err(e) => {
            let body = serde_json::json!({ "error": e }).to_string();
            return json(StatusCode::BAD_REQUEST, body);
        }
    };
    let parts: Vec<JsonPart<'_>> = parts
        .iter()
        .map(|(e, snapshot)| JsonPart {
            engine: e.name.as_deref(),
            host: e.rounds.scraper().engine().host(),
            snapshot,
        })
        .collect();
    let (up, body) = encode(&parts, &state.labels);
    let status = if up {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json(status, body)
}

/// `HEAD /api/containers`: the headers of a GET, without a scrape.
pub async fn containers_head() -> Response {
    (
        [
            (CONTENT_TYPE, "application/json"),
            (CACHE_CONTROL, "no-store"),
            (X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        (),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escape_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<img src=x onerror="alert('1')">&"#),
            "&lt;img src=x onerror=&quot;alert(&#39;1&#39;)&quot;&gt;&amp;"
        );
    }

    #[test]
    fn the_page_loads_its_script_and_style_from_routes_not_inline() {
        assert!(PAGE.contains(r#"<script src="/live.js""#));
        assert!(PAGE.contains(r#"<link rel="stylesheet" href="/live.css""#));
        assert!(!PAGE.contains("<style"));
        assert!(!PAGE.contains(" style="));
        assert!(!PAGE.contains("<script>"));
        assert!(!SCRIPT.contains("innerHTML"));
        assert!(!SCRIPT.contains("insertAdjacentHTML"));
        assert!(!SCRIPT.contains("document.write"));
    }
}
