//! The scrape logic against a scripted engine with paused time: CPU windows
//! on engines that wait for their tick and on engines that answer at once,
//! coalescing, the shared call limit, deadlines, eviction and error counts.
//! What only a live engine shows is in the other test files.

#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use docker_stats_exporter::config::selector::{LabelSelector, Selection};
use docker_stats_exporter::engine::fake::{Behaviour, FakeEngine, TICK};
use docker_stats_exporter::engine::limited::{INSPECT_CALLS, QUICK_CALLS};
use docker_stats_exporter::engine::Failure;
use docker_stats_exporter::scrape::coalesce::Coalescer;
use docker_stats_exporter::scrape::deadline::Deadline;
use docker_stats_exporter::scrape::state::FORGET_AFTER;
use docker_stats_exporter::scrape::{ScrapeOptions, Scraper, Snapshot};
use tokio::time::Instant;

/// Half a CPU on the fake engine's 2-CPU host: a quarter of the host.
const HALF_CPU: u64 = 500_000_000;

fn scraper(engine: &FakeEngine, options: ScrapeOptions) -> Arc<Scraper> {
    Arc::new(Scraper::new(Arc::new(engine.clone()), &options))
}

fn options() -> ScrapeOptions {
    ScrapeOptions::default()
}

async fn round(s: &Scraper, selection: &Selection, budget: Duration) -> Snapshot {
    let deadline = Deadline::fixed(Instant::now() + budget);
    s.collect(selection, &deadline, selection.is_all()).await
}

fn all() -> Selection {
    Selection::default()
}

fn names(names: &[&str]) -> Selection {
    Selection::new(names.iter().map(|n| n.to_string()).collect(), vec![])
}

fn cpu_of(snap: &Snapshot, name: &str) -> Option<f64> {
    snap.containers
        .iter()
        .find(|c| c.container.name == name)?
        .cpu_percent
}

fn exported(snap: &Snapshot) -> Vec<&str> {
    snap.containers
        .iter()
        .map(|c| c.container.name.as_str())
        .collect()
}

fn errors(snap: &Snapshot, kind: Failure) -> u64 {
    snap.errors
        .iter()
        .find(|(k, _)| *k == kind)
        .map_or(0, |(_, n)| *n)
}

fn assert_quarter(pct: Option<f64>) {
    let pct = pct.expect("a CPU percent");
    assert!((pct - 25.0).abs() < 1e-6, "{pct}");
}

#[tokio::test(start_paused = true)]
async fn ticking_engine_first_scrape_uses_the_engines_window_later_ones_the_previous_reading() {
    let engine = FakeEngine::docker("20.10.24");
    engine.add("burner", HALF_CPU);
    let s = scraper(&engine, options());

    let t = Instant::now();
    let first = round(&s, &all(), Duration::from_secs(10)).await;
    assert_quarter(cpu_of(&first, "burner"));
    // Without one-shot the engine waits two ticks.
    assert!(
        t.elapsed() >= TICK && t.elapsed() <= 2 * TICK,
        "{:?}",
        t.elapsed()
    );

    tokio::time::sleep(Duration::from_secs(15)).await;
    let t = Instant::now();
    let later = round(&s, &all(), Duration::from_secs(10)).await;
    assert_quarter(cpu_of(&later, "burner"));
    assert!(t.elapsed() <= TICK, "one-shot waits one tick at most");
    assert_eq!(engine.calls().stats, 2);
}

#[tokio::test(start_paused = true)]
async fn two_scrapes_in_one_engine_tick_both_get_a_window() {
    let engine = FakeEngine::docker("20.10.24");
    engine.add("burner", HALF_CPU);
    let s = scraper(&engine, options());
    round(&s, &all(), Duration::from_secs(10)).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // An HA pair: two scrapes of different selections in the same tick.
    let (everything, one) = (all(), names(&["burner"]));
    let (a, b) = futures::join!(
        round(&s, &everything, Duration::from_secs(10)),
        round(&s, &one, Duration::from_secs(10))
    );
    assert_quarter(cpu_of(&a, "burner"));
    assert_quarter(cpu_of(&b, "burner"));
}

#[tokio::test(start_paused = true)]
async fn direct_engine_reads_a_new_container_twice_and_never_waits_two_ticks() {
    let engine = FakeEngine::docker("26.1.5");
    engine.add("burner", HALF_CPU);
    let window = Duration::from_millis(500);
    let s = scraper(
        &engine,
        ScrapeOptions {
            cpu_percent_min_window: window,
            ..options()
        },
    );
    let t = Instant::now();
    let first = round(&s, &all(), Duration::from_secs(10)).await;
    assert_quarter(cpu_of(&first, "burner"));
    assert_eq!(t.elapsed(), window, "two readings, the window apart");
    assert_eq!(engine.calls().stats, 2);

    tokio::time::sleep(Duration::from_secs(15)).await;
    let t = Instant::now();
    let later = round(&s, &all(), Duration::from_secs(10)).await;
    assert_quarter(cpu_of(&later, "burner"));
    assert_eq!(t.elapsed(), Duration::ZERO, "one direct call");
    assert_eq!(engine.calls().stats, 3);
}

/// Two readers 50 ms apart, ten times, on a direct engine: each percent
/// covers at least the minimum window, so a quota-capped burner (50 ms of
/// every 100 ms, a quarter of the 2-CPU host) reads a quarter each time;
/// over the 50 ms between the readers it would read 0 or 50 %.
#[tokio::test(start_paused = true)]
async fn a_second_reader_50_ms_later_gets_a_window_of_at_least_the_minimum() {
    let engine = FakeEngine::docker("28.5.2");
    engine.add("burner", HALF_CPU);
    engine.set_behaviour(
        "burner",
        Behaviour {
            cfs_quota: Some(Duration::from_millis(50)),
            ..Default::default()
        },
    );
    let s = scraper(&engine, options());
    let min = ScrapeOptions::default().cpu_percent_min_window;
    let first = round(&s, &all(), Duration::from_secs(10)).await;
    assert_near_quarter(cpu_of(&first, "burner"), min);
    // Windows that start 20 ms into a period: the worst case for the
    // quota's phase over a 50 ms window, harmless over a second.
    tokio::time::sleep(Duration::from_millis(1_520)).await;
    for _ in 0..10 {
        let a = round(&s, &all(), Duration::from_secs(10)).await;
        tokio::time::sleep(Duration::from_millis(50)).await;
        let b = round(&s, &all(), Duration::from_secs(10)).await;
        assert_near_quarter(cpu_of(&a, "burner"), min);
        assert_near_quarter(cpu_of(&b, "burner"), min);
        tokio::time::sleep(Duration::from_millis(1_430)).await;
    }
    assert_eq!(engine.calls().stats, 22, "one call per reading");
}

/// A quarter of the host, as a quota-capped burner reads over a window of at
/// least `min`: the quota's phase moves at most 25 ms of its CPU time.
fn assert_near_quarter(pct: Option<f64>, min: Duration) {
    let pct = pct.expect("a CPU percent");
    let room = 100.0 * 0.025 / (2.0 * min.as_secs_f64());
    assert!((pct - 25.0).abs() <= room + 1e-6, "{pct} %, room {room}");
}

#[tokio::test(start_paused = true)]
async fn direct_engine_with_a_short_deadline_skips_the_second_reading() {
    let engine = FakeEngine::docker("26.1.5");
    engine.add("burner", HALF_CPU);
    let s = scraper(
        &engine,
        ScrapeOptions {
            cpu_percent_min_window: Duration::from_millis(500),
            ..options()
        },
    );
    let first = round(&s, &all(), Duration::from_millis(800)).await;
    assert_eq!(exported(&first), ["burner"]);
    assert_eq!(cpu_of(&first, "burner"), None, "no room for a window");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let later = round(&s, &all(), Duration::from_millis(800)).await;
    assert_quarter(cpu_of(&later, "burner"));
}

#[tokio::test(start_paused = true)]
async fn podman_percent_comes_from_wall_time() {
    let engine = FakeEngine::podman();
    engine.add("burner", HALF_CPU);
    let s = scraper(&engine, options());
    let first = round(&s, &all(), Duration::from_secs(10)).await;
    assert_quarter(cpu_of(&first, "burner"));
    tokio::time::sleep(Duration::from_secs(15)).await;
    assert_quarter(cpu_of(
        &round(&s, &all(), Duration::from_secs(10)).await,
        "burner",
    ));
}

/// Podman's user and system time are not the cgroup's (5.4 gives system
/// time in microseconds): left out there, kept on Docker.
#[tokio::test(start_paused = true)]
async fn user_and_system_cpu_time_are_left_out_on_podman_only() {
    for (engine, kept) in [
        (FakeEngine::podman(), false),
        (FakeEngine::docker("28.5.2"), true),
    ] {
        engine.add("burner", HALF_CPU);
        let s = scraper(&engine, options());
        let snap = round(&s, &all(), Duration::from_secs(10)).await;
        let sample = snap.containers[0].sample.as_ref().expect("a sample");
        assert_eq!(sample.cpu_user_ns.is_some(), kept, "{sample:?}");
        assert_eq!(sample.cpu_system_ns.is_some(), kept, "{sample:?}");
        assert!(sample.cpu.is_some(), "the total is kept");
    }
}

#[tokio::test(start_paused = true)]
async fn concurrent_scrapes_of_one_selection_share_one_round() {
    let engine = FakeEngine::docker("20.10.24");
    for i in 0..5 {
        engine.add(&format!("c{i}"), HALF_CPU);
    }
    let rounds = Coalescer::new(scraper(&engine, options()));
    // Equal once normalised: order and repeats do not make a new selection.
    let a = Selection::new(
        vec![],
        vec![
            LabelSelector::parse("a,a").unwrap(),
            LabelSelector::parse("b").unwrap(),
        ],
    );
    let b = Selection::new(
        vec![],
        vec![
            LabelSelector::parse("b").unwrap(),
            LabelSelector::parse("a").unwrap(),
        ],
    );
    let until = Instant::now() + Duration::from_secs(10);
    let scrapes: Vec<_> = (0..8)
        .map(|i| {
            let rounds = rounds.clone();
            let sel = if i % 2 == 0 { a.clone() } else { b.clone() };
            tokio::spawn(async move { rounds.snapshot(&sel, until, false).await })
        })
        .collect();
    for s in scrapes {
        s.await.unwrap();
    }
    assert_eq!(engine.calls().list, 1, "{:?}", engine.calls());
    assert_eq!(rounds.in_flight(), 0);
}

/// A scraper with a far shorter deadline does not bring the shared round's
/// forward: it gets a round of its own (shared by scrapers like it), and the
/// normal scrapes meanwhile are complete.
#[tokio::test(start_paused = true)]
async fn an_impatient_scraper_does_not_cut_the_shared_round_short() {
    let engine = FakeEngine::docker("20.10.24");
    for i in 0..4 {
        let slow = Behaviour {
            stats_delay: Duration::from_millis(300 * i),
            ..Default::default()
        };
        engine.add_with(&format!("c{i}"), "running", HALF_CPU, HashMap::new(), slow);
    }
    let rounds = Coalescer::new(scraper(&engine, options()));
    let sel = all();
    let impatient = tokio::spawn({
        let (rounds, sel) = (rounds.clone(), sel.clone());
        async move {
            let mut answers = Vec::new();
            for _ in 0..40 {
                let (rounds, sel) = (rounds.clone(), sel.clone());
                answers.push(tokio::spawn(async move {
                    let until = Instant::now() + Duration::from_millis(500);
                    rounds.snapshot(&sel, until, true).await
                }));
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            answers
        }
    });
    for _ in 0..3 {
        let start = Instant::now();
        let snap = rounds
            .snapshot(&sel, start + Duration::from_secs(10), true)
            .await;
        assert!(!snap.failed, "{snap:?}");
        assert_eq!(exported(&snap).len(), 4);
        assert!(snap.containers.iter().all(|c| c.cpu_percent.is_some()));
    }
    let mut impatient_rounds = 0;
    for answer in impatient.await.unwrap() {
        let snap = answer.await.unwrap();
        impatient_rounds += usize::from(snap.failed);
    }
    // The impatient rounds did time out: the test exercised the cut-off.
    assert!(impatient_rounds > 0);
    // They shared rounds among themselves: 40 requests over 4 s of 0.5 s
    // deadlines, far fewer rounds than requests.
    assert!(engine.calls().list < 20, "{:?}", engine.calls());
}

#[tokio::test(start_paused = true)]
async fn a_storm_of_distinct_selections_keeps_engine_calls_at_the_limit() {
    let engine = FakeEngine::docker("26.1.5");
    let mut labels = HashMap::new();
    labels.insert("team".to_string(), "a".to_string());
    for i in 0..20 {
        engine.add_with(
            &format!("c{i:02}"),
            "running",
            HALF_CPU,
            labels.clone(),
            Behaviour {
                stats_delay: Duration::from_millis(20),
                ..Default::default()
            },
        );
    }
    let limit = 4;
    let rounds = Coalescer::new(scraper(
        &engine,
        ScrapeOptions {
            max_concurrency: limit,
            ..options()
        },
    ));
    let until = Instant::now() + Duration::from_secs(30);
    let scrapes: Vec<_> = (0..50)
        .map(|i| {
            let rounds = rounds.clone();
            // 50 distinct ad-hoc queries.
            let sel = Selection::default().narrowed_by(Selection::new(
                vec![format!("c{:02}", i % 20), format!("x{i}")],
                vec![],
            ));
            tokio::spawn(async move { rounds.snapshot(&sel, until, false).await })
        })
        .collect();
    for s in scrapes {
        let snap = s.await.unwrap();
        assert!(snap.engine_up);
        assert_eq!(snap.containers.len(), 1);
    }
    assert!(
        engine.max_in_flight() <= limit,
        "{}",
        engine.max_in_flight()
    );
    assert_eq!(
        engine.max_in_flight(),
        limit,
        "the limit is used, not undershot"
    );
    assert_eq!(engine.calls().list, 50);
}

#[tokio::test(start_paused = true)]
async fn scraping_only_with_adhoc_queries_keeps_state_bounded() {
    let engine = FakeEngine::docker("26.1.5");
    let s = scraper(&engine, options());
    // Containers come and go; every scrape asks for one of them by name.
    for i in 0..200 {
        let name = format!("job{i}");
        engine.add(&name, HALF_CPU);
        round(&s, &names(&[&name]), Duration::from_secs(5)).await;
        engine.remove(&name);
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    // 200 × 15 s is far beyond FORGET_AFTER: only the recent ones remain.
    let bound = (FORGET_AFTER.as_secs() / 15 + 1) as usize;
    assert!(
        s.tracked_containers() <= bound,
        "{} containers tracked, bound {bound}",
        s.tracked_containers()
    );
    assert!(s.tracked_containers() > 0);
}

#[tokio::test(start_paused = true)]
async fn a_failed_stats_call_keeps_info_state_and_lifecycle() {
    let engine = FakeEngine::docker("26.1.5");
    engine.add("ok", HALF_CPU);
    engine.add_with(
        "broken",
        "running",
        HALF_CPU,
        HashMap::new(),
        Behaviour {
            stats_fails: Some(Failure::Engine),
            ..Default::default()
        },
    );
    let s = scraper(&engine, options());
    let snap = round(&s, &all(), Duration::from_secs(5)).await;
    assert_eq!(exported(&snap), ["broken", "ok"]);
    let broken = &snap.containers[0];
    assert!(broken.sample.is_none());
    assert!(broken.lifecycle.is_some(), "inspect answer kept");
    assert_eq!(broken.container.state, "running");
    assert_eq!(errors(&snap, Failure::Engine), 1);
    assert!(
        snap.failed,
        "container_scrape_error: a failed stats call is an error"
    );
}

#[tokio::test(start_paused = true)]
async fn a_hung_stats_call_times_out_and_keeps_info() {
    let engine = FakeEngine::docker("26.1.5");
    engine.add("ok", HALF_CPU);
    engine.add_with(
        "hung",
        "running",
        HALF_CPU,
        HashMap::new(),
        Behaviour {
            stats_hangs: true,
            ..Default::default()
        },
    );
    let s = scraper(&engine, options());
    let t = Instant::now();
    let snap = round(&s, &all(), Duration::from_secs(2)).await;
    assert_eq!(t.elapsed(), Duration::from_secs(2));
    assert_eq!(exported(&snap), ["hung", "ok"]);
    assert!(snap.containers[0].sample.is_none());
    assert!(snap.containers[1].sample.is_some());
    assert_eq!(errors(&snap, Failure::Timeout), 1, "counted once");
    assert!(snap.failed, "container_scrape_error: a timeout is an error");
}

#[tokio::test(start_paused = true)]
async fn a_container_that_fails_twice_in_one_round_counts_once() {
    let engine = FakeEngine::podman();
    engine.add_with(
        "vanishing",
        "running",
        HALF_CPU,
        HashMap::new(),
        Behaviour {
            stats_fails: Some(Failure::Gone),
            inspect_fails: Some(Failure::Engine),
            ..Default::default()
        },
    );
    let s = scraper(&engine, options());
    let snap = round(&s, &all(), Duration::from_secs(5)).await;
    assert!(snap.containers.is_empty(), "a gone container is left out");
    let total: u64 = snap.errors.iter().map(|(_, n)| n).sum();
    assert_eq!((errors(&snap, Failure::Gone), total), (1, 1));
    assert!(
        !snap.failed,
        "container_scrape_error: a container removed meanwhile is no error"
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_starved_by_the_deadline_is_exported_by_the_next_round() {
    let engine = FakeEngine::docker("26.1.5");
    for i in 0..10 {
        engine.add_with(
            &format!("c{i}"),
            "running",
            HALF_CPU,
            HashMap::new(),
            Behaviour {
                stats_delay: Duration::from_millis(100),
                ..Default::default()
            },
        );
    }
    let s = scraper(
        &engine,
        ScrapeOptions {
            max_concurrency: 2,
            // Only the fixed part of the logic: one reading per scrape.
            cpu_percent_min_window: Duration::from_secs(60),
            ..options()
        },
    );
    let with_sample = |snap: &Snapshot| -> Vec<String> {
        snap.containers
            .iter()
            .filter(|c| c.sample.is_some())
            .map(|c| c.container.name.clone())
            .collect()
    };
    // Room for about half of the containers per round.
    let first = round(&s, &all(), Duration::from_millis(450)).await;
    let got_first = with_sample(&first);
    assert!(
        got_first.len() < 10 && !got_first.is_empty(),
        "{got_first:?}"
    );
    let starved: Vec<String> = (0..10)
        .map(|i| format!("c{i}"))
        .filter(|n| !got_first.contains(n))
        .collect();
    assert!(
        starved.contains(&"c9".to_string()),
        "the last listed starve"
    );
    let second = round(&s, &all(), Duration::from_millis(450)).await;
    let got_second = with_sample(&second);
    for name in &starved {
        assert!(
            got_second.contains(name),
            "{name} starved twice: {got_second:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_unreachable_engine_gives_docker_up_0_then_recovers() {
    let engine = FakeEngine::docker("26.1.5");
    engine.add("c", HALF_CPU);
    let s = scraper(&engine, options());
    engine.set_down(true);
    let down = round(&s, &all(), Duration::from_secs(5)).await;
    assert!(!down.engine_up);
    assert!(
        down.failed,
        "container_scrape_error: 1 while the engine is down"
    );
    assert_eq!(errors(&down, Failure::Engine), 1);
    engine.set_down(false);
    let up = round(&s, &all(), Duration::from_secs(5)).await;
    assert!(up.engine_up);
    assert!(
        !up.failed,
        "container_scrape_error: 0 again once it answers"
    );
    assert_eq!(exported(&up), ["c"]);
}

/// A scraper that would reuse inspect answers for twenty minutes: only a
/// start again seen in the engine's answers makes it ask anew.
fn scraper_keeping_inspect_answers(engine: &FakeEngine) -> Arc<Scraper> {
    scraper(
        engine,
        ScrapeOptions {
            inspect_max_age: Duration::from_secs(1200),
            ..options()
        },
    )
}

/// The first container's restart count, where inspect answered.
fn restart_count(snap: &Snapshot) -> Option<u64> {
    snap.containers[0]
        .lifecycle
        .as_ref()
        .and_then(|l| l.restart_count)
}

#[tokio::test(start_paused = true)]
async fn a_restart_between_scrapes_shows_in_the_restart_count_at_the_next_scrape() {
    let engine = FakeEngine::docker("26.1.5");
    engine.add("flaky", HALF_CPU);
    let s = scraper_keeping_inspect_answers(&engine);
    let first = round(&s, &all(), Duration::from_secs(5)).await;
    assert_eq!(restart_count(&first), Some(0));
    tokio::time::sleep(Duration::from_secs(60)).await;
    round(&s, &all(), Duration::from_secs(5)).await;
    // Restarted by its policy between scrapes: listed as running both times.
    engine.restart("flaky");
    tokio::time::sleep(Duration::from_secs(15)).await;
    // This scrape sees the CPU counter start again; the cached inspect
    // answer is dropped, so the next one asks anew.
    round(&s, &all(), Duration::from_secs(5)).await;
    tokio::time::sleep(Duration::from_secs(15)).await;
    let third = round(&s, &all(), Duration::from_secs(5)).await;
    assert_eq!(restart_count(&third), Some(1));
    assert_eq!(engine.calls().inspect, 2);
}

/// The fake engine's clock is a month behind ours, as a VM's may drift, and
/// it lists Docker's status texts (`Up 5 minutes`): whether a container
/// started again is read from those texts and our own clock's intervals, so
/// a cached inspect answer is reused however far apart the clocks are, and
/// a start again still shows at the next scrape.
#[tokio::test(start_paused = true)]
async fn an_engine_clock_far_from_ours_costs_no_inspect_calls_and_a_restart_still_shows() {
    let engine = FakeEngine::docker("20.10.24");
    // It uses no CPU: its restart shows in the listed uptime alone, not in
    // a CPU counter starting again.
    engine.add("steady", 0);
    let s = scraper_keeping_inspect_answers(&engine);
    // Every 15 s for ten minutes: "Up 15 seconds" to "Up 10 minutes".
    for _ in 0..40 {
        let snap = round(&s, &all(), Duration::from_secs(5)).await;
        assert_eq!(restart_count(&snap), Some(0));
        tokio::time::sleep(Duration::from_secs(15)).await;
    }
    assert_eq!(engine.calls().inspect, 1, "one answer, reused");
    engine.restart("steady");
    tokio::time::sleep(Duration::from_secs(15)).await;
    let snap = round(&s, &all(), Duration::from_secs(5)).await;
    assert_eq!(restart_count(&snap), Some(1));
    assert_eq!(engine.calls().inspect, 2);
}

/// 100 running containers whose stats calls take 20 ms on top of the
/// engine's own waiting, and whose inspect calls take 5 ms.
fn hundred_containers(version: &str) -> FakeEngine {
    let engine = FakeEngine::docker(version);
    for i in 0..100 {
        engine.add_with(
            &format!("c{i:03}"),
            "running",
            HALF_CPU,
            HashMap::new(),
            Behaviour {
                stats_delay: Duration::from_millis(20),
                inspect_delay: Duration::from_millis(5),
                ..Default::default()
            },
        );
    }
    engine
}

#[tokio::test(start_paused = true)]
async fn calls_answered_at_once_are_held_to_the_quick_limit() {
    let engine = hundred_containers("26.1.5");
    let s = scraper(&engine, options());
    for _ in 0..2 {
        let snap = round(&s, &all(), Duration::from_secs(10)).await;
        assert_eq!(snap.containers.len(), 100);
        assert!(snap.containers.iter().all(|c| c.sample.is_some()));
    }
    assert_eq!(engine.max_in_flight(), QUICK_CALLS, "held to it, and used");
}

#[tokio::test(start_paused = true)]
async fn stats_calls_that_wait_for_the_tick_all_go_at_once() {
    let engine = hundred_containers("20.10.24");
    let s = scraper(&engine, options());
    let started = Instant::now();
    let snap = round(&s, &all(), Duration::from_secs(10)).await;
    assert_eq!(snap.containers.len(), 100);
    // Every stats call in flight together (inspect calls beside them are
    // held to their own limit), so the round costs the engine's ticks once.
    let most = engine.max_in_flight();
    assert!((100..=100 + INSPECT_CALLS).contains(&most), "{most}");
    assert!(started.elapsed() < 4 * TICK, "{:?}", started.elapsed());
}

#[tokio::test(start_paused = true)]
async fn a_first_scrape_holds_inspect_calls_to_their_own_limit() {
    for version in ["20.10.24", "26.1.5"] {
        let engine = hundred_containers(version);
        let s = scraper(&engine, options());
        let snap = round(&s, &all(), Duration::from_secs(10)).await;
        assert_eq!(snap.containers.len(), 100);
        assert_eq!(engine.calls().inspect, 100, "{version}: one per container");
        assert_eq!(
            engine.max_inspects_in_flight(),
            INSPECT_CALLS,
            "{version}: held to it, and used"
        );
    }
}

fn health_of(snap: &Snapshot, name: &str) -> Option<String> {
    snap.containers
        .iter()
        .find(|c| c.container.name == name)?
        .lifecycle
        .as_ref()?
        .health
        .clone()
}

/// From API 1.52 (Engine 29) the list carries each container's health: a
/// change of health alone is exported from the list, with no inspect call;
/// before, only the status text tells, and the change is inspected anew.
#[tokio::test(start_paused = true)]
async fn health_from_the_list_needs_no_inspect_call_on_engine_29() {
    for (version, inspects_after_flip) in [("29.0.0", 1), ("28.5.2", 2)] {
        let engine = FakeEngine::docker(version);
        engine.add("web", HALF_CPU);
        engine.set_health("web", Some("starting"));
        let s = scraper(&engine, options());
        let first = round(&s, &all(), Duration::from_secs(10)).await;
        assert_eq!(health_of(&first, "web").as_deref(), Some("starting"));
        assert_eq!(engine.calls().inspect, 1, "{version}");

        tokio::time::sleep(Duration::from_secs(5)).await;
        engine.set_health("web", Some("healthy"));
        let later = round(&s, &all(), Duration::from_secs(10)).await;
        assert_eq!(health_of(&later, "web").as_deref(), Some("healthy"));
        assert_eq!(engine.calls().inspect, inspects_after_flip, "{version}");

        tokio::time::sleep(Duration::from_secs(5)).await;
        engine.set_health("web", None);
        let none = round(&s, &all(), Duration::from_secs(10)).await;
        assert_eq!(health_of(&none, "web"), None, "{version}");
    }
}

#[tokio::test(start_paused = true)]
async fn an_identity_slower_than_a_round_lands_for_the_next_round() {
    // Podman's /version and /info took 3 s each on the loaded VM, and more
    // beside a busy test: here 12 s against rounds of 10 s.
    let engine = FakeEngine::podman();
    engine.add("web", HALF_CPU);
    engine.set_identify_delay(Duration::from_secs(12));
    let s = scraper(&engine, options());
    let first = round(&s, &all(), Duration::from_secs(10)).await;
    assert_eq!(first.machine, None, "not yet answered");
    tokio::time::sleep(Duration::from_secs(5)).await;
    let second = round(&s, &all(), Duration::from_secs(10)).await;
    assert!(
        second.machine.is_some(),
        "the first round's request answered"
    );
    let web = second
        .containers
        .iter()
        .find(|c| c.container.name == "web")
        .unwrap();
    assert!(
        web.cgroup.contains("libpod-"),
        "Podman's layout: {}",
        web.cgroup
    );
    let calls = engine.calls();
    assert_eq!((calls.version, calls.info), (1, 1), "each asked once");
}
