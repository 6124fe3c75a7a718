//! Helpers shared by the integration tests.
#![allow(dead_code, unreachable_pub)]

use cdp_query::{CheckOptions, CheckReport, QueryError, QueryTemplate, QueryWarning, WarningKind};

/// 1-based line and character column of the `n`th (0-based) occurrence of `needle`,
/// counted here independently of the crate.
pub fn line_col_nth(text: &str, needle: &str, n: usize) -> (usize, usize) {
    let offset = text
        .match_indices(needle)
        .nth(n)
        .unwrap_or_else(|| panic!("{needle:?} occurs fewer than {} times in {text:?}", n + 1))
        .0;
    let before = &text[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().unwrap().chars().count() + 1;
    (line, column)
}

/// [`line_col_nth`] of the first occurrence.
pub fn line_col(text: &str, needle: &str) -> (usize, usize) {
    line_col_nth(text, needle, 0)
}

/// Compiles and checks a template as the setup step does.
pub fn check(template: &str, options: impl Into<CheckOptions>) -> Result<CheckReport, QueryError> {
    QueryTemplate::new(template)?.check(options)
}

/// The warnings of a template that must pass the checks.
pub fn warnings(template: &str, options: impl Into<CheckOptions>) -> Vec<QueryWarning> {
    let options = options.into();
    match check(template, options) {
        Ok(report) => report.into_warnings(),
        Err(e) => panic!("{:?} rejected\n{template}\n{e}", options.dialect()),
    }
}

/// The error of a template that must fail the checks.
pub fn error(template: &str, options: impl Into<CheckOptions>) -> QueryError {
    let options = options.into();
    match check(template, options) {
        Ok(report) => panic!("{:?} accepted\n{template}\n{:?}", options.dialect(), report),
        Err(e) => e,
    }
}

/// Line and column of a diagnostic.
pub fn at(position: cdp_query::Position) -> (usize, usize) {
    (position.line, position.column)
}

/// Whether a warning is the "last_sync_time is not used" one.
pub fn is_unused(w: &QueryWarning) -> bool {
    matches!(w.kind(), WarningKind::LastSyncTimeUnused)
}
