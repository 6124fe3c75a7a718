//! Row to call: mapping a realistic 12-column identify row, the work a reverse-ETL
//! sync does for every row its query returns.
//!
//! The target is at least 1,000,000 rows per second on one core, so that mapping is
//! never a sync's bottleneck. Each mapped row yields a complete call: traits and
//! context built as JSON text, a deterministic ULID `messageId` (XXH3-128 of the row),
//! and the call validated. Rows are built once, up front (that is the source's work).
//!
//! ```text
//! cargo bench -p cdp-warehouse --bench rows
//! ```

use cdp_warehouse::calls::{CallType, Timestamp};
use cdp_warehouse::rows::{Columns, MappingOptions, RowMapper, Value};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

/// How many distinct rows one iteration maps.
const ROWS: usize = 1024;

/// The columns of a typical identify query, as PostgreSQL returns them.
const COLUMNS: [&str; 12] = [
    "userId",
    "timestamp",
    "email",
    "first_name",
    "last_name",
    "plan",
    "age",
    "lifetime_value",
    "is_active",
    "created_at",
    "address.city",
    "context.ip",
];

fn rows() -> Vec<Vec<Value<'static>>> {
    let updated: Timestamp = "2026-11-22T10:00:00Z".parse().expect("a timestamp");
    let created: Timestamp = "2024-03-14T15:09:26Z".parse().expect("a timestamp");
    let plans = ["free", "pro", "team", "enterprise"];
    let cities = ["Paris", "Lisbon", "Osaka", "Toronto", "São Paulo"];
    (0..ROWS)
        .map(|i| {
            let n = i as i64;
            vec![
                Value::from(format!("user-{:06}", 100_000 + i)),
                Value::Timestamp(updated.checked_add_micros(n * 1_000_000).expect("in range")),
                Value::from(format!("person{i}@example.com")),
                Value::from("Ada"),
                Value::from("Lovelace"),
                Value::from(plans[i % plans.len()]),
                Value::from(20 + (i % 50) as i32),
                Value::decimal(format!("{}.{:02}", 100 + i, i % 100)),
                Value::from(i % 3 != 0),
                Value::TimestampWithoutZone(
                    created.checked_add_micros(n * 86_400_000_000).expect("in range"),
                ),
                Value::from(cities[i % cities.len()]),
                Value::from(format!("203.0.113.{}", i % 256)),
            ]
        })
        .collect()
}

fn bench(c: &mut Criterion) {
    let rows = rows();
    let columns = Columns::new(COLUMNS);
    let started: Timestamp = "2026-11-22T10:05:00Z".parse().expect("a timestamp");
    let options = MappingOptions::new("people", CallType::Identify).limit_call_size(true);
    let mut mapper = RowMapper::new(options, &columns, started).expect("the columns map");

    // Every row maps: a bench of row errors would measure the wrong thing.
    for (i, row) in rows.iter().enumerate() {
        mapper.map_values(i as u64 + 1, row).expect("a valid row");
    }

    let mut group = c.benchmark_group("rows");
    group.throughput(Throughput::Elements(ROWS as u64));
    group.bench_function("identify_12_columns", |b| {
        b.iter(|| {
            let mut bytes = 0;
            for (i, row) in rows.iter().enumerate() {
                let call = mapper.map_values(i as u64 + 1, std::hint::black_box(row)).expect("a valid row");
                bytes += call.traits().map_or(0, |t| t.len());
            }
            bytes
        });
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
