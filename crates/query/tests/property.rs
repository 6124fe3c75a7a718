//! No input makes compiling, rendering, checking or previewing panic, and every
//! diagnostic points inside the template.

use cdp_query::{Dialect, ErrorKind, Position, QueryTemplate, SyncVariables};
use proptest::prelude::*;

/// Runs everything on `template` in `dialect`, checking the positions of what comes out.
fn exercise(template: &str, dialect: Dialect) {
    let template_ = match QueryTemplate::new(template) {
        Ok(t) => t,
        Err(e) => return assert_inside(e.position(), template, &e.to_string()),
    };
    match template_.check(dialect) {
        Ok(report) => {
            for w in report.warnings() {
                assert_inside(w.position(), template, &w.to_string());
            }
        }
        Err(e) => assert_inside(e.position(), template, &e.to_string()),
    }
    for run in [SyncVariables::first_run(0), SyncVariables::new(i64::MIN, i64::MAX)] {
        match template_.render(&run) {
            Ok(rendered) => {
                for offset in [0, rendered.sql().len() / 2, rendered.sql().len(), usize::MAX] {
                    assert_inside(rendered.template_position(offset), template, "template_position");
                }
                match rendered.preview(dialect, 10) {
                    Ok(preview) => assert!(preview.contains("10"), "{preview}"),
                    Err(e) => assert_inside(e.position(), template, &e.to_string()),
                }
            }
            Err(e) => assert_inside(e.position(), template, &e.to_string()),
        }
    }
}

fn assert_inside(position: Position, template: &str, shown: &str) {
    assert!(position.offset <= template.len(), "{shown}");
    assert!(template.is_char_boundary(position.offset), "{shown}");
    let lines = template.split('\n').count();
    assert!(position.line >= 1 && position.line <= lines, "{shown}");
    let line = template.split('\n').nth(position.line - 1).unwrap_or_default();
    assert!(position.column >= 1 && position.column <= line.chars().count() + 1, "{shown}");
}

/// Pieces of SQL and handlebars, so that generated strings reach the parser's corners.
const PIECES: &[&str] = &[
    "SELECT",
    "FROM",
    "WHERE",
    "WITH",
    "AS",
    "UNION",
    "ALL",
    "VALUES",
    "INSERT",
    "INTO",
    "DELETE",
    "UPDATE",
    "SET",
    "CREATE",
    "TABLE",
    "LIMIT",
    "TOP",
    "ORDER BY",
    "FOR UPDATE",
    "DISTINCT",
    "RETURNING",
    "(",
    ")",
    ",",
    ";",
    "*",
    ".",
    "=",
    "<",
    "a",
    "t.b",
    "\"C\"",
    "'d'",
    "`e`",
    "[f]",
    "1",
    "-1.5e3",
    "$$x$$",
    "--",
    "/*",
    "*/",
    "\n",
    "\t",
    "é",
    "日本",
    "{{",
    "}}",
    "{{last_sync_time}}",
    "{{last_sync_time_iso}}",
    "{{sync_started_at}}",
    "{{#if last_sync_time}}",
    "{{else}}",
    "{{/if}}",
    "{{/each}}",
    "\\{{",
    "{{~",
    "~}}",
    "{{!--",
    "--}}",
    "{{> p}}",
    "{{x}}",
    "{{eq 1 2}}",
    "{{{last_sync_time}}}",
    "@",
    "#",
    "?",
    ":x",
];

fn sql_like() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(PIECES), 0..48).prop_map(|pieces| pieces.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn checking_arbitrary_strings_never_panics(template in any::<String>()) {
        for dialect in Dialect::ALL {
            exercise(&template, dialect);
        }
    }

    #[test]
    fn checking_sql_like_strings_never_panics(template in sql_like()) {
        for dialect in Dialect::ALL {
            exercise(&template, dialect);
        }
    }
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    for depth in [60, 1_000, 20_000] {
        let sql = format!("{}SELECT 1 AS x{}", "(".repeat(depth), ")".repeat(depth));
        let expr = format!("SELECT {}1{} AS x", "(".repeat(depth), ")".repeat(depth));
        let blocks =
            format!("SELECT 1 AS x {}{}", "{{#if last_sync_time}}".repeat(depth), "{{/if}}".repeat(depth));
        for dialect in Dialect::ALL {
            for template in [&sql, &expr] {
                let e = QueryTemplate::new(template.as_str()).unwrap().check(dialect).unwrap_err();
                assert!(matches!(e.kind(), ErrorKind::TooDeep { .. }), "{dialect}: {e}");
            }
            exercise(&blocks, dialect);
        }
        let e = QueryTemplate::new(blocks).unwrap_err();
        assert!(matches!(e.kind(), ErrorKind::TooDeep { .. } | ErrorKind::TooLong { .. }), "{}", e.message());
    }
    // Up to the limit, blocks and subexpressions render.
    let blocks = format!("SELECT 1 AS x {}{}", "{{#if last_sync_time}}".repeat(32), "{{/if}}".repeat(32));
    let sub = format!("SELECT {{{{eq {}1{} 1}}}} AS x", "(eq ".repeat(31), " 1)".repeat(31));
    for template in [blocks, sub] {
        let rendered = QueryTemplate::new(template).unwrap().render(&SyncVariables::new(5, 6)).unwrap();
        assert!(rendered.sql().starts_with("SELECT "));
    }
}
