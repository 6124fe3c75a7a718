//! Rendering and checking a sync query: the work done at the start of every run.
//!
//! The query is a realistic 2 KB Snowflake identify sync (the shape of the reference
//! documentation's examples, padded with the columns a real sync selects). Each
//! iteration renders it for a run and checks it; throughput is in calls.
//!
//! ```text
//! cargo bench -p cdp-warehouse --bench query
//! CDP_BENCH_QUERY_CALLS=1000000 cargo bench -p cdp-warehouse --bench query   # one timed loop
//! ```

use std::hint::black_box;
use std::time::Instant;

use cdp_warehouse::query::{CallType, CheckOptions, Dialect, QueryTemplate, SyncVariables};
use criterion::{Criterion, Throughput, criterion_group};

/// About 2 KB: people changed since the last sync, with their company and orders.
const QUERY: &str = r#"-- Identify: people changed since the last sync, with their plan, company and orders.
SELECT
  COALESCE(CAST(p.USER_ID AS VARCHAR), p.EMAIL) AS "userId",
  p.ANONYMOUS_ID AS "anonymousId",
  p.EMAIL AS "email",
  p.FIRST_NAME AS "first_name",
  p.LAST_NAME AS "last_name",
  p.PHONE AS "phone",
  p.CREATED_AT AS "created_at",
  p.LAST_LOGIN_AT AS "last_login_at",
  p.PLAN AS "plan",
  p.SEATS AS "seats",
  p.COUNTRY AS "country",
  p.CITY AS "city",
  p.TIMEZONE AS "timezone",
  p.SIGNUP_SOURCE AS "signup_source",
  p.REFERRER AS "referrer",
  p.EMAIL_VERIFIED AS "email_verified",
  p.NPS_SCORE AS "nps_score",
  DATEDIFF(day, p.CREATED_AT, CURRENT_TIMESTAMP()) AS "account_age_days",
  c.PLAN_TIER AS "company.plan_tier",
  p.MRR_CENTS / 100.0 AS "mrr",
  IFF(p.IS_ACTIVE, 'true', 'false') AS "is_active",
  c.NAME AS "company.name",
  c.DOMAIN AS "company.domain",
  c.INDUSTRY AS "company.industry",
  c.EMPLOYEES AS "company.employees",
  COALESCE(o.ORDERS, 0) AS "orders",
  COALESCE(o.LIFETIME_VALUE, 0) AS "lifetime_value",
  o.LAST_ORDER_AT AS "last_order_at",
  OBJECT_CONSTRUCT(
    'utm_source', p.UTM_SOURCE,
    'utm_medium', p.UTM_MEDIUM,
    'utm_campaign', p.UTM_CAMPAIGN
  ) AS "context.campaign",
  p.LOCALE AS "context.locale",
  p.IP_ADDRESS AS "context.ip",
  p.UPDATED_AT AS "timestamp"
FROM analytics.people p
LEFT JOIN analytics.companies c ON c.ID = p.COMPANY_ID
LEFT JOIN (
  SELECT USER_ID, COUNT(*) AS ORDERS, SUM(TOTAL) AS LIFETIME_VALUE, MAX(CREATED_AT) AS LAST_ORDER_AT
  FROM analytics.orders
  WHERE CREATED_AT >= DATEADD(day, -90, TO_TIMESTAMP({{last_sync_time}}))
    AND STATUS IN ('paid', 'shipped', 'delivered')
  GROUP BY USER_ID
) o ON o.USER_ID = p.USER_ID
WHERE p.UPDATED_AT > TO_TIMESTAMP({{last_sync_time}})
  AND p.UPDATED_AT <= TO_TIMESTAMP({{sync_started_at}})
  AND p.EMAIL IS NOT NULL
  AND p.EMAIL NOT LIKE '%@example.com'
  AND p.DELETED_AT IS NULL
  AND (p.PLAN <> 'internal' OR p.PLAN IS NULL)
  AND NOT EXISTS (SELECT 1 FROM analytics.suppressions s WHERE s.EMAIL = p.EMAIL)
ORDER BY p.UPDATED_AT
"#;

const RUN: SyncVariables = SyncVariables::new(1_700_000_000, 1_700_000_600);

fn options() -> CheckOptions {
    CheckOptions::new(Dialect::Snowflake).call_type(CallType::Identify)
}

/// Compiles the template and makes sure it passes, so the bench measures the good path.
fn template() -> QueryTemplate {
    let template = QueryTemplate::new(QUERY).expect("the bench query compiles");
    let report = template.check(options()).expect("the bench query passes the checks");
    assert!(report.warnings().is_empty(), "the bench query has no warnings: {:?}", report.warnings());
    template
}

fn bench(c: &mut Criterion) {
    let template = template();
    let options = options();
    let rendered = template.render(&RUN).unwrap();
    let mut group = c.benchmark_group(format!("query/{}_bytes", QUERY.len()));
    group.throughput(Throughput::Elements(1));
    group.bench_function("render_and_check", |b| {
        b.iter(|| template.render(black_box(&RUN)).unwrap().check(black_box(options)).unwrap())
    });
    group.bench_function("render", |b| b.iter(|| template.render(black_box(&RUN)).unwrap()));
    group.bench_function("check", |b| b.iter(|| black_box(&rendered).check(black_box(options)).unwrap()));
    group.bench_function("compile_render_check", |b| {
        b.iter(|| QueryTemplate::new(black_box(QUERY)).unwrap().render(&RUN).unwrap().check(options).unwrap())
    });
    group.finish();
}

/// `CDP_BENCH_QUERY_CALLS=n`: render and check `n` times in one loop and print the time
/// per call, without criterion.
fn timed_loop(calls: u64) {
    let template = template();
    let options = options();
    let start = Instant::now();
    for _ in 0..calls {
        black_box(template.render(black_box(&RUN)).unwrap().check(black_box(options)).unwrap());
    }
    let elapsed = start.elapsed();
    println!(
        "render+check of a {} byte query, {calls} times: {:.2?} in all, {:.2} µs per call",
        QUERY.len(),
        elapsed,
        elapsed.as_secs_f64() * 1e6 / calls as f64
    );
}

criterion_group!(benches, bench);

fn main() {
    if let Some(calls) = std::env::var("CDP_BENCH_QUERY_CALLS").ok().and_then(|n| n.parse().ok()) {
        return timed_loop(calls);
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
