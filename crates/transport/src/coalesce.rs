//! Writes of many calls in one system call. A connection task woken by one call's frames would
//! otherwise write them at once, then be woken again by the next call's, one `writev` (and one
//! TLS record, and one loopback delivery) per call. [`Coalesce`] answers the first write after
//! each flush with `Pending` and wakes its task at once: the scheduler runs the task again after
//! the tasks already queued, whose frames then go out with it.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

pub struct Coalesce<IO> {
    inner: IO,
    /// Set once this batch has let the queued tasks run; cleared by the flush that ends it.
    yielded: bool,
}

impl<IO> Coalesce<IO> {
    pub fn new(inner: IO) -> Self {
        Self {
            inner,
            yielded: false,
        }
    }

    /// `true` when the write may go now; otherwise the task is queued again behind the others.
    fn may_write(&mut self, cx: &mut Context<'_>) -> bool {
        if self.yielded {
            return true;
        }
        self.yielded = true;
        cx.waker().wake_by_ref();
        false
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for Coalesce<IO> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for Coalesce<IO> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if !self.may_write(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if !self.may_write(cx) {
            return Poll::Pending;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let flushed = Pin::new(&mut self.inner).poll_flush(cx);
        if flushed.is_ready() {
            self.yielded = false;
        }
        flushed
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

impl<IO: tonic::transport::server::Connected> tonic::transport::server::Connected for Coalesce<IO> {
    type ConnectInfo = IO::ConnectInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.inner.connect_info()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    use tokio::io::AsyncReadExt;

    use super::*;

    #[derive(Default)]
    struct Wakes(AtomicUsize);

    impl Wake for Wakes {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[tokio::test]
    async fn the_first_write_after_a_flush_waits_one_turn_and_the_rest_of_the_batch_goes_at_once() {
        let (near, mut far) = tokio::io::duplex(64);
        let mut io = Coalesce::new(near);
        let wakes = Arc::new(Wakes::default());
        let waker = std::task::Waker::from(wakes.clone());
        let mut cx = Context::from_waker(&waker);
        let mut write = |io: &mut Coalesce<_>, data: &[u8]| Pin::new(io).poll_write(&mut cx, data);

        assert!(write(&mut io, b"a").is_pending());
        assert_eq!(
            wakes.0.load(Ordering::Relaxed),
            1,
            "the task is queued again"
        );
        assert!(matches!(write(&mut io, b"a"), Poll::Ready(Ok(1))));
        assert!(matches!(write(&mut io, b"b"), Poll::Ready(Ok(1))));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_flush(&mut cx).is_ready());

        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut io).poll_write(&mut cx, b"c").is_pending());
        assert_eq!(wakes.0.load(Ordering::Relaxed), 2);

        let mut got = [0u8; 2];
        far.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"ab", "nothing of the deferred write went out");
    }
}
