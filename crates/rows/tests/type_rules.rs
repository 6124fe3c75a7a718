//! Rules per call type: group's objectTypeId and relationshipAttributes, required
//! fields, identity, and semantic events (validated by cdp-calls).

mod common;

use cdp_calls::{CallError, CallType, SemanticEvent};
use cdp_rows::{RowErrorReason, Value};
use common::*;
use serde_json::json;

fn group(object_type_id: Value<'_>) -> Result<cdp_calls::Call, cdp_rows::RowError> {
    map(
        CallType::Group,
        vec![
            ("userId", Value::from("u1")),
            ("groupId", Value::from("acme")),
            ("objectTypeId", object_type_id),
        ],
    )
}

#[test]
fn group_object_type_id_is_a_stringified_integer_in_the_traits() {
    for (value, want) in [
        (Value::Int(3), "3"),
        (Value::UInt(12), "12"),
        (Value::decimal("2"), "2"),
        (Value::decimal("4.000"), "4"),
        (Value::Float(5.0), "5"),
        (Value::from("6"), "6"),
        (Value::from(" +7 "), "7"),
        (Value::decimal("1E+1"), "10"),
    ] {
        let kind = value.kind();
        let call = ok(group(value));
        assert_eq!(payload(&call), json!({"objectTypeId": want}), "{kind}");
        assert_eq!(call.object_type_id().as_deref(), Some(want), "{kind}");
    }
    // Null: the default object type, 1.
    let call = ok(group(Value::Null));
    assert_eq!(call.object_type_id().as_deref(), Some("1"));
}

#[test]
fn a_bad_object_type_id_is_a_row_error() {
    for value in [
        Value::Int(0),
        Value::Int(-1),
        Value::decimal("1.5"),
        Value::Float(2.5),
        Value::from("abc"),
        Value::from("3 apples"),
        Value::decimal("1e400"),
        Value::Bool(true),
    ] {
        let kind = value.kind();
        let e = err(group(value));
        assert_eq!(e.column.as_deref(), Some("objectTypeId"), "{kind}");
        assert!(matches!(e.reason, RowErrorReason::InvalidObjectTypeId { .. }), "{kind}: {e}");
    }
}

#[test]
fn relationship_attributes_stay_an_object_inside_the_traits() {
    for value in [
        Value::json(r#"{"role": "admin", "is_manager": true}"#),
        Value::from("{\n  \"role\": \"admin\",\n  \"is_manager\": true\n}"),
    ] {
        let call = ok(map(
            CallType::Group,
            vec![
                ("userId", Value::from("u1")),
                ("groupId", Value::from("acme")),
                ("RELATIONSHIPATTRIBUTES", value),
                ("name", Value::from("Acme")),
            ],
        ));
        assert_eq!(
            payload(&call),
            json!({"relationshipAttributes": {"role": "admin", "is_manager": true}, "name": "Acme"})
        );
    }
    // Dot notation nests into it too.
    let call = ok(map(
        CallType::Group,
        vec![
            ("userId", Value::from("u1")),
            ("groupId", Value::from("acme")),
            ("relationshipAttributes.role", Value::from("admin")),
        ],
    ));
    assert_eq!(payload(&call), json!({"relationshipAttributes": {"role": "admin"}}));
    // Anything but an object (or null) is a row error, even with text parsing off.
    let e = err(map(
        CallType::Group,
        vec![
            ("userId", Value::from("u1")),
            ("groupId", Value::from("acme")),
            ("relationshipAttributes", Value::from("admin")),
        ],
    ));
    assert_eq!(
        e.reason,
        RowErrorReason::InvalidType {
            field: "traits.relationshipAttributes",
            expected: "a JSON object",
            found: "text"
        }
    );
}

#[test]
fn page_and_screen_need_a_name() {
    for call_type in [CallType::Page, CallType::Screen] {
        for name in [Value::Null, Value::from("")] {
            let e = err(map(call_type, vec![("userId", Value::from("u1")), ("name", name)]));
            assert_eq!(e.reason, RowErrorReason::Call(CallError::MissingField { call_type, field: "name" }));
        }
        let e = err(map(call_type, vec![("userId", Value::from("u1")), ("url", Value::from("/"))]));
        assert_eq!(e.reason.code(), "missing_field");
        assert!(
            ok(map(call_type, vec![("userId", Value::from("u1")), ("name", Value::from("Home"))])).name()
                == Some("Home")
        );
    }
}

#[test]
fn alias_needs_user_id_and_previous_id() {
    let e = err(map(CallType::Alias, vec![("userId", Value::from("u1")), ("previousId", Value::Null)]));
    assert_eq!(
        e.reason,
        RowErrorReason::Call(CallError::MissingField { call_type: CallType::Alias, field: "previousId" })
    );
    let e = err(map(CallType::Alias, vec![("userId", Value::Null), ("previousId", Value::from("p"))]));
    assert_eq!(
        e.reason,
        RowErrorReason::Call(CallError::MissingField { call_type: CallType::Alias, field: "userId" })
    );
    ok(map(CallType::Alias, vec![("userId", Value::from("u")), ("previousId", Value::Int(9))]));
}

#[test]
fn track_needs_an_event_and_group_a_group_id() {
    let e = err(map(CallType::Track, vec![("userId", Value::from("u1")), ("event", Value::from(""))]));
    assert_eq!(
        e.reason,
        RowErrorReason::Call(CallError::MissingField { call_type: CallType::Track, field: "event" })
    );
    let e = err(map(CallType::Group, vec![("userId", Value::from("u1")), ("groupId", Value::Null)]));
    assert_eq!(
        e.reason,
        RowErrorReason::Call(CallError::MissingField { call_type: CallType::Group, field: "groupId" })
    );
}

#[test]
fn every_type_but_alias_needs_user_id_or_anonymous_id() {
    let required = |call_type| -> Vec<(&'static str, Value<'static>)> {
        match call_type {
            CallType::Track => vec![("event", Value::from("Signed Up"))],
            CallType::Page | CallType::Screen => vec![("name", Value::from("Home"))],
            CallType::Group => vec![("groupId", Value::from("g"))],
            _ => vec![],
        }
    };
    for call_type in [CallType::Identify, CallType::Track, CallType::Page, CallType::Screen, CallType::Group]
    {
        let mut row = required(call_type);
        row.extend([("userId", Value::Null), ("anonymousId", Value::from(""))]);
        let e = err(map(call_type, row));
        assert_eq!(e.reason, RowErrorReason::Call(CallError::MissingIdentity { call_type }), "{call_type}");

        let mut row = required(call_type);
        row.push(("anonymousId", Value::from("anon")));
        assert_eq!(ok(map(call_type, row)).anonymous_id.as_deref(), Some("anon"), "{call_type}");
        let mut row = required(call_type);
        row.push(("userId", Value::Int(1)));
        assert_eq!(ok(map(call_type, row)).user_id.as_deref(), Some("1"), "{call_type}");
    }
}

#[test]
fn semantic_events_are_validated() {
    let e = err(map(
        CallType::Track,
        vec![("userId", Value::from("u1")), ("event", Value::from("Device Deleted"))],
    ));
    assert_eq!(
        e.reason,
        RowErrorReason::Call(CallError::SemanticEventField {
            event: SemanticEvent::DeviceDeleted,
            event_name: "Device Deleted".into(),
            field: "context.device.token",
        })
    );
    ok(map(
        CallType::Track,
        vec![
            ("userId", Value::from("u1")),
            ("event", Value::from("Device Deleted")),
            ("context.device.token", Value::from("tok")),
        ],
    ));
    // User Deleted needs a userId; an anonymousId is not enough.
    let e = err(map(
        CallType::Track,
        vec![("anonymousId", Value::from("a")), ("event", Value::from("User Deleted"))],
    ));
    assert_eq!(e.reason.code(), "semantic_event_field");
    // Object Deleted needs properties.objectId.
    let e = err(map(
        CallType::Track,
        vec![
            ("userId", Value::from("u")),
            ("event", Value::from("Object Deleted")),
            ("objectTypeId", Value::Int(2)),
        ],
    ));
    assert!(e.to_string().contains("properties.objectId"), "{e}");
    ok(map(
        CallType::Track,
        vec![
            ("userId", Value::from("u")),
            ("event", Value::from("Object Deleted")),
            ("objectId", Value::from("o1")),
        ],
    ));
}
