//! The exporter against the real Docker engine with real containers. Needs a
//! running engine and the local test image: `scripts/test` sets both up.

use std::time::{Duration, Instant};

use common::proxy::Proxy;
use common::{
    direct_stats, engine_socket, first_round_stats_calls, names_config, unique, Container,
    Exporter, TempDir,
};

#[tokio::test(flavor = "multi_thread")]
async fn selection_by_exact_name_or_label_selector() {
    let group = format!("dse.sel={}", unique("grp"));
    let exact = Container::sleeper(&unique("dse-sel-web"), &[]);
    let _prefix_only = Container::sleeper(&unique("dse-sel-web-10"), &[]);
    let labelled = Container::sleeper(
        &unique("dse-sel-labelled"),
        &["--label", &group, "--label", "tier=db"],
    );
    let half_match = Container::sleeper(&unique("dse-sel-half"), &["--label", &group]);
    let _unlabelled = Container::sleeper(&unique("dse-sel-none"), &[]);

    let exporter = Exporter::local(&format!(
        "[containers]\nnames = [\"/{}\"]\nlabels = [\"{group},tier=db\"]\n",
        exact.name
    ))
    .await;
    let m = exporter.metrics().await;
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![labelled.name.clone(), exact.name.clone()]
    );
    assert_eq!(m.value("docker_stats_containers_selected", &[]), Some(2.0));

    // A lone selector is pushed down to the engine; the result is the same.
    let exporter = Exporter::local(&format!("[containers]\nlabels = [\"{group}\"]\n")).await;
    let m = exporter.metrics().await;
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![half_match.name.clone(), labelled.name.clone()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn container_removed_mid_scrape_is_left_out_and_the_others_exported() {
    let survivor = Container::sleeper(&unique("dse-gone-survivor"), &[]);
    let dir = TempDir::new("gone");
    // The removal starts once the doomed container's stats call reached the
    // engine. A machine slow to remove it may let the engine answer first
    // (then exporting it is right): try again.
    for attempt in 1..=3 {
        let doomed = Container::sleeper(&unique("dse-gone-doomed"), &[]);
        let proxy = Proxy::start(&dir.0.join(format!("{attempt}.sock")), engine_socket());
        let exporter = Exporter::start(
            &names_config(&[&doomed.name, &survivor.name], ""),
            &proxy.url(),
        )
        .await;
        let scrape = exporter.scrape_in_background();
        let stats = format!("/containers/{}/stats", doomed.id);
        proxy.wait_for_forwarded(&stats).await;
        doomed.remove();
        let removed = Instant::now();
        let (status, body) = scrape.await.expect("scrape task");
        assert_eq!(status, 200, "{body}");
        let m = common::Metrics::parse(&body);
        if m.names("container_memory_usage_bytes")
            .contains(&doomed.name)
        {
            let about_it = format!("/containers/{}/", doomed.id);
            let last = proxy.answered_at(&about_it).last().copied();
            assert!(
                last.is_some_and(|at| at < removed),
                "exported though the engine answered for it after its removal: {body}"
            );
            eprintln!("attempt {attempt}: the engine answered before the removal; again");
            continue;
        }
        assert_eq!(
            m.names("container_memory_usage_bytes"),
            vec![survivor.name.clone()]
        );
        assert_eq!(m.value("docker_up", &[]), Some(1.0));
        assert_eq!(
            m.value("docker_stats_scrape_errors_total", &[("kind", "gone")]),
            Some(1.0),
            "{body}"
        );
        assert_eq!(
            m.value("docker_stats_scrape_errors_total", &[("kind", "engine")]),
            Some(0.0)
        );
        return;
    }
    panic!("in 3 attempts the removal never landed before the engine answered");
}

#[tokio::test(flavor = "multi_thread")]
async fn unreachable_engine_answers_200_with_docker_up_0_then_recovers() {
    let c = Container::sleeper(&unique("dse-unreachable-comeback"), &[]);
    let dir = TempDir::new("unreachable");
    let socket = dir.0.join("docker.sock");
    let exporter = Exporter::start(
        &names_config(&[&c.name], ""),
        &format!("unix://{}", socket.display()),
    )
    .await;

    let (status, body) = exporter.scrape().await;
    assert_eq!(status, 200, "{body}");
    let m = common::Metrics::parse(&body);
    assert_eq!(m.value("docker_up", &[]), Some(0.0));
    assert!(m.names("container_memory_usage_bytes").is_empty());
    assert!(m
        .value("docker_stats_scrape_duration_seconds", &[])
        .is_some());
    assert_eq!(
        m.value("docker_stats_scrape_errors_total", &[("kind", "engine")]),
        Some(1.0)
    );

    // The engine "comes back" at the configured address.
    std::os::unix::fs::symlink(engine_socket(), &socket).expect("symlink");
    let m = exporter.metrics().await;
    assert_eq!(m.value("docker_up", &[]), Some(1.0));
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![c.name.clone()]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn engine_sees_only_unversioned_get_requests_for_list_stats_inspect_info_version_and_ping() {
    let c = Container::sleeper(&unique("dse-readonly-target"), &[]);
    let dir = TempDir::new("readonly");
    let proxy = Proxy::start(&dir.0.join("engine.sock"), engine_socket());
    let exporter = Exporter::start(&names_config(&[&c.name], ""), &proxy.url()).await;
    for _ in 0..2 {
        let m = exporter.metrics().await;
        assert_eq!(
            m.names("container_memory_usage_bytes"),
            vec![c.name.clone()]
        );
    }
    let (status, _) = common::get(exporter.addr, "/readyz", &[]).await;
    assert_eq!(status, 200);

    let seen = proxy.seen();
    assert!(seen.len() >= 5, "{seen:?}");
    for s in &seen {
        assert_eq!(s.method, "GET", "{s:?}");
        // Whole paths, without `/v1.NN/`: unversioned, each engine answers
        // with its own API. Docker Engine 29 refuses clients that name a
        // version below 1.44, and Docker 20.10 to 28 refuse versions above
        // their own, so a client that put one in the path (as a bollard
        // update might) would lose one side or the other.
        let path = s.path.split('?').next().unwrap_or("");
        let allowed = ["/_ping", "/version", "/info", "/containers/json"].contains(&path)
            || path == format!("/containers/{}/json", c.id)
            || path == format!("/containers/{}/stats", c.id);
        assert!(allowed, "unexpected engine request {s:?}");
    }
    let stats: Vec<_> = seen.iter().filter(|s| s.path.contains("/stats")).collect();
    if direct_stats() {
        // Two one-shot reads for the new container, then one.
        assert_eq!(stats.len(), 3, "{stats:?}");
        assert!(
            stats.iter().all(|s| s.path.contains("one-shot=true")),
            "{stats:?}"
        );
    } else {
        // The first stats call fills precpu (no one-shot); the second is one-shot.
        assert_eq!(stats.len(), 2, "{stats:?}");
        assert!(!stats[0].path.contains("one-shot=true"), "{:?}", stats[0]);
        assert!(stats[1].path.contains("one-shot=true"), "{:?}", stats[1]);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn stats_calls_run_concurrently_up_to_max_concurrency() {
    let names: Vec<String> = (0..8).map(|i| unique(&format!("dse-fanout-{i}"))).collect();
    let _containers: Vec<Container> = names.iter().map(|n| Container::sleeper(n, &[])).collect();
    let dir = TempDir::new("fanout");

    // Every stats call takes this long at the proxy, so that calls overlap
    // on engines that answer at once (Docker 25 and later) as they do on
    // those that wait for their tick.
    let slow = Duration::from_millis(300);

    // Time for every wave of calls on a slow engine (one in a VM under
    // emulation): what is checked is the bound, not the deadline.
    let timeout = "timeout = \"60s\"";

    // Default bound: all eight stats calls wait on the engine together.
    let proxy = Proxy::start(&dir.0.join("all.sock"), engine_socket());
    proxy.set_delay("/stats", slow);
    let exporter = Exporter::start(&names_config(&names, timeout), &proxy.url()).await;
    let m = exporter.metrics().await;
    assert_eq!(m.names("container_memory_usage_bytes"), names);
    assert_eq!(proxy.count("/stats"), 8 * first_round_stats_calls());
    assert_eq!(proxy.max_stats_in_flight(), 8);

    // max_concurrency = 3: never more than three engine calls of any kind
    // at once (stats and inspect share the limit), nothing lost.
    let proxy = Proxy::start(&dir.0.join("three.sock"), engine_socket());
    proxy.set_delay("/stats", slow);
    let config = names_config(&names, &format!("max_concurrency = 3\n{timeout}"));
    let exporter = Exporter::start(&config, &proxy.url()).await;
    let m = exporter.metrics().await;
    assert_eq!(m.names("container_memory_usage_bytes"), names);
    assert_eq!(proxy.max_in_flight(), 3);
    assert_eq!(proxy.max_stats_in_flight(), 3);
}
