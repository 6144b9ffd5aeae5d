//! Identities on the wire: who sent a message, and which request an answer belongs to.

pub use crate::broadcast::EMITTER_UID;

/// A new request id: 16 random characters of the base64url alphabet, as socketioxide's
/// ids. Node uses any unique string (`randomId()`); only uniqueness among the pending
/// requests of a cluster matters.
///
/// ```
/// let (a, b) = (sio_protocol::new_request_id(), sio_protocol::new_request_id());
/// assert_eq!(a.len(), 16);
/// assert_ne!(a, b);
/// ```
pub fn new_request_id() -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bits = uuid::Uuid::new_v4().as_u128();
    (0..16)
        .map(|i| ALPHABET[((bits >> (6 * i)) & 63) as usize] as char)
        .collect()
}
