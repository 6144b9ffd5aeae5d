//! Streams mode's options and defaults, and which stream a namespace writes to.

/// The adapter's default `streamName`.
pub const DEFAULT_STREAM_NAME: &str = "socket.io";

/// The adapter's default `streamCount`.
pub const DEFAULT_STREAM_COUNT: u32 = 1;

/// The adapter's default `maxLen`: each `XADD` trims its stream to about this many entries
/// (`MAXLEN ~`).
pub const DEFAULT_MAX_LEN: u64 = 10_000;

/// The adapter's default `readCount`: each `XREAD` asks for at most this many entries
/// (`COUNT`).
pub const DEFAULT_READ_COUNT: u64 = 100;

/// The adapter's default `blockTimeInMs`: how long each `XREAD` blocks (`BLOCK`), in
/// milliseconds.
pub const DEFAULT_BLOCK_MS: u64 = 5_000;

/// The adapter's default `sessionKeyPrefix`: a disconnected socket's session is stored under
/// `sio:session:<pid>`.
pub const SESSION_KEY_PREFIX: &str = "sio:session:";

/// Where a streams-mode cluster keeps its entries: the options of
/// `@socket.io/redis-streams-adapter`'s `createAdapter` that decide what is written where.
///
/// ```
/// use sio_protocol::streams::StreamsOptions;
///
/// let one = StreamsOptions::default();
/// assert_eq!(one.stream_for("/chat"), "socket.io");
/// assert_eq!(one.streams(), ["socket.io"]);
///
/// let four = StreamsOptions { stream_count: 4, ..StreamsOptions::default() };
/// assert_eq!(four.stream_for("/"), "socket.io-3"); // "/" hashes to 47
/// assert_eq!(four.streams(), ["socket.io-0", "socket.io-1", "socket.io-2", "socket.io-3"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StreamsOptions {
    /// `streamName`: the stream's name, or the names' stem when there are several.
    pub stream_name: String,
    /// `streamCount`: how many streams the namespaces are spread over. Each node reads them
    /// all; a namespace writes to one of them (so its entries stay in order).
    pub stream_count: u32,
    /// `maxLen`: the approximate length each `XADD` trims its stream to.
    pub max_len: u64,
}

impl Default for StreamsOptions {
    /// Node's defaults: `socket.io`, 1 stream, 10,000 entries.
    fn default() -> Self {
        Self {
            stream_name: DEFAULT_STREAM_NAME.to_owned(),
            stream_count: DEFAULT_STREAM_COUNT,
            max_len: DEFAULT_MAX_LEN,
        }
    }
}

impl StreamsOptions {
    /// The stream namespace `nsp` writes to (`computeStreamName`): the stream name when
    /// `stream_count` is 1, else `<name>-<i>` with `i = hashCode(nsp) % stream_count`
    /// ([`hash_code`]).
    ///
    /// The index is computed with JavaScript's semantics, quirks included, so that a Rust and a
    /// Node node agree: `%` keeps the sign of the dividend, so a namespace whose hash is negative
    /// gets a negative index and a stream no node reads (`socket.io--1` for
    /// `/a-long-namespace-name` with 4 streams, see [`StreamsOptions::streams`]): its entries
    /// are written and trimmed but never delivered. A `stream_count` of 0 gives `<name>-NaN`, as
    /// `x % 0` is `NaN` in JavaScript.
    pub fn stream_for(&self, nsp: &str) -> String {
        if self.stream_count == 1 {
            return self.stream_name.clone();
        }
        if self.stream_count == 0 {
            return format!("{}-NaN", self.stream_name);
        }
        // Rust's `%` on signed integers keeps the dividend's sign, as JavaScript's does; JS's
        // `-0` (e.g. `-4 % 4`) prints as `0`, which an integer cannot tell apart anyway.
        let index = i64::from(hash_code(nsp)) % i64::from(self.stream_count);
        format!("{}-{index}", self.stream_name)
    }

    /// The streams a node reads (`createReadOnlyClients`, one connection each in Node): the
    /// stream name when `stream_count` is 1, else `<name>-0` to `<name>-<count - 1>` (none for
    /// a count of 0).
    pub fn streams(&self) -> Vec<String> {
        if self.stream_count == 1 {
            return vec![self.stream_name.clone()];
        }
        (0..self.stream_count)
            .map(|i| format!("{}-{i}", self.stream_name))
            .collect()
    }
}

/// Java's `String.hashCode` as the adapter computes it in JavaScript: over the UTF-16 code
/// units `c` of `s`, `hash = hash * 31 + c`, kept to a signed 32-bit integer after each step
/// (`hash |= 0`).
///
/// ```
/// use sio_protocol::streams::hash_code;
///
/// assert_eq!(hash_code(""), 0);
/// assert_eq!(hash_code("/"), 47);
/// assert_eq!(hash_code("/chat"), 46_457_863);
/// assert_eq!(hash_code("/a-long-namespace-name"), -227_082_509);
/// ```
pub fn hash_code(s: &str) -> i32 {
    s.encode_utf16().fold(0i32, |hash, unit| {
        hash.wrapping_mul(31).wrapping_add(i32::from(unit))
    })
}
