//! A payload on the classic response channel (`<prefix>-response#<nsp>#[<uid>#]`): answers
//! to this node's requests, typed by the request they answer.
//!
//! - never panics, whatever request type the answer is read as;
//! - a decoded response re-encodes to bytes that decode (as the same request type) and
//!   re-encode identically.

#![no_main]

use libfuzzer_sys::fuzz_target;
use sio_adapter_redis::protocol::{IncomingResponse, RequestType, Response};

const KINDS: [RequestType; 10] = [
    RequestType::Sockets,
    RequestType::AllRooms,
    RequestType::RemoteJoin,
    RequestType::RemoteLeave,
    RequestType::RemoteDisconnect,
    RequestType::RemoteFetch,
    RequestType::ServerSideEmit,
    RequestType::Broadcast,
    RequestType::BroadcastClientCount,
    RequestType::BroadcastAck,
];

fuzz_target!(|payload: &[u8]| {
    // The dispatcher's path: read the request id, then type the answer by the pending request.
    if let Ok(incoming) = IncomingResponse::decode(payload) {
        let _ = incoming.request_id();
        for kind in KINDS {
            let _ = incoming.clone().into_response(kind);
        }
    }
    for kind in KINDS {
        let Ok(response) = Response::decode(payload, kind) else {
            continue;
        };
        let Ok(bytes) = response.encode() else {
            continue;
        };
        let again = Response::decode(&bytes, kind)
            .unwrap_or_else(|e| panic!("re-encoded {kind:?} response does not decode: {e}"));
        assert_eq!(
            again.encode().expect("a decoded re-encoding encodes"),
            bytes,
            "encode(decode(encode(r))) != encode(r) for {kind:?}"
        );
    }
});
