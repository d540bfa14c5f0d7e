//! CPU as the cgroup counts it: the percent of a capped burner over the
//! engine's window, on a container's first scrape and from one scrape to the
//! next, and a paused container's frozen counter (every CPU counter against
//! `cpu.stat` is in `cgroup`).

use crate::common;

use common::cgroup::{assert_percent_in_trace, Cgroups};
use common::{
    docker, names_config, unique, wait_until, wait_until_async, Container, Exporter, PATIENCE,
};

#[tokio::test(flavor = "multi_thread")]
async fn cpu_of_a_half_cpu_burner_matches_the_cgroup() {
    let cgroups = Cgroups::of_engine("burner");
    let burner = Container::run(
        &unique("dse-cpu-burner"),
        &["--cpus", "0.5"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let cgroup = cgroups.of(&burner);
    let trace = cgroups.trace_cpu(&cgroup);
    wait_until("the burner to use CPU", PATIENCE, || {
        match cgroups.read(&cgroup)?.cpu_seconds() {
            s if s >= 0.05 => Ok(()),
            s => Err(format!("{s} s")),
        }
    });
    // A window of a second on an engine without a tick, as on one with.
    let config = names_config(&[&burner.name], "first_cpu_window = \"1s\"\n");
    let exporter = Exporter::local(&config).await;

    // First scrape: a new container, a window of about a second that the
    // engine or the exporter takes within the call.
    let c0 = cgroups.read_now(&cgroup);
    let first = exporter.metrics().await;
    let c1 = cgroups.read_now(&cgroup);
    let pct = first
        .get("container_cpu_usage_percent", &burner.name)
        .expect("cpu percent on the first scrape");
    // A tick late by a quarter of a second still leaves 0.75 s.
    let span = (c0.at, c1.at);
    assert_percent_in_trace(
        "first scrape",
        pct,
        &trace.samples_past(c1.at),
        span,
        span,
        0.75,
    );

    // Second scrape: a one-shot answer, the window from the first scrape's
    // reading to this one's. Half a CPU-second of the burner makes it long
    // enough; a busy host only makes it longer.
    wait_until("half a CPU-second more", PATIENCE, || {
        match cgroups.read(&cgroup)?.cpu_seconds() - c1.cpu_seconds() {
            s if s >= 0.5 => Ok(()),
            s => Err(format!("{s} s")),
        }
    });
    let c2 = cgroups.read_now(&cgroup);
    let second = exporter.metrics().await;
    let c3 = cgroups.read_now(&cgroup);
    let pct = second
        .get("container_cpu_usage_percent", &burner.name)
        .expect("cpu percent from the previous scrape");
    assert_percent_in_trace(
        "second scrape",
        pct,
        &trace.samples_past(c3.at),
        span,
        (c2.at, c3.at),
        0.0,
    );

    // The CPU counter sits between two cgroup reads around a scrape.
    let before = cgroups.read_now(&cgroup);
    let third = exporter.metrics().await;
    let after = cgroups.read_now(&cgroup);
    let total = third
        .get("container_cpu_usage_seconds_total", &burner.name)
        .expect("cpu seconds");
    let (lo, hi) = (before.cpu_seconds(), after.cpu_seconds());
    assert!(
        lo - 0.01 <= total && total <= hi + 0.01,
        "cpu seconds {total} not within cgroup reads [{lo}, {hi}]"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_container_keeps_its_stats_with_frozen_cpu() {
    let cgroups = Cgroups::of_engine("paused");
    let c = Container::run(
        &unique("dse-fault-paused"),
        &["--cpus", "0.2"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let cgroup = cgroups.of(&c);
    docker(&["pause", &c.name]);
    let frozen = cgroups.read_now(&cgroup).cpu_seconds();
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    let metric = "container_cpu_usage_seconds_total";
    let first = exporter.metrics().await;
    // A percent needs a window: an engine that reads stats at its tick gives
    // none while the next tick has not come. Scrape until there is one.
    let m = wait_until_async(
        "a CPU percent of the paused container",
        PATIENCE,
        || async {
            let m = exporter.metrics().await;
            match m.get("container_cpu_usage_percent", &c.name) {
                Some(_) => Ok(m),
                None => Err(format!("{:?}", m.0)),
            }
        },
    )
    .await;
    let still = cgroups.read_now(&cgroup).cpu_seconds();
    docker(&["unpause", &c.name]);
    assert_eq!(frozen, still, "the cgroup's CPU counter moved while paused");
    assert_eq!(
        m.value(
            "container_state",
            &[("name", c.name.as_str()), ("state", "paused")]
        ),
        Some(1.0)
    );
    assert!(m.get("container_memory_usage_bytes", &c.name).is_some());
    for seen in [&first, &m] {
        let cpu = seen.get(metric, &c.name).expect("cpu seconds");
        assert!(
            (cpu - frozen).abs() < 1e-6,
            "cpu seconds {cpu}, cgroup {frozen}"
        );
    }
    assert_eq!(m.get("container_cpu_usage_percent", &c.name), Some(0.0));
}
