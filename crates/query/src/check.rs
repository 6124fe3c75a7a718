//! Checking a rendered query with sqlparser in the source's dialect.

use std::ops::ControlFlow;

use cdp_calls::CallType;
use sqlparser::ast::{
    Expr, Query, Select, SelectItem, SetExpr, Spanned, Statement, Visit, Visitor, WildcardAdditionalOptions,
};
use sqlparser::keywords::Keyword;
use sqlparser::parser::{Parser, ParserError};
use sqlparser::tokenizer::{Location, Token, TokenWithSpan, Tokenizer, Whitespace};

use crate::diagnostic::{ErrorKind, QueryError, QueryWarning, WarningKind};
use crate::template::RenderedQuery;
use crate::{Dialect, QueryTemplate, SyncVariables};

/// The most result columns a sync can use; a row with more is a row error.
pub const MAX_RESULT_COLUMNS: usize = 512;

/// The longest result name (in characters) a sync can use; longer is a row error.
pub const MAX_RESULT_NAME_CHARS: usize = 128;

/// How deeply a query may nest (subqueries, parentheses, expressions) to be checked.
const MAX_NESTING: usize = 50;

/// How to check a query: the source's dialect, and optionally the sync's call type.
///
/// The call type decides which result names are reserved fields (they match without
/// regard to case, so the case-folding warning skips them). Without it, the reserved
/// fields of every call type are skipped.
///
/// A [`Dialect`] converts into options with no call type:
/// `rendered.check(Dialect::Snowflake)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CheckOptions {
    dialect: Dialect,
    call_type: Option<CallType>,
}

impl CheckOptions {
    /// Options for `dialect`, with no call type.
    pub fn new(dialect: Dialect) -> CheckOptions {
        CheckOptions { dialect, call_type: None }
    }

    /// Sets the sync's call type.
    pub fn call_type(mut self, call_type: CallType) -> CheckOptions {
        self.call_type = Some(call_type);
        self
    }

    /// The dialect.
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    /// The call type, if set.
    pub fn sync_call_type(&self) -> Option<CallType> {
        self.call_type
    }
}

impl From<Dialect> for CheckOptions {
    fn from(dialect: Dialect) -> CheckOptions {
        CheckOptions::new(dialect)
    }
}

/// The outcome of a check that passed: the warnings, and what is statically known
/// about the result.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CheckReport {
    warnings: Vec<QueryWarning>,
    result_columns: Option<usize>,
}

impl CheckReport {
    /// The warnings, in the order their positions appear in the template (whole-query
    /// warnings first).
    pub fn warnings(&self) -> &[QueryWarning] {
        &self.warnings
    }

    /// The warnings, owned.
    pub fn into_warnings(self) -> Vec<QueryWarning> {
        self.warnings
    }

    /// How many columns the query returns, when that is known without running it (no
    /// `SELECT *`).
    pub fn result_columns(&self) -> Option<usize> {
        self.result_columns
    }

    /// Adds the warnings of `other` that this report does not have yet.
    fn merge(&mut self, other: CheckReport) {
        for warning in other.warnings {
            if !self.warnings.contains(&warning) {
                self.warnings.push(warning);
            }
        }
        self.warnings.sort_by_key(order);
        self.result_columns = self.result_columns.or(other.result_columns);
    }
}

fn order(warning: &QueryWarning) -> (bool, usize) {
    (!matches!(warning.kind(), WarningKind::LastSyncTimeUnused), warning.position().offset)
}

impl QueryTemplate {
    /// Checks the template at setup time, before any run: renders it as a first run
    /// (`last_sync_time` `0`) and as a later run, and checks both, so that SQL inside
    /// `{{#if last_sync_time}}…{{/if}}` is checked too. The warnings of both are merged.
    ///
    /// # Errors
    /// The first error of either rendering or check (see [`RenderedQuery::check`]).
    pub fn check(&self, options: impl Into<CheckOptions>) -> Result<CheckReport, QueryError> {
        let options = options.into();
        // 2023-11-14T22:13:20Z and a run ten minutes later: any fixed, valid times do.
        const LATER_RUN: SyncVariables = SyncVariables::new(1_700_000_000, 1_700_000_600);
        let mut report =
            self.render(&SyncVariables::first_run(LATER_RUN.last_sync_time()))?.check(options)?;
        report.merge(self.render(&LATER_RUN)?.check(options)?);
        Ok(report)
    }
}

impl RenderedQuery {
    /// Checks the rendered SQL in a dialect: one read-only statement that parses, and the
    /// warnings about it.
    ///
    /// # Errors
    /// [`ErrorKind::Syntax`], [`ErrorKind::TooDeep`], [`ErrorKind::Empty`],
    /// [`ErrorKind::MultipleStatements`] and [`ErrorKind::NotReadOnly`], each at its
    /// place in the template.
    pub fn check(&self, options: impl Into<CheckOptions>) -> Result<CheckReport, QueryError> {
        analyze(self, options.into()).map(|analysis| analysis.report)
    }
}

/// A rendered query that passed the checks, parsed.
pub(crate) struct Analysis<'a> {
    pub(crate) rendered: &'a RenderedQuery,
    pub(crate) query: Box<Query>,
    pub(crate) tokens: Vec<TokenWithSpan>,
    pub(crate) report: CheckReport,
}

impl Analysis<'_> {
    /// The byte offset in the rendered SQL of a parser location.
    pub(crate) fn offset(&self, location: Location) -> usize {
        sql_offset(&self.rendered.sql, location)
    }
}

fn sql_offset(sql: &str, location: Location) -> usize {
    crate::diagnostic::offset_of(sql, location.line as usize, location.column as usize)
}

/// Parses and checks `rendered`.
pub(crate) fn analyze(rendered: &RenderedQuery, options: CheckOptions) -> Result<Analysis<'_>, QueryError> {
    let sql = rendered.sql.as_str();
    let error_at = |kind: ErrorKind, location: Location| {
        let offset = rendered.template_offset(sql_offset(sql, location));
        QueryError::at(kind, &rendered.template, offset)
    };
    let dialect = options.dialect.parser();
    let tokens = Tokenizer::new(dialect, sql).with_unescape(true).tokenize_with_location().map_err(|e| {
        let reason = e.message;
        error_at(ErrorKind::Syntax { reason }, e.location)
    })?;
    let mut parser =
        Parser::new(dialect).with_recursion_limit(MAX_NESTING).with_tokens_with_locations(tokens);
    let parsed = parser.parse_statements();
    let stopped_at = parser.peek_token_ref().span.start;
    let tokens = parser.into_tokens();
    let statements = match parsed {
        Ok(statements) => statements,
        Err(ParserError::RecursionLimitExceeded) => {
            return Err(error_at(ErrorKind::TooDeep { limit: MAX_NESTING }, stopped_at));
        }
        Err(ParserError::ParserError(message) | ParserError::TokenizerError(message)) => {
            let (reason, location) = split_location(&message).unwrap_or((&message, stopped_at));
            if let Some((statement, location)) = failed_write(&tokens, location) {
                return Err(error_at(ErrorKind::NotReadOnly { statement }, location));
            }
            return Err(error_at(ErrorKind::Syntax { reason: reason.to_owned() }, location));
        }
    };
    let start = first_significant(&tokens).map_or(Location::new(1, 1), |t| t.span.start);
    for statement in &statements {
        if let ControlFlow::Break(violation) = statement.visit(&mut ReadOnly { tokens: &tokens }) {
            let location = known(violation.location).unwrap_or(start);
            return Err(error_at(ErrorKind::NotReadOnly { statement: violation.what }, location));
        }
    }
    let mut statements = statements.into_iter();
    let query = match (statements.next(), statements.next()) {
        (None, _) => return Err(error_at(ErrorKind::Empty, start)),
        (Some(Statement::Query(query)), None) => query,
        // The read-only visitor lets only queries through; this is for safety.
        (Some(other), None) => {
            let (statement, location) = statement_head(&other, &tokens);
            return Err(error_at(ErrorKind::NotReadOnly { statement }, location.unwrap_or(start)));
        }
        (Some(_), Some(second)) => {
            let location =
                known(second.span().start).or_else(|| after_first_semicolon(&tokens)).unwrap_or(start);
            let count = 2 + statements.count();
            return Err(error_at(ErrorKind::MultipleStatements { count }, location));
        }
    };
    let mut analysis = Analysis { rendered, query, tokens, report: CheckReport::default() };
    analysis.report = warnings(&analysis, options, start);
    Ok(analysis)
}

fn known(location: Location) -> Option<Location> {
    (location.line > 0).then_some(location)
}

/// Splits sqlparser's `message at Line: L, Column: C` into the message and location.
fn split_location(message: &str) -> Option<(&str, Location)> {
    let (reason, place) = message.rsplit_once(" at Line: ")?;
    let (line, column) = place.split_once(", Column: ")?;
    let location = Location::new(line.trim().parse().ok()?, column.trim().parse().ok()?);
    Some((reason, location))
}

fn significant(token: &TokenWithSpan) -> bool {
    !matches!(token.token, Token::Whitespace(_) | Token::EOF)
}

fn first_significant(tokens: &[TokenWithSpan]) -> Option<&TokenWithSpan> {
    tokens.iter().find(|t| significant(t) && t.token != Token::SemiColon)
}

fn after_first_semicolon(tokens: &[TokenWithSpan]) -> Option<Location> {
    let semicolon = tokens.iter().position(|t| t.token == Token::SemiColon)?;
    first_significant(&tokens[semicolon..]).map(|t| t.span.start)
}

/// Words that start a statement that is not a read-only query. When a statement that
/// starts with one fails to parse, it is reported as not read-only: that is the problem
/// to fix, whatever the parser thinks of the rest.
const WRITE_WORDS: &[&str] = &[
    "ABORT",
    "ALTER",
    "ANALYZE",
    "ATTACH",
    "BEGIN",
    "CALL",
    "CLUSTER",
    "COMMENT",
    "COMMIT",
    "COPY",
    "CREATE",
    "DEALLOCATE",
    "DECLARE",
    "DELETE",
    "DENY",
    "DETACH",
    "DO",
    "DROP",
    "END",
    "EXEC",
    "EXECUTE",
    "GET",
    "GRANT",
    "INSERT",
    "LOAD",
    "LOCK",
    "MERGE",
    "PRAGMA",
    "PREPARE",
    "PUT",
    "REFRESH",
    "REINDEX",
    "RELEASE",
    "REMOVE",
    "RENAME",
    "REPLACE",
    "RESET",
    "REVOKE",
    "ROLLBACK",
    "SAVEPOINT",
    "SET",
    "START",
    "TRUNCATE",
    "UNDROP",
    "UNLOAD",
    "UNLOCK",
    "UPDATE",
    "UPSERT",
    "USE",
    "VACUUM",
];

/// Words that, where the parser gave up, mean a write nested in a query (`WITH d AS
/// (DELETE …)` in a dialect without data-modifying CTEs).
const NESTED_WRITE_WORDS: &[&str] = &[
    "ALTER", "CALL", "COPY", "CREATE", "DELETE", "DROP", "GRANT", "INSERT", "MERGE", "REVOKE", "TRUNCATE",
    "UPDATE",
];

/// If parsing failed at `location` because of a write, what it is and where: the
/// statement starts with a write word, the parser stopped at `INTO`, or a write word
/// follows a `(` before where it stopped.
fn failed_write(tokens: &[TokenWithSpan], location: Location) -> Option<(String, Location)> {
    let mut first = None;
    let mut at_error = None;
    for (index, token) in tokens.iter().enumerate() {
        if token.span.start > location {
            break;
        }
        if token.span.start == location && significant(token) {
            at_error = Some(index);
        }
        match &token.token {
            Token::SemiColon => first = None,
            _ if significant(token) && first.is_none() => first = Some(index),
            _ => {}
        }
    }
    if let Some(first) = first
        && let Some(name) = statement_name(words_from(&tokens[first..]))
        && WRITE_WORDS.contains(&name.split(' ').next().unwrap_or_default())
    {
        return Some((name, tokens[first].span.start));
    }
    let at_error = at_error?;
    if let Some(name) = statement_name(words_from(&tokens[at_error..]))
        && name == "INTO"
    {
        return Some(("SELECT … INTO".to_owned(), tokens[at_error].span.start));
    }
    // A write where a query was expected: right after a `(` (a CTE or subquery) in the
    // failing statement, up to where the parser stopped.
    let from = first.unwrap_or(0);
    let mut previous = None;
    for (index, token) in tokens.iter().enumerate().take(at_error + 1).skip(from) {
        if !significant(token) {
            continue;
        }
        if previous == Some(&Token::LParen)
            && let Token::Word(word) = &token.token
            && word.quote_style.is_none()
            && NESTED_WRITE_WORDS.iter().any(|w| w.eq_ignore_ascii_case(&word.value))
        {
            let name = statement_name(words_from(&tokens[index..])).unwrap_or_default();
            return Some((name, token.span.start));
        }
        previous = Some(&token.token);
    }
    None
}

/// The unquoted words at the start of `tokens`, in upper case.
fn words_from(tokens: &[TokenWithSpan]) -> impl Iterator<Item = String> + '_ {
    tokens.iter().filter(|t| significant(t)).map_while(|t| match &t.token {
        Token::Word(word) if word.quote_style.is_none() => Some(word.value.to_ascii_uppercase()),
        _ => None,
    })
}

/// `INSERT`, `CREATE TABLE`, `ALTER USER`: the first word of a statement, and for
/// `CREATE`, `ALTER` and `DROP` the kind of object (after `OR REPLACE`).
fn statement_name(mut words: impl Iterator<Item = String>) -> Option<String> {
    let first = words.next()?;
    if !matches!(first.as_str(), "CREATE" | "ALTER" | "DROP") {
        return Some(first);
    }
    let mut words = words.skip_while(|w| matches!(w.as_str(), "OR" | "REPLACE"));
    Some(match words.next() {
        Some(object) => format!("{first} {object}"),
        None => first,
    })
}

/// The first token of a parsed statement. sqlparser's span of a statement may start
/// after its first keywords (at the table of `CREATE TABLE t`), so this walks back over
/// keywords from the span's start, stopping at `(`, `;` or anything else.
fn statement_start(statement: &Statement, tokens: &[TokenWithSpan]) -> Option<usize> {
    let start = known(statement.span().start)?;
    let mut first = tokens.iter().position(|t| significant(t) && t.span.start >= start)?;
    for (index, token) in tokens[..first].iter().enumerate().rev() {
        match &token.token {
            Token::Whitespace(_) => {}
            Token::Word(word) if word.quote_style.is_none() && word.keyword != Keyword::NoKeyword => {
                first = index
            }
            _ => break,
        }
    }
    Some(first)
}

/// A parsed statement's name as written (`CREATE TABLE`) and its start, or as sqlparser
/// prints it when its position is not known.
fn statement_head(statement: &Statement, tokens: &[TokenWithSpan]) -> (String, Option<Location>) {
    if let Some(first) = statement_start(statement, tokens)
        && let Some(name) = statement_name(words_from(&tokens[first..]))
    {
        return (name, Some(tokens[first].span.start));
    }
    let text = statement.to_string();
    (statement_name(text.split_whitespace().map(str::to_ascii_uppercase)).unwrap_or_default(), None)
}

/// Something that is not read-only, found in a parsed statement.
struct Violation {
    what: String,
    location: Location,
}

/// Stops at the first statement that is not a query (also nested ones, such as
/// `WITH d AS (DELETE … RETURNING *)`), `SELECT … INTO` and locking reads.
struct ReadOnly<'a> {
    tokens: &'a [TokenWithSpan],
}

impl Visitor for ReadOnly<'_> {
    type Break = Violation;

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<Violation> {
        if matches!(statement, Statement::Query(_)) {
            return ControlFlow::Continue(());
        }
        let (what, location) = statement_head(statement, self.tokens);
        ControlFlow::Break(Violation { what, location: location.unwrap_or(statement.span().start) })
    }

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<Violation> {
        match query.locks.first() {
            Some(lock) => {
                let start = query.span().start;
                let location = keyword_after(self.tokens, start, "FOR").unwrap_or(start);
                ControlFlow::Break(Violation { what: format!("SELECT … {lock}"), location })
            }
            None => ControlFlow::Continue(()),
        }
    }

    fn pre_visit_select(&mut self, select: &Select) -> ControlFlow<Violation> {
        match &select.into {
            Some(_) => {
                let start = select.select_token.0.span.start;
                let location = keyword_after(self.tokens, start, "INTO").unwrap_or(start);
                ControlFlow::Break(Violation { what: "SELECT … INTO".to_owned(), location })
            }
            None => ControlFlow::Continue(()),
        }
    }
}

/// The first unquoted `keyword` at or after `start`.
fn keyword_after(tokens: &[TokenWithSpan], start: Location, keyword: &str) -> Option<Location> {
    tokens
        .iter()
        .filter(|t| t.span.start >= start)
        .find(|t| matches!(&t.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(keyword)))
        .map(|t| t.span.start)
}

/// The warnings about a query that passed the checks.
fn warnings(analysis: &Analysis<'_>, options: CheckOptions, start: Location) -> CheckReport {
    let rendered = analysis.rendered;
    let mut warnings = Vec::new();
    // last_sync_time: used somewhere outside a SQL comment?
    let mut commented = None;
    let mut used = false;
    for (range, tag) in rendered.last_sync_time_uses() {
        if in_comment(analysis, range) {
            commented.get_or_insert(tag);
        } else {
            used = true;
        }
    }
    if !used {
        let offset = commented.unwrap_or_else(|| rendered.template_offset(analysis.offset(start)));
        warnings.push(QueryWarning::at(WarningKind::LastSyncTimeUnused, &rendered.template, offset));
    }
    let mut warn = |kind: WarningKind, location: Location| {
        let offset = rendered.template_offset(analysis.offset(known(location).unwrap_or(start)));
        warnings.push(QueryWarning::at(kind, &rendered.template, offset));
    };

    // SELECT *: in every select whose columns are the result.
    let mut selects = Vec::new();
    result_selects(&analysis.query.body, &mut selects);
    for select in &selects {
        for item in &select.projection {
            if let SelectItem::Wildcard(options) | SelectItem::QualifiedWildcard(_, options) = item {
                let wildcard = item.to_string();
                let wildcard = wildcard.split_whitespace().next().unwrap_or("*").to_owned();
                warn(WarningKind::SelectStar { wildcard }, wildcard_location(item, options));
            }
        }
    }

    // Result names and count: the first select names the columns of a set operation.
    let mut result_columns = None;
    if let Some(select) = leftmost_select(&analysis.query.body) {
        let known_count = select
            .projection
            .iter()
            .all(|item| !matches!(item, SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)));
        let mut count = 0;
        for item in &select.projection {
            for name in result_names(item, &analysis.tokens) {
                count += 1;
                if count == MAX_RESULT_COLUMNS + 1 && known_count {
                    let total =
                        select.projection.iter().map(|i| result_names(i, &analysis.tokens).len()).sum();
                    let kind = WarningKind::TooManyColumns { count: total, limit: MAX_RESULT_COLUMNS };
                    warn(kind, name.location);
                }
                let Some(written) = name.name else { continue };
                let chars = written.chars().count();
                if chars > MAX_RESULT_NAME_CHARS {
                    let kind = WarningKind::ResultNameTooLong {
                        name: written.clone(),
                        chars,
                        limit: MAX_RESULT_NAME_CHARS,
                    };
                    warn(kind, name.location);
                }
                if let Some(folding) = options.dialect.folds_unquoted_names()
                    && !name.quoted
                    && !is_reserved(&written, options.call_type)
                {
                    let arrives_as = folding.apply(&written);
                    let suggested = if written.chars().any(char::is_lowercase) {
                        written.clone()
                    } else {
                        written.to_lowercase()
                    };
                    if arrives_as != suggested {
                        let quoted_alias = format!("\"{}\"", suggested.replace('"', "\"\""));
                        let kind = WarningKind::FoldedResultName { name: written, arrives_as, quoted_alias };
                        warn(kind, name.location);
                    }
                }
            }
        }
        if known_count {
            result_columns = Some(count);
        }
    } else if let Some(SetExpr::Values(values)) = leftmost_body(&analysis.query.body) {
        result_columns = values.rows.first().map(|row| row.content.len());
    }
    warnings.sort_by_key(order);
    CheckReport { warnings, result_columns }
}

/// Whether a rendered range (or, if empty, its start) lies inside one SQL comment.
fn in_comment(analysis: &Analysis<'_>, range: std::ops::Range<usize>) -> bool {
    analysis.tokens.iter().any(|t| {
        matches!(
            t.token,
            Token::Whitespace(Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_))
        ) && {
            let start = analysis.offset(t.span.start);
            let end = analysis.offset(t.span.end);
            start <= range.start && range.end <= end && range.start < end
        }
    })
}

fn wildcard_location(item: &SelectItem, options: &WildcardAdditionalOptions) -> Location {
    match known(item.span().start) {
        Some(location) => location,
        None => options.wildcard_token.0.span.start,
    }
}

/// The selects whose projections are the result: the body's, each side of a set
/// operation's, through parentheses.
fn result_selects<'q>(body: &'q SetExpr, out: &mut Vec<&'q Select>) {
    match body {
        SetExpr::Select(select) => out.push(select),
        SetExpr::Query(query) => result_selects(&query.body, out),
        SetExpr::SetOperation { left, right, .. } => {
            result_selects(left, out);
            result_selects(right, out);
        }
        _ => {}
    }
}

/// The leftmost part of a set operation, through parentheses: it names the columns.
fn leftmost_body(body: &SetExpr) -> Option<&SetExpr> {
    match body {
        SetExpr::Query(query) => leftmost_body(&query.body),
        SetExpr::SetOperation { left, .. } => leftmost_body(left),
        other => Some(other),
    }
}

fn leftmost_select(body: &SetExpr) -> Option<&Select> {
    match leftmost_body(body)? {
        SetExpr::Select(select) => Some(select),
        _ => None,
    }
}

/// A result column as far as the query text tells.
struct ResultName {
    /// The name as written; `None` when the database makes one up (an expression without
    /// an alias) or for a wildcard.
    name: Option<String>,
    quoted: bool,
    location: Location,
}

fn result_names(item: &SelectItem, tokens: &[TokenWithSpan]) -> Vec<ResultName> {
    let named = |ident: &sqlparser::ast::Ident, expr: &Expr| ResultName {
        name: Some(ident.value.clone()),
        quoted: ident.quote_style.is_some(),
        location: known(ident.span.start)
            .or_else(|| alias_location(tokens, expr.span().end, &ident.value))
            .unwrap_or(expr.span().start),
    };
    match item {
        SelectItem::ExprWithAlias { expr, alias } => vec![named(alias, expr)],
        SelectItem::ExprWithAliases { expr, aliases } => {
            aliases.iter().map(|alias| named(alias, expr)).collect()
        }
        SelectItem::UnnamedExpr(expr) => vec![match expr {
            Expr::Identifier(ident) => named(ident, expr),
            Expr::CompoundIdentifier(parts) if !parts.is_empty() => named(&parts[parts.len() - 1], expr),
            _ => ResultName { name: None, quoted: false, location: expr.span().start },
        }],
        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..) => Vec::new(),
    }
}

/// Where an alias whose span sqlparser left empty (a string alias, `AS 'name'`) is
/// written: the first token after its expression that spells it.
fn alias_location(tokens: &[TokenWithSpan], after: Location, alias: &str) -> Option<Location> {
    let after = known(after)?;
    tokens
        .iter()
        .filter(|t| t.span.start >= after)
        .find(|t| match &t.token {
            Token::Word(word) => word.value == alias,
            Token::SingleQuotedString(text) | Token::DoubleQuotedString(text) => text == alias,
            _ => false,
        })
        .map(|t| t.span.start)
}

/// The reserved fields of a call type (they match without regard to case), or of every
/// call type when it is not known.
fn is_reserved(name: &str, call_type: Option<CallType>) -> bool {
    const COMMON: &[&str] = &["userId", "messageId", "timestamp", "context"];
    let specific: &[&str] = match call_type {
        Some(CallType::Identify) => &["anonymousId", "groupId", "integrations"],
        Some(CallType::Group) => &["anonymousId", "groupId", "integrations", "objectTypeId"],
        Some(CallType::Track) => &["anonymousId", "event", "integrations"],
        Some(CallType::Page | CallType::Screen) => &["anonymousId", "event", "integrations", "name"],
        Some(CallType::Alias) => &["previousId"],
        None => &["anonymousId", "groupId", "integrations", "objectTypeId", "event", "name", "previousId"],
    };
    COMMON.iter().chain(specific).any(|field| field.eq_ignore_ascii_case(name))
}
