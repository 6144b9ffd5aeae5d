//! Connection state recovery's hazard, closed: a recovering socket must get every broadcast
//! published after its offset exactly once and in order, although the broadcasts it missed
//! are read from the log (`XRANGE`) while newer ones keep arriving from the stream reader,
//! and socketioxide inserts the socket into its namespace at a moment of its own choosing.
//!
//! How: every broadcast read from the log reaches local sockets through
//! [`CatchUps::deliver`], under one lock per namespace, which also records the namespace's
//! position (the last entry delivered here). A recovering socket is registered
//! ([`CatchUps::begin`]) before socketioxide inserts it; from then on each delivered entry
//! skips it (an `except` of its own room) and, when it targets the socket's rooms, is
//! buffered for it instead. Once inserted, the socket is caught up ([`CatchUps::finish`]):
//! the log's entries after its offset up to the namespace's position (read after `begin`,
//! so they cover everything delivered before it) plus the buffer, without duplicates, in
//! log order, all emitted under the lock; then the socket leaves the set, and the next
//! entry the reader delivers (newer than all of these) reaches it as any socket.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use socketioxide_core::Sid;
use socketioxide_core::adapter::{BroadcastOptions, Room};
use socketioxide_core::packet::Packet;

use crate::cluster::lock;
use crate::protocol;
use crate::protocol::streams::compare_stream_ids;

/// The recovering sockets of one namespace, and its log position.
#[derive(Default)]
pub(crate) struct CatchUps {
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// The last log entry of this namespace delivered to local sockets.
    position: Option<String>,
    sockets: HashMap<Sid, CatchUp>,
}

/// A socket being caught up.
struct CatchUp {
    /// Its rooms, its old and new ids included.
    rooms: HashSet<String>,
    /// Entries delivered here since `begin` that target it, by id.
    buffered: Vec<(String, Packet)>,
}

impl CatchUp {
    /// Whether a broadcast with these options reaches the socket.
    fn targeted_by(&self, opts: &protocol::BroadcastOptions) -> bool {
        (opts.rooms.is_empty() || opts.rooms.iter().any(|r| self.rooms.contains(r)))
            && !opts.except.iter().any(|r| self.rooms.contains(r))
    }
}

/// A logged broadcast to replay: its id, its options on the wire, and the packet to emit.
pub(crate) struct Logged {
    pub(crate) id: String,
    pub(crate) opts: protocol::BroadcastOptions,
    pub(crate) packet: Packet,
}

impl CatchUps {
    /// Delivers log entry `id` through `send` (the local fan-out), keeping recovering
    /// sockets out of it and buffering it for those it targets.
    pub(crate) fn deliver(
        &self,
        id: &str,
        wire_opts: &protocol::BroadcastOptions,
        packet: Packet,
        mut opts: BroadcastOptions,
        send: impl FnOnce(Packet, BroadcastOptions),
    ) {
        let mut state = lock(&self.state);
        for (sid, socket) in state.sockets.iter_mut() {
            opts.except.push(Room::Owned(sid.to_string()));
            if socket.targeted_by(wire_opts) {
                socket.buffered.push((id.to_string(), packet.clone()));
            }
        }
        send(packet, opts);
        state.position = Some(id.to_string());
    }

    /// The namespace's position: the last entry delivered here, if any since the start.
    pub(crate) fn position(&self) -> Option<String> {
        lock(&self.state).position.clone()
    }

    /// Registers socket `sid` (in `rooms`) as recovering; call before it joins the
    /// namespace.
    pub(crate) fn begin(&self, sid: Sid, rooms: impl IntoIterator<Item = String>) {
        let mut rooms: HashSet<String> = rooms.into_iter().collect();
        rooms.insert(sid.to_string());
        lock(&self.state).sockets.insert(
            sid,
            CatchUp {
                rooms,
                buffered: Vec::new(),
            },
        );
    }

    /// Forgets a recovering socket (it left, or its catch-up failed).
    pub(crate) fn abort(&self, sid: Sid) {
        lock(&self.state).sockets.remove(&sid);
    }

    /// Catches socket `sid` up: `logged` (the log after its offset, read after
    /// [`CatchUps::begin`]) up to the position, plus what was buffered, once each, in log
    /// order, through `emit`; `fallback` is the position to use when no entry of this
    /// namespace was delivered here yet (the stream reader's). Returns how many entries
    /// were emitted, `None` if the socket was not recovering.
    pub(crate) fn finish(
        &self,
        sid: Sid,
        logged: Vec<Logged>,
        fallback: impl FnOnce() -> Option<String>,
        mut emit: impl FnMut(Packet),
    ) -> Option<usize> {
        let mut state = lock(&self.state);
        let socket = state.sockets.remove(&sid)?;
        let upto = state.position.clone().or_else(fallback);
        let mut replay: BTreeMap<OrderedId, Packet> = BTreeMap::new();
        for entry in logged {
            let delivered_here = upto
                .as_deref()
                .is_some_and(|upto| compare_stream_ids(&entry.id, upto).is_le());
            if delivered_here && socket.targeted_by(&entry.opts) {
                replay.insert(OrderedId(entry.id), entry.packet);
            }
        }
        for (id, packet) in socket.buffered {
            replay.entry(OrderedId(id)).or_insert(packet);
        }
        let count = replay.len();
        for packet in replay.into_values() {
            emit(packet);
        }
        Some(count)
    }
}

/// A stream id ordered as the log orders it.
#[derive(PartialEq, Eq)]
struct OrderedId(String);

impl PartialOrd for OrderedId {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for OrderedId {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        compare_stream_ids(&self.0, &other.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use socketioxide_core::Value;

    fn packet(n: u32) -> Packet {
        Packet::event("/", Value::Str(format!("[\"n\",{n}]").into(), None))
    }

    fn opts(rooms: &[&str]) -> protocol::BroadcastOptions {
        protocol::BroadcastOptions {
            rooms: rooms.iter().map(|r| r.to_string()).collect(),
            ..Default::default()
        }
    }

    fn logged(id: &str, rooms: &[&str], n: u32) -> Logged {
        Logged {
            id: id.into(),
            opts: opts(rooms),
            packet: packet(n),
        }
    }

    fn n_of(p: &Packet) -> String {
        format!("{:?}", p.inner)
    }

    #[test]
    fn buffered_and_logged_entries_are_emitted_once_in_log_order_and_live_ones_skip_the_socket() {
        let catch_ups = CatchUps::default();
        let sid = Sid::new();
        catch_ups.deliver(
            "1-0",
            &opts(&[]),
            packet(1),
            BroadcastOptions::default(),
            |_, _| {},
        );
        catch_ups.begin(sid, ["r".to_string()]);
        // delivered while recovering: excluded from the live fan-out, buffered if targeted
        let mut excluded = Vec::new();
        catch_ups.deliver(
            "3-0",
            &opts(&["r"]),
            packet(3),
            BroadcastOptions::default(),
            |_, o| {
                excluded = o.except.iter().map(|r| r.to_string()).collect();
            },
        );
        assert_eq!(excluded, vec![sid.to_string()]);
        catch_ups.deliver(
            "4-0",
            &opts(&["other"]),
            packet(4),
            BroadcastOptions::default(),
            |_, _| {},
        );
        // the log read after `begin` holds 2 and 3 (and 5, not yet delivered here)
        let log = vec![
            logged("2-0", &[], 2),
            logged("3-0", &["r"], 3),
            logged("5-0", &["r"], 5),
        ];
        let mut emitted = Vec::new();
        let count = catch_ups.finish(sid, log, || None, |p| emitted.push(n_of(&p)));
        assert_eq!(count, Some(2));
        assert_eq!(emitted, vec![n_of(&packet(2)), n_of(&packet(3))]);
        // caught up: the next entry reaches it as any socket
        catch_ups.deliver(
            "5-0",
            &opts(&["r"]),
            packet(5),
            BroadcastOptions::default(),
            |_, o| {
                assert!(o.except.is_empty());
            },
        );
        assert_eq!(catch_ups.finish(sid, Vec::new(), || None, |_| {}), None);
    }

    #[test]
    fn without_a_delivered_entry_the_reader_position_bounds_the_replay() {
        let catch_ups = CatchUps::default();
        let sid = Sid::new();
        catch_ups.begin(sid, []);
        let log = vec![logged("7-0", &[], 7), logged("9-0", &[], 9)];
        let mut emitted = 0;
        let count = catch_ups.finish(sid, log, || Some("8-0".into()), |_| emitted += 1);
        assert_eq!((count, emitted), (Some(1), 1));
    }

    #[test]
    fn except_and_rooms_are_honoured_for_the_old_and_new_ids() {
        let catch_ups = CatchUps::default();
        let sid = Sid::new();
        catch_ups.begin(sid, ["old-id".to_string(), "r".to_string()]);
        let mut except_old = opts(&[]);
        except_old.except = vec!["old-id".into()];
        let log = vec![
            Logged {
                id: "1-0".into(),
                opts: except_old,
                packet: packet(1),
            },
            logged("2-0", &["old-id"], 2),
            logged("3-0", &[&sid.to_string()], 3),
            logged("4-0", &["nope"], 4),
        ];
        let mut emitted = Vec::new();
        catch_ups.finish(sid, log, || Some("9-0".into()), |p| emitted.push(n_of(&p)));
        assert_eq!(emitted, vec![n_of(&packet(2)), n_of(&packet(3))]);
    }
}
