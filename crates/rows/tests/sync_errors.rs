//! Sync-level errors: found from the column names alone, when the mapper is built,
//! before any row.

mod common;

use cdp_calls::CallType;
use cdp_rows::{MAX_COLUMNS, MAX_NAME_CHARS, MappingOptions, SyncError};
use common::*;

fn build(call_type: CallType, names: &[&str]) -> Result<(), SyncError> {
    try_mapper(MappingOptions::new("s", call_type), names).map(|_| ())
}

#[test]
fn two_columns_on_the_same_reserved_field() {
    assert_eq!(
        build(CallType::Identify, &["userId", "email", "USERID"]),
        Err(SyncError::SameField { first: "userId".into(), second: "USERID".into(), field: "userId".into() })
    );
    assert_eq!(
        build(CallType::Identify, &["userId", "Context", "context"]).unwrap_err().to_string(),
        "columns `Context` and `context` both set `context`"
    );
    assert!(matches!(
        build(CallType::Group, &["objectTypeId", "OBJECTTYPEID"]),
        Err(SyncError::SameField { .. })
    ));
    assert!(matches!(
        build(CallType::Group, &["relationshipAttributes", "RELATIONSHIPATTRIBUTES"]),
        Err(SyncError::SameField { .. })
    ));
}

#[test]
fn two_columns_on_the_same_payload_field() {
    assert_eq!(
        build(CallType::Track, &["event", "a.b", "x", "a.b"]),
        Err(SyncError::SameField {
            first: "a.b".into(),
            second: "a.b".into(),
            field: "properties.a.b".into()
        })
    );
    // Names differing in case are different traits, unless lower-casing makes them one.
    assert_eq!(build(CallType::Identify, &["userId", "EMAIL", "email"]), Ok(()));
    let lowered = try_mapper(
        MappingOptions::new("s", CallType::Identify).lowercase_names(true),
        &["userId", "EMAIL", "email"],
    );
    assert_eq!(
        lowered.unwrap_err(),
        SyncError::SameField { first: "EMAIL".into(), second: "email".into(), field: "traits.email".into() }
    );
    // A reserved context key in two spellings is one field.
    assert!(matches!(
        build(CallType::Identify, &["context.IP", "CONTEXT.ip"]),
        Err(SyncError::SameField { .. })
    ));
}

#[test]
fn a_column_inside_another_columns_field() {
    assert_eq!(
        build(CallType::Identify, &["userId", "a", "a.b"]),
        Err(SyncError::NestedInsideField {
            outer: "a".into(),
            outer_field: "traits.a".into(),
            inner: "a.b".into(),
            inner_field: "traits.a.b".into(),
        })
    );
    // Order does not matter, nor depth.
    assert!(matches!(
        build(CallType::Identify, &["a.b.c.d", "x", "a.b"]),
        Err(SyncError::NestedInsideField { .. })
    ));
    assert_eq!(
        build(CallType::Track, &["context.ip", "context"]).unwrap_err().to_string(),
        "column `context.ip` sets `context.ip`, inside `context` which column `context` sets"
    );
    assert!(matches!(
        build(CallType::Group, &["objectTypeId", "objectTypeId.x"]),
        Err(SyncError::NestedInsideField { .. })
    ));
    // Siblings and look-alikes are fine.
    assert_eq!(build(CallType::Identify, &["a.b", "a.c", "ab", "a.bc"]), Ok(()));
}

#[test]
fn more_than_512_columns() {
    let names: Vec<String> = (0..=MAX_COLUMNS).map(|i| format!("c{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    assert_eq!(build(CallType::Identify, &refs), Err(SyncError::TooManyColumns { count: 513, limit: 512 }));
    assert_eq!(build(CallType::Identify, &refs[..512]), Ok(()));
}

#[test]
fn names_over_128_characters() {
    // Characters, not bytes: 128 two-byte characters are allowed.
    let long_ok = "é".repeat(MAX_NAME_CHARS);
    assert_eq!(build(CallType::Identify, &["userId", &long_ok]), Ok(()));
    let too_long = "x".repeat(129);
    assert_eq!(
        build(CallType::Identify, &["userId", &too_long]),
        Err(SyncError::NameTooLong { column: too_long.clone(), index: 2, chars: 129, limit: 128 })
    );
}

#[test]
fn empty_names_and_empty_parts() {
    for bad in ["", ".", "a..b", ".a", "a.", "context."] {
        assert_eq!(
            build(CallType::Identify, &["userId", bad]),
            Err(SyncError::EmptyName { column: bad.into(), index: 2 }),
            "{bad:?}"
        );
    }
}
