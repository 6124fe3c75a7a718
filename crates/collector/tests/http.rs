//! End to end over real HTTP on loopback: a collector, a real HTTP client, and the
//! bucket read back after each test. The files must hold exactly the calls that got
//! a 200: ids compared, nothing missing, nothing doubled.

mod common;

use std::collections::BTreeMap;
use std::io::Write;

use common::{KEY, bucket_rows, client, rejected_lines, start, start_with, track};
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
        assert_eq!(response.text().await.unwrap(), r#"{"success":true}"#);
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
        http.post(c.url("/v1/batch")).bearer_auth("wrong-key").json(&json!({"batch": [track("x4")]})),
        http.post(c.url("/v1/batch")).header("authorization", "Token test-write-key").json(&track("x5")),
    ];
    for attempt in attempts {
        let response = attempt.send().await.unwrap();
        assert_eq!(response.status(), 401);
        assert_eq!(response.headers()["www-authenticate"], "Basic");
        let body = error_body(response).await;
        assert_eq!(body["code"], "unauthorized");
        assert!(body["message"].as_str().unwrap().contains("write key"), "{body}");
    }
    // Bearer with a configured key is accepted (customerio-cdp-analytics sends it).
    let response = http
        .post(c.url("/v1/batch"))
        .bearer_auth("second-key")
        .json(&json!({"batch": [track("bearer")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["bearer"]));
}

/// A track call whose compact JSON is exactly `bytes` long.
fn track_of_size(id: &str, bytes: usize) -> Value {
    let mut call = track(id);
    call["properties"]["padding"] = Value::String(String::new());
    let base = call.to_string().len();
    call["properties"]["padding"] = Value::String("x".repeat(bytes - base));
    assert_eq!(call.to_string().len(), bytes);
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_are_measured_as_sent_and_oversize_ones_are_dropped_alone() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let limit = cdp_calls::MAX_CALL_BYTES;
    // At the limit as sent: kept, though stamping takes it past 32 KiB.
    let at_limit = track_of_size("at-limit", limit);
    let over = track_of_size("over", limit + 1);
    // Pretty-printed, the call is larger on the wire; its compact JSON is what counts.
    let pretty = serde_json::to_string_pretty(&track_of_size("pretty", limit - 10)).unwrap();
    assert!(pretty.len() > limit);
    for (body, status) in [(at_limit.to_string(), 200), (over.to_string(), 200), (pretty, 200)] {
        let response =
            http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).body(body).send().await.unwrap();
        assert_eq!(response.status(), status);
    }
    // In a batch the oversize call is dropped alone; with the batch's context
    // merged in, the call at the limit is still measured as sent.
    let batch = json!({
        "batch": [track("small"), track_of_size("over-in-batch", limit + 1), track_of_size("at-limit-in-batch", limit)],
        "context": {"library": {"name": "analytics-python", "version": "2.3.4"}},
    });
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["success"], true);
    assert_eq!(body["errors"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(body["errors"][0]["index"], 1);
    assert_eq!(body["errors"][0]["code"], "too_large");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&(limit + 1).to_string()), "{message}");

    // A body over 500 KB, even of small valid calls: 400 (SDKs retry a 413).
    let many: Vec<Value> = (0..5000).map(|i| track(&format!("m{i}"))).collect();
    let body = json!({"batch": many}).to_string();
    assert!(body.len() > 500_000);
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).body(body).send().await.unwrap();
    assert_eq!(response.status(), 400);
    let body = error_body(response).await;
    assert_eq!(body["code"], "too_large");
    assert!(body["message"].as_str().unwrap().contains("500000"), "{body}");

    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["at-limit", "pretty", "small", "at-limit-in-batch"]));
    let rows = bucket_rows(&dir.path().join("bucket"));
    let row = rows.iter().find(|r| r["id"] == "at-limit-in-batch").unwrap();
    assert_eq!(row["context"]["library"]["name"], "analytics-python");
    let rejected = rejected_lines(dir.path());
    let dropped: Vec<_> =
        rejected.iter().map(|l| (l["call"]["messageId"].clone(), l["index"].clone())).collect();
    assert_eq!(dropped, [(json!("over"), json!(0)), (json!("over-in-batch"), json!(1))]);
    for line in &rejected {
        assert_eq!(line["code"], "too_large");
        // The call as the client sent it: no receivedAt, no batch context.
        assert!(line["call"].get("receivedAt").is_none() && line["call"].get("context").is_none(), "{line}");
        assert_eq!(line["call"].to_string().len(), limit + 1);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn in_a_permissive_batch_each_invalid_call_is_dropped_alone_and_kept_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let mut no_event = track("no-event");
    no_event.as_object_mut().unwrap().remove("event");
    let long_id = "L".repeat(150);
    let batch = json!({"batch": [
        track("kept-1"),
        no_event,
        track(&long_id),
        {"type": "track", "messageId": "bad-time", "userId": "u", "event": "E", "timestamp": "yesterday"},
        {"type": "visit", "messageId": "bad-type", "userId": "u"},
        "not an object",
        track("kept-2"),
    ]});
    let response = http.post(c.url("/v1/batch")).basic_auth(KEY, Some("")).json(&batch).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let errors: Vec<_> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["index"].as_u64().unwrap(), e["code"].as_str().unwrap().to_owned()))
        .collect();
    let expected = [
        (1, "missing_field"),
        (2, "message_id_too_long"),
        (3, "invalid_timestamp"),
        (4, "unknown_type"),
        (5, "not_an_object"),
    ];
    assert_eq!(errors, expected.map(|(i, c)| (i, c.to_owned())));
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("`event`"), "{body}");
    // A single call that is invalid is dropped the same way.
    let response = http
        .post(c.url("/v1/group"))
        .basic_auth(KEY, Some(""))
        .json(&json!({"messageId": "no-group-id", "userId": "u"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.json::<Value>().await.unwrap()["errors"][0]["code"], "missing_field");

    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["kept-1", "kept-2"]));
    let rejected = rejected_lines(dir.path());
    let lines: Vec<_> = rejected
        .iter()
        .map(|l| (l["route"].as_str().unwrap(), l["index"].as_u64().unwrap(), l["code"].as_str().unwrap()))
        .collect();
    assert_eq!(
        lines,
        [
            ("/v1/batch", 1, "missing_field"),
            ("/v1/batch", 2, "message_id_too_long"),
            ("/v1/batch", 3, "invalid_timestamp"),
            ("/v1/batch", 4, "unknown_type"),
            ("/v1/batch", 5, "not_an_object"),
            ("/v1/group", 0, "missing_field"),
        ]
    );
    assert_eq!(rejected[0]["type"], "track");
    assert_eq!(rejected[0]["call"]["messageId"], "no-event");
    assert!(rejected[0]["reason"].as_str().unwrap().contains("`event`"));
    assert_eq!(rejected[2]["call"]["timestamp"], "yesterday");
    assert_eq!(rejected[3]["type"], Value::Null);
    assert_eq!(rejected[4]["call"], "not an object");
    assert_eq!(rejected[5]["type"], "group");
    // The request's time: the receivedAt its kept calls got.
    let rows = bucket_rows(&dir.path().join("bucket"));
    let kept = rows.iter().find(|r| r["id"] == "kept-1").unwrap();
    let at = |text: &Value| text.as_str().unwrap().parse::<cdp_calls::Timestamp>().unwrap();
    assert_eq!(at(&rejected[0]["receivedAt"]), at(&kept["received_at"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn strict_mode_refuses_the_whole_request_naming_every_bad_call() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let mut no_event = track("no-event");
    no_event.as_object_mut().unwrap().remove("event");
    let batch = json!({"batch": [track("refused-1"), no_event, track("refused-2"), track(&"L".repeat(150))]});
    let response = http
        .post(c.url("/v1/batch"))
        .basic_auth(KEY, Some(""))
        .header("x-strict-mode", "1")
        .json(&batch)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body = error_body(response).await;
    assert_eq!(body["code"], "invalid_calls");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("2 of 4") && message.contains("call 1"), "{message}");
    assert_eq!(
        body["errors"],
        json!([
            {"index": 1, "code": "missing_field", "message": "track call is missing required field `event`"},
            {"index": 3, "code": "message_id_too_long", "message": "`messageId` has 150 characters, over the limit of 100"},
        ])
    );
    // A valid request in strict mode is taken as usual.
    let response = http
        .post(c.url("/v1/batch"))
        .basic_auth(KEY, Some(""))
        .header("x-strict-mode", "1")
        .json(&json!({"batch": [track("strict-ok")]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["strict-ok"]));
    assert!(rejected_lines(dir.path()).is_empty(), "strict mode keeps nothing");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreadable_bodies_get_400_naming_the_problem() {
    let dir = tempfile::tempdir().unwrap();
    let c = start(dir.path()).await;
    let http = client();
    let post = |path: &str, body: String| http.post(c.url(path)).basic_auth(KEY, Some("")).body(body).send();

    let response = post("/v1/batch", "{\"batch\": [\n  {\"type\": \"track\",".into()).await.unwrap();
    assert_eq!(response.status(), 400);
    let body = error_body(response).await;
    assert_eq!(body["code"], "bad_request");
    assert!(body["message"].as_str().unwrap().contains("line 2"), "{body}");

    let response = post("/v1/track", "[1, 2]".into()).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_body(response).await["message"].as_str().unwrap().contains("object"));

    let response = post("/v1/batch", r#"{"calls": []}"#.into()).await.unwrap();
    assert_eq!(response.status(), 400);
    assert!(error_body(response).await["message"].as_str().unwrap().contains("batch"));

    let response = http.get(c.url("/v1/nothing")).send().await.unwrap();
    assert_eq!(response.status(), 404);
    assert_eq!(error_body(response).await["code"], "not_found");
    let response = http.get(c.url("/v1/track")).basic_auth(KEY, Some("")).send().await.unwrap();
    assert_eq!(response.status(), 405);
    assert_eq!(response.headers()["allow"], "POST");
    assert_eq!(error_body(response).await["code"], "method_not_allowed");
    for path in ["/health", "/metrics"] {
        let response = http.post(c.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 405);
        assert_eq!(response.headers()["allow"], "GET, HEAD");
    }

    let (_, got) = c.stop().await;
    assert!(got.is_empty(), "{got:?}");
    assert!(rejected_lines(dir.path()).is_empty());
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
    assert_eq!(response.status(), 400);
    assert_eq!(error_body(response).await["code"], "too_large");
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
    let decoded = cdp_collector::decode(
        cdp_collector::Endpoint::Batch,
        br#"{"batch":[{"type":"track","userId":"u","event":"E","integrations":{"Salesforce":false}}],"integrations":{"All":true,"Salesforce":true}}"#,
        "2026-11-22T10:00:00Z".parse().unwrap(),
    )
    .unwrap();
    let integrations: Value =
        serde_json::from_str(decoded.calls[0].integrations.as_ref().unwrap().as_str()).unwrap();
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
    assert_eq!(error_body(response).await["code"], "unavailable");
    std::fs::rename(dir.path().join("spool-gone"), dir.path().join("spool")).unwrap();
    let response =
        http.post(c.url("/v1/track")).basic_auth(KEY, Some("")).json(&track("kept")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    let (_, got) = c.stop().await;
    assert_eq!(got, ids(&["kept"]));
}
