//! Previews return at most N rows, in each dialect's own syntax: the wrapped query is
//! parsed back and its outermost row limit read, and on SQLite it is run.

use cdp_query::{Dialect, ErrorKind, QueryTemplate, RenderedQuery, SyncVariables};
use sqlparser::ast::{Expr, LimitClause, SetExpr, Statement, TopQuantity, Value};
use sqlparser::parser::Parser;

const RUN: SyncVariables = SyncVariables::new(1_700_000_000, 1_700_000_600);

/// Query shapes that every dialect accepts.
const SHAPES: &[&str] = &[
    "SELECT id AS userId, email FROM users WHERE updated > {{last_sync_time}}",
    "SELECT DISTINCT id AS userId FROM users WHERE updated > {{last_sync_time}} ORDER BY id",
    "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}}\nUNION ALL\nSELECT id FROM admins",
    "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}}\nUNION\nSELECT id FROM admins\nORDER BY userId",
    "WITH recent AS (SELECT id FROM users WHERE updated > {{last_sync_time}})\nSELECT id AS userId FROM recent ORDER BY id",
    "WITH recent AS (SELECT id FROM users WHERE updated > {{last_sync_time}}),\n  staff AS (SELECT id FROM admins)\nSELECT id AS userId FROM recent UNION ALL SELECT id FROM staff",
    "-- recent users\nSELECT id AS userId FROM users WHERE updated > {{last_sync_time}} -- only those\n;\n-- done",
];

/// Shapes with a row limit of their own, in the dialect's syntax.
fn own_limits(dialect: Dialect) -> Vec<&'static str> {
    match dialect {
        Dialect::MsSql => vec![
            "SELECT TOP 1000 id AS userId FROM users WHERE updated > {{last_sync_time}} ORDER BY id",
            "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}} ORDER BY id OFFSET 2 ROWS",
            "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}} ORDER BY id OFFSET 0 ROWS FETCH NEXT 1000 ROWS ONLY",
        ],
        _ => vec![
            "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}} ORDER BY id LIMIT 1000",
            "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}} ORDER BY id LIMIT 3 OFFSET 2",
        ],
    }
}

fn render(template: &str) -> RenderedQuery {
    QueryTemplate::new(template).unwrap().render(&RUN).unwrap()
}

fn number(expr: &Expr) -> Option<u64> {
    match expr {
        Expr::Value(v) => match &v.value {
            Value::Number(n, _) => n.parse().ok(),
            _ => None,
        },
        Expr::Nested(inner) => number(inner),
        _ => None,
    }
}

/// The row limit of the outermost query, however the dialect spells it.
fn outer_limit(sql: &str, dialect: Dialect) -> Option<u64> {
    let parser = sqlparser::dialect::dialect_from_str(dialect.name()).unwrap();
    let statements =
        Parser::parse_sql(parser.as_ref(), sql).unwrap_or_else(|e| panic!("{dialect}: {e}\n{sql}"));
    assert_eq!(statements.len(), 1, "{sql}");
    let Statement::Query(query) = &statements[0] else { panic!("not a query: {sql}") };
    if let Some(LimitClause::LimitOffset { limit: Some(limit), .. }) = &query.limit_clause {
        return number(limit);
    }
    if let Some(quantity) = query.fetch.as_ref().and_then(|f| f.quantity.as_ref()) {
        return number(quantity);
    }
    if let SetExpr::Select(select) = query.body.as_ref() {
        return match select.top.as_ref()?.quantity.as_ref()? {
            TopQuantity::Expr(e) => number(e),
            TopQuantity::Constant(n) => Some(*n),
        };
    }
    None
}

#[test]
fn preview_limits_rows_in_the_dialects_own_syntax() {
    for dialect in Dialect::ALL {
        for template in SHAPES.iter().copied().chain(own_limits(dialect)) {
            let rendered = render(template);
            for rows in [0, 7, 250] {
                let preview = rendered.preview(dialect, rows).unwrap_or_else(|e| panic!("{dialect}\n{e}"));
                // One read-only statement that passes the checks in the same dialect.
                QueryTemplate::new(preview.as_str())
                    .unwrap()
                    .check(dialect)
                    .unwrap_or_else(|e| panic!("{dialect}: preview rejected\n{preview}\n{e}"));
                assert_eq!(outer_limit(&preview, dialect), Some(rows), "{dialect}:\n{preview}");
                let keyword = if dialect == Dialect::MsSql { ["TOP", "FETCH"] } else { ["LIMIT", "LIMIT"] };
                assert!(keyword.iter().any(|k| preview.contains(k)), "{dialect}:\n{preview}");
            }
        }
    }
}

#[test]
fn preview_refuses_what_the_checks_refuse() {
    for dialect in Dialect::ALL {
        let rendered = render("DELETE FROM users");
        let e = rendered.preview(dialect, 10).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::NotReadOnly { .. }), "{dialect}: {e}");
    }
}

/// Runs `sql` on `db` and returns the first column of each row.
fn ids(db: &rusqlite::Connection, sql: &str) -> Vec<i64> {
    let mut statement = db.prepare(sql).unwrap_or_else(|e| panic!("{e}\n{sql}"));
    statement.query_map([], |row| row.get(0)).unwrap().map(Result::unwrap).collect()
}

#[test]
fn preview_returns_the_first_rows_on_sqlite() {
    let db = rusqlite::Connection::open_in_memory().unwrap();
    db.execute_batch(
        "CREATE TABLE users (id INTEGER, email TEXT, updated INTEGER);
         CREATE TABLE admins (id INTEGER);",
    )
    .unwrap();
    for id in 1..=40_i64 {
        // Half of the users changed after the last sync.
        let updated = if id % 2 == 0 { 1_700_000_100 } else { 1_600_000_000 };
        db.execute("INSERT INTO users VALUES (?1, ?2, ?3)", (40 - id, format!("u{id}@example.com"), updated))
            .unwrap();
    }
    for id in 100..105_i64 {
        db.execute("INSERT INTO admins VALUES (?1)", [id]).unwrap();
    }
    for template in SHAPES.iter().copied().chain(own_limits(Dialect::SQLite)) {
        let rendered = render(template);
        let all = ids(&db, rendered.sql());
        assert!(all.len() >= 3, "the fixture has rows for: {template}");
        let ordered = rendered.sql().contains("ORDER BY");
        for rows in [0_usize, 3, 7, 1_000] {
            let preview = rendered.preview(Dialect::SQLite, rows as u64).unwrap();
            let got = ids(&db, &preview);
            assert_eq!(got.len(), all.len().min(rows), "{preview}");
            if ordered {
                assert_eq!(got, all[..got.len()], "{preview}");
            } else {
                assert!(got.iter().all(|id| all.contains(id)), "{preview}");
            }
        }
    }
}
