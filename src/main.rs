//! The `floe-guard` binary: parses the command line, sets up logging, runs
//! the command and maps its outcome to the exit code.

#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use floe_guard::cli::{self, Cli, Command, EXIT_ERROR, LogFormat};
use floe_guard::logs::format::LogLine;
use floe_guard::logs::writer::BatchedStderr;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::MakeWriter;

/// mimalloc: the admission hot path is allocation-heavy (JSON decoding), and
/// glibc malloc costs it about a third of its time (`docs/performance.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = match EnvFilter::try_new(cli.log_filter()) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: invalid --log-level {:?}: {e}", cli.log_filter());
            return ExitCode::from(2);
        }
    };
    // `serve` logs a line per review: batched (`logs::writer`, one `write`
    // per 50 ms, no cross-thread wake-up per line; `docs/performance.md`).
    // Other commands write straight to stderr.
    let flusher = if matches!(cli.command, Command::Serve(_)) {
        match BatchedStderr::start() {
            Ok((writer, flusher)) => {
                init_logs(filter, cli.log_format, writer);
                Some(flusher)
            }
            Err(e) => {
                eprintln!("error: cannot start the log writer: {e}");
                return ExitCode::from(EXIT_ERROR);
            }
        }
    } else {
        init_logs(filter, cli.log_format, std::io::stderr);
        None
    };
    let outcome = cli::run(cli);
    // Buffered log lines go out before the error message.
    drop(flusher);
    match outcome {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// Installs the global subscriber: `filter`, text or JSON lines, `writer`.
fn init_logs<W>(filter: EnvFilter, format: LogFormat, writer: W)
where
    W: for<'a> MakeWriter<'a> + Send + Sync + 'static,
{
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .event_format(LogLine {
            json: matches!(format, LogFormat::Json),
        })
        .with_writer(writer)
        .init();
}
