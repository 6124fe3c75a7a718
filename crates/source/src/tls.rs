//! [`PostgresTls`]: TLS for PostgreSQL connections with rustls and its `ring`
//! provider (the `tls` feature).

use std::fmt;
use std::sync::Arc;

use tokio_postgres_rustls::MakeRustlsConnect;

/// TLS settings for a [`crate::PostgresSource`]: which certificate authorities to
/// trust, through a rustls client configuration.
///
/// Give it to [`crate::PostgresOptions::tls`]; the connection string's `sslmode`
/// decides whether TLS is required (`require`) or used when the server offers it
/// (`prefer`, the default). The server's certificate is always verified against the
/// trusted roots and the host name.
///
/// ```
/// use cdp_source::{PostgresOptions, PostgresSource, PostgresTls};
///
/// // The certificate authority that signed the server's certificate, e.g. the
/// // cloud provider's bundle, read from a file named in the configuration.
/// let pem = include_bytes!("../tests/data/test-ca.pem");
/// let tls = PostgresTls::with_root_certificates_pem(pem)?;
/// let source = PostgresSource::new(
///     "warehouse",
///     "postgres://etl@db.example.com/analytics?sslmode=require",
///     PostgresOptions::new().tls(tls),
/// )?;
/// assert!(format!("{source:?}").contains("tls: true"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct PostgresTls {
    connector: MakeRustlsConnect,
}

impl PostgresTls {
    /// TLS with a rustls client configuration built by the caller (for client
    /// certificates, or other roots). This exposes `rustls` 0.23 in the signature: the
    /// crate re-exports it as [`crate::rustls`].
    pub fn from_client_config(config: rustls::ClientConfig) -> PostgresTls {
        PostgresTls { connector: MakeRustlsConnect::new(config) }
    }

    /// TLS that trusts the certificate authorities in `pem` (one or more PEM
    /// `CERTIFICATE` blocks), with rustls' `ring` provider and its safe default
    /// protocol versions.
    pub fn with_root_certificates_pem(pem: &[u8]) -> Result<PostgresTls, TlsConfigError> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject;

        let mut roots = rustls::RootCertStore::empty();
        for certificate in CertificateDer::pem_slice_iter(pem) {
            let certificate = certificate
                .map_err(|e| TlsConfigError { reason: format!("cannot read the PEM certificates: {e}") })?;
            roots
                .add(certificate)
                .map_err(|e| TlsConfigError { reason: format!("cannot use a root certificate: {e}") })?;
        }
        if roots.is_empty() {
            return Err(TlsConfigError { reason: "the PEM text holds no certificate".to_owned() });
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| TlsConfigError { reason: e.to_string() })?
            .with_root_certificates(roots)
            .with_no_client_auth();
        Ok(PostgresTls::from_client_config(config))
    }

    /// The connector for one connection.
    pub(crate) fn connector(&self) -> MakeRustlsConnect {
        self.connector.clone()
    }
}

impl fmt::Debug for PostgresTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTls").finish_non_exhaustive()
    }
}

/// TLS settings that cannot be used: unreadable PEM text, no certificate in it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid TLS settings: {reason}")]
pub struct TlsConfigError {
    reason: String,
}

impl TlsConfigError {
    /// What is wrong.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pem_without_certificates_is_an_error() {
        let error = PostgresTls::with_root_certificates_pem(b"not a certificate").unwrap_err();
        assert_eq!(error.to_string(), "invalid TLS settings: the PEM text holds no certificate");
        assert!(PostgresTls::with_root_certificates_pem(include_bytes!("../tests/data/test-ca.pem")).is_ok());
    }
}
