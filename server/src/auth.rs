//! JWT authentication of the Socket.IO handshake (`auth.token`).
//!
//! One algorithm is accepted per node, fixed by configuration: HS256 with a shared
//! secret, or RS256 with a public key. A token signed any other way (`alg: none`,
//! HS256 signed with the RSA public key, ...) is rejected. `exp` and `nbf` are checked
//! when present (60 s leeway).
//!
//! ```
//! use jsonwebtoken::{encode, EncodingKey, Header};
//! use sio_server::auth::JwtVerifier;
//!
//! let token = encode(
//!     &Header::default(),
//!     &serde_json::json!({"sub": "alice", "rooms": ["team:*"]}),
//!     &EncodingKey::from_secret(b"s3cret"),
//! )
//! .unwrap();
//! let claims = JwtVerifier::hs256(b"s3cret").unwrap().verify(&token).unwrap();
//! assert_eq!(claims.sub.as_deref(), Some("alice"));
//! assert!(claims.rooms.matches("team:red"));
//! ```

use std::path::Path;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde::Deserialize;

use crate::patterns::RoomPatterns;

/// Why a token or key was refused. The message is safe to show a client.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// The handshake carried no `auth.token`.
    #[error("authentication required: send auth.token")]
    Missing,
    /// The token failed verification.
    #[error("invalid token: {0}")]
    Invalid(String),
    /// The token's `rooms` claim is not a list of valid patterns.
    #[error("invalid token: bad rooms claim: {0}")]
    Rooms(String),
    /// The configured key cannot be used.
    #[error("{0}")]
    Key(String),
}

/// The claims this node uses; other claims are ignored.
#[derive(Debug, Clone)]
pub struct Claims {
    /// The subject: a socket with one joins `user:<sub>`.
    pub sub: Option<String>,
    /// Rooms the socket may `join` (globs from the `rooms` claim; none when absent).
    pub rooms: RoomPatterns,
}

#[derive(Deserialize)]
struct RawClaims {
    sub: Option<serde_json::Value>,
    #[serde(default)]
    rooms: Option<Vec<String>>,
}

/// Verifies handshake tokens with the node's configured key.
#[derive(Clone)]
pub struct JwtVerifier {
    key: DecodingKey,
    validation: Validation,
}

impl JwtVerifier {
    /// A verifier for HS256 tokens signed with `secret`.
    pub fn hs256(secret: &[u8]) -> Result<Self, AuthError> {
        if secret.is_empty() {
            return Err(AuthError::Key("JWT secret is empty".into()));
        }
        Ok(Self::new(
            DecodingKey::from_secret(secret),
            Algorithm::HS256,
        ))
    }

    /// A verifier for RS256 tokens; `pem_or_path` is PEM text or the path of a PEM file.
    pub fn rs256_from_pem_or_path(pem_or_path: &str) -> Result<Self, AuthError> {
        let pem = if pem_or_path.trim_start().starts_with("-----BEGIN") {
            pem_or_path.as_bytes().to_vec()
        } else {
            std::fs::read(Path::new(pem_or_path)).map_err(|e| {
                AuthError::Key(format!("cannot read public key file {pem_or_path:?}: {e}"))
            })?
        };
        let key = DecodingKey::from_rsa_pem(&pem)
            .map_err(|e| AuthError::Key(format!("not an RSA public key in PEM form: {e}")))?;
        Ok(Self::new(key, Algorithm::RS256))
    }

    fn new(key: DecodingKey, alg: Algorithm) -> Self {
        let mut validation = Validation::new(alg);
        validation.required_spec_claims.clear();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.validate_aud = false;
        Self { key, validation }
    }

    /// A short description for the start-up log, without key material.
    pub fn describe(&self) -> String {
        format!("jwt {:?}", self.validation.algorithms[0])
    }

    /// Checks the signature and time claims and extracts [`Claims`].
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let data = decode::<RawClaims>(token, &self.key, &self.validation)
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let sub = match data.claims.sub {
            None | Some(serde_json::Value::Null) => None,
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(s),
            Some(serde_json::Value::Number(n)) => Some(n.to_string()),
            Some(_) => return Err(AuthError::Invalid("sub must be a string".into())),
        };
        let rooms = match data.claims.rooms {
            Some(list) => RoomPatterns::new(list).map_err(|e| AuthError::Rooms(e.to_string()))?,
            None => RoomPatterns::none(),
        };
        Ok(Claims { sub, rooms })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    fn hs(claims: serde_json::Value, secret: &[u8]) -> String {
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(secret),
        )
        .unwrap()
    }

    fn now() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
    }

    #[test]
    fn valid_token_yields_sub_and_rooms() {
        let v = JwtVerifier::hs256(b"k").unwrap();
        let c = v
            .verify(&hs(
                json!({"sub": "u1", "rooms": ["a:*"], "exp": now() + 60}),
                b"k",
            ))
            .unwrap();
        assert_eq!(c.sub.as_deref(), Some("u1"));
        assert!(c.rooms.matches("a:b"));
        assert!(!c.rooms.matches("b"));
    }

    #[test]
    fn numeric_sub_becomes_a_string() {
        let v = JwtVerifier::hs256(b"k").unwrap();
        let c = v.verify(&hs(json!({"sub": 42}), b"k")).unwrap();
        assert_eq!(c.sub.as_deref(), Some("42"));
    }

    #[test]
    fn wrong_secret_expired_and_future_tokens_are_rejected() {
        let v = JwtVerifier::hs256(b"k").unwrap();
        assert!(v.verify(&hs(json!({"sub": "u"}), b"other")).is_err());
        assert!(v.verify(&hs(json!({"exp": now() - 3600}), b"k")).is_err());
        assert!(v.verify(&hs(json!({"nbf": now() + 3600}), b"k")).is_err());
        assert!(v.verify("not.a.token").is_err());
        assert!(v.verify("").is_err());
    }

    #[test]
    fn alg_none_is_rejected() {
        let v = JwtVerifier::hs256(b"k").unwrap();
        // header {"alg":"none","typ":"JWT"}, payload {"sub":"x"}, empty signature
        let token = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJ4In0.";
        let err = v.verify(token).unwrap_err();
        assert!(matches!(err, AuthError::Invalid(_)));
    }

    #[test]
    fn bad_rooms_claim_is_rejected() {
        let v = JwtVerifier::hs256(b"k").unwrap();
        let err = v.verify(&hs(json!({"rooms": ["x["]}), b"k")).unwrap_err();
        assert!(err.to_string().contains("rooms"), "{err}");
        assert!(v.verify(&hs(json!({"rooms": "x"}), b"k")).is_err());
    }

    #[test]
    fn empty_secret_and_bad_pem_are_config_errors() {
        assert!(JwtVerifier::hs256(b"").is_err());
        assert!(
            JwtVerifier::rs256_from_pem_or_path(
                "-----BEGIN PUBLIC KEY-----\nxx\n-----END PUBLIC KEY-----"
            )
            .is_err()
        );
        let err = JwtVerifier::rs256_from_pem_or_path("/no/such/key.pem")
            .err()
            .unwrap();
        assert!(err.to_string().contains("/no/such/key.pem"));
    }
}
