//! Errors and warnings: structured values that point into the template the user wrote.

use std::fmt;

/// Where a diagnostic points: a place in the template the user wrote (not in the
/// rendered SQL, whose lengths differ after `{{...}}` substitution).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub struct Position {
    /// 1-based line; lines end at `\n`.
    pub line: usize,
    /// 1-based column, counted in characters (not bytes) from the start of the line.
    pub column: usize,
    /// Byte offset from the start of the template.
    pub offset: usize,
}

impl Position {
    /// The position of byte `offset` in `text` (clamped to the text and moved back to a
    /// character boundary).
    pub(crate) fn at(text: &str, offset: usize) -> Position {
        let offset = floor_char_boundary(text, offset);
        let before = &text[..offset];
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        Position {
            line: before.bytes().filter(|&b| b == b'\n').count() + 1,
            column: before[line_start..].chars().count() + 1,
            offset,
        }
    }

    /// The text of this position's line in `text`, without its line end.
    pub(crate) fn line_text(self, text: &str) -> String {
        let offset = floor_char_boundary(text, self.offset);
        let start = text[..offset].rfind('\n').map_or(0, |i| i + 1);
        let end = text[offset..].find('\n').map_or(text.len(), |i| offset + i);
        text[start..end].trim_end_matches('\r').to_owned()
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// The byte offset of 1-based `line` and character `column` in `text`, as sqlparser and
/// handlebars count them. Out-of-range values are clamped to the line or the text.
pub(crate) fn offset_of(text: &str, line: usize, column: usize) -> usize {
    let mut start = 0;
    for _ in 1..line.max(1) {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let rest = &text[start..];
    let line_len = rest.find('\n').unwrap_or(rest.len());
    let within = rest[..line_len].char_indices().nth(column.saturating_sub(1)).map_or(line_len, |(i, _)| i);
    start + within
}

pub(crate) fn floor_char_boundary(text: &str, offset: usize) -> usize {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// What went wrong: the kind of a [`QueryError`], with the details as fields.
///
/// Its `Display` is the diagnostic's one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The template is longer than [`MAX_QUERY_CHARS`](crate::MAX_QUERY_CHARS).
    #[error("the query is {chars} characters long, over the limit of {limit}")]
    TooLong {
        /// The template's length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// The template is not valid handlebars: an unclosed `{{`, a block closed by the
    /// wrong helper, a malformed expression.
    #[error("template syntax error: {reason}")]
    TemplateSyntax {
        /// What the template parser expected or found.
        reason: String,
    },
    /// The template uses a variable that is not offered (strict mode).
    #[error(
        "unknown variable `{name}`: the variables are last_sync_time, last_sync_time_iso, sync_started_at and sync_started_at_iso"
    )]
    UnknownVariable {
        /// The variable as written.
        name: String,
    },
    /// The template calls a helper (or partial or decorator) that does not exist.
    #[error("unknown helper `{name}`")]
    UnknownHelper {
        /// The helper's name as written.
        name: String,
    },
    /// A helper failed while rendering (a missing or mistyped parameter).
    #[error("cannot render the template: {reason}")]
    Render {
        /// Handlebars' description of the failure.
        reason: String,
    },
    /// A time variable cannot be written as RFC 3339 (its year is outside 0000–9999).
    #[error("`{variable}` is {seconds} seconds since 1970, outside the years 0000 to 9999")]
    TimeOutOfRange {
        /// The variable, `last_sync_time_iso` or `sync_started_at_iso`.
        variable: &'static str,
        /// Its value in Unix seconds.
        seconds: i64,
    },
    /// The rendered SQL does not parse in the dialect.
    #[error("SQL syntax error: {reason}")]
    Syntax {
        /// The SQL parser's message, without its position (see [`QueryError::position`]).
        reason: String,
    },
    /// The SQL nests subqueries or expressions, or the template nests blocks or
    /// subexpressions, too deeply to check.
    #[error("the query nests too deeply to check (more than {limit} levels)")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// The template renders to no statement at all (empty, or only comments).
    #[error("the query is empty: it must be one SELECT statement")]
    Empty,
    /// The query has more than one statement.
    #[error("the query has {count} statements: it must be exactly one")]
    MultipleStatements {
        /// How many statements it has.
        count: usize,
    },
    /// The query writes, changes the schema or the session, or is not a query at all.
    #[error(
        "`{statement}` is not allowed: a sync query must be read-only (SELECT, WITH, set operations or VALUES)"
    )]
    NotReadOnly {
        /// What was found, as written in upper case: `INSERT`, `CREATE TABLE`, `GRANT`,
        /// `SELECT … INTO`, `SELECT … FOR UPDATE`.
        statement: String,
    },
}

/// Something that stops a query from being used: a template, SQL or rule violation.
///
/// Carries a [kind](Self::kind) (with structured fields), a [message](Self::message) and a
/// [position](Self::position) in the template the user wrote. `Display` shows it the way
/// a compiler shows a diagnostic:
///
/// ```text
/// error: unknown variable `last_sync`: the variables are last_sync_time, ...
///  --> line 3, column 22
///   |
/// 3 | WHERE updated_at > {{last_sync}}
///   |                      ^
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryError {
    kind: ErrorKind,
    position: Position,
    line_text: String,
}

impl QueryError {
    /// An error of `kind` at byte `offset` of `template`.
    pub(crate) fn at(kind: ErrorKind, template: &str, offset: usize) -> QueryError {
        let position = Position::at(template, offset);
        QueryError { kind, line_text: position.line_text(template), position }
    }

    /// What went wrong, with its details.
    pub fn kind(&self) -> &ErrorKind {
        &self.kind
    }

    /// The one-line message, without the position (the `Display` of [`kind`](Self::kind)).
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// Where in the template.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The template line the position is on, as shown under the message.
    pub fn source_line(&self) -> &str {
        &self.line_text
    }
}

impl fmt::Display for QueryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_diagnostic(f, "error", &self.kind, self.position, &self.line_text)
    }
}

impl std::error::Error for QueryError {}

/// A finding that does not stop the query: the kind of a [`QueryWarning`].
///
/// Its `Display` is the warning's one-line message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WarningKind {
    /// `last_sync_time` (or `last_sync_time_iso`) is not referenced, or only inside SQL
    /// comments: every run reads every row again.
    #[error(
        "the query does not use {{{{last_sync_time}}}}: every run will read every row again; compare a \"last updated\" column with it"
    )]
    LastSyncTimeUnused,
    /// The result columns come from `SELECT *` (or `t.*`): they change with the table.
    #[error("`{wildcard}` selects whatever columns the table has: name the columns the sync needs")]
    SelectStar {
        /// The wildcard as written: `*` or `t.*`.
        wildcard: String,
    },
    /// An unquoted result name will arrive in a different case (upper case on Snowflake,
    /// lower case on PostgreSQL), and it is not a reserved field, which would match
    /// without regard to case. It becomes a trait or property under the folded name.
    #[error(
        "result name `{name}` will arrive as `{arrives_as}`: write `AS {quoted_alias}` to choose its case"
    )]
    FoldedResultName {
        /// The name as written in the query (for a bare column, its last part).
        name: String,
        /// The name the database will return.
        arrives_as: String,
        /// The quoted alias to use, with its quotes: `"email"`. It keeps the name as
        /// written when that has lower-case letters, else it is the name in lower case.
        quoted_alias: String,
    },
    /// A result name is longer than [`MAX_RESULT_NAME_CHARS`](crate::MAX_RESULT_NAME_CHARS):
    /// every row will be a row error.
    #[error("result name `{name}` is {chars} characters long, over the limit of {limit}")]
    ResultNameTooLong {
        /// The name.
        name: String,
        /// Its length in characters.
        chars: usize,
        /// The limit.
        limit: usize,
    },
    /// The query returns more than [`MAX_RESULT_COLUMNS`](crate::MAX_RESULT_COLUMNS)
    /// columns: every row will be a row error.
    #[error("the query returns {count} columns, over the limit of {limit}")]
    TooManyColumns {
        /// How many columns it returns.
        count: usize,
        /// The limit.
        limit: usize,
    },
}

/// A finding that does not stop the query, with a kind, a message and a position in the
/// template; `Display` shows it like [`QueryError`] does, as `warning: …`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueryWarning {
    kind: WarningKind,
    position: Position,
    line_text: String,
}

impl QueryWarning {
    /// A warning of `kind` at byte `offset` of `template`.
    pub(crate) fn at(kind: WarningKind, template: &str, offset: usize) -> QueryWarning {
        let position = Position::at(template, offset);
        QueryWarning { kind, line_text: position.line_text(template), position }
    }

    /// What was found, with its details.
    pub fn kind(&self) -> &WarningKind {
        &self.kind
    }

    /// The one-line message, without the position (the `Display` of [`kind`](Self::kind)).
    pub fn message(&self) -> String {
        self.kind.to_string()
    }

    /// Where in the template.
    pub fn position(&self) -> Position {
        self.position
    }

    /// The template line the position is on, as shown under the message.
    pub fn source_line(&self) -> &str {
        &self.line_text
    }
}

impl fmt::Display for QueryWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_diagnostic(f, "warning", &self.kind, self.position, &self.line_text)
    }
}

/// Writes `level: message`, the position, the line and a caret under the column.
fn write_diagnostic(
    f: &mut fmt::Formatter<'_>,
    level: &str,
    message: &dyn fmt::Display,
    position: Position,
    line_text: &str,
) -> fmt::Result {
    let number = position.line.to_string();
    let gutter = " ".repeat(number.len());
    writeln!(f, "{level}: {message}")?;
    writeln!(f, "{gutter}--> {position}")?;
    writeln!(f, "{gutter} |")?;
    writeln!(f, "{number} | {line_text}")?;
    // Keep tabs so the caret lines up under the same column in a terminal.
    let pad: String = line_text
        .chars()
        .take(position.column.saturating_sub(1))
        .map(|c| if c == '\t' { '\t' } else { ' ' })
        .collect();
    write!(f, "{gutter} | {pad}^")
}
