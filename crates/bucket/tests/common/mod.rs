//! Helpers shared by the bucket tests: calls, reading a bucket back, and the
//! emulators the test command starts (S3 on moto, Azure Blob on Azurite).
#![allow(dead_code, unreachable_pub)]

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cdp_bucket::Bucket;
use cdp_calls::{Call, CallType};
use futures::TryStreamExt;
use object_store::ObjectStoreExt;
use object_store::memory::InMemory;
use object_store::path::Path;

/// A complete call: nothing for the writer to fill in, so its bytes are known.
pub fn call(call_type: CallType, id: &str) -> Call {
    let fields = match call_type {
        CallType::Identify => r#","traits":{"plan":"pro"}"#,
        CallType::Track => r#","event":"Order Completed","properties":{"total":9.5}"#,
        CallType::Page => r#","name":"Home""#,
        CallType::Screen => r#","name":"Feed""#,
        CallType::Group => r#","groupId":"g1","traits":{"objectTypeId":2}"#,
        CallType::Alias => r#","previousId":"anon-1""#,
    };
    let json = format!(
        r#"{{"type":"{call_type}","messageId":"{id}","userId":"u-{id}","timestamp":"2026-11-22T10:00:00.000Z","originalTimestamp":"2026-11-22T10:00:00.000Z","receivedAt":"2026-11-22T10:00:01.000Z"{fields}}}"#
    );
    Call::parse_json(&json).unwrap()
}

/// `n` complete calls of every type, with ids `<tag>-<type>-<i>`.
pub fn calls_of_every_type(tag: &str, n: usize) -> Vec<Call> {
    CallType::ALL.into_iter().flat_map(|t| (0..n).map(move |i| call(t, &format!("{tag}-{t}-{i}")))).collect()
}

/// Every object under the bucket's prefix, by its path relative to the prefix.
pub async fn objects(bucket: &Bucket) -> BTreeMap<String, bytes::Bytes> {
    let store = bucket.store();
    let prefix = bucket.prefix();
    let metas: Vec<_> = store.list(Some(prefix)).try_collect().await.unwrap();
    let mut out = BTreeMap::new();
    for meta in metas {
        let bytes = store.get(&meta.location).await.unwrap().bytes().await.unwrap();
        let relative = meta
            .location
            .prefix_match(prefix)
            .unwrap()
            .map(|p| p.as_ref().to_owned())
            .collect::<Vec<_>>()
            .join("/");
        out.insert(relative, bytes);
    }
    out
}

/// The `id` column of every row of an NDJSON file.
pub fn json_ids(bytes: &[u8]) -> Vec<String> {
    std::str::from_utf8(bytes)
        .unwrap()
        .lines()
        .map(|line| {
            let row: serde_json::Value = serde_json::from_str(line).unwrap();
            row["id"].as_str().unwrap().to_owned()
        })
        .collect()
}

/// The positions of (integration, action) in a listing.
pub fn positions(
    names: impl IntoIterator<Item = impl AsRef<str>>,
    integration: &str,
    action: &str,
) -> Vec<u64> {
    let mut out: Vec<u64> = names
        .into_iter()
        .filter_map(|n| cdp_bucket::ObjectName::parse(n.as_ref()))
        .filter(|n| n.integration.as_str() == integration && n.action.as_str() == action)
        .map(|n| n.position.get())
        .collect();
    out.sort();
    out.dedup();
    out
}

/// Where the tests find a bucket: one of the backends of the conformance suite.
/// Each `bucket()` is a new handle on the same store and prefix.
pub trait Backend {
    fn bucket(&self) -> Bucket;
}

pub struct Local(pub tempfile::TempDir);

impl Backend for Local {
    fn bucket(&self) -> Bucket {
        Bucket::from_url(self.0.path().join("bucket").to_str().unwrap()).unwrap()
    }
}

pub struct Memory(pub Arc<InMemory>);

impl Backend for Memory {
    fn bucket(&self) -> Bucket {
        Bucket::new(self.0.clone(), Path::from("exports/daily"))
    }
}

/// A bucket on a cloud store: its URL and the `object_store` options that reach the
/// emulator the test command started (S3 on moto, Azure Blob on Azurite).
pub struct Cloud {
    pub url: String,
    pub options: Vec<(String, String)>,
}

impl Backend for Cloud {
    fn bucket(&self) -> Bucket {
        Bucket::from_url_with_options(&self.url, self.options.clone()).unwrap()
    }
}

/// A name no other test of this run (or of another run on the same server) uses:
/// lower-case letters, digits and hyphens, valid as an S3 bucket and an Azure container.
fn unique_name() -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!("cdp-test-{}-{}", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

/// The S3-compatible server started by `bash .ci/test` (moto on loopback).
pub fn s3_endpoint() -> String {
    std::env::var("CDP_TEST_S3_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_S3_ENDPOINT is not set: these tests need the S3-compatible server that \
             `bash .ci/test` installs and starts on loopback (moto). Run them with `bash .ci/test`, or \
             start `moto_server -H 127.0.0.1 -p 5055` and set CDP_TEST_S3_ENDPOINT=http://127.0.0.1:5055"
        )
    })
}

/// A new, empty bucket on the S3-compatible server.
pub fn s3_backend() -> Cloud {
    let endpoint = s3_endpoint();
    let name = unique_name();
    create_s3_bucket(&endpoint, &name);
    Cloud {
        url: format!("s3://{name}/exports"),
        options: vec![
            ("aws_endpoint".into(), endpoint),
            ("aws_allow_http".into(), "true".into()),
            ("aws_region".into(), "us-east-1".into()),
            ("aws_access_key_id".into(), "testing".into()),
            ("aws_secret_access_key".into(), "testing".into()),
        ],
    }
}

/// Creates a bucket with a plain HTTP `PUT /<bucket>` (moto needs no signature).
fn create_s3_bucket(endpoint: &str, name: &str) {
    let host = endpoint.trim_start_matches("http://").trim_end_matches('/');
    let response = http_request(endpoint, host, &format!("PUT /{name} HTTP/1.1\r\nHost: {host}\r\n"));
    assert!(response.starts_with("HTTP/1.1 200"), "creating bucket {name}: {response}");
}

/// Azurite's development account, and its key as Microsoft publishes it (the same
/// for every Azurite; not a secret).
pub const AZURITE_ACCOUNT: &str = "devstoreaccount1";
pub const AZURITE_KEY: &str =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

/// The Azure Blob emulator started by `bash .ci/test` (Azurite on loopback): the
/// account's URL, path-style, e.g. `http://127.0.0.1:10000/devstoreaccount1`.
pub fn azure_endpoint() -> String {
    std::env::var("CDP_TEST_AZURE_ENDPOINT").unwrap_or_else(|_| {
        panic!(
            "CDP_TEST_AZURE_ENDPOINT is not set: these tests need the Azure Blob emulator that \
             `bash .ci/test` installs (npm, crates/bucket/tests/azurite) and starts on loopback (Azurite). \
             Run them with `bash .ci/test`, or start `azurite-blob --blobHost 127.0.0.1 --blobPort 10000 \
             --location DIR` and set CDP_TEST_AZURE_ENDPOINT=http://127.0.0.1:10000/{AZURITE_ACCOUNT}"
        )
    })
}

/// A new, empty container on Azurite, as `az://<container>/exports/daily` with the
/// options a user gives for a custom endpoint: the account, its key, the endpoint
/// and plain HTTP. (Not `azure_storage_use_emulator`: that mode takes its URL from the
/// `AZURITE_BLOB_STORAGE_URL` environment variable, not from the options.)
pub fn azure_backend() -> Cloud {
    let endpoint = azure_endpoint();
    let name = unique_name();
    create_azure_container(&endpoint, &name);
    Cloud {
        url: format!("az://{name}/exports/daily"),
        options: vec![
            ("azure_storage_account_name".into(), AZURITE_ACCOUNT.into()),
            ("azure_storage_account_key".into(), AZURITE_KEY.into()),
            ("azure_storage_endpoint".into(), endpoint),
            ("azure_allow_http".into(), "true".into()),
        ],
    }
}

/// Creates a container (`PUT <endpoint>/<name>?restype=container`), which
/// `object_store` cannot do. Azurite wants it signed like any request: SharedKey,
/// an HMAC-SHA256 with the account key over the request's canonical form.
fn create_azure_container(endpoint: &str, name: &str) {
    use base64::Engine as _;
    let rest = endpoint.strip_prefix("http://").unwrap_or_else(|| panic!("{endpoint}: not http://"));
    let (host, base) = rest.split_once('/').map_or((rest, ""), |(h, p)| (h, p.trim_end_matches('/')));
    let path = if base.is_empty() { format!("/{name}") } else { format!("/{base}/{name}") };
    let date = chrono::Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string();
    let version = "2023-11-03";
    // Verb, then eleven standard headers (all empty here), the x-ms- headers in
    // order, and the resource: account, path, query parameters.
    let to_sign = format!(
        "PUT\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:{date}\nx-ms-version:{version}\n/{AZURITE_ACCOUNT}{path}\nrestype:container"
    );
    let engine = base64::engine::general_purpose::STANDARD;
    let key = engine.decode(AZURITE_KEY).unwrap();
    let signature = engine.encode(hmac_sha256(&key, to_sign.as_bytes()));
    let head = format!(
        "PUT {path}?restype=container HTTP/1.1\r\nHost: {host}\r\nx-ms-date: {date}\r\n\
         x-ms-version: {version}\r\nAuthorization: SharedKey {AZURITE_ACCOUNT}:{signature}\r\n"
    );
    let response = http_request(endpoint, host, &head);
    assert!(response.starts_with("HTTP/1.1 201"), "creating container {name}: {response}");
}

/// HMAC-SHA256 (RFC 2104).
fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    use sha2::{Digest, Sha256};
    let mut block = [0u8; 64];
    if key.len() > block.len() {
        block[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        block[..key.len()].copy_from_slice(key);
    }
    let inner = Sha256::new().chain_update(block.map(|b| b ^ 0x36)).chain_update(message).finalize();
    Sha256::new().chain_update(block.map(|b| b ^ 0x5c)).chain_update(inner).finalize().into()
}

/// Sends one bodiless HTTP/1.1 request (`head`: the request line and headers, each
/// ending in CRLF) and returns the whole response.
fn http_request(endpoint: &str, host: &str, head: &str) -> String {
    let mut stream = TcpStream::connect(host)
        .unwrap_or_else(|e| panic!("cannot reach the server at {endpoint} (is it running?): {e}"));
    write!(stream, "{head}Content-Length: 0\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

/// A store whose puts take a while (publishing can be caught half-way), or fail
/// while `fail_puts` is set (an outage).
#[derive(Debug)]
pub struct SlowPuts<S> {
    pub inner: S,
    pub delay: std::time::Duration,
    pub fail_puts: Arc<std::sync::atomic::AtomicBool>,
}

impl<S: std::fmt::Display> std::fmt::Display for SlowPuts<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "SlowPuts({})", self.inner)
    }
}

#[async_trait::async_trait]
impl<S: object_store::ObjectStore> object_store::ObjectStore for SlowPuts<S> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: object_store::PutPayload,
        opts: object_store::PutOptions,
    ) -> object_store::Result<object_store::PutResult> {
        tokio::time::sleep(self.delay).await;
        if self.fail_puts.load(Ordering::SeqCst) {
            return Err(object_store::Error::Generic { store: "test", source: "the store is down".into() });
        }
        self.inner.put_opts(location, payload, opts).await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: object_store::PutMultipartOptions,
    ) -> object_store::Result<Box<dyn object_store::MultipartUpload>> {
        self.inner.put_multipart_opts(location, opts).await
    }

    async fn get_opts(
        &self,
        location: &Path,
        options: object_store::GetOptions,
    ) -> object_store::Result<object_store::GetResult> {
        self.inner.get_opts(location, options).await
    }

    fn delete_stream(
        &self,
        locations: futures::stream::BoxStream<'static, object_store::Result<Path>>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(
        &self,
        prefix: Option<&Path>,
    ) -> futures::stream::BoxStream<'static, object_store::Result<object_store::ObjectMeta>> {
        self.inner.list(prefix)
    }

    async fn list_with_delimiter(
        &self,
        prefix: Option<&Path>,
    ) -> object_store::Result<object_store::ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(
        &self,
        from: &Path,
        to: &Path,
        options: object_store::CopyOptions,
    ) -> object_store::Result<()> {
        self.inner.copy_opts(from, to, options).await
    }
}
