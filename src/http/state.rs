//! What the request handlers share: the engines and their coalesced rounds,
//! the configured selection and timeout, and how a request's query and
//! timeout header narrow them. The routes of `/metrics` and health and
//! those of the live view both build on it, and neither on the other.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use crate::config::selector::{LabelSelector, Selection};
use crate::config::LabelExport;
use crate::scrape::coalesce::Coalescer;
use crate::scrape::Snapshot;

/// One engine the exporter reads.
#[derive(Debug)]
pub struct EngineSlot {
    /// Its name (the `engine` label) when several are configured.
    pub name: Option<String>,
    /// Runs (and shares) its scrape rounds.
    pub rounds: Arc<Coalescer>,
}

/// What every request handler shares.
#[derive(Debug)]
pub struct AppState {
    /// The engines, at least one.
    pub engines: Vec<EngineSlot>,
    /// The configured selection.
    pub selection: Selection,
    /// The configured upper bound for one scrape.
    pub timeout: Duration,
    /// Container labels exported as metric labels.
    pub labels: LabelExport,
}

impl AppState {
    /// The first (usually the only) engine's rounds.
    pub fn rounds(&self) -> &Arc<Coalescer> {
        &self.engines[0].rounds
    }

    /// The engines `?engine=` names, or all of them without the parameter.
    pub(crate) fn chosen(&self, query: &[(String, String)]) -> Result<Vec<&EngineSlot>, String> {
        let asked: Vec<&str> = query
            .iter()
            .filter(|(k, _)| k == "engine")
            .map(|(_, v)| v.as_str())
            .collect();
        if asked.is_empty() {
            return Ok(self.engines.iter().collect());
        }
        let names: Vec<&str> = self
            .engines
            .iter()
            .filter_map(|e| e.name.as_deref())
            .collect();
        if names.is_empty() {
            return Err(
                "engine=: this exporter reads one engine; [[engines]] names several".into(),
            );
        }
        asked
            .iter()
            .map(|want| {
                self.engines
                    .iter()
                    .find(|e| e.name.as_deref() == Some(want))
                    .ok_or_else(|| {
                        format!(
                            "engine={want:?}: no such engine; configured: {}",
                            names.join(", ")
                        )
                    })
            })
            .collect()
    }
}

/// The least time a scrape timeout header can give a scrape. Below it no
/// round does useful work (a stats call on Docker up to 24 waits for a 1 s
/// tick), so a lower header only made rounds that answer nothing.
pub const MIN_HEADER_BUDGET: Duration = Duration::from_millis(500);

/// Time a scrape may spend: the configured timeout, lowered to Prometheus'
/// own scrape timeout minus a margin for encoding and the network, but not
/// below [`MIN_HEADER_BUDGET`] (the first such header is logged).
pub fn scrape_budget(configured: Duration, header: Option<&str>) -> Duration {
    static FLOOR_LOGGED: AtomicBool = AtomicBool::new(false);
    let from_header = header
        .and_then(|h| h.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .map(|s| s - (s * 0.1).clamp(0.1, 0.5))
        // Beyond what a Duration holds (1e20): no bound below the configured one.
        .and_then(|s| Duration::try_from_secs_f64(s.max(0.0)).ok());
    match from_header {
        Some(h) if h < MIN_HEADER_BUDGET => {
            if !FLOOR_LOGGED.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    header = header.unwrap_or_default(),
                    floor = ?MIN_HEADER_BUDGET,
                    "a scrape timeout header leaves less than the floor; the floor is used \
                     (logged once)"
                );
            }
            MIN_HEADER_BUDGET.min(configured)
        }
        Some(h) => h.min(configured),
        None => configured,
    }
}

/// An ad-hoc narrowing from `?name=a&name=b&label=k=v`, and `stopped=true`
/// for stopped containers too; `Ok(None)` without any. It only ever narrows
/// the configured selection.
pub fn adhoc_selection(query: &[(String, String)]) -> Result<Option<Selection>, String> {
    let (mut names, mut selectors, mut stopped) = (Vec::new(), Vec::new(), false);
    for (key, value) in query {
        match key.as_str() {
            "engine" => {}
            "stopped" => {
                stopped = match value.as_str() {
                    "true" | "1" => true,
                    "false" | "0" => false,
                    other => return Err(format!("stopped={other:?}: use stopped=true or false")),
                }
            }
            "name" if !value.trim().is_empty() => names.push(value.trim().to_string()),
            "name" => return Err("empty name= parameter".into()),
            "label" => {
                selectors.push(LabelSelector::parse(value).map_err(|e| format!("label=: {e}"))?)
            }
            other => {
                return Err(format!(
                    "unknown query parameter {other:?}: use name=CONTAINER, label=KEY[=VALUE], \
                     stopped=true or engine=NAME"
                ))
            }
        }
    }
    if names.is_empty() && selectors.is_empty() && !stopped {
        return Ok(None);
    }
    let adhoc = Selection::new(names, selectors);
    Ok(Some(if stopped { adhoc.with_stopped() } else { adhoc }))
}

/// The engines a request chose, each with the snapshot of its round for the
/// request's selection: the same coalesced rounds for every route. `Err` is
/// a bad query, for a 400.
pub(crate) async fn snapshots<'s>(
    state: &'s AppState,
    query: &[(String, String)],
    budget: Duration,
) -> Result<Vec<(&'s EngineSlot, Arc<Snapshot>)>, String> {
    let (selection, full) = match adhoc_selection(query)? {
        None => (state.selection.clone(), true),
        Some(adhoc) => (state.selection.narrowed_by(adhoc), false),
    };
    let engines = state.chosen(query)?;
    // Every engine's round runs at once under the same deadline: a dead or
    // slow engine never holds up the others' answers.
    let until = Instant::now() + budget;
    let snapshots = futures::future::join_all(
        engines
            .iter()
            .map(|e| e.rounds.snapshot(&selection, until, full)),
    )
    .await;
    Ok(engines.into_iter().zip(snapshots).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn q(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn adhoc_query_parameters() {
        assert_eq!(adhoc_selection(&[]), Ok(None));
        let sel = adhoc_selection(&q(&[("name", "web"), ("name", "db"), ("label", "a=b")]))
            .unwrap()
            .unwrap();
        assert_eq!(sel.names(), ["db", "web"]);
        assert_eq!(sel.selectors().len(), 1);
        assert!(adhoc_selection(&q(&[("label", "=x")]))
            .unwrap_err()
            .contains("empty label key"));
        assert!(adhoc_selection(&q(&[("nmae", "x")]))
            .unwrap_err()
            .contains("unknown query parameter \"nmae\""));
        assert!(adhoc_selection(&q(&[("name", "")])).is_err());
    }

    #[test]
    fn stopped_true_lists_stopped_containers_without_narrowing() {
        let all = Selection::default();
        assert!(!all.lists_stopped());
        let stopped = adhoc_selection(&q(&[("stopped", "true")]))
            .unwrap()
            .unwrap();
        let narrowed = all.narrowed_by(stopped);
        assert!(narrowed.is_all() && narrowed.lists_stopped());
        assert_ne!(
            narrowed, all,
            "a round of its own, not the configured one's"
        );
        assert_eq!(adhoc_selection(&q(&[("stopped", "false")])), Ok(None));
        assert!(adhoc_selection(&q(&[("stopped", "yes")]))
            .unwrap_err()
            .contains("stopped=\"yes\""));
        // Names list stopped containers anyway.
        let named = adhoc_selection(&q(&[("name", "web")])).unwrap().unwrap();
        assert!(all.narrowed_by(named).lists_stopped());
    }

    #[test]
    fn budget_follows_the_scrape_timeout_header_minus_a_margin() {
        let ten = Duration::from_secs(10);
        assert_eq!(scrape_budget(ten, None), ten);
        assert_eq!(scrape_budget(ten, Some("garbage")), ten);
        assert_eq!(scrape_budget(ten, Some("-1")), ten);
        assert_eq!(scrape_budget(ten, Some("2")), Duration::from_millis(1800));
        assert_eq!(scrape_budget(ten, Some("5")), Duration::from_millis(4500));
        assert_eq!(scrape_budget(ten, Some("0.6")), Duration::from_millis(500));
        assert_eq!(scrape_budget(ten, Some("60")), ten);
    }

    #[test]
    fn an_impatient_header_gets_the_floor() {
        let ten = Duration::from_secs(10);
        for header in ["0.5", "0.001", "1e-300"] {
            assert_eq!(
                scrape_budget(ten, Some(header)),
                MIN_HEADER_BUDGET,
                "{header}"
            );
        }
        // The configured timeout is the operator's: it may be lower.
        let short = Duration::from_millis(200);
        assert_eq!(scrape_budget(short, Some("0.001")), short);
    }

    #[test]
    fn absurd_scrape_timeout_headers_fall_back_to_the_configured_timeout() {
        let ten = Duration::from_secs(10);
        for header in ["1e20", "1e400", "inf", "NaN", "-0", "0"] {
            assert_eq!(scrape_budget(ten, Some(header)), ten, "{header}");
        }
    }
}
