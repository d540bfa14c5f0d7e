//! Command-line flags.
//!
//! Parsed with lexopt and written out by hand: a derive-based parser was the
//! largest single item of the binary after the standard library
//! (docs/image-size.md).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

const NAME: &str = "docker-stats-exporter";

const HELP: &str = "\
Prometheus exporter for Docker container stats, collected fresh at every scrape

Usage: docker-stats-exporter [OPTIONS]

Options:
      --config <FILE>
          TOML configuration file (see config.example.toml)

      --listen <ADDR>
          Address to serve /metrics on [default: 0.0.0.0:8091]

          [alias: --web.listen-address]

      --docker-host <URL>
          Engine address: unix:///path, tcp://host:port or http://host:port [default: $DOCKER_HOST, else the current docker context's engine (as `docker context ls` shows it), else unix:///var/run/docker.sock]

      --web.config.file <FILE>
          Web configuration file (TLS, mutual TLS, basic auth) in the Prometheus exporter toolkit's format; see web-config.example.yml

      --log-level <LEVEL>
          Log filter: error, warn, info, debug, trace, off, or comma-separated TARGET=LEVEL directives

          [default: info]

      --log-format <LOG_FORMAT>
          Log line format

          Possible values:
          - text: Human-readable lines
          - json: One JSON object per line

          [default: text]

      --healthcheck
          Check that a running exporter answers /healthz on the configured address, then exit 0 (healthy) or 1; for container health checks

  -h, --help
          Print help

  -V, --version
          Print version
";

/// The exporter's flags.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cli {
    /// TOML configuration file (see config.example.toml).
    pub config: Option<PathBuf>,
    /// Address to serve /metrics on; `--listen` or `--web.listen-address`.
    pub listen: Option<String>,
    /// Engine address: unix:///path, tcp://host:port or http://host:port.
    pub docker_host: Option<String>,
    /// Web configuration file (TLS, mutual TLS, basic auth) in the
    /// Prometheus exporter toolkit's format.
    pub web_config_file: Option<PathBuf>,
    /// Log filter: a level, or comma-separated TARGET=LEVEL directives.
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// Check that a running exporter answers /healthz, then exit.
    pub healthcheck: bool,
}

impl Default for Cli {
    fn default() -> Self {
        Self {
            config: None,
            listen: None,
            docker_host: None,
            web_config_file: None,
            log_level: "info".into(),
            log_format: LogFormat::Text,
            healthcheck: false,
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Run (or run the health check) with these flags.
    Run(Cli),
    /// Print the help text.
    Help,
    /// Print the version.
    Version,
}

/// A command line that does not parse, said the way the user wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl Cli {
    /// The process's flags; prints help, the version or the error and exits
    /// where the command line asks for that or does not parse (status 2).
    pub fn parse() -> Self {
        match Self::try_parse_from(std::env::args_os().skip(1)) {
            Ok(Command::Run(cli)) => cli,
            Ok(Command::Help) => {
                print!("{HELP}");
                std::process::exit(0)
            }
            Ok(Command::Version) => {
                println!("{NAME} {}", env!("CARGO_PKG_VERSION"));
                std::process::exit(0)
            }
            Err(e) => {
                eprintln!(
                    "error: {e}\n\nUsage: {NAME} [OPTIONS]\n\nFor more information, try '--help'."
                );
                std::process::exit(2)
            }
        }
    }

    /// Parses `args` (without the program name).
    pub fn try_parse_from<I>(args: I) -> Result<Command, CliError>
    where
        I: IntoIterator,
        I::Item: Into<OsString>,
    {
        use lexopt::Arg::{Long, Short, Value};
        let mut cli = Cli::default();
        let mut seen: Vec<&'static str> = Vec::new();
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().map_err(|e| CliError(e.to_string()))? {
            let flag: &'static str = match arg {
                Short('h') | Long("help") => return Ok(Command::Help),
                Short('V') | Long("version") => return Ok(Command::Version),
                Long("config") => "--config <FILE>",
                Long("listen") | Long("web.listen-address") => "--listen <ADDR>",
                Long("docker-host") => "--docker-host <URL>",
                Long("web.config.file") => "--web.config.file <FILE>",
                Long("log-level") => "--log-level <LEVEL>",
                Long("log-format") => "--log-format <LOG_FORMAT>",
                Long("healthcheck") => "--healthcheck",
                Short(c) => return Err(unexpected(&format!("-{c}"))),
                Long(name) => return Err(unexpected(&format!("--{name}"))),
                Value(v) => return Err(unexpected(&v.to_string_lossy())),
            };
            if seen.contains(&flag) {
                return Err(CliError(format!(
                    "the argument '{flag}' cannot be used multiple times"
                )));
            }
            seen.push(flag);
            if flag == "--healthcheck" {
                cli.healthcheck = true;
                continue;
            }
            let value = parser.value().map_err(|_| {
                CliError(format!(
                    "a value is required for '{flag}' but none was supplied"
                ))
            })?;
            let text = || {
                value
                    .clone()
                    .into_string()
                    .map_err(|v| CliError(format!("invalid UTF-8 in the value {v:?} of '{flag}'")))
            };
            match flag {
                "--config <FILE>" => cli.config = Some(value.into()),
                "--web.config.file <FILE>" => cli.web_config_file = Some(value.into()),
                "--listen <ADDR>" => cli.listen = Some(text()?),
                "--docker-host <URL>" => cli.docker_host = Some(text()?),
                "--log-level <LEVEL>" => cli.log_level = text()?,
                _ => {
                    cli.log_format = match text()?.as_str() {
                        "text" => LogFormat::Text,
                        "json" => LogFormat::Json,
                        other => {
                            return Err(CliError(format!(
                            "invalid value '{other}' for '{flag}'\n  [possible values: text, json]"
                        )))
                        }
                    }
                }
            }
        }
        Ok(Command::Run(cli))
    }
}

fn unexpected(arg: &str) -> CliError {
    CliError(format!("unexpected argument '{arg}' found"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Command, CliError> {
        Cli::try_parse_from(args.iter().copied())
    }

    fn run(args: &[&str]) -> Cli {
        match parse(args) {
            Ok(Command::Run(cli)) => cli,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn no_flags_give_the_defaults() {
        assert_eq!(run(&[]), Cli::default());
        assert_eq!(run(&[]).log_level, "info");
        assert_eq!(run(&[]).log_format, LogFormat::Text);
    }

    #[test]
    fn every_flag_in_both_forms() {
        let cli = run(&[
            "--config",
            "a.toml",
            "--web.listen-address=127.0.0.1:1",
            "--docker-host",
            "tcp://h:2376",
            "--web.config.file=web.yml",
            "--log-level",
            "warn,docker_stats_exporter=debug",
            "--log-format=json",
            "--healthcheck",
        ]);
        assert_eq!(
            cli,
            Cli {
                config: Some("a.toml".into()),
                listen: Some("127.0.0.1:1".into()),
                docker_host: Some("tcp://h:2376".into()),
                web_config_file: Some("web.yml".into()),
                log_level: "warn,docker_stats_exporter=debug".into(),
                log_format: LogFormat::Json,
                healthcheck: true,
            }
        );
        assert_eq!(run(&["--listen=:9"]).listen.as_deref(), Some(":9"));
    }

    #[test]
    fn help_and_version() {
        for a in ["-h", "--help"] {
            assert_eq!(parse(&["--listen", "x", a]), Ok(Command::Help));
        }
        for a in ["-V", "--version"] {
            assert_eq!(parse(&[a]), Ok(Command::Version));
        }
        for flag in [
            "--config",
            "--listen",
            "--web.listen-address",
            "--docker-host",
            "--web.config.file",
            "--log-level",
            "--log-format",
            "--healthcheck",
        ] {
            assert!(HELP.contains(flag), "{flag}");
        }
    }

    #[test]
    fn errors_name_the_argument() {
        let err = |args: &[&str]| parse(args).unwrap_err().to_string();
        assert_eq!(err(&["--bogus"]), "unexpected argument '--bogus' found");
        assert_eq!(err(&["extra"]), "unexpected argument 'extra' found");
        assert_eq!(err(&["-x"]), "unexpected argument '-x' found");
        assert_eq!(
            err(&["--config"]),
            "a value is required for '--config <FILE>' but none was supplied"
        );
        assert_eq!(
            err(&["--log-format", "xml"]),
            "invalid value 'xml' for '--log-format <LOG_FORMAT>'\n  [possible values: text, json]"
        );
        assert_eq!(
            err(&["--listen", "a", "--web.listen-address", "b"]),
            "the argument '--listen <ADDR>' cannot be used multiple times"
        );
        assert!(err(&["--healthcheck=yes"]).contains("--healthcheck"));
    }
}
