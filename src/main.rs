use std::process::ExitCode;

use anyhow::Context;
use docker_stats_exporter::config::cli::{Cli, LogFormat};
use docker_stats_exporter::config::context::DockerEnv;
use docker_stats_exporter::config::{Config, Overrides};
use docker_stats_exporter::http::web_config::WebConfig;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("docker-stats-exporter: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    let overrides = Overrides {
        listen: cli.listen.clone(),
        docker_host: cli.docker_host.clone(),
    };
    let config = Config::load(
        cli.config.as_deref(),
        &overrides,
        std::env::var("DOCKER_HOST").ok(),
    )?
    .with_engine_tls(
        std::env::var("DOCKER_TLS_VERIFY").ok(),
        std::env::var("DOCKER_CERT_PATH").ok(),
        std::env::var("HOME").ok(),
    );
    // One thread: the work is waiting on the engine, and every extra worker
    // costs memory (its own allocator arena) for nothing.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the runtime")?;
    if cli.healthcheck {
        return runtime.block_on(docker_stats_exporter::healthcheck(config.listen));
    }
    // After the health check, which needs only the listen address.
    let config = config.with_docker_context(&DockerEnv::from_process())?;
    let web = match &cli.web_config_file {
        Some(path) => WebConfig::load(path)?,
        None => WebConfig::default(),
    };
    init_logging(&cli)?;
    // Each engine has its own call limit.
    raise_open_file_limit(
        config.max_concurrency * config.engines.len().max(1),
        config.max_connections,
    );
    runtime.block_on(docker_stats_exporter::serve(config, web))
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let filter = log_filter(&cli.log_level)?;
    use std::io::IsTerminal;
    let builder = tracing_subscriber::fmt()
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.finish().with(filter).init(),
        LogFormat::Json => builder.json().finish().with(filter).init(),
    }
    Ok(())
}

/// `level` and `target=level` directives, comma-separated. `Targets` needs no
/// regex engine (EnvFilter's span and field filters do); it would take
/// `[span]` for a target name that never matches, so that is refused.
fn log_filter(spec: &str) -> anyhow::Result<Targets> {
    if spec.contains(['[', '{']) {
        anyhow::bail!(
            "invalid --log-level {spec:?}: span and field filters are not supported, \
             only LEVEL and TARGET=LEVEL directives"
        );
    }
    spec.parse()
        .with_context(|| format!("invalid --log-level {spec:?}"))
}

/// Each stats call in flight holds a socket, beside the client connections
/// (and the 64 more a new client may get over the cap): lift the soft
/// open-file limit (often 1024) towards the hard one.
fn raise_open_file_limit(max_concurrency: usize, max_connections: usize) {
    let want = (max_concurrency + max_connections + 64 + 64) as u64;
    match rlimit::increase_nofile_limit(want.max(4096)) {
        Ok(got) if got < want => tracing::warn!(
            "open-file limit is {got}; max_concurrency {max_concurrency} may need {want}: \
             raise it (ulimit -n) or lower max_concurrency"
        ),
        Ok(_) => {}
        Err(e) => tracing::warn!("cannot read the open-file limit: {e}"),
    }
}
