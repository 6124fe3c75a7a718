//! The example queries of the source documentation, copied verbatim from
//! `shared/reference/003_…` (reverse ETL overview: MySQL and BigQuery) and `004_…`
//! (Snowflake reverse ETL), each rendered and checked in its dialect.

mod common;

use cdp_query::{CallType, CheckOptions, Dialect, ErrorKind, QueryTemplate, SyncVariables, WarningKind};
use common::{at, error, is_unused, line_col};

/// 004, SQL block 1 (line 54).
const S1: &str = "-- not required if reusing another warehouse\nCREATE WAREHOUSE customerio_reverse_etl\n WITH WAREHOUSE_SIZE = 'XSMALL'\n   WAREHOUSE_TYPE = 'STANDARD'\n   AUTO_SUSPEND = 600 -- 5 minutes\n   AUTO_RESUME = TRUE;";
/// 004, SQL block 2 (line 65).
const S2: &str = "-- create role\nCREATE ROLE customerio_reverse_etl;\n\n-- warehouse access\n-- change the name if reusing another warehouse\nGRANT USAGE ON WAREHOUSE customerio_reverse_etl TO ROLE customerio_reverse_etl;\n\n-- table access\n-- change the names to match the schema, database and table you want to use\nGRANT USAGE ON DATABASE my_database TO ROLE customerio_reverse_etl;\nGRANT USAGE ON SCHEMA my_database.my_schema TO ROLE customerio_reverse_etl;\nGRANT SELECT ON TABLE my_database.my_schema.my_table TO ROLE customerio_reverse_etl;";
/// 004, SQL block 3 (line 82).
const S3: &str = "-- create user\nCREATE USER customerio_reverse_etl_user\n MUST_CHANGE_PASSWORD = FALSE\n DEFAULT_ROLE = customerio_reverse_etl\n PASSWORD = 'my_strong_password'; -- Do not use this password\n\n-- role access\nGRANT ROLE customerio_reverse_etl TO USER customerio_reverse_etl_user;";
/// 004, SQL block 4 (line 260).
const S4: &str = "SELECT ID AS \"id\", EMAIL AS \"email\", PRIMARY_PHONE AS \"phone\"\nFROM people\nWHERE LAST_UPDATED >= {{last_sync_time}}";
/// 004, SQL block 5 (line 274).
const S5: &str = "ALTER USER customerio_reverse_etl_user\n  SET QUOTED_IDENTIFIERS_IGNORE_CASE = FALSE;";
/// 004, SQL block 6 (line 281).
const S6: &str = "ALTER ROLE customerio_reverse_etl\n  SET QUOTED_IDENTIFIERS_IGNORE_CASE = FALSE;";
/// 004, SQL block 7 (line 294).
const S7: &str = "SELECT\n  ID AS \"userId\",\n  IFF(IS_ACTIVE, 'true', 'false') AS \"is_active\"\nFROM\n  users\nWHERE\n  LAST_UPDATED >= {{last_sync_time}}";
/// 004, SQL block 8 (line 324).
const S8: &str = "SELECT ID AS userId, EMAIL AS email, MSISDN AS phone, FNAME AS first_name, LNAME AS last_name\nFROM users\nWHERE TIMESTAMP >= {{last_sync_time}}";
/// 004, SQL block 9 (line 369).
const S9: &str = "SELECT\n  COALESCE(CAST(USER_ID AS VARCHAR), EMAIL) AS \"userId\",\n  EMAIL AS \"email\",\n  FIRST_NAME AS \"first_name\",\n  LAST_NAME AS \"last_name\"\nFROM users\nWHERE LAST_UPDATED >= {{last_sync_time}}";
/// 004, SQL block 10 (line 385).
const S10: &str = "SELECT\n  CASE\n    WHEN USER_ID IS NOT NULL THEN CAST(USER_ID AS VARCHAR)\n    ELSE EMAIL\n  END AS \"userId\",\n  EMAIL AS \"email\",\n  FIRST_NAME AS \"first_name\",\n  LAST_NAME AS \"last_name\"\nFROM users\nWHERE LAST_UPDATED >= {{last_sync_time}}";
/// 004, SQL block 11 (line 408).
const S11: &str = "SELECT id AS USERID As userId, EVENT_NAME AS event, PRODUCTS AS products, TOTAL_PRICE AS value\nFROM events\nWHERE TIMESTAMP > {{last_sync_time}}";
/// 004, SQL block 12 (line 478).
const S12: &str = "SELECT COMPANYID AS groupId, OBJECT_TYPE_ID AS objectTypeId, COMPANYNAME as company_name, EMPLOYEES AS employees, PERSONID AS userId\nFROM companies\nWHERE LAST_UPDATED >= {{last_sync_time}}";
/// 004, SQL block 13 (line 538).
const S13: &str = "SELECT COMPANYID AS \"groupId\", OBJECTTYPEID AS \"objectTypeId\", \n    COMPANYNAME AS \"companyname\", EMPLOYEES AS \"employees\", \n    PERSONID AS \"userId\",\n    OBJECT_CONSTRUCT(\n        'is_manager', IS_MANAGER,\n        'role', ROLE,\n        'start_date', START_DATE\n    ) AS \"relationshipAttributes\"\nFROM companies\nWHERE LAST_UPDATED >= {{last_sync_time}}";
/// 004, SQL block 14 (line 557).
const S14: &str = "SELECT ID AS userId, METATITLE AS name, URL AS url, TIME_ON_PAGE AS time_on_page\nFROM pages\nWHERE TIMESTAMP > {{last_sync_time}}";
/// 004, SQL block 15 (line 623).
const S15: &str = "SELECT ID AS userId, SCREEN_NAME AS name, SESSION_STARTED AS session_started\nFROM screens\nWHERE TIMESTAMP > {{last_sync_time}}";
/// 004, SQL block 16 (line 663).
const S16: &str =
    "SELECT ID AS userId, OLD_ID AS previousId\nFROM user_resolution\nWHERE TIMESTAMP >= {{last_sync_time}}";
/// 003: last updated.
const LAST_UPDATED: &str = "SELECT id AS userId, email, first_name, created AS created_at\nFROM my_people\nWHERE UNIX_TIMESTAMP(last_updated) > {{last_sync_time}}";
/// 003: dot notation.
const DOT_NOTATION: &str = "SELECT product AS 'cart.product_name'";
/// 003: json object.
const JSON_OBJECT: &str = "SELECT\nid as groupId,\nname,\njson_object(\n'job_title', job_title,\n'primary_contact', primary_contact\n) as relationshipAttributes";
/// 003: where fragment.
const WHERE_FRAGMENT: &str = "WHERE UNIX_SECONDS(last_updated) >= {{last_sync_time}} - 300";

const RUN: SyncVariables = SyncVariables::new(1_700_000_000, 1_700_000_600);

/// Renders for a run: only the variable changes.
fn assert_renders(template: &str) {
    let rendered = QueryTemplate::new(template).unwrap().render(&RUN).unwrap();
    assert_eq!(rendered.sql(), template.replace("{{last_sync_time}}", "1700000000"));
}

/// Line and column of the alias `name` (after `AS ` or `as `).
fn alias_at(template: &str, name: &str) -> (usize, usize) {
    let needle = [format!("AS {name}"), format!("as {name}")]
        .into_iter()
        .find(|n| template.contains(n.as_str()))
        .unwrap_or_else(|| panic!("no alias {name}"));
    let (line, column) = line_col(template, &needle);
    (line, column + 3)
}

#[test]
fn reference_003_queries_pass_in_mysql_and_bigquery() {
    // The documented incremental query: valid, nothing to warn about.
    assert_renders(LAST_UPDATED);
    let report = QueryTemplate::new(LAST_UPDATED).unwrap().check(Dialect::MySQL).unwrap();
    assert_eq!(report.warnings(), &[]);
    assert_eq!(report.result_columns(), Some(4));

    // Fragments without FROM are queries too; they do not use last_sync_time.
    for (fragment, dialects, columns) in
        [(DOT_NOTATION, &[Dialect::MySQL][..], 1), (JSON_OBJECT, &[Dialect::BigQuery, Dialect::MySQL][..], 3)]
    {
        assert_renders(fragment);
        for &dialect in dialects {
            let report = QueryTemplate::new(fragment).unwrap().check(dialect).unwrap();
            assert_eq!(report.warnings().len(), 1, "{dialect}: {:?}", report.warnings());
            assert!(is_unused(&report.warnings()[0]));
            assert_eq!(at(report.warnings()[0].position()), (1, 1));
            assert_eq!(report.result_columns(), Some(columns));
        }
    }
}

#[test]
fn reference_003_where_fragment_is_not_a_query() {
    assert_renders(WHERE_FRAGMENT);
    for dialect in [Dialect::BigQuery, Dialect::MySQL] {
        let e = error(WHERE_FRAGMENT, dialect);
        assert!(matches!(e.kind(), ErrorKind::Syntax { .. }), "{e}");
        assert_eq!(at(e.position()), line_col(WHERE_FRAGMENT, "WHERE"));
    }
}

#[test]
fn reference_004_queries_pass_in_snowflake_with_the_expected_warnings() {
    let cases: [(&str, CallType, &[&str]); 10] = [
        (S4, CallType::Identify, &[]),
        (S7, CallType::Identify, &[]),
        (S8, CallType::Identify, &["email", "phone", "first_name", "last_name"]),
        (S9, CallType::Identify, &[]),
        (S10, CallType::Identify, &[]),
        (S12, CallType::Group, &["company_name", "employees"]),
        (S13, CallType::Group, &[]),
        (S14, CallType::Page, &["url", "time_on_page"]),
        (S15, CallType::Screen, &["session_started"]),
        (S16, CallType::Alias, &[]),
    ];
    for (template, call_type, upper_cased) in cases {
        assert_renders(template);
        let options = CheckOptions::new(Dialect::Snowflake).call_type(call_type);
        let report = QueryTemplate::new(template).unwrap().check(options).unwrap();
        let mut named = Vec::new();
        for warning in report.warnings() {
            let WarningKind::FoldedResultName { name, arrives_as, quoted_alias } = warning.kind() else {
                panic!("unexpected warning for\n{template}\n{warning}");
            };
            assert_eq!(arrives_as, &name.to_uppercase());
            assert_eq!(quoted_alias, &format!("\"{name}\""));
            assert_eq!(at(warning.position()), alias_at(template, name), "{warning}");
            named.push(name.as_str());
        }
        assert_eq!(named, upper_cased, "{template}");
    }
}

#[test]
fn reference_004_malformed_track_query_is_a_parse_error_at_its_place() {
    assert_renders(S11);
    let options = CheckOptions::new(Dialect::Snowflake).call_type(CallType::Track);
    let e = QueryTemplate::new(S11).unwrap().check(options).unwrap_err();
    assert!(matches!(e.kind(), ErrorKind::Syntax { .. }), "{e}");
    assert_eq!(at(e.position()), line_col(S11, "As userId"), "{e}");
    assert!(e.to_string().contains(S11.lines().next().unwrap()), "{e}");
}

#[test]
fn reference_004_setup_statements_are_not_sync_queries() {
    for (template, statement, place) in [
        (S1, "CREATE WAREHOUSE", "CREATE"),
        (S2, "CREATE ROLE", "CREATE"),
        (S3, "CREATE USER", "CREATE"),
        (S5, "ALTER USER", "ALTER"),
        (S6, "ALTER ROLE", "ALTER"),
    ] {
        let e = error(template, Dialect::Snowflake);
        assert!(
            matches!(e.kind(), ErrorKind::NotReadOnly { statement: s } if s == statement),
            "{template}\n{e}"
        );
        assert_eq!(at(e.position()), line_col(template, place), "{e}");
    }
}
