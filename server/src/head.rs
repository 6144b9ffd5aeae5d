//! Request heads detached from hyper's read buffer.
//!
//! hyper parses a request without copying: the URI and every header value are slices
//! of the connection's read buffer (8 KiB, often grown to 16 KiB while the head is
//! read). engineioxide keeps the handshake request's head for the whole life of the
//! session (socketioxide's `req_parts()`), and so, through those slices, the entire
//! buffer: ~16 KiB per idle websocket, more than half of what a session costs.
//! (axum's `OriginalUri` extension holds another clone of the URI.) [`detach`] copies
//! the head into one allocation of exactly its size before axum sees the request, so
//! the buffer is freed when hyper is done with it.

use axum::http::{HeaderMap, HeaderValue, Uri, request::Parts};
use bytes::{BufMut, Bytes, BytesMut};

/// Replaces `parts`' URI and header values with copies held in one compact buffer.
///
/// Names and the sensitive flag are kept; a value that can't be re-parsed (none can:
/// it was parsed before) keeps its original bytes.
///
/// ```
/// use axum::http::Request;
///
/// let req = Request::get("/socket.io/?EIO=4&transport=websocket")
///     .header("user-agent", "demo")
///     .body(())
///     .unwrap();
/// let (mut parts, ()) = req.into_parts();
/// sio_server::head::detach(&mut parts);
/// assert_eq!(parts.uri, "/socket.io/?EIO=4&transport=websocket");
/// assert_eq!(parts.headers["user-agent"], "demo");
/// ```
pub fn detach(parts: &mut Parts) {
    let uri = parts.uri.to_string();
    let len = uri.len() + parts.headers.values().map(|v| v.len()).sum::<usize>();
    let mut buf = BytesMut::with_capacity(len);
    buf.put_slice(uri.as_bytes());
    for value in parts.headers.values() {
        buf.put_slice(value.as_bytes());
    }
    let buf: Bytes = buf.freeze();

    if let Ok(copy) = Uri::from_maybe_shared(buf.slice(..uri.len())) {
        parts.uri = copy;
    }
    let mut headers = HeaderMap::with_capacity(parts.headers.len());
    let mut at = uri.len();
    for (name, value) in parts.headers.iter() {
        let end = at + value.len();
        let mut copy =
            HeaderValue::from_maybe_shared(buf.slice(at..end)).unwrap_or_else(|_| value.clone());
        copy.set_sensitive(value.is_sensitive());
        headers.append(name.clone(), copy);
        at = end;
    }
    parts.headers = headers;
}

/// [`detach`] for a whole request.
pub fn detached<B>(req: axum::http::Request<B>) -> axum::http::Request<B> {
    let (mut parts, body) = req.into_parts();
    detach(&mut parts);
    axum::http::Request::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, Request};

    /// A head parsed the way hyper parses one: URI and values are slices of one buffer.
    fn parsed_head(buffer: &Bytes) -> Parts {
        let text = std::str::from_utf8(buffer).unwrap();
        let uri_at = text.find("/socket.io").unwrap();
        let uri_end = uri_at + text[uri_at..].find(' ').unwrap();
        let (mut parts, ()) = Request::new(()).into_parts();
        parts.uri = Uri::from_maybe_shared(buffer.slice(uri_at..uri_end)).unwrap();
        for line in text.split("\r\n").skip(1).filter(|l| !l.is_empty()) {
            let (name, value) = line.split_once(": ").unwrap();
            let at = line.as_ptr() as usize - text.as_ptr() as usize + name.len() + 2;
            let value = HeaderValue::from_maybe_shared(buffer.slice(at..at + value.len())).unwrap();
            parts
                .headers
                .append(HeaderName::from_bytes(name.as_bytes()).unwrap(), value);
        }
        parts
    }

    #[test]
    fn the_detached_head_holds_no_part_of_the_read_buffer() {
        let mut read_buffer = BytesMut::with_capacity(16 * 1024);
        read_buffer.put_slice(
            b"GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nhost: a.example\r\n\
              cookie: x=1\r\ncookie: y=2\r\nauthorization: Bearer t\r\n\r\n",
        );
        let buffer = read_buffer.freeze();
        let mut parts = parsed_head(&buffer);
        let mut auth = parts.headers["authorization"].clone();
        auth.set_sensitive(true);
        parts.headers.insert("authorization", auth);
        assert!(!buffer.is_unique(), "the parsed head shares the buffer");

        detach(&mut parts);

        assert!(
            buffer.is_unique(),
            "the detached head still points into the buffer"
        );
        assert_eq!(parts.uri, "/socket.io/?EIO=4&transport=websocket");
        assert_eq!(parts.headers["host"], "a.example");
        let cookies: Vec<_> = parts.headers.get_all("cookie").iter().collect();
        assert_eq!(cookies, ["x=1", "y=2"]);
        assert!(parts.headers["authorization"].is_sensitive());
        assert_eq!(parts.headers.len(), 4);
    }
}
