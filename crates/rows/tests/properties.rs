//! Property tests: arbitrary column names and values never panic, and every row
//! yields either a valid call or a row error that names it.

use cdp_calls::{CallType, Timestamp};
use cdp_rows::{Columns, Date, MappingOptions, RowMapper, Time, Value};
use proptest::prelude::*;

fn call_type() -> impl Strategy<Value = CallType> {
    prop::sample::select(CallType::ALL.to_vec())
}

/// Names mixing reserved fields in any case, dots, and arbitrary text.
fn name() -> impl Strategy<Value = String> {
    let reserved = prop::sample::select(vec![
        "userId",
        "USERID",
        "anonymousId",
        "messageId",
        "timestamp",
        "TIMESTAMP",
        "event",
        "name",
        "groupId",
        "previousId",
        "objectTypeId",
        "relationshipAttributes",
        "context",
        "context.ip",
        "CONTEXT.device.token",
        "integrations",
        "integrations.All",
        "a",
        "a.b",
        "a.b.c",
    ])
    .prop_map(str::to_owned);
    prop_oneof![3 => reserved, 2 => "[a-zA-Z_.]{0,8}", 1 => "\\PC{0,12}", 1 => "x{120,140}"]
}

fn leaf() -> impl Strategy<Value = Value<'static>> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        any::<u64>().prop_map(Value::UInt),
        any::<f64>().prop_map(Value::Float),
        "-?[0-9]{0,25}(\\.[0-9]{0,20})?([eE][+-]?[0-9]{1,4})?".prop_map(Value::decimal),
        "\\PC{0,30}".prop_map(Value::from),
        "[{}\\[\\]\":, a-z0-9]{0,30}".prop_map(Value::from),
        "[{}\\[\\]\":, a-z0-9]{0,30}".prop_map(Value::json),
        prop::collection::vec(any::<u8>(), 0..20).prop_map(Value::from),
        (-719_528_i64..2_932_897)
            .prop_map(|d| Date::from_days_since_unix_epoch(d).map_or(Value::Null, Value::Date)),
        (0_u64..86_400_000_000)
            .prop_map(|t| Time::from_micros_since_midnight(t).map_or(Value::Null, Value::Time)),
        (Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros())
            .prop_map(|t| Timestamp::from_micros(t).map_or(Value::Null, Value::Timestamp)),
        (Timestamp::MIN.as_micros()..=Timestamp::MAX.as_micros())
            .prop_map(|t| Timestamp::from_micros(t).map_or(Value::Null, Value::TimestampWithoutZone)),
        Just(Value::from("{\"a\": {\"b\": [1, null]}}")),
        Just(Value::from("2026-11-22T10:00:00Z")),
        Just(Value::from("Device Deleted")),
    ]
}

fn value() -> impl Strategy<Value = Value<'static>> {
    leaf().prop_recursive(3, 16, 4, |inner| prop::collection::vec(inner, 0..4).prop_map(Value::Array))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    #[test]
    fn any_names_and_values_give_a_call_or_a_row_error(
        call_type in call_type(),
        lowercase in any::<bool>(),
        limit in any::<bool>(),
        names in prop::collection::vec(name(), 0..8),
        rows in prop::collection::vec(prop::collection::vec(value(), 0..9), 1..4),
    ) {
        let options = MappingOptions::new("prop", call_type).lowercase_names(lowercase).limit_call_size(limit);
        let columns = Columns::new(names.clone());
        let Ok(mut mapper) = RowMapper::new(options, &columns, Timestamp::UNIX_EPOCH) else {
            // A sync-level error: reported, no row is mapped.
            return Ok(());
        };
        prop_assert_eq!(mapper.fields().len(), names.len());
        for (i, values) in rows.iter().enumerate() {
            let row_number = i as u64 + 1;
            // Rows of the right width most of the time, as a source gives them.
            let values: Vec<Value<'_>> = if i == 0 {
                values.iter().cloned().chain(std::iter::repeat(Value::Null)).take(names.len()).collect()
            } else {
                values.clone()
            };
            match mapper.map_values(row_number, &values) {
                Ok(call) => {
                    prop_assert_eq!(call.call_type(), call_type);
                    match call.validate() {
                        Ok(()) => {}
                        Err(cdp_calls::CallError::TooLarge { .. }) if !limit => {}
                        Err(e) => prop_assert!(false, "an invalid call was returned: {e}"),
                    }
                    let wire: serde_json::Value = serde_json::from_str(&call.to_json()).expect("valid JSON");
                    prop_assert_eq!(&wire["type"], call_type.as_str());
                    for object in [call.traits(), call.properties(), call.context.as_ref(), call.integrations.as_ref()]
                        .into_iter()
                        .flatten()
                    {
                        // Checked with serde_json's RawValue (a Value could refuse
                        // `1e400` inside a JSON column, which is valid JSON).
                        let raw: Box<serde_json::value::RawValue> =
                            serde_json::from_str(object.as_str()).expect("a valid object");
                        prop_assert_eq!(raw.get().as_bytes().first(), Some(&b'{'));
                    }
                    prop_assert!(call.message_id.is_some());
                }
                Err(e) => {
                    prop_assert_eq!(e.row_number, row_number);
                    if let Some(column) = &e.column {
                        prop_assert!(names.iter().any(|n| **n == **column), "{} is not a column", column);
                    }
                    let values: serde_json::Value = serde_json::from_str(&e.values).expect("values are JSON");
                    prop_assert!(values.is_object());
                    prop_assert!(!e.to_string().is_empty());
                }
            }
        }
    }

    #[test]
    fn decimal_text_never_panics_and_numbers_read_back_exactly(text in "\\PC{0,40}|-?[0-9]{1,30}(\\.[0-9]{1,30})?") {
        let mut mapper = RowMapper::new(
            MappingOptions::new("prop", CallType::Identify),
            &Columns::new(["userId", "v", "timestamp"]),
            Timestamp::UNIX_EPOCH,
        )
        .expect("columns map");
        let result = mapper.map_values(1, &[Value::from("u"), Value::decimal(text.clone()), Value::decimal(text.clone())]);
        if let Ok(call) = result {
            let traits: serde_json::Value = serde_json::from_str(call.traits().unwrap().as_str()).unwrap();
            match &traits["v"] {
                // A string keeps the text exactly.
                serde_json::Value::String(s) => prop_assert_eq!(s, &text),
                // A number means the text's value survives a double (or is an integer).
                serde_json::Value::Number(n) => {
                    let as_f64: f64 = text.parse().expect("a number");
                    prop_assert!(n.as_i64().is_some() || n.as_u64().is_some() || n.as_f64() == Some(as_f64));
                }
                other => prop_assert!(false, "unexpected {other}"),
            }
        }
    }
}
