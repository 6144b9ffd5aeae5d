//! Abuse limits, both off by default: a per-client-IP handshake rate and a per-socket
//! event rate, each a token bucket (GCRA, from the `governor` crate).
//!
//! - **Handshakes** (`SIO_HANDSHAKE_RATE`, `SIO_HANDSHAKE_BURST`): new Engine.IO sessions
//!   per client IP. Over the limit, the handshake is answered `429 Too Many Requests`,
//!   `Retry-After: <s>`, body `{"code":4,"message":"Too many handshakes from this address"}`
//!   (Node's engine.io refuses a handshake it does not allow with code 4; the status says
//!   why). Only handshakes count: the requests of an open session (polls, the upgrade)
//!   never do, so a session forwarded between nodes is never counted twice (and
//!   handshakes are never forwarded).
//! - **Client IP**: the TCP peer address. `X-Forwarded-For` is believed only when the
//!   peer is in `SIO_TRUSTED_PROXIES` (IPs or CIDRs, e.g. the ingress): then the client
//!   is the right-most address in the header that is not itself a trusted proxy.
//! - **Events** (`SIO_EVENT_RATE`, `SIO_EVENT_BURST`): events per second per socket (one
//!   namespace connection). An event over the limit is not carried out: its ack (when
//!   the client asked for one) is `{ok:false,error:"rate limit exceeded: ..."}`, and the
//!   first refusal of a streak also sends the client an `error` event
//!   `{code:"rate_limited",message}`. After [`EVENT_STRIKES_BEFORE_DISCONNECT`] refused
//!   events in a row the socket is disconnected (`io server disconnect`: the client does
//!   not reconnect on its own).
//!
//! ```
//! use sio_server::limits::{RateLimit, client_ip};
//!
//! let limit = RateLimit::new(2.0, 2).unwrap();
//! let bucket = limit.socket_bucket();
//! assert!(bucket.admit().is_ok());
//! assert!(bucket.admit().is_ok());
//! assert!(bucket.admit().is_err()); // the burst of 2 is spent
//!
//! let peer = "10.0.0.5".parse().unwrap();
//! let trusted = vec!["10.0.0.0/8".parse().unwrap()];
//! let mut headers = axum::http::HeaderMap::new();
//! headers.insert("x-forwarded-for", "203.0.113.9, 10.0.0.7".parse().unwrap());
//! assert_eq!(client_ip(peer, &headers, &trusted).to_string(), "203.0.113.9");
//! assert_eq!(client_ip(peer, &headers, &[]).to_string(), "10.0.0.5");
//! ```

use std::fmt;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use axum::http::HeaderMap;
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultDirectRateLimiter, DefaultKeyedRateLimiter, Quota, RateLimiter};
use ipnet::IpNet;

/// Refused events in a row after which a socket is disconnected.
pub const EVENT_STRIKES_BEFORE_DISCONNECT: u32 = 50;

/// Client IPs remembered by the handshake limiter before idle ones are dropped.
const KEYS_BEFORE_CLEANUP: usize = 10_000;
/// The cleanup (a pass over every key) runs at most once per this many handshakes, so a
/// flood from many addresses cannot make every handshake pay for it.
const CLEANUP_EVERY: u64 = 1024;

/// A token bucket: `per_second` tokens refill per second, at most `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateLimit {
    /// Sustained rate, per second (may be below 1: 0.5 = one every 2 s).
    pub per_second: f64,
    /// Largest burst allowed at once.
    pub burst: u32,
}

impl fmt::Display for RateLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/s burst {}", self.per_second, self.burst)
    }
}

impl RateLimit {
    /// A limit of `per_second` (finite, > 0, at most 1,000,000) with `burst` (≥ 1);
    /// `None` when out of range.
    pub fn new(per_second: f64, burst: u32) -> Option<Self> {
        let ok = per_second.is_finite() && per_second > 0.0 && per_second <= 1_000_000.0;
        (ok && burst >= 1).then_some(Self { per_second, burst })
    }

    fn quota(&self) -> Quota {
        let period = Duration::from_secs_f64(1.0 / self.per_second).max(Duration::from_nanos(1));
        let burst = NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN);
        // `with_period` is `None` only for a zero period, excluded by the `max` above.
        Quota::with_period(period)
            .unwrap_or_else(|| Quota::per_second(NonZeroU32::MIN))
            .allow_burst(burst)
    }

    /// A fresh bucket for one socket.
    pub fn socket_bucket(&self) -> EventBucket {
        EventBucket {
            limiter: Arc::new(RateLimiter::direct(self.quota())),
            strikes: Arc::new(AtomicU32::new(0)),
            limit: *self,
        }
    }
}

/// The per-IP handshake limiter of a node.
pub struct HandshakeLimiter {
    limiter: DefaultKeyedRateLimiter<IpAddr>,
    trusted: Vec<IpNet>,
    seen: AtomicU64,
}

impl HandshakeLimiter {
    /// A limiter allowing `limit` handshakes per client IP; `trusted` proxies'
    /// `X-Forwarded-For` is believed.
    pub fn new(limit: RateLimit, trusted: Vec<IpNet>) -> Self {
        Self {
            limiter: RateLimiter::dashmap(limit.quota()),
            trusted,
            seen: AtomicU64::new(0),
        }
    }

    /// Counts one handshake from `peer` (with the request's `headers`). `Err` carries
    /// how long the client should wait.
    pub fn admit(&self, peer: IpAddr, headers: &HeaderMap) -> Result<(), Duration> {
        let ip = client_ip(peer, headers, &self.trusted);
        let seen = self.seen.fetch_add(1, Ordering::Relaxed);
        if seen.is_multiple_of(CLEANUP_EVERY) && self.limiter.len() > KEYS_BEFORE_CLEANUP {
            self.limiter.retain_recent();
            self.limiter.shrink_to_fit();
        }
        self.limiter
            .check_key(&ip)
            .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
    }
}

/// The client address of a request: the TCP `peer`, or, when the peer is a trusted
/// proxy, the right-most `X-Forwarded-For` entry that is not a trusted proxy.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    let hops = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
        match hop.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A malformed entry: nothing left of it can be believed.
            Err(_) => break,
        }
    }
    client
}

/// One socket's event bucket, kept in the socket's extensions. Cheap to clone.
#[derive(Clone)]
pub struct EventBucket {
    limiter: Arc<DefaultDirectRateLimiter>,
    strikes: Arc<AtomicU32>,
    limit: RateLimit,
}

/// An event refused by an [`EventBucket`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// Refused events in a row, this one included.
    pub strikes: u32,
    /// The message for the client.
    pub message: String,
}

impl Refused {
    /// Whether this is the first refusal of a streak (the client is told once).
    pub fn is_first(&self) -> bool {
        self.strikes == 1
    }

    /// Whether the socket should now be disconnected (once: at exactly
    /// [`EVENT_STRIKES_BEFORE_DISCONNECT`]; events already in flight after it are still
    /// refused).
    pub fn disconnect(&self) -> bool {
        self.strikes == EVENT_STRIKES_BEFORE_DISCONNECT
    }
}

impl EventBucket {
    /// Takes a token for one event, or says why not.
    pub fn admit(&self) -> Result<(), Refused> {
        match self.limiter.check() {
            Ok(()) => {
                self.strikes.store(0, Ordering::Relaxed);
                Ok(())
            }
            Err(_) => {
                let strikes = self
                    .strikes
                    .fetch_add(1, Ordering::Relaxed)
                    .saturating_add(1);
                Err(Refused {
                    strikes,
                    message: format!("rate limit exceeded: at most {} events", self.limit),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_limits_are_refused() {
        assert!(RateLimit::new(0.0, 1).is_none());
        assert!(RateLimit::new(-1.0, 1).is_none());
        assert!(RateLimit::new(f64::NAN, 1).is_none());
        assert!(RateLimit::new(1.0, 0).is_none());
        assert!(RateLimit::new(0.5, 1).is_some());
    }

    #[test]
    fn bucket_refuses_after_burst_and_counts_strikes() {
        let b = RateLimit::new(0.001, 3).unwrap().socket_bucket();
        for _ in 0..3 {
            assert!(b.admit().is_ok());
        }
        let first = b.admit().unwrap_err();
        assert!(first.is_first());
        assert!(first.message.contains("rate limit exceeded"), "{first:?}");
        let mut last = first;
        for _ in 1..EVENT_STRIKES_BEFORE_DISCONNECT {
            last = b.admit().unwrap_err();
        }
        assert!(last.disconnect());
    }

    #[test]
    fn handshake_limit_is_per_ip() {
        let l = HandshakeLimiter::new(RateLimit::new(0.001, 2).unwrap(), vec![]);
        let h = HeaderMap::new();
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(l.admit(a, &h).is_ok());
        assert!(l.admit(a, &h).is_ok());
        let wait = l.admit(a, &h).unwrap_err();
        assert!(wait > Duration::from_secs(1), "{wait:?}");
        assert!(l.admit(b, &h).is_ok());
    }

    #[test]
    fn forwarded_for_is_believed_only_from_trusted_proxies() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap()];
        let mut h = HeaderMap::new();
        // a client forging its own header in front of the real chain
        h.insert(
            "x-forwarded-for",
            "1.1.1.1, 203.0.113.9, 10.1.1.1".parse().unwrap(),
        );
        let proxy: IpAddr = "10.0.0.2".parse().unwrap();
        assert_eq!(client_ip(proxy, &h, &trusted).to_string(), "203.0.113.9");
        let direct: IpAddr = "198.51.100.7".parse().unwrap();
        assert_eq!(client_ip(direct, &h, &trusted), direct);
        h.insert("x-forwarded-for", "garbage".parse().unwrap());
        assert_eq!(client_ip(proxy, &h, &trusted), proxy);
        assert_eq!(client_ip(proxy, &HeaderMap::new(), &trusted), proxy);
    }
}
