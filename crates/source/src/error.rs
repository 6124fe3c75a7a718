//! [`SourceError`]: everything that can go wrong while opening a source, running a
//! query, or reading its rows.

use std::error::Error as StdError;
use std::time::Duration;

/// A boxed underlying error, kept as the [`std::error::Error::source`] of a
/// [`SourceError`].
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// An error from a source. Every variant names the source (`source_name`, the name it
/// was given when it was built), and none ever contains a password.
///
/// Only [`SourceError::Value`] concerns a single row: the stream can be read on after
/// it ([`SourceError::is_row_error`]). Every other error ends the query; reading the
/// stream further gives `None`.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SourceError {
    /// The source's configuration is invalid (a malformed connection string, a
    /// setting out of range, a TLS mode that is not available).
    #[error("source `{source_name}`: invalid configuration: {reason}")]
    Config {
        /// The source's name.
        source_name: String,
        /// What is wrong.
        reason: String,
    },

    /// The source could not be reached or opened: a server that does not answer, a
    /// refused login, a database or file that does not exist.
    #[error("source `{source_name}`: cannot connect to {target}: {reason}")]
    Connect {
        /// The source's name.
        source_name: String,
        /// What was connected to: `host:port/database as user` for PostgreSQL, the
        /// file path for SQLite. Never a password.
        target: String,
        /// Why it failed, as the driver or the server says.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The database refused or failed the query: a syntax error, an unknown table, a
    /// write refused by the read-only transaction, an error while computing rows (a
    /// division by zero at row 1,000).
    #[error("source `{source_name}`: query failed{}: {reason}", after_rows(*rows_read))]
    Query {
        /// The source's name.
        source_name: String,
        /// The database's error code when it gave one: the SQLSTATE on PostgreSQL
        /// (`42P01` for an unknown table, `25006` for a write in a read-only
        /// transaction), Snowflake's own code on Snowflake (`002003` for an object that
        /// does not exist or is not authorized), the error number on MySQL and MariaDB
        /// (`1146` for an unknown table, `1792` for a write in a read-only transaction).
        code: Option<String>,
        /// The database's message (with its detail and hint when it gave them; on
        /// Snowflake with the query id).
        reason: String,
        /// Rows read before the error (0 when the query failed before any row).
        rows_read: u64,
        /// The query's id on the database, when it has one (Snowflake's query id, to
        /// look the query up in its history).
        query_id: Option<String>,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The query ran longer than the source's statement timeout and was cancelled.
    /// The timeout covers the whole query, including the time its rows take to be
    /// read.
    #[error(
        "source `{source_name}`: the query was cancelled after the statement timeout of {}{}",
        format_duration(*timeout),
        after_rows(*rows_read)
    )]
    Timeout {
        /// The source's name.
        source_name: String,
        /// The statement timeout that was exceeded.
        timeout: Duration,
        /// Rows read before the query was cancelled.
        rows_read: u64,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The database refused the login: a wrong password, an unknown user, a user
    /// who may not log in or may not use the database (SQLSTATE class `28` on
    /// PostgreSQL).
    #[error("source `{source_name}`: cannot connect to {target}: the database refused the login: {reason}")]
    Login {
        /// The source's name.
        source_name: String,
        /// What was connected to, as for [`SourceError::Connect`]. Never a password.
        target: String,
        /// Why, as the server says (`FATAL 28P01: password authentication failed for
        /// user "etl"`).
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The SSH tunnel to the database could not be opened (the `ssh` feature): the
    /// SSH server cannot be reached, shows another host key, refuses the key, or
    /// cannot reach the database. [`crate::tunnel::TunnelError`] says which.
    #[cfg(feature = "ssh")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
    #[error("source `{source_name}`: SSH tunnel: {error}")]
    Tunnel {
        /// The source's name.
        source_name: String,
        /// What failed.
        #[source]
        error: Box<crate::tunnel::TunnelError>,
    },

    /// A result column has a type the source cannot convert. Reported by
    /// [`crate::Source::query`], before any row.
    #[error(
        "source `{source_name}`: column `{column}` has type `{type_name}`, which cdp-source cannot read; \
         {hint}"
    )]
    UnsupportedType {
        /// The source's name.
        source_name: String,
        /// The column's name.
        column: String,
        /// The column's position, from 0.
        column_index: usize,
        /// The database's name for the type.
        type_name: String,
        /// How to change the query so it can be read (usually a cast to text).
        hint: String,
    },

    /// One value of one row could not be converted into a [`cdp_rows::Value`] (a
    /// timestamp outside the years 0000 to 9999, text that is not UTF-8, a malformed
    /// binary value). The row is skipped; the stream goes on with the next row.
    #[error("source `{source_name}`: row {row}, column `{column}` ({type_name}): {reason}")]
    Value {
        /// The source's name.
        source_name: String,
        /// The row's number in the result, from 1.
        row: u64,
        /// The column's name.
        column: String,
        /// The column's position, from 0.
        column_index: usize,
        /// The database's name for the column's type.
        type_name: String,
        /// Why the value cannot be converted.
        reason: String,
    },

    /// The connection to the database was lost, or the worker reading it stopped,
    /// while the query ran.
    #[error("source `{source_name}`: connection lost{}: {reason}", after_rows(*rows_read))]
    Connection {
        /// The source's name.
        source_name: String,
        /// What happened.
        reason: String,
        /// Rows read before the connection was lost.
        rows_read: u64,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },
}

impl SourceError {
    /// The name of the source the error comes from.
    pub fn source_name(&self) -> &str {
        match self {
            SourceError::Config { source_name, .. }
            | SourceError::Connect { source_name, .. }
            | SourceError::Query { source_name, .. }
            | SourceError::Timeout { source_name, .. }
            | SourceError::UnsupportedType { source_name, .. }
            | SourceError::Value { source_name, .. }
            | SourceError::Connection { source_name, .. }
            | SourceError::Login { source_name, .. } => source_name,
            #[cfg(feature = "ssh")]
            SourceError::Tunnel { source_name, .. } => source_name,
        }
    }

    /// True when the error concerns one row only ([`SourceError::Value`]): the
    /// stream can be read on. Any other error ends the query.
    pub fn is_row_error(&self) -> bool {
        matches!(self, SourceError::Value { .. })
    }

    /// The column at fault, for [`SourceError::Value`] and
    /// [`SourceError::UnsupportedType`].
    pub fn column(&self) -> Option<&str> {
        match self {
            SourceError::Value { column, .. } | SourceError::UnsupportedType { column, .. } => Some(column),
            _ => None,
        }
    }

    /// The row at fault (from 1), for [`SourceError::Value`].
    pub fn row(&self) -> Option<u64> {
        match self {
            SourceError::Value { row, .. } => Some(*row),
            _ => None,
        }
    }

    /// The error for a source that is named (by a sync, say) but not configured: a
    /// [`SourceError::Config`] error.
    ///
    /// ```
    /// let error = cdp_source::SourceError::not_configured("warehouse");
    /// assert_eq!(
    ///     error.to_string(),
    ///     "source `warehouse`: invalid configuration: no source of that name is configured"
    /// );
    /// ```
    pub fn not_configured(source_name: &str) -> SourceError {
        SourceError::Config {
            source_name: source_name.to_owned(),
            reason: "no source of that name is configured".to_owned(),
        }
    }

    /// The error code of a [`SourceError::Query`], when the database gave one (the
    /// SQLSTATE on PostgreSQL, Snowflake's code on Snowflake, the error number on MySQL
    /// and MariaDB).
    pub fn code(&self) -> Option<&str> {
        match self {
            SourceError::Query { code, .. } => code.as_deref(),
            _ => None,
        }
    }

    /// The database's id of the query that failed ([`SourceError::Query`]), when it has
    /// one (Snowflake).
    pub fn query_id(&self) -> Option<&str> {
        match self {
            SourceError::Query { query_id, .. } => query_id.as_deref(),
            _ => None,
        }
    }
}

/// ` after N rows` when rows were read, else nothing.
fn after_rows(rows: u64) -> String {
    match rows {
        0 => String::new(),
        1 => " after 1 row".to_owned(),
        n => format!(" after {n} rows"),
    }
}

/// A duration as people write it: `10m`, `1h30m`, `2.5s`, `250ms`.
pub(crate) fn format_duration(d: Duration) -> String {
    let total_ms = d.as_millis();
    if total_ms < 1000 {
        return format!("{total_ms}ms");
    }
    if !total_ms.is_multiple_of(1000) {
        return format!("{}s", d.as_secs_f64());
    }
    let secs = d.as_secs();
    let (h, m, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if s > 0 {
        out.push_str(&format!("{s}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(600)), "10m");
        assert_eq!(format_duration(Duration::from_secs(5400)), "1h30m");
        assert_eq!(format_duration(Duration::from_millis(250)), "250ms");
        assert_eq!(format_duration(Duration::from_millis(2500)), "2.5s");
        assert_eq!(format_duration(Duration::from_secs(1)), "1s");
    }

    #[test]
    fn messages_name_the_source_and_rows() {
        let e = SourceError::Query {
            source_name: "warehouse".into(),
            code: Some("22012".into()),
            reason: "ERROR 22012: division by zero".into(),
            rows_read: 1000,
            query_id: None,
            source: None,
        };
        assert_eq!(
            e.to_string(),
            "source `warehouse`: query failed after 1000 rows: ERROR 22012: division by zero"
        );
        assert_eq!(e.code(), Some("22012"));
        assert_eq!((e.column(), e.row()), (None, None));
        let value = SourceError::Value {
            source_name: "warehouse".into(),
            row: 7,
            column: "updated_at".into(),
            column_index: 3,
            type_name: "timestamp".into(),
            reason: "the timestamp is outside the years 0000 to 9999".into(),
        };
        assert_eq!((value.column(), value.row(), value.is_row_error()), (Some("updated_at"), Some(7), true));
        assert!(!e.is_row_error());
        let e = SourceError::Timeout {
            source_name: "warehouse".into(),
            timeout: Duration::from_secs(600),
            rows_read: 0,
            source: None,
        };
        assert_eq!(
            e.to_string(),
            "source `warehouse`: the query was cancelled after the statement timeout of 10m"
        );
    }
}
