//! End to end over real HTTP on loopback: a collector, a real HTTP client, and the
//! bucket read back after each test. The files must hold exactly the calls that got
//! a 200: ids compared, nothing missing, nothing doubled.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::{KEY, bucket_rows, client, start, start_with, track};
use serde_json::{Value, json};

fn ids(list: &[&str]) -> BTreeMap<String, usize> {
    list.iter().map(|id| ((*id).to_owned(), 1)).collect()
}

async fn error_body(response: reqwest::Response) -> Value {
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_calls_and_batches_land_in_the_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    for (path, body) in [
        ("/v1/track", track("t1")),
        ("/v1/identify", json!({"messageId": "i1", "userId": "u1", "traits": {"plan": "pro"}})),
        ("/v1/page", json!({"messageId": "p1", "anonymousId": "a1", "name": "Home"})),
        ("/v1/screen", json!({"messageId": "s1", "userId": "u1", "name": "Feed"})),
        ("/v1/group", json!({"messageId": "g1", "userId": "u1", "groupId": "acme"})),
        ("/v1/alias", json!({"messageId": "a1", "userId": "u1", "previousId": "anon"})),
        // The path gives the type, whatever the body says.
        ("/v1/track", json!({"type": "page", "messageId": "t2", "userId": "u2", "event": "E"})),
    ] {
        let response = http.post(c.url(path)).basic_auth(KEY, Some("")).json(&body).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.text().await.unwrap(), "{}");
    }
    let batch = json!({"batch": [track("b1"), json!({"type": "identify", "messageId": "b2", "userId": "u3"}), track("b3")]});
    let response = http
        .post(c.url("/v1/batch"))
        .basic_auth("second-key", None::<&str>)
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let health = http.get(c.url("/health")).send().await.unwrap();
    assert_eq!(
        (health.status().as_u16(), health.text().await.unwrap()),
        (200, r#"{"status":"ok"}"#.to_owned())
    );

    let (shutdown, got) = c.stop().await;
    assert_eq!(got, ids(&["t1", "i1", "p1", "s1", "g1", "a1", "t2", "b1", "b2", "b3"]));
    assert_eq!(shutdown.published.len(), 1, "shutdown published the open window");
    // `t2` went to the track file.
    let rows = bucket_rows(&dir.path().join("bucket"));
    let t2 = rows.iter().find(|r| r["id"] == "t2").unwrap();
    assert_eq!(t2["event_text"], "E");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_a_valid_write_key_get_401() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let attempts = [
        http.post(c.url("/v1/track")).json(&track("x1")),
        http.post(c.url("/v1/track")).basic_auth("wrong-key", Some("")).json(&track("x2")),
        http.post(c.url("/v1/track")).basic_auth("test-write-ke", Some("")).json(&track("x3")),
        http.post(c.url("/v1/batch")).bearer_auth(KEY).json(&json!({"batch": [track("x4")]})),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Basic");
        assert_eq!(error_body(response).await["error"]["code"], "unauthorized");
    }
    let (_, got) = c.stop().await;
    assert!(got.is_empty(), "{got:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversize_calls_and_bodies_get_413() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let mut big = track("big");
    big["properties"]["padding"] = Value::String("x".repeat(40 * 1024));
    let response = http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&big).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let body = error_body(response).await;
    assert_eq!(body["error"]["code"], "too_large");
    // In a batch, the index names it; the whole batch is refused.
    let batch = json!({"batch": [track("ok-but-refused"), big]});
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 413);
    assert_eq!(error_body(response).await["error"]["index"], 1);
    // A body over 500 KB, even of small valid calls.
    let many: Vec<Value> = (0..5000).map(|i| track(&format!("m{i}"))).collect();
    let body = json!({"batch": many}).to_string();
    assert!(body.len() > 500_000);
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 413);
    let response =
        http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&track("small")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["small"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_and_invalid_calls_get_400_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let post = |path: &str, body: String| http.post(c.url(path)).basic_auth(KEY, Some("")).body(body).send();

    let response = post("/v1/batch", "{\"batch\": [\n  {\"type\": \"track\",".into()).await.unwrap();
    assert_eq!(response.status(), 400);
    let message = error_body(response).await["error"]["message"].as_str().unwrap().to_owned();
    assert!(message.contains("line 2"), "{message}");

    let response = post("/v1/track", "[1, 2]".into()).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_body(response).await["error"]["message"].as_str().unwrap().contains("object"));

    let mut no_event = track("no-event");
    no_event.as_object_mut().unwrap().remove("event");
    let batch = json!({"batch": [track("refused-1"), no_event, track("refused-2")]}).to_string();
    let response = post("/v1/batch", batch).await.unwrap();
    assert_eq!(response.status(), 400);
    let body = error_body(response).await;
    assert_eq!(body["error"]["index"], 1);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("event") && message.contains("call 1"), "{message}");

    let response = post(
        "/v1/batch",
        r#"{"batch":[{"type":"track","userId":"u","event":"E","timestamp":"yesterday"}]}"#.into(),
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_body(response).await["error"]["message"].as_str().unwrap().contains("timestamp"));

    let response = http.get(c.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    let response = http.get(c.url("/v1/track")).basic_auth(KEY, Some("")).send().await.unwrap();
    assert_eq!(response.status(), 405);

    let (_, got) = c.stop().await;
    assert!(got.is_empty(), "{got:?}");
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gzip_bodies_are_accepted_and_limited_after_decompression() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let batch = json!({"batch": [track("z1"), track("z2")]}).to_string();
    let response = http
        .post(c.url("/v1/batch"))
        .basic_auth(KEY, Some(""))
        .header("content-encoding", "gzip")
        .body(gzip(batch.as_bytes()))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    // 600 KB of calls gzip to far less than 500 KB, and are refused once inflated.
    let many: Vec<Value> = (0..6000).map(|i| track(&format!("g{i}"))).collect();
    let inflated = json!({"batch": many}).to_string();
    let compressed = gzip(inflated.as_bytes());
    assert!(inflated.len() > 500_000 && compressed.len() < 100_000);
    let response = http
        .post(c.url("/v1/batch"))
        .basic_auth(KEY, Some(""))
        .header("content-encoding", "gzip")
        .body(compressed)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);
    // Not gzip at all.
    let response = http
        .post(c.url("/v1/track"))
        .basic_auth(KEY, Some(""))
        .header("content-encoding", "gzip")
        .body(track("plain").to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["z1", "z2"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batch_context_integrations_and_sent_at_are_merged_into_items() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let mut own = track("own");
    own["context"] = json!({"ip": "5.6.7.8", "locale": "de-DE"});
    own["integrations"] = json!({"Salesforce": false});
    own["sentAt"] = json!("2026-11-22T09:00:00.000Z");
    let batch = json!({
        "batch": [track("plain"), own],
        "context": {"ip": "1.2.3.4", "library": {"name": "analytics-go", "version": "3.0"}},
        "integrations": {"All": true, "Salesforce": true},
        "sentAt": "2026-11-22T10:00:00.000Z",
    });
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 200);
    c.stop().await;
    let rows = bucket_rows(&dir.path().join("bucket"));
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap().clone();
    let plain = row("plain");
    assert_eq!(
        plain["context"],
        json!({"ip": "1.2.3.4", "library": {"name": "analytics-go", "version": "3.0"}})
    );
    assert_eq!(plain["sent_at"], "2026-11-22T10:00:00.000Z");
    let own = row("own");
    assert_eq!(
        own["context"],
        json!({"ip": "5.6.7.8", "locale": "de-DE", "library": {"name": "analytics-go", "version": "3.0"}})
    );
    assert_eq!(own["sent_at"], "2026-11-22T09:00:00.000Z");
    // Stamped on receipt: receivedAt is the collector's clock, and the timestamp is
    // corrected by how long the call waited on the client.
    assert!(plain["received_at"].as_str().unwrap() > "2026-11-23");
    assert_eq!(rows.len(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn integrations_are_merged_key_by_key_in_the_call() {
    let calls = cdp_collector::decode(
        cdp_collector::Endpoint::Batch,
        br#"{"batch":[{"type":"track","userId":"u","event":"E","integrations":{"Salesforce":false}}],"integrations":{"All":true,"Salesforce":true}}"#,
        "2026-11-22T10:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let integrations: Value = serde_json::from_str(calls[0].integrations.as_ref().unwrap().as_str()).unwrap();
    assert_eq!(integrations, json!({"All": true, "Salesforce": false}));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_spool_cannot_take_calls_the_answer_is_503_and_nothing_is_kept() {
    let dir = tempfile::tempdir().unwrap();
    let c = start_with(dir.path(), |config| config).await;
    let http = client();
    // The spool directory disappears: the window's spool file cannot be created.
    std::fs::rename(dir.path().join("spool"), dir.path().join("spool-gone")).unwrap();
    let response =
        http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&track("lost")).send().await.unwrap();
    assert_eq!(response.status(), 503);
    assert_eq!(error_body(response).await["error"]["code"], "unavailable");
    std::fs::rename(dir.path().join("spool-gone"), dir.path().join("spool")).unwrap();
    let response =
        http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&track("kept")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["kept"]));
}
