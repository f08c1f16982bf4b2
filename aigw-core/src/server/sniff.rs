//! Telling HTTP/1 from HTTP/2 (prior knowledge) on a fresh connection, and handing
//! hyper the bytes read to tell.
//!
//! `hyper_util`'s automatic builder reads the first 24 bytes on their own and gives
//! them back to hyper as a separate first read. hyper's HTTP/1 connection then holds
//! an incomplete request head and, to read the rest, reserves another 8 KiB beside
//! those 24 bytes: its read buffer doubles to 16 KiB on every connection, and the
//! copy writes both pages. Here the sniffed bytes and whatever the socket already
//! holds arrive in one read, so the head is usually complete at once and the buffer
//! stays at its 8 KiB.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// What an HTTP/2 client with prior knowledge sends first.
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The protocol a connection speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Version {
    H1,
    H2,
}

/// Reads until the bytes either are the HTTP/2 preface or cannot be; at most 24 bytes,
/// usually one read. End of stream before a decision counts as HTTP/1 (hyper then sees
/// the bytes and the end, as it would have).
pub(super) async fn sniff<I>(mut io: I) -> io::Result<(Version, Sniffed<I>)>
where
    I: AsyncRead + Unpin,
{
    let mut prefix = [0u8; 24];
    let mut filled = 0;
    let version = loop {
        let n = io.read(&mut prefix[filled..]).await?;
        let end = filled + n;
        if n == 0 || prefix[filled..end] != H2_PREFACE[filled..end] {
            filled = end;
            break Version::H1;
        }
        filled = end;
        if filled == H2_PREFACE.len() {
            break Version::H2;
        }
    };
    let io = Sniffed {
        io,
        prefix,
        start: 0,
        end: filled,
    };
    Ok((version, io))
}

/// A connection whose first bytes were read to sniff its protocol: the first read
/// returns them together with what the socket has ready behind them.
pub(super) struct Sniffed<I> {
    io: I,
    prefix: [u8; 24],
    start: usize,
    end: usize,
}

impl<I: AsyncRead + Unpin> AsyncRead for Sniffed<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.start == this.end {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        let n = (this.end - this.start).min(buf.remaining());
        buf.put_slice(&this.prefix[this.start..this.start + n]);
        this.start += n;
        if this.start == this.end && buf.remaining() > 0 {
            // Whatever the socket has now joins the sniffed bytes. Pending or an error
            // here is fine to drop: the bytes above are returned, and the next read polls
            // the socket again (registering its waker, or seeing the error again).
            let _ = Pin::new(&mut this.io).poll_read(cx, buf);
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Sniffed<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    async fn sniffed(chunks: &[&[u8]]) -> (Version, Vec<u8>) {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        for c in chunks {
            client.write_all(c).await.unwrap();
        }
        drop(client);
        let (v, mut io) = sniff(server).await.unwrap();
        let mut all = Vec::new();
        io.read_to_end(&mut all).await.unwrap();
        (v, all)
    }

    #[tokio::test]
    async fn http1_request_comes_back_whole() {
        let req = b"POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(sniffed(&[req]).await, (Version::H1, req.to_vec()));
    }

    #[tokio::test]
    async fn preface_split_anywhere_is_http2() {
        let mut wire = H2_PREFACE.to_vec();
        wire.extend_from_slice(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
        for cut in 0..wire.len() {
            let (a, b) = wire.split_at(cut);
            assert_eq!(
                sniffed(&[a, b]).await,
                (Version::H2, wire.clone()),
                "cut {cut}"
            );
        }
    }

    #[tokio::test]
    async fn short_and_empty_streams_are_http1() {
        assert_eq!(
            sniffed(&[b"PRI * HT"]).await,
            (Version::H1, b"PRI * HT".to_vec())
        );
        assert_eq!(sniffed(&[]).await, (Version::H1, Vec::new()));
        assert_eq!(sniffed(&[b"G"]).await, (Version::H1, b"G".to_vec()));
    }

    #[tokio::test]
    async fn first_read_holds_the_sniffed_bytes_and_the_rest() {
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let req = [b'x'; 3000];
        client.write_all(b"GET / HTTP/1.1\r\n").await.unwrap();
        client.write_all(&req).await.unwrap();
        let (_, mut io) = sniff(server).await.unwrap();
        let mut buf = vec![0u8; 8192];
        let n = io.read(&mut buf).await.unwrap();
        assert_eq!(n, 16 + 3000, "one read returns everything ready");
    }
}
