//! Wrapping a query so that it returns at most N rows, in the dialect's own syntax.

use sqlparser::ast::SetExpr;
use sqlparser::tokenizer::{Token, TokenWithSpan};

use crate::Dialect;
use crate::check::{Analysis, CheckOptions, analyze};
use crate::diagnostic::QueryError;
use crate::template::RenderedQuery;

impl RenderedQuery {
    /// The SQL of a preview: this query, limited to at most `max_rows` rows in the
    /// dialect's syntax (`LIMIT`, or `TOP`/`FETCH NEXT` on SQL Server). The query is
    /// checked first, so a preview never runs what a sync would refuse.
    ///
    /// The query text is kept as written; only the row limit is added:
    /// - a query without a row limit of its own gets one (`… LIMIT n`, or `SELECT TOP (n) …`
    ///   / `… OFFSET 0 ROWS FETCH NEXT n ROWS ONLY` on SQL Server);
    /// - a query that has one is wrapped: `SELECT * FROM (…) AS cdp_preview LIMIT n`
    ///   (on SQL Server `SELECT TOP (n) * FROM (…) AS cdp_preview`, with the `WITH`
    ///   clause kept outside, where T-SQL requires it).
    ///
    /// # Errors
    /// Those of [`RenderedQuery::check`].
    pub fn preview(&self, options: impl Into<CheckOptions>, max_rows: u64) -> Result<String, QueryError> {
        let options = options.into();
        let analysis = analyze(self, options)?;
        Ok(limit_rows(&analysis, options.dialect(), max_rows))
    }
}

fn significant(token: &TokenWithSpan) -> bool {
    !matches!(token.token, Token::Whitespace(_) | Token::EOF | Token::SemiColon)
}

fn is_word(token: &TokenWithSpan, word: &str) -> bool {
    matches!(&token.token, Token::Word(w) if w.quote_style.is_none() && w.value.eq_ignore_ascii_case(word))
}

fn limit_rows(analysis: &Analysis<'_>, dialect: Dialect, rows: u64) -> String {
    let sql = analysis.rendered.sql();
    let tokens = &analysis.tokens;
    // The statement without leading or trailing comments, whitespace and semicolons, so
    // that nothing added after it can end up inside a `--` comment.
    let start = tokens.iter().find(|t| significant(t)).map_or(0, |t| analysis.offset(t.span.start));
    let end = tokens.iter().rev().find(|t| significant(t)).map_or(sql.len(), |t| analysis.offset(t.span.end));
    let end = end.max(start);
    let core = &sql[start..end];
    let query = &analysis.query;
    let has_limit = query.limit_clause.is_some() || query.fetch.is_some();
    if dialect != Dialect::MsSql {
        let plain = !has_limit
            && query.locks.is_empty()
            && query.for_clause.is_none()
            && query.settings.is_none()
            && query.format_clause.is_none()
            && query.pipe_operators.is_empty();
        return if plain {
            format!("{core}\nLIMIT {rows}")
        } else {
            format!("SELECT * FROM (\n{core}\n) AS cdp_preview\nLIMIT {rows}")
        };
    }

    // SQL Server: `SELECT TOP (n)` on a plain select; `OFFSET … FETCH` after an ORDER BY;
    // else a derived table, which may contain neither a WITH clause nor a bare ORDER BY.
    if let SetExpr::Select(select) = query.body.as_ref()
        && select.top.is_none()
        && !has_limit
        && query.for_clause.is_none()
    {
        let select_token = select.select_token.0.span;
        // After `SELECT`, or after `SELECT DISTINCT`/`SELECT ALL`: T-SQL wants TOP there.
        let after_select = tokens.iter().position(|t| t.span == select_token).map(|i| {
            let next = tokens[i + 1..].iter().find(|t| significant(t));
            match next {
                Some(t) if is_word(t, "DISTINCT") || is_word(t, "ALL") => t.span.end,
                _ => select_token.end,
            }
        });
        if let Some(location) = after_select {
            let at = analysis.offset(location).clamp(start, end);
            return format!("{} TOP ({rows}){}", &sql[start..at], &sql[at..end]);
        }
    }
    if query.order_by.is_some() && !has_limit && query.for_clause.is_none() {
        return format!("{core}\nOFFSET 0 ROWS FETCH NEXT {rows} ROWS ONLY");
    }
    let with_end = query
        .with
        .as_ref()
        .and_then(|with| with.cte_tables.last())
        .map(|cte| cte.closing_paren_token.0.span.end)
        .filter(|location| location.line > 0)
        .map(|location| analysis.offset(location).clamp(start, end));
    match with_end {
        Some(split) => format!(
            "{}\nSELECT TOP ({rows}) * FROM (\n{}\n) AS cdp_preview",
            &sql[start..split],
            sql[split..end].trim_start()
        ),
        None => format!("SELECT TOP ({rows}) * FROM (\n{core}\n) AS cdp_preview"),
    }
}
