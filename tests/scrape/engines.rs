//! Several engines from one exporter, in process against scripted engines:
//! every series names its engine, health is per engine, a dead or hung
//! engine never holds up the others, and `?engine=` answers for one.
//! tests/engines/engines_live.rs does the same with two real engines.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::Metrics;
use docker_stats_exporter::engine::fake::FakeEngine;
use docker_stats_exporter::engine::EngineApi;

/// An exporter reading scripted engines by name.
async fn exporter(engines: &[(&str, &FakeEngine)]) -> common::Exporter {
    let engines = engines
        .iter()
        .map(|(name, e)| {
            let engine: Arc<dyn EngineApi> = Arc::new((*e).clone());
            (*name, engine)
        })
        .collect();
    common::Exporter::with_engines(engines).await
}

fn engine_with(names: &[&str]) -> FakeEngine {
    let e = FakeEngine::docker("26.1.5");
    for n in names {
        e.add(n, 100_000_000);
    }
    e
}

#[tokio::test(flavor = "multi_thread")]
async fn every_series_names_its_engine_and_health_is_per_engine() {
    let (a, b) = (engine_with(&["web", "db"]), engine_with(&["cache"]));
    b.set_down(true);
    let exporter = exporter(&[("laptop", &a), ("buildbox", &b)]).await;
    let (status, body) = common::get(exporter.addr, "/metrics", &[]).await;
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[("engine", "laptop")]), Some(1.0));
    assert_eq!(m.value("docker_up", &[("engine", "buildbox")]), Some(0.0));
    assert_eq!(
        m.value(
            "docker_stats_scrape_errors_total",
            &[("engine", "buildbox"), ("kind", "engine")]
        ),
        Some(1.0)
    );
    assert_eq!(
        m.value(
            "docker_stats_scrape_errors_total",
            &[("engine", "laptop"), ("kind", "engine")]
        ),
        Some(0.0)
    );
    for name in ["web", "db"] {
        assert_eq!(
            m.value(
                "container_memory_usage_bytes",
                &[("name", name), ("engine", "laptop")]
            ),
            Some(1_048_576.0)
        );
    }
    // Every container series carries the engine label.
    for s in m.0.iter().filter(|s| s.labels.contains_key("name")) {
        assert_eq!(
            s.labels.get("engine").map(String::as_str),
            Some("laptop"),
            "{s:?}"
        );
    }
    assert_eq!(
        m.value("machine_cpu_cores", &[("engine", "laptop")]),
        Some(2.0)
    );
    common::promtool_check_metrics(&body);

    // The engine comes back: its containers with it, no restart.
    b.set_down(false);
    let m = Metrics::parse(&common::get(exporter.addr, "/metrics", &[]).await.1);
    assert_eq!(m.value("docker_up", &[("engine", "buildbox")]), Some(1.0));
    assert_eq!(
        m.value(
            "container_memory_usage_bytes",
            &[("name", "cache"), ("engine", "buildbox")]
        ),
        Some(1_048_576.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_hung_engine_never_holds_up_the_others_past_the_scrape_timeout() {
    let (a, b) = (engine_with(&["web"]), engine_with(&["stuck"]));
    b.set_hung(true);
    let exporter = exporter(&[("fast", &a), ("hung", &b)]).await;
    let started = Instant::now();
    let (status, body) = common::get(
        exporter.addr,
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", "1.5")],
    )
    .await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    // 1.5 s minus its margin is the budget of both rounds together.
    assert!(took < Duration::from_millis(1500), "took {took:?}");
    let m = Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[("engine", "fast")]), Some(1.0));
    assert_eq!(m.value("docker_up", &[("engine", "hung")]), Some(0.0));
    assert_eq!(m.names("container_memory_usage_bytes"), ["web"]);
    assert_eq!(
        m.value(
            "docker_stats_scrape_errors_total",
            &[("engine", "hung"), ("kind", "timeout")]
        ),
        Some(1.0)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_parameter_answers_for_one_engine() {
    let (a, b) = (engine_with(&["web"]), engine_with(&["cache"]));
    let exporter = exporter(&[("laptop", &a), ("buildbox", &b)]).await;
    let (status, body) = common::get(exporter.addr, "/metrics?engine=buildbox", &[]).await;
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    assert_eq!(m.names("container_memory_usage_bytes"), ["cache"]);
    assert_eq!(m.value("docker_up", &[("engine", "buildbox")]), Some(1.0));
    assert_eq!(m.value("docker_up", &[("engine", "laptop")]), None);
    assert_eq!(a.calls().list, 0, "the other engine is not asked");

    // Narrowing by name still works beside it.
    let (_, body) = common::get(exporter.addr, "/metrics?engine=laptop&name=web", &[]).await;
    assert_eq!(
        Metrics::parse(&body).names("container_memory_usage_bytes"),
        ["web"]
    );

    let (status, body) = common::get(exporter.addr, "/metrics?engine=nope", &[]).await;
    assert_eq!(status, 400);
    assert!(
        body.contains("nope") && body.contains("laptop, buildbox"),
        "{body}"
    );

    b.set_down(true);
    let (status, body) = common::get(exporter.addr, "/readyz", &[]).await;
    assert_eq!(status, 503);
    assert!(
        body.contains("engine buildbox:") && !body.contains("laptop"),
        "{body}"
    );
    let (status, _) = common::get(exporter.addr, "/readyz?engine=laptop", &[]).await;
    assert_eq!(status, 200);
}
