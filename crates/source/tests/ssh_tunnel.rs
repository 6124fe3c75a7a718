//! SSH tunnels against a real OpenSSH server (`tests/ssh/start.sh`, started by `bash
//! .ci/test`, which sets `CDP_TEST_SSH_*`) and the PostgreSQL test server: forwarding,
//! each failing step as `check` reports it, key rotation, secrets kept out of output.
#![cfg(feature = "ssh")]

mod common;
#[path = "ssh/support.rs"]
mod support;

use std::time::Duration;

use cdp_rows::Value;
use cdp_source::tunnel::{SshConfig, Tunnel, TunnelError};
use cdp_source::{CheckStep, PostgresOptions, PostgresSource, Source, SourceError};
use common::{admin, postgres_url, read_ok};
use support::{new_key, server};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The PostgreSQL source through a tunnel with `ssh`, for `url`.
fn tunnelled(url: &str, options: PostgresOptions, ssh: SshConfig) -> PostgresSource {
    PostgresSource::new("pg-ssh", url, options.ssh_tunnel(ssh)).unwrap()
}

/// `check` fails; its error and step.
async fn check_fails(source: &PostgresSource) -> (SourceError, CheckStep) {
    let error = source.check().await.expect_err("the check fails");
    let step = error.check_step();
    (error, step)
}

#[tokio::test]
async fn queries_run_through_the_tunnel() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);

    let source = tunnelled(&postgres_url(), PostgresOptions::new(), ssh.config(&key.private_key_path));
    source.check().await.unwrap();
    // The server sees the connection coming from the SSH server (loopback here),
    // with our application name.
    let mut rows = source
        .query("SELECT g AS n, current_setting('application_name') AS app FROM generate_series(1, 3) AS g")
        .await
        .unwrap();
    let rows = read_ok(&mut rows).await;
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[2][0], Value::Int(3));
    assert_eq!(rows[0][1], Value::from("cdp-warehouse"));
    assert!(
        source.target().ends_with(&format!(" via SSH {}@{}:{}", ssh.user, ssh.host, ssh.port)),
        "{source}"
    );

    // Several queries at once: each its own tunnel and connection.
    let (a, b) = tokio::join!(source.query("SELECT 1 AS one"), source.query("SELECT 2 AS two"));
    assert_eq!(read_ok(&mut a.unwrap()).await[0][0], Value::Int(1));
    assert_eq!(read_ok(&mut b.unwrap()).await[0][0], Value::Int(2));

    // Dropping a stream mid-query cancels it through the tunnel: the backend goes.
    let admin = admin().await;
    let mut stream = source
        .query("SELECT g, 'ssh_drop_marker' AS marker FROM generate_series(1, 50000000) g")
        .await
        .unwrap();
    assert!(stream.next().await.unwrap().is_ok());
    let running = "SELECT 1 FROM pg_stat_activity WHERE query LIKE '%ssh_drop_marker%' \
                   AND query NOT LIKE '%pg_stat_activity%'";
    assert!(eventually(&admin, running, true).await, "the query runs while the stream is held");
    drop(stream);
    assert!(eventually(&admin, running, false).await, "the backend went away after the stream was dropped");
}

/// Waits up to 10 seconds for `sql` (on the admin connection) to return rows (or none).
async fn eventually(client: &tokio_postgres::Client, sql: &str, rows: bool) -> bool {
    for _ in 0..200 {
        if client.query(sql, &[]).await.unwrap().is_empty() != rows {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test]
async fn a_tunnel_forwards_any_tcp_connection_and_closes_when_dropped() {
    // What a MySQL source (or any driver given a host and port) does with a tunnel:
    // an echo server stands in for the database.
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);
    let echo = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let echo_port = echo.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = echo.accept().await {
            tokio::spawn(async move {
                let (mut r, mut w) = socket.split();
                let _ = tokio::io::copy(&mut r, &mut w).await;
            });
        }
    });

    let tunnel = Tunnel::open(&ssh.config(&key.private_key_path), "127.0.0.1", echo_port).await.unwrap();
    assert!(tunnel.local_addr().ip().is_loopback());
    assert_eq!(tunnel.target(), format!("127.0.0.1:{echo_port}"));
    // The first connection takes the channel opened by `open`; later ones open their
    // own; a large payload crosses both ways.
    let payload: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    for _ in 0..3 {
        let mut socket = tokio::net::TcpStream::connect(tunnel.local_addr()).await.unwrap();
        let (mut r, mut w) = socket.split();
        let send = async {
            w.write_all(&payload).await.unwrap();
            w.shutdown().await.unwrap();
        };
        let mut back = Vec::new();
        let receive = r.read_to_end(&mut back);
        let ((), read) = tokio::join!(send, receive);
        read.unwrap();
        assert_eq!(back.len(), payload.len());
        assert!(back == payload);
    }
    assert!(!tunnel.is_closed());
    assert!(format!("{tunnel:?}").contains("Tunnel"));

    let local = tunnel.local_addr();
    drop(tunnel);
    let refused = async {
        for _ in 0..50 {
            if tokio::net::TcpStream::connect(local).await.is_err() {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        false
    };
    assert!(refused.await, "the local port closes with the tunnel");
}

#[tokio::test]
async fn a_host_key_that_does_not_match_is_refused_naming_both_fingerprints() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);
    // Any other key's fingerprint: this one's.
    let configured = key.fingerprint.clone();
    let config =
        SshConfig::new(&ssh.host, &ssh.user, &key.private_key_path, &configured).unwrap().with_port(ssh.port);
    let source = tunnelled(&postgres_url(), PostgresOptions::new(), config);
    let (error, step) = check_fails(&source).await;
    assert_eq!(step, CheckStep::SshHostKey, "{error}");
    let text = error.to_string();
    assert!(text.starts_with("source `pg-ssh`: SSH tunnel: the SSH server 127.0.0.1:"), "{text}");
    assert!(text.contains(&format!("showed the host key {}", ssh.host_key)), "{text}");
    assert!(text.contains(&format!("not the configured {configured}")), "{text}");
    let SourceError::Tunnel { error: tunnel_error, .. } = &error else { panic!("{error:?}") };
    match &**tunnel_error {
        TunnelError::HostKey { presented, expected, .. } => {
            assert_eq!((presented.as_str(), expected.as_str()), (ssh.host_key.as_str(), configured.as_str()));
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn a_key_not_in_authorized_keys_is_an_ssh_login_failure() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "never_authorized");
    let source = tunnelled(&postgres_url(), PostgresOptions::new(), ssh.config(&key.private_key_path));
    let (error, step) = check_fails(&source).await;
    assert_eq!(step, CheckStep::SshLogin, "{error}");
    let text = error.to_string();
    assert!(
        text.contains(&format!("refused the login as `{}` with the key {}", ssh.user, key.fingerprint)),
        "{text}"
    );
    assert!(text.contains("authorized_keys"), "{text}");
}

#[tokio::test]
async fn an_unreachable_ssh_server_is_an_ssh_connection_failure() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    let closed = support::free_port();
    let config = SshConfig::new("127.0.0.1", &ssh.user, &key.private_key_path, &ssh.host_key)
        .unwrap()
        .with_port(closed);
    let source = tunnelled(&postgres_url(), PostgresOptions::new(), config);
    let (error, step) = check_fails(&source).await;
    assert_eq!(step, CheckStep::SshConnection, "{error}");
    assert!(
        error.to_string().contains(&format!("cannot reach the SSH server 127.0.0.1:{closed}")),
        "{error}"
    );

    // Something that is not an SSH server (it closes at once) fails at the same step.
    let not_ssh = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = not_ssh.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = not_ssh.accept().await {
            let _ = socket.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n").await;
        }
    });
    let config = SshConfig::new("127.0.0.1", &ssh.user, &key.private_key_path, &ssh.host_key)
        .unwrap()
        .with_port(port)
        .with_connect_timeout(Duration::from_secs(3));
    let source = tunnelled(&postgres_url(), PostgresOptions::new(), config);
    let (error, step) = check_fails(&source).await;
    assert_eq!(step, CheckStep::SshConnection, "{error}");
}

#[tokio::test]
async fn a_database_the_ssh_server_cannot_reach_is_an_ssh_forwarding_failure() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);
    let closed = support::free_port();
    let url = format!("postgres://cdp@127.0.0.1:{closed}/cdp_test");
    let source = tunnelled(&url, PostgresOptions::new(), ssh.config(&key.private_key_path));
    let (error, step) = check_fails(&source).await;
    assert_eq!(step, CheckStep::SshForwarding, "{error}");
    assert!(error.to_string().contains(&format!("could not connect to 127.0.0.1:{closed}")), "{error}");
}

/// Gives the role `ssh_pw_user` a password and makes the server ask for it over TCP
/// (a `scram-sha-256` line for that role only, first in `pg_hba.conf`; as
/// `tests/postgres_source.rs` does for its own role).
async fn password_protected_role(admin: &tokio_postgres::Client) {
    admin
        .batch_execute(
            "DO $$ BEGIN
                 IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'ssh_pw_user') THEN
                     CREATE ROLE ssh_pw_user LOGIN;
                 END IF;
             END $$;
             SET password_encryption = 'scram-sha-256';
             ALTER ROLE ssh_pw_user PASSWORD 'right-tunnel-battery';",
        )
        .await
        .unwrap();
    let line = "host all ssh_pw_user 127.0.0.1/32 scram-sha-256";
    let (file, hba): (String, String) = admin
        .query_one("SELECT current_setting('hba_file'), pg_read_file(current_setting('hba_file'))", &[])
        .await
        .map(|row| (row.get(0), row.get(1)))
        .unwrap();
    if !hba.lines().any(|l| l == line) {
        // COPY writes one row per line, escaping only tabs and backslashes, which the
        // file must not hold; the content is read first (COPY empties the file).
        assert!(!hba.contains('\t') && !hba.contains('\\'), "pg_hba.conf has tabs or backslashes");
        let quote = |s: &str| format!("'{}'", s.replace('\'', "''"));
        let lines: Vec<String> = std::iter::once(line).chain(hba.lines()).map(quote).collect();
        let sql = format!(
            "COPY (SELECT l FROM unnest(ARRAY[{}]::text[]) WITH ORDINALITY AS x(l, n) ORDER BY n) TO {}",
            lines.join(", "),
            quote(&file)
        );
        admin.batch_execute(&sql).await.unwrap();
    }
    admin.batch_execute("SELECT pg_reload_conf()").await.unwrap();
}

#[tokio::test]
async fn a_wrong_database_password_is_a_database_login_failure_and_never_shows() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    ssh.authorize(&key);
    let admin = admin().await;
    password_protected_role(&admin).await;
    let url = postgres_url().replacen("postgres://cdp@", "postgres://ssh_pw_user@", 1);
    assert_ne!(url, postgres_url(), "the test URL has the form postgres://cdp@host:port/db");

    let secret = "wrong-tunnel-secret";
    let source = tunnelled(&url, PostgresOptions::new().password(secret), ssh.config(&key.private_key_path));
    // Wait for the reload: until then the server lets the role in without a password.
    let mut failure = None;
    for _ in 0..100 {
        match source.check().await {
            Err(e) => {
                failure = Some(e);
                break;
            }
            Ok(()) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
    let error = failure.expect("the server asks ssh_pw_user for a password");
    assert_eq!(error.check_step(), CheckStep::DatabaseLogin, "{error}");
    assert!(matches!(error, SourceError::Login { .. }), "{error:?}");
    let text = error.to_string();
    assert!(text.contains("the database refused the login") && text.contains("28P01"), "{text}");
    for shown in [text, format!("{error:?}"), format!("{source:?}"), source.to_string()] {
        assert!(!shown.contains(secret), "the password shows in: {shown}");
    }

    let source = tunnelled(
        &url,
        PostgresOptions::new().password("right-tunnel-battery"),
        ssh.config(&key.private_key_path),
    );
    source.check().await.unwrap();
}

#[tokio::test]
async fn rotating_the_key() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let old = new_key(dir.path(), "old");
    ssh.authorize(&old);
    let source = |key: &std::path::Path| tunnelled(&postgres_url(), PostgresOptions::new(), ssh.config(key));
    source(&old.private_key_path).check().await.unwrap();

    // A new key, added to authorized_keys, the source pointed at it: the check passes.
    let new = new_key(dir.path(), "new");
    assert_ne!(new.fingerprint, old.fingerprint);
    let before_authorizing = source(&new.private_key_path).check().await.unwrap_err();
    assert_eq!(before_authorizing.check_step(), CheckStep::SshLogin, "{before_authorizing}");
    ssh.authorize(&new);
    source(&new.private_key_path).check().await.unwrap();

    // The old key taken out of authorized_keys no longer logs in; the new one does.
    ssh.revoke(&old);
    let error = source(&old.private_key_path).check().await.unwrap_err();
    assert_eq!(error.check_step(), CheckStep::SshLogin, "{error}");
    assert!(error.to_string().contains(&old.fingerprint), "{error}");
    source(&new.private_key_path).check().await.unwrap();
}

#[tokio::test]
async fn unusable_settings_are_refused_before_connecting_without_showing_the_key() {
    let ssh = server();
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    let private = std::fs::read_to_string(&key.private_key_path).unwrap();
    let body: String = private.lines().nth(1).unwrap().to_owned();

    // A missing key file, a Unix socket or several hosts: configuration errors.
    let missing = PostgresSource::new(
        "pg-ssh",
        &postgres_url(),
        PostgresOptions::new().ssh_tunnel(ssh.config(&dir.path().join("missing"))),
    )
    .unwrap_err();
    assert_eq!(missing.check_step(), CheckStep::Configuration, "{missing}");
    assert!(missing.to_string().contains("missing: cannot read it"), "{missing}");
    for url in ["host=/run/postgresql user=cdp", "host=a,b user=cdp"] {
        let error = PostgresSource::new(
            "pg-ssh",
            url,
            PostgresOptions::new().ssh_tunnel(ssh.config(&key.private_key_path)),
        )
        .unwrap_err();
        assert!(matches!(error, SourceError::Config { .. }), "{error:?}");
    }
    // An encrypted key: refused, saying why.
    let encrypted = dir.path().join("encrypted");
    let status = std::process::Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "a-passphrase", "-f"])
        .arg(&encrypted)
        .status()
        .unwrap();
    assert!(status.success());
    let error = ssh.config(&encrypted).key_fingerprint().unwrap_err();
    assert!(error.to_string().contains("encrypted with a passphrase"), "{error}");

    // Nothing shows the key: not the options, the source, nor an error.
    let options = PostgresOptions::new().ssh_tunnel(ssh.config(&key.private_key_path));
    let source = PostgresSource::new("pg-ssh", &postgres_url(), options.clone()).unwrap();
    let unauthorized = source.check().await.unwrap_err();
    for shown in [
        format!("{options:?}"),
        format!("{source:?}"),
        source.to_string(),
        unauthorized.to_string(),
        format!("{unauthorized:?}"),
    ] {
        assert!(!shown.contains(&body) && !shown.contains("PRIVATE KEY"), "the key shows in: {shown}");
    }
}

#[test]
fn generated_keys_are_read_by_openssh() {
    let dir = tempfile::tempdir().unwrap();
    let key = new_key(dir.path(), "id_ed25519");
    let output = std::process::Command::new("ssh-keygen")
        .arg("-y")
        .arg("-f")
        .arg(&key.private_key_path)
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    assert_eq!(String::from_utf8(output.stdout).unwrap().trim_end(), key.authorized_keys_line);
    let output = std::process::Command::new("ssh-keygen")
        .args(["-l", "-E", "sha256", "-f"])
        .arg(&key.public_key_path)
        .output()
        .unwrap();
    let printed = String::from_utf8(output.stdout).unwrap();
    assert_eq!(printed.split_whitespace().nth(1), Some(key.fingerprint.as_str()), "{printed}");
}
