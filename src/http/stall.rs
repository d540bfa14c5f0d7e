//! A write timeout for a connection: hyper times the reading of headers but
//! not the writing of answers, so a client that never reads would hold its
//! connection (and the answers queued behind it) for ever. Writes that make
//! no progress for the timeout fail, and hyper drops the connection.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// `I` whose writes fail once they have been stuck for `timeout`.
#[derive(Debug)]
pub struct WriteTimeout<I> {
    io: I,
    timeout: Duration,
    // Armed while a write waits; reset by any progress.
    stuck: Option<Pin<Box<Sleep>>>,
}

impl<I> WriteTimeout<I> {
    /// Wraps `io`.
    pub fn new(io: I, timeout: Duration) -> Self {
        Self {
            io,
            timeout,
            stuck: None,
        }
    }

    /// What a pending write does: arms the timer, or fails once it fired.
    fn pending<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        let timeout = self.timeout;
        let sleep = self
            .stuck
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(Instant::now() + timeout)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read nothing for the write timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progress<T>(
        &mut self,
        out: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        match out {
            Poll::Pending => self.pending(cx),
            ready => {
                self.stuck = None;
                ready
            }
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for WriteTimeout<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for WriteTimeout<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let out = Pin::new(&mut self.io).poll_write(cx, buf);
        self.progress(out, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let out = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.progress(out, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = Pin::new(&mut self.io).poll_flush(cx);
        self.progress(out, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let out = ready!(Pin::new(&mut self.io).poll_shutdown(cx));
        Poll::Ready(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_at_the_timeout_and_progress_resets_it() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut io = WriteTimeout::new(ours, Duration::from_secs(10));
        let start = Instant::now();
        io.write_all(&[0; 64]).await.unwrap();
        // The peer reads a little after 6 s: the clock starts again.
        let reader = tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(6)).await;
            let mut buf = [0; 64];
            let _ = tokio::io::AsyncReadExt::read(&mut theirs, &mut buf).await;
            theirs
        });
        io.write_all(&[0; 64]).await.unwrap();
        assert_eq!(start.elapsed(), Duration::from_secs(6));
        let _theirs = reader.await.unwrap();
        let err = io.write_all(&[0; 64]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(start.elapsed(), Duration::from_secs(16));
    }
}
