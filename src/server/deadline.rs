//! A read deadline per HTTP/1.1 request: once the first byte of a request has
//! arrived, the response must start within the deadline, else reads fail and
//! hyper closes the connection. Slow (slowloris) clients are cut off while
//! idle keep-alive connections are left to hyper's longer idle timeout.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `IO` with a request deadline armed by the first byte read after a write.
pub struct RequestDeadline<IO> {
    io: IO,
    limit: Duration,
    /// Armed while a request is being received; `None` while idle.
    timer: Option<Pin<Box<Sleep>>>,
    /// The timer allocation, kept between requests.
    spare: Option<Pin<Box<Sleep>>>,
}

impl<IO> RequestDeadline<IO> {
    /// Wraps `io`.
    pub fn new(io: IO, limit: Duration) -> Self {
        Self {
            io,
            limit,
            timer: None,
            spare: None,
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for RequestDeadline<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.io).poll_read(cx, buf);
        if this.timer.is_none() && buf.filled().len() > before {
            let deadline = Instant::now() + this.limit;
            let timer = match this.spare.take() {
                Some(mut t) => {
                    t.as_mut().reset(deadline);
                    t
                }
                None => Box::pin(tokio::time::sleep_until(deadline)),
            };
            this.timer = Some(timer);
        }
        if polled.is_pending()
            && let Some(timer) = this.timer.as_mut()
            && timer.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request not received within the request timeout",
            )));
        }
        polled
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for RequestDeadline<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(t) = this.timer.take() {
            this.spare = Some(t);
        }
        Pin::new(&mut this.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        if let Some(t) = this.timer.take() {
            this.spare = Some(t);
        }
        Pin::new(&mut this.io).poll_write_vectored(cx, bufs)
    }

    /// Not vectored, whatever `IO` is: hyper then writes each response's
    /// head and body as one buffer, which TLS sends as one record instead of
    /// two (less to encrypt, send and decrypt per response).
    fn is_write_vectored(&self) -> bool {
        false
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
