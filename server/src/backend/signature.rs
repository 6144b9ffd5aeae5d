//! Standard Webhooks signatures (<https://www.standardwebhooks.com>) on every request to
//! the backend, so it can verify them with an off-the-shelf `standardwebhooks` library.
//!
//! The secret is given as `whsec_<base64>`: the base64 part is the HMAC key. A request
//! carries `webhook-id` (unique per request), `webhook-timestamp` (Unix seconds) and
//! `webhook-signature: v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>`.
//!
//! ```
//! use sio_server::backend::signature::WebhookSecret;
//!
//! let secret = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
//! let sig = secret.sign("msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, br#"{"test": 2432232314}"#);
//! assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
//! assert!(WebhookSecret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").is_err());
//! ```

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The prefix of a secret in Standard Webhooks form.
pub const PREFIX: &str = "whsec_";

/// A secret that is not `whsec_` followed by non-empty base64.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected whsec_ followed by the key in base64 (as standardwebhooks libraries make it)")]
pub struct SecretError;

/// The key requests to the backend are signed with.
#[derive(Clone)]
pub struct WebhookSecret {
    key: Vec<u8>,
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WebhookSecret(***)")
    }
}

impl WebhookSecret {
    /// Reads `whsec_<base64>`.
    pub fn parse(raw: &str) -> Result<Self, SecretError> {
        let b64 = raw.trim().strip_prefix(PREFIX).ok_or(SecretError)?;
        let key = STANDARD.decode(b64).map_err(|_| SecretError)?;
        if key.is_empty() {
            return Err(SecretError);
        }
        Ok(Self { key })
    }

    /// The `webhook-signature` value of `body` sent as message `id` at `timestamp`.
    pub fn sign(&self, id: &str, timestamp: u64, body: &[u8]) -> String {
        // HMAC accepts a key of any length: new_from_slice cannot fail for it.
        let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.to_string().as_bytes());
        mac.update(b".");
        mac.update(body);
        format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_must_be_whsec_base64() {
        for bad in [
            "",
            "whsec_",
            "whsec_!!!",
            "abc",
            "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        ] {
            assert_eq!(
                WebhookSecret::parse(bad).map(|_| ()),
                Err(SecretError),
                "{bad:?}"
            );
        }
        assert!(WebhookSecret::parse(" whsec_c2VjcmV0 ").is_ok());
        assert_eq!(
            format!("{:?}", WebhookSecret::parse("whsec_c2VjcmV0").unwrap()),
            "WebhookSecret(***)"
        );
    }
}
