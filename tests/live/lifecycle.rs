//! A container's life and the rest of the metric set against the real
//! engine: network counters, restarts and exit codes, ad-hoc queries, and
//! promtool on a real answer (what the kernel accounts is in `kernel`).

#![allow(clippy::unwrap_used)]

use common::proxy::Proxy;
use common::{
    docker, engine_socket, first_round_stats_calls, names_config, unique, Container, Exporter,
    TempDir,
};

#[tokio::test(flavor = "multi_thread")]
async fn network_counters_grow_after_traffic_inside_the_container() {
    // Podman's containers lack NET_RAW, which busybox's ping needs.
    let c = Container::sleeper(&unique("dse-lc-network"), &["--cap-add", "NET_RAW"]);
    let gateway = docker(&[
        "inspect",
        "--format",
        "{{.NetworkSettings.Gateway}}",
        &c.name,
    ]);
    assert!(!gateway.is_empty(), "container has no bridge gateway");
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    let before = exporter.metrics().await;
    docker(&["exec", &c.name, "ping", "-c", "5", "-s", "1000", &gateway]);
    // Podman's exec through the VM's forwarded socket returns before its
    // command ends: the counters are waited for.
    let eth0 = [("name", c.name.as_str()), ("interface", "eth0")];
    let name = [("name", c.name.as_str())];
    type Labels<'a> = &'a [(&'a str, &'a str)];
    let wanted: [(&str, Labels, f64); 5] = [
        ("container_network_transmit_bytes_total", &eth0, 5000.0),
        ("container_network_receive_bytes_total", &eth0, 5000.0),
        ("container_network_transmit_packets_total", &eth0, 5.0),
        ("container_network_tx_bytes", &name, 5000.0),
        ("container_network_rx_bytes", &name, 5000.0),
    ];
    common::wait_until_async("five pings in the counters", common::PATIENCE, || async {
        let after = exporter.metrics().await;
        let short: Vec<String> = (wanted.iter())
            .filter_map(|(metric, labels, least)| {
                match (after.value(metric, labels), before.value(metric, labels)) {
                    (Some(a), Some(b)) if a - b >= *least => None,
                    (Some(a), Some(b)) => Some(format!("{metric} grew {}", a - b)),
                    _ => Some(format!("no {metric}")),
                }
            })
            .collect();
        match short.is_empty() {
            true => Ok(()),
            false => Err(short.join(", ")),
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn restarts_and_exit_code_of_a_failing_container_with_on_failure_policy() {
    let c = Container::run(
        &unique("dse-lc-restarting"),
        &["--restart", "on-failure:2"],
        &["sh", "-c", "exit 3"],
    );
    c.wait_inspect("{{.RestartCount}} {{.State.Status}}", "2 exited");
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    let m = exporter.metrics().await;
    assert_eq!(m.get("container_restarts_total", &c.name), Some(2.0));
    assert_eq!(m.get("container_exit_code", &c.name), Some(3.0));
    assert_eq!(
        m.value(
            "container_state",
            &[("name", c.name.as_str()), ("state", "exited")]
        ),
        Some(1.0)
    );
    assert_eq!(m.get("container_oom_killed", &c.name), Some(0.0));
    // Not running: no resource series.
    assert_eq!(m.get("container_memory_usage_bytes", &c.name), None);
    assert_eq!(m.value("docker_stats_containers_selected", &[]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn adhoc_query_narrows_one_scrape_and_only_those_are_asked() {
    let key = unique("dse.adhoc");
    let web = Container::sleeper(
        &unique("dse-lc-adhoc-web"),
        &["--label", &format!("{key}=web")],
    );
    let db = Container::sleeper(
        &unique("dse-lc-adhoc-db"),
        &["--label", &format!("{key}=db")],
    );
    let dir = TempDir::new("adhoc");
    let proxy = Proxy::start(&dir.0.join("e.sock"), engine_socket());
    let config = format!("[containers]\nlabels = [\"{key}\"]\n");
    let exporter = Exporter::start(&config, &proxy.url()).await;

    let query = format!("/metrics?name={}", web.name);
    let (status, body) = common::get(exporter.addr, &query, &[]).await;
    assert_eq!(status, 200);
    let m = common::Metrics::parse(&body);
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![web.name.clone()]
    );
    let stats: Vec<_> = proxy
        .seen()
        .into_iter()
        .filter(|s| s.path.contains("/stats"))
        .collect();
    assert_eq!(stats.len(), first_round_stats_calls(), "{stats:?}");
    assert!(stats.iter().all(|s| s.path.contains(&web.id)), "{stats:?}");

    let query = format!("/metrics?label={key}%3Ddb");
    let (_, body) = common::get(exporter.addr, &query, &[]).await;
    let m = common::Metrics::parse(&body);
    assert_eq!(
        m.names("container_memory_usage_bytes"),
        vec![db.name.clone()]
    );

    // A query never widens the configured selection.
    let outside = Container::sleeper(&unique("dse-lc-adhoc-outside"), &[]);
    let query = format!("/metrics?name={}", outside.name);
    let (_, body) = common::get(exporter.addr, &query, &[]).await;
    let m = common::Metrics::parse(&body);
    assert!(m.names("container_memory_usage_bytes").is_empty());

    let (status, body) = common::get(exporter.addr, "/metrics?nmae=x", &[]).await;
    assert_eq!(status, 400);
    assert!(body.contains("nmae"), "{body}");
}

#[tokio::test(flavor = "multi_thread")]
async fn promtool_accepts_a_real_answer_with_compose_labels() {
    let c = Container::sleeper(
        &unique("dse-lc-promtool"),
        &[
            "--label",
            "com.docker.compose.project=shop",
            "--label",
            "com.docker.compose.service=web",
            "--cpus",
            "0.25",
            // With a limit: Podman 5.4 fails the stats of a reservation
            // alone (faults.rs).
            "--memory",
            "64m",
            "--memory-reservation",
            "16m",
        ],
    );
    let exporter = Exporter::local(&names_config(&[&c.name], "")).await;
    exporter.metrics().await;
    let (_, body) = exporter.scrape().await;
    let name = &c.name;
    assert!(body.contains(&format!("container_info{{name=\"{name}\",id=\"")));
    assert!(body.contains(
        "container_label_com_docker_compose_project=\"shop\",container_label_com_docker_compose_service=\"web\"} 1"
    ));
    let m = common::Metrics::parse(&body);
    let cpu =
        m.0.iter()
            .find(|s| s.name == "container_cpu_usage_percent")
            .expect("a CPU percent");
    assert_eq!(&cpu.labels["name"], name);
    assert_eq!(
        cpu.labels["container_label_com_docker_compose_project"],
        "shop"
    );
    common::promtool_check_metrics(&body);
}
