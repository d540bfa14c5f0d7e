//! Command-line flags.

use std::path::PathBuf;

use clap::{Parser, ValueEnum};

/// Prometheus exporter for Docker container stats, collected fresh at every
/// scrape.
#[derive(Debug, Parser)]
#[command(name = "docker-stats-exporter", version, about)]
pub struct Cli {
    /// TOML configuration file (see config.example.toml).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Address to serve /metrics on [default: 0.0.0.0:8091].
    #[arg(long, visible_alias = "web.listen-address", value_name = "ADDR")]
    pub listen: Option<String>,

    /// Engine address: unix:///path, tcp://host:port or http://host:port
    /// [default: $DOCKER_HOST, else the current docker context's engine (as
    /// `docker context ls` shows it), else unix:///var/run/docker.sock].
    #[arg(long, value_name = "URL")]
    pub docker_host: Option<String>,

    /// Web configuration file (TLS, mutual TLS, basic auth) in the Prometheus
    /// exporter toolkit's format; see web-config.example.yml.
    #[arg(long = "web.config.file", value_name = "FILE")]
    pub web_config_file: Option<PathBuf>,

    /// Log filter: error, warn, info, debug, trace, off, or comma-separated
    /// TARGET=LEVEL directives.
    #[arg(long, default_value = "info", value_name = "LEVEL")]
    pub log_level: String,

    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,

    /// Check that a running exporter answers /healthz on the configured
    /// address, then exit 0 (healthy) or 1; for container health checks.
    #[arg(long)]
    pub healthcheck: bool,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}
