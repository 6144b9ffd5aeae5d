//! The frame follower against a scripted stream: every split, short and pending writes.

use std::io::IoSlice;

use futures_util::task::noop_waker_ref;

use super::*;

const HEAD: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\n\
upgrade: websocket\r\nsec-websocket-accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";

/// A stream that takes at most `limit` bytes per write and, with `pending`, answers
/// every other call `Pending`.
#[derive(Default)]
struct Sink {
    out: Vec<u8>,
    limit: usize,
    pending: bool,
    flip: bool,
    flushed: usize,
}

impl Sink {
    fn new(limit: usize, pending: bool) -> Self {
        Self {
            limit,
            pending,
            ..Self::default()
        }
    }
}

impl AsyncWrite for Sink {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.pending {
            self.flip = !self.flip;
            if self.flip {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
        }
        let n = buf.len().min(self.limit);
        self.out.extend_from_slice(&buf[..n]);
        Poll::Ready(Ok(n))
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let mut n = 0;
        for b in bufs {
            let take = b.len().min(self.limit - n);
            self.out.extend_from_slice(&b[..take]);
            n += take;
        }
        Poll::Ready(Ok(n))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.flushed = self.out.len();
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

fn write_all(w: &mut ReplyRewriter<Sink>, mut buf: &[u8]) {
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut spins = 0;
    while !buf.is_empty() {
        match Pin::new(&mut *w).poll_write(&mut cx, buf) {
            Poll::Ready(Ok(n)) => {
                assert!(n > 0 && n <= buf.len(), "wrote {n} of {}", buf.len());
                buf = &buf[n..];
            }
            Poll::Ready(Err(e)) => panic!("write failed: {e}"),
            Poll::Pending => {
                spins += 1;
                assert!(spins < 1_000_000, "stuck");
            }
        }
    }
}

fn flush(w: &mut ReplyRewriter<Sink>) {
    let mut cx = Context::from_waker(noop_waker_ref());
    for _ in 0..1_000_000 {
        if let Poll::Ready(res) = Pin::new(&mut *w).poll_flush(&mut cx) {
            return res.unwrap();
        }
    }
    panic!("flush stuck");
}

fn frame(first: u8, payload: &[u8]) -> Vec<u8> {
    let mut f = Vec::new();
    push_header(&mut f, first, payload.len());
    f.extend_from_slice(payload);
    f
}

/// A frame whose length is written in the 16-bit (`126`) or 64-bit (`127`) form even
/// when it would fit a shorter one.
fn frame_wide(first: u8, payload: &[u8], form: u8) -> Vec<u8> {
    let mut f = vec![first, form];
    match form {
        126 => f.extend_from_slice(&(payload.len() as u16).to_be_bytes()),
        _ => f.extend_from_slice(&(payload.len() as u64).to_be_bytes()),
    }
    f.extend_from_slice(payload);
    f
}

fn pending_table() -> PidTable {
    let t = PidTable::new();
    t.insert("/", "S", "P".into());
    t.insert("/chat", "S", "Q".into());
    t
}

/// The server's output (`input`) and what the client must get (`expected`).
fn script() -> (Vec<u8>, Vec<u8>) {
    let mut input = HEAD.to_vec();
    let mut expected = HEAD.to_vec();
    let mut both = |i: &[u8], e: &[u8]| {
        input.extend_from_slice(i);
        expected.extend_from_slice(e);
    };
    let same = |f: Vec<u8>| (f.clone(), f);
    for (i, e) in [
        same(frame(0x89, b"")),                     // ping, empty
        same(frame(0x82, &[0x81, 2, b'4', b'0'])),  // binary that looks like a frame
        same(frame(FIN_TEXT, br#"42["ev","40"]"#)), // an event
        same(frame(FIN_TEXT, b"0{\"sid\":\"S\"}")), // open packet
        (
            frame(FIN_TEXT, br#"40{"sid":"S"}"#),
            frame(FIN_TEXT, br#"40{"sid":"S","pid":"P"}"#),
        ),
        same(frame(FIN_TEXT, br#"44{"message":"no"}"#)),
        same(frame(FIN_TEXT, br#"40{"sid":"S"}"#)), // pid taken already
        same(frame(0xC1, br#"40/chat,{"sid":"S"}"#)), // RSV1: compressed
        same(frame(0x01, br#"40/chat,{"sid":"S"}"#)), // not FIN
        same(frame_wide(FIN_TEXT, &[b'x'; 130], 126)),
        same(frame_wide(0x82, &[7; 20], 127)),
        (
            frame_wide(FIN_TEXT, br#"40/chat,{"sid":"S"}"#, 127),
            frame(FIN_TEXT, br#"40/chat,{"sid":"S","pid":"Q"}"#),
        ),
        same(frame(0x8A, b"pong")),
        same(frame(FIN_TEXT, b"4")),
        same(frame(FIN_TEXT, b"")),
    ] {
        both(&i, &e);
    }
    (input, expected)
}

#[test]
fn splits_at_every_byte_position() {
    let (input, expected) = script();
    for at in 0..=input.len() {
        let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), pending_table());
        write_all(&mut w, &input[..at]);
        write_all(&mut w, &input[at..]);
        flush(&mut w);
        assert!(w.table.is_empty(), "split at {at}");
        assert_eq!(w.inner.out, expected, "split at {at}");
    }
}

#[test]
fn short_and_pending_writes_of_the_stream() {
    let (input, expected) = script();
    for limit in 1..=16 {
        for pending in [false, true] {
            let mut w = ReplyRewriter::new(Sink::new(limit, pending), pending_table());
            write_all(&mut w, &input);
            flush(&mut w);
            assert_eq!(w.inner.out, expected, "limit {limit} pending {pending}");
        }
    }
}

#[test]
fn byte_by_byte_writes() {
    let (input, expected) = script();
    let mut w = ReplyRewriter::new(Sink::new(3, true), pending_table());
    for b in &input {
        write_all(&mut w, std::slice::from_ref(b));
    }
    flush(&mut w);
    assert_eq!(w.inner.out, expected);
}

#[test]
fn head_and_frames_in_one_write_with_nothing_pending_pass_through() {
    let (input, _) = script();
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), PidTable::new());
    write_all(&mut w, &input);
    flush(&mut w);
    assert_eq!(w.inner.out, input);
    assert!(w.is_upgraded());
    assert_eq!(w.phase, BOUNDARY);
}

#[test]
fn a_64_bit_frame() {
    let big = frame(0x82, &vec![0x81; 70_000]);
    assert_eq!(big[1], 127);
    let connect = frame(FIN_TEXT, br#"40{"sid":"S"}"#);
    let mut input = HEAD.to_vec();
    input.extend_from_slice(&big);
    input.extend_from_slice(&connect);
    input.extend_from_slice(&big);
    let mut expected = HEAD.to_vec();
    expected.extend_from_slice(&big);
    expected.extend_from_slice(&frame(FIN_TEXT, br#"40{"sid":"S","pid":"P"}"#));
    expected.extend_from_slice(&big);
    for at in [
        1,
        HEAD.len() + 5,
        HEAD.len() + 11,
        HEAD.len() + 40_000,
        input.len() - 3,
    ] {
        let mut w = ReplyRewriter::new(Sink::new(8192, true), pending_table());
        write_all(&mut w, &input[..at]);
        write_all(&mut w, &input[at..]);
        flush(&mut w);
        assert_eq!(w.inner.out, expected, "split at {at}");
    }
}

#[test]
fn a_16_bit_connect_reply_is_rewritten() {
    let sid = "S".repeat(200);
    let t = PidTable::new();
    t.insert("/", &sid, "P".into());
    let reply = format!(r#"40{{"sid":"{sid}"}}"#);
    let rewritten = format!(r#"40{{"sid":"{sid}","pid":"P"}}"#);
    let mut input = HEAD.to_vec();
    input.extend_from_slice(&frame(FIN_TEXT, reply.as_bytes()));
    assert_eq!(input[HEAD.len() + 1], 126);
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), t);
    write_all(&mut w, &input);
    flush(&mut w);
    let mut expected = HEAD.to_vec();
    expected.extend_from_slice(&frame(FIN_TEXT, rewritten.as_bytes()));
    assert_eq!(w.inner.out, expected);
}

#[test]
fn a_reply_growing_past_125_bytes_gets_a_16_bit_length() {
    let sid = "S".repeat(110);
    let t = PidTable::new();
    t.insert("/", &sid, "P".repeat(10));
    let reply = format!(r#"40{{"sid":"{sid}"}}"#);
    let mut input = HEAD.to_vec();
    input.extend_from_slice(&frame(FIN_TEXT, reply.as_bytes()));
    assert!(reply.len() <= 125);
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), t);
    write_all(&mut w, &input);
    flush(&mut w);
    let out = &w.inner.out[HEAD.len()..];
    assert_eq!(out[1], 126);
    let len = u16::from_be_bytes([out[2], out[3]]) as usize;
    assert_eq!(len, out.len() - 4);
    assert!(out[4..].ends_with(br#","pid":"PPPPPPPPPP"}"#));
}

#[test]
fn large_text_frames_are_not_held() {
    let t = pending_table();
    let mut payload = br#"40{"sid":"S","x":""#.to_vec();
    payload.resize(MAX_REWRITTEN + 1, b'x');
    let mut input = HEAD.to_vec();
    input.extend_from_slice(&frame(FIN_TEXT, &payload));
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), t);
    write_all(&mut w, &input);
    assert!(w.held.is_empty());
    assert_eq!(w.inner.out, input);
    assert_eq!(w.table.len(), 2);
}

#[test]
fn http_before_the_upgrade_is_untouched() {
    let t = pending_table();
    let mut body = b"HTTP/1.1 200 OK\r\ncontent-length: 15\r\n\r\n".to_vec();
    body.extend_from_slice(&frame(FIN_TEXT, br#"40{"sid":"S"}"#));
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), t);
    for at in [0, 3, 12, body.len()] {
        write_all(&mut w, &body[..at]);
        write_all(&mut w, &body[at..]);
    }
    // a body that happens to start a write with the 101 text but is not at a head
    // start cannot be told apart; a 200 head that starts like one is not a 101
    write_all(&mut w, b"HTTP/1.1 10");
    write_all(&mut w, b"0 Continue\r\n\r\n");
    flush(&mut w);
    assert!(!w.is_upgraded());
    assert_eq!(w.table.len(), 2);
    let mut expected = Vec::new();
    for _ in 0..4 {
        expected.extend_from_slice(&body);
    }
    expected.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
    assert_eq!(w.inner.out, expected);
}

#[test]
fn a_101_head_split_inside_its_status_line() {
    let (input, expected) = script();
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), pending_table());
    write_all(&mut w, &input[..4]); // "HTTP"
    write_all(&mut w, &input[4..10]); // "/1.1 1"
    write_all(&mut w, &input[10..]);
    flush(&mut w);
    assert_eq!(w.inner.out, expected);
}

#[test]
fn flush_releases_a_frame_left_incomplete() {
    let t = pending_table();
    let reply = frame(FIN_TEXT, br#"40{"sid":"S"}"#);
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), t);
    write_all(&mut w, HEAD);
    write_all(&mut w, &reply[..6]);
    assert_eq!(w.held.len(), 6);
    flush(&mut w);
    assert!(w.held.is_empty());
    assert_eq!(w.inner.flushed, HEAD.len() + 6);
    write_all(&mut w, &reply[6..]);
    write_all(&mut w, &frame(0x89, b""));
    flush(&mut w);
    let mut expected = HEAD.to_vec();
    expected.extend_from_slice(&reply);
    expected.extend_from_slice(&frame(0x89, b""));
    assert_eq!(w.inner.out, expected);
    assert_eq!(w.phase, BOUNDARY);
}

#[test]
fn vectored_writes_before_and_after_the_upgrade() {
    let (input, expected) = script();
    let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
    let mut w = ReplyRewriter::new(Sink::new(usize::MAX, false), pending_table());
    let mut cx = Context::from_waker(noop_waker_ref());
    let mut out = Vec::new();
    // a plain response: head and body in one vectored write
    let bufs = [IoSlice::new(plain), IoSlice::new(b"hello")];
    let Poll::Ready(Ok(n)) = Pin::new(&mut w).poll_write_vectored(&mut cx, &bufs) else {
        panic!("vectored write");
    };
    assert_eq!(n, plain.len() + 5);
    out.extend_from_slice(plain);
    out.extend_from_slice(b"hello");
    // the 101 head and the frames in slices: everything arrives, rewritten
    let (head, frames) = input.split_at(HEAD.len());
    let slices = [&b""[..], head, &frames[..7], &frames[7..]];
    let mut at = 0; // bytes of `slices` written
    let total: usize = slices.iter().map(|s| s.len()).sum();
    while at < total {
        let mut skip = at;
        let bufs: Vec<IoSlice<'_>> = slices
            .iter()
            .filter_map(|s| {
                if skip >= s.len() {
                    skip -= s.len();
                    None
                } else {
                    let s = &s[skip..];
                    skip = 0;
                    Some(IoSlice::new(s))
                }
            })
            .collect();
        match Pin::new(&mut w).poll_write_vectored(&mut cx, &bufs) {
            Poll::Ready(Ok(n)) => at += n,
            other => panic!("{other:?}"),
        }
    }
    flush(&mut w);
    out.extend_from_slice(&expected);
    assert_eq!(w.inner.out, out);
}

#[tokio::test]
async fn through_a_duplex_pipe() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let (input, expected) = script();
    let (near, mut far) = tokio::io::duplex(16);
    let mut w = ReplyRewriter::new(near, pending_table());
    let writer = tokio::spawn(async move {
        for chunk in input.chunks(50) {
            w.write_all(chunk).await.unwrap();
        }
        w.shutdown().await.unwrap();
        w
    });
    let mut got = Vec::new();
    far.read_to_end(&mut got).await.unwrap();
    let w = writer.await.unwrap();
    assert_eq!(got, expected);
    assert!(w.table.is_empty());
}
