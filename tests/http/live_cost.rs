//! What one open live view costs the engine and the exporter: N sleeper
//! containers (100 unless `DSE_LIVE_CONTAINERS` says), the exporter binary
//! (`DSE_BENCH_BIN`, else the test build) behind the counting proxy, and the
//! page open in chromium for `DSE_LIVE_SECS` (60) seconds; before and after,
//! no page at all. A measurement, not a check of the machine's speed:
//!
//! `DSE_BENCH_BIN=target/release/docker-stats-exporter cargo test --test http
//! live_cost -- --ignored --nocapture`
//!
//! prints the table docs/live-view.md quotes and writes it to
//! target/live-cost.md.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::http::query_escape;
use common::proxy::Proxy;
use common::{engine_socket, unique, Container, TempDir};
use serde_json::json;

use crate::live_browser::{browser_available, Driver, Event};

/// CPU time of process `pid` so far, from /proc/PID/stat (utime + stime).
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    // The fields after the command name, which is in parentheses.
    let rest = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
    let hz = String::from_utf8(
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap()
    .trim()
    .parse::<u64>()
    .unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz)
}

/// Engine requests by kind in `seen`.
fn kinds(proxy: &Proxy, from: usize) -> (usize, usize, usize, usize) {
    let seen = proxy.seen();
    let seen = &seen[from.min(seen.len())..];
    let count = |f: &dyn Fn(&str) -> bool| seen.iter().filter(|s| f(&s.path)).count();
    // The writable-layer sizes (`size=true`, every fs_usage_max_age) count
    // as other.
    let list = count(&|p| p.contains("/containers/json") && !p.contains("size=true"));
    let stats = count(&|p| p.contains("/stats"));
    let inspect = count(&|p| {
        p.contains("/containers/") && p.contains("/json") && !p.contains("/containers/json")
    });
    (list, stats, inspect, seen.len() - list - stats - inspect)
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "a measurement of minutes: run with --ignored --nocapture"]
async fn live_cost() {
    if !browser_available() {
        return;
    }
    let n: usize = std::env::var("DSE_LIVE_CONTAINERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let secs: u64 = std::env::var("DSE_LIVE_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let group = unique("livecost");
    let label = format!("dse.livecost={group}");
    let names: Vec<String> = (0..n)
        .map(|i| unique(&format!("dse-cost-{i:03}")))
        .collect();
    let containers: Vec<Container> = std::thread::scope(|s| {
        let chunks: Vec<_> = names
            .chunks(n.div_ceil(4).max(1))
            .map(|chunk| {
                let label = &label;
                s.spawn(move || {
                    chunk
                        .iter()
                        .map(|name| Container::sleeper(name, &["--label", label]))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        chunks.into_iter().flat_map(|h| h.join().unwrap()).collect()
    });

    let dir = TempDir::new("live-cost");
    let proxy = Proxy::start(&dir.0.join("engine.sock"), engine_socket());
    let bin = std::env::var("DSE_BENCH_BIN").unwrap_or_else(|_| common::BIN.to_string());
    let mut child = Command::new(&bin)
        .args(["--listen", "127.0.0.1:0", "--docker-host", &proxy.url()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(addr) = common::child::exporter_addr(&line) {
                let _ = tx.send(addr);
            }
        }
    });
    let addr: SocketAddr = rx.recv_timeout(Duration::from_secs(30)).unwrap();

    // No page: nothing at all.
    let (idle_cpu, idle_seen) = (cpu_time(pid), proxy.seen().len());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let idle = (cpu_time(pid) - idle_cpu, proxy.seen().len() - idle_seen);

    let url = format!("http://{addr}/?label={}", query_escape(&label));
    let mut driver = Driver::start(
        "watch",
        &url,
        &[
            ("DSE_COUNT", n.to_string()),
            ("DSE_WAIT_MS", "120000".into()),
        ],
    );
    let Event::Step(step, _) = driver.next().await else {
        panic!("no step")
    };
    assert_eq!(step, "open");
    let (cpu0, seen0, t0) = (cpu_time(pid), proxy.seen().len(), Instant::now());
    tokio::time::sleep(Duration::from_secs(secs)).await;
    let (cpu1, t1) = (cpu_time(pid), Instant::now());
    let (list, stats, inspect, other) = kinds(&proxy, seen0);
    driver.reply(json!({})).await;
    let done = match driver.next().await {
        Event::Done(v) => v,
        Event::Step(s, _) => panic!("unexpected step {s}"),
    };
    driver.finish().await;

    // The tab is closed: nothing again.
    let (after_cpu, after_seen) = (cpu_time(pid), proxy.seen().len());
    tokio::time::sleep(Duration::from_secs(10)).await;
    let after = (cpu_time(pid) - after_cpu, proxy.seen().len() - after_seen);
    let _ = child.kill();
    let _ = child.wait();
    drop(containers);

    let minutes = (t1 - t0).as_secs_f64() / 60.0;
    let per_min = |x: usize| x as f64 / minutes;
    let cpu_ms = (cpu1 - cpu0).as_secs_f64() * 1000.0;
    let table = format!(
        "| containers | page requests/min | engine requests/min (list/stats/inspect/other: sizes, info) | exporter CPU ms/min | exporter CPU % of one core | answer KiB | idle 10 s before: CPU ms, engine requests | 10 s after closing: CPU ms, engine requests |\n\
         |---:|---:|---:|---:|---:|---:|---:|---:|\n\
         | {n} | {:.1} | {:.0} ({:.1}/{:.0}/{:.1}/{:.1}) | {:.0} | {:.2} | {:.1} | {}, {} | {}, {} |\n",
        done["requests"].as_f64().unwrap_or(0.0) / done["seconds"].as_f64().unwrap_or(1.0) * 60.0,
        per_min(list + stats + inspect + other),
        per_min(list),
        per_min(stats),
        per_min(inspect),
        per_min(other),
        cpu_ms / minutes,
        cpu_ms / ((t1 - t0).as_secs_f64() * 1000.0) * 100.0,
        done["bytes"].as_f64().unwrap_or(0.0) / 1024.0,
        idle.0.as_millis(),
        idle.1,
        after.0.as_millis(),
        after.1,
    );
    println!(
        "exporter: {bin}\nwindow: {:.1} s\n{table}",
        (t1 - t0).as_secs_f64()
    );
    let target = std::env::var("CARGO_TARGET_DIR").unwrap_or_else(|_| "target".into());
    let _ = std::fs::write(format!("{target}/live-cost.md"), &table);
    assert_eq!(idle.1, 0, "engine requests with no page open");
    assert_eq!(after.1, 0, "engine requests after the page closed");
}
