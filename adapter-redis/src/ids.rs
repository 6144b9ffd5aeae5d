//! Ids of sockets on Node.js nodes: socketioxide's are exactly 16 characters, Node's 20,
//! so a foreign id gets a stable stand-in [`Sid`].

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;

use socketioxide_core::{Sid, Uid};

/// Most foreign ids remembered; the map starts over when full (a fetched socket's
/// operations use its id within moments of the fetch).
const MAX_IDS: usize = 100_000;

/// socketioxide ids are exactly 16 characters; Node's socket ids are 20. A foreign id
/// gets a stable 16-character stand-in, remembered so operations on it reach the real id.
#[derive(Default)]
pub(crate) struct IdMap {
    foreign: Mutex<HashMap<Sid, String>>,
    seed: std::collections::hash_map::RandomState,
}

impl IdMap {
    /// The [`Sid`] for a socket id seen on the wire.
    pub(crate) fn to_sid(&self, id: &str) -> Sid {
        if let Ok(sid) = id.parse::<Sid>() {
            return sid;
        }
        let sid = self.stand_in(id);
        let mut map = self.foreign.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_IDS {
            map.clear();
        }
        map.insert(sid, id.to_string());
        sid
    }

    /// The id on the wire (and the socket's own room) for a [`Sid`].
    pub(crate) fn wire_id(&self, sid: Sid) -> String {
        let map = self.foreign.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&sid).cloned().unwrap_or_else(|| sid.to_string())
    }

    fn stand_in(&self, id: &str) -> Sid {
        const ALPHABET: &[u8; 64] =
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = String::with_capacity(16);
        for round in 0..2u8 {
            let mut h = self.seed.build_hasher();
            h.write_u8(round);
            h.write(id.as_bytes());
            let mut bits = h.finish();
            for _ in 0..8 {
                out.push(ALPHABET[(bits & 63) as usize] as char);
                bits >>= 6;
            }
        }
        // 16 characters of the base64url alphabet always parse.
        out.parse().unwrap_or(Sid::ZERO)
    }
}

/// The server id reported for sockets on other nodes (responses do not name their node).
pub(crate) const REMOTE_UID: Uid = Uid::ZERO;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn native_ids_pass_and_foreign_ids_get_stable_stand_ins() {
        let map = IdMap::default();
        let native = Sid::new();
        assert_eq!(map.to_sid(&native.to_string()), native);
        assert_eq!(map.wire_id(native), native.to_string());

        let node_id = "lv_VI97HAXpY6yYWAAAC";
        let a = map.to_sid(node_id);
        assert_eq!(a, map.to_sid(node_id));
        assert_eq!(a.to_string().len(), 16);
        assert_eq!(map.wire_id(a), node_id);
        assert_ne!(map.to_sid("another-node-id-0001"), a);
    }
}
