//! Reverse-ETL sources: run a sync's query against a database and stream its rows as
//! [`cdp_rows::Value`]s, in bounded memory (SPEC section 5, "Sources").
//!
//! A [`Source`] runs one query at a time per call and returns a [`RowStream`]: the
//! result's [`Columns`] first, then rows one by one, each a `Vec<Value<'static>>` in
//! column order, ready for [`cdp_rows::RowMapper::map_values`]. It also says which SQL
//! [`Dialect`] it speaks, for the query checks. Each source is a cargo feature of
//! this crate (`postgres` and `sqlite` are on by default; `tls` and `ssh` add TLS and
//! SSH tunnels):
//!
//! - [`PostgresSource`]: a PostgreSQL server through tokio-postgres; each query in its
//!   own connection and read-only transaction, with a statement timeout; rows in the
//!   binary wire format, decoded here; TLS with rustls behind the `tls` feature.
//! - [`SqliteSource`]: a SQLite file through rusqlite (bundled SQLite), opened
//!   read-only, the embedded default.
//! - `SnowflakeSource` (the `snowflake` feature): a Snowflake account through
//!   snowflake-connector-rs, with key-pair authentication; results read chunk by
//!   chunk from Snowflake's JSON result format, every type exactly (see "Snowflake
//!   values" below).
//! - `MysqlSource` (the `mysql` feature): a MySQL or MariaDB server through
//!   mysql_async; each query in its own connection, session (UTC, statement and
//!   network write timeouts, read-only) and read-only transaction; rows in the binary
//!   protocol (see "MySQL and MariaDB values" below); TLS with rustls behind the `tls`
//!   feature.
//!
//! # Recipe: stream a query's rows
//! ```
//! use cdp_rows::Value;
//! use cdp_source::{Source, SqliteOptions, SqliteSource};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! // A small database, written with rusqlite itself.
//! let dir = tempfile::tempdir()?;
//! let path = dir.path().join("demo.db");
//! let db = rusqlite::Connection::open(&path)?;
//! db.execute_batch(
//!     "CREATE TABLE users (id INTEGER, email TEXT, score REAL, active BOOLEAN, updated_at DATETIME);
//!      INSERT INTO users VALUES (1, 'ada@example.com', 9.5, 1, '2026-11-22 10:00:00'),
//!                               (2, NULL, NULL, 0, NULL);",
//! )?;
//! drop(db);
//!
//! // The source opens it read-only; a query streams its rows.
//! let source = SqliteSource::open("demo", &path, SqliteOptions::new())?;
//! let mut rows = source.query("SELECT id AS userId, email, score, active, updated_at FROM users").await?;
//! assert_eq!(rows.columns().names(), ["userId", "email", "score", "active", "updated_at"]);
//!
//! let first = rows.next().await.expect("a row")?;
//! assert_eq!(first[0], Value::Int(1));
//! assert_eq!(first[1], Value::from("ada@example.com"));
//! assert_eq!(first[2], Value::Float(9.5));
//! assert_eq!(first[3], Value::Bool(true)); // declared BOOLEAN
//! assert_eq!(first[4], Value::TimestampWithoutZone("2026-11-22T10:00:00Z".parse()?)); // declared DATETIME
//!
//! let second = rows.next().await.expect("a row")?;
//! assert_eq!(second[1], Value::Null);
//! assert!(rows.next().await.is_none());
//!
//! // Writes are refused: the file is open read-only.
//! let mut write = source.query("INSERT INTO users (id) VALUES (3) RETURNING id").await?;
//! let error = write.next().await.expect("an error").unwrap_err();
//! assert!(error.to_string().starts_with("source `demo`: query failed: "), "{error}");
//! # Ok(())
//! # }
//! ```
//!
//! # Recipe: a source chosen at run time
//! The trait is object-safe: a runner keeps a `Box<dyn Source>` (or an
//! `Arc<dyn Source>` shared by its syncs) built from its configuration, checks the
//! query in [`Source::dialect`], and moves the stream into a task.
//! ```no_run
//! use std::sync::Arc;
//! use cdp_source::{PostgresOptions, PostgresSource, Source, SourceError, SqliteOptions, SqliteSource};
//!
//! fn build(kind: &str, name: &str, connection: &str) -> Result<Arc<dyn Source>, SourceError> {
//!     Ok(match kind {
//!         "postgres" => {
//!             let mut options = PostgresOptions::new();
//!             if let Ok(password) = std::env::var("CDP_SOURCE_PASSWORD") {
//!                 options = options.password(password);
//!             }
//!             Arc::new(PostgresSource::new(name, connection, options)?)
//!         }
//!         _ => Arc::new(SqliteSource::open(name, connection, SqliteOptions::new())?),
//!     })
//! }
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let source = build("postgres", "warehouse", "postgres://etl@db.internal/analytics")?;
//! source.check().await?; // connect and run `SELECT 1`
//! let mut rows = source.query("SELECT id AS \"userId\", email FROM users").await?;
//! let task = tokio::spawn(async move {
//!     let mut read = 0_u64;
//!     while let Some(row) = rows.next().await {
//!         match row {
//!             Ok(_values) => read += 1,           // map and deliver
//!             Err(e) if e.is_row_error() => {}    // record a row error, read on
//!             Err(e) => return Err(e),            // the query failed
//!         }
//!     }
//!     Ok(read)
//! });
//! let rows_read = task.await??;
//! # let _ = rows_read;
//! # Ok(())
//! # }
//! ```
//!
//! # Streaming and memory
//! Rows are never collected. PostgreSQL rows arrive through tokio-postgres, which
//! stops reading the socket while the reader does not pull, so the server blocks on
//! its side; SQLite rows are read on a blocking thread that waits when the bounded
//! channel ([`SqliteOptions::channel_capacity`], 1,024 rows by default) is full.
//! MySQL rows arrive through mysql_async the same way as PostgreSQL's: one packet at
//! a time as the reader pulls, the server blocked writing in between (its
//! `net_write_timeout` is raised for the session, so a slow reader is not cut off).
//! Dropping a [`RowStream`] cancels the query: the PostgreSQL connection is closed, the
//! SQLite query interrupted.
//!
//! # Errors
//! [`SourceError`] names the source in every variant and never contains a password
//! (nor does the `Debug` or `Display` of a source or its options): connection strings
//! are never quoted in errors, and a target is shown as `host:port/database as user`.
//! [`SourceError::Value`] (a value that cannot be converted, with its row number from
//! 1 and its column) concerns one row, and the stream goes on; every other error ends
//! the query. A column of a type that cannot be read is
//! [`SourceError::UnsupportedType`], reported by [`Source::query`] before any row, with
//! a cast that fixes the query.
//!
//! # PostgreSQL values
//! | PostgreSQL type | [`Value`] |
//! |---|---|
//! | `bool` | `Bool` |
//! | `int2`, `int4`, `int8`, `oid` | `Int` |
//! | `float4`, `float8` | `Float` (`float4` through its shortest decimal text, so `0.1` stays `0.1`) |
//! | `numeric` | `Decimal` with exactly the server's text: every digit, the column's scale, `NaN`, `Infinity`, `-Infinity` |
//! | `text`, `varchar`, `char(n)` (padded), `name`, `xml`, `citext`, enums | `Text` |
//! | `"char"` | `Text` of its one character |
//! | `json`, `jsonb` | `Json` (the text; `jsonb` as the server prints it) |
//! | `bytea` | `Bytes` |
//! | `uuid` | `Text`, lower-case with hyphens |
//! | `date` | `Date` |
//! | `time` | `Time` (`24:00:00`, which `Time` cannot hold, is the text `24:00:00`) |
//! | `timestamp` | `TimestampWithoutZone` |
//! | `timestamptz` | `Timestamp` (the instant; the session time zone plays no part) |
//! | `timetz`, `interval`, `inet`, `cidr`, `macaddr`, `macaddr8` | `Text` exactly as the server prints it (`interval` in the default `IntervalStyle`) |
//! | arrays of any of these, any number of dimensions | `Array` (nested for more dimensions; `NULL` elements are `Null`; lower bounds are dropped) |
//! | domains | as their base type |
//! | `void` (`SELECT pg_sleep(1)`) | `Null` |
//! | `NULL` of any type | `Null` |
//!
//! `infinity` and `-infinity` dates and timestamps are the texts `infinity` and
//! `-infinity` (as PostgreSQL's `to_json` writes them). Dates and timestamps outside
//! the years 0000 to 9999 (BC dates, year 10000 and later) cannot be represented and
//! are [`SourceError::Value`] errors. Any other type (composites, ranges, `money`,
//! geometric types, `bit`, extension types other than `citext`) is
//! [`SourceError::UnsupportedType`]: cast it in the query (`x::text`, or `to_jsonb(x)`
//! for a composite).
//!
//! # SQLite values
//! By storage class: `INTEGER` is `Int`, `REAL` is `Float`, `TEXT` is `Text` (it must
//! be UTF-8, or the value is a [`SourceError::Value`]), `BLOB` is `Bytes`, `NULL` is
//! `Null`. When the column comes straight from a table column with a declared type
//! (SQLite reports none for expressions), the declared type refines the value; this
//! can be turned off with [`SqliteOptions::declared_types`]:
//! - a type containing `BOOL` (`BOOLEAN`): the integers 0 and 1 are `Bool`;
//! - `JSON` or `JSONB`: text is `Json` (checked when the row is mapped; invalid JSON
//!   is then a row error);
//! - a type containing `DATE` or `TIMESTAMP` (`DATE`, `DATETIME`, `TIMESTAMP`): text of
//!   the form `YYYY-MM-DD` is a `Date`; an RFC 3339 timestamp with `Z` or an offset is
//!   a `Timestamp`; `YYYY-MM-DD HH:MM:SS[.fff]` (or with `T`) without a zone, as
//!   `datetime()` writes it, is a `TimestampWithoutZone`.
//!
//! Every other value is kept as its storage class gives it (a `DATETIME` column
//! holding Unix seconds stays `Int`, a `BOOLEAN` column holding 2 stays `Int`).
//!
//! # Snowflake values
//! With the `snowflake` feature. Each cell arrives as text in Snowflake's JSON result
//! format; it is decoded by the column's type (the result's `rowtype`), never through
//! a floating-point or JSON number on the way, so nothing is rounded.
//!
//! | Snowflake type | [`Value`] |
//! |---|---|
//! | `NUMBER(p,0)` (and `INT`, `BIGINT`, … which are `NUMBER(38,0)`) | `Int` when it fits an `i64`, else `Decimal` with every digit (38-digit numbers stay whole) |
//! | `NUMBER(p,s)` with a scale, `DECIMAL`, `NUMERIC` | `Decimal` with the text Snowflake sends: every digit, the scale's zeros (`-12.340`) |
//! | `DECFLOAT` | `Decimal` (with its exponent, `1.5E+3`) |
//! | `FLOAT`, `DOUBLE`, `REAL` | `Float`, including `NaN`, `inf` and `-inf` |
//! | `VARCHAR`, `CHAR`, `STRING`, `TEXT` | `Text` |
//! | `BOOLEAN` | `Bool` |
//! | `BINARY`, `VARBINARY` | `Bytes` |
//! | `DATE` | `Date` |
//! | `TIME` | `Time` (digits past the microsecond dropped) |
//! | `TIMESTAMP_NTZ` | `TimestampWithoutZone` (the wall-clock reading, taken as UTC) |
//! | `TIMESTAMP_LTZ` | `Timestamp` (the instant; the session's `TIMEZONE` plays no part) |
//! | `TIMESTAMP_TZ` | `Timestamp`: the instant in UTC (`2024-01-01 10:00 +05:30` is `2024-01-01T04:30:00Z`); the offset is dropped |
//! | `VARIANT`, `OBJECT`, `ARRAY` | `Json` with the text as Snowflake prints it, digit for digit (a nested `2^63` stays `9223372036854775808`); an array's `undefined` (SQL NULL) is `null` |
//! | `VECTOR(INT, n)`, `VECTOR(FLOAT, n)` | `Array` of `Int`s or `Float`s |
//! | `NULL` of any type | `Null` |
//!
//! Timestamps and times keep microseconds: Snowflake's nanoseconds past the
//! microsecond are dropped (rounded down, so the written time is cut, before 1970 as
//! after). A timestamp or date outside the years 0000 to 9999, or a `VARIANT` holding
//! `NaN` or `Infinity` (which JSON cannot carry), is a [`SourceError::Value`].
//! `GEOGRAPHY` and `GEOMETRY` reported as such, and types Snowflake may add, are
//! [`SourceError::UnsupportedType`] with a conversion to use in the query (with the
//! default `GEOGRAPHY_OUTPUT_FORMAT` they arrive as GeoJSON `OBJECT`s and read as
//! `Json`). Column names arrive as Snowflake gives them: upper case unless the query
//! quotes them (`AS "userId"`).
//!
//! # Snowflake: authentication, timeouts, failures
//! - **Key pair only**: a JWT signed with the user's RSA key (PKCS#8 PEM, encrypted
//!   with a passphrase or not), as Snowflake's own connectors do it. The key is read
//!   when the source is built: a PKCS#1 key (`-----BEGIN RSA PRIVATE KEY-----`) is
//!   refused with the `openssl pkcs8 -topk8 …` command that converts it, as are a
//!   missing or wrong passphrase and a key that is not RSA. A login that fails (a key
//!   Snowflake does not know for the user, an unknown user or account) is a
//!   [`SourceError::Connect`] naming the account, the user and the key's fingerprint
//!   (`SHA256:…`, what `DESC USER` shows as `RSA_PUBLIC_KEY_FP`), never the key.
//! - **The session** is kept between queries; one that expired (Snowflake's code
//!   `390112`, or its token refused with HTTP 401) is replaced by a new login, once
//!   per query. Its `STATEMENT_TIMEOUT_IN_SECONDS` is the source's
//!   statement timeout; a query Snowflake cancels for it is [`SourceError::Timeout`].
//! - **Retries**: a login or a query submission that fails with a network error, HTTP
//!   5xx, 429 or 408 is tried again, `SNOWFLAKE_ATTEMPTS` (3) times in all, with
//!   doubling pauses (the query is read-only, so running it twice does no harm). The
//!   connector itself downloads a result chunk up to eight times on network errors,
//!   HTTP 5xx, 429 and 408; a chunk that arrives unreadable or not within the chunk
//!   timeout is downloaded again twice more. What still fails ends the query: a
//!   [`SourceError::Query`] with Snowflake's code, message and query id, a
//!   [`SourceError::Connection`] for the network, or a [`SourceError::Timeout`].
//! - **Read-only**: Snowflake has no read-only transaction; the query checks of
//!   cdp-query (one `SELECT`) and a role with `SELECT` grants only are the guard.
//!
//! # MySQL and MariaDB values
//! With the `mysql` feature. Values arrive in the binary protocol; each column's type,
//! flags, character set and display length choose the conversion.
//!
//! | MySQL / MariaDB type | [`Value`] |
//! |---|---|
//! | `TINYINT`, `SMALLINT`, `MEDIUMINT`, `INT`, `BIGINT` | `Int` |
//! | the same `UNSIGNED` (up to `BIGINT UNSIGNED`'s 2^64-1) | `UInt` |
//! | `TINYINT(1)`, `BOOLEAN` | `Bool` for 0 and 1 (the convention of MySQL's own connectors, from the column's display length 1); any other value it holds stays `Int` |
//! | `BIT(1)` | `Bool` |
//! | `BIT(n)`, n > 1 | `UInt` of its bits |
//! | `YEAR` | `Int` |
//! | `DECIMAL`, `NUMERIC` | `Decimal` with exactly the server's text (`DECIMAL(65,30)` whole) |
//! | `FLOAT` | `Float` through its shortest decimal text (`0.1` stays `0.1`) |
//! | `DOUBLE` | `Float` |
//! | `CHAR`, `VARCHAR`, `TEXT`s, `ENUM`, `SET` | `Text` (converted to UTF-8 by the server, whatever the column's character set; `SET` as `a,c`) |
//! | `BINARY`, `VARBINARY`, `BLOB`s (the `binary` character set, 63) | `Bytes` |
//! | `JSON` (MySQL) | `Json` |
//! | `JSON` (MariaDB: `LONGTEXT` with `CHECK (json_valid(column))`) | `Json` when the column comes straight from a table column (see below), else `Text` |
//! | `DATE` | `Date` |
//! | `DATETIME` | `TimestampWithoutZone` (the wall-clock reading, taken as UTC) |
//! | `TIMESTAMP` | `Timestamp`: the instant (the session's time zone is UTC, so the server hands it over in UTC whatever zone wrote it) |
//! | `TIME` | `Time` from `00:00:00` to `23:59:59.999999`; a negative time or one of 24 hours and more (`TIME` is a duration from `-838:59:59` to `838:59:59`) is `Text` as MySQL prints it: `-01:30:00`, `838:59:59`, with the fraction as `Time` writes it (`-00:00:01.250`) |
//! | the type of a bare `NULL` | `Null` |
//!
//! The zero date `0000-00-00` (and `0000-00-00 00:00:00`), and dates with a zero or
//! impossible part (`2024-00-10`, `2023-02-29`), which MySQL stores under lenient SQL
//! modes, are [`SourceError::Value`] row errors naming the row and column (turn them
//! into `NULL` in the query, `NULLIF(column, '0000-00-00')`); the rest of the result is
//! read on. `GEOMETRY` and `VECTOR` are [`SourceError::UnsupportedType`] with the
//! function that converts them (`ST_AsGeoJSON(column)`, `VEC_ToText(column)` /
//! `VECTOR_TO_STRING(column)`).
//!
//! Expressions have the types MySQL gives them: comparisons and `TRUE` are integers
//! (`1 > 0` is `Int(1)`; MySQL has no boolean type), integer literals past `i64` are
//! `BIGINT UNSIGNED`, and MariaDB's JSON functions (`JSON_OBJECT`, `JSON_EXTRACT`)
//! return text. Text holding a JSON object still nests as an object when rows are
//! mapped (cdp-rows' "text parsed as JSON" rule), so `JSON_OBJECT(...) AS
//! relationshipAttributes` works on both servers.
//!
//! **MariaDB `JSON` columns**: MariaDB's `JSON` is `LONGTEXT` with the check
//! `json_valid(column)`, and its result metadata says `LONGTEXT` (MariaDB's extended
//! metadata, which would say `json`, is not asked for by mysql_async). So when a text
//! column of the result comes straight from a table column, the source looks up that
//! table's column checks in `information_schema.CHECK_CONSTRAINTS` once per query
//! (after preparing it, before running it) and reads a column whose check is exactly
//! `json_valid(column)` as `Json`. Through a view, an alias of an expression, or on a
//! MariaDB without that table, such a column is `Text`: objects still nest (above),
//! arrays and scalars stay strings.
//!
//! # MySQL and MariaDB: sessions, timeouts, errors
//! - **One connection per query.** It learns the server's flavour from `SELECT
//!   @@version` (`…-MariaDB…` is MariaDB) and prepares the session in one round trip:
//!   `SET time_zone = '+00:00', max_statement_time = <seconds>` (MariaDB) or
//!   `max_execution_time = <milliseconds>` (MySQL), `net_write_timeout = <at least
//!   the statement timeout, and at least 60 s; a year without a statement timeout>`,
//!   then `SET SESSION TRANSACTION READ ONLY` and `START TRANSACTION READ ONLY`. The
//!   session-wide read-only matters: DDL (`CREATE TABLE`) commits the transaction
//!   before it runs, and is refused only because the session is read-only too. The
//!   query itself is prepared (the binary protocol), which also refuses several
//!   statements in one. This needs MariaDB 10.1 or later (`max_statement_time`) or
//!   MySQL 5.7.8 or later (`max_execution_time`); the tests run against MariaDB 10.11.
//! - **Errors** keep the server's error number as [`SourceError::code`] (`1792` for a
//!   write in a read-only transaction, `1146` for an unknown table) and its message as
//!   the `mysql` client prints it (`ERROR 1792 (25006): Cannot execute statement in a
//!   READ ONLY transaction`). A query stopped by the statement timeout (MariaDB's
//!   `1969`, MySQL's `3024`) is [`SourceError::Timeout`]; a lost connection is
//!   [`SourceError::Connection`]. A login refused (SQLSTATE class `28`, `ERROR 1045
//!   (28000): Access denied …`; `1044`, no access to the database; an expired password
//!   or a locked account) is [`SourceError::Login`], any other failure to connect
//!   [`SourceError::Connect`], both naming `host:port/database as user`, never the
//!   password.
//! - **Dropping a stream** before its end has a second connection end the query's
//!   connection (`KILL CONNECTION`, which a user may always do to its own), because
//!   mysql_async would otherwise read and discard every remaining row before closing.
//! - **URLs**: `mysql://user@host:3306/database` (`mariadb://` is read the same), with
//!   mysql_async's parameters; the password comes apart (`MysqlOptions::password`).
//!   A connection goes where the URL says (mysql_async's `prefer_socket`, which would
//!   move a connection to `localhost` onto the server's Unix socket, is off; a socket
//!   is used with `?socket=/path`).
//! - **TLS** (with the `tls` feature too): `MysqlOptions::tls_root_certificates_pem`
//!   connects with rustls (its `ring` provider), trusting only the given certificate
//!   authorities and checking the host name; TLS is then required. Without it,
//!   connections are plain: reach a server across networks through TLS, an SSH
//!   tunnel or a private network.
//!
//! # SSH tunnels
//! With the `ssh` feature, `PostgresOptions::ssh_tunnel` makes every query of a
//! PostgreSQL source go through an SSH tunnel (`tunnel::Tunnel`, on russh): the
//! SSH server's host key is pinned by its `SHA256:` fingerprint, the login is a
//! private key, and the connection string's host and port are the database as the
//! SSH server sees them. Any other driver that takes a host and port uses the same
//! `Tunnel::open` and connects to `Tunnel::local_addr`.
//! `tunnel::generate_key` writes new Ed25519 keys. [`Source::check`] fails with an
//! error whose [`SourceError::check_step`] says which step failed: the SSH
//! connection, host key, login or forwarding, the database connection, its login
//! ([`SourceError::Login`]), or the database.
//!
//! # Decisions
//! - **One connection per query** (PostgreSQL) or per query's thread (SQLite): queries
//!   never share a transaction, and a source can be used by many syncs at once.
//! - **The statement timeout covers the whole query, reading included** (PostgreSQL's
//!   `statement_timeout`; SQLite is interrupted): a slow reader keeps the transaction
//!   and its snapshot open, which the timeout also bounds. The default is 10 minutes
//!   for both; give long syncs a longer one.
//! - **Read-only twice**: PostgreSQL queries run in `BEGIN TRANSACTION READ ONLY`, and
//!   SQLite files are opened read-only with `PRAGMA query_only`, behind the query
//!   checks of cdp-query. PostgreSQL's extended protocol also refuses several
//!   statements in one query, and rusqlite does the same.
//! - **Passwords come apart from the connection string** ([`PostgresOptions::password`])
//!   and replace one given inside it.
//! - `application_name` is `cdp-warehouse` unless the connection string sets one.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod error;
#[cfg(feature = "mysql")]
mod mysql;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "snowflake")]
mod snowflake;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stream;
#[cfg(feature = "tls")]
mod tls;
#[cfg(feature = "ssh")]
#[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
// Tunnels are for the PostgreSQL and MySQL sources; without either, only
// `generate_key` and `Tunnel` itself are of use.
#[cfg_attr(not(any(feature = "postgres", feature = "mysql")), allow(dead_code))]
pub mod tunnel;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

pub use cdp_query::Dialect;
pub use cdp_rows::{Columns, Value};
pub use check::CheckStep;
pub use error::{BoxError, SourceError};
#[cfg(feature = "mysql")]
#[cfg_attr(docsrs, doc(cfg(feature = "mysql")))]
pub use mysql::{MAX_MYSQL_STATEMENT_TIMEOUT, MIN_MYSQL_NET_WRITE_TIMEOUT, MysqlOptions, MysqlSource};
#[cfg(feature = "postgres")]
#[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
pub use postgres::{APPLICATION_NAME, PostgresOptions, PostgresSource};
/// rustls, re-exported for [`PostgresTls::from_client_config`] (version 0.23, with the
/// `ring` provider).
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use rustls;
#[cfg(feature = "snowflake")]
#[cfg_attr(docsrs, doc(cfg(feature = "snowflake")))]
pub use snowflake::{
    DEFAULT_SNOWFLAKE_RETRY_DELAY, MAX_SNOWFLAKE_STATEMENT_TIMEOUT, SNOWFLAKE_ATTEMPTS,
    SNOWFLAKE_PKCS1_TO_PKCS8, SnowflakeOptions, SnowflakeSource,
};
#[cfg(feature = "sqlite")]
#[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
pub use sqlite::{
    DEFAULT_BUSY_TIMEOUT, DEFAULT_CHANNEL_CAPACITY, DEFAULT_SQLITE_STATEMENT_TIMEOUT, SqliteOptions,
    SqliteSource,
};
pub use stream::{RowBatch, RowStream, Values};
#[cfg(feature = "tls")]
#[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
pub use tls::{PostgresTls, TlsConfigError};

/// The statement timeout when none is set (PostgreSQL, MySQL, Snowflake): 10 minutes.
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(600);
/// The connect timeout when none is set (PostgreSQL, MySQL): 30 seconds.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);

/// A database that runs a sync's query and streams its rows.
///
/// Object-safe: hold a `Box<dyn Source>` or `Arc<dyn Source>`. Implementations are
/// `Send + Sync`, and [`Source::query`] may be called by several tasks at once; each
/// call is independent (its own connection or thread).
#[async_trait]
pub trait Source: Send + Sync + fmt::Debug {
    /// The source's name, as errors and logs show it.
    fn name(&self) -> &str;

    /// The SQL dialect the source speaks, for checking queries before they run.
    fn dialect(&self) -> Dialect;

    /// Runs `sql` (one read-only statement, already checked and rendered) and
    /// returns its rows as a stream. Connection errors, syntax errors and columns of
    /// unsupported types are reported here; errors while rows are read come from the
    /// stream.
    async fn query(&self, sql: &str) -> Result<RowStream, SourceError>;

    /// The names of the columns `sql` returns, in order and spelled as
    /// [`Source::query`] would give them ([`RowStream::columns`]), found without
    /// reading a row: the query is prepared (PostgreSQL, SQLite, MySQL) or run limited
    /// to no rows (Snowflake: `LIMIT 0`, or `SELECT * FROM (<sql>) AS cdp_preview LIMIT
    /// 0` for a query with a limit of its own), under the same read-only guards and
    /// statement timeout as [`Source::query`]. `sql` is a rendered query (no
    /// `{{last_sync_time}}` left in it).
    ///
    /// A runner asks this when it sets a sync up, to find columns that cannot be mapped
    /// (two columns setting the same field) before any run. Errors are those of
    /// [`Source::query`] before its first row: a connection failure, a syntax error or
    /// an unknown table. The default runs [`Source::query`] and drops the stream before
    /// reading a row, which cancels the query; sources that can describe a query more
    /// cheaply override it.
    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let rows = self.query(sql).await?;
        Ok(rows.columns().names().to_vec())
    }

    /// Checks that the source can be reached and answers a query: runs `SELECT 1` and
    /// reads its row.
    async fn check(&self) -> Result<(), SourceError> {
        let mut rows = self.query("SELECT 1").await?;
        while let Some(row) = rows.next().await {
            row?;
        }
        Ok(())
    }
}

#[async_trait]
impl<S: Source + ?Sized> Source for Box<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        (**self).query(sql).await
    }

    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        (**self).columns(sql).await
    }

    async fn check(&self) -> Result<(), SourceError> {
        (**self).check().await
    }
}

#[async_trait]
impl<S: Source + ?Sized> Source for Arc<S> {
    fn name(&self) -> &str {
        (**self).name()
    }

    fn dialect(&self) -> Dialect {
        (**self).dialect()
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        (**self).query(sql).await
    }

    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        (**self).columns(sql).await
    }

    async fn check(&self) -> Result<(), SourceError> {
        (**self).check().await
    }
}
