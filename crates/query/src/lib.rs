//! Reverse-ETL query templating (handlebars) and read-only checks in the source's SQL
//! dialect (sqlparser).
//!
//! A sync is defined by a SQL query that uses `{{last_sync_time}}`. This crate renders
//! that query for a run and checks it in the source's dialect before anything runs, so
//! that mistakes surface as clear messages when the sync is set up, not as half-finished
//! runs. Errors and warnings are structured values that point at the line and column of
//! the template the user wrote, even after `{{...}}` substitution changed lengths.
//!
//! # Recipe: render, check, read the warnings
//!
//! ```
//! use cdp_query::{Dialect, ErrorKind, QueryTemplate, SyncVariables, WarningKind};
//!
//! let template = QueryTemplate::new(
//!     "SELECT ID AS userId, EMAIL AS email\nFROM users\nWHERE LAST_UPDATED >= {{last_sync_time}}",
//! )?;
//!
//! // When the sync is set up: check the query in the source's dialect.
//! let report = template.check(Dialect::Snowflake)?;
//! let [warning] = report.warnings() else { panic!("one warning") };
//! let WarningKind::FoldedResultName { arrives_as, quoted_alias, .. } = warning.kind() else { panic!() };
//! assert_eq!((arrives_as.as_str(), quoted_alias.as_str()), ("EMAIL", "\"email\""));
//! assert_eq!((warning.position().line, warning.position().column), (1, 31));
//! assert_eq!(
//!     warning.to_string(),
//!     "warning: result name `email` will arrive as `EMAIL`: write `AS \"email\"` to choose its case
//!  --> line 1, column 31
//!   |
//! 1 | SELECT ID AS userId, EMAIL AS email
//!   |                               ^"
//! );
//!
//! // For each run: render with the run's variables; checking again is cheap.
//! let rendered = template.render(&SyncVariables::new(1_700_000_000, 1_700_000_600))?;
//! assert!(rendered.sql().ends_with("WHERE LAST_UPDATED >= 1700000000"));
//! rendered.check(Dialect::Snowflake)?;
//!
//! // A preview returns at most 10 rows, in the dialect's own syntax.
//! assert!(rendered.preview(Dialect::Snowflake, 10)?.ends_with("\nLIMIT 10"));
//! assert!(rendered.preview(Dialect::MsSql, 10)?.starts_with("SELECT TOP (10) ID AS userId"));
//!
//! // Mistakes are errors with a kind, a message and a position in the template.
//! let error = QueryTemplate::new("SELECT id AS userId\nFROM users\nWHERE updated > {{last_sync}}").unwrap_err();
//! assert!(matches!(error.kind(), ErrorKind::UnknownVariable { name } if name == "last_sync"));
//! assert_eq!((error.position().line, error.position().column), (3, 19));
//! let error = QueryTemplate::new("DELETE FROM users")?.check(Dialect::PostgreSQL).unwrap_err();
//! assert!(matches!(error.kind(), ErrorKind::NotReadOnly { statement } if statement == "DELETE"));
//! # Ok::<(), cdp_query::QueryError>(())
//! ```
//!
//! # Variables
//!
//! | variable | value |
//! |---|---|
//! | `{{last_sync_time}}` | Unix seconds at which the previous successful run started; `0` before the first run |
//! | `{{last_sync_time_iso}}` | the same instant in RFC 3339, `2023-11-14T22:13:20Z` (`1970-01-01T00:00:00Z` before the first run) |
//! | `{{sync_started_at}}` | Unix seconds at which this run started |
//! | `{{sync_started_at_iso}}` | the same instant in RFC 3339 |
//!
//! Rendering is strict (an unknown variable is an error) and does no HTML escaping, so
//! `'`, `&` and `<` stay as written. Handlebars' built-in helpers (`if`, `unless`, `eq`,
//! …) are available; there are no partials and no other helpers.
//!
//! # Checks
//!
//! Errors ([`ErrorKind`]): the template is at most [`MAX_QUERY_CHARS`] characters; the
//! template syntax is valid; every variable exists; the SQL parses in the
//! [`Dialect`]; it is exactly one statement; it is read-only (`SELECT`, `WITH`, set
//! operations and `VALUES` only, also for anything nested inside, such as a CTE).
//!
//! Warnings ([`WarningKind`]): `last_sync_time` is not used; the result comes from
//! `SELECT *`; an unquoted result name will arrive in another case (Snowflake); a result
//! name is longer than [`MAX_RESULT_NAME_CHARS`]; there are more than
//! [`MAX_RESULT_COLUMNS`] result columns.
//!
//! # Decisions where the spec is silent
//! - **`sync_started_at`** is Unix seconds, like `last_sync_time`, so that
//!   `updated > {{last_sync_time}} AND updated <= {{sync_started_at}}` reads a closed
//!   window and the next run's `last_sync_time` is this run's `sync_started_at`.
//!   `sync_started_at_iso` is offered for symmetry with `last_sync_time_iso`. The RFC 3339
//!   forms have whole seconds and a `Z`; a time outside the years 0000–9999 is an error
//!   ([`ErrorKind::TimeOutOfRange`]) only if the template uses its `_iso` form.
//! - **Strictness is static**: every variable and helper the template names is checked
//!   when it is compiled, also inside `{{#if}}` branches that a run would skip (handlebars'
//!   own strict mode lets `{{#if typo}}` pass as false). `@root.last_sync_time` is accepted;
//!   `this`, `@index` and other context paths are unknown variables, as the context holds
//!   only the variables. Blocks and subexpressions nest at most 32 deep.
//! - **Length** is counted in characters (Unicode scalar values) of the template, before
//!   rendering; the rendered SQL is not limited.
//! - **One statement**: empty statements and trailing semicolons do not count; a query of
//!   only comments is [`ErrorKind::Empty`]. A statement that is not read-only is reported
//!   before a second statement, as it is the more serious mistake.
//! - **Read-only** also rejects locking reads (`SELECT … FOR UPDATE`/`FOR SHARE`: they
//!   take locks and need write privileges) and statements that are not queries at all
//!   (`SHOW`, `EXPLAIN`, `USE`). A statement that starts with a write word (`CREATE`,
//!   `GRANT`, `ALTER`, …) and does not parse is reported as not read-only rather than as a
//!   syntax error. Functions with side effects cannot be seen in the SQL: give the sync a
//!   read-only database user, as the source documentation advises.
//! - **`last_sync_time` counts as used** when `{{last_sync_time}}` or
//!   `{{last_sync_time_iso}}` appears outside SQL comments, including as a helper argument
//!   (`{{#if last_sync_time}}`). A use that is only inside a `--` or `/* */` comment gets
//!   the warning, pointing at it.
//! - **`SELECT *`** is warned where it makes the result: the outer select and every branch
//!   of a `UNION`/`INTERSECT`/`EXCEPT`. `COUNT(*)`, `EXISTS (SELECT * …)` and stars in CTEs or
//!   subqueries whose columns the outer select names are not warned.
//! - **Result names** come from the first select of a set operation, as databases name
//!   them. An expression without an alias has a name the database makes up; it is not
//!   checked. The column count is known when there is no wildcard.
//! - **Case folding**: on Snowflake, every unquoted result name that is not a reserved field
//!   is warned (reserved fields match without regard to case). The quoted alias keeps the
//!   name as written when it has lower-case letters and is the name in lower case
//!   otherwise (`EMAIL` → `"email"`). The same warning is given on PostgreSQL, which folds
//!   unquoted names to lower case, when that changes the name (`createdAt` arrives as
//!   `createdat`). Redshift is not warned: it folds quoted names too, by default. Reserved
//!   fields are those of the [`CheckOptions::call_type`], or of every call type.
//! - **Positions** are 1-based lines (ending at `\n`) and columns in characters. In text a
//!   tag produced (a variable's value, a block helper's output) they point at the tag's
//!   `{{`. Text after an escaped `\{{` may be a few columns off.
//! - **Setup check**: [`QueryTemplate::check`] renders the query twice, as a first run and
//!   as a later run, so both sides of `{{#if last_sync_time}}` are checked.
//! - **Preview** keeps the query text and adds the row limit (see
//!   [`RenderedQuery::preview`]); it runs the checks first.
//! - Queries may nest 50 levels deep ([`ErrorKind::TooDeep`]); no input makes the
//!   checks panic.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod check;
mod diagnostic;
mod dialect;
mod preview;
mod template;

pub use check::{CheckOptions, CheckReport, MAX_RESULT_COLUMNS, MAX_RESULT_NAME_CHARS};
pub use diagnostic::{ErrorKind, Position, QueryError, QueryWarning, WarningKind};
pub use dialect::{Dialect, UnknownDialect};
pub use template::{MAX_QUERY_CHARS, QueryTemplate, RenderedQuery, SyncVariables, VARIABLES};

/// Re-exported so that [`CheckOptions::call_type`] can be called without naming
/// cdp-calls' version.
pub use cdp_calls::CallType;
