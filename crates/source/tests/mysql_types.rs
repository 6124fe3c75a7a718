//! Every MySQL / MariaDB type the source reads, against a real server (the MariaDB test
//! server that `bash .ci/test` starts; `CDP_TEST_MYSQL_URL` and
//! `CDP_TEST_MYSQL_PASSWORD`): edge values written out by hand, zero dates refused as
//! row errors, `TIMESTAMP` as the instant whatever the writer's time zone, expressions.
#![cfg(feature = "mysql")]

mod common;

use cdp_calls::Timestamp;
use cdp_rows::{Date, Time, Value};
use cdp_source::{MysqlOptions, Source, SourceError};
use common::mysql::{exec, mysql_source};
use common::{read_all, read_ok};

fn ts(text: &str) -> Timestamp {
    Timestamp::parse_rfc3339(text).expect("a valid test timestamp")
}

fn date(y: i32, m: u32, d: u32) -> Value<'static> {
    Value::Date(Date::from_ymd(y, m, d).expect("a valid test date"))
}

fn time(h: u32, m: u32, s: u32, micro: u32) -> Value<'static> {
    Value::Time(Time::from_hms_micro(h, m, s, micro).expect("a valid test time"))
}

fn text(s: &str) -> Value<'static> {
    Value::Text(s.to_owned().into())
}

fn json(s: &str) -> Value<'static> {
    Value::Json(s.to_owned().into())
}

fn decimal(s: &str) -> Value<'static> {
    Value::Decimal(s.to_owned().into())
}

fn bytes(b: &[u8]) -> Value<'static> {
    Value::Bytes(b.to_vec().into())
}

/// Each column type with SQL literals and the values they must read back as.
fn cases() -> Vec<(&'static str, Vec<(&'static str, Value<'static>)>)> {
    vec![
        ("TINYINT", vec![("-128", Value::Int(-128)), ("127", Value::Int(127)), ("0", Value::Int(0))]),
        ("TINYINT UNSIGNED", vec![("0", Value::UInt(0)), ("255", Value::UInt(255))]),
        ("SMALLINT", vec![("-32768", Value::Int(-32768)), ("32767", Value::Int(32767))]),
        ("SMALLINT UNSIGNED", vec![("65535", Value::UInt(65535))]),
        ("MEDIUMINT", vec![("-8388608", Value::Int(-8_388_608)), ("8388607", Value::Int(8_388_607))]),
        ("MEDIUMINT UNSIGNED", vec![("16777215", Value::UInt(16_777_215))]),
        ("INT", vec![("-2147483648", Value::Int(-2_147_483_648)), ("2147483647", Value::Int(2_147_483_647))]),
        ("INT UNSIGNED", vec![("4294967295", Value::UInt(4_294_967_295))]),
        (
            "BIGINT",
            vec![
                ("-9223372036854775808", Value::Int(i64::MIN)),
                ("9223372036854775807", Value::Int(i64::MAX)),
            ],
        ),
        (
            "BIGINT UNSIGNED",
            vec![
                ("18446744073709551615", Value::UInt(u64::MAX)),
                ("9223372036854775808", Value::UInt(1 << 63)),
                ("0", Value::UInt(0)),
            ],
        ),
        // The convention of MySQL's own connectors: TINYINT(1) (and BOOLEAN, which is
        // TINYINT(1)) is a boolean; a value other than 0 and 1 stays a number.
        (
            "TINYINT(1)",
            vec![
                ("1", Value::Bool(true)),
                ("0", Value::Bool(false)),
                ("5", Value::Int(5)),
                ("-1", Value::Int(-1)),
            ],
        ),
        ("BOOLEAN", vec![("TRUE", Value::Bool(true)), ("FALSE", Value::Bool(false))]),
        ("TINYINT(4)", vec![("1", Value::Int(1)), ("0", Value::Int(0))]),
        (
            "DECIMAL(65,30)",
            vec![
                (
                    "12345678901234567890123456789012345.123456789012345678901234567890",
                    decimal("12345678901234567890123456789012345.123456789012345678901234567890"),
                ),
                (
                    "-99999999999999999999999999999999999.999999999999999999999999999999",
                    decimal("-99999999999999999999999999999999999.999999999999999999999999999999"),
                ),
                ("-0.000000000000000000000000000001", decimal("-0.000000000000000000000000000001")),
                ("0", decimal("0.000000000000000000000000000000")),
            ],
        ),
        ("DECIMAL(10,2)", vec![("1.5", decimal("1.50")), ("-12.34", decimal("-12.34"))]),
        (
            "DECIMAL(30,0)",
            vec![("123456789012345678901234567890", decimal("123456789012345678901234567890"))],
        ),
        (
            "FLOAT",
            vec![
                ("0.1", Value::Float(0.1)),
                ("-3.40282e38", Value::Float(-3.40282e38)),
                ("1e-45", Value::Float(1e-45)),
            ],
        ),
        (
            "DOUBLE",
            vec![
                ("0.30000000000000004", Value::Float(0.30000000000000004)),
                ("-2.5e300", Value::Float(-2.5e300)),
                ("2.2250738585072014e-308", Value::Float(2.2250738585072014e-308)),
            ],
        ),
        (
            "DATE",
            vec![
                ("'1000-01-01'", date(1000, 1, 1)),
                ("'9999-12-31'", date(9999, 12, 31)),
                ("'2024-02-29'", date(2024, 2, 29)),
            ],
        ),
        (
            "DATETIME(6)",
            vec![
                ("'1000-01-01 00:00:00'", Value::TimestampWithoutZone(ts("1000-01-01T00:00:00Z"))),
                (
                    "'9999-12-31 23:59:59.999999'",
                    Value::TimestampWithoutZone(ts("9999-12-31T23:59:59.999999Z")),
                ),
                ("'2026-11-22 10:00:00.5'", Value::TimestampWithoutZone(ts("2026-11-22T10:00:00.500Z"))),
            ],
        ),
        // (MariaDB cuts the fraction a column has no room for; MySQL rounds it.)
        (
            "DATETIME",
            vec![("'2026-11-22 10:00:00.7'", Value::TimestampWithoutZone(ts("2026-11-22T10:00:00Z")))],
        ),
        (
            "TIMESTAMP(6) NULL",
            vec![
                ("'1970-01-01 00:00:01'", Value::Timestamp(ts("1970-01-01T00:00:01Z"))),
                ("'2038-01-19 03:14:07.999999'", Value::Timestamp(ts("2038-01-19T03:14:07.999999Z"))),
                ("'2026-11-22 10:00:00.000001'", Value::Timestamp(ts("2026-11-22T10:00:00.000001Z"))),
            ],
        ),
        // TIME is a duration from -838:59:59 to 838:59:59: a time of day when it is
        // one, else the text MySQL itself prints.
        (
            "TIME(6)",
            vec![
                ("'12:30:00.5'", time(12, 30, 0, 500_000)),
                ("'00:00:00'", time(0, 0, 0, 0)),
                ("'23:59:59.999999'", time(23, 59, 59, 999_999)),
                ("'-838:59:59'", text("-838:59:59")),
                ("'838:59:59'", text("838:59:59")),
                ("'-00:00:01.25'", text("-00:00:01.250")),
                ("'24:00:00'", text("24:00:00")),
                ("'-01:30:00.000001'", text("-01:30:00.000001")),
            ],
        ),
        ("YEAR", vec![("1901", Value::Int(1901)), ("2155", Value::Int(2155)), ("0", Value::Int(0))]),
        ("BIT(1)", vec![("b'1'", Value::Bool(true)), ("b'0'", Value::Bool(false))]),
        (
            "BIT(64)",
            vec![
                (
                    "b'1111111111111111111111111111111111111111111111111111111111111111'",
                    Value::UInt(u64::MAX),
                ),
                ("b'101'", Value::UInt(5)),
                ("0", Value::UInt(0)),
            ],
        ),
        ("BIT(12)", vec![("b'100000000001'", Value::UInt(2049))]),
        ("ENUM('free','pro')", vec![("'pro'", text("pro")), ("'free'", text("free"))]),
        ("SET('a','b','c')", vec![("'c,a'", text("a,c")), ("''", text(""))]),
        (
            "TEXT",
            vec![
                ("'héllo ✓ \"quoted\" \\\\ back 🦀'", text("héllo ✓ \"quoted\" \\ back 🦀")),
                ("''", text("")),
            ],
        ),
        ("VARCHAR(20)", vec![("'short'", text("short"))]),
        ("VARCHAR(20) CHARACTER SET latin1", vec![("'café'", text("café"))]),
        ("CHAR(5)", vec![("'ab'", text("ab"))]),
        ("LONGTEXT", vec![("'{\"not\": \"json\"}'", text("{\"not\": \"json\"}"))]),
        (
            "BLOB",
            vec![
                ("X'00FF10'", bytes(&[0, 255, 16])),
                ("X''", bytes(&[])),
                ("X'C328FFFE'", bytes(&[0xc3, 0x28, 0xff, 0xfe])),
            ],
        ),
        ("LONGBLOB", vec![("X'80'", bytes(&[0x80]))]),
        ("VARBINARY(8)", vec![("X'FFFE'", bytes(&[0xff, 0xfe]))]),
        ("BINARY(3)", vec![("X'01'", bytes(&[1, 0, 0]))]),
        // MariaDB's JSON is LONGTEXT with `CHECK (json_valid(column))`: the source
        // finds the check and reads the column as JSON, as MySQL's own JSON type.
        (
            "JSON",
            vec![
                ("'{\"b\": 1, \"a\": [1, 2]}'", json("{\"b\": 1, \"a\": [1, 2]}")),
                ("'[1, \"x\", null]'", json("[1, \"x\", null]")),
                ("'18446744073709551616'", json("18446744073709551616")),
            ],
        ),
    ]
}

#[tokio::test]
async fn a_table_of_every_type_reads_back_as_written() {
    let cases = cases();
    let rows = cases.iter().map(|(_, c)| c.len()).max().unwrap();
    let mut columns = vec!["id INT PRIMARY KEY".to_owned()];
    for (i, (ty, _)) in cases.iter().enumerate() {
        columns.push(format!("c{i} {ty}"));
    }
    // Row r holds each type's r-th literal, or NULL; the last row is NULL everywhere.
    let mut inserts = Vec::new();
    let mut expected_rows = Vec::new();
    for r in 0..=rows {
        let mut literals = vec![r.to_string()];
        let mut expected = vec![Value::Int(r as i64)];
        for (_, c) in &cases {
            match c.get(r) {
                Some((literal, value)) => {
                    literals.push((*literal).to_owned());
                    expected.push(value.clone());
                }
                None => {
                    literals.push("NULL".to_owned());
                    expected.push(Value::Null);
                }
            }
        }
        inserts.push(format!("INSERT INTO types_table VALUES ({})", literals.join(", ")));
        expected_rows.push(expected);
    }
    exec(&format!(
        "DROP TABLE IF EXISTS types_table; CREATE TABLE types_table ({}) CHARACTER SET utf8mb4; \
         SET time_zone = '+00:00'; {};",
        columns.join(", "),
        inserts.join("; ")
    ))
    .await;

    let source = mysql_source(MysqlOptions::new());
    let mut stream = source.query("SELECT * FROM types_table ORDER BY id").await.unwrap();
    assert_eq!(stream.columns().len(), cases.len() + 1);
    let got = read_ok(&mut stream).await;
    assert_eq!(got.len(), expected_rows.len());
    for (r, (got, expected)) in got.iter().zip(&expected_rows).enumerate() {
        for (i, (g, e)) in got.iter().zip(expected).enumerate().skip(1) {
            let (ty, c) = &cases[i - 1];
            let literal = c.get(r).map_or("NULL", |(l, _)| l);
            assert_eq!(g, e, "row {r}, {ty} from {literal}");
        }
    }
}

#[tokio::test]
async fn zero_dates_are_row_errors_naming_the_row_and_column_and_reading_goes_on() {
    // Zero dates go in only when the SQL mode allows them (not the default).
    exec(
        "DROP TABLE IF EXISTS types_zero; CREATE TABLE types_zero (id INT, d DATE, dt DATETIME); \
         SET SESSION sql_mode = ''; \
         INSERT INTO types_zero VALUES (1, '2024-01-02', '2024-01-02 03:04:05'), (2, '0000-00-00', '2024-01-01 00:00:00'), \
             (3, '2024-01-03', '0000-00-00 00:00:00'), (4, '2024-00-00', NULL), (5, NULL, NULL)",
    )
    .await;
    let source = mysql_source(MysqlOptions::new());
    let mut stream = source.query("SELECT id, d, dt FROM types_zero ORDER BY id").await.unwrap();
    let rows = read_all(&mut stream).await;
    assert_eq!(rows.len(), 5, "{rows:?}");
    assert_eq!(
        rows[0].as_ref().unwrap(),
        &vec![Value::Int(1), date(2024, 1, 2), Value::TimestampWithoutZone(ts("2024-01-02T03:04:05Z"))]
    );
    for (index, row, column, type_name, reason) in [
        (1, 2, "d", "DATE", "the zero date 0000-00-00 is not a date"),
        (2, 3, "dt", "DATETIME", "the zero date 0000-00-00 is not a date"),
        (3, 4, "d", "DATE", "2024-00-00 is not a valid date"),
    ] {
        let error = rows[index].as_ref().unwrap_err();
        assert!(error.is_row_error(), "{error:?}");
        assert_eq!((error.row(), error.column()), (Some(row), Some(column)), "{error}");
        match error {
            SourceError::Value { type_name: t, reason: r, source_name, .. } => {
                assert_eq!((t.as_str(), source_name.as_str()), (type_name, "test-mysql"));
                assert!(r.starts_with(reason), "{r}");
            }
            other => panic!("{other:?}"),
        }
        assert!(
            error
                .to_string()
                .starts_with(&format!("source `test-mysql`: row {row}, column `{column}` ({type_name}): ")),
            "{error}"
        );
    }
    assert_eq!(rows[4].as_ref().unwrap(), &vec![Value::Int(5), Value::Null, Value::Null]);
    assert_eq!(stream.rows_read(), 5);
}

#[tokio::test]
async fn a_timestamp_written_in_another_time_zone_reads_as_the_same_instant() {
    // Written by a session at +05:30: TIMESTAMP stores the instant (04:30 UTC),
    // DATETIME the wall-clock reading (10:00), as the writer typed it.
    exec(
        "DROP TABLE IF EXISTS types_zone; CREATE TABLE types_zone (ts TIMESTAMP(6) NULL, dt DATETIME(6)); \
         SET time_zone = '+05:30'; INSERT INTO types_zone VALUES ('2026-11-22 10:00:00.25', '2026-11-22 10:00:00.25')",
    )
    .await;
    let source = mysql_source(MysqlOptions::new());
    let mut stream = source
        .query("SELECT ts, dt, @@session.time_zone AS zone, UNIX_TIMESTAMP(ts) AS unix FROM types_zone")
        .await
        .unwrap();
    let rows = read_ok(&mut stream).await;
    assert_eq!(
        rows,
        vec![vec![
            Value::Timestamp(ts("2026-11-22T04:30:00.250Z")),
            Value::TimestampWithoutZone(ts("2026-11-22T10:00:00.250Z")),
            text("+00:00"),
            decimal("1795321800.250000"),
        ]]
    );
}

#[tokio::test]
async fn expressions_read_by_their_result_types() {
    let source = mysql_source(MysqlOptions::new());
    let mut stream = source
        .query(
            "SELECT 1 AS one, TRUE AS yes, 1 > 0 AS cmp, 'x' AS x, NULL AS nothing, 1.50 AS dec_lit, 1e0 AS dbl, \
             CAST(1 AS UNSIGNED) AS u, CAST(-1 AS SIGNED) AS s, X'FF00' AS hex, CAST('2024-02-29' AS DATE) AS d, \
             TIMESTAMP('2024-02-29 01:02:03.5') AS dt, JSON_OBJECT('a', 1) AS obj, CONCAT('é', 'à') AS cat, \
             CAST(' 42 ' AS CHAR) AS c, SEC_TO_TIME(-90) AS neg, 18446744073709551615 AS big",
        )
        .await
        .unwrap();
    let rows = read_ok(&mut stream).await;
    assert_eq!(
        rows[0],
        vec![
            Value::Int(1),
            Value::Int(1), // TRUE is the integer 1: MySQL has no boolean type
            Value::Int(1),
            text("x"),
            Value::Null,
            decimal("1.50"),
            Value::Float(1.0),
            Value::UInt(1),
            Value::Int(-1),
            bytes(&[0xff, 0]),
            date(2024, 2, 29),
            Value::TimestampWithoutZone(ts("2024-02-29T01:02:03.500Z")),
            // MariaDB's JSON functions return text; the mapper nests text holding an
            // object (cdp-rows' "text parsed as JSON" rule).
            text("{\"a\": 1}"),
            text("éà"),
            text(" 42 "),
            text("-00:01:30"),
            Value::UInt(u64::MAX),
        ]
    );
}

#[tokio::test]
async fn types_the_source_cannot_read_are_refused_before_any_row_with_a_conversion() {
    let source = mysql_source(MysqlOptions::new());
    let error = source.query("SELECT 1 AS id, POINT(1, 2) AS location").await.unwrap_err();
    match &error {
        SourceError::UnsupportedType { column, column_index, type_name, hint, .. } => {
            assert_eq!((column.as_str(), *column_index, type_name.as_str()), ("location", 1, "GEOMETRY"));
            assert!(hint.contains("ST_AsGeoJSON(location)"), "{hint}");
        }
        other => panic!("{other:?}"),
    }
    // The conversion it suggests reads.
    let mut stream = source.query("SELECT ST_AsGeoJSON(POINT(1, 2)) AS location").await.unwrap();
    let rows = read_ok(&mut stream).await;
    let Value::Text(geojson) = &rows[0][0] else { panic!("{rows:?}") };
    assert!(geojson.contains("\"Point\""), "{geojson}");
}
