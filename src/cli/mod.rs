//! The command line: argument definitions, dispatch and exit codes.

mod bootstrap;
mod certs;
mod manifests;
pub mod network;
mod offline;
mod reports;
mod serve;

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::config::Config;
use crate::pss::Level;

/// Exit code: success, allowed, compliant.
pub const EXIT_OK: u8 = 0;
/// Exit code: error (bad input, config, I/O, cluster unreachable).
pub const EXIT_ERROR: u8 = 1;
/// Exit code: a finding (denied, violations, drift, missing default-deny…).
pub const EXIT_FINDING: u8 = 3;

/// What a command found: nothing to report, or a finding (exit 3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Success, allowed, compliant.
    Clean,
    /// Denied, violations, drift, missing default-deny, unsupported CNI.
    Finding,
}

impl Outcome {
    /// `Finding` when `found`, else `Clean`.
    pub fn from_findings(found: bool) -> Self {
        if found {
            Outcome::Finding
        } else {
            Outcome::Clean
        }
    }
}

/// Runs a future on a single-threaded runtime (the cluster commands).
pub fn block_on<T>(f: impl Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?
        .block_on(f)
}

impl From<Outcome> for ExitCode {
    fn from(o: Outcome) -> Self {
        ExitCode::from(match o {
            Outcome::Clean => EXIT_OK,
            Outcome::Finding => EXIT_FINDING,
        })
    }
}

/// floe-guard: network and pod security for the floe data platform.
///
/// Exit codes: 0 success/allowed/compliant, 1 error, 2 usage, 3 a finding
/// (denied, violations, drift, missing default-deny, CNI without
/// NetworkPolicy support).
#[derive(Debug, Parser)]
#[command(name = "floe-guard", version, max_term_width = 100)]
pub struct Cli {
    /// Log filter (tracing `EnvFilter` syntax), e.g. `debug` or
    /// `floe_guard=debug,kube_client=warn`. Default: `info` for `serve` (one
    /// line per review); for `bootstrap` and `network generate`, also their
    /// audit trail (`floe_guard::audit=info`); else `warn,kube_client=off`.
    #[arg(long, global = true, env = "FLOE_GUARD_LOG")]
    pub log_level: Option<String>,
    /// Log line format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// The command to run.
    #[command(subcommand)]
    pub command: Command,
}

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Preview what the webhook does to a pod: the hardened pod, or the denial.
    Mutate(MutateArgs),
    /// Check a Namespace's Pod Security Standards labels as the webhook would.
    CheckNamespace(CheckNamespaceArgs),
    /// Pod Security Standards checks.
    #[command(subcommand)]
    Pss(PssCommand),
    /// Run the admission webhook server (HTTPS: /mutate, /mutate-audit, /validate, /healthz, /readyz, /metrics).
    Serve(serve::ServeArgs),
    /// Certificates for the webhook's HTTPS endpoint.
    #[command(subcommand)]
    Certs(certs::CertsCommand),
    /// NetworkPolicies: generate, validate, explain.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Create or update the managed namespaces and install the generated
    /// NetworkPolicies (server-side apply, field manager `floe-guard`).
    Bootstrap(bootstrap::BootstrapArgs),
    /// Print the parts of the raw manifests derived from the config (RBAC,
    /// managed namespaces, webhook configurations) as YAML.
    #[command(subcommand)]
    Manifests(manifests::ManifestsCommand),
}

/// `--config`, shared by every command that reads the floe manifest.
#[derive(Debug, Clone, Args)]
pub struct ConfigArg {
    /// The floe `manifest.yaml` (its `domains:` and `security:` sections);
    /// built-in defaults when absent.
    #[arg(long, short = 'c', env = "FLOE_GUARD_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

impl ConfigArg {
    /// Loads the configuration, or the defaults.
    pub fn load(&self) -> anyhow::Result<Config> {
        Ok(Config::load_or_default(self.config.as_deref())?)
    }
}

/// `floe-guard mutate`.
#[derive(Debug, Args)]
pub struct MutateArgs {
    /// The floe manifest.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The Pod, Job or CronJob (YAML or JSON; a workload's pod template is
    /// hardened as at its CREATE); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Namespace of the pod (default: its metadata.namespace, else floe-jobs).
    #[arg(short = 'n', long)]
    pub namespace: Option<String>,
    /// Requesting user, for the configured user exemptions.
    #[arg(
        long,
        default_value = "system:serviceaccount:kube-system:job-controller"
    )]
    pub user: String,
    /// Output: the hardened pod as YAML or JSON, or the JSONPatch.
    #[arg(short = 'o', long, value_enum, default_value_t = MutateOutput::Yaml)]
    pub output: MutateOutput,
    /// The pod before `kubectl debug`: review -f as the
    /// pods/ephemeralcontainers UPDATE (only new ephemeral containers).
    #[arg(long, value_name = "FILE")]
    pub old: Option<PathBuf>,
}

/// Output of `mutate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MutateOutput {
    /// The hardened pod as YAML.
    Yaml,
    /// The hardened pod as JSON.
    Json,
    /// The RFC 6902 JSONPatch.
    Patch,
}

/// `floe-guard check-namespace`.
#[derive(Debug, Args)]
pub struct CheckNamespaceArgs {
    /// The floe manifest.
    #[command(flatten)]
    pub config: ConfigArg,
    /// The Namespace (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// The Namespace before the change: review -f as that UPDATE.
    #[arg(long, value_name = "FILE")]
    pub old: Option<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

/// `floe-guard pss …`.
#[derive(Debug, Subcommand)]
pub enum PssCommand {
    /// Evaluate a Pod (or a workload's pod template) against a PSS level.
    Check(PssCheckArgs),
}

/// `floe-guard pss check`.
#[derive(Debug, Args)]
pub struct PssCheckArgs {
    /// The level to check against.
    #[arg(long, value_parser = parse_level)]
    pub level: Level,
    /// The Pod (YAML or JSON); `-` reads standard input.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub file: PathBuf,
    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = TextOrJson::Text)]
    pub output: TextOrJson,
}

fn parse_level(s: &str) -> Result<Level, String> {
    match s.parse()? {
        Level::Privileged => {
            Err("privileged allows everything: check baseline or restricted".into())
        }
        level => Ok(level),
    }
}

/// Text for people, JSON for programs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TextOrJson {
    /// Human-readable text.
    Text,
    /// JSON.
    Json,
}

impl Cli {
    /// The log filter: `--log-level`, else the command's default.
    pub fn log_filter(&self) -> &str {
        match (&self.log_level, &self.command) {
            (Some(level), _) => level,
            (None, Command::Serve(_)) => "info",
            // The audit trail: what bootstrap changed, what generate wrote.
            (
                None,
                Command::Bootstrap(_) | Command::Network(network::NetworkCommand::Generate(_)),
            ) => "warn,kube_client=off,floe_guard::audit=info",
            (None, _) => "warn,kube_client=off",
        }
    }
}

/// Runs a parsed command line.
pub fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Mutate(a) => offline::mutate(a),
        Command::CheckNamespace(a) => offline::check_namespace(a),
        Command::Pss(PssCommand::Check(a)) => offline::pss_check(a),
        Command::Serve(a) => serve::serve(a),
        Command::Certs(c) => certs::run(c),
        Command::Network(c) => network::run(c),
        Command::Bootstrap(a) => bootstrap::bootstrap(a),
        Command::Manifests(c) => manifests::run(c),
    }
}

/// Reads a file, or standard input for `-`.
pub fn read_input(path: &Path) -> anyhow::Result<String> {
    if path == Path::new("-") {
        let mut s = String::new();
        std::io::stdin()
            .read_to_string(&mut s)
            .context("cannot read standard input")?;
        Ok(s)
    } else {
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))
    }
}

/// How `path` is named in messages.
pub fn input_name(path: &Path) -> String {
    if path == Path::new("-") {
        "<stdin>".into()
    } else {
        path.display().to_string()
    }
}
