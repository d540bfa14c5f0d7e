//! `dockerd` stopped in the middle of a scrape and started again: the scrape
//! answers, `docker_up` goes 0 then 1, the exporter is not restarted. The
//! engine is this test's own (scripts/private-engine.sh): stopping it touches
//! no other test's engine. The exporter talks to its socket directly, so the
//! socket really goes away and comes back.

#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use common::engines::PrivateEngine;
use common::{Exporter, Metrics};
use tokio::task::block_in_place;

const ENGINE: &str = "engine-restart";
const SURVIVOR: &str = "dse-restart-survivor";

#[tokio::test(flavor = "multi_thread")]
async fn dockerd_stopped_mid_scrape_then_restarted_needs_no_exporter_restart() {
    let engine = block_in_place(|| PrivateEngine::start_logging_requests(ENGINE, "20.10"));
    // Stops within a second when dockerd shuts down (sleep, as the
    // container's pid 1, ignores SIGTERM).
    block_in_place(|| {
        engine.run_container(
            SURVIVOR,
            &["--restart", "always", "--stop-timeout", "1"],
            &["sleep", "3600"],
        )
    });
    let exporter = Exporter::start(&common::names_config(&[SURVIVOR], ""), &engine.url).await;

    // Stop dockerd once it has the scrape's stats call: the list call has
    // answered by then, and the stats call waits on the engine's ticks.
    let mark = engine.log_len();
    let scrape = exporter.scrape_in_background();
    block_in_place(|| {
        engine.wait_for_request(mark, "GET", "/stats", Duration::from_secs(30));
        engine.stop();
    });
    let (status, body) = scrape.await.unwrap();
    assert_eq!(status, 200, "{body}");
    let m = Metrics::parse(&body);
    // Whether the stats call still got its answer depends on how fast
    // dockerd shut down; the engine was up for this scrape either way.
    assert_eq!(m.value("docker_up", &[]), Some(1.0), "{body}");

    let m = exporter.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(0.0), "{:?}", m.0);

    block_in_place(|| engine.start_again());
    // `--restart always` brings the container back with the daemon.
    let until = Instant::now() + Duration::from_secs(60);
    loop {
        let m = exporter.metrics().await;
        if m.value("docker_up", &[]) == Some(1.0)
            && m.names("container_memory_usage_bytes") == vec![SURVIVOR.to_string()]
        {
            break;
        }
        assert!(Instant::now() < until, "never recovered: {:?}", m.0);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    block_in_place(|| engine.docker(&["rm", "-f", SURVIVOR]));
}
