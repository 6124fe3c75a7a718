//! Opening the configured sources.

use std::sync::Arc;

use cdp_source::{
    PostgresOptions, PostgresSource, PostgresTls, Source, SourceError, SqliteOptions, SqliteSource,
};

use crate::config::SourceConfig;

/// Opens the source called `name`.
pub(crate) async fn open(name: &str, config: &SourceConfig) -> Result<Arc<dyn Source>, SourceError> {
    Ok(match config {
        SourceConfig::Postgres { url, password, statement_timeout, tls_ca_file } => {
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
            Arc::new(PostgresSource::new(name, url, options)?)
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
