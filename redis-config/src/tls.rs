//! TLS to Redis (`rediss://`) with a private CA: the server's certificate must chain to
//! the certificates of a PEM file instead of the system's roots. The node
//! (`SIO_REDIS_CA_FILE`) and the emitter (`sio-emit --redis-ca-file`) share this.
//!
//! ```no_run
//! # fn demo() -> Result<(), sio_redis_config::tls::TlsError> {
//! let mut config = fred::types::config::Config::from_url("rediss://redis.internal:6379").unwrap();
//! sio_redis_config::tls::trust_ca_file(&mut config, std::path::Path::new("/etc/redis-ca.pem"))?;
//! # Ok(()) }
//! ```

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;

/// Why a CA file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// The file cannot be read or holds no PEM certificate.
    #[error("{path}: {reason}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        reason: String,
    },
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Reads every certificate of a PEM file (at least one).
pub fn load_ca_file(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let fail = |reason: String| TlsError::CaFile {
        path: path.display().to_string(),
        reason,
    };
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| fail(format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| fail(format!("not PEM: {e}")))?;
    if certs.is_empty() {
        return Err(fail("no CERTIFICATE block".into()));
    }
    Ok(certs)
}

/// A rustls client configuration (ring provider) trusting exactly the CAs in `path`.
pub fn client_config(path: &Path) -> Result<rustls::ClientConfig, TlsError> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in load_ca_file(path)? {
        roots.add(cert)?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Makes `config` verify the server against the CAs in `path` (the URL must be
/// `rediss://`; fred derives the TLS server name from its host).
pub fn trust_ca_file(
    config: &mut fred::types::config::Config,
    path: &Path,
) -> Result<(), TlsError> {
    let tls = fred::types::config::TlsConnector::from(client_config(path)?);
    config.tls = Some(tls.into());
    Ok(())
}
