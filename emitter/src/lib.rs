//! `sio-emitter`: publish Socket.IO events into a sio-cluster, or into a Node.js
//! socket.io cluster on `@socket.io/redis-adapter`, from any process, through Redis. The
//! messages are those of `@socket.io/redis-emitter` 5.x, byte for byte; the byte layouts
//! live in [`sio_protocol`], shared with the adapter.
//!
//! ```no_run
//! # async fn demo() -> Result<(), sio_emitter::EmitError> {
//! use sio_emitter::Emitter;
//!
//! let emitter = Emitter::connect("redis://127.0.0.1:6379").await?;
//! // every socket of user 42, on every node
//! emitter.to("user:42").emit("notice", ("you have mail", 3)).await?;
//! // a namespace, two rooms, one excluded, binary payload
//! emitter
//!     .of("/admin")
//!     .to("ops")
//!     .to("oncall")
//!     .except("muted")
//!     .emit("dump", [bytes::Bytes::from_static(b"\x00\x01")])
//!     .await?;
//! // make every socket in "lobby" join "game-7"
//! emitter.of("/").within("lobby").sockets_join(["game-7"]).await?;
//! # Ok(()) }
//! ```
//!
//! Beyond the Node emitter: [`Operator::fetch_sockets`] and
//! [`Operator::server_side_emit_with_ack`] wait for the nodes' answers (with a timeout), and
//! [`Emitter::with_mode`] also speaks the sharded adapter's protocol and that of
//! `@socket.io/redis-streams-adapter` (streams mode: broadcasts become stream entries, see
//! [`Emitter::with_streams`]). What each message becomes is an [`Outgoing`]: a payload to
//! publish, or an entry to append to a stream.
//!
//! The `sio-emit` binary does the same from a shell:
//! `sio-emit --redis redis://127.0.0.1:6379 --to user:42 notice '"you have mail"'`.

mod emitter;
mod error;
mod redis_io;

pub use emitter::{Emitter, Operator};
pub use error::EmitError;
pub use sio_protocol::{FetchedSocket, Outgoing};
