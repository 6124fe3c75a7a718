//! The MySQL source over TLS against the MariaDB test server, which offers TLS with
//! `tests/data/test-server.pem` (`tests/mysql/start.sh`; `bash .ci/test` starts it):
//! trusted roots, an untrusted CA, unusable PEM text.
#![cfg(all(feature = "mysql", feature = "tls"))]

mod common;

use cdp_rows::Value;
use cdp_source::{MysqlOptions, MysqlSource, Source, SourceError};
use common::mysql::{mysql_password, mysql_url};
use common::read_ok;

const TEST_CA: &[u8] = include_bytes!("data/test-ca.pem");
const OTHER_CA: &[u8] = include_bytes!("data/other-ca.pem");

fn source(url: &str, roots: &[u8]) -> MysqlSource {
    let options = MysqlOptions::new().password(mysql_password()).tls_root_certificates_pem(roots.to_vec());
    MysqlSource::new("test-mysql-tls", url, options).expect("valid TLS settings")
}

#[tokio::test]
async fn queries_run_over_tls_when_the_server_certificate_is_trusted() {
    let source = source(&mysql_url(), TEST_CA);
    assert!(format!("{source:?}").contains("tls: true"));
    let mut stream = source
        .query(
            "SELECT VARIABLE_VALUE AS version FROM information_schema.SESSION_STATUS \
             WHERE VARIABLE_NAME = 'Ssl_version'",
        )
        .await
        .unwrap();
    let rows = read_ok(&mut stream).await;
    let [Value::Text(version)] = rows[0].as_slice() else { panic!("{rows:?}") };
    assert!(version.starts_with("TLSv1."), "the session is not encrypted: {version:?}");
}

#[tokio::test]
async fn an_untrusted_certificate_is_a_connect_error() {
    let error = source(&mysql_url(), OTHER_CA).check().await.unwrap_err();
    assert!(matches!(error, SourceError::Connect { .. }), "{error:?}");
    assert!(error.to_string().contains("UnknownIssuer"), "{error}");
}

#[test]
fn unusable_roots_are_config_errors() {
    for pem in
        [&b""[..], b"not a certificate", b"-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n"]
    {
        let options = MysqlOptions::new().tls_root_certificates_pem(pem.to_vec());
        let error = MysqlSource::new("test-mysql-tls", "mysql://cdp@127.0.0.1/x", options).unwrap_err();
        assert!(matches!(error, SourceError::Config { .. }), "{error:?}");
        assert!(error.to_string().starts_with("source `test-mysql-tls`: invalid configuration: "), "{error}");
    }
}
