//! Test kit for sio-cluster: start nodes (in this process or as processes), Redis, nginx
//! and peers; drive real clients; read what they report.
//!
//! Clients are the official `socket.io-client` (npm, pinned in `tests/js/package.json`)
//! and `python-socketio` (pinned in `tests/py/requirements.txt`), run as child
//! processes that print the facts they observed as JSON. Install them once with
//! `npm ci --prefix tests/js` and `pip install -r tests/py/requirements.txt`.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use sio_cluster_tests::{clients::js_scenario, node::NodeBuilder};
//! let node = NodeBuilder::new().start().await?;
//! let facts = js_scenario(serde_json::json!({
//!     "scenario": "handshake",
//!     "url": node.url(),
//! })).await?;
//! assert_eq!(facts["connected"], true);
//! # Ok(()) }
//! ```

pub mod clients; // official clients and the Node.js peer as child processes
pub mod faults; // fault injection: a controllable TCP proxy and a `/readyz` watcher
pub mod files; // the kit's folders and temporary directories
pub mod http; // raw HTTP, metrics, Engine.IO sessions and websockets on loopback
pub mod nginx; // real nginx in front of nodes
pub mod node; // the node builder and nodes in this process
pub mod process; // nodes as child processes, their logs and `/proc` figures
pub mod redis; // Redis containers and a test PKI
pub mod rust_peer; // a Rust cluster member built on the adapter library
pub mod scenario; // the facts the JS scenarios report and the checks shared by test files
pub mod witness; // witness clients that must stay unharmed
