//! The command line: argument definitions, dispatch and exit codes.

mod certs;
mod cluster;
pub mod network;
mod offline;
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
    /// line per review), else `warn,kube_client=off`.
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
    /// Run the admission webhook server (HTTPS: /mutate, /validate, /healthz, /readyz, /metrics).
    Serve(serve::ServeArgs),
    /// Certificates for the webhook's HTTPS endpoint.
    #[command(subcommand)]
    Certs(CertsCommand),
    /// NetworkPolicies: generate, validate, explain.
    #[command(subcommand)]
    Network(network::NetworkCommand),
    /// Create or update the managed namespaces and install the generated
    /// NetworkPolicies (server-side apply, field manager `floe-guard`).
    Bootstrap(cluster::BootstrapArgs),
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
    /// The Pod (YAML or JSON); `-` reads standard input.
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
        Command::Certs(CertsCommand::Generate(a)) => certs::generate(a),
        Command::Network(c) => network::run(c),
        Command::Bootstrap(a) => cluster::bootstrap(a),
        Command::Certs(CertsCommand::Install(a)) => certs::install(a),
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

/// `floe-guard certs …`.
#[derive(Debug, Subcommand)]
pub enum CertsCommand {
    /// Generate a CA and a serving certificate for the webhook Service
    /// (SANs: S, S.NS, S.NS.svc, S.NS.svc.cluster.local).
    Generate(CertsGenerateArgs),
    /// Create or renew the serving certificate Secret in the cluster and
    /// write its CA into both webhook configurations' caBundle (idempotent).
    Install(CertsInstallArgs),
}

/// `floe-guard certs generate`.
#[derive(Debug, Args)]
pub struct CertsGenerateArgs {
    /// Name of the webhook Service.
    #[arg(long, default_value = "floe-guard")]
    pub service: String,
    /// Namespace of the webhook Service.
    #[arg(long, short = 'n', default_value = "floe-guard")]
    pub namespace: String,
    /// Directory for `ca.crt`, `tls.crt` and `tls.key` (created if absent).
    #[arg(long, default_value = "certs", value_name = "DIR")]
    pub out: PathBuf,
    /// Validity of the CA and the serving certificate, days.
    #[arg(long, default_value_t = 365)]
    pub days: u32,
    /// Write files, or print a `kubernetes.io/tls` Secret as YAML.
    #[arg(short = 'o', long, value_enum, default_value_t = CertsOutput::Files)]
    pub output: CertsOutput,
    /// Name of the Secret printed by `-o secret`.
    #[arg(long, default_value = "floe-guard-tls")]
    pub secret_name: String,
}

/// Output of `certs generate`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CertsOutput {
    /// `ca.crt`, `tls.crt`, `tls.key` in `--out`.
    Files,
    /// The Secret YAML on standard output.
    Secret,
}

/// `floe-guard certs install`.
#[derive(Debug, Args)]
pub struct CertsInstallArgs {
    /// Name of the webhook Service (the certificate's names derive from it).
    #[arg(long, default_value = "floe-guard")]
    pub service: String,
    /// Namespace of the Service and of the Secret.
    #[arg(long, short = 'n', default_value = "floe-guard")]
    pub namespace: String,
    /// Name of the `kubernetes.io/tls` Secret.
    #[arg(long, default_value = "floe-guard-tls")]
    pub secret: String,
    /// Name of the Mutating- and ValidatingWebhookConfiguration to patch.
    #[arg(long, default_value = "floe-guard")]
    pub webhook: String,
    /// Validity of a serving certificate, days (renewed when 30, or a third,
    /// are left).
    #[arg(long, default_value_t = 365,
          value_parser = clap::value_parser!(u32).range(1..=i64::from(crate::certs::MAX_DAYS)))]
    pub days: u32,
    /// Kubeconfig file (default: $KUBECONFIG, ~/.kube/config, else in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current context).
    #[arg(long)]
    pub context: Option<String>,
}
