//! The `floe-guard` binary: parses the command line, sets up logging, runs
//! the command and maps its outcome to the exit code.

#![forbid(unsafe_code)]

use std::io::BufWriter;
use std::process::ExitCode;

use clap::Parser;
use floe_guard::cli::{self, Cli, Command, EXIT_ERROR, LogFormat};
use floe_guard::logs::format::LogLine;
use tracing_appender::non_blocking::NonBlockingBuilder;
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
    // `serve` logs a line per review: handed to a writer thread
    // (tracing-appender, blocking rather than dropping when its queue is
    // full) that writes through a buffer flushed whenever the queue runs
    // empty, so a busy server makes one `write` per batch, not per line
    // (`docs/performance.md`). Other commands write straight to stderr.
    let flusher = if matches!(cli.command, Command::Serve(_)) {
        let (writer, guard) = NonBlockingBuilder::default()
            .lossy(false)
            // The default queue of 128,000 lines takes 4 MiB at start.
            .buffered_lines_limit(8192)
            .thread_name("log-writer")
            .finish(BufWriter::with_capacity(64 * 1024, std::io::stderr()));
        init_logs(filter, cli.log_format, writer);
        Some(guard)
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
