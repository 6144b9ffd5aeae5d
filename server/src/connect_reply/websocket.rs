//! The websocket route: CONNECT replies in the frames the server writes.
//!
//! [`ReplyRewriter`] wraps a connection's TCP stream in the accept loop. Reads pass
//! through. Writes pass through until the server writes a `101 Switching Protocols`
//! head; from then on the stream carries the server's websocket frames (unmasked), whose
//! headers it follows across write calls (a frame may be split over several writes, a
//! write may hold several frames). Every frame passes through untouched except, while
//! some pid is pending ([`PidTable::is_empty`] is false), a complete (FIN) text frame of at
//! most [`MAX_REWRITTEN`] bytes whose payload starts with `40`: that one is held back
//! whole, rewritten by [`rewrite_connect`] and written out with a new header. When no pid
//! is pending, the cost after the `101` is following frame headers (a few bytes per
//! frame, payloads skipped by length) and one atomic load per write.
//!
//! What it relies on:
//! - The `101` head starts a write call (hyper writes each response head at the start of
//!   its write buffer, and the head of an upgrade is the last thing it writes): a write,
//!   or an I/O slice of a vectored write, that starts with `HTTP/1.1 101` and the bytes up
//!   to the next `\r\n\r\n` are taken as that head. A `101` head anywhere else would be
//!   missed (its connection's replies would go out without a pid, unharmed otherwise).
//! - No compression: engineioxide does not negotiate permessage-deflate (its `101` has no
//!   `Sec-WebSocket-Extensions`, and its tungstenite has no deflate support). Frames with
//!   RSV bits set would pass through untouched anyway.
//! - Socket.IO replies are never fragmented (tungstenite writes a message as one frame);
//!   fragments pass through untouched.
//!
//! Accounting: `poll_write` reports the input bytes it took. Bytes it passes through are
//! written straight to the stream (no copy) and reported as the stream took them; a held
//! frame is copied into the wrapper and reported as taken, and its output goes into a
//! buffer that is written out before any further input is accepted, and by `poll_flush`
//! and `poll_shutdown` (which also give up holding a frame the writer left incomplete,
//! passing its bytes through as they are).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::PidTable;
use super::packet::rewrite_connect;

/// Largest text frame payload that is held back to be rewritten.
pub const MAX_REWRITTEN: usize = 4096;

/// The start of the head that switches the connection to websocket frames.
const HEAD_101: &[u8] = b"HTTP/1.1 101";
/// The end of a response head.
const HEAD_END: &[u8] = b"\r\n\r\n";
/// FIN, no RSV bits, opcode 1 (text).
const FIN_TEXT: u8 = 0x81;

/// Where the output stream is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// HTTP/1, before the upgrade: `matched` bytes of [`HEAD_101`] seen since the start
    /// of a head (0: the next write may start one).
    Http { matched: u8 },
    /// In the `101` head: `end` bytes of [`HEAD_END`] seen.
    Head { end: u8 },
    /// In a frame header (websocket frames from here on): its first `len` bytes, already
    /// written out, are in `hdr`. `len == 0`: at a frame boundary.
    Header { hdr: [u8; 14], len: u8 },
    /// In a frame's payload, passing through.
    Payload { remaining: u64 },
}

const BOUNDARY: Phase = Phase::Header {
    hdr: [0; 14],
    len: 0,
};

/// An IO wrapper (see the module doc) that adds pids to the Socket.IO CONNECT replies the
/// server writes on a websocket.
#[derive(Debug)]
pub struct ReplyRewriter<S> {
    inner: S,
    table: PidTable,
    phase: Phase,
    /// A frame held back from its boundary on (header included), not yet written.
    held: Vec<u8>,
    /// Output (a rewritten or released frame) not yet written to `inner`, from `out_pos`.
    out: Vec<u8>,
    out_pos: usize,
}

impl<S> ReplyRewriter<S> {
    /// Wraps `inner`, a connection's stream before any byte was written to it.
    pub fn new(inner: S, table: PidTable) -> Self {
        Self {
            inner,
            table,
            phase: Phase::Http { matched: 0 },
            held: Vec::new(),
            out: Vec::new(),
            out_pos: 0,
        }
    }

    /// The wrapped stream.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// Whether the stream has switched to websocket frames.
    pub fn is_upgraded(&self) -> bool {
        matches!(self.phase, Phase::Header { .. } | Phase::Payload { .. })
    }

    /// Takes bytes of `buf` into `held` until the held frame is decided: released as it
    /// is, or complete and rewritten (both into `out`). Returns how many it took (at least
    /// one: `held` is only ever left non-empty when it needs more).
    fn feed_held(&mut self, buf: &[u8]) -> usize {
        let mut taken = 0;
        loop {
            match held_status(&self.held) {
                Held::Need(n) => {
                    if taken == buf.len() {
                        return taken;
                    }
                    let n = n.min(buf.len() - taken);
                    self.held.extend_from_slice(&buf[taken..taken + n]);
                    taken += n;
                }
                Held::Other => {
                    self.release();
                    return taken;
                }
                Held::Complete(header_len) => {
                    self.finish(header_len);
                    return taken;
                }
            }
        }
    }

    /// Gives up the held frame: its bytes go out as they are, and the phase is where they
    /// leave the stream.
    fn release(&mut self) {
        let (_, phase) = scan(BOUNDARY, &self.held, false);
        self.out.extend_from_slice(&self.held);
        self.held.clear();
        self.phase = phase;
    }

    /// The held frame is complete: its rewrite (or itself) goes out.
    fn finish(&mut self, header_len: usize) {
        match rewrite_connect(&self.held[header_len..], &self.table) {
            Some(payload) => {
                push_header(&mut self.out, FIN_TEXT, payload.len());
                self.out.extend_from_slice(&payload);
            }
            None => self.out.extend_from_slice(&self.held),
        }
        self.held.clear();
        self.phase = BOUNDARY;
    }
}

impl<S: AsyncWrite + Unpin> ReplyRewriter<S> {
    /// Writes `out` to the stream.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.out_pos < self.out.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.out[self.out_pos..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.out_pos += n;
        }
        self.out.clear();
        self.out_pos = 0;
        Poll::Ready(Ok(()))
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for ReplyRewriter<S> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for ReplyRewriter<S> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if buf.is_empty() {
            return Poll::Ready(Ok(0));
        }
        ready!(this.poll_drain(cx))?;
        if this.held.is_empty() {
            let hold = !this.table.is_empty();
            let (pass, _) = scan(this.phase, buf, hold);
            if pass > 0 {
                let n = ready!(Pin::new(&mut this.inner).poll_write(cx, &buf[..pass]))?;
                // Where the bytes written leave the stream (never stopping to hold: the
                // first scan did not stop before `pass`).
                this.phase = scan(this.phase, &buf[..n], false).1;
                return Poll::Ready(Ok(n));
            }
        }
        // A frame to hold starts here, or the held one goes on.
        let taken = this.feed_held(buf);
        // Best effort: the output is written before more input is taken in any case, and
        // an error of the stream shows again on the next call.
        let _ = this.poll_drain(cx);
        Poll::Ready(Ok(taken))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.phase == (Phase::Http { matched: 0 }) && this.held.is_empty() && this.out.is_empty()
        {
            // Before the upgrade: the slices ahead of the first that may start a `101`
            // head go out as they are, in one vectored write.
            let plain = bufs
                .iter()
                .position(|b| !b.is_empty() && may_start_101(b))
                .unwrap_or(bufs.len());
            if bufs[..plain].iter().any(|b| !b.is_empty()) {
                return Pin::new(&mut this.inner).poll_write_vectored(cx, &bufs[..plain]);
            }
        }
        let buf = bufs
            .iter()
            .find(|b| !b.is_empty())
            .map_or(&[][..], |b| &**b);
        Pin::new(this).poll_write(cx, buf)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.held.is_empty() {
            this.release();
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if !this.held.is_empty() {
            this.release();
        }
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

/// Whether `b` starts like a `101` head (as far as it goes).
fn may_start_101(b: &[u8]) -> bool {
    let n = b.len().min(HEAD_101.len());
    b[..n] == HEAD_101[..n]
}

/// Follows the output stream from `phase` over `buf`: returns how many bytes of `buf`
/// pass through and the phase after them. With `hold`, stops at a frame boundary where a
/// frame to hold starts ([`must_hold`]); without, takes all of `buf`.
fn scan(mut phase: Phase, buf: &[u8], hold: bool) -> (usize, Phase) {
    let mut i = 0;
    while i < buf.len() {
        match phase {
            Phase::Http { matched } => {
                let want = &HEAD_101[matched as usize..];
                let n = want.len().min(buf.len() - i);
                if buf[i..i + n] != want[..n] {
                    // Not a `101` head: the rest of this write is plain HTTP.
                    return (buf.len(), Phase::Http { matched: 0 });
                }
                i += n;
                let matched = matched as usize + n;
                phase = if matched == HEAD_101.len() {
                    Phase::Head { end: 0 }
                } else {
                    Phase::Http {
                        matched: matched as u8,
                    }
                };
            }
            Phase::Head { mut end } => {
                while i < buf.len() && (end as usize) < HEAD_END.len() {
                    end = match (buf[i], end) {
                        (b'\r', 2) => 3,
                        (b'\r', _) => 1,
                        (b'\n', 1) => 2,
                        (b'\n', 3) => 4,
                        _ => 0,
                    };
                    i += 1;
                }
                phase = if end as usize == HEAD_END.len() {
                    BOUNDARY
                } else {
                    Phase::Head { end }
                };
            }
            Phase::Header { mut hdr, mut len } => {
                if len == 0 && hold && must_hold(&buf[i..]) {
                    return (i, phase);
                }
                while i < buf.len() {
                    hdr[len as usize] = buf[i];
                    len += 1;
                    i += 1;
                    if len >= 2 && len as usize == header_len(hdr[1]) {
                        break;
                    }
                }
                phase = if len >= 2 && len as usize == header_len(hdr[1]) {
                    match payload_len(&hdr) {
                        0 => BOUNDARY,
                        remaining => Phase::Payload { remaining },
                    }
                } else {
                    Phase::Header { hdr, len }
                };
            }
            Phase::Payload { remaining } => {
                let n = remaining.min((buf.len() - i) as u64);
                i += n as usize;
                phase = match remaining - n {
                    0 => BOUNDARY,
                    remaining => Phase::Payload { remaining },
                };
            }
        }
    }
    (i, phase)
}

/// Whether the frame starting at `r` (at a frame boundary, `r` not empty) may be a
/// CONNECT reply to rewrite: a final unmasked text frame of 2 to [`MAX_REWRITTEN`] bytes
/// whose payload starts with `40`, as far as `r` tells.
fn must_hold(r: &[u8]) -> bool {
    if r.first() != Some(&FIN_TEXT) {
        return false;
    }
    match held_status(r) {
        Held::Need(_) | Held::Complete(_) => true,
        Held::Other => false,
    }
}

/// What a frame held from its boundary (`h`, maybe incomplete) is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Held {
    /// It may be a CONNECT reply: this many more bytes are needed to know or to have it.
    Need(usize),
    /// Not a frame to rewrite.
    Other,
    /// A whole candidate frame (with this header length), possibly followed by more bytes.
    Complete(usize),
}

fn held_status(h: &[u8]) -> Held {
    let Some(&first) = h.first() else {
        return Held::Need(1);
    };
    if first != FIN_TEXT {
        return Held::Other;
    }
    let Some(&second) = h.get(1) else {
        return Held::Need(1);
    };
    if second & 0x80 != 0 {
        // masked: not written by a server
        return Held::Other;
    }
    let header_len = header_len(second);
    if h.len() < header_len {
        return Held::Need(header_len - h.len());
    }
    let payload_len = payload_len(h);
    if !(2..=MAX_REWRITTEN as u64).contains(&payload_len) {
        return Held::Other;
    }
    let start = &h[header_len..h.len().min(header_len + 2)];
    if !b"40".starts_with(start) {
        return Held::Other;
    }
    let total = header_len + payload_len as usize;
    match total.checked_sub(h.len()) {
        Some(0) | None => Held::Complete(header_len),
        Some(n) => Held::Need(n),
    }
}

/// A frame header's length, from its second byte (mask bit and 7-bit length).
fn header_len(second: u8) -> usize {
    let ext = match second & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if second & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

/// A complete frame header's payload length.
fn payload_len(hdr: &[u8]) -> u64 {
    match hdr[1] & 0x7f {
        126 => u64::from(u16::from_be_bytes([hdr[2], hdr[3]])),
        127 => {
            let mut b = [0u8; 8];
            b.copy_from_slice(&hdr[2..10]);
            u64::from_be_bytes(b)
        }
        n => u64::from(n),
    }
}

/// Appends an unmasked frame header: first byte `first`, payload length `len`.
fn push_header(out: &mut Vec<u8>, first: u8, len: usize) {
    out.push(first);
    if len < 126 {
        out.push(len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        out.push(126);
        out.extend_from_slice(&len.to_be_bytes());
    } else {
        out.push(127);
        out.extend_from_slice(&(len as u64).to_be_bytes());
    }
}

#[cfg(test)]
mod tests;
