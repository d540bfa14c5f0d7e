//! Two real engines read by one exporter: the machine's Docker 20.10 and a
//! Docker 26.1 engine this test starts in a network namespace of its own
//! (scripts/private-engine.sh). The private one is stopped mid-run and
//! started again; the shared one is only read.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use common::engines::PrivateEngine;
use common::{unique, Container, Metrics};
use docker_stats_exporter::config::{Config, Overrides};

fn config(second: &str, names: &[&str]) -> Config {
    let text = format!(
        "[[engines]]\nname = \"shared\"\ndocker_host = \"{}\"\n\
         [[engines]]\nname = \"d26\"\ndocker_host = \"{second}\"\n\
         [containers]\nnames = [\"{}\"]\n",
        common::engine_host(),
        names.join("\", \"")
    );
    let overrides = Overrides {
        listen: Some("127.0.0.1:0".into()),
        ..Default::default()
    };
    Config::parse("engines_live", &text, &overrides, None).unwrap()
}

async fn scrape(exporter: &common::Exporter, timeout: &str) -> (Duration, Metrics) {
    let started = Instant::now();
    let (status, body) = common::get(
        exporter.addr,
        "/metrics",
        &[("X-Prometheus-Scrape-Timeout-Seconds", timeout)],
    )
    .await;
    assert_eq!(status, 200, "{body}");
    (started.elapsed(), Metrics::parse(&body))
}

fn running(m: &Metrics, engine: &str, name: &str) -> bool {
    m.value(
        "container_memory_usage_bytes",
        &[("engine", engine), ("name", name)],
    )
    .is_some()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_real_engines_one_stopped_mid_run_and_brought_back() {
    let d26 = PrivateEngine::start("two-engines", "26.1");
    let (on_shared, on_d26) = (unique("dse-two-shared"), unique("dse-two-d26"));
    d26.run_container(
        &on_d26,
        &["--restart", "always", "--stop-timeout", "1"],
        &["sleep", "3600"],
    );
    let _shared = Container::sleeper(&on_shared, &[]);
    let exporter = common::Exporter::with_config(config(&d26.url, &[&on_shared, &on_d26])).await;

    let (_, m) = scrape(&exporter, "5").await;
    assert_eq!(m.value("docker_up", &[("engine", "shared")]), Some(1.0));
    assert_eq!(m.value("docker_up", &[("engine", "d26")]), Some(1.0));
    assert!(running(&m, "shared", &on_shared));
    assert!(running(&m, "d26", &on_d26));

    // Stopped: its health goes to 0, the other engine's answer stays whole
    // and in time.
    tokio::task::block_in_place(|| d26.stop());
    let (took, m) = scrape(&exporter, "3").await;
    assert!(took < Duration::from_secs(3), "took {took:?}");
    assert_eq!(m.value("docker_up", &[("engine", "d26")]), Some(0.0));
    assert_eq!(m.value("docker_up", &[("engine", "shared")]), Some(1.0));
    assert!(running(&m, "shared", &on_shared));
    assert!(!running(&m, "d26", &on_d26));

    // Back: `--restart always` brings its container back with it.
    tokio::task::block_in_place(|| d26.start_again());
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, m) = scrape(&exporter, "5").await;
        if m.value("docker_up", &[("engine", "d26")]) == Some(1.0) && running(&m, "d26", &on_d26) {
            assert!(running(&m, "shared", &on_shared));
            break;
        }
        assert!(Instant::now() < until, "d26 never came back: {:?}", m.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}
