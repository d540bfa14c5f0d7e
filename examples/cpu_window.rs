//! How far a CPU percent over a short window strays from the true rate of a
//! quota-capped container: the measurement behind `cpu_percent_min_window`.
//!
//! ```text
//! cargo run --release --example cpu_window -- --engine unix:///run/dse-engines/docker26/docker.sock
//!     [--docker /usr/bin/docker] [--cpus 0.5] [--seconds 30] [--windows 50ms,100ms,250ms,500ms,1s,2s]
//! ```
//!
//! It starts a busybox burner capped at `--cpus` (`dse-cpu-window`, removed
//! at the end), reads its stats with `one-shot=true` back to back for
//! `--seconds` (an engine that answers at once: Docker 25 and later, Podman),
//! and for each window length takes every pair of readings that far apart
//! (the first reading at least that far after each start) and compares the
//! percent over it, docker's formula without `online_cpus`, with the rate
//! over the same window widened by `--context` (default 1.5 s) on each side:
//! what the quota's phase adds, without what a busy host's changing share
//! adds over the run. It prints a Markdown table: windows, pairs, the
//! largest and the 95th-percentile error in points of the host's CPU, and
//! the same against the whole run's rate.
//! `--docker` is the CLI that starts the burner (one that speaks the
//! engine's API: `/usr/local/bin/docker` for an engine refusing API 1.41).

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const NAME: &str = "dse-cpu-window";
const IMAGE: &str = "dse-test/busybox:latest";

struct Args {
    engine: String,
    docker: String,
    cpus: String,
    seconds: f64,
    context: f64,
    windows: Vec<Duration>,
}

/// One reading: the engine's read time (s), the container's and the host's
/// CPU counters (ns).
#[derive(Clone, Copy)]
struct Reading {
    at: f64,
    cpu: u64,
    system: u64,
}

fn args() -> anyhow::Result<Args> {
    let mut a = Args {
        engine: "unix:///var/run/docker.sock".into(),
        docker: "/usr/bin/docker".into(),
        cpus: "0.5".into(),
        seconds: 30.0,
        context: 1.5,
        windows: ["50ms", "100ms", "250ms", "500ms", "1s", "2s"]
            .iter()
            .map(|w| humantime::parse_duration(w))
            .collect::<Result<_, _>>()?,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| anyhow!("{flag} needs a value"))?;
        match flag.as_str() {
            "--engine" => a.engine = value,
            "--docker" => a.docker = value,
            "--cpus" => a.cpus = value,
            "--seconds" => a.seconds = value.parse().context("--seconds")?,
            "--context" => {
                a.context = humantime::parse_duration(&value)
                    .context("--context")?
                    .as_secs_f64()
            }
            "--windows" => {
                a.windows = value
                    .split(',')
                    .map(|w| humantime::parse_duration(w.trim()))
                    .collect::<Result<_, _>>()
                    .context("--windows")?
            }
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(a)
}

fn docker(a: &Args, args: &[&str]) -> anyhow::Result<String> {
    let out = Command::new(&a.docker)
        .args(["-H", &a.engine])
        .args(args)
        .output()
        .with_context(|| format!("running {}", a.docker))?;
    if !out.status.success() {
        bail!(
            "docker {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// One `GET .../stats?stream=false&one-shot=true` over the unix socket.
async fn read(socket: &str) -> anyhow::Result<Reading> {
    let mut s = tokio::net::UnixStream::connect(socket).await?;
    let req = format!(
        "GET /containers/{NAME}/stats?stream=false&one-shot=true HTTP/1.0\r\nHost: engine\r\n\r\n"
    );
    s.write_all(req.as_bytes()).await?;
    let mut body = Vec::new();
    s.read_to_end(&mut body).await?;
    let text = String::from_utf8_lossy(&body);
    let json = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .ok_or_else(|| anyhow!("no body"))?;
    let v: serde_json::Value = serde_json::from_str(json)?;
    let read = v["read"].as_str().ok_or_else(|| anyhow!("no read time"))?;
    let at = time::OffsetDateTime::parse(read, &time::format_description::well_known::Rfc3339)?;
    Ok(Reading {
        at: at.unix_timestamp_nanos() as f64 / 1e9,
        cpu: v["cpu_stats"]["cpu_usage"]["total_usage"]
            .as_u64()
            .ok_or_else(|| anyhow!("no total_usage"))?,
        system: v["cpu_stats"]["system_cpu_usage"]
            .as_u64()
            .ok_or_else(|| anyhow!("no system_cpu_usage"))?,
    })
}

fn percent(a: Reading, b: Reading) -> f64 {
    (b.cpu - a.cpu) as f64 / (b.system - a.system) as f64 * 100.0
}

/// The first reading at least `t` (s) after reading `from`, by index.
fn at_or_after(readings: &[Reading], from: usize, t: f64) -> Option<usize> {
    (from..readings.len()).find(|&j| readings[j].at >= t)
}

/// The last reading at or before `t`, by index.
fn at_or_before(readings: &[Reading], t: f64) -> Option<usize> {
    readings.iter().rposition(|r| r.at <= t)
}

/// Errors of every window `w` long (from each reading to the first one at
/// least `w` after it), against the rate over the window widened by
/// `context` s each side and against `whole`, each sorted.
fn errors(readings: &[Reading], w: f64, context: f64, whole: f64) -> (Vec<f64>, Vec<f64>) {
    let (mut local, mut overall) = (Vec::new(), Vec::new());
    for (i, a) in readings.iter().enumerate() {
        let Some(j) = at_or_after(readings, i + 1, a.at + w) else {
            break;
        };
        let b = readings[j];
        let (Some(lo), Some(hi)) = (
            at_or_before(readings, a.at - context),
            at_or_after(readings, j, b.at + context),
        ) else {
            continue;
        };
        if b.system > a.system {
            let pct = percent(*a, b);
            local.push((pct - percent(readings[lo], readings[hi])).abs());
            overall.push((pct - whole).abs());
        }
    }
    local.sort_by(f64::total_cmp);
    overall.sort_by(f64::total_cmp);
    (local, overall)
}

/// The largest and the 95th-percentile value of sorted errors.
fn spread(e: &[f64]) -> Option<(f64, f64)> {
    Some((*e.last()?, *e.get(e.len() * 95 / 100)?))
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args()?;
    let socket = a
        .engine
        .strip_prefix("unix://")
        .ok_or_else(|| anyhow!("--engine must be unix:///path"))?
        .to_string();
    let _ = docker(&a, &["rm", "-f", NAME]);
    docker(
        &a,
        &[
            "run",
            "-d",
            "--name",
            NAME,
            "--cpus",
            &a.cpus,
            IMAGE,
            "sh",
            "-c",
            "yes >/dev/null",
        ],
    )?;
    // Past the burner's start.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut readings = Vec::new();
    let started = Instant::now();
    let result = async {
        while started.elapsed().as_secs_f64() < a.seconds {
            readings.push(read(&socket).await?);
        }
        anyhow::Ok(())
    }
    .await;
    let _ = docker(&a, &["rm", "-f", NAME]);
    result?;
    let (first, last) = match (readings.first(), readings.last()) {
        (Some(f), Some(l)) if readings.len() > 2 => (*f, *l),
        _ => bail!("too few readings"),
    };
    let reference = percent(first, last);
    println!(
        "{} readings over {:.1} s, {:.1} ms apart; the whole run: {reference:.2} % of the host\n",
        readings.len(),
        last.at - first.at,
        (last.at - first.at) / readings.len() as f64 * 1e3
    );
    println!(
        "| window | pairs | largest error | 95th percentile | largest, against the whole run | 95th, against the whole run |"
    );
    println!("|---|---:|---:|---:|---:|---:|");
    for w in &a.windows {
        let (local, overall) = errors(&readings, w.as_secs_f64(), a.context, reference);
        let (Some((max, p95)), Some((omax, op95))) = (spread(&local), spread(&overall)) else {
            continue;
        };
        println!(
            "| {} | {} | {max:.2} | {p95:.2} | {omax:.2} | {op95:.2} |",
            humantime::format_duration(*w),
            local.len()
        );
    }
    Ok(())
}
