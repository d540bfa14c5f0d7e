//! CPU as the cgroup counts it: the percent of a capped burner over the
//! engine's window, on a container's first scrape and from one scrape to the
//! next, and a paused container's frozen counter (every CPU counter against
//! `cpu.stat` is in `cgroup`).

use common::cgroup::{Cgroup, Cgroups, Window};
use common::{
    docker, names_config, unique, wait_until, wait_until_async, Container, Exporter, PATIENCE,
};

#[tokio::test(flavor = "multi_thread")]
async fn cpu_of_a_half_cpu_burner_matches_the_cgroup() {
    let cgroups = Cgroups::of_engine("burner");
    let (burner, cgroup) = half_cpu_burner(&cgroups, "dse-cpu-burner");
    let trace = cgroups.trace_cpu(&cgroup);
    // The default minimum window, a second: on an engine without a tick
    // as on one with.
    let config = names_config(&[&burner.name], common::SLOW_ENGINE);
    let exporter = Exporter::local(&config).await;

    // First scrape: a new container, a window of about a second that the
    // engine or the exporter takes within the call. A tick late by a
    // quarter of a second still leaves 0.75 s.
    let first = trace.scrape(&exporter).await;
    let within_the_call = Window::Together {
        starts: first.span(),
        min_len: 0.75,
    };
    trace.assert_percent("first scrape", &first, &burner.name, &[within_the_call]);

    // Second scrape: a one-shot answer, the window from the first scrape's
    // reading to this one's. Docker 20.10 reads the machine's counter once
    // per tick, then each container's in turn (in no set order), so the
    // container's end of the window trails the machine's by a part of that
    // loop: on the emulated VM, with the other tests' containers in it, a
    // window of half a CPU-second gave 26.6 % where the cgroup allowed 28.2
    // to 30.6 %. Two CPU-seconds of the burner make the window long enough
    // for that to stay within the room; a busy host only makes it longer.
    trace.wait_for_cpu(&first.after, 2.0);
    let second = trace.scrape(&exporter).await;
    let since_the_first = Window::FromScrape { base: first.span() };
    trace.assert_percent("second scrape", &second, &burner.name, &[since_the_first]);

    // The CPU counter sits between two cgroup reads around a scrape.
    let third = trace.scrape(&exporter).await;
    let total = third
        .metrics
        .get("container_cpu_usage_seconds_total", &burner.name)
        .expect("cpu seconds");
    let (lo, hi) = (third.before.cpu_seconds(), third.after.cpu_seconds());
    assert!(
        lo - 0.01 <= total && total <= hi + 0.01,
        "cpu seconds {total} not within cgroup reads [{lo}, {hi}]"
    );
}

/// Two readers 50 ms apart (a Prometheus HA pair, the live view beside a
/// Prometheus), ten times: each reader's percent is the cgroup's own rate
/// over a window at least the default minimum of a second long, not over
/// the 50 ms between them, where a burner capped at half a CPU reads
/// anywhere from 13 to 39 %.
/// The readers ask for different selections so that neither joins the
/// other's round.
#[tokio::test(flavor = "multi_thread")]
async fn two_readers_50_ms_apart_each_get_the_cgroups_rate_over_a_second_or_more() {
    let cgroups = Cgroups::of_engine("readers");
    let (burner, cgroup) = half_cpu_burner(&cgroups, "dse-cpu-readers");
    let trace = cgroups.trace_cpu(&cgroup);
    let exporter = Exporter::local(&names_config(&[&burner.name], common::SLOW_ENGINE)).await;
    trace.two_readers(&exporter, &burner.name, 10).await;
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
    c.pause();
    let frozen = cgroups.read_now(&cgroup).cpu_seconds();
    let exporter = Exporter::local(&names_config(&[&c.name], common::SLOW_ENGINE)).await;
    let metric = "container_cpu_usage_seconds_total";
    let first = exporter.whole_metrics().await;
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

/// A busy container capped at half a CPU, and its cgroup, once it has used
/// some CPU.
fn half_cpu_burner(cgroups: &Cgroups, prefix: &str) -> (Container, Cgroup) {
    let burner = Container::run(
        &unique(prefix),
        &["--cpus", "0.5"],
        &["sh", "-c", "yes >/dev/null"],
    );
    let cgroup = cgroups.of(&burner);
    wait_until("the burner to use CPU", PATIENCE, || {
        match cgroups.read(&cgroup)?.cpu_seconds() {
            s if s >= 0.05 => Ok(()),
            s => Err(format!("{s} s")),
        }
    });
    (burner, cgroup)
}
