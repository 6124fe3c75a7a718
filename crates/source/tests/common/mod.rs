//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use cdp_source::{PostgresOptions, PostgresSource, RowStream, SourceError, Values};

/// The test server's URL. The tests that need PostgreSQL fail (never skip) without it.
pub fn postgres_url() -> String {
    std::env::var("CDP_TEST_POSTGRES_URL").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_POSTGRES_URL is not set: these tests need a real PostgreSQL server; \
             run them with `bash .ci/test`, which starts one and sets the variable"
        )
    })
}

/// A direct connection for setting up tables, outside the source under test.
pub async fn admin() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&postgres_url(), tokio_postgres::NoTls)
        .await
        .expect("the test server accepts connections");
    tokio::spawn(connection);
    client
}

/// Drops and recreates `schema`, so every test has names of its own.
pub async fn fresh_schema(client: &tokio_postgres::Client, schema: &str) {
    client
        .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE; CREATE SCHEMA {schema};"))
        .await
        .expect("create the test schema");
}

/// The source under test, on the test server.
pub fn postgres_source(options: PostgresOptions) -> PostgresSource {
    PostgresSource::new("test-pg", &postgres_url(), options).expect("a valid test URL")
}

/// Reads every row (tests only: results here are small).
pub async fn read_all(stream: &mut RowStream) -> Vec<Result<Values, SourceError>> {
    let mut rows = Vec::new();
    while let Some(row) = stream.next().await {
        rows.push(row);
    }
    rows
}

/// Reads every row, failing on any error.
pub async fn read_ok(stream: &mut RowStream) -> Vec<Values> {
    read_all(stream).await.into_iter().map(|r| r.expect("a row without error")).collect()
}

#[cfg(feature = "mysql")]
pub mod mysql;
#[cfg(feature = "snowflake")]
pub mod snowflake;
