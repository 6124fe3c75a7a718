//! Behaviour tests for the call model (SPEC sections 1, 2 and 6): required fields,
//! the JSON wire form, sizes, timestamps, semantic events and warehouse rows.
//!
//! Expected values are worked out by hand from the spec, never taken from a run of
//! the code under test.

use cdp_calls::{
    Body, Call, CallError, CallType, ColumnKind, JsonObject, MAX_CALL_BYTES, MAX_MESSAGE_ID_CHARS,
    RECEIVED_AT_COLUMN, SemanticEvent, Timestamp, TimestampError, Value, corrected_timestamp, event_slug,
};
use proptest::prelude::*;
use serde_json::{Value as Json, json};

// ---------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------

fn parse(text: &str) -> Call {
    Call::parse_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn check(v: &Json) -> Result<(), CallError> {
    parse(&v.to_string()).validate()
}

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
}

fn obj(text: &str) -> JsonObject {
    JsonObject::from_json(text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

const NON_ALIAS: [(CallType, &str); 5] = [
    (CallType::Identify, "identify"),
    (CallType::Track, "track"),
    (CallType::Page, "page"),
    (CallType::Screen, "screen"),
    (CallType::Group, "group"),
];

/// A call of `type_name` with its type's required fields (other than identity) set.
fn with_required_fields(type_name: &str) -> Json {
    let mut v = json!({ "type": type_name });
    match type_name {
        "track" => v["event"] = json!("Signed Up"),
        "group" => v["groupId"] = json!("g1"),
        "alias" => v["previousId"] = json!("anon-1"),
        _ => {}
    }
    v
}

// ---------------------------------------------------------------------------------
// 1. Required fields, message id, size
// ---------------------------------------------------------------------------------

#[test]
fn track_without_event_is_rejected_whether_absent_null_or_empty() {
    let want = Err(CallError::MissingField { call_type: CallType::Track, field: "event" });
    for event in [None, Some(Json::Null), Some(json!(""))] {
        let mut v = json!({"type": "track", "userId": "u1", "properties": {"plan": "pro"}});
        if let Some(e) = event {
            v["event"] = e;
        }
        assert_eq!(check(&v), want, "{v}");
    }
    assert_eq!(check(&json!({"type": "track", "userId": "u1", "event": "Signed Up"})), Ok(()));
    // Built in code rather than parsed: same rule.
    let call = Call::new(Body::empty(CallType::Track)).with_user_id("u1");
    assert_eq!(call.validate(), want);
}

#[test]
fn group_without_group_id_is_rejected() {
    let want = Err(CallError::MissingField { call_type: CallType::Group, field: "groupId" });
    for group_id in [None, Some(Json::Null), Some(json!(""))] {
        let mut v = json!({"type": "group", "userId": "u1", "traits": {"name": "Acme"}});
        if let Some(g) = group_id {
            v["groupId"] = g;
        }
        assert_eq!(check(&v), want, "{v}");
    }
    assert_eq!(check(&json!({"type": "group", "userId": "u1", "groupId": "g1"})), Ok(()));
    // A numeric 0 is a present id ("0"), not an absent one.
    assert_eq!(check(&json!({"type": "group", "userId": "u1", "groupId": 0})), Ok(()));
}

#[test]
fn alias_without_previous_id_is_rejected() {
    let want = Err(CallError::MissingField { call_type: CallType::Alias, field: "previousId" });
    for previous_id in [None, Some(Json::Null), Some(json!(""))] {
        let mut v = json!({"type": "alias", "userId": "u1"});
        if let Some(p) = previous_id {
            v["previousId"] = p;
        }
        assert_eq!(check(&v), want, "{v}");
    }
    assert_eq!(check(&json!({"type": "alias", "userId": "u1", "previousId": "anon-1"})), Ok(()));
}

#[test]
fn alias_needs_user_id_and_anonymous_id_alone_is_not_enough() {
    let want = Err(CallError::MissingField { call_type: CallType::Alias, field: "userId" });
    assert_eq!(check(&json!({"type": "alias", "previousId": "anon-1", "anonymousId": "anon-1"})), want);
    assert_eq!(check(&json!({"type": "alias", "previousId": "anon-1"})), want);
    assert_eq!(check(&json!({"type": "alias", "previousId": "anon-1", "userId": null})), want);
    assert_eq!(check(&json!({"type": "alias", "previousId": "anon-1", "userId": ""})), want);
    assert_eq!(
        check(&json!({"type": "alias", "previousId": "anon-1", "userId": "u1", "anonymousId": "a"})),
        Ok(())
    );
}

#[test]
fn non_alias_calls_without_any_identity_are_rejected() {
    for (call_type, name) in NON_ALIAS {
        let want = Err(CallError::MissingIdentity { call_type });
        let v = with_required_fields(name);
        assert_eq!(check(&v), want, "{v}");
        // null and empty strings are the same as absent.
        let mut v = with_required_fields(name);
        v["userId"] = json!("");
        v["anonymousId"] = Json::Null;
        assert_eq!(check(&v), want, "{v}");
        let mut v = with_required_fields(name);
        v["userId"] = Json::Null;
        v["anonymousId"] = json!("");
        assert_eq!(check(&v), want, "{v}");
    }
}

#[test]
fn anonymous_id_alone_or_user_id_alone_is_enough_for_non_alias_calls() {
    for (_, name) in NON_ALIAS {
        let mut v = with_required_fields(name);
        v["anonymousId"] = json!("anon-7");
        assert_eq!(check(&v), Ok(()), "{v}");
        let mut v = with_required_fields(name);
        v["userId"] = json!("u7");
        assert_eq!(check(&v), Ok(()), "{v}");
        // A numeric id counts too.
        let mut v = with_required_fields(name);
        v["anonymousId"] = json!(0);
        assert_eq!(check(&v), Ok(()), "{v}");
    }
}

#[test]
fn page_and_screen_without_name_are_valid() {
    for name in ["page", "screen"] {
        let call = parse(&json!({"type": name, "userId": "u1", "properties": {"path": "/"}}).to_string());
        assert_eq!(call.name(), None);
        assert_eq!(call.validate(), Ok(()), "{name}");
    }
    assert_eq!(Call::new(Body::empty(CallType::Screen)).with_anonymous_id("a1").validate(), Ok(()));
}

#[test]
fn message_id_limit_counts_characters_not_bytes() {
    assert_eq!(MAX_MESSAGE_ID_CHARS, 100);
    let with_id = |id: &str| Call::track("u1", "E").with_message_id(id);

    // 100 characters, 260 bytes: accepted.
    let hundred = format!("{}{}{}", "é".repeat(40), "😀".repeat(40), "x".repeat(20));
    assert_eq!((hundred.chars().count(), hundred.len()), (100, 260));
    assert_eq!(with_id(&hundred).validate(), Ok(()));

    // 101 characters: rejected with the character count.
    let long = format!("{hundred}ü");
    assert_eq!(with_id(&long).validate(), Err(CallError::MessageIdTooLong { chars: 101, limit: 100 }));

    // All four-byte characters: 100 is fine (400 bytes), 101 is not.
    assert_eq!(with_id(&"🎉".repeat(100)).validate(), Ok(()));
    assert_eq!(
        with_id(&"🎉".repeat(101)).validate(),
        Err(CallError::MessageIdTooLong { chars: 101, limit: 100 })
    );

    // ASCII.
    assert_eq!(with_id(&"a".repeat(100)).validate(), Ok(()));
    assert_eq!(
        with_id(&"a".repeat(101)).validate(),
        Err(CallError::MessageIdTooLong { chars: 101, limit: 100 })
    );

    // Through the wire form too.
    let text = format!(r#"{{"type":"identify","userId":"u1","messageId":"{long}"}}"#);
    assert_eq!(parse(&text).validate(), Err(CallError::MessageIdTooLong { chars: 101, limit: 100 }));
}

/// A track call in canonical wire order whose only variable part is `pad`.
fn padded_track(pad: &str) -> String {
    format!(
        r#"{{"type":"track","messageId":"m-1","userId":"u-1","event":"Big","properties":{{"pad":"{pad}"}}}}"#
    )
}

/// Padding of exactly `bytes` bytes, mostly two-byte characters.
fn pad_bytes(bytes: usize) -> String {
    format!("{}{}", "é".repeat(bytes / 2), "x".repeat(bytes % 2))
}

#[test]
fn a_call_of_exactly_32_kib_is_accepted_and_one_byte_more_is_too_large() {
    assert_eq!(MAX_CALL_BYTES, 32 * 1024);
    let base = padded_track("").len();
    let pads: [fn(usize) -> String; 2] = [|n| "x".repeat(n), pad_bytes];
    for pad in pads {
        let exact = padded_track(&pad(32_768 - base));
        assert_eq!(exact.len(), 32_768);
        let call = parse(&exact);
        assert_eq!(call.to_json(), exact, "canonical order and compact already");
        assert_eq!(call.compact_json_len(), 32_768);
        assert_eq!(call.validate(), Ok(()));

        let over = padded_track(&pad(32_769 - base));
        assert_eq!(over.len(), 32_769);
        let call = parse(&over);
        assert_eq!(call.to_json().len(), 32_769);
        assert_eq!(call.compact_json_len(), 32_769);
        assert_eq!(call.validate(), Err(CallError::TooLarge { bytes: 32_769, limit: MAX_CALL_BYTES }));
    }
}

#[test]
fn size_limit_measures_the_compact_form_not_the_input() {
    let base = padded_track("").len();
    // Insert white space everywhere outside strings: the input grows, the call does not.
    let spaced = |text: &str| {
        text.replace("\":", "\" :\n\t ")
            .replace(",\"", " ,\r\n  \"")
            .replace("{\"", "{   \"")
            .replace("\"}", "\"\n}")
    };
    let exact = spaced(&padded_track(&"x".repeat(32_768 - base)));
    assert!(exact.len() > 32_800, "white space added: {}", exact.len());
    let call = parse(&exact);
    assert_eq!(call.to_json(), padded_track(&"x".repeat(32_768 - base)));
    assert_eq!(call.validate(), Ok(()));

    let over = spaced(&padded_track(&"x".repeat(32_769 - base)));
    assert_eq!(parse(&over).validate(), Err(CallError::TooLarge { bytes: 32_769, limit: MAX_CALL_BYTES }));

    // The same holds for an unknown field holding a spaced-out object.
    let unknown = format!(
        "{{\"type\":\"identify\",\"userId\":\"u\",\"blob\": {{ \"k\" : \"{}\" , \"n\" : [ 1 , 2 ] }} }}",
        "z".repeat(100)
    );
    let call = parse(&unknown);
    let compact =
        format!(r#"{{"type":"identify","userId":"u","blob":{{"k":"{}","n":[1,2]}}}}"#, "z".repeat(100));
    assert_eq!(call.to_json(), compact);
    assert_eq!(call.compact_json_len(), compact.len());
}

#[test]
fn size_limit_counts_escapes_as_written() {
    // 6000 control characters take 6000 bytes in memory and 36000 as JSON (`\u0001`).
    let call = Call::track("u1", "\u{1}".repeat(6000));
    let written = format!(r#"{{"type":"track","userId":"u1","event":"{}"}}"#, "\\u0001".repeat(6000));
    assert_eq!(call.to_json(), written);
    assert_eq!(call.compact_json_len(), written.len());
    assert_eq!(call.validate(), Err(CallError::TooLarge { bytes: written.len(), limit: MAX_CALL_BYTES }));

    // An unknown field counts like any other.
    let blob = "b".repeat(MAX_CALL_BYTES);
    let call = parse(&format!(r#"{{"type":"identify","userId":"u1","blob":"{blob}"}}"#));
    let bytes = r#"{"type":"identify","userId":"u1","blob":""}"#.len() + blob.len();
    assert_eq!(call.validate(), Err(CallError::TooLarge { bytes, limit: MAX_CALL_BYTES }));
}

// ---------------------------------------------------------------------------------
// 2. Wire model
// ---------------------------------------------------------------------------------

#[test]
fn every_field_has_its_camel_case_wire_name() {
    // In the documented output order: type, string fields, objects, timestamps.
    let text = concat!(
        r#"{"type":"track","messageId":"m1","userId":"u1","anonymousId":"a1","event":"Order Completed","#,
        r#""properties":{"total":9.5},"context":{"ip":"203.0.113.7"},"integrations":{"All":true},"#,
        r#""timestamp":"2026-11-22T10:00:03.000Z","originalTimestamp":"2026-11-22T09:00:00.000Z","#,
        r#""sentAt":"2026-11-22T09:00:02.000Z","receivedAt":"2026-11-22T10:00:05.000Z"}"#
    );
    let call = parse(text);
    assert_eq!(call.call_type(), CallType::Track);
    assert_eq!(call.message_id.as_deref(), Some("m1"));
    assert_eq!(call.user_id.as_deref(), Some("u1"));
    assert_eq!(call.anonymous_id.as_deref(), Some("a1"));
    assert_eq!(call.event(), Some("Order Completed"));
    assert_eq!(call.properties(), Some(&obj(r#"{"total":9.5}"#)));
    assert_eq!(call.context, Some(obj(r#"{"ip":"203.0.113.7"}"#)));
    assert_eq!(call.integrations, Some(obj(r#"{"All":true}"#)));
    assert_eq!(call.timestamp, Some(ts("2026-11-22T10:00:03Z")));
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T09:00:00Z")));
    assert_eq!(call.sent_at, Some(ts("2026-11-22T09:00:02Z")));
    assert_eq!(call.received_at, Some(ts("2026-11-22T10:00:05Z")));
    assert!(call.extra.is_empty(), "{:?}", call.extra);
    assert_eq!(call.to_json(), text);

    // snake_case spellings are not the fields: they are unknown fields.
    let call = parse(r#"{"type":"identify","user_id":"u1","anonymous_id":"a1","message_id":"m"}"#);
    assert_eq!(
        (call.user_id.as_deref(), call.anonymous_id.as_deref(), call.message_id.as_deref()),
        (None, None, None)
    );
    assert_eq!(call.extra.len(), 3);
    assert_eq!(call.validate(), Err(CallError::MissingIdentity { call_type: CallType::Identify }));
}

#[test]
fn the_type_tag_reads_and_writes_all_six_types() {
    let cases = [
        (CallType::Identify, r#"{"type":"identify","userId":"u1","traits":{"email":"a@example.com"}}"#),
        (CallType::Track, r#"{"type":"track","userId":"u1","event":"E","properties":{"p":1}}"#),
        (CallType::Page, r#"{"type":"page","userId":"u1","name":"Home","properties":{"path":"/"}}"#),
        (CallType::Screen, r#"{"type":"screen","userId":"u1","name":"Cart","properties":{"n":2}}"#),
        (CallType::Group, r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"objectTypeId":2}}"#),
        (CallType::Alias, r#"{"type":"alias","userId":"u1","previousId":"anon-1"}"#),
    ];
    for (call_type, text) in cases {
        let call = parse(text);
        assert_eq!(call.call_type(), call_type, "{text}");
        assert_eq!(call.to_json(), text);
        assert_eq!(call.validate(), Ok(()), "{text}");
        assert!(call.extra.is_empty(), "{text}: typed fields are not unknown fields");
    }
    assert_eq!(parse(cases[0].1).traits(), Some(&obj(r#"{"email":"a@example.com"}"#)));
    assert_eq!(parse(cases[2].1).name(), Some("Home"));
    assert_eq!(parse(cases[3].1).properties(), Some(&obj(r#"{"n":2}"#)));
    assert_eq!(parse(cases[4].1).group_id(), Some("g1"));
    assert_eq!(parse(cases[5].1).previous_id(), Some("anon-1"));

    let names = ["identify", "track", "page", "screen", "group", "alias"];
    assert_eq!(CallType::ALL.map(CallType::as_str), names);
    for (call_type, name) in CallType::ALL.into_iter().zip(names) {
        assert_eq!(call_type.to_string(), name);
        assert_eq!(name.parse::<CallType>(), Ok(call_type));
        assert_eq!(Call::new(Body::empty(call_type)).to_json(), format!(r#"{{"type":"{name}"}}"#));
    }
}

#[test]
fn numeric_ids_become_decimal_strings() {
    let cases = [
        ("42", "42"),
        ("0", "0"),
        ("-7", "-7"),
        ("18446744073709551615", "18446744073709551615"), // u64::MAX
        ("-9223372036854775808", "-9223372036854775808"), // i64::MIN
        ("1.5", "1.5"),
        ("-0.25", "-0.25"),
        ("2.0", "2"),
        ("1e3", "1000"),
    ];
    for (number, want) in cases {
        let call = parse(&format!(
            r#"{{"type":"group","userId":{number},"anonymousId":{number},"groupId":{number}}}"#
        ));
        assert_eq!(call.user_id.as_deref(), Some(want), "userId {number}");
        assert_eq!(call.anonymous_id.as_deref(), Some(want), "anonymousId {number}");
        assert_eq!(call.group_id(), Some(want), "groupId {number}");
        assert_eq!(
            call.to_json(),
            format!(r#"{{"type":"group","userId":"{want}","anonymousId":"{want}","groupId":"{want}"}}"#)
        );
        let alias = parse(&format!(r#"{{"type":"alias","userId":{number},"previousId":{number}}}"#));
        assert_eq!(
            (alias.user_id.as_deref(), alias.previous_id()),
            (Some(want), Some(want)),
            "alias {number}"
        );
        assert_eq!(alias.validate(), Ok(()));
    }
}

#[test]
fn wrongly_typed_fields_name_the_field_what_it_must_be_and_what_was_found() {
    const ID: &str = "a string or number";
    const STR: &str = "a string";
    const OBJ: &str = "an object";
    const TIME: &str = "an RFC 3339 timestamp string";
    let cases: &[(&str, &str, &'static str, &'static str, &'static str)] = &[
        ("identify", r#""userId":true"#, "userId", ID, "boolean"),
        ("identify", r#""userId":["u1"]"#, "userId", ID, "array"),
        ("identify", r#""userId":{"id":"u1"}"#, "userId", ID, "object"),
        ("identify", r#""anonymousId":false"#, "anonymousId", ID, "boolean"),
        ("identify", r#""anonymousId":[]"#, "anonymousId", ID, "array"),
        ("identify", r#""messageId":12"#, "messageId", STR, "number"),
        ("identify", r#""context":"web""#, "context", OBJ, "string"),
        ("identify", r#""context":[{"ip":"1.2.3.4"}]"#, "context", OBJ, "array"),
        ("identify", r#""context":5"#, "context", OBJ, "number"),
        ("identify", r#""context":true"#, "context", OBJ, "boolean"),
        ("identify", r#""integrations":["All"]"#, "integrations", OBJ, "array"),
        ("identify", r#""traits":[1,2]"#, "traits", OBJ, "array"),
        ("track", r#""event":42"#, "event", STR, "number"),
        ("track", r#""event":{"name":"E"}"#, "event", STR, "object"),
        ("track", r#""event":true"#, "event", STR, "boolean"),
        ("track", r#""properties":"x""#, "properties", OBJ, "string"),
        ("page", r#""name":3"#, "name", STR, "number"),
        ("screen", r#""properties":[]"#, "properties", OBJ, "array"),
        ("group", r#""groupId":true"#, "groupId", ID, "boolean"),
        ("group", r#""traits":"t""#, "traits", OBJ, "string"),
        ("alias", r#""previousId":{"id":1}"#, "previousId", ID, "object"),
        ("track", r#""timestamp":1795341600"#, "timestamp", TIME, "number"),
        ("track", r#""originalTimestamp":1795341600000"#, "originalTimestamp", TIME, "number"),
        ("track", r#""sentAt":1.5"#, "sentAt", TIME, "number"),
        ("track", r#""receivedAt":-1"#, "receivedAt", TIME, "number"),
        ("track", r#""sentAt":true"#, "sentAt", TIME, "boolean"),
        ("track", r#""receivedAt":{"t":1}"#, "receivedAt", TIME, "object"),
    ];
    for &(type_name, fragment, field, expected, found) in cases {
        let text = format!(r#"{{"type":"{type_name}",{fragment}}}"#);
        let err = Call::parse_json(&text).unwrap_err();
        assert_eq!(err, CallError::InvalidField { field, expected, found }, "{text}");
        assert_eq!(err.to_string(), format!("field `{field}` must be {expected}, found {found}"));
    }
}

#[test]
fn fields_of_other_types_are_not_type_checked() {
    // `event` means nothing on an identify call: it is an unknown field, kept as is.
    let call = parse(r#"{"type":"identify","userId":"u1","event":42,"groupId":true,"properties":"p"}"#);
    assert_eq!(call.extra.get("event"), Some("42"));
    assert_eq!(call.extra.get("groupId"), Some("true"));
    assert_eq!(call.extra.get("properties"), Some(r#""p""#));
    assert_eq!(call.validate(), Ok(()));
}

#[test]
fn bad_timestamp_text_names_the_field_the_text_and_the_reason() {
    let cases = [
        ("yesterday", TimestampError::Shape),
        ("", TimestampError::Shape),
        ("2026-11-22", TimestampError::Shape),
        ("2026-11-22T10:00:00", TimestampError::Shape), // no offset
        ("1795341600", TimestampError::Shape),
        ("2026-13-01T00:00:00Z", TimestampError::OutOfRange { part: "month" }),
        ("2026-02-29T00:00:00Z", TimestampError::OutOfRange { part: "day" }), // 2026 is no leap year
        ("2026-11-22T25:00:00Z", TimestampError::OutOfRange { part: "hour" }),
    ];
    for field in ["timestamp", "originalTimestamp", "sentAt", "receivedAt"] {
        for (value, reason) in cases.clone() {
            let text = format!(r#"{{"type":"identify","userId":"u1","{field}":"{value}"}}"#);
            let err = Call::parse_json(&text).unwrap_err();
            assert_eq!(
                err,
                CallError::InvalidTimestamp { field, value: value.to_owned(), reason: reason.clone() },
                "{text}"
            );
            assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
        }
    }
}

#[test]
fn timestamps_in_any_offset_are_read_and_written_in_utc_with_z() {
    let call = parse(concat!(
        r#"{"type":"identify","userId":"u1","timestamp":"2026-11-22T11:00:00.5+01:00","#,
        r#""originalTimestamp":"2026-11-21T23:30:00-10:30","sentAt":"2026-11-22t10:00:00.000001z","#,
        r#""receivedAt":"2026-11-22 10:00:00.123456789Z"}"#
    ));
    // 23:30 at -10:30 is 10:00 the next day in UTC; digits past the microsecond are cut.
    assert_eq!(
        call.to_json(),
        concat!(
            r#"{"type":"identify","userId":"u1","timestamp":"2026-11-22T10:00:00.500Z","#,
            r#""originalTimestamp":"2026-11-22T10:00:00.000Z","sentAt":"2026-11-22T10:00:00.000001Z","#,
            r#""receivedAt":"2026-11-22T10:00:00.123456Z"}"#
        )
    );
}

#[test]
fn the_type_field_is_required_and_must_be_one_of_six_names() {
    let cases: [(&str, CallError); 10] = [
        (r#"{"userId":"u1","event":"E"}"#, CallError::MissingType),
        (r#"{"type":null,"userId":"u1"}"#, CallError::MissingType),
        ("{}", CallError::MissingType),
        (r#"{"type":"Track","userId":"u1"}"#, CallError::UnknownType { value: "Track".into() }),
        (r#"{"type":"purchase","userId":"u1"}"#, CallError::UnknownType { value: "purchase".into() }),
        (r#"{"type":"","userId":"u1"}"#, CallError::UnknownType { value: String::new() }),
        (
            r#"{"type":1,"userId":"u1"}"#,
            CallError::InvalidField { field: "type", expected: "a string", found: "number" },
        ),
        (
            r#"{"type":["track"]}"#,
            CallError::InvalidField { field: "type", expected: "a string", found: "array" },
        ),
        (
            r#"{"type":{"name":"track"}}"#,
            CallError::InvalidField { field: "type", expected: "a string", found: "object" },
        ),
        (
            r#"{"type":true}"#,
            CallError::InvalidField { field: "type", expected: "a string", found: "boolean" },
        ),
    ];
    for (text, want) in cases {
        assert_eq!(Call::parse_json(text), Err(want), "{text}");
    }
}

#[test]
fn text_that_is_not_a_json_object_is_rejected_with_where_and_what() {
    for (text, found) in [
        ("[]", "array"),
        (r#""track""#, "string"),
        ("42", "number"),
        ("null", "null"),
        ("true", "boolean"),
        (" [ {\"type\":\"track\"} ] ", "array"),
    ] {
        assert_eq!(Call::parse_json(text), Err(CallError::NotAnObject { found }), "{text}");
    }
    for text in ["", "   ", "{", r#"{"type":"track","#, r#"{"type":"track"} x"#, "{'type':'track'}", "nul"] {
        assert!(matches!(Call::parse_json(text), Err(CallError::InvalidJson { .. })), "{text:?}");
    }
    // The position points at the problem: line 3, the `}` in column 11.
    match Call::parse_json("{\n\"type\": \"track\",\n\"userId\": }") {
        Err(CallError::InvalidJson { line, column, .. }) => assert_eq!((line, column), (3, 11)),
        other => panic!("{other:?}"),
    }
    // Truncated: end of input at column 30 (the length of the text).
    let truncated = r#"{"type":"track","userId":"u1","#;
    assert_eq!(truncated.len(), 30);
    match Call::parse_json(truncated) {
        Err(CallError::InvalidJson { line, column, message }) => {
            assert_eq!((line, column), (1, 30));
            assert!(message.contains("EOF"), "{message}");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn values_serde_json_cannot_decode_are_errors_not_panics() {
    // Valid JSON grammar, but a lone surrogate is no Unicode text and 1e400 is no f64.
    for (text, field) in [
        (r#"{"type":"track","userId":"u1","event":"\ud800"}"#, "event"),
        (r#"{"type":"page","userId":"u1","name":"a\udc00b"}"#, "name"),
        (r#"{"type":"group","userId":"u1","groupId":"\ud83d"}"#, "groupId"),
        (r#"{"type":"alias","userId":"u1","previousId":"x\ud800"}"#, "previousId"),
        (r#"{"type":"group","userId":"u1","groupId":1e400}"#, "groupId"),
        (r#"{"type":"alias","userId":"u1","previousId":-1e999}"#, "previousId"),
        (r#"{"type":"track","userId":"u1","event":1e400}"#, "event"),
    ] {
        match Call::parse_json(text) {
            Err(CallError::InvalidField { field: f, .. }) => assert_eq!(f, field, "{text}"),
            other => panic!("{text}: {other:?}"),
        }
        assert!(serde_json::from_str::<Call>(text).is_err(), "{text}");
    }
    for text in [r#"{"type":"track","userId":"\ud800","event":"E"}"#, r#"{"type":"track","userId":1e400}"#] {
        assert!(matches!(Call::parse_json(text), Err(CallError::InvalidJson { .. })), "{text}");
    }
    // Inside objects and unknown fields they are kept as text, and inspecting them
    // as a `serde_json::Value` is an error, not a panic.
    let call = parse(
        r#"{"type":"track","userId":"u1","event":"E","properties":{"s":"\ud800","n":1e400},"x":"\udc00"}"#,
    );
    assert_eq!(call.properties().unwrap().as_str(), r#"{"s":"\ud800","n":1e400}"#);
    assert_eq!(call.extra.get("x"), Some(r#""\udc00""#));
    assert!(call.properties().unwrap().to_value().is_err());
    let deep = format!(r#"{{"a":{}1{}}}"#, "[".repeat(300), "]".repeat(300));
    let call = parse(&format!(r#"{{"type":"track","userId":"u1","event":"E","properties":{deep}}}"#));
    assert_eq!(call.properties().unwrap().as_str(), deep);
    assert!(call.properties().unwrap().to_value().is_err());
    assert_eq!(call.validate(), Ok(()));
}

#[test]
fn unknown_fields_survive_a_round_trip() {
    let input = r#"{
        "type": "track",
        "userId": 42,
        "event": "Order Completed",
        "timestamp": "2026-11-22T11:00:00+01:00",
        "traits": { "email": "a@example.com", "tags": [ "x", "y" ] },
        "name": "not a track field",
        "groupId": 7,
        "previousId": null,
        "vendorPayload": { "nested": { "deep": [ 1, 2.50, -3e2, true, null, "s p a c e" ] }, "z": {}, "a": [] },
        "flag": false,
        "count": 12,
        "note": "line\nbreak \"quoted\" \\ back \/ slash",
        "nothing": null,
        "emoji": "😀 \ud83d\ude00"
    }"#;
    let call = parse(input);
    assert_eq!(call.user_id.as_deref(), Some("42"));
    assert_eq!(call.properties(), None, "`traits` on a track call is not its properties");
    assert_eq!(call.traits(), None);
    assert_eq!(call.name(), None);
    assert_eq!(call.extra.len(), 10);
    assert_eq!(call.extra.get("previousId"), Some("null"));
    assert_eq!(call.validate(), Ok(()));

    let output = call.to_json();
    // Unknown objects are compacted, but their number spelling and escapes are kept.
    assert!(
        output.contains(
            r#""vendorPayload":{"nested":{"deep":[1,2.50,-3e2,true,null,"s p a c e"]},"z":{},"a":[]}"#
        ),
        "{output}"
    );
    assert!(output.contains(r#""note":"line\nbreak \"quoted\" \\ back \/ slash""#), "{output}");

    let mut want: Json = serde_json::from_str(input).unwrap();
    want["userId"] = json!("42");
    want["timestamp"] = json!("2026-11-22T10:00:00.000Z");
    assert_eq!(serde_json::from_str::<Json>(&output).unwrap(), want);

    let again = parse(&output);
    assert_eq!(again, call);
    assert_eq!(again.to_json(), output);
}

#[test]
fn unknown_field_keys_with_escapes_are_decoded_and_written_escaped() {
    let call = parse(r#"{"type":"identify","userId":"u1","we\u0069rd":1,"a\"b":2,"tab\tkey":3,"":4}"#);
    assert_eq!(call.extra.get("weird"), Some("1"));
    assert_eq!(call.extra.get("a\"b"), Some("2"));
    assert_eq!(call.extra.get("tab\tkey"), Some("3"));
    assert_eq!(call.extra.get(""), Some("4"));
    let output = call.to_json();
    assert_eq!(output, r#"{"type":"identify","userId":"u1","":4,"a\"b":2,"tab\tkey":3,"weird":1}"#);
    assert_eq!(call.compact_json_len(), output.len());
    // An escaped spelling of a known name is that name.
    let call = parse(r#"{"type":"identify","user\u0049d":"u9"}"#);
    assert_eq!(call.user_id.as_deref(), Some("u9"));
}

#[test]
fn a_repeated_top_level_key_takes_its_last_value() {
    // The second spelling has an escaped key, which takes the serde_json path.
    for text in [
        r#"{"type":"identify","userId":"a","x":1,"userId":"b","x":{"n":2},"traits":{},"traits":{"t":3}}"#,
        r#"{"type":"identify","user\u0049d":"a","x":1,"userId":"b","x":{"n":2},"traits":{},"traits":{"t":3}}"#,
    ] {
        let call = parse(text);
        assert_eq!(call.user_id.as_deref(), Some("b"), "{text}");
        assert_eq!(call.extra.get("x"), Some(r#"{"n":2}"#), "{text}");
        assert_eq!(call.traits(), Some(&obj(r#"{"t":3}"#)), "{text}");
        assert_eq!(call.to_json(), r#"{"type":"identify","userId":"b","traits":{"t":3},"x":{"n":2}}"#);
    }
}

#[test]
fn values_kept_as_text_must_still_be_valid_json() {
    let bad = [
        r#""\u12g4""#,
        r#""\u00""#,
        r#""\q""#,
        r#""\x41""#,
        "01",
        "-01",
        "1.",
        ".5",
        "-",
        "+1",
        "1e",
        "1e+",
        "0x10",
        "NaN",
        "Infinity",
        "tru",
        "nul",
        "falsy",
        "[1,]",
        "[1 2]",
        r#"{"a":1,}"#,
        r#"{"a" 1}"#,
        "{1:2}",
        "{'a':1}",
        r#"{"a":}"#,
        "[",
        r#""open"#,
    ];
    for value in bad {
        for text in [
            format!(r#"{{"type":"track","userId":"u","event":"E","properties":{{"k":{value}}}}}"#),
            format!(r#"{{"type":"track","userId":"u","event":"E","x":{value}}}"#),
            format!(r#"{{"type":"track","userId":"u","event":"E","context":{{"a":[{value}]}}}}"#),
        ] {
            assert!(matches!(Call::parse_json(&text), Err(CallError::InvalidJson { .. })), "{text}");
            assert!(serde_json::from_str::<Call>(&text).is_err(), "{text}");
        }
    }
    // Unusual but valid values are kept exactly as written.
    for value in [
        "-0",
        "0.0e+0",
        "1E-5",
        "-12.50",
        "[]",
        "{}",
        r#""\u00e9\/""#,
        r#"[true,false,null]"#,
        r#"{"":{"":[]}}"#,
    ] {
        let text = format!(
            r#"{{"type":"track","userId":"u","event":"E","properties":{{"k":{value}}},"x":{value}}}"#
        );
        let call = parse(&text);
        assert_eq!(call.properties().unwrap().as_str(), format!(r#"{{"k":{value}}}"#));
        assert_eq!(call.extra.get("x"), Some(value));
        assert_eq!(call.to_json(), text);
    }
}

#[test]
fn raw_control_characters_inside_strings_are_invalid_json() {
    // JSON requires U+0000 to U+001F to be escaped inside strings, wherever they are.
    for text in [
        "{\"type\":\"track\",\"userId\":\"a\u{1}b\",\"event\":\"E\"}",
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"tab\there\"}",
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"properties\":{\"k\":\"line\nbreak\"}}",
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"unknown\":\"nul\u{0}\"}",
        "{\"type\":\"track\",\"userId\":\"u\",\"event\":\"E\",\"ke\u{1f}y\":1}",
    ] {
        assert!(matches!(Call::parse_json(text), Err(CallError::InvalidJson { .. })), "{text:?}");
        assert!(serde_json::from_str::<Call>(text).is_err(), "{text:?}");
    }
    // DEL (U+007F) is not a control character for JSON.
    assert_eq!(
        parse("{\"type\":\"track\",\"userId\":\"a\u{7f}\",\"event\":\"E\"}").user_id.as_deref(),
        Some("a\u{7f}")
    );
}

#[test]
fn nested_objects_keep_key_order_and_duplicates_and_lose_only_white_space() {
    let text = "{ \"type\" : \"identify\" ,\n \"userId\" : \"u1\",\t\"traits\" : { \"z\" : 1 , \
                \"a\" : { \"y\" : [ 1 , 2 ] , \"b\" : \"keep  these   spaces\\n\" } , \
                \"m\" : \"tab\\there \\\" and \\\\\" , \"e\" : [ ] },\r\n \
                \"context\": {\"ip\": \"1.2.3.4\", \"ip\": \"5.6.7.8\"} }\r\n";
    let call = parse(text);
    assert_eq!(
        call.traits().unwrap().as_str(),
        r#"{"z":1,"a":{"y":[1,2],"b":"keep  these   spaces\n"},"m":"tab\there \" and \\","e":[]}"#
    );
    assert_eq!(call.context.as_ref().unwrap().as_str(), r#"{"ip":"1.2.3.4","ip":"5.6.7.8"}"#);
    assert_eq!(
        call.to_json(),
        concat!(
            r#"{"type":"identify","userId":"u1","traits":{"z":1,"a":{"y":[1,2],"b":"keep  these   spaces\n"},"#,
            r#""m":"tab\there \" and \\","e":[]},"context":{"ip":"1.2.3.4","ip":"5.6.7.8"}}"#
        )
    );
}

#[test]
fn null_is_the_same_as_absent() {
    let call = parse(concat!(
        r#"{"type":"track","messageId":null,"userId":"u1","anonymousId":null,"event":"E","properties":null,"#,
        r#""context":null,"integrations":null,"timestamp":null,"originalTimestamp":null,"sentAt":null,"receivedAt":null}"#
    ));
    assert_eq!(call, Call::track("u1", "E"));
    assert_eq!(call.to_json(), r#"{"type":"track","userId":"u1","event":"E"}"#);
}

#[test]
fn serde_deserialize_and_serialize_agree_with_parse_json_and_to_json() {
    let inputs = [
        r#"{"type":"track","userId":7,"event":"E","properties":{ "b" : 1, "a" : [ 2 ] },"x":{ "y" : null }}"#,
        r#"{"type":"group","anonymousId":"a","groupId":5,"traits":{"objectTypeId":"7"},"sentAt":"2026-01-01T00:00:00+05:00"}"#,
        r#"{"type":"identify","user\u0049d":"escaped key","traits":{}}"#,
        r#"{ "type" : "alias" , "userId" : "u" , "previousId" : "p" , "context" : { "ip" : "::1" } }"#,
        r#"{"type":"page","name":"\u00e9\n","event":"kept as unknown"}"#,
    ];
    for text in inputs {
        let parsed = parse(text);
        let via_serde: Call = serde_json::from_str(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(via_serde, parsed, "{text}");
        assert_eq!(serde_json::to_string(&parsed).unwrap(), parsed.to_json(), "{text}");
        let as_value = serde_json::to_value(&parsed).unwrap();
        assert_eq!(as_value, serde_json::from_str::<Json>(&parsed.to_json()).unwrap(), "{text}");
        let mut written = Vec::new();
        parsed.write_json(&mut written);
        assert_eq!(written, parsed.to_json().into_bytes());
    }
    // Errors: serde's message carries the call error.
    for (text, want) in [
        (r#"{"userId":"u"}"#, CallError::MissingType),
        (
            r#"{"type":"track","userId":true}"#,
            CallError::InvalidField { field: "userId", expected: "a string or number", found: "boolean" },
        ),
        (r#"{"type":"hop"}"#, CallError::UnknownType { value: "hop".into() }),
    ] {
        assert_eq!(Call::parse_json(text), Err(want.clone()));
        let err = serde_json::from_str::<Call>(text).unwrap_err();
        assert!(err.to_string().contains(&want.to_string()), "{err} vs {want}");
    }
    assert!(serde_json::from_str::<Call>("[1]").is_err());

    // Inside other serde types.
    #[derive(serde::Serialize, serde::Deserialize)]
    struct Batch {
        batch: Vec<Call>,
    }
    let batch: Batch =
        serde_json::from_str(&format!(r#"{{"batch":[{},{}]}}"#, inputs[0], inputs[3])).unwrap();
    assert_eq!(batch.batch, vec![parse(inputs[0]), parse(inputs[3])]);
    assert_eq!(
        serde_json::to_string(&batch).unwrap(),
        format!(r#"{{"batch":[{},{}]}}"#, parse(inputs[0]).to_json(), parse(inputs[3]).to_json())
    );
    // From a `serde_json::Value` (object keys there are sorted, so compare content).
    let from_value: Call =
        serde_json::from_value(json!({"type": "group", "userId": 7, "groupId": "g", "traits": {"a": [1]}}))
            .unwrap();
    assert_eq!(from_value, parse(r#"{"type":"group","userId":"7","groupId":"g","traits":{"a":[1]}}"#));
}

// ---------------------------------------------------------------------------------
// 3. compact_json_len is exact
// ---------------------------------------------------------------------------------

/// Arbitrary text, weighted towards what needs escaping or is multi-byte.
fn text() -> impl Strategy<Value = String> {
    let special = prop::sample::select(vec![
        '"', '\\', '/', '\n', '\r', '\t', '\u{0}', '\u{8}', '\u{c}', '\u{1b}', '\u{1f}', '\u{7f}', 'é', '€',
        '😀', '\u{2028}', '\u{feff}', ' ',
    ]);
    prop::collection::vec(prop_oneof![3 => any::<char>(), 2 => special], 0..12)
        .prop_map(|chars| chars.into_iter().collect())
}

/// Text to paste between quotes as is: plain, escaped, or not valid inside a string.
fn raw_fragment() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => any::<char>().prop_map(String::from),
        1 => prop::sample::select(vec![
            "\\n", "\\\"", "\\\\", "\\/", "\\u00e9", "\\u0000", "\\ud83d\\ude00", "\\ud800", "\\udc00",
            "\\x", "\\u12", "\"", "\\", "\u{0}", "\u{1f}", "\t", "\n", "\u{7f}", "😀", " ", ":", ",", "{", "}",
        ])
        .prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat())
}

fn json_value() -> impl Strategy<Value = Json> {
    let leaf = prop_oneof![
        Just(Json::Null),
        any::<bool>().prop_map(Json::Bool),
        any::<i64>().prop_map(Json::from),
        any::<u64>().prop_map(Json::from),
        // Floats that serde_json reads back exactly (its parser is not correctly
        // rounded without the `float_roundtrip` feature); the crate keeps number text
        // as is, so only the `Value` comparisons below need this.
        any::<f64>()
            .prop_filter("finite and round-tripping", |f| {
                f.is_finite() && serde_json::from_str::<f64>(&Json::from(*f).to_string()).ok() == Some(*f)
            })
            .prop_map(Json::from),
        text().prop_map(Json::String),
    ];
    leaf.prop_recursive(4, 32, 5, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Json::Array),
            prop::collection::vec((text(), inner), 0..5)
                .prop_map(|kv| Json::Object(kv.into_iter().collect())),
        ]
    })
}

fn json_object() -> impl Strategy<Value = serde_json::Map<String, Json>> {
    prop::collection::vec((text(), json_value()), 0..5).prop_map(|kv| kv.into_iter().collect())
}

fn micros() -> impl Strategy<Value = i64> {
    let all = Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros();
    prop_oneof![all.clone(), all.prop_map(|m| m / 1000 * 1000)]
}

/// The parts a random call is made of, kept to build the expected JSON by hand.
#[derive(Debug, Clone)]
struct Parts {
    call_type: CallType,
    ids: [Option<String>; 3],
    typed: Option<String>,
    payload: Option<serde_json::Map<String, Json>>,
    context: Option<serde_json::Map<String, Json>>,
    integrations: Option<serde_json::Map<String, Json>>,
    times: [Option<i64>; 4],
    extra: Vec<(String, Json)>,
}

fn parts() -> impl Strategy<Value = Parts> {
    (
        prop::sample::select(CallType::ALL.to_vec()),
        [prop::option::of(text()), prop::option::of(text()), prop::option::of(text())],
        prop::option::of(text()),
        (prop::option::of(json_object()), prop::option::of(json_object()), prop::option::of(json_object())),
        [
            prop::option::of(micros()),
            prop::option::of(micros()),
            prop::option::of(micros()),
            prop::option::of(micros()),
        ],
        // Some of the times made the same instant as an earlier one, as stamping
        // does (the writer formats an instant once and copies it).
        [
            any::<Option<prop::sample::Index>>(),
            any::<Option<prop::sample::Index>>(),
            any::<Option<prop::sample::Index>>(),
        ],
        prop::collection::vec((text(), json_value()), 0..5),
    )
        .prop_map(|(call_type, ids, typed, (payload, context, integrations), mut times, repeat, extra)| {
            for (i, earlier) in repeat.iter().enumerate() {
                if let Some(earlier) = earlier {
                    times[i + 1] = times[earlier.index(i + 1)];
                }
            }
            (call_type, ids, typed, (payload, context, integrations), times, extra)
        })
        .prop_map(|(call_type, ids, typed, (payload, context, integrations), times, extra)| Parts {
            call_type,
            ids,
            typed,
            payload,
            context,
            integrations,
            times,
            extra,
        })
}

fn to_object(map: &serde_json::Map<String, Json>) -> JsonObject {
    JsonObject::try_from(Json::Object(map.clone())).unwrap()
}

fn build(p: &Parts) -> Call {
    let mut call = Call::new(Body::empty(p.call_type));
    [call.message_id, call.user_id, call.anonymous_id] = p.ids.clone();
    let payload = p.payload.as_ref().map(to_object);
    match &mut call.body {
        Body::Identify(b) => b.traits = payload,
        Body::Track(b) => (b.event, b.properties) = (p.typed.clone(), payload),
        Body::Page(b) => (b.name, b.properties) = (p.typed.clone(), payload),
        Body::Screen(b) => (b.name, b.properties) = (p.typed.clone(), payload),
        Body::Group(b) => (b.group_id, b.traits) = (p.typed.clone(), payload),
        Body::Alias(b) => b.previous_id = p.typed.clone(),
    }
    call.context = p.context.as_ref().map(to_object);
    call.integrations = p.integrations.as_ref().map(to_object);
    let t = p.times.map(|m| m.map(|m| Timestamp::from_micros(m).unwrap()));
    [call.timestamp, call.original_timestamp, call.sent_at, call.received_at] = t;
    for (key, value) in &p.extra {
        // Prefixed so that no unknown key is a known field name.
        call.extra.insert_value(format!("x-{key}"), value);
    }
    call
}

/// RFC 3339 UTC text with milliseconds, or microseconds when there are some, by chrono.
fn utc_text(micros: i64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(micros).unwrap();
    if micros.rem_euclid(1000) == 0 {
        t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
    } else {
        t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
    }
}

/// The wire form of the parts as a `serde_json::Value`, built without the crate.
fn expected_json(p: &Parts) -> Json {
    let mut m = serde_json::Map::new();
    m.insert("type".into(), json!(p.call_type.as_str()));
    for (name, id) in ["messageId", "userId", "anonymousId"].into_iter().zip(&p.ids) {
        if let Some(id) = id {
            m.insert(name.into(), json!(id));
        }
    }
    let (typed_name, payload_name) = match p.call_type {
        CallType::Identify => (None, Some("traits")),
        CallType::Track => (Some("event"), Some("properties")),
        CallType::Page | CallType::Screen => (Some("name"), Some("properties")),
        CallType::Group => (Some("groupId"), Some("traits")),
        CallType::Alias => (Some("previousId"), None),
    };
    if let (Some(name), Some(value)) = (typed_name, &p.typed) {
        m.insert(name.into(), json!(value));
    }
    if let (Some(name), Some(value)) = (payload_name, &p.payload) {
        m.insert(name.into(), Json::Object(value.clone()));
    }
    for (name, value) in [("context", &p.context), ("integrations", &p.integrations)] {
        if let Some(value) = value {
            m.insert(name.into(), Json::Object(value.clone()));
        }
    }
    for (name, t) in ["timestamp", "originalTimestamp", "sentAt", "receivedAt"].into_iter().zip(p.times) {
        if let Some(t) = t {
            m.insert(name.into(), json!(utc_text(t)));
        }
    }
    for (key, value) in &p.extra {
        m.insert(format!("x-{key}"), value.clone());
    }
    Json::Object(m)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn compact_json_len_is_the_length_of_to_json(p in parts()) {
        let call = build(&p);
        let json = call.to_json();
        prop_assert_eq!(call.compact_json_len(), json.len());
        // It is the JSON the parts describe.
        let written: Json = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(&written, &expected_json(&p));
        // Both readers give back the same call, and writing it again changes nothing.
        prop_assert_eq!(&Call::parse_json(&json).unwrap(), &call);
        prop_assert_eq!(&serde_json::from_str::<Call>(&json).unwrap(), &call);
        prop_assert_eq!(serde_json::to_string(&call).unwrap(), json.clone());
        // Read back from a spaced-out (and re-ordered) spelling, the size is the same.
        let pretty = serde_json::to_string_pretty(&written).unwrap();
        let reread = Call::parse_json(&pretty).unwrap();
        prop_assert_eq!(reread.compact_json_len(), json.len());
        prop_assert_eq!(reread.to_json().len(), json.len());
        prop_assert_eq!(serde_json::from_str::<Json>(&reread.to_json()).unwrap(), written);
    }

    #[test]
    fn the_fast_reader_agrees_with_serde_on_odd_string_contents(
        parts in prop::collection::vec(raw_fragment(), 5),
        escaped_key in any::<bool>(),
    ) {
        // Fragments are pasted in unescaped: some texts are invalid JSON on purpose.
        let key = if escaped_key { r"user\u0049d" } else { "userId" };
        let text = format!(
            r#"{{"type":"track","{key}":"{}","event":"{}","properties":{{"k":"{}"}},"{}":"{}"}}"#,
            parts[0], parts[1], parts[2], parts[3], parts[4]
        );
        let ours = Call::parse_json(&text);
        let theirs = serde_json::from_str::<Call>(&text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => {
                prop_assert_eq!(a, b);
                prop_assert_eq!(a.compact_json_len(), a.to_json().len());
            }
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{:?}: parse_json {:?} but serde {:?}", text, ours, theirs.map_err(|e| e.to_string())),
        }
    }

    #[test]
    fn parse_json_never_panics_and_agrees_with_serde(text in "[{}\\[\\]\":, a-z0-9.\\\\eE+-]{0,40}") {
        let ours = Call::parse_json(&text);
        let theirs = serde_json::from_str::<Call>(&text);
        match (&ours, &theirs) {
            (Ok(a), Ok(b)) => prop_assert_eq!(a, b),
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{:?}: parse_json {:?} but serde {:?}", text, ours, theirs.map_err(|e| e.to_string())),
        }
    }
}

// ---------------------------------------------------------------------------------
// 4. Timestamps
// ---------------------------------------------------------------------------------

#[test]
fn corrected_timestamp_subtracts_the_client_wait_from_received_at() {
    let t = |s: &str| Some(ts(s));
    // Waited 30.25 s on the client: 12:00:00 - 30.25 s.
    assert_eq!(
        corrected_timestamp(
            t("2024-03-10T12:00:00Z"),
            t("2024-03-10T11:58:30.250Z"),
            t("2024-03-10T11:58:00Z")
        ),
        t("2024-03-10T11:59:29.750Z")
    );
    // Client clock two hours fast, waited 5 s: 12:00:07 - 5 s.
    assert_eq!(
        corrected_timestamp(t("2024-03-10T12:00:07Z"), t("2024-03-10T14:00:05Z"), t("2024-03-10T14:00:00Z")),
        t("2024-03-10T12:00:02Z")
    );
    // Two microseconds across a year boundary.
    let fixed = corrected_timestamp(
        t("2024-01-01T00:00:00.000001Z"),
        t("2024-01-01T00:00:00.000001Z"),
        t("2023-12-31T23:59:59.999999Z"),
    )
    .unwrap();
    assert_eq!(fixed.to_string(), "2023-12-31T23:59:59.999999Z");
    // sentAt before originalTimestamp: the difference is negative and added.
    assert_eq!(
        corrected_timestamp(t("2024-03-10T10:00:00Z"), t("2024-03-10T10:00:00Z"), t("2024-03-10T10:00:10Z")),
        t("2024-03-10T10:00:10Z")
    );
    // Offsets do not matter: 10:00:05Z - (09:00:02Z - 09:00:00Z).
    let fixed = corrected_timestamp(
        t("2026-11-22T11:00:05+01:00"),
        t("2026-11-22T04:00:02-05:00"),
        t("2026-11-22T09:00:00Z"),
    )
    .unwrap();
    assert_eq!(fixed.to_string(), "2026-11-22T10:00:03.000Z");
}

#[test]
fn corrected_timestamp_falls_back_to_original_then_received() {
    let t = |s: &str| Some(ts(s));
    let (r, s, o) = (t("2024-03-10T12:00:00Z"), t("2024-03-10T11:00:05Z"), t("2024-03-10T11:00:00Z"));
    assert_eq!(corrected_timestamp(r, None, o), o);
    assert_eq!(corrected_timestamp(None, s, o), o);
    assert_eq!(corrected_timestamp(None, None, o), o);
    assert_eq!(corrected_timestamp(r, s, None), r);
    assert_eq!(corrected_timestamp(r, None, None), r);
    assert_eq!(corrected_timestamp(None, s, None), None);
    assert_eq!(corrected_timestamp(None, None, None), None);
    // A result outside the years 0000-9999 is not used: originalTimestamp is.
    let (min, max) = (Some(Timestamp::MIN), Some(Timestamp::MAX));
    assert_eq!(corrected_timestamp(min, max, min), min);
    assert_eq!(corrected_timestamp(max, min, max), max);
}

fn is_ulid(id: &str) -> bool {
    id.len() == 26 && id.bytes().all(|b| b"0123456789ABCDEFGHJKMNPQRSTVWXYZ".contains(&b))
}

#[test]
fn stamp_received_overwrites_received_at_moves_timestamp_and_recomputes_it() {
    let now = ts("2026-11-22T10:00:05Z");
    let mut call = parse(concat!(
        r#"{"type":"track","userId":"u1","event":"E","timestamp":"2026-11-22T10:00:00+01:00","#,
        r#""sentAt":"2026-11-22T09:00:02Z","receivedAt":"2020-01-01T00:00:00Z"}"#
    ));
    call.stamp_received(now);
    assert_eq!(call.received_at, Some(now), "a client cannot set receivedAt");
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T09:00:00Z")), "timestamp moved");
    assert_eq!(call.sent_at, Some(ts("2026-11-22T09:00:02Z")));
    assert_eq!(call.timestamp, Some(ts("2026-11-22T10:00:03Z")), "10:00:05 - 2 s");
    let id = call.message_id.clone().unwrap();
    assert!(is_ulid(&id), "{id}");
    assert_eq!(ulid::Ulid::from_string(&id).unwrap().timestamp_ms(), now.as_millis() as u64);
    assert_eq!(
        call.to_json(),
        format!(
            concat!(
                r#"{{"type":"track","messageId":"{}","userId":"u1","event":"E","#,
                r#""timestamp":"2026-11-22T10:00:03.000Z","originalTimestamp":"2026-11-22T09:00:00.000Z","#,
                r#""sentAt":"2026-11-22T09:00:02.000Z","receivedAt":"2026-11-22T10:00:05.000Z"}}"#
            ),
            id
        )
    );

    // Stamped again (a retry) later: the id stays, the times follow the new receipt.
    let later = ts("2026-11-22T10:01:00Z");
    call.stamp_received(later);
    assert_eq!(call.message_id.as_deref(), Some(id.as_str()));
    assert_eq!(call.received_at, Some(later));
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T09:00:00Z")));
    assert_eq!(call.timestamp, Some(ts("2026-11-22T10:00:58Z")));
}

#[test]
fn stamp_received_keeps_an_original_timestamp_and_ignores_the_callers_timestamp() {
    let now = ts("2026-11-22T10:00:05Z");
    let mut call = parse(concat!(
        r#"{"type":"identify","userId":"u1","messageId":"mine","timestamp":"2026-11-22T08:00:00Z","#,
        r#""originalTimestamp":"2026-11-22T09:00:00Z","sentAt":"2026-11-22T09:00:01Z"}"#
    ));
    call.stamp_received(now);
    assert_eq!(call.message_id.as_deref(), Some("mine"), "a given messageId is kept");
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T09:00:00Z")));
    assert_eq!(call.timestamp, Some(ts("2026-11-22T10:00:04Z")));
    assert_eq!(call.received_at, Some(now));
}

#[test]
fn stamp_received_without_client_times() {
    let now = ts("2026-11-22T10:00:05.123456Z");
    // No times at all: timestamp is the receipt time.
    let mut call = Call::track("u1", "E");
    call.stamp_received(now);
    assert_eq!(
        (call.timestamp, call.original_timestamp, call.sent_at, call.received_at),
        (Some(now), None, None, Some(now))
    );
    assert!(call.to_json().contains(r#""timestamp":"2026-11-22T10:00:05.123456Z""#));
    // A timestamp but no sentAt: nothing to correct with, the client's time stands.
    let mut call =
        parse(r#"{"type":"track","userId":"u1","event":"E","timestamp":"2026-11-22T09:59:00-02:00"}"#);
    call.stamp_received(now);
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T11:59:00Z")));
    assert_eq!(call.timestamp, Some(ts("2026-11-22T11:59:00Z")));
    // An empty messageId counts as absent; two calls get different ids.
    let mut a = Call::track("u1", "E").with_message_id("");
    let mut b = Call::track("u1", "E");
    a.stamp_received(now);
    b.stamp_received(now);
    let (a, b) = (a.message_id.unwrap(), b.message_id.unwrap());
    assert!(is_ulid(&a) && is_ulid(&b), "{a} {b}");
    assert_ne!(a, b);
}

#[test]
fn fill_missing_keeps_all_four_present_timestamps() {
    let text = concat!(
        r#"{"type":"track","messageId":"m1","userId":"u1","event":"E","timestamp":"2026-01-01T00:00:00.000Z","#,
        r#""originalTimestamp":"2026-01-02T00:00:00.000Z","sentAt":"2026-01-03T00:00:00.000Z","#,
        r#""receivedAt":"2026-01-04T00:00:00.000Z"}"#
    );
    let mut call = parse(text);
    call.fill_missing(ts("2030-06-01T00:00:00Z"));
    assert_eq!(call, parse(text), "nothing changes, not even the inconsistent timestamp");
    assert_eq!(call.to_json(), text);
}

#[test]
fn fill_missing_fills_only_what_is_absent() {
    let now = ts("2026-11-22T10:00:05Z");

    // Nothing at all.
    let mut call = Call::track("u1", "E");
    call.fill_missing(now);
    assert_eq!(
        (call.timestamp, call.original_timestamp, call.sent_at, call.received_at),
        (Some(now), None, None, Some(now))
    );
    let id = call.message_id.clone().unwrap();
    assert!(is_ulid(&id), "{id}");

    // Only a timestamp: it stays, and is also the original.
    let mut call = parse(r#"{"type":"track","userId":"u1","event":"E","timestamp":"2026-11-22T09:00:00Z"}"#);
    call.fill_missing(now);
    let nine = Some(ts("2026-11-22T09:00:00Z"));
    assert_eq!(
        (call.timestamp, call.original_timestamp, call.sent_at, call.received_at),
        (nine, nine, None, Some(now))
    );

    // originalTimestamp and sentAt: receivedAt is now, timestamp corrected from it.
    let mut call = parse(concat!(
        r#"{"type":"track","userId":"u1","event":"E","originalTimestamp":"2026-11-22T09:00:00Z","#,
        r#""sentAt":"2026-11-22T09:00:02Z"}"#
    ));
    call.fill_missing(now);
    assert_eq!(call.received_at, Some(now));
    assert_eq!(call.timestamp, Some(ts("2026-11-22T10:00:03Z")));
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T09:00:00Z")));

    // A stored receivedAt is kept and used; the new messageId dates from it.
    let mut call = parse(concat!(
        r#"{"type":"track","userId":"u1","event":"E","originalTimestamp":"2026-11-22T09:00:00Z","#,
        r#""sentAt":"2026-11-22T09:00:02Z","receivedAt":"2026-11-20T12:00:00Z"}"#
    ));
    call.fill_missing(now);
    assert_eq!(call.received_at, Some(ts("2026-11-20T12:00:00Z")));
    assert_eq!(call.timestamp, Some(ts("2026-11-20T11:59:58Z")));
    let id = call.message_id.clone().unwrap();
    assert_eq!(
        ulid::Ulid::from_string(&id).unwrap().timestamp_ms(),
        ts("2026-11-20T12:00:00Z").as_millis() as u64
    );

    // timestamp and receivedAt, no original: original copied, the rest untouched.
    let mut call = parse(concat!(
        r#"{"type":"track","messageId":"m","userId":"u1","event":"E","timestamp":"2026-11-22T08:00:00+01:00","#,
        r#""receivedAt":"2026-11-22T09:30:00Z"}"#
    ));
    call.fill_missing(now);
    assert_eq!(call.timestamp, Some(ts("2026-11-22T07:00:00Z")));
    assert_eq!(call.original_timestamp, Some(ts("2026-11-22T07:00:00Z")));
    assert_eq!(call.received_at, Some(ts("2026-11-22T09:30:00Z")));
    assert_eq!(call.message_id.as_deref(), Some("m"));
    assert_eq!(
        call.to_json(),
        concat!(
            r#"{"type":"track","messageId":"m","userId":"u1","event":"E","timestamp":"2026-11-22T07:00:00.000Z","#,
            r#""originalTimestamp":"2026-11-22T07:00:00.000Z","receivedAt":"2026-11-22T09:30:00.000Z"}"#
        )
    );
}

// ---------------------------------------------------------------------------------
// 5. Semantic events
// ---------------------------------------------------------------------------------

/// Every spelling from the spec, with its event and required fields beyond `event`.
const SEMANTIC: [(&str, SemanticEvent, &[&str]); 11] = [
    ("Device Created or Updated", SemanticEvent::DeviceCreatedOrUpdated, &["userId", "context.device.token"]),
    ("Device Added or Updated", SemanticEvent::DeviceCreatedOrUpdated, &["userId", "context.device.token"]),
    ("Device Deleted", SemanticEvent::DeviceDeleted, &["userId", "context.device.token"]),
    ("User Deleted", SemanticEvent::UserDeleted, &["userId"]),
    ("User Suppressed", SemanticEvent::UserSuppressed, &["userId"]),
    ("Suppress Person", SemanticEvent::UserSuppressed, &["userId"]),
    ("User Unsuppressed", SemanticEvent::UserUnsuppressed, &["userId"]),
    ("Unsuppress Person", SemanticEvent::UserUnsuppressed, &["userId"]),
    ("Object Deleted", SemanticEvent::ObjectDeleted, &["properties.objectId"]),
    ("Relationship Deleted", SemanticEvent::RelationshipDeleted, &["userId", "properties.objectId"]),
    (
        "Report Delivery Event",
        SemanticEvent::ReportDeliveryEvent,
        &["properties.deliveryId", "properties.metric"],
    ),
];

/// A track call of `event` with an anonymousId and exactly the `present` fields.
fn semantic_call(event: &str, present: &[&str]) -> Json {
    let mut v = json!({"type": "track", "event": event, "anonymousId": "anon-1"});
    for field in present {
        match *field {
            "userId" => v["userId"] = json!("u1"),
            "context.device.token" => v["context"] = json!({"device": {"token": "tok-1", "type": "ios"}}),
            path => {
                let key = path.strip_prefix("properties.").unwrap();
                if v.get("properties").is_none() {
                    v["properties"] = json!({});
                }
                v["properties"][key] = json!(format!("{key}-1"));
            }
        }
    }
    v
}

#[test]
fn every_semantic_event_spelling_is_recognised_and_valid_with_its_fields() {
    for (name, event, required) in SEMANTIC {
        let call = parse(&semantic_call(name, required).to_string());
        assert_eq!(call.semantic_event(), Some(event), "{name}");
        assert_eq!(SemanticEvent::from_event_name(name), Some(event), "{name}");
        assert!(event.names().contains(&name), "{name}");
        assert_eq!(event.required_fields(), required, "{name}");
        assert_eq!(call.validate(), Ok(()), "{name}");
    }
    assert_eq!(SemanticEvent::ALL.len(), 8);
}

#[test]
fn a_semantic_event_missing_a_required_field_names_that_field() {
    for (name, event, required) in SEMANTIC {
        for &missing in required {
            let present: Vec<&str> = required.iter().copied().filter(|f| *f != missing).collect();
            let v = semantic_call(name, &present);
            assert_eq!(
                check(&v),
                Err(CallError::SemanticEventField { event, event_name: name.to_owned(), field: missing }),
                "{v}"
            );
        }
    }
}

#[test]
fn device_token_must_be_present_and_not_null_or_empty() {
    let want = |name: &str, event| {
        Err(CallError::SemanticEventField {
            event,
            event_name: name.to_owned(),
            field: "context.device.token",
        })
    };
    for (name, event) in [
        ("Device Created or Updated", SemanticEvent::DeviceCreatedOrUpdated),
        ("Device Added or Updated", SemanticEvent::DeviceCreatedOrUpdated),
        ("Device Deleted", SemanticEvent::DeviceDeleted),
    ] {
        for context in [
            json!({"ip": "1.2.3.4"}),
            json!({"device": {"type": "ios"}}),
            json!({"device": {"token": null}}),
            json!({"device": {"token": ""}}),
            json!({"device": "tok-1"}),
            json!({"token": "tok-1"}),
        ] {
            let v = json!({"type": "track", "event": name, "userId": "u1", "context": context});
            assert_eq!(check(&v), want(name, event), "{v}");
        }
        // The token is only looked for under context, not properties.
        let v =
            json!({"type": "track", "event": name, "userId": "u1", "properties": {"device": {"token": "t"}}});
        assert_eq!(check(&v), want(name, event), "{v}");
        let v =
            json!({"type": "track", "event": name, "userId": "u1", "context": {"device": {"token": "t"}}});
        assert_eq!(check(&v), Ok(()), "{v}");
    }
}

#[test]
fn object_deleted_needs_no_user_id_but_still_an_identity() {
    let v = json!({"type": "track", "event": "Object Deleted", "anonymousId": "a1", "properties": {"objectId": 42}});
    assert_eq!(check(&v), Ok(()), "a numeric objectId is present; objectTypeId defaults");
    let v = json!({"type": "track", "event": "Object Deleted", "properties": {"objectId": "o1"}});
    assert_eq!(check(&v), Err(CallError::MissingIdentity { call_type: CallType::Track }));
    let v =
        json!({"type": "track", "event": "Object Deleted", "userId": "u1", "properties": {"objectId": null}});
    assert_eq!(
        check(&v),
        Err(CallError::SemanticEventField {
            event: SemanticEvent::ObjectDeleted,
            event_name: "Object Deleted".into(),
            field: "properties.objectId",
        })
    );
}

#[test]
fn names_that_only_resemble_semantic_events_are_ordinary_events() {
    for name in ["device deleted", "Device  Deleted", "Device Deleted ", "User deleted", "Delete User", ""] {
        assert_eq!(SemanticEvent::from_event_name(name), None, "{name:?}");
    }
    let v = json!({"type": "track", "event": "device deleted", "anonymousId": "a1"});
    assert_eq!(check(&v), Ok(()));
    // Only track calls carry events: a page named like one is just a page.
    let v = json!({"type": "page", "name": "User Deleted", "anonymousId": "a1"});
    assert_eq!(parse(&v.to_string()).semantic_event(), None);
    assert_eq!(check(&v), Ok(()));
}

// ---------------------------------------------------------------------------------
// 6. Warehouse rows
// ---------------------------------------------------------------------------------

const COMMON: [&str; 7] =
    ["received_at", "id", "user_id", "anonymous_id", "sent_at", "timestamp", "original_timestamp"];

fn column_names(call_type: CallType) -> Vec<&'static str> {
    call_type.columns().iter().map(|c| c.name).collect()
}

#[test]
fn each_type_has_its_exact_column_list() {
    let with = |rest: &[&'static str]| -> Vec<&'static str> { COMMON.iter().chain(rest).copied().collect() };
    assert_eq!(column_names(CallType::Identify), with(&["traits", "context"]));
    assert_eq!(column_names(CallType::Track), with(&["event", "event_text", "properties", "context"]));
    assert_eq!(column_names(CallType::Page), with(&["name", "properties", "context"]));
    assert_eq!(column_names(CallType::Screen), with(&["name", "properties", "context"]));
    assert_eq!(column_names(CallType::Group), with(&["group_id", "object_type_id", "traits", "context"]));
    assert_eq!(column_names(CallType::Alias), with(&["previous_id", "context"]));
    for call_type in CallType::ALL {
        assert_eq!(call_type.columns()[RECEIVED_AT_COLUMN].name, "received_at");
        for column in call_type.columns() {
            let want = match column.name {
                "received_at" | "sent_at" | "timestamp" | "original_timestamp" => ColumnKind::Timestamp,
                "traits" | "properties" | "context" => ColumnKind::Json,
                _ => ColumnKind::Text,
            };
            assert_eq!(column.kind, want, "{call_type} {}", column.name);
        }
        let call = Call::new(Body::empty(call_type));
        assert_eq!(call.row().columns(), call_type.columns());
        assert_eq!(call.row().values().len(), call_type.columns().len());
    }
}

#[test]
fn a_track_row_has_the_slug_the_event_text_and_every_common_column() {
    let call = parse(concat!(
        r#"{"type":"track","messageId":"m-1","userId":"u1","anonymousId":"a1","event":"Product Viewed (v2)","#,
        r#""properties":{"sku":"X-1"},"context":{"ip":"1.2.3.4"},"timestamp":"2026-11-22T10:00:03Z","#,
        r#""originalTimestamp":"2026-11-22T09:00:00Z","sentAt":"2026-11-22T09:00:02Z","receivedAt":"2026-11-22T10:00:05Z","#,
        r#""traits":{"not":"a column"}}"#
    ));
    let (props, context) = (obj(r#"{"sku":"X-1"}"#), obj(r#"{"ip":"1.2.3.4"}"#));
    let want = vec![
        Value::Timestamp(ts("2026-11-22T10:00:05Z")),
        Value::Text("m-1".into()),
        Value::Text("u1".into()),
        Value::Text("a1".into()),
        Value::Timestamp(ts("2026-11-22T09:00:02Z")),
        Value::Timestamp(ts("2026-11-22T10:00:03Z")),
        Value::Timestamp(ts("2026-11-22T09:00:00Z")),
        Value::Text("product_viewed_v2".into()),
        Value::Text("Product Viewed (v2)".into()),
        Value::Json(&props),
        Value::Json(&context),
    ];
    let row = call.row();
    assert_eq!(row.values().collect::<Vec<_>>(), want);
    assert_eq!(row.get("id"), Some(Value::Text("m-1".into())));
    assert_eq!(row.get("traits"), None, "an unknown field is not a column");
    assert_eq!(row.get("name"), None);
    assert!(std::ptr::eq(row.call(), &call));
}

#[test]
fn event_slugs_follow_the_spec_vectors() {
    let vectors = [
        ("Order Completed", "order_completed"),
        ("sample___text", "sample_text"),
        ("sampleText", "sample_text"),
        ("samPLE text", "sam_ple_text"),
        ("CStringRef", "cstring_ref"),
        ("5TEst", "5test"),
        ("2FA Enabled", "2fa_enabled"),
        ("FOO:BAR$BAZ", "foo_bar_baz"),
        ("___$$Base64Encode", "base64_encode"),
        ("user.signed-up", "user_signed_up"),
        ("Product Viewed (v2)", "product_viewed_v2"),
        ("Über Event", "ber_event"),
    ];
    for (event, slug) in vectors {
        assert_eq!(event_slug(event), slug, "{event}");
        let call = Call::track("u1", event);
        assert_eq!(call.row().get("event"), Some(Value::Text(slug.into())), "{event}");
        assert_eq!(call.row().get("event_text"), Some(Value::Text(event.into())), "{event}");
    }
    // A name with no ASCII word gives an empty slug, not a missing one.
    assert_eq!(Call::track("u1", "日本語").row().get("event"), Some(Value::Text("".into())));
    // A track without event has neither.
    let call = Call::new(Body::empty(CallType::Track));
    assert_eq!(
        (call.row().get("event"), call.row().get("event_text")),
        (Some(Value::Null), Some(Value::Null))
    );
}

#[test]
fn absent_values_are_null_cells() {
    let call = Call::identify("u1");
    let row = call.row();
    let values: Vec<_> = row.values().collect();
    let mut want = vec![Value::Null; 9];
    want[2] = Value::Text("u1".into());
    assert_eq!(values, want);
    let call = Call::alias("u1", "anon-1");
    assert_eq!(call.row().get("previous_id"), Some(Value::Text("anon-1".into())));
    assert_eq!(call.row().get("context"), Some(Value::Null));
}

#[test]
fn a_screen_row_has_name_properties_and_context() {
    let call = parse(concat!(
        r#"{"type":"screen","messageId":"s-1","anonymousId":"a1","name":"Cart","properties":{"items":3},"#,
        r#""context":{"app":{"version":"1.2"}},"receivedAt":"2026-11-22T10:00:05Z"}"#
    ));
    let row = call.row();
    assert_eq!(column_names(CallType::Screen)[7..], ["name", "properties", "context"]);
    let (props, context) = (obj(r#"{"items":3}"#), obj(r#"{"app":{"version":"1.2"}}"#));
    assert_eq!(row.value(7), Value::Text("Cart".into()));
    assert_eq!(row.value(8), Value::Json(&props));
    assert_eq!(row.value(9), Value::Json(&context));
    assert_eq!(row.get("id"), Some(Value::Text("s-1".into())));
    assert_eq!(row.get("user_id"), Some(Value::Null));
    assert_eq!(row.get("anonymous_id"), Some(Value::Text("a1".into())));
    assert_eq!(row.get("received_at"), Some(Value::Timestamp(ts("2026-11-22T10:00:05Z"))));
}

#[test]
fn a_group_row_has_the_group_id_and_the_object_type_id() {
    let cases = [
        (r#"{"type":"group","userId":"u1","groupId":"g1"}"#, "1"),
        (r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"Acme"}}"#, "1"),
        (r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"objectTypeId":null}}"#, "1"),
        (r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"objectTypeId":5}}"#, "5"),
        (r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"name":"A","objectTypeId":"7"}}"#, "7"),
        (r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"objectTypeId":"\u0037"}}"#, "7"),
        (r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"nested":{"objectTypeId":9}}}"#, "1"),
        // A repeated key: the last one wins, as everywhere else.
        (
            r#"{"type":"group","userId":"u1","groupId":"g1","traits":{"objectTypeId":2,"objectTypeId":3}}"#,
            "3",
        ),
    ];
    for (text, want) in cases {
        let call = parse(text);
        assert_eq!(call.object_type_id().as_deref(), Some(want), "{text}");
        assert_eq!(call.row().get("object_type_id"), Some(Value::Text(want.into())), "{text}");
        assert_eq!(call.row().get("group_id"), Some(Value::Text("g1".into())), "{text}");
    }
    let call =
        parse(r#"{"type":"group","userId":"u1","groupId":12,"traits":{"objectTypeId":5,"plan":"pro"}}"#);
    let traits = obj(r#"{"objectTypeId":5,"plan":"pro"}"#);
    let row = call.row();
    assert_eq!(
        row.values().skip(7).collect::<Vec<_>>(),
        [Value::Text("12".into()), Value::Text("5".into()), Value::Json(&traits), Value::Null]
    );
    // Other types have no object type.
    assert_eq!(Call::identify("u1").object_type_id(), None);
}
