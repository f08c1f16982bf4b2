//! HTTP/1 or HTTP/2 (prior knowledge): told apart by the connection's first bytes, which
//! are then handed to hyper together with what follows them.
//!
//! hyper-util's own detection (`auto::Builder` with both versions on) replays the bytes
//! it read on their own: hyper's first read of an HTTP/1 connection returns just those
//! few bytes, the next read has to make room for 8 KiB beside them, and the 8 KiB read
//! buffer doubles to 16 KiB (copied whole) on every connection. [`Prefixed`] returns the
//! bytes it holds and, in the same read, whatever the socket has after them, so the
//! whole request arrives in hyper's first read and its buffer stays at 8 KiB.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// The HTTP/2 connection preface a prior-knowledge client starts with.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    Http1,
    Http2,
}

/// Reads until the first bytes are the HTTP/2 preface or cannot become it (end of
/// stream included: HTTP/1 then, whose parser reports it), and returns the connection
/// with those bytes put back in front.
pub(super) async fn read_version<I>(mut io: I) -> io::Result<(Version, Prefixed<I>)>
where
    I: AsyncRead + Unpin,
{
    let mut buf = [0u8; PREFACE.len()];
    let mut len = 0;
    let version = loop {
        if len == PREFACE.len() {
            break Version::Http2;
        }
        let n = io.read(&mut buf[len..]).await?;
        if n == 0 {
            break Version::Http1;
        }
        len += n;
        if buf[..len] != PREFACE[..len] {
            break Version::Http1;
        }
    };
    Ok((
        version,
        Prefixed {
            inner: io,
            prefix: buf,
            start: 0,
            end: len,
        },
    ))
}

/// A connection with the bytes already read from it in front.
#[derive(Debug)]
pub(super) struct Prefixed<I> {
    inner: I,
    prefix: [u8; PREFACE.len()],
    start: usize,
    end: usize,
}

impl<I: AsyncRead + Unpin> AsyncRead for Prefixed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            return Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        let n = (this.end - this.start).min(buf.remaining());
        buf.put_slice(&this.prefix[this.start..this.start + n]);
        this.start += n;
        if this.start == this.end && buf.remaining() > 0 {
            // What the socket already has after the prefix comes in the same read. An
            // error or nothing yet: the prefix alone now, the socket on the next read.
            let _ = Pin::new(&mut this.inner).poll_read(cx, buf);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Prefixed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn sniff(sent: &[&[u8]]) -> (Version, Vec<u8>, usize) {
        let (mut client, server) = tokio::io::duplex(1024);
        for part in sent {
            client.write_all(part).await.unwrap();
        }
        drop(client);
        let (version, mut io) = read_version(server).await.unwrap();
        let mut first = vec![0u8; 1024];
        let n = io.read(&mut first).await.unwrap();
        let mut all = first[..n].to_vec();
        io.read_to_end(&mut all).await.unwrap();
        (version, all, n)
    }

    #[tokio::test]
    async fn an_http1_request_arrives_whole_in_the_first_read() {
        let req = b"POST /v1/chat/completions HTTP/1.1\r\nhost: gw\r\ncontent-length: 2\r\n\r\n{}";
        let (version, all, first) = sniff(&[req]).await;
        assert_eq!(version, Version::Http1);
        assert_eq!(all, req);
        assert_eq!(first, req.len());
    }

    #[tokio::test]
    async fn the_http2_preface_is_recognised_and_kept() {
        let (version, all, _) = sniff(&[&PREFACE[..5], &PREFACE[5..], b"\0\0\0\x04"]).await;
        assert_eq!(version, Version::Http2);
        assert_eq!(&all[..24], PREFACE);
        assert_eq!(&all[24..], b"\0\0\0\x04");
    }

    #[tokio::test]
    async fn short_and_empty_connections_are_http1() {
        let (version, all, _) = sniff(&[b"PRI"]).await;
        assert_eq!((version, all.as_slice()), (Version::Http1, &b"PRI"[..]));
        let (version, all, _) = sniff(&[]).await;
        assert_eq!((version, all.len()), (Version::Http1, 0));
    }
}
