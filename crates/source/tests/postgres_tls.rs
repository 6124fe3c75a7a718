//! TLS with rustls (the `tls` feature), against the test server. The server under
//! `bash .ci/test` does not offer TLS; one started with `ssl=on` and the certificate in
//! `tests/data` (see its README) does. Each test asserts what must happen in either
//! case: nothing is skipped.
#![cfg(feature = "tls")]

mod common;

use cdp_rows::Value;
use cdp_source::{PostgresOptions, PostgresSource, PostgresTls, Source, SourceError};
use common::{admin, postgres_url, read_ok};

/// Whether the test server offers TLS.
async fn server_offers_tls() -> bool {
    let ssl: String = admin().await.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    ssl == "on"
}

fn with_sslmode(mode: &str) -> String {
    let url = postgres_url();
    let separator = if url.contains('?') { '&' } else { '?' };
    format!("{url}{separator}sslmode={mode}")
}

fn trusted() -> PostgresTls {
    PostgresTls::with_root_certificates_pem(include_bytes!("data/test-ca.pem")).unwrap()
}

#[tokio::test]
async fn prefer_uses_tls_when_the_server_offers_it() {
    let offers = server_offers_tls().await;
    let source =
        PostgresSource::new("tls-test", &with_sslmode("prefer"), PostgresOptions::new().tls(trusted()))
            .unwrap();
    let mut stream = source.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![Value::Bool(offers)]]);
}

#[tokio::test]
async fn require_fails_clearly_without_tls_and_verifies_the_certificate() {
    let offers = server_offers_tls().await;
    let source =
        PostgresSource::new("tls-test", &with_sslmode("require"), PostgresOptions::new().tls(trusted()))
            .unwrap();
    let result = source.query("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()").await;
    if offers {
        assert_eq!(read_ok(&mut result.unwrap()).await, vec![vec![Value::Bool(true)]]);
    } else {
        let error = result.unwrap_err();
        assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
        assert!(error.to_string().contains("TLS"), "{error}");
    }

    // A certificate authority that did not sign the server's certificate.
    let untrusted = PostgresTls::with_root_certificates_pem(include_bytes!("data/other-ca.pem")).unwrap();
    let source =
        PostgresSource::new("tls-test", &with_sslmode("require"), PostgresOptions::new().tls(untrusted))
            .unwrap();
    let error = source.query("SELECT 1").await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.starts_with("source `tls-test`: cannot connect to "), "{text}");
    if offers {
        assert!(text.contains("UnknownIssuer"), "{text}");
    }
}
