use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use docker_stats_exporter::cli::{Cli, LogFormat};
use docker_stats_exporter::config::{Config, Overrides};
use docker_stats_exporter::web_config::WebConfig;

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
    )?;
    let runtime = tokio::runtime::Runtime::new().context("cannot start the runtime")?;
    if cli.healthcheck {
        return runtime.block_on(docker_stats_exporter::healthcheck(config.listen));
    }
    let web = match &cli.web_config_file {
        Some(path) => WebConfig::load(path)?,
        None => WebConfig::default(),
    };
    init_logging(&cli)?;
    runtime.block_on(docker_stats_exporter::serve(config, web))
}

fn init_logging(cli: &Cli) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(&cli.log_level)
        .with_context(|| format!("invalid --log-level {:?}", cli.log_level))?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cli.log_format {
        LogFormat::Text => builder.init(),
        LogFormat::Json => builder.json().init(),
    }
    Ok(())
}
