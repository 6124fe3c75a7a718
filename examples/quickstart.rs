//! The main job on embedded defaults: a realistic stream of calls, exported in all
//! three formats into `./bucket` through the bucket writer.
//!
//! ```text
//! cargo run --release --example quickstart
//! ```
//!
//! The sample (generated here, deterministically) is 25 minutes of traffic. A
//! simulated clock walks through it, so the writer publishes one sync per
//! 10-minute window: positions 1, 2 and 3 of `quickstart.<format>`, one file per
//! call type each. Running it again adds the next positions; nothing is ever
//! overwritten.
//!
//! Then the reverse-ETL direction: a sync reads an embedded SQLite demo database
//! (`./bucket-state/demo.sqlite`, a `people` table built on the first run) and
//! turns each row updated since its last run into an `identify` call, delivered to
//! the same bucket (`quickstart.people.<position>.identify.json`). Its state and
//! run history go to `./bucket-state`: the first run sends all 500 people, and each
//! later run the 25 it changes first.

use std::sync::Arc;

use cdp_warehouse::bucket::{Bucket, BucketWriter, Clock, Id, ManualClock, WriterConfig};
use cdp_warehouse::calls::{Call, JsonObject, Timestamp};
use cdp_warehouse::encode::FileFormat;
use cdp_warehouse::sync::{Config, Runner};

/// How many calls the sample holds.
const CALLS: u64 = 10_000;

/// The stretch of time the sample covers: 25 minutes.
const SPAN_MICROS: i64 = 25 * 60 * 1_000_000;

/// A small deterministic generator (SplitMix64), so the sample is the same each run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }

    fn hex(&mut self, len: usize) -> String {
        (0..len).map(|_| char::from(b"0123456789abcdef"[self.below(16) as usize])).collect()
    }
}

fn json(value: serde_json::Value) -> JsonObject {
    JsonObject::try_from(value).expect("the sample builds objects")
}

/// One realistic call: 60% track, 20% page, 10% identify, 5% screen, 4% group, 1% alias.
fn sample_call(rng: &mut Rng, i: u64, start: Timestamp) -> Call {
    let user = format!("user-{}", rng.below(2_000));
    let roll = rng.below(100);
    let call = match roll {
        0..60 => {
            let event = rng.pick(&[
                "Order Completed",
                "Product Viewed",
                "Cart Updated",
                "Signed Up",
                "Checkout Step 2 Viewed",
            ]);
            let products: Vec<_> = (0..1 + rng.below(3))
                .map(|_| serde_json::json!({"sku": rng.hex(6), "price": rng.below(5_000) as f64 / 100.0, "quantity": 1 + rng.below(3)}))
                .collect();
            Call::track(&user, event).with_payload(json(serde_json::json!({
                "order_id": rng.hex(8), "total": rng.below(30_000) as f64 / 100.0, "currency": "EUR", "products": products,
            })))
        }
        60..80 => Call::page(&user, "Cart").with_payload(json(serde_json::json!({
            "path": "/shop/cart", "url": "https://example.com/shop/cart", "title": "Cart, \"your\" items",
        }))),
        80..90 => Call::identify(&user).with_payload(json(serde_json::json!({
            "email": format!("{user}@example.com"), "plan": rng.pick(&["free", "pro"]), "name": "Zoë Müller",
            "address": {"city": "Berlin", "country": "DE"},
        }))),
        90..95 => Call::screen(&user, "Home").with_payload(json(serde_json::json!({"tab": "feed"}))),
        95..99 => {
            Call::group(&user, format!("acct-{}", rng.below(100))).with_payload(json(serde_json::json!({
                "name": "Acme, Inc.", "employees": 1 + rng.below(5_000), "objectTypeId": 1 + rng.below(2),
            })))
        }
        _ => Call::alias(&user, rng.hex(16)),
    };
    let sent = start.checked_add_micros(i as i64 * SPAN_MICROS / CALLS as i64).expect("within range");
    let received = sent.checked_add_micros(40_000 + rng.below(60_000) as i64).expect("within range");
    let mut call = call.with_message_id(rng.hex(24)).with_anonymous_id(rng.hex(16)).with_context(json(
        serde_json::json!({
            "ip": format!("10.0.{}.{}", rng.below(255), rng.below(255)),
            "library": {"name": "analytics.js", "version": "2.11.1"},
            "locale": "de-DE",
        }),
    ));
    call.sent_at = Some(sent);
    call.timestamp = Some(sent.checked_add_micros(-1_500).expect("within range"));
    call.stamp_received(received);
    call
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let start: Timestamp = "2026-11-22T10:00:00Z".parse()?;
    let mut rng = Rng(7);
    let calls: Vec<Call> = (0..CALLS).map(|i| sample_call(&mut rng, i, start)).collect();
    let spool = tempfile::tempdir()?;
    println!("exporting {CALLS} sample calls (25 minutes of traffic) into bucket/");
    for format in FileFormat::ALL {
        let bucket = Bucket::from_url("bucket")?;
        let config = WriterConfig::new(Id::new("quickstart")?, Id::new(format.extension())?, format)
            .with_spool_dir(spool.path().join(format.extension()));
        let clock = Arc::new(ManualClock::new(start));
        let (mut writer, _) = BucketWriter::open(bucket, config, clock.clone() as Arc<dyn Clock>).await?;
        let mut reports = Vec::new();
        // Calls arrive a second's worth at a time, at their receive times.
        for second in
            calls.chunk_by(|a, b| a.received_at.map(|t| t.as_secs()) == b.received_at.map(|t| t.as_secs()))
        {
            clock.set(second[0].received_at.expect("sample calls are stamped"));
            reports.extend(writer.append(second.to_vec()).await?.published);
        }
        reports.extend(writer.shutdown().await?);
        for report in reports {
            println!("  position {} covers {}:", report.position, report.window);
            for file in &report.files {
                println!("    {} ({} rows, {} bytes)", file.object, file.rows, file.bytes);
            }
        }
    }
    reverse_etl().await
}

/// Reverse ETL: rows of an embedded SQLite database become identify calls.
async fn reverse_etl() -> Result<(), Box<dyn std::error::Error>> {
    // The demo database lives beside the state: created with 500 people the first
    // time; each run after that, 25 of them change (a new plan, a new
    // `updated_at`), and the sync sends just those.
    let state = std::env::current_dir()?.join("bucket-state");
    std::fs::create_dir_all(&state)?;
    let path = state.join("demo.sqlite");
    let fresh = !path.exists();
    let db = rusqlite::Connection::open(&path)?;
    let now = Timestamp::now().to_string();
    if fresh {
        db.execute_batch(
            "CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT, plan TEXT, city TEXT, seats INTEGER,
                                  updated_at TEXT);",
        )?;
        for i in 1..=500i64 {
            let plan = if i % 3 == 0 { "pro" } else { "free" };
            let city = ["Berlin", "Lisbon", "Osaka", "Lagos"][(i % 4) as usize];
            db.execute(
                "INSERT INTO people VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                (i, format!("person{i}@example.com"), plan, city, i % 7, &now),
            )?;
        }
    } else {
        let offset: i64 =
            db.query_row("SELECT COUNT(*) FROM people WHERE plan = 'enterprise'", [], |r| r.get(0))?;
        db.execute(
            "UPDATE people SET plan = 'enterprise', updated_at = ?1 WHERE id > ?2 AND id <= ?2 + 25",
            (&now, offset),
        )?;
    }
    drop(db);
    let config = Config::parse(
        &format!(
            r#"
            state_dir = "{state}"
            [sources.demo]
            kind = "sqlite"
            path = "{db}"
            [destinations.bucket]
            kind = "bucket"
            bucket = "{bucket}"
            format = "json"
            integration = "quickstart"
            action = "people"
            [[syncs]]
            name = "people"
            description = "People updated since the last run"
            type = "identify"
            source = "demo"
            destination = "bucket"
            query = """
              SELECT id AS userId, email, plan, city AS "address.city", seats, updated_at
              FROM people
              WHERE unixepoch(updated_at) >= {{{{last_sync_time}}}}
            """
            every = "15m"
            "#,
            state = state.display(),
            db = path.display(),
            bucket = std::env::current_dir()?.join("bucket").display(),
        ),
        &state,
        &|_| None,
    )?;
    let runner = Runner::new(config, Arc::new(cdp_warehouse::bucket::SystemClock)).await?;
    let run = runner.run("people").await?.record;
    println!(
        "reverse ETL from an embedded SQLite database: run {} {}: {} rows read, {} identify calls delivered to bucket/, {} row errors",
        run.run, run.outcome, run.rows_read, run.calls_delivered, run.row_errors
    );
    runner.shutdown().await?;
    Ok(())
}
