//! Row errors: collected without stopping, carrying the row number, the column, a
//! structured reason and the row's values; written as CSV that the csv crate reads
//! back unchanged.

mod common;

use cdp_calls::{CallError, CallType};
use cdp_rows::{
    Columns, MappingOptions, ROW_ERROR_CSV_HEADER, Row, RowError, RowErrorCsvWriter, RowErrorReason,
    RowMapper, Value, write_row_errors_csv,
};
use common::*;
use serde_json::json;

fn mapper_for(names: &[&str]) -> RowMapper {
    mapper(MappingOptions::new("s", CallType::Identify), names)
}

#[test]
fn bad_rows_are_collected_and_the_run_goes_on() {
    let mut mapper = mapper_for(&["userId", "email", "timestamp"]);
    let rows = [
        vec![Value::from("u1"), Value::from("a@example.com"), Value::Null],
        vec![Value::Null, Value::from("b@example.com"), Value::Null],
        vec![Value::from("u3"), Value::Null, Value::from("last tuesday")],
        vec![Value::from("u4"), Value::from("d@example.com"), Value::Int(1_795_341_600)],
    ];
    let (mut calls, mut errors) = (Vec::new(), Vec::new());
    for (i, values) in rows.iter().enumerate() {
        match mapper.map_values(i as u64 + 1, values) {
            Ok(call) => calls.push(call),
            Err(e) => errors.push(e),
        }
    }
    let users: Vec<_> = calls.iter().map(|c| c.user_id.as_deref().unwrap()).collect();
    assert_eq!(users, ["u1", "u4"]);

    assert_eq!(errors.len(), 2);
    assert_eq!(errors[0].row_number, 2);
    assert_eq!(errors[0].column, None);
    assert_eq!(
        errors[0].reason,
        RowErrorReason::Call(CallError::MissingIdentity { call_type: CallType::Identify })
    );
    let values: serde_json::Value = serde_json::from_str(&errors[0].values).unwrap();
    assert_eq!(values, json!({"userId": null, "email": "b@example.com", "timestamp": null}));

    assert_eq!(errors[1].row_number, 3);
    assert_eq!(errors[1].column.as_deref(), Some("timestamp"));
    assert_eq!(errors[1].reason.code(), "invalid_timestamp");
    let values: serde_json::Value = serde_json::from_str(&errors[1].values).unwrap();
    assert_eq!(values, json!({"userId": "u3", "email": null, "timestamp": "last tuesday"}));
}

#[test]
fn error_values_are_json_of_the_row_and_long_values_are_cut() {
    let mut mapper = mapper_for(&["userId", "bio", "raw", "when", "blob"]);
    let long = "é".repeat(3000);
    let e = mapper
        .map_values(
            9,
            &[
                Value::Null,
                Value::from(long.as_str()),
                Value::json("{broken"),
                Value::Timestamp(at("2026-11-22T10:00:00Z")),
                Value::from(b"hi".to_vec()),
            ],
        )
        .unwrap_err();
    let values: serde_json::Value = serde_json::from_str(&e.values).unwrap();
    let bio = values["bio"].as_str().unwrap();
    assert!(bio.ends_with('…') && bio.len() <= 1024 + '…'.len_utf8(), "cut to 1 KiB: {} bytes", bio.len());
    assert!(long.starts_with(bio.trim_end_matches('…')), "the start of the text itself");
    assert_eq!(values["raw"], json!("{broken"), "JSON that does not parse is kept as text");
    assert_eq!(values["when"], json!("2026-11-22T10:00:00.000Z"));
    assert_eq!(values["blob"], json!("aGk="));
}

#[test]
fn rows_of_the_wrong_width_or_columns_are_row_errors() {
    let mut mapper = mapper_for(&["userId", "email"]);
    let e = mapper.map_values(4, &[Value::from("u1"), Value::from("e"), Value::Int(3)]).unwrap_err();
    assert_eq!(e.reason, RowErrorReason::ColumnCount { expected: 2, found: 3 });
    let values: serde_json::Value = serde_json::from_str(&e.values).unwrap();
    assert_eq!(values, json!({"userId": "u1", "email": "e", "(value 3 beyond the columns)": 3}));

    let e = mapper.map_values(5, &[Value::from("u1")]).unwrap_err();
    assert_eq!(e.reason, RowErrorReason::ColumnCount { expected: 2, found: 1 });

    let other = Row::new(Columns::new(["userId", "phone"]), vec![Value::from("u1"), Value::from("555")]);
    let e = mapper.map(6, &other).unwrap_err();
    assert_eq!(e.reason, RowErrorReason::ColumnsDiffer);
    let same = Row::new(mapper.columns().clone(), vec![Value::from("u1"), Value::from("e")]);
    assert!(mapper.map(7, &same).is_ok());
    let equal = Row::new(Columns::new(["userId", "email"]), vec![Value::from("u1"), Value::from("e")]);
    assert!(mapper.map(8, &equal).is_ok(), "equal names from another list are the same columns");
}

#[test]
fn row_errors_display_row_column_and_reason() {
    let e = RowError {
        row_number: 12,
        column: Some("AGE".into()),
        reason: RowErrorReason::InvalidType {
            field: "userId",
            expected: "text or a number",
            found: "boolean",
        },
        values: "{}".into(),
    };
    assert_eq!(e.to_string(), "row 12, column `AGE`: `userId` must be text or a number, found boolean");
    assert!(std::error::Error::source(&e).is_some());
}

#[test]
fn csv_round_trips_through_an_independent_reader() {
    let tricky = [
        "plain",
        "comma, and \"quotes\"",
        "new\nline",
        "crlf\r\nline",
        " leading and trailing ",
        "unicode: Übersicht ✓ 🦀",
        "",
    ];
    let mut mapper = mapper_for(&["userId", "note"]);
    let errors: Vec<RowError> = tricky
        .iter()
        .enumerate()
        .map(|(i, note)| mapper.map_values(i as u64 + 1, &[Value::Null, Value::from(*note)]).unwrap_err())
        .chain(std::iter::once(RowError {
            row_number: 99,
            column: Some("col, \"quoted\"\nname".into()),
            reason: RowErrorReason::ValueTooLarge { bytes: 200_000, limit: 131_072 },
            values: "{\"x\":\"y\"}".into(),
        }))
        .collect();

    let bytes = write_row_errors_csv(Vec::new(), &errors).unwrap();
    let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(bytes.as_slice());
    assert_eq!(reader.headers().unwrap().iter().collect::<Vec<_>>(), ROW_ERROR_CSV_HEADER);
    let records: Vec<csv::StringRecord> = reader.records().map(|r| r.unwrap()).collect();
    assert_eq!(records.len(), errors.len());
    for (record, error) in records.iter().zip(&errors) {
        let want = [
            error.row_number.to_string(),
            error.column.as_deref().unwrap_or_default().to_owned(),
            error.reason.code().to_owned(),
            error.reason.to_string(),
            error.values.to_string(),
        ];
        assert_eq!(record.iter().collect::<Vec<_>>(), want.iter().map(String::as_str).collect::<Vec<_>>());
    }
    // The values field holds the row as JSON, note included, byte for byte.
    for (record, note) in records.iter().zip(tricky) {
        let values: serde_json::Value = serde_json::from_str(&record[4]).unwrap();
        assert_eq!(values, json!({"userId": null, "note": note}));
    }
}

#[test]
fn an_empty_error_file_has_just_the_header() {
    let bytes = RowErrorCsvWriter::new(Vec::new()).unwrap().finish().unwrap();
    assert_eq!(String::from_utf8(bytes).unwrap(), "row_number,column,code,reason,values\n");
}
