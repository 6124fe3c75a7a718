//! Opening the configured sources.

use std::sync::Arc;

use cdp_source::{
    PostgresOptions, PostgresSource, PostgresTls, Source, SourceError, SqliteOptions, SqliteSource,
};

use crate::config::SourceConfig;

/// Opens the source called `name`.
pub(crate) async fn open(name: &str, config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    Ok(match config {
        SourceConfig::Postgres { url, password, statement_timeout, tls_ca_file, ssh } => {
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
        SourceConfig::Snowflake { .. } => {
            return Err(SourceError::Config {
                source_name: name.to_owned(),
                reason: "Snowflake sources need cdp-sync built with its `snowflake` feature".to_owned(),
            });
        }
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
        SourceConfig::Mysql { .. } => {
            return Err(SourceError::Config {
                source_name: name.to_owned(),
                reason: "MySQL sources need cdp-sync built with its `mysql` feature".to_owned(),
            });
        }
        SourceConfig::Sqlite { path } => {
            let (name, path) = (name.to_owned(), path.clone());
            let opened =
                tokio::task::spawn_blocking(move || SqliteSource::open(name, path, SqliteOptions::new()))
                    .await
                    .expect("opening a SQLite file does not panic");
            Arc::new(opened?)
        }
    })
}
