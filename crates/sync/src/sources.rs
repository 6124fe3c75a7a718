//! Opening the configured sources.

use std::sync::Arc;

use cdp_source::{Source, SourceError};

use crate::config::SourceConfig;

/// Opens the source called `name`.
#[cfg_attr(
    not(any(feature = "postgres", feature = "sqlite", feature = "snowflake", feature = "mysql")),
    allow(unreachable_code)
)]
pub(crate) async fn open(name: &str, config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    Ok(match config {
        #[cfg(feature = "postgres")]
        SourceConfig::Postgres { url, password, statement_timeout, tls_ca_file, ssh } => {
            use cdp_source::{PostgresOptions, PostgresSource, PostgresTls};

            let mut options = PostgresOptions::new();
            if let Some(password) = password {
                options = options.password(password.expose());
            }
            if let Some(timeout) = statement_timeout {
                options = options.statement_timeout(*timeout);
            }
            if let Some(file) = tls_ca_file {
                let bad = |reason: String| SourceError::Config { source_name: name.to_owned(), reason };
                let pem =
                    std::fs::read(file).map_err(|e| bad(format!("cannot read {}: {e}", file.display())))?;
                let tls = PostgresTls::with_root_certificates_pem(&pem)
                    .map_err(|e| bad(format!("{}: {}", file.display(), e.reason())))?;
                options = options.tls(tls);
            }
            #[cfg(feature = "ssh")]
            if let Some(ssh) = ssh {
                options = options.ssh_tunnel(crate::ssh::tunnel(name, ssh)?);
            }
            #[cfg(not(feature = "ssh"))]
            if ssh.is_some() {
                return Err(crate::ssh::not_built(name));
            }
            Arc::new(PostgresSource::new(name, url, options)?)
        }
        #[cfg(not(feature = "postgres"))]
        SourceConfig::Postgres { .. } => return Err(not_built(name, "PostgreSQL", "postgres")),
        #[cfg(feature = "snowflake")]
        SourceConfig::Snowflake {
            account,
            user,
            role,
            warehouse,
            database,
            schema,
            private_key_path,
            private_key,
            private_key_passphrase,
            statement_timeout,
            base_url,
        } => {
            let bad = |reason: String| SourceError::Config { source_name: name.to_owned(), reason };
            let pem = match (private_key_path, private_key) {
                (Some(file), _) => std::fs::read_to_string(file)
                    .map_err(|e| bad(format!("cannot read the private key file {}: {e}", file.display())))?,
                (None, Some(pem)) => pem.expose().to_owned(),
                (None, None) => return Err(bad("no private key is configured".to_owned())),
            };
            let mut options = cdp_source::SnowflakeOptions::new(account, user).private_key_pem(pem);
            if let Some(passphrase) = private_key_passphrase {
                options = options.private_key_passphrase(passphrase.expose());
            }
            for (value, set) in [
                (role, cdp_source::SnowflakeOptions::role as fn(_, String) -> _),
                (warehouse, cdp_source::SnowflakeOptions::warehouse),
                (database, cdp_source::SnowflakeOptions::database),
                (schema, cdp_source::SnowflakeOptions::schema),
                (base_url, cdp_source::SnowflakeOptions::base_url),
            ] {
                if let Some(value) = value {
                    options = set(options, value.clone());
                }
            }
            if let Some(timeout) = statement_timeout {
                options = options.statement_timeout(*timeout);
            }
            Arc::new(cdp_source::SnowflakeSource::new(name, options)?)
        }
        #[cfg(not(feature = "snowflake"))]
        SourceConfig::Snowflake { .. } => return Err(not_built(name, "Snowflake", "snowflake")),
        #[cfg(feature = "mysql")]
        SourceConfig::Mysql { url, password, statement_timeout, tls_ca_file, ssh } => {
            let mut options = cdp_source::MysqlOptions::new();
            if let Some(password) = password {
                options = options.password(password.expose());
            }
            if let Some(timeout) = statement_timeout {
                options = options.statement_timeout(*timeout);
            }
            if let Some(file) = tls_ca_file {
                let pem = std::fs::read(file).map_err(|e| SourceError::Config {
                    source_name: name.to_owned(),
                    reason: format!("cannot read {}: {e}", file.display()),
                })?;
                options = options.tls_root_certificates_pem(pem);
            }
            #[cfg(feature = "ssh")]
            if let Some(ssh) = ssh {
                options = options.ssh_tunnel(crate::ssh::tunnel(name, ssh)?);
            }
            #[cfg(not(feature = "ssh"))]
            if ssh.is_some() {
                return Err(crate::ssh::not_built(name));
            }
            Arc::new(cdp_source::MysqlSource::new(name, url, options)?)
        }
        #[cfg(not(feature = "mysql"))]
        SourceConfig::Mysql { .. } => return Err(not_built(name, "MySQL", "mysql")),
        #[cfg(feature = "sqlite")]
        SourceConfig::Sqlite { path } => {
            use cdp_source::{SqliteOptions, SqliteSource};

            let (name, path) = (name.to_owned(), path.clone());
            let opened =
                tokio::task::spawn_blocking(move || SqliteSource::open(name, path, SqliteOptions::new()))
                    .await
                    .expect("opening a SQLite file does not panic");
            Arc::new(opened?)
        }
        #[cfg(not(feature = "sqlite"))]
        SourceConfig::Sqlite { .. } => return Err(not_built(name, "SQLite", "sqlite")),
    })
}

/// The error for a source of a kind this build does not have (the configuration
/// refuses it when it is read; a hand-made [`SourceConfig`] gets here).
#[cfg(not(all(feature = "postgres", feature = "sqlite", feature = "snowflake", feature = "mysql")))]
fn not_built(name: &str, kind: &str, feature: &str) -> SourceError {
    SourceError::Config { source_name: name.to_owned(), reason: crate::config::not_built(kind, feature) }
}
