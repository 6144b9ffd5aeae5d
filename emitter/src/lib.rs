//! `sio-emitter`: publish Socket.IO events into a sio-cluster (or a Node.js socket.io
//! cluster on `@socket.io/redis-adapter`) from any process, through Redis, in the wire
//! format of `@socket.io/redis-emitter` 5.x.
//!
//! Today the crate builds the messages ([`Emitter`] → [`Publish`]): which channel, which
//! bytes. Sending them with fred, `sockets_join`/`leave`, `disconnect_sockets`,
//! `server_side_emit` and the `sio-emit` CLI come with the emitter issue. The byte
//! layouts live in [`sio_adapter_redis::protocol`], shared with the adapter.
//!
//! ```
//! use sio_emitter::Emitter;
//!
//! let publish = Emitter::new()
//!     .of("/chat")
//!     .to("user:42")
//!     .emit("notice", ["you have mail"])
//!     .unwrap();
//! assert_eq!(publish.channel, "socket.io#/chat#user:42#");
//! ```

mod emitter;
mod error;

pub use emitter::{Emitter, Operator, Publish};
pub use error::EmitError;
