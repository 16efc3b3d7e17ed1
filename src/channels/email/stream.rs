//! The socket under an SMTP connection, holding writes back until the next read.
//!
//! lettre flushes after every write: the message and its final `.` left as two segments, and
//! each pipelined group would too if lettre wrote it in parts. Nothing we write needs to leave
//! before we wait for the server's answer, so the writes wait in a buffer and go out in one
//! `write` when a read starts (or at shutdown, or once the buffer is large).

use std::{
    io,
    pin::Pin,
    task::{Context, Poll, ready},
};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Past this many bytes held back, a write first sends what is held.
const HOLD_AT_MOST: usize = 64 * 1024;

#[derive(Debug)]
pub(crate) struct WriteOnRead<S> {
    inner: S,
    held: Vec<u8>,
    /// How much of `held` the socket has taken so far.
    sent: usize,
}

impl<S> WriteOnRead<S> {
    pub(crate) fn new(inner: S) -> WriteOnRead<S> {
        WriteOnRead { inner, held: Vec::new(), sent: 0 }
    }

    pub(crate) fn get_ref(&self) -> &S {
        &self.inner
    }
}

impl<S: AsyncWrite + Unpin> WriteOnRead<S> {
    /// Send everything held back, then flush the socket.
    fn poll_send_held(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.sent < self.held.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.held[self.sent..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.sent += n;
        }
        self.held.clear();
        self.sent = 0;
        Pin::new(&mut self.inner).poll_flush(cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for WriteOnRead<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteOnRead<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.held.len() + buf.len() > HOLD_AT_MOST {
            ready!(this.poll_send_held(cx))?;
        }
        this.held.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }

    /// Deliberately nothing: what is held goes out before the next read, which is the only
    /// thing that waits for it.
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_send_held(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn writes_leave_together_when_a_read_starts() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut stream = WriteOnRead::new(near);
        stream.write_all(b"MAIL FROM:<a@b>\r\n").await.unwrap();
        stream.flush().await.unwrap();
        stream.write_all(b"DATA\r\n").await.unwrap();
        stream.flush().await.unwrap();
        // Nothing has left yet: the peer has nothing to read.
        let mut peek = [0u8; 64];
        assert!(tokio::time::timeout(std::time::Duration::from_millis(50), far.read(&mut peek)).await.is_err());

        far.write_all(b"250 OK\r\n").await.unwrap();
        let mut reply = [0u8; 8];
        stream.read_exact(&mut reply).await.unwrap();
        assert_eq!(&reply, b"250 OK\r\n");
        let n = far.read(&mut peek).await.unwrap();
        assert_eq!(&peek[..n], b"MAIL FROM:<a@b>\r\nDATA\r\n", "both writes in one piece");
    }

    #[tokio::test]
    async fn a_large_message_is_not_held_whole_and_shutdown_sends_the_rest() {
        let (near, mut far) = tokio::io::duplex(1 << 20);
        let mut stream = WriteOnRead::new(near);
        let body = vec![b'x'; HOLD_AT_MOST];
        stream.write_all(&body).await.unwrap();
        stream.write_all(b"\r\n.\r\n").await.unwrap();
        assert!(stream.held.len() <= HOLD_AT_MOST, "held {} bytes", stream.held.len());
        stream.shutdown().await.unwrap();
        let mut all = Vec::new();
        far.read_to_end(&mut all).await.unwrap();
        assert_eq!(all.len(), HOLD_AT_MOST + 5);
        assert!(all.ends_with(b"x\r\n.\r\n"));
    }
}
