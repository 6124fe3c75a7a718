//! Every PostgreSQL type the source reads, against a real server: values written out
//! by hand, or compared with the server's own text output.

mod common;

use cdp_calls::Timestamp;
use cdp_rows::{Date, Time, Value};
use cdp_source::{PostgresOptions, Source, SourceError};
use common::{admin, fresh_schema, postgres_source, read_all, read_ok};

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

/// Each type with SQL literals and the values they must read back as, by hand.
fn cases() -> Vec<(&'static str, Vec<(&'static str, Value<'static>)>)> {
    vec![
        ("int2", vec![("-32768", Value::Int(-32768)), ("32767", Value::Int(32767)), ("0", Value::Int(0))]),
        (
            "int4",
            vec![("-2147483648", Value::Int(-2_147_483_648)), ("2147483647", Value::Int(2_147_483_647))],
        ),
        (
            "int8",
            vec![
                ("-9223372036854775808", Value::Int(i64::MIN)),
                ("9223372036854775807", Value::Int(i64::MAX)),
            ],
        ),
        (
            "float4",
            vec![
                ("0.1", Value::Float(0.1)),
                ("-3.4028235e38", Value::Float(-3.4028235e38)),
                ("'Infinity'", Value::Float(f64::INFINITY)),
            ],
        ),
        (
            "float8",
            vec![
                ("-2.5e300", Value::Float(-2.5e300)),
                ("5e-324", Value::Float(5e-324)),
                ("'-Infinity'", Value::Float(f64::NEG_INFINITY)),
                ("0.30000000000000004", Value::Float(0.30000000000000004)),
            ],
        ),
        (
            "numeric",
            vec![
                (
                    "123456789012345678901234567890.123456789012345678901234567890",
                    decimal("123456789012345678901234567890.123456789012345678901234567890"),
                ),
                ("'NaN'", decimal("NaN")),
                ("-0.000000000000000000000000000001", decimal("-0.000000000000000000000000000001")),
                ("'Infinity'", decimal("Infinity")),
                ("'-Infinity'", decimal("-Infinity")),
                (
                    "1e100",
                    decimal(
                        "10000000000000000000000000000000000000000000000000\
                         000000000000000000000000000000000000000000000000000",
                    ),
                ),
                ("0.00", decimal("0.00")),
                ("-12.340", decimal("-12.340")),
                ("10000", decimal("10000")),
            ],
        ),
        ("numeric(10,3)", vec![("1.5", decimal("1.500")), ("-0.0005", decimal("-0.001"))]),
        ("bool", vec![("true", Value::Bool(true)), ("false", Value::Bool(false))]),
        (
            "text",
            vec![("'héllo ✓ \"quoted\" \\ back'", text("héllo ✓ \"quoted\" \\ back")), ("''", text(""))],
        ),
        ("varchar(10)", vec![("'short'", text("short"))]),
        ("char(5)", vec![("'ab'", text("ab   "))]),
        (
            "json",
            vec![
                ("'{\"b\": 1, \"a\": [1, 2]}'", json("{\"b\": 1, \"a\": [1, 2]}")),
                ("'\"just a string\"'", json("\"just a string\"")),
                ("'null'", json("null")),
            ],
        ),
        (
            "jsonb",
            vec![
                ("'{\"b\": 1, \"a\": [1, 2]}'", json("{\"a\": [1, 2], \"b\": 1}")),
                ("'[1, \"x\", null]'", json("[1, \"x\", null]")),
            ],
        ),
        (
            "timestamp",
            vec![
                (
                    "'1999-12-31 23:59:59.999999'",
                    Value::TimestampWithoutZone(ts("1999-12-31T23:59:59.999999Z")),
                ),
                ("'0001-01-01 00:00:00'", Value::TimestampWithoutZone(ts("0001-01-01T00:00:00Z"))),
                (
                    "'9999-12-31 23:59:59.999999'",
                    Value::TimestampWithoutZone(ts("9999-12-31T23:59:59.999999Z")),
                ),
                ("'1970-01-01 00:00:00'", Value::TimestampWithoutZone(ts("1970-01-01T00:00:00Z"))),
                ("'infinity'", text("infinity")),
            ],
        ),
        (
            "timestamptz",
            vec![
                ("'2026-11-22 10:00:00+02'", Value::Timestamp(ts("2026-11-22T08:00:00Z"))),
                ("'1901-12-13 20:45:52.5+00'", Value::Timestamp(ts("1901-12-13T20:45:52.500Z"))),
                ("'2999-01-01 00:00:00.000001+00'", Value::Timestamp(ts("2999-01-01T00:00:00.000001Z"))),
                ("'-infinity'", text("-infinity")),
            ],
        ),
        (
            "date",
            vec![
                ("'1900-02-28'", date(1900, 2, 28)),
                ("'2000-01-01'", date(2000, 1, 1)),
                ("'9999-12-31'", date(9999, 12, 31)),
                ("'0001-01-01'", date(1, 1, 1)),
                ("'infinity'", text("infinity")),
            ],
        ),
        (
            "time",
            vec![
                ("'23:59:59.999999'", time(23, 59, 59, 999_999)),
                ("'00:00:00'", time(0, 0, 0, 0)),
                ("'12:30:00.5'", time(12, 30, 0, 500_000)),
                ("'24:00:00'", text("24:00:00")),
            ],
        ),
        (
            "uuid",
            vec![
                ("'A0EEBC99-9C0B-4EF8-BB6D-6BB9BD380A11'", text("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11")),
                ("'00000000-0000-0000-0000-000000000000'", text("00000000-0000-0000-0000-000000000000")),
            ],
        ),
        (
            "bytea",
            vec![
                ("'\\x00ff10'", Value::Bytes(vec![0, 255, 16].into())),
                ("'\\x'", Value::Bytes(vec![].into())),
            ],
        ),
        ("src_types.mood", vec![("'happy'", text("happy")), ("'sad'", text("sad"))]),
    ]
}

#[tokio::test]
async fn a_table_of_every_type_reads_back_as_written() {
    let admin = admin().await;
    fresh_schema(&admin, "src_types").await;
    admin.batch_execute("CREATE TYPE src_types.mood AS ENUM ('sad', 'happy')").await.unwrap();

    let cases = cases();
    let rows = cases.iter().map(|(_, c)| c.len()).max().unwrap();
    let mut columns = vec!["id int".to_owned()];
    for (i, (ty, _)) in cases.iter().enumerate() {
        columns.push(format!("c{i} {ty}"));
        columns.push(format!("a{i} {ty}[]"));
    }
    admin.batch_execute(&format!("CREATE TABLE src_types.t ({})", columns.join(", "))).await.unwrap();
    // Row r holds each type's r-th literal and the array [literal, NULL]; a type with
    // fewer literals is NULL there. The last row is NULL everywhere.
    let mut expected_rows = Vec::new();
    for r in 0..=rows {
        let mut literals = vec![r.to_string()];
        let mut expected = vec![Value::Int(r as i64)];
        for (ty, c) in &cases {
            match c.get(r) {
                Some((literal, value)) => {
                    literals.push(format!("({literal})::{ty}"));
                    literals.push(format!("ARRAY[({literal})::{ty}, NULL]"));
                    expected.push(value.clone());
                    expected.push(Value::Array(vec![value.clone(), Value::Null]));
                }
                None => {
                    literals.extend(["NULL".to_owned(), "NULL".to_owned()]);
                    expected.extend([Value::Null, Value::Null]);
                }
            }
        }
        admin
            .batch_execute(&format!("INSERT INTO src_types.t VALUES ({})", literals.join(", ")))
            .await
            .unwrap();
        expected_rows.push(expected);
    }

    let source = postgres_source(PostgresOptions::new());
    let mut stream = source.query("SELECT * FROM src_types.t ORDER BY id").await.unwrap();
    assert_eq!(stream.columns().len(), 1 + 2 * cases.len());
    assert_eq!(stream.columns().name(1), Some("c0"));
    let got = read_ok(&mut stream).await;
    assert_eq!(got.len(), expected_rows.len());
    for (r, (got, expected)) in got.iter().zip(&expected_rows).enumerate() {
        for (c, (g, e)) in got.iter().zip(expected).enumerate() {
            let name = stream.columns().name(c).unwrap();
            assert_eq!(g, e, "row {r}, column {name}");
        }
    }
}

#[tokio::test]
async fn multidimensional_and_empty_arrays() {
    let source = postgres_source(PostgresOptions::new());
    let sql = "SELECT '{{1,2},{3,NULL}}'::int4[] AS m, '{}'::text[] AS e, \
               '[0:1]={7,8}'::int8[] AS bounds, '{{{1},{2}},{{3},{4}}}'::int2[] AS cube, \
               ARRAY['{\"a\": 1}'::jsonb, 'null'] AS ja, '{{a,b}}'::text[] AS one_row";
    let mut stream = source.query(sql).await.unwrap();
    let rows = read_ok(&mut stream).await;
    let i = Value::Int;
    let arr = Value::Array;
    assert_eq!(
        rows,
        vec![vec![
            arr(vec![arr(vec![i(1), i(2)]), arr(vec![i(3), Value::Null])]),
            arr(vec![]),
            arr(vec![i(7), i(8)]),
            arr(vec![
                arr(vec![arr(vec![i(1)]), arr(vec![i(2)])]),
                arr(vec![arr(vec![i(3)]), arr(vec![i(4)])])
            ]),
            arr(vec![json("{\"a\": 1}"), json("null")]),
            arr(vec![arr(vec![text("a"), text("b")])]),
        ]]
    );
}

#[tokio::test]
async fn more_types_read_as_the_server_prints_them() {
    let admin = admin().await;
    fresh_schema(&admin, "src_more").await;
    admin
        .batch_execute(
            "CREATE DOMAIN src_more.positive AS int4 CHECK (VALUE > 0);
             CREATE DOMAIN src_more.email AS text;",
        )
        .await
        .unwrap();
    let source = postgres_source(PostgresOptions::new());
    // Each expression next to the server's own text for it (its output function, as
    // `format` uses it: `inet::text` differs, adding `/32`).
    let expressions = [
        "'10:00:00.5+02'::timetz",
        "'23:59:59-03:30'::timetz",
        "'00:00:00+05:45:30'::timetz",
        "'24:00:00-00'::timetz",
        "'0'::interval",
        "'1 year 2 mons 3 days'::interval",
        "'-1 year -2 mons +3 days -04:05:06.789'::interval",
        "'1 day -00:00:00.000001'::interval",
        "'178000000 years'::interval",
        "'-2147483648 days -2562047788:00:54.775807'::interval",
        "'192.168.0.1'::inet",
        "'192.168.0.1/24'::inet",
        "'10.0.0.0/8'::cidr",
        "'::1'::inet",
        "'::ffff:1.2.3.4'::inet",
        "'::1.2.3.4'::inet",
        "'2001:db8::/32'::cidr",
        "'2001:db8:0:0:1:0:0:1'::inet",
        "'fe80::1:2:3:4/64'::inet",
        "'08:00:2B:01:02:03'::macaddr",
        "'08:00:2b:01:02:03:04:05'::macaddr8",
        "'x'::\"char\"",
        "'pg_class'::name",
        "'<a>b</a>'::xml",
        "'ada@example.com'::src_more.email",
    ];
    let select = expressions
        .iter()
        .enumerate()
        .map(|(i, e)| format!("{e} AS v{i}, format('%s', {e}) AS t{i}"))
        .collect::<Vec<_>>()
        .join(", ");
    let mut stream = source.query(&format!("SELECT {select}")).await.unwrap();
    let rows = read_ok(&mut stream).await;
    assert_eq!(rows.len(), 1);
    for (pair, expression) in rows[0].chunks(2).zip(expressions) {
        assert_eq!(pair[0], pair[1], "{expression}");
        assert!(matches!(pair[1], Value::Text(_)), "{expression}");
    }

    // Intervals of every sign combination, against the server's text.
    let mut stream = source
        .query(
            "SELECT v, v::text FROM (SELECT make_interval(years => y, months => m, days => d, \
             secs => s) AS v FROM unnest(ARRAY[0, 1, -1, 5]) y, unnest(ARRAY[0, 1, -13]) m, \
             unnest(ARRAY[0, 1, -2, 400]) d, unnest(ARRAY[0, 0.5, -1.000001, 3600, -90061.25, 1e9]) s) x",
        )
        .await
        .unwrap();
    let rows = read_ok(&mut stream).await;
    assert_eq!(rows.len(), 4 * 3 * 4 * 6);
    for row in &rows {
        assert_eq!(row[0], row[1]);
    }

    // Domains read as their base type.
    let mut stream = source.query("SELECT 5::src_more.positive AS p, ARRAY[1, 2]::oid[] AS o").await.unwrap();
    assert_eq!(
        read_ok(&mut stream).await,
        vec![vec![Value::Int(5), Value::Array(vec![Value::Int(1), Value::Int(2)])]]
    );
}

#[tokio::test]
async fn dates_and_timestamps_outside_0000_to_9999_are_row_errors_and_reading_goes_on() {
    let source = postgres_source(PostgresOptions::new());
    let sql = "SELECT id, v FROM (VALUES (1, '10000-01-01'::timestamp), (2, '2000-01-01'), \
               (3, '0044-03-15 BC'), (4, '294276-12-31 23:59:59'), (5, NULL)) AS x(id, v) ORDER BY id";
    let mut stream = source.query(sql).await.unwrap();
    let rows = read_all(&mut stream).await;
    assert_eq!(rows.len(), 5, "every row is read, errors included");
    match &rows[0] {
        Err(SourceError::Value { source_name, row, column, column_index, type_name, reason }) => {
            assert_eq!(
                (source_name.as_str(), *row, column.as_str(), *column_index, type_name.as_str()),
                ("test-pg", 1, "v", 1, "timestamp")
            );
            assert!(reason.contains("outside the years 0000 to 9999"), "{reason}");
        }
        other => panic!("expected a value error, got {other:?}"),
    }
    let error = rows[0].as_ref().unwrap_err();
    assert!(error.is_row_error());
    assert_eq!(
        error.to_string(),
        "source `test-pg`: row 1, column `v` (timestamp): the timestamp is outside the years 0000 to 9999"
    );
    assert_eq!(
        rows[1].as_ref().unwrap(),
        &vec![Value::Int(2), Value::TimestampWithoutZone(ts("2000-01-01T00:00:00Z"))]
    );
    assert!(matches!(rows[2], Err(SourceError::Value { row: 3, .. })));
    assert!(matches!(rows[3], Err(SourceError::Value { row: 4, .. })));
    assert_eq!(rows[4].as_ref().unwrap(), &vec![Value::Int(5), Value::Null]);
    assert_eq!(stream.rows_read(), 5);

    let mut stream =
        source.query("SELECT '10000-01-01'::date AS d, '4713-01-01 BC'::date AS e").await.unwrap();
    let rows = read_all(&mut stream).await;
    assert!(matches!(&rows[0], Err(SourceError::Value { column, .. }) if column == "d"));
}

#[tokio::test]
async fn unsupported_types_are_reported_before_any_row_with_a_cast() {
    let admin = admin().await;
    fresh_schema(&admin, "src_unsupported").await;
    admin.batch_execute("CREATE TYPE src_unsupported.pair AS (a int, b text)").await.unwrap();
    let source = postgres_source(PostgresOptions::new());
    let cases = [
        ("SELECT 1 AS ok, point(1, 2) AS p", "p", "point", "cast it in the query, for example `p::text`"),
        (
            "SELECT ARRAY[point(1, 2)] AS \"Points\"",
            "Points",
            "_point",
            "cast it in the query, for example `\"Points\"::text[]`",
        ),
        ("SELECT int4range(1, 5) AS r", "r", "int4range", "cast it in the query, for example `r::text`"),
        (
            "SELECT ROW(1, 'x')::src_unsupported.pair AS pair",
            "pair",
            "pair",
            "convert it in the query, for example `to_jsonb(pair)`",
        ),
        ("SELECT 12.5::money AS m", "m", "money", "cast it in the query, for example `m::text`"),
    ];
    for (sql, column, type_name, hint) in cases {
        match source.query(sql).await {
            Err(error @ SourceError::UnsupportedType { .. }) => {
                let SourceError::UnsupportedType { column: c, type_name: t, hint: h, source_name, .. } =
                    &error
                else {
                    unreachable!()
                };
                assert_eq!(
                    (c.as_str(), t.as_str(), h.as_str(), source_name.as_str()),
                    (column, type_name, hint, "test-pg")
                );
                assert!(error.to_string().contains("which cdp-source cannot read"), "{error}");
            }
            other => panic!("{sql}: expected UnsupportedType, got {other:?}"),
        }
    }
    // The hint's cast works.
    let mut stream = source.query("SELECT point(1, 2)::text AS p").await.unwrap();
    assert_eq!(read_ok(&mut stream).await, vec![vec![text("(1,2)")]]);
}

/// A small deterministic generator, so failures can be reproduced.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// A random decimal literal: any sign, up to 60 integer digits, up to 40 fraction
/// digits, leading and trailing zeros, sometimes an exponent.
fn random_decimal(rng: &mut XorShift) -> String {
    let mut s = String::new();
    if rng.below(2) == 0 {
        s.push('-');
    }
    let digits = |rng: &mut XorShift, n: u64| -> String {
        (0..n).map(|_| char::from(b'0' + rng.below(10) as u8)).collect()
    };
    let int_len = [0, 1, 1, 2, 4, 5, 8, 9, 17, 30, 60][rng.below(11) as usize];
    let frac_len = [0, 0, 1, 2, 3, 4, 5, 8, 12, 20, 40][rng.below(11) as usize];
    let int_part = digits(rng, int_len);
    s.push_str(if int_part.is_empty() { "0" } else { &int_part });
    if frac_len > 0 {
        s.push('.');
        s.push_str(&digits(rng, frac_len));
    }
    if rng.below(5) == 0 {
        s.push_str(&format!("e{}", rng.below(80) as i64 - 40));
    }
    s
}

#[tokio::test]
async fn the_numeric_decoder_agrees_with_the_server_text() {
    let source = postgres_source(PostgresOptions::new());
    let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
    let literals: Vec<String> = (0..3000).map(|_| random_decimal(&mut rng)).collect();
    let values = literals.iter().map(|l| format!("('{l}')")).collect::<Vec<_>>().join(", ");
    let queries = [
        format!("SELECT v::numeric, v::numeric::text FROM (VALUES {values}) AS x(v)"),
        // Values the server computes: long fractions, powers, rounding to each scale.
        "SELECT 1::numeric / g, (1::numeric / g)::text FROM generate_series(1, 500) g".to_owned(),
        "SELECT power(2::numeric, g), power(2::numeric, g)::text FROM generate_series(-60, 300) g".to_owned(),
        "SELECT round(v, s), round(v, s)::text FROM (SELECT (g * 7919.123456789)::numeric AS v, g % 9 AS s \
         FROM generate_series(-2000, 2000) g) x"
            .to_owned(),
        "SELECT v, v::text FROM unnest(ARRAY['NaN', 'Infinity', '-Infinity', '0', '-0', '0.0000', \
         '1e-300', '-1e300', '9999.9999', '10000.0001', '0.00001', '100000000']::numeric[]) AS v"
            .to_owned(),
        "SELECT factorial(g), factorial(g)::text FROM generate_series(0, 200) g".to_owned(),
    ];
    let mut compared = 0;
    for sql in &queries {
        let mut stream = source.query(sql).await.unwrap();
        while let Some(row) = stream.next().await {
            let row = row.unwrap();
            let (Value::Decimal(got), Value::Text(server)) = (&row[0], &row[1]) else {
                panic!("{sql}: unexpected values {row:?}");
            };
            assert_eq!(got, server, "{sql}");
            compared += 1;
        }
    }
    assert!(compared > 7000, "{compared}");
}

/// Rows read in batches (decoded in place, on whatever task takes the batch) are the
/// rows, row errors and counts read one at a time: row errors keep their row numbers
/// across batches.
#[tokio::test]
async fn batches_decode_the_same_rows_and_row_errors_as_single_rows() {
    let source = postgres_source(PostgresOptions::new());
    let sql = "SELECT i AS id, CASE WHEN i % 7 = 0 THEN '10000-01-01'::timestamp ELSE '2000-01-01' END AS v, \
               'person' || i AS name, (i / 10.0)::numeric AS score, to_jsonb(i) AS j \
               FROM generate_series(1, 1000) AS i ORDER BY i";
    let mut stream = source.query(sql).await.unwrap();
    let one_at_a_time: Vec<Result<Vec<Value<'static>>, String>> =
        read_all(&mut stream).await.into_iter().map(|row| row.map_err(|e| e.to_string())).collect();
    assert_eq!(stream.rows_read(), 1000);

    let mut stream = source.query(sql).await.unwrap();
    let mut batched = Vec::new();
    let mut batches = 0;
    while let Some(batch) = stream.next_batch(64).await {
        assert!(batch.rows() <= 64 && !batch.ends_with_error());
        batches += 1;
        // Decoded on another task, as the runner does.
        let rows = tokio::spawn(async move {
            let mut rows = Vec::new();
            batch.for_each(|row| {
                rows.push(
                    row.map(|values| values.iter().cloned().map(Value::into_owned).collect::<Vec<_>>())
                        .map_err(|e| e.to_string()),
                )
            });
            rows
        })
        .await
        .unwrap();
        batched.extend(rows);
    }
    assert!(batches >= 1000 / 64);
    assert_eq!(stream.rows_read(), 1000);
    assert_eq!(batched, one_at_a_time);
    assert_eq!(batched.iter().filter(|row| row.is_err()).count(), 1000 / 7);
    assert!(batched[6].as_ref().unwrap_err().contains("row 7, column `v`"), "{:?}", batched[6]);
}

/// The decimal of a numeric column against the server's text of the same value (NULL
/// against NULL; arrays element by element).
fn decimal_is_server_text(got: &Value<'_>, server: &Value<'_>) -> bool {
    match (got, server) {
        (Value::Null, Value::Null) => true,
        (Value::Decimal(got), Value::Text(server)) => got == server,
        (Value::Array(got), Value::Array(server)) => {
            got.len() == server.len() && got.iter().zip(server).all(|(g, s)| decimal_is_server_text(g, s))
        }
        _ => false,
    }
}

/// Rows with several numeric columns (NULLs, NaN, long fractions and numerics in
/// arrays among them) read one at a time and in batches: every decimal is the
/// server's own text, whichever way the row is decoded.
#[tokio::test]
async fn several_numeric_columns_read_singly_and_in_batches_are_the_server_text() {
    let source = postgres_source(PostgresOptions::new());
    let sql = "SELECT a, a::text, b, b::text, c, c::text, ARRAY[a, b, c], ARRAY[a, b, c]::text[] \
               FROM (SELECT (g / 7.0)::numeric AS a, \
                            CASE WHEN g % 3 = 0 THEN NULL ELSE power(10::numeric, g % 40 - 20) END AS b, \
                            CASE WHEN g % 5 = 0 THEN 'NaN'::numeric WHEN g % 5 = 1 THEN '-Infinity' \
                                 ELSE (-g * 1.5)::numeric(20, 4) END AS c \
                     FROM generate_series(1, 3000) g) x";
    let check = |row: &[Value<'_>]| {
        for pair in row.chunks(2) {
            assert!(decimal_is_server_text(&pair[0], &pair[1]), "{pair:?}");
        }
    };
    let mut stream = source.query(sql).await.unwrap();
    let single: Vec<Vec<Value<'static>>> =
        read_all(&mut stream).await.into_iter().map(|row| row.unwrap()).collect();
    assert_eq!(single.len(), 3000);
    single.iter().for_each(|row| check(row));

    let mut stream = source.query(sql).await.unwrap();
    let mut batched = Vec::new();
    while let Some(batch) = stream.next_batch(100).await {
        batch.for_each(|row| {
            let row = row.unwrap();
            check(row);
            batched.push(row.iter().cloned().map(Value::into_owned).collect::<Vec<_>>());
        });
    }
    assert_eq!(batched, single);
    assert!(single.iter().any(|row| row[2] == Value::Null), "NULLs among the numerics");
}
