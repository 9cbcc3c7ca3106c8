//! Batched log output for the server: a formatted line is appended to a
//! shared buffer, and a flusher thread writes the buffer to stderr every
//! 50 ms. Logging a review then costs a copy, not a `write` syscall or a
//! cross-thread wake-up per line.
//!
//! Nothing is dropped: a buffer that passes 64 KiB is written at once by the
//! thread that filled it, and dropping the [`Flusher`] writes what remains.
//! Lines keep their order: every write to stderr takes the stderr lock
//! before it takes the buffer.

use std::io::{self, Write};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use tracing_subscriber::fmt::MakeWriter;

/// How often buffered lines are written.
const INTERVAL: Duration = Duration::from_millis(50);
/// A buffer this full is written by the thread that filled it.
const LIMIT: usize = 64 * 1024;

/// The `MakeWriter` for `tracing_subscriber::fmt`.
#[derive(Clone)]
pub struct BatchedStderr {
    buf: Arc<Mutex<Vec<u8>>>,
}

/// Runs the flusher thread; dropping it writes the remaining lines.
pub struct Flusher {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    buf: Arc<Mutex<Vec<u8>>>,
}

impl BatchedStderr {
    /// The writer and its flusher thread.
    pub fn start() -> io::Result<(Self, Flusher)> {
        Self::start_every(INTERVAL)
    }

    fn start_every(interval: Duration) -> io::Result<(Self, Flusher)> {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let (stop, stopped) = mpsc::channel::<()>();
        let shared = buf.clone();
        let thread = std::thread::Builder::new()
            .name("log-flusher".into())
            .spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    write_out(&shared);
                }
            })?;
        let flusher = Flusher {
            stop: Some(stop),
            thread: Some(thread),
            buf: buf.clone(),
        };
        Ok((Self { buf }, flusher))
    }
}

impl Drop for Flusher {
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        write_out(&self.buf);
    }
}

/// Writes and empties the buffer (stderr lock first, so output keeps the
/// order in which lines were buffered).
fn write_out(buf: &Mutex<Vec<u8>>) {
    let mut out = io::stderr().lock();
    let lines = {
        let mut buf = lock(buf);
        if buf.is_empty() {
            return;
        }
        std::mem::take(&mut *buf)
    };
    // Nowhere to report a failed write to stderr.
    let _ = out.write_all(&lines);
    let _ = out.flush();
}

/// The buffer, also after a panic while it was held (it only ever holds
/// whole lines).
fn lock(buf: &Mutex<Vec<u8>>) -> MutexGuard<'_, Vec<u8>> {
    buf.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// One event's writer.
pub struct Line<'a>(&'a Mutex<Vec<u8>>);

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        let full = {
            let mut buf = lock(self.0);
            buf.extend_from_slice(bytes);
            buf.len() >= LIMIT
        };
        if full {
            write_out(self.0);
        }
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for BatchedStderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line(&self.buf)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_are_buffered_in_order_and_a_full_buffer_is_written_out() {
        // No timed flush during the test: only a full buffer or the drop write.
        let (writer, flusher) = BatchedStderr::start_every(Duration::from_secs(3600)).unwrap();
        let mut line = writer.make_writer();
        line.write_all(b"first\n").unwrap();
        line.write_all(b"second\n").unwrap();
        assert_eq!(&*lock(&writer.buf), b"first\nsecond\n");
        line.write_all(&vec![b'x'; LIMIT]).unwrap();
        assert!(
            lock(&writer.buf).is_empty(),
            "a full buffer is written at once"
        );
        line.write_all(b"last\n").unwrap();
        drop(flusher);
        assert!(
            lock(&writer.buf).is_empty(),
            "dropping the flusher writes the rest"
        );
    }
}
