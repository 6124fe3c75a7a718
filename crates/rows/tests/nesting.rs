//! Nesting: dot notation to any depth, and JSON-object values (json_object,
//! OBJECT_CONSTRUCT, json_build_object, JSON columns, text holding an object).

mod common;

use cdp_calls::CallType;
use cdp_rows::{RowErrorReason, Value};
use common::*;
use serde_json::json;

#[test]
fn dots_nest_to_any_depth() {
    let call = ok(map(
        CallType::Track,
        vec![
            ("userId", Value::from("u1")),
            ("event", Value::from("Added to Cart")),
            ("cart.product_name", Value::from("Lamp")),
            ("a.b.c.d.e.f", Value::Int(6)),
            ("price", Value::decimal("19.99")),
            ("cart.qty", Value::Int(2)),
            ("a.b.x", Value::Bool(true)),
            ("context.device.token", Value::from("tok-1")),
            ("context.device.type", Value::from("ios")),
        ],
    ));
    assert_eq!(
        payload(&call),
        json!({
            "cart": {"product_name": "Lamp", "qty": 2},
            "a": {"b": {"c": {"d": {"e": {"f": 6}}}, "x": true}},
            "price": 19.99,
        })
    );
    // Keys come in the order their columns first appear.
    assert_eq!(
        call.properties().unwrap().as_str(),
        r#"{"cart":{"product_name":"Lamp","qty":2},"a":{"b":{"c":{"d":{"e":{"f":6}}},"x":true}},"price":19.99}"#
    );
    assert_eq!(call.context.as_ref().unwrap().as_str(), r#"{"device":{"token":"tok-1","type":"ios"}}"#);
}

#[test]
fn nulls_stay_in_nested_objects() {
    let call = ok(map(CallType::Identify, vec![("userId", Value::from("u")), ("a.b", Value::Null)]));
    assert_eq!(payload(&call), json!({"a": {"b": null}}));
}

#[test]
fn json_object_results_nest() {
    // MySQL json_object returns a JSON value, which its client prints with spaces.
    let mysql = Value::json(r#"{"job_title": "CTO", "primary_contact": true}"#);
    // BigQuery JSON: compact text.
    let bigquery = Value::json(r#"{"job_title":"CTO","primary_contact":true}"#);
    // PostgreSQL json_build_object: json text with ": " separators.
    let postgres = Value::json(r#"{"job_title" : "CTO", "primary_contact" : true}"#);
    // Snowflake OBJECT_CONSTRUCT, fetched as text: pretty-printed.
    let snowflake = Value::from("{\n  \"job_title\": \"CTO\",\n  \"primary_contact\": true\n}");
    // A jsonb column: PostgreSQL's jsonb output sorts keys and adds spaces.
    let jsonb = Value::json(r#"{"job_title": "CTO", "primary_contact": true}"#);
    for (source, value) in [
        ("mysql", mysql),
        ("bigquery", bigquery),
        ("postgres", postgres),
        ("snowflake", snowflake),
        ("jsonb", jsonb),
    ] {
        let call = ok(map(CallType::Identify, vec![("userId", Value::from("u1")), ("role", value)]));
        assert_eq!(
            call.traits().unwrap().as_str(),
            r#"{"role":{"job_title":"CTO","primary_contact":true}}"#,
            "{source}"
        );
    }
}

#[test]
fn an_object_under_a_dotted_name_nests_inside_it() {
    let call = ok(map(
        CallType::Identify,
        vec![
            ("userId", Value::from("u1")),
            ("profile.address", Value::json(r#"{"city":"Paris","zip":"75001"}"#)),
            ("profile.age", Value::Int(36)),
        ],
    ));
    assert_eq!(payload(&call), json!({"profile": {"address": {"city": "Paris", "zip": "75001"}, "age": 36}}));
}

#[test]
fn a_context_object_column_and_json_in_context_paths() {
    let call = ok(map(
        CallType::Track,
        vec![
            ("userId", Value::from("u1")),
            ("event", Value::from("Device Added or Updated")),
            ("context.device", Value::json(r#"{"token": "abc", "type": "android"}"#)),
        ],
    ));
    assert_eq!(call.context.as_ref().unwrap().as_str(), r#"{"device":{"token":"abc","type":"android"}}"#);
    call.validate().expect("the semantic event finds context.device.token inside the object");
}

#[test]
fn keys_with_json_specials_are_escaped() {
    let call = ok(map(
        CallType::Identify,
        vec![("userId", Value::from("u1")), ("say \"hi\"", Value::Int(1)), ("tab\there.é", Value::Int(2))],
    ));
    assert_eq!(payload(&call), json!({"say \"hi\"": 1, "tab\there": {"é": 2}}));
}

#[test]
fn invalid_json_inside_a_nested_path_is_a_row_error_naming_the_column() {
    let e = err(map(
        CallType::Identify,
        vec![("userId", Value::from("u1")), ("a.ok", Value::Int(1)), ("a.bad", Value::json("{oops}"))],
    ));
    assert_eq!(e.row_number, 1);
    assert_eq!(e.column.as_deref(), Some("a.bad"));
    assert!(matches!(e.reason, RowErrorReason::InvalidJson { .. }));
}
