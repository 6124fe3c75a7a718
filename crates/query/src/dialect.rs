//! The SQL dialects a sync query can be checked in.

use std::fmt;
use std::str::FromStr;

use sqlparser::dialect::{
    BigQueryDialect, GenericDialect, MsSqlDialect, MySqlDialect, PostgreSqlDialect, RedshiftSqlDialect,
    SQLiteDialect, SnowflakeDialect,
};

/// The SQL dialect of a source: the database or warehouse the query runs on.
///
/// The parser behind it is sqlparser's dialect of the same name; it is not part of this
/// crate's API, so upgrading sqlparser does not change these names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
#[allow(clippy::upper_case_acronyms)]
pub enum Dialect {
    /// PostgreSQL (and compatible servers).
    PostgreSQL,
    /// MySQL and MariaDB.
    MySQL,
    /// SQLite.
    SQLite,
    /// Snowflake: unquoted names are folded to upper case.
    Snowflake,
    /// Google BigQuery (GoogleSQL).
    BigQuery,
    /// Microsoft SQL Server (T-SQL): rows are limited with `TOP`.
    MsSql,
    /// Amazon Redshift.
    Redshift,
    /// Any other database: a permissive parser that accepts most common syntax.
    Generic,
}

impl Dialect {
    /// Every dialect, for running one check or test across all of them.
    pub const ALL: [Dialect; 8] = [
        Dialect::PostgreSQL,
        Dialect::MySQL,
        Dialect::SQLite,
        Dialect::Snowflake,
        Dialect::BigQuery,
        Dialect::MsSql,
        Dialect::Redshift,
        Dialect::Generic,
    ];

    /// The dialect's name in lower case, as [`FromStr`] accepts it: `postgresql`, `mysql`,
    /// `sqlite`, `snowflake`, `bigquery`, `mssql`, `redshift` or `generic`.
    pub fn name(self) -> &'static str {
        match self {
            Dialect::PostgreSQL => "postgresql",
            Dialect::MySQL => "mysql",
            Dialect::SQLite => "sqlite",
            Dialect::Snowflake => "snowflake",
            Dialect::BigQuery => "bigquery",
            Dialect::MsSql => "mssql",
            Dialect::Redshift => "redshift",
            Dialect::Generic => "generic",
        }
    }

    /// The case the database folds unquoted result names to, when that changes what a
    /// sync receives and a quoted alias keeps the name as written.
    pub(crate) fn folds_unquoted_names(self) -> Option<Folding> {
        match self {
            Dialect::Snowflake => Some(Folding::Upper),
            Dialect::PostgreSQL => Some(Folding::Lower),
            // Redshift folds even quoted names unless `enable_case_sensitive_identifier` is
            // on, so a quoted alias would be wrong advice there.
            _ => None,
        }
    }

    /// The sqlparser dialect behind this one.
    pub(crate) fn parser(self) -> &'static dyn sqlparser::dialect::Dialect {
        static POSTGRESQL: PostgreSqlDialect = PostgreSqlDialect {};
        static MYSQL: MySqlDialect = MySqlDialect {};
        static SQLITE: SQLiteDialect = SQLiteDialect {};
        static SNOWFLAKE: SnowflakeDialect = SnowflakeDialect;
        static BIGQUERY: BigQueryDialect = BigQueryDialect;
        static MSSQL: MsSqlDialect = MsSqlDialect {};
        static REDSHIFT: RedshiftSqlDialect = RedshiftSqlDialect {};
        static GENERIC: GenericDialect = GenericDialect;
        match self {
            Dialect::PostgreSQL => &POSTGRESQL,
            Dialect::MySQL => &MYSQL,
            Dialect::SQLite => &SQLITE,
            Dialect::Snowflake => &SNOWFLAKE,
            Dialect::BigQuery => &BIGQUERY,
            Dialect::MsSql => &MSSQL,
            Dialect::Redshift => &REDSHIFT,
            Dialect::Generic => &GENERIC,
        }
    }
}

/// How a database folds the case of unquoted names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Folding {
    Upper,
    Lower,
}

impl Folding {
    pub(crate) fn apply(self, name: &str) -> String {
        match self {
            Folding::Upper => name.to_uppercase(),
            Folding::Lower => name.to_lowercase(),
        }
    }
}

impl fmt::Display for Dialect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A dialect name that [`Dialect::from_str`] does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown SQL dialect {0:?}: expected postgresql, mysql, sqlite, snowflake, bigquery, mssql, redshift or generic"
)]
pub struct UnknownDialect(pub String);

impl FromStr for Dialect {
    type Err = UnknownDialect;

    /// Reads a dialect name without regard to case. Besides the [`Dialect::name`]s it
    /// accepts the usual aliases: `postgres`, `pg`, `mariadb`, `sqlserver`, `tsql`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let dialect = match s.trim().to_ascii_lowercase().as_str() {
            "postgresql" | "postgres" | "pg" => Dialect::PostgreSQL,
            "mysql" | "mariadb" => Dialect::MySQL,
            "sqlite" | "sqlite3" => Dialect::SQLite,
            "snowflake" => Dialect::Snowflake,
            "bigquery" => Dialect::BigQuery,
            "mssql" | "sqlserver" | "tsql" => Dialect::MsSql,
            "redshift" => Dialect::Redshift,
            "generic" => Dialect::Generic,
            _ => return Err(UnknownDialect(s.to_owned())),
        };
        Ok(dialect)
    }
}
