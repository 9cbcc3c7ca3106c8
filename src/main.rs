//! The `floe-guard` binary: parses the command line, sets up logging, runs
//! the command and maps its outcome to the exit code.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use floe_guard::cli::{self, Cli, EXIT_ERROR, LogFormat};
use tracing_subscriber::EnvFilter;

/// mimalloc: the admission hot path is allocation-heavy (JSON decoding), and
/// glibc malloc costs it about a third of its time.
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
    // Log lines are formatted on the caller's thread and written by a
    // background thread through a buffer that is flushed whenever the queue
    // drains: one `write` per burst instead of per line on the admission
    // path, prompt output when idle, and no line dropped (not lossy: a full
    // queue blocks the caller). The queue holds 4,096 lines: its slots are
    // allocated up front, and the default 128,000 would cost 5 MiB of memory.
    let (writer, _flush_on_exit) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(4096)
        .finish(std::io::BufWriter::with_capacity(
            64 * 1024,
            std::io::stderr(),
        ));
    let logs = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(writer);
    match cli.log_format {
        LogFormat::Text => logs.init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
    match cli::run(cli) {
        Ok(outcome) => outcome.into(),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}
