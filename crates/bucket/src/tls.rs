//! The TLS crypto provider for the cloud stores' HTTP client.

/// Installs rustls' `ring` provider as the process default, unless a provider is
/// installed already (by the application, or an earlier call). The cloud stores'
/// HTTP client (reqwest, built without a provider of its own to keep the build lean)
/// uses the process default.
pub(crate) fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}
