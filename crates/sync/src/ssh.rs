//! `[sources.NAME.ssh]`: the SSH tunnel a PostgreSQL (or MySQL) source connects
//! through.

use std::path::PathBuf;

use serde::Deserialize;

use crate::config::ConfigError;

/// An SSH tunnel to a source's database, from `[sources.NAME.ssh]`: the database's
/// host and port in the source's URL are then as the SSH server sees them.
///
/// ```toml
/// [sources.app.ssh]
/// host = "bastion.example.com"
/// port = 22                          # optional, 22
/// user = "tunnel"
/// private_key_path = "keys/id_ed25519"   # from `reverse_etl keygen`; relative to the file
/// host_key = "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4"  # required: ssh-keygen -lf on the server
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct SshTunnelConfig {
    /// The SSH server.
    pub host: String,
    /// Its port (22 unless set).
    pub port: u16,
    /// The user to log in as.
    pub user: String,
    /// The private key file (OpenSSH format, unencrypted, Ed25519 or ECDSA).
    pub private_key_path: PathBuf,
    /// The server's host key fingerprint, `SHA256:…`. Required: a host key is never
    /// trusted blindly.
    pub host_key: String,
}

/// `[sources.NAME.ssh]` as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSsh {
    host: String,
    port: Option<u16>,
    user: String,
    private_key_path: PathBuf,
    host_key: String,
}

impl RawSsh {
    /// Checks the table of source `name`; `resolve` makes relative paths relative
    /// to the configuration file.
    pub(crate) fn check(
        self,
        name: &str,
        resolve: impl Fn(PathBuf) -> PathBuf,
    ) -> Result<SshTunnelConfig, ConfigError> {
        let invalid = |field: &str, reason: String| ConfigError::Invalid {
            key: format!("sources.{name}.ssh.{field}"),
            reason,
        };
        if self.host.trim().is_empty() {
            return Err(invalid("host", "the SSH server is missing".to_owned()));
        }
        if self.user.trim().is_empty() {
            return Err(invalid("user", "the SSH user is missing".to_owned()));
        }
        if self.port == Some(0) {
            return Err(invalid("port", "0 is not a port".to_owned()));
        }
        if !self.host_key.trim().starts_with("SHA256:") {
            return Err(invalid(
                "host_key",
                format!(
                    "{:?} is not a SHA256 fingerprint: give the SSH server's host key fingerprint as \
                     `SHA256:…` (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server prints it)",
                    self.host_key
                ),
            ));
        }
        Ok(SshTunnelConfig {
            host: self.host,
            port: self.port.unwrap_or(22),
            user: self.user,
            private_key_path: resolve(self.private_key_path),
            host_key: self.host_key.trim().to_owned(),
        })
    }
}

/// The tunnel settings for cdp-source, or why they cannot be used.
#[cfg(all(feature = "ssh", any(feature = "postgres", feature = "mysql")))]
pub(crate) fn tunnel(
    name: &str,
    ssh: &SshTunnelConfig,
) -> Result<cdp_source::tunnel::SshConfig, cdp_source::SourceError> {
    cdp_source::tunnel::SshConfig::new(&ssh.host, &ssh.user, &ssh.private_key_path, &ssh.host_key)
        .map(|config| config.with_port(ssh.port))
        .map_err(|error| error.for_source(name))
}

/// Without the `ssh` feature a tunnel cannot be opened.
#[cfg(all(not(feature = "ssh"), any(feature = "postgres", feature = "mysql")))]
pub(crate) fn not_built(name: &str) -> cdp_source::SourceError {
    cdp_source::SourceError::Config {
        source_name: name.to_owned(),
        reason: "`ssh`: SSH tunnels need cdp-sync built with its `ssh` feature".to_owned(),
    }
}

// The tests' source is a PostgreSQL one.
#[cfg(all(test, feature = "postgres"))]
mod tests {
    use std::path::Path;

    use crate::{Config, SourceConfig};

    const SOURCE: &str = r#"
        [sources.app]
        kind = "postgres"
        url = "postgres://etl@db.internal:5432/app"
        [sources.app.ssh]
        host = "bastion.example.com"
        user = "tunnel"
        private_key_path = "keys/id_ed25519"
        host_key = "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4"
    "#;

    fn parse(text: &str) -> Result<Config, crate::ConfigError> {
        Config::parse(text, Path::new("/etc/cdp"), &|_| None)
    }

    #[test]
    fn an_ssh_table_reads_with_its_defaults() {
        let config = parse(SOURCE).unwrap();
        let SourceConfig::Postgres { ssh: Some(ssh), .. } = &config.sources["app"] else {
            panic!("{:?}", config.sources["app"]);
        };
        assert_eq!((ssh.host.as_str(), ssh.port, ssh.user.as_str()), ("bastion.example.com", 22, "tunnel"));
        assert_eq!(ssh.private_key_path, Path::new("/etc/cdp/keys/id_ed25519"));
        assert_eq!(ssh.host_key, "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4");
        let config = parse(&SOURCE.replace("user = \"tunnel\"", "user = \"tunnel\"\nport = 2222")).unwrap();
        let SourceConfig::Postgres { ssh: Some(ssh), .. } = &config.sources["app"] else { panic!() };
        assert_eq!(ssh.port, 2222);
    }

    #[cfg(feature = "mysql")]
    #[test]
    fn a_mysql_source_reads_its_ssh_table() {
        let text = SOURCE
            .replace("kind = \"postgres\"", "kind = \"mysql\"")
            .replace("postgres://etl@db.internal:5432/app", "mysql://etl@db.internal:3306/app");
        let config = parse(&text).unwrap();
        let SourceConfig::Mysql { ssh: Some(ssh), .. } = &config.sources["app"] else {
            panic!("{:?}", config.sources["app"]);
        };
        assert_eq!((ssh.host.as_str(), ssh.port, ssh.user.as_str()), ("bastion.example.com", 22, "tunnel"));
        assert_eq!(ssh.private_key_path, Path::new("/etc/cdp/keys/id_ed25519"));
        let message = parse(&text.replace("host_key = ", "# host_key = ")).unwrap_err().to_string();
        assert!(message.contains("host_key"), "{message}");
    }

    #[test]
    fn a_host_key_is_required_and_must_be_a_sha256_fingerprint() {
        let message = parse(&SOURCE.replace("host_key = ", "# host_key = ")).unwrap_err().to_string();
        assert!(message.contains("host_key"), "{message}");
        let message =
            parse(&SOURCE.replace("SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4", "MD5:aa:bb"))
                .unwrap_err();
        assert!(message.to_string().contains("`sources.app.ssh.host_key`"), "{message}");
        for (from, to, key) in [
            ("host = \"bastion.example.com\"", "host = \"\"", "sources.app.ssh.host"),
            ("user = \"tunnel\"", "user = \"\"", "sources.app.ssh.user"),
            ("user = \"tunnel\"", "user = \"tunnel\"\nport = 0", "sources.app.ssh.port"),
        ] {
            let message = parse(&SOURCE.replace(from, to)).unwrap_err().to_string();
            assert!(message.contains(&format!("`{key}`")), "{message}");
        }
        let message = parse(&SOURCE.replace("user = \"tunnel\"", "user = \"tunnel\"\npassword = \"x\""))
            .unwrap_err()
            .to_string();
        assert!(message.contains("password"), "unknown keys are refused: {message}");
    }

    #[cfg(not(feature = "ssh"))]
    #[tokio::test]
    async fn without_the_feature_a_tunnel_cannot_open() {
        let config = parse(SOURCE).unwrap();
        let error = crate::sources::open("app", &config.sources["app"]).await.unwrap_err();
        assert!(error.to_string().contains("`ssh` feature"), "{error}");
    }

    #[cfg(all(feature = "mysql", not(feature = "ssh")))]
    #[tokio::test]
    async fn without_the_feature_a_mysql_tunnel_cannot_open() {
        let text = SOURCE
            .replace("kind = \"postgres\"", "kind = \"mysql\"")
            .replace("postgres://etl@db.internal:5432/app", "mysql://etl@db.internal:3306/app");
        let config = parse(&text).unwrap();
        let error = crate::sources::open("app", &config.sources["app"]).await.unwrap_err();
        assert!(error.to_string().contains("`ssh` feature"), "{error}");
    }
}
