//! Rewriting one Engine.IO packet: a Socket.IO CONNECT reply gets its pid.
//!
//! A CONNECT reply is Engine.IO message `4` carrying Socket.IO CONNECT `0`: `40`, then
//! `/nsp,` for a namespace other than `/`, then a JSON object with `"sid"`. The pid goes
//! in as the object's last member, the rest of the packet is kept byte for byte:
//! `40/chat,{"sid":"X"}` → `40/chat,{"sid":"X","pid":"P"}`, as Node writes it.

use std::borrow::Cow;

use super::PidTable;

/// The reply's body as far as the rewrite cares.
#[derive(serde::Deserialize)]
struct ConnectBody<'a> {
    #[serde(borrow)]
    sid: Cow<'a, str>,
    pid: Option<serde::de::IgnoredAny>,
}

/// The packet with `"pid"` added when `packet` is a CONNECT reply whose (namespace, sid)
/// has a pid in `table` (taken: one-shot); `None` (leave the packet as it is) for any
/// other packet, for a reply without a pending pid, and for a reply that already has a
/// `"pid"` (its pending pid, if any, is dropped). Never panics, whatever the bytes.
///
/// ```
/// use sio_server::connect_reply::{PidTable, packet::rewrite_connect};
///
/// let table = PidTable::new();
/// table.insert("/chat", "X", "P".to_string());
/// let out = rewrite_connect(br#"40/chat,{"sid":"X"}"#, &table);
/// assert_eq!(out.as_deref(), Some(&br#"40/chat,{"sid":"X","pid":"P"}"#[..]));
/// assert!(table.is_empty());
/// ```
pub fn rewrite_connect(packet: &[u8], table: &PidTable) -> Option<Vec<u8>> {
    if table.is_empty() {
        return None;
    }
    let (nsp, json) = split_connect(packet)?;
    let body: ConnectBody<'_> = serde_json::from_slice(json).ok()?;
    if body.pid.is_some() {
        table.remove(nsp, &body.sid);
        return None;
    }
    let pid = table.take(nsp, &body.sid)?;
    // The body parsed as an object, so its last non-blank byte is its closing brace.
    let close = json.iter().rposition(|&b| b == b'}')?;
    let pid = serde_json::to_string(&pid).ok()?;
    let head = packet.len() - json.len();
    let mut out = Vec::with_capacity(packet.len() + pid.len() + 7);
    out.extend_from_slice(&packet[..head + close]);
    out.extend_from_slice(b",\"pid\":");
    out.extend_from_slice(pid.as_bytes());
    out.extend_from_slice(&json[close..]);
    Some(out)
}

/// Whether `packet` may be a CONNECT reply: cheap, no parsing (`40`, then `{` or `/`).
pub fn may_be_connect(packet: &[u8]) -> bool {
    matches!(packet, [b'4', b'0', b'{' | b'/', ..])
}

/// The namespace and JSON text of a CONNECT packet (`40{..}` or `40/nsp,{..}`).
fn split_connect(packet: &[u8]) -> Option<(&str, &[u8])> {
    let rest = packet.strip_prefix(b"40")?;
    let (nsp, json) = match rest.first()? {
        b'{' => ("/", rest),
        b'/' => {
            let comma = rest.iter().position(|&b| b == b',')?;
            let nsp = std::str::from_utf8(&rest[..comma]).ok()?;
            (nsp, &rest[comma + 1..])
        }
        _ => return None,
    };
    json.starts_with(b"{").then_some((nsp, json))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(nsp: &str, sid: &str, pid: &str) -> PidTable {
        let t = PidTable::new();
        t.insert(nsp, sid, pid.to_string());
        t
    }

    fn rewrite(packet: &str, t: &PidTable) -> Option<String> {
        rewrite_connect(packet.as_bytes(), t).map(|b| String::from_utf8(b).unwrap())
    }

    #[test]
    fn main_namespace() {
        let t = table("/", "abc", "P1");
        assert_eq!(
            rewrite(r#"40{"sid":"abc"}"#, &t).as_deref(),
            Some(r#"40{"sid":"abc","pid":"P1"}"#)
        );
        assert!(t.is_empty());
        // one-shot: the second time there is nothing to add
        assert_eq!(rewrite(r#"40{"sid":"abc"}"#, &t), None);
    }

    #[test]
    fn custom_namespace() {
        let t = table("/chat", "abc", "P2");
        // the same sid on "/" has no pid
        assert_eq!(rewrite(r#"40{"sid":"abc"}"#, &t), None);
        assert_eq!(
            rewrite(r#"40/chat,{"sid":"abc"}"#, &t).as_deref(),
            Some(r#"40/chat,{"sid":"abc","pid":"P2"}"#)
        );
        assert!(t.is_empty());
    }

    #[test]
    fn keeps_other_members_and_escapes_the_pid() {
        let t = table("/", "abc", "a\"b\\c");
        assert_eq!(
            rewrite(r#"40{"x":[1,{"y":"}"}],"sid":"abc"} "#, &t).as_deref(),
            Some(r#"40{"x":[1,{"y":"}"}],"sid":"abc","pid":"a\"b\\c"} "#)
        );
    }

    #[test]
    fn sid_with_escapes() {
        let t = table("/", "a/b", "P");
        assert_eq!(
            rewrite(r#"40{"sid":"a\/b"}"#, &t).as_deref(),
            Some(r#"40{"sid":"a\/b","pid":"P"}"#)
        );
    }

    #[test]
    fn a_present_pid_is_kept_and_the_pending_one_dropped() {
        let t = table("/", "abc", "P");
        assert_eq!(rewrite(r#"40{"sid":"abc","pid":"Q"}"#, &t), None);
        assert!(t.is_empty());
    }

    #[test]
    fn other_packets_are_untouched() {
        let t = table("/", "abc", "P");
        for p in [
            r#"42["ev",{"sid":"abc"}]"#,
            r#"0{"sid":"abc","upgrades":[],"pingInterval":25000}"#,
            r#"44{"message":"refused"}"#,
            r#"44/chat,{"message":"refused"}"#,
            r#"41"#,
            r#"40"#,
            r#"40/chat"#,
            r#"40/chat,"#,
            r#"4"#,
            "",
            "2",
            "3probe",
            r#"b40{"sid":"abc"}"#,
            r#"43/chat,1[{"sid":"abc"}]"#,
        ] {
            assert_eq!(rewrite(p, &t), None, "{p}");
        }
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn malformed_json_is_untouched() {
        let t = table("/", "abc", "P");
        for p in [
            r#"40{"sid":"abc""#,
            r#"40{"sid":"abc"}x"#,
            r#"40{"sid":abc}"#,
            r#"40{"sid":1}"#,
            r#"40{"sid":null}"#,
            r#"40{}"#,
            r#"40{"#,
            r#"40{"sid":"abc","sid":"abc"}"#,
            r#"40/chat{"sid":"abc"}"#,
        ] {
            assert_eq!(rewrite(p, &t), None, "{p}");
        }
        assert_eq!(rewrite_connect(b"40{\"sid\":\"\xff\"}", &t), None);
        assert_eq!(rewrite_connect(b"40/\xff,{\"sid\":\"abc\"}", &t), None);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn garbage_never_panics() {
        let t = table("/", "abc", "P");
        let mut state = 0x2545_f491_u32;
        for len in 0..64 {
            for _ in 0..200 {
                let mut p = b"40".to_vec();
                for _ in 0..len {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    p.push(b"{}\"sid:,/ab\\40pP"[(state % 16) as usize]);
                }
                let _ = rewrite_connect(&p, &t);
            }
        }
    }

    #[test]
    fn may_be_connect_is_a_cheap_prefilter() {
        assert!(may_be_connect(br#"40{"sid":"a"}"#));
        assert!(may_be_connect(br#"40/chat,{"sid":"a"}"#));
        assert!(!may_be_connect(b"40"));
        assert!(!may_be_connect(b"42[]"));
    }
}
