//! Command-line flags.
//!
//! Parsed with lexopt and written out by hand: a derive-based parser was the
//! largest single item of the binary after the standard library
//! (docs/image-size.md).

use std::ffi::OsString;
use std::fmt;
use std::path::PathBuf;

const NAME: &str = "docker-stats-exporter";

/// What a flag sets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    Config,
    Listen,
    DockerHost,
    WebConfigFile,
    LogLevel,
    LogFormat,
    Healthcheck,
    Help,
    Version,
}

/// One flag: what it sets, its names, its value and its help.
struct Flag {
    key: Key,
    /// `-h`, where it has a short name.
    short: Option<char>,
    /// Its long names without `--`, the one help shows first.
    long: &'static [&'static str],
    /// The placeholder of its value; `None` for a switch.
    value: Option<&'static str>,
    /// Paragraphs, as help prints them.
    help: &'static str,
}

/// Every flag, in the order help lists them; parsing and help both read it.
const FLAGS: [Flag; 9] = [
    Flag {
        key: Key::Config,
        short: None,
        long: &["config"],
        value: Some("FILE"),
        help: "TOML configuration file (see config.example.toml)",
    },
    Flag {
        key: Key::Listen,
        short: None,
        long: &["listen", "web.listen-address"],
        value: Some("ADDR"),
        help: "Address to serve /metrics on [default: 0.0.0.0:8091]",
    },
    Flag {
        key: Key::DockerHost,
        short: None,
        long: &["docker-host"],
        value: Some("URL"),
        help: "Engine address: unix:///path, tcp://host:port or http://host:port [default: \
               $DOCKER_HOST, else the current docker context's engine (as `docker context ls` \
               shows it), else unix:///var/run/docker.sock]",
    },
    Flag {
        key: Key::WebConfigFile,
        short: None,
        long: &["web.config.file"],
        value: Some("FILE"),
        help: "Web configuration file (TLS, mutual TLS, basic auth) in the Prometheus exporter \
               toolkit's format; see web-config.example.yml",
    },
    Flag {
        key: Key::LogLevel,
        short: None,
        long: &["log-level"],
        value: Some("LEVEL"),
        help: "Log filter: error, warn, info, debug, trace, off, or comma-separated \
               TARGET=LEVEL directives\n\n[default: info]",
    },
    Flag {
        key: Key::LogFormat,
        short: None,
        long: &["log-format"],
        value: Some("LOG_FORMAT"),
        help: "Log line format\n\nPossible values:\n- text: Human-readable lines\n\
               - json: One JSON object per line\n\n[default: text]",
    },
    Flag {
        key: Key::Healthcheck,
        short: None,
        long: &["healthcheck"],
        value: None,
        help: "Check that a running exporter answers /healthz on the configured address, then \
               exit 0 (healthy) or 1; for container health checks",
    },
    Flag {
        key: Key::Help,
        short: Some('h'),
        long: &["help"],
        value: None,
        help: "Print help",
    },
    Flag {
        key: Key::Version,
        short: Some('V'),
        long: &["version"],
        value: None,
        help: "Print version",
    },
];

impl Flag {
    /// How errors name it: `--config <FILE>`.
    fn usage(&self) -> String {
        let name = format!("--{}", self.long[0]);
        match self.value {
            Some(v) => format!("{name} <{v}>"),
            None => name,
        }
    }

    /// The flag `arg` names, if any.
    fn find(arg: &lexopt::Arg<'_>) -> Option<&'static Flag> {
        FLAGS.iter().find(|f| match arg {
            lexopt::Arg::Short(c) => f.short == Some(*c),
            lexopt::Arg::Long(name) => f.long.contains(name),
            lexopt::Arg::Value(_) => false,
        })
    }
}

/// The help text, from [`FLAGS`].
pub fn help() -> String {
    const INDENT: &str = "          ";
    let mut out = String::from(
        "Prometheus exporter for Docker container stats, collected fresh at every scrape\n\n\
         Usage: docker-stats-exporter [OPTIONS]\n\nOptions:\n",
    );
    for (i, flag) in FLAGS.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let short = flag
            .short
            .map_or("      ".to_string(), |c| format!("  -{c}, "));
        out.push_str(&format!("{short}{}\n", flag.usage()));
        let aliases: Vec<String> = flag.long[1..].iter().map(|a| format!("--{a}")).collect();
        let mut text = flag.help.to_string();
        if !aliases.is_empty() {
            text.push_str(&format!("\n\n[alias: {}]", aliases.join(", ")));
        }
        for line in text.lines() {
            if !line.is_empty() {
                out.push_str(INDENT);
                out.push_str(line);
            }
            out.push('\n');
        }
    }
    out
}

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

/// The version, with the commit it was built from where the build knew it
/// (build.rs): `0.1.0 (commit 0123456789ab)`.
pub fn version() -> String {
    match option_env!("DSE_COMMIT") {
        Some(commit) => format!("{} (commit {commit})", env!("CARGO_PKG_VERSION")),
        None => env!("CARGO_PKG_VERSION").to_string(),
    }
}

impl Cli {
    /// The process's flags; prints help, the version or the error and exits
    /// where the command line asks for that or does not parse (status 2).
    pub fn parse() -> Self {
        match Self::try_parse_from(std::env::args_os().skip(1)) {
            Ok(Command::Run(cli)) => cli,
            Ok(Command::Help) => {
                print!("{}", help());
                std::process::exit(0)
            }
            Ok(Command::Version) => {
                println!("{NAME} {}", version());
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
        let mut cli = Cli::default();
        let mut seen: Vec<Key> = Vec::new();
        let mut parser = lexopt::Parser::from_args(args);
        while let Some(arg) = parser.next().map_err(|e| CliError(e.to_string()))? {
            let Some(flag) = Flag::find(&arg) else {
                return Err(unexpected(&match arg {
                    lexopt::Arg::Short(c) => format!("-{c}"),
                    lexopt::Arg::Long(name) => format!("--{name}"),
                    lexopt::Arg::Value(v) => v.to_string_lossy().into_owned(),
                }));
            };
            match flag.key {
                Key::Help => return Ok(Command::Help),
                Key::Version => return Ok(Command::Version),
                _ => {}
            }
            if seen.contains(&flag.key) {
                return Err(CliError(format!(
                    "the argument '{}' cannot be used multiple times",
                    flag.usage()
                )));
            }
            seen.push(flag.key);
            match flag.value {
                None => cli.set_switch(flag.key),
                Some(_) => {
                    let value = parser.value().map_err(|_| {
                        CliError(format!(
                            "a value is required for '{}' but none was supplied",
                            flag.usage()
                        ))
                    })?;
                    cli.set(flag, value)?;
                }
            }
        }
        Ok(Command::Run(cli))
    }

    /// Turns on the switch `key`.
    fn set_switch(&mut self, key: Key) {
        if key == Key::Healthcheck {
            self.healthcheck = true;
        }
    }

    /// Sets what `flag` sets to `value`.
    fn set(&mut self, flag: &Flag, value: OsString) -> Result<(), CliError> {
        let text = || {
            value.clone().into_string().map_err(|v| {
                CliError(format!(
                    "invalid UTF-8 in the value {v:?} of '{}'",
                    flag.usage()
                ))
            })
        };
        match flag.key {
            Key::Config => self.config = Some(value.into()),
            Key::WebConfigFile => self.web_config_file = Some(value.into()),
            Key::Listen => self.listen = Some(text()?),
            Key::DockerHost => self.docker_host = Some(text()?),
            Key::LogLevel => self.log_level = text()?,
            Key::LogFormat => {
                self.log_format = match text()?.as_str() {
                    "text" => LogFormat::Text,
                    "json" => LogFormat::Json,
                    other => {
                        return Err(CliError(format!(
                            "invalid value '{other}' for '{}'\n  [possible values: text, json]",
                            flag.usage()
                        )))
                    }
                }
            }
            Key::Healthcheck | Key::Help | Key::Version => {}
        }
        Ok(())
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
            assert!(help().contains(flag), "{flag}");
        }
    }

    #[test]
    fn every_name_of_every_flag_in_the_table_parses_and_is_in_help() {
        for flag in &FLAGS {
            for long in flag.long {
                let name = format!("--{long}");
                let mut args = vec![name.as_str()];
                if flag.value.is_some() {
                    args.push(if flag.key == Key::LogFormat {
                        "json"
                    } else {
                        "x"
                    });
                }
                match (flag.key, parse(&args)) {
                    (Key::Help, Ok(Command::Help)) | (Key::Version, Ok(Command::Version)) => {}
                    (_, Ok(Command::Run(cli))) => assert_ne!(cli, Cli::default(), "{name}"),
                    (_, other) => panic!("{name}: {other:?}"),
                }
                assert!(help().contains(&name), "{name}");
            }
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
