//! One test per rule of the query checks, run in every dialect where the rule applies
//! (a loop over `Dialect::ALL`, in the style of sqlparser's `all_dialects()`).

mod common;

use cdp_query::{
    CallType, CheckOptions, Dialect, ErrorKind, MAX_QUERY_CHARS, MAX_RESULT_COLUMNS, MAX_RESULT_NAME_CHARS,
    QueryTemplate, SyncVariables, WarningKind,
};
use common::{at, check, error, is_unused, line_col, line_col_nth, warnings};

const RUN: SyncVariables = SyncVariables::new(1_700_000_000, 1_700_000_600);

// ---------------------------------------------------------------- rendering

#[test]
fn unknown_variable_is_an_error_naming_it_at_its_line_and_column() {
    let cases = [
        ("SELECT id AS userId\nFROM users\nWHERE updated_at > {{last_sync}}", "last_sync"),
        ("SELECT id AS userId FROM users WHERE updated_at > {{ lastSyncTime }}", "lastSyncTime"),
        // Inside a branch that a first run would skip: still an error.
        (
            "SELECT id AS userId FROM users\n{{#if last_sync_tme}}WHERE updated_at > {{last_sync_time}}{{/if}}",
            "last_sync_tme",
        ),
        ("SELECT id AS userId FROM users WHERE {{#if (eq last_sync_time since)}}1 = 1{{/if}}", "since"),
    ];
    for dialect in Dialect::ALL {
        for (template, name) in cases {
            let e = error(template, dialect);
            assert!(
                matches!(e.kind(), ErrorKind::UnknownVariable { name: n } if n == name),
                "{template}: {e}"
            );
            assert!(e.message().contains(name), "{e}");
            assert_eq!(at(e.position()), line_col(template, name), "{template}\n{e}");
        }
    }
    // The variables themselves are known.
    for name in cdp_query::VARIABLES {
        let template = format!("SELECT '{{{{{name}}}}}' AS x");
        assert!(QueryTemplate::new(template).is_ok(), "{name}");
    }
}

#[test]
fn rendering_does_no_html_escaping() {
    // Raw text and a block's content, full of characters an HTML escaper would change,
    // next to variables.
    let template = r#"SELECT 'O''Brien & Sons <b>' AS "a&b", `x=y` AS lit
FROM t WHERE a <> b AND c >= {{last_sync_time}}{{#if last_sync_time}} AND d < '&<>"'{{/if}}"#;
    let rendered = QueryTemplate::new(template).unwrap().render(&RUN).unwrap();
    let expected = template
        .replace("{{last_sync_time}}", &RUN.last_sync_time().to_string())
        .replace("{{#if last_sync_time}}", "")
        .replace("{{/if}}", "");
    assert_eq!(rendered.sql(), expected);
}

#[test]
fn variables_have_their_values() {
    let template = QueryTemplate::new(
        "{{last_sync_time}}|{{last_sync_time_iso}}|{{sync_started_at}}|{{sync_started_at_iso}}",
    )
    .unwrap();
    let runs = [
        SyncVariables::first_run(1_700_000_000),
        SyncVariables::new(1_700_000_000, 1_700_000_600),
        SyncVariables::new(951_782_399, 951_782_400), // around 2000-02-29
        SyncVariables::new(253_402_300_799, 253_402_300_799), // the last RFC 3339 second
    ];
    for run in runs {
        let sql = template.render(&run).unwrap().into_sql();
        let parts: Vec<&str> = sql.split('|').collect();
        assert_eq!(parts[0], run.last_sync_time().to_string());
        assert_eq!(parts[2], run.sync_started_at().to_string());
        for (iso, seconds) in [(parts[1], run.last_sync_time()), (parts[3], run.sync_started_at())] {
            let parsed = chrono::DateTime::parse_from_rfc3339(iso).unwrap_or_else(|e| panic!("{iso}: {e}"));
            assert_eq!(parsed.timestamp(), seconds, "{iso}");
            assert!(iso.ends_with('Z'), "{iso} is UTC");
        }
    }
    // Before the first run, last_sync_time is 0.
    let first = template.render(&SyncVariables::first_run(1_700_000_000)).unwrap().into_sql();
    assert!(first.starts_with("0|1970-01-01T00:00:00Z|"), "{first}");

    // A time RFC 3339 cannot write is an error only where its _iso form is used.
    let far = SyncVariables::new(i64::MAX, 0);
    let plain = QueryTemplate::new("SELECT {{last_sync_time}} AS x").unwrap();
    assert_eq!(plain.render(&far).unwrap().sql(), format!("SELECT {} AS x", i64::MAX));
    let iso = "SELECT 1 AS x\nWHERE t > '{{last_sync_time_iso}}'";
    let e = QueryTemplate::new(iso).unwrap().render(&far).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::TimeOutOfRange { variable: "last_sync_time_iso", .. }), "{e}");
    assert_eq!(at(e.position()), line_col(iso, "last_sync_time_iso"));
}

#[test]
fn template_syntax_errors_point_at_their_line_and_column() {
    type IsKind = fn(&ErrorKind) -> bool;
    let cases: [(&str, &str, IsKind); 5] = [
        ("SELECT a AS userId FROM t\nWHERE u > {{last_sync_time\nAND b = 1", "{{", |k| {
            matches!(k, ErrorKind::TemplateSyntax { .. })
        }),
        (
            "SELECT a AS userId FROM t\nWHERE u > {{frobnicate last_sync_time}}",
            "frobnicate",
            |k| matches!(k, ErrorKind::UnknownHelper { name } if name == "frobnicate"),
        ),
        (
            "SELECT a AS userId FROM t\nWHERE u > {{#if last_sync_time}}{{#frob}}1{{/frob}}{{/if}}",
            "frob",
            |k| matches!(k, ErrorKind::UnknownHelper { name } if name == "frob"),
        ),
        (
            "SELECT a FROM t WHERE {{#if last_sync_time}}\n  u > {{last_sync_time}}{{/each}}",
            "{{/each}}",
            |k| matches!(k, ErrorKind::TemplateSyntax { .. }),
        ),
        (
            "SELECT a FROM t\nWHERE u > {{> partial}}",
            "partial",
            |k| matches!(k, ErrorKind::UnknownHelper { name } if name == "partial"),
        ),
    ];
    for dialect in Dialect::ALL {
        for (template, needle, kind) in cases {
            let e = error(template, dialect);
            assert!(kind(e.kind()), "{template}\n{e}");
            assert_eq!(at(e.position()), line_col(template, needle), "{template}\n{e}");
        }
    }
    // Found when the template is compiled, also in a branch a first run skips.
    for (template, _, kind) in cases {
        assert!(kind(QueryTemplate::new(template).unwrap_err().kind()), "{template}");
    }
}

// ---------------------------------------------------------------- checks

/// A valid query of exactly `chars` characters (multi-byte ones, so bytes ≠ characters).
fn query_of_chars(chars: usize) -> String {
    let head = "SELECT id AS userId FROM users WHERE updated_at > {{last_sync_time}} AND note <> '";
    let padding = chars - head.chars().count() - 1;
    format!("{head}{}'", "é".repeat(padding))
}

#[test]
fn query_is_at_most_131072_characters_measured_on_the_template() {
    let at_limit = query_of_chars(MAX_QUERY_CHARS);
    assert!(at_limit.len() > MAX_QUERY_CHARS, "more bytes than characters");
    let over = query_of_chars(MAX_QUERY_CHARS + 1);
    // Over the limit as written, under it once rendered: the template is what counts.
    let comment = format!("{{{{!-- {} --}}}}", "x".repeat(MAX_QUERY_CHARS));
    let commented = format!("{comment}SELECT id AS userId FROM users WHERE u > {{{{last_sync_time}}}}");
    for dialect in Dialect::ALL {
        assert!(check(&at_limit, dialect).is_ok(), "{dialect}");
        for template in [&over, &commented] {
            let e = error(template, dialect);
            let chars = template.chars().count();
            assert_eq!(e.kind(), &ErrorKind::TooLong { chars, limit: MAX_QUERY_CHARS });
            // It points at the first character over the limit.
            let first_over = template.char_indices().nth(MAX_QUERY_CHARS).unwrap().0;
            assert_eq!(e.position().offset, first_over);
        }
    }
}

#[test]
fn query_is_exactly_one_statement() {
    for dialect in Dialect::ALL {
        for one in [
            "SELECT id AS userId FROM users WHERE u > {{last_sync_time}};",
            "SELECT id AS userId FROM users WHERE u > {{last_sync_time}};;\n-- done\n",
        ] {
            assert!(check(one, dialect).is_ok(), "{dialect}: {one}");
        }
        for (template, count) in [
            ("SELECT id AS userId FROM users WHERE u > {{last_sync_time}};\nSELECT 2 AS two", 2),
            ("SELECT 1 AS one;\n  SELECT 2 AS two; SELECT 3 AS three;", 3),
        ] {
            let e = error(template, dialect);
            assert_eq!(e.kind(), &ErrorKind::MultipleStatements { count }, "{dialect}");
            assert_eq!(at(e.position()), line_col_nth(template, "SELECT", 1), "{dialect}: {e}");
        }
        for empty in ["", "  \n", "-- nothing here\n/* at all */", ";", "{{!-- only a comment --}}"] {
            assert_eq!(error(empty, dialect).kind(), &ErrorKind::Empty, "{dialect}: {empty:?}");
        }
    }
}

/// Statements a sync must never run, with the word the error must name.
const WRITES: &[&str] = &[
    "INSERT INTO users (id) VALUES (1)",
    "UPDATE users SET email = NULL WHERE id = 1",
    "DELETE FROM users WHERE id = 1",
    "MERGE INTO users USING staged ON users.id = staged.id WHEN MATCHED THEN UPDATE SET email = staged.email",
    "CREATE TABLE copy_of_users (id INT)",
    "CREATE WAREHOUSE customerio_reverse_etl WITH WAREHOUSE_SIZE = 'XSMALL'",
    "DROP TABLE users",
    "ALTER TABLE users ADD COLUMN plan VARCHAR(10)",
    "TRUNCATE TABLE users",
    "GRANT SELECT ON users TO someone",
    "REVOKE SELECT ON users FROM someone",
    "COPY users TO '/tmp/users.csv'",
    "CALL refresh_users()",
    "SET search_path = public",
    "BEGIN",
    "START TRANSACTION",
    "COMMIT",
    "ROLLBACK",
];

#[test]
fn query_is_read_only() {
    for dialect in Dialect::ALL {
        for write in WRITES {
            let template = format!("-- nightly\n{write}");
            let e = error(&template, dialect);
            let first_word = write.split(' ').next().unwrap();
            assert!(
                matches!(e.kind(), ErrorKind::NotReadOnly { statement } if statement.starts_with(first_word)),
                "{dialect}: {write}\n{e}"
            );
            assert_eq!(at(e.position()), (2, 1), "{dialect}: {write}\n{e}");
        }
        // After a valid query too: the write is the error, not the second statement.
        let template = "SELECT id AS userId FROM users;\nDELETE FROM users";
        let e = error(template, dialect);
        assert!(matches!(e.kind(), ErrorKind::NotReadOnly { .. }), "{dialect}: {e}");
        assert_eq!(at(e.position()), line_col(template, "DELETE"));
    }
}

#[test]
fn query_is_read_only_also_where_nested() {
    let nested = [
        (
            "WITH gone AS (\n  DELETE FROM users WHERE deleted RETURNING id\n)\nSELECT id AS userId FROM gone",
            "DELETE",
            "DELETE",
        ),
        (
            "WITH moved AS (INSERT INTO archive SELECT id FROM users RETURNING id)\nSELECT id AS userId FROM moved",
            "INSERT",
            "INSERT",
        ),
        (
            "WITH touched AS (UPDATE users SET seen = 1 RETURNING id)\nSELECT id AS userId FROM touched",
            "UPDATE",
            "UPDATE",
        ),
        (
            "SELECT id AS userId FROM users WHERE id IN (\n  SELECT id FROM (DELETE FROM users RETURNING id) AS d)",
            "DELETE",
            "DELETE",
        ),
        ("SELECT id AS userId\nINTO users_copy\nFROM users", "INTO", "SELECT … INTO"),
    ];
    for dialect in Dialect::ALL {
        for (template, needle, statement) in nested {
            let e = error(template, dialect);
            assert!(
                matches!(e.kind(), ErrorKind::NotReadOnly { statement: s } if s.starts_with(statement)),
                "{dialect}: {template}\n{e}"
            );
            assert_eq!(at(e.position()), line_col(template, needle), "{dialect}: {template}\n{e}");
        }
    }
    // Locking reads, where the dialect has them.
    for dialect in [Dialect::PostgreSQL, Dialect::MySQL, Dialect::Generic] {
        let template = "SELECT id AS userId FROM users\nFOR UPDATE";
        let e = error(template, dialect);
        assert!(matches!(e.kind(), ErrorKind::NotReadOnly { statement } if statement.contains("FOR UPDATE")));
        assert_eq!(at(e.position()), (2, 1), "{dialect}");
    }
}

#[test]
fn read_only_queries_pass() {
    let queries = [
        "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}}",
        "WITH recent AS (SELECT id FROM users WHERE updated > {{last_sync_time}})\nSELECT id AS userId FROM recent",
        "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}}\nUNION ALL\nSELECT id FROM admins",
        "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}}\nEXCEPT\nSELECT id FROM banned",
        "SELECT u.id AS userId, (SELECT COUNT(*) FROM orders o WHERE o.user_id = u.id) AS orders\nFROM users u WHERE u.updated > {{last_sync_time}}",
        "SELECT 'updated' AS event, 'delete' AS kind, 'insert into' AS note WHERE 1 > {{last_sync_time}}",
    ];
    for dialect in Dialect::ALL {
        for query in queries {
            let report = check(query, dialect).unwrap_or_else(|e| panic!("{dialect}: {query}\n{e}"));
            assert!(!report.warnings().iter().any(is_unused), "{dialect}");
        }
    }
    // VALUES, in the dialects that have it as a query.
    for dialect in [Dialect::PostgreSQL, Dialect::SQLite, Dialect::Generic] {
        let report = check("VALUES (1, 'a'), ({{last_sync_time}}, 'b')", dialect).unwrap();
        assert_eq!(report.result_columns(), Some(2), "{dialect}");
    }
}

#[test]
fn parse_errors_point_into_the_template_after_substitution() {
    // Substitutions on the same line before the mistake change its column in the SQL.
    let template = "SELECT id AS userId,\n       email\nFROM users\nWHERE updated_at > '{{last_sync_time_iso}}' AND {{last_sync_time}} < 5) AND created_at < {{sync_started_at}}";
    let unterminated = "SELECT id AS userId FROM users\nWHERE u > {{last_sync_time}} AND note = 'oops";
    for dialect in Dialect::ALL {
        let e = error(template, dialect);
        assert!(matches!(e.kind(), ErrorKind::Syntax { .. }), "{dialect}: {e}");
        assert_eq!(at(e.position()), line_col(template, ")"), "{dialect}\n{e}");
        assert!(!e.message().contains("Line:"), "the position is not repeated in the message: {e}");

        let e = error(unterminated, dialect);
        assert!(matches!(e.kind(), ErrorKind::Syntax { .. }), "{dialect}: {e}");
        assert_eq!(e.position().line, 2, "{dialect}\n{e}");
        let (_, quote) = line_col(unterminated, "'oops");
        assert!(e.position().column >= quote, "{dialect}: at or after the quote\n{e}");
    }
}

// ---------------------------------------------------------------- warnings

#[test]
fn warns_when_last_sync_time_is_not_used() {
    let unused = [
        ("SELECT id AS userId\nFROM users", None),
        ("SELECT id AS userId FROM users\n-- WHERE updated > {{last_sync_time}}", Some("{{last_sync_time}}")),
        ("/* WHERE updated > '{{last_sync_time_iso}}' */\nSELECT id AS userId FROM users", Some("{{last")),
    ];
    let used = [
        "SELECT id AS userId FROM users WHERE updated > {{last_sync_time}}",
        "SELECT id AS userId FROM users WHERE updated > '{{last_sync_time_iso}}'",
        "SELECT id AS userId FROM users WHERE updated > {{@root.last_sync_time}}",
        "SELECT id AS userId FROM users {{#if last_sync_time}}WHERE updated > 0{{/if}}",
        "SELECT id AS userId FROM users -- recent only\nWHERE updated > {{last_sync_time}} -- {{last_sync_time}}",
    ];
    for dialect in Dialect::ALL {
        for (template, place) in unused {
            let found: Vec<_> = warnings(template, dialect).into_iter().filter(is_unused).collect();
            assert_eq!(found.len(), 1, "{dialect}: {template}");
            let expected = place.map_or((1, 1), |needle| line_col(template, needle));
            assert_eq!(at(found[0].position()), expected, "{dialect}: {template}");
        }
        for template in used {
            assert!(!warnings(template, dialect).iter().any(is_unused), "{dialect}: {template}");
        }
    }
}

#[test]
fn warns_about_select_star() {
    let with_star = [
        ("SELECT * FROM users WHERE u > {{last_sync_time}}", "*", 0),
        ("SELECT u.* FROM users u WHERE u.updated > {{last_sync_time}}", "u.*", 0),
        (
            "SELECT id AS userId FROM users WHERE u > {{last_sync_time}}\nUNION ALL\nSELECT * FROM admins",
            "*",
            0,
        ),
    ];
    let without = [
        "SELECT COUNT(*) AS n FROM users WHERE u > {{last_sync_time}}",
        "SELECT id AS userId FROM users WHERE u > {{last_sync_time}} AND EXISTS (SELECT * FROM admins)",
        "WITH recent AS (SELECT * FROM users WHERE u > {{last_sync_time}})\nSELECT id AS userId FROM recent",
    ];
    for dialect in Dialect::ALL {
        for (template, wildcard, nth) in with_star {
            let stars: Vec<_> = warnings(template, dialect)
                .into_iter()
                .filter(|w| matches!(w.kind(), WarningKind::SelectStar { .. }))
                .collect();
            assert_eq!(stars.len(), 1, "{dialect}: {template}");
            assert!(
                matches!(stars[0].kind(), WarningKind::SelectStar { wildcard: w } if w == wildcard),
                "{dialect}: {}",
                stars[0]
            );
            assert_eq!(
                at(stars[0].position()),
                line_col_nth(template, wildcard, nth),
                "{dialect}: {template}"
            );
        }
        for template in without {
            let w = warnings(template, dialect);
            assert!(
                !w.iter().any(|w| matches!(w.kind(), WarningKind::SelectStar { .. })),
                "{dialect}: {w:?}"
            );
        }
    }
}

#[test]
fn warns_about_result_names_that_arrive_in_another_case() {
    let template = "SELECT {{last_sync_time}} AS since, ID AS userId, EMAIL, u.first_name, LAST_NAME AS lastName,\n  PHONE AS \"phone\", TITLE AS name, COUNT(*) AS n\nFROM users u\nWHERE u.updated > {{last_sync_time}}";
    let folded = |options: CheckOptions| -> Vec<(String, String, String, (usize, usize))> {
        warnings(template, options)
            .into_iter()
            .filter_map(|w| match w.kind() {
                WarningKind::FoldedResultName { name, arrives_as, quoted_alias } => {
                    assert!(w.message().contains(&format!("AS {quoted_alias}")), "{w}");
                    Some((name.clone(), arrives_as.clone(), quoted_alias.clone(), at(w.position())))
                }
                _ => None,
            })
            .collect()
    };
    let n = {
        let (line, column) = line_col(template, "AS n\n");
        (line, column + 3)
    };
    let expect = |name: &str, arrives: &str, alias: &str, place: (usize, usize)| {
        (name.to_owned(), arrives.to_owned(), alias.to_owned(), place)
    };
    let snowflake = vec![
        expect("since", "SINCE", "\"since\"", line_col(template, "since")),
        expect("EMAIL", "EMAIL", "\"email\"", line_col(template, "EMAIL")),
        expect("first_name", "FIRST_NAME", "\"first_name\"", line_col(template, "first_name")),
        expect("lastName", "LASTNAME", "\"lastName\"", line_col(template, "lastName")),
        expect("n", "N", "\"n\"", n),
    ];
    for dialect in Dialect::ALL {
        let options = CheckOptions::new(dialect);
        let found = folded(options);
        match dialect {
            // Reserved fields (userId; name for page and screen) match in any case; quoted
            // names arrive as written.
            Dialect::Snowflake => {
                assert_eq!(found, snowflake);
                let mut track = snowflake.clone();
                let (line, column) = line_col(template, "AS name");
                track.insert(4, expect("name", "NAME", "\"name\"", (line, column + 3)));
                assert_eq!(folded(options.call_type(CallType::Track)), track);
                assert_eq!(folded(options.call_type(CallType::Page)), snowflake);
            }
            // PostgreSQL folds to lower case: only names with upper-case letters change.
            Dialect::PostgreSQL => {
                assert_eq!(
                    found,
                    vec![expect("lastName", "lastname", "\"lastName\"", line_col(template, "lastName"))]
                )
            }
            _ => assert_eq!(found, vec![], "{dialect}"),
        }
    }
}

#[test]
fn warns_about_result_names_over_128_characters() {
    let long = "a".repeat(MAX_RESULT_NAME_CHARS + 1);
    let longest = "b".repeat(MAX_RESULT_NAME_CHARS);
    let template = format!(
        "SELECT id AS userId, x AS {long}, {longest}, y AS \"{long}z\"\nFROM t WHERE u > {{{{last_sync_time}}}}"
    );
    for dialect in Dialect::ALL {
        let too_long: Vec<_> = warnings(&template, dialect)
            .into_iter()
            .filter_map(|w| match w.kind() {
                WarningKind::ResultNameTooLong { name, chars, limit } => {
                    assert_eq!(*limit, MAX_RESULT_NAME_CHARS);
                    assert_eq!(*chars, name.chars().count());
                    Some((name.clone(), at(w.position())))
                }
                _ => None,
            })
            .collect();
        let quoted = format!("{long}z");
        assert_eq!(
            too_long,
            vec![
                (long.clone(), line_col(&template, &long)),
                (quoted.clone(), line_col(&template, &format!("\"{quoted}")))
            ],
            "{dialect}"
        );
    }
}

#[test]
fn warns_about_more_than_512_result_columns_when_known() {
    let columns = |n: usize| (1..=n).map(|i| format!("c{i}")).collect::<Vec<_>>().join(", ");
    for dialect in Dialect::ALL {
        for n in [MAX_RESULT_COLUMNS, MAX_RESULT_COLUMNS + 1, MAX_RESULT_COLUMNS + 40] {
            let template = format!("SELECT {}\nFROM t WHERE u > {{{{last_sync_time}}}}", columns(n));
            let report = check(&template, dialect).unwrap();
            assert_eq!(report.result_columns(), Some(n));
            let too_many: Vec<_> = report
                .warnings()
                .iter()
                .filter(|w| matches!(w.kind(), WarningKind::TooManyColumns { .. }))
                .collect();
            if n <= MAX_RESULT_COLUMNS {
                assert!(too_many.is_empty(), "{dialect}: {n}");
            } else {
                assert_eq!(too_many.len(), 1, "{dialect}: {n}");
                assert_eq!(
                    too_many[0].kind(),
                    &WarningKind::TooManyColumns { count: n, limit: MAX_RESULT_COLUMNS }
                );
                let first_over = format!("c{}", MAX_RESULT_COLUMNS + 1);
                assert_eq!(at(too_many[0].position()), line_col(&template, &first_over), "{dialect}");
            }
        }
        // With a wildcard, the count is not known statically: no warning.
        let template = format!("SELECT *, {}\nFROM t WHERE u > {{{{last_sync_time}}}}", columns(600));
        let report = check(&template, dialect).unwrap();
        assert_eq!(report.result_columns(), None);
        assert!(!report.warnings().iter().any(|w| matches!(w.kind(), WarningKind::TooManyColumns { .. })));
    }
}

// ---------------------------------------------------------------- API shape

#[test]
fn diagnostics_display_the_line_and_a_caret_under_the_column() {
    let template = "SELECT id AS userId,\n\tnom AS \"prénom\", 'é' AS x, {{oops}} AS y\nFROM t";
    let e = QueryTemplate::new(template).unwrap_err();
    let star = "SELECT\n\t'é' AS note, *\nFROM t WHERE u > {{last_sync_time}}";
    let w = warnings(star, Dialect::Generic)
        .into_iter()
        .find(|w| matches!(w.kind(), WarningKind::SelectStar { .. }))
        .unwrap();
    for (shown, level, message, position, line, source) in [
        (e.to_string(), "error", e.message(), e.position(), e.source_line().to_owned(), template),
        (w.to_string(), "warning", w.message(), w.position(), w.source_line().to_owned(), star),
    ] {
        assert_eq!(line, source.lines().nth(position.line - 1).unwrap());
        let lines: Vec<&str> = shown.lines().collect();
        assert_eq!(lines.len(), 5, "{shown}");
        assert_eq!(lines[0], format!("{level}: {message}"));
        assert!(lines[1].ends_with(&format!("--> line {}, column {}", position.line, position.column)));
        assert_eq!(lines[3], format!("{} | {line}", position.line));
        // The caret is under the column: same number of characters before it, tabs kept.
        let caret_line = lines[4].split_once(" | ").unwrap().1;
        let before: String = caret_line.chars().take_while(|&c| c != '^').collect();
        assert_eq!(before.chars().count(), position.column - 1, "{shown}");
        let source_before: String = line.chars().take(position.column - 1).collect();
        assert!(before.chars().zip(source_before.chars()).all(|(c, s)| (c == '\t') == (s == '\t')));
        assert!(caret_line.ends_with('^'));
    }
    assert_eq!(at(e.position()), line_col(template, "oops"));
    assert_eq!(at(w.position()), line_col(star, "*"));
}

#[test]
fn public_types_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<QueryTemplate>();
    shareable::<cdp_query::RenderedQuery>();
    shareable::<cdp_query::CheckReport>();
    shareable::<cdp_query::QueryError>();
    shareable::<cdp_query::QueryWarning>();
    // Errors box into the usual error types.
    let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(QueryTemplate::new("{{x").unwrap_err());
    assert!(boxed.to_string().starts_with("error: template syntax error"));
}
