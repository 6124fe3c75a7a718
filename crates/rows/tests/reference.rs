//! Result shapes from the reference queries (`shared/reference/003_…` for MySQL and
//! BigQuery, `004_…` for Snowflake): the rows each database returns for them, the way
//! it returns them, and the call each must map to (written out by hand).
//!
//! How the databases return these results:
//! - MySQL keeps alias case as written (`id AS userId` arrives as `userId`), returns
//!   `DATETIME` without a zone, and `json_object(...)` as a JSON value printed with
//!   `": "` and `", "`.
//! - BigQuery keeps alias case, and returns `json_object(...)` (type JSON) as compact
//!   JSON text.
//! - Snowflake upper-cases unquoted names (`ID AS userId` arrives as `USERID`) and
//!   keeps quoted ones (`AS "userId"`); returns `NUMBER` as exact decimal text,
//!   `TIMESTAMP_NTZ` without a zone, `ARRAY`/`VARIANT` as JSON, and
//!   `OBJECT_CONSTRUCT(...)` fetched as text, pretty-printed with two-space indents.

mod common;

use cdp_calls::{Call, CallError, CallType};
use cdp_rows::{Columns, MappingOptions, RowError, RowErrorReason, RowMapper, Value};
use common::*;
use serde_json::json;

/// Maps the rows of one result set (row numbers from 1).
fn run(options: MappingOptions, names: &[&str], rows: Vec<Vec<Value<'_>>>) -> Vec<Result<Call, RowError>> {
    let mut mapper = RowMapper::new(options, &Columns::new(names.iter().copied()), at(RUN_START))
        .unwrap_or_else(|e| panic!("{names:?}: {e}"));
    rows.iter().enumerate().map(|(i, values)| mapper.map_values(i as u64 + 1, values)).collect()
}

fn one(options: MappingOptions, names: &[&str], values: Vec<Value<'_>>) -> Result<Call, RowError> {
    run(options, names, vec![values]).remove(0)
}

fn snowflake(call_type: CallType) -> MappingOptions {
    MappingOptions::new("snowflake sync", call_type)
}

// ---------------------------------------------------------------------------------
// 003: MySQL / BigQuery
// ---------------------------------------------------------------------------------

/// `SELECT id AS userId, email, first_name, created AS created_at FROM my_people
/// WHERE UNIX_TIMESTAMP(last_updated) > {{last_sync_time}}` on MySQL.
#[test]
fn mysql_people_identify() {
    let call = ok(one(
        MappingOptions::new("people", CallType::Identify),
        &["userId", "email", "first_name", "created_at"],
        vec![
            Value::Int(1001),
            Value::from("ada@example.com"),
            Value::from("Ada"),
            Value::TimestampWithoutZone(at("2024-03-14T15:09:26Z")), // DATETIME 2024-03-14 15:09:26
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "identify",
            "userId": "1001",
            "traits": {"email": "ada@example.com", "first_name": "Ada", "created_at": "2024-03-14T15:09:26.000Z"},
        })
    );
}

/// The same query with the 5-minute overlap (`>= {{last_sync_time}} - 300`) and the
/// row's update time as `timestamp`: a row read by two runs gets one messageId.
#[test]
fn overlapping_windows_give_the_same_message_id() {
    let names = ["userId", "email", "timestamp"];
    let row = || {
        vec![
            Value::Int(1001),
            Value::from("ada@example.com"),
            Value::TimestampWithoutZone(at("2026-11-22T09:58:00Z")),
        ]
    };
    let options = || MappingOptions::new("people", CallType::Identify);
    let first_run = RowMapper::new(options(), &Columns::new(names), at("2026-11-22T10:00:00Z"))
        .unwrap()
        .map_values(7, &row());
    let second_run = RowMapper::new(options(), &Columns::new(names), at("2026-11-22T10:10:00Z"))
        .unwrap()
        .map_values(1, &row());
    assert_eq!(ok(first_run).message_id, ok(second_run).message_id);
}

/// `SELECT id as groupId, name, json_object('job_title', job_title, 'primary_contact',
/// primary_contact) as relationshipAttributes` on BigQuery and MySQL.
///
/// The example selects no `userId`, so as written every row is a row error (a group
/// call needs `userId` or `anonymousId`); with the person's id added it maps.
#[test]
fn json_object_relationship_attributes() {
    let names = ["groupId", "name", "relationshipAttributes"];
    let bigquery = Value::json(r#"{"job_title":"CTO","primary_contact":true}"#);
    let e = err(one(
        MappingOptions::new("companies", CallType::Group),
        &names,
        vec![Value::Int(42), Value::from("Acme"), bigquery.clone()],
    ));
    assert_eq!(e.reason, RowErrorReason::Call(CallError::MissingIdentity { call_type: CallType::Group }));

    let mysql = Value::json(r#"{"job_title": "CTO", "primary_contact": true}"#);
    for attributes in [bigquery, mysql] {
        let call = ok(one(
            MappingOptions::new("companies", CallType::Group),
            &["groupId", "name", "relationshipAttributes", "userId"],
            vec![Value::Int(42), Value::from("Acme"), attributes, Value::from("person-7")],
        ));
        assert_eq!(
            wire_without_id(&call),
            json!({
                "type": "group",
                "userId": "person-7",
                "groupId": "42",
                "traits": {"name": "Acme", "relationshipAttributes": {"job_title": "CTO", "primary_contact": true}},
            })
        );
    }
}

// ---------------------------------------------------------------------------------
// 004: Snowflake
// ---------------------------------------------------------------------------------

/// `SELECT ID AS userId, EMAIL AS email, MSISDN AS phone, FNAME AS first_name,
/// LNAME AS last_name FROM users`: unquoted aliases arrive upper-cased.
#[test]
fn snowflake_identify_with_upper_case_names() {
    let names = ["USERID", "EMAIL", "PHONE", "FIRST_NAME", "LAST_NAME"];
    let row = || {
        vec![
            Value::decimal("1001"), // NUMBER(38,0)
            Value::from("ada@example.com"),
            Value::from("+33 6 12 34 56 78"),
            Value::from("Ada"),
            Value::from("Lovelace"),
        ]
    };
    // As returned: userId is recognised; the traits keep Snowflake's names.
    let call = ok(one(snowflake(CallType::Identify), &names, row()));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "identify",
            "userId": "1001",
            "traits": {"EMAIL": "ada@example.com", "PHONE": "+33 6 12 34 56 78", "FIRST_NAME": "Ada", "LAST_NAME": "Lovelace"},
        })
    );
    // With lower-casing, the names the query meant.
    let call = ok(one(snowflake(CallType::Identify).lowercase_names(true), &names, row()));
    assert_eq!(
        payload(&call),
        json!({"email": "ada@example.com", "phone": "+33 6 12 34 56 78", "first_name": "Ada", "last_name": "Lovelace"})
    );
}

/// `SELECT ID AS "id", EMAIL AS "email", PRIMARY_PHONE AS "phone"`: quoted aliases
/// keep their case. The example has no `userId`, so each row is a row error.
#[test]
fn snowflake_quoted_aliases_without_user_id() {
    let e = err(one(
        snowflake(CallType::Identify),
        &["id", "email", "phone"],
        vec![Value::decimal("1001"), Value::from("ada@example.com"), Value::from("555-0100")],
    ));
    assert_eq!(e.reason.code(), "missing_identity");
    let values: serde_json::Value = serde_json::from_str(&e.values).unwrap();
    assert_eq!(values, json!({"id": 1001, "email": "ada@example.com", "phone": "555-0100"}));
}

/// `SELECT COALESCE(CAST(USER_ID AS VARCHAR), EMAIL) AS "userId", EMAIL AS "email",
/// FIRST_NAME AS "first_name", LAST_NAME AS "last_name"` (the CASE form returns the
/// same): a lead without an id is identified by email.
#[test]
fn snowflake_coalesced_user_id() {
    let names = ["userId", "email", "first_name", "last_name"];
    let results = run(
        snowflake(CallType::Identify),
        &names,
        vec![
            vec![
                Value::from("1001"),
                Value::from("ada@example.com"),
                Value::from("Ada"),
                Value::from("Lovelace"),
            ],
            vec![Value::from("lead@example.com"), Value::from("lead@example.com"), Value::Null, Value::Null],
        ],
    );
    let calls: Vec<Call> = results.into_iter().map(ok).collect();
    assert_eq!(calls[0].user_id.as_deref(), Some("1001"));
    assert_eq!(
        wire_without_id(&calls[1]),
        json!({
            "type": "identify",
            "userId": "lead@example.com",
            "traits": {"email": "lead@example.com", "first_name": null, "last_name": null},
        })
    );
}

/// `SELECT ID AS "userId", IFF(IS_ACTIVE, 'true', 'false') AS "is_active"`: the
/// strings stay strings.
#[test]
fn snowflake_iff_strings() {
    let results = run(
        snowflake(CallType::Identify),
        &["userId", "is_active"],
        vec![vec![Value::decimal("1"), Value::from("true")], vec![Value::decimal("2"), Value::from("false")]],
    );
    let traits: Vec<serde_json::Value> = results.into_iter().map(|r| payload(&ok(r))).collect();
    assert_eq!(traits, [json!({"is_active": "true"}), json!({"is_active": "false"})]);
}

/// `SELECT id AS USERID As userId, EVENT_NAME AS event, PRODUCTS AS products,
/// TOTAL_PRICE AS value FROM events`.
#[test]
fn snowflake_track() {
    let call = ok(one(
        snowflake(CallType::Track),
        &["USERID", "EVENT", "PRODUCTS", "VALUE"],
        vec![
            Value::decimal("1001"),
            Value::from("Order Completed"),
            Value::json("[\n  \"sku-1\",\n  \"sku-2\"\n]"), // ARRAY
            Value::decimal("59.90"),                        // NUMBER(10,2)
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "track",
            "userId": "1001",
            "event": "Order Completed",
            "properties": {"PRODUCTS": ["sku-1", "sku-2"], "VALUE": 59.90},
        })
    );
    assert!(call.properties().unwrap().as_str().contains("\"VALUE\":59.90"), "the decimal keeps its scale");
}

/// `SELECT COMPANYID AS groupId, OBJECT_TYPE_ID AS objectTypeId, COMPANYNAME as
/// company_name, EMPLOYEES AS employees, PERSONID AS userId FROM companies`.
#[test]
fn snowflake_group() {
    let call = ok(one(
        snowflake(CallType::Group),
        &["GROUPID", "OBJECTTYPEID", "COMPANY_NAME", "EMPLOYEES", "USERID"],
        vec![
            Value::from("acme"),
            Value::decimal("2"),
            Value::from("Acme Inc."),
            Value::decimal("250"),
            Value::from("person-7"),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "group",
            "userId": "person-7",
            "groupId": "acme",
            "traits": {"objectTypeId": "2", "COMPANY_NAME": "Acme Inc.", "EMPLOYEES": 250},
        })
    );
}

/// `SELECT COMPANYID AS "groupId", OBJECTTYPEID AS "objectTypeId", COMPANYNAME AS
/// "companyname", EMPLOYEES AS "employees", PERSONID AS "userId",
/// OBJECT_CONSTRUCT('is_manager', IS_MANAGER, 'role', ROLE, 'start_date', START_DATE)
/// AS "relationshipAttributes"`, the object fetched as text.
#[test]
fn snowflake_group_with_object_construct() {
    let object_construct =
        "{\n  \"is_manager\": true,\n  \"role\": \"admin\",\n  \"start_date\": \"2024-01-15\"\n}";
    let call = ok(one(
        snowflake(CallType::Group),
        &["groupId", "objectTypeId", "companyname", "employees", "userId", "relationshipAttributes"],
        vec![
            Value::decimal("42"),
            Value::decimal("1"),
            Value::from("Acme"),
            Value::decimal("250"),
            Value::decimal("7"),
            Value::from(object_construct),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "group",
            "userId": "7",
            "groupId": "42",
            "traits": {
                "objectTypeId": "1",
                "companyname": "Acme",
                "employees": 250,
                "relationshipAttributes": {"is_manager": true, "role": "admin", "start_date": "2024-01-15"},
            },
        })
    );
}

/// `SELECT ID AS userId, METATITLE AS name, URL AS url, TIME_ON_PAGE AS time_on_page
/// FROM pages`.
#[test]
fn snowflake_page() {
    let call = ok(one(
        snowflake(CallType::Page),
        &["USERID", "NAME", "URL", "TIME_ON_PAGE"],
        vec![
            Value::decimal("1001"),
            Value::from("Pricing"),
            Value::from("https://example.com/pricing"),
            Value::decimal("42.5"),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "page",
            "userId": "1001",
            "name": "Pricing",
            "properties": {"URL": "https://example.com/pricing", "TIME_ON_PAGE": 42.5},
        })
    );
}

/// `SELECT ID AS userId, SCREEN_NAME AS name, SESSION_STARTED AS session_started
/// FROM screens`.
#[test]
fn snowflake_screen() {
    let call = ok(one(
        snowflake(CallType::Screen).lowercase_names(true),
        &["USERID", "NAME", "SESSION_STARTED"],
        vec![
            Value::decimal("1001"),
            Value::from("Settings"),
            Value::TimestampWithoutZone(at("2026-11-22T09:41:00Z")),
        ],
    ));
    assert_eq!(
        wire_without_id(&call),
        json!({
            "type": "screen",
            "userId": "1001",
            "name": "Settings",
            "properties": {"session_started": "2026-11-22T09:41:00.000Z"},
        })
    );
}

/// `SELECT ID AS userId, OLD_ID AS previousId FROM user_resolution`.
#[test]
fn snowflake_alias() {
    let call = ok(one(
        snowflake(CallType::Alias),
        &["USERID", "PREVIOUSID"],
        vec![Value::decimal("1001"), Value::from("anon-5f2c")],
    ));
    assert_eq!(wire_without_id(&call), json!({"type": "alias", "userId": "1001", "previousId": "anon-5f2c"}));
}
