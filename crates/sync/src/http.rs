//! The HTTP ingestion API destination: calls go to `POST {base}/batch` in batches
//! of at most 475,000 bytes, with HTTP Basic auth and `X-Strict-Mode: 1`.
//!
//! - **Batches** are sized by bytes: each call is serialised once, straight into
//!   the pending body `{"batch":[call,call,…]}`, and the pending batch is sent as
//!   soon as the next call would take the whole body past
//!   [`HttpConfig::max_batch_bytes`]. Calls go out in the order they were given.
//! - **Calls over 32 KiB** ([`MAX_CALL_BYTES`]) are refused at once, as a
//!   [`Rejection`] without a status; nothing is sent for them.
//! - **Passing failures** (transport errors and timeouts, 408, 409, 429 and 5xx)
//!   are retried with exponential backoff and full jitter (a random wait between
//!   zero and the backoff, which doubles from [`HttpConfig::initial_backoff`] up to
//!   [`HttpConfig::max_backoff`]). A `Retry-After` header, in seconds or as an HTTP
//!   date, is honoured: the retry waits at least that long, up to
//!   [`HttpConfig::max_retry_after`]. After [`HttpConfig::max_attempts`] attempts
//!   the run fails with [`DestinationError::Http`] and the last status.
//! - **A 400** (or 413) answer to a batch splits it in halves, each sent on its
//!   own, recursively, until the calls the API refuses are alone; each of those
//!   becomes a [`Rejection`] with the status and the API's message, and every other
//!   call is delivered once.
//! - **Any other answer** (401, 403, 404, a redirect…) fails the run with
//!   [`DestinationError::Http`] at once: no retry can fix it.
//!
//! The API key never appears in `Debug` output, errors or log events.
//!
//! # Configuring a destination
//!
//! ```
//! use std::time::Duration;
//! use cdp_sync::http::{HttpConfig, HttpDestination, Region};
//!
//! // The EU region, with the defaults: 475,000-byte batches, 8 attempts.
//! let config = HttpConfig::new(Region::Eu, "my-api-key");
//! assert_eq!(config.max_batch_bytes(), 475_000);
//! let destination = HttpDestination::new("customerio", config)?;
//! assert_eq!(destination.batch_url(), "https://cdp-eu.customer.io/v1/batch");
//! assert!(!format!("{destination:?}").contains("my-api-key"));
//!
//! // Any base URL, with quicker retries.
//! let region: Region = "http://127.0.0.1:8080/ingest/v1".parse()?;
//! let config = HttpConfig::new(region, "my-api-key")
//!     .with_max_attempts(3)
//!     .with_initial_backoff(Duration::from_millis(100));
//! let destination = HttpDestination::new("local", config)?;
//! assert_eq!(destination.batch_url(), "http://127.0.0.1:8080/ingest/v1/batch");
//! # Ok::<(), cdp_sync::http::HttpConfigError>(())
//! ```
//!
//! # Delivering calls
//!
//! The runner drives a destination through the [`Destination`] trait: `send` for
//! each call (which may deliver a full batch on the way), then `finish`.
//!
//! ```no_run
//! use cdp_calls::Call;
//! use cdp_sync::http::{HttpConfig, HttpDestination};
//! use cdp_sync::{Delivery, Destination};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let api_key = std::env::var("CIO_API_KEY")?;
//! let mut destination = HttpDestination::new("customerio", HttpConfig::us(api_key))?;
//! let mut refused = Vec::new();
//! for (i, user) in ["u1", "u2", "u3"].into_iter().enumerate() {
//!     let call = Call::identify(user).with_message_id(format!("m-{i}"));
//!     refused.extend(destination.send(Delivery { row_number: i as u64 + 1, call }).await?);
//! }
//! refused.extend(destination.finish().await?);
//! for rejection in refused {
//!     eprintln!("row {}: {}", rejection.row_number, rejection.message);
//! }
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::ops::Range;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use bytes::Bytes;
use cdp_calls::MAX_CALL_BYTES;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue, RETRY_AFTER};

use crate::destination::{Delivery, Destination, DestinationError, Rejection};

/// The base URL of the API in the US region.
pub const US_BASE_URL: &str = "https://cdp.customer.io/v1";

/// The base URL of the API in the EU region.
pub const EU_BASE_URL: &str = "https://cdp-eu.customer.io/v1";

/// The API's limit on a request body, in bytes: the default of
/// [`HttpConfig::max_batch_bytes`].
pub const MAX_BATCH_BYTES: usize = 475_000;

const BATCH_OPEN: &[u8] = b"{\"batch\":[";
const BATCH_CLOSE: &[u8] = b"]}";

/// The smallest acceptable [`HttpConfig::max_batch_bytes`]: a batch must have room
/// for one call of [`MAX_CALL_BYTES`].
pub const MIN_BATCH_BYTES: usize = BATCH_OPEN.len() + MAX_CALL_BYTES + BATCH_CLOSE.len();

/// At most this much of an answer's body is read.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// An answer's body is cut to this many characters in messages.
const MAX_MESSAGE_CHARS: usize = 1024;

/// Which API the calls go to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Region {
    /// The US region: [`US_BASE_URL`].
    Us,
    /// The EU region: [`EU_BASE_URL`].
    Eu,
    /// Any base URL (`http` or `https`); requests go to `{base}/batch`.
    Custom(String),
}

impl Region {
    /// The base URL, to which `/batch` is added.
    pub fn base_url(&self) -> &str {
        match self {
            Region::Us => US_BASE_URL,
            Region::Eu => EU_BASE_URL,
            Region::Custom(url) => url,
        }
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.base_url())
    }
}

/// `us` or `eu` (in any case), or a base URL starting with `http://` or
/// `https://` (checked fully by [`HttpDestination::new`]).
impl FromStr for Region {
    type Err = HttpConfigError;

    fn from_str(s: &str) -> Result<Region, HttpConfigError> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("us") {
            Ok(Region::Us)
        } else if s.eq_ignore_ascii_case("eu") {
            Ok(Region::Eu)
        } else if s.starts_with("http://") || s.starts_with("https://") {
            Ok(Region::Custom(s.to_owned()))
        } else {
            Err(HttpConfigError::InvalidBaseUrl {
                url: s.to_owned(),
                reason: "expected `us`, `eu` or an http(s) URL".to_owned(),
            })
        }
    }
}

/// The API key, kept out of every `Debug` output.
#[derive(Clone)]
struct ApiKey(String);

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"[redacted]\"")
    }
}

/// How to reach the API and how hard to try: the options of an
/// [`HttpDestination`].
///
/// Built with a region and an API key, then adjusted with the `with_*` methods;
/// every option has a default, given on its method. The API key is never shown.
#[derive(Clone)]
#[non_exhaustive]
pub struct HttpConfig {
    region: Region,
    api_key: ApiKey,
    max_batch_bytes: usize,
    max_attempts: u32,
    initial_backoff: Duration,
    max_backoff: Duration,
    max_retry_after: Duration,
    timeout: Duration,
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("region", &self.region)
            .field("api_key", &self.api_key)
            .field("max_batch_bytes", &self.max_batch_bytes)
            .field("max_attempts", &self.max_attempts)
            .field("initial_backoff", &self.initial_backoff)
            .field("max_backoff", &self.max_backoff)
            .field("max_retry_after", &self.max_retry_after)
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl HttpConfig {
    /// Default of [`HttpConfig::max_attempts`].
    pub const DEFAULT_MAX_ATTEMPTS: u32 = 8;
    /// Default of [`HttpConfig::initial_backoff`].
    pub const DEFAULT_INITIAL_BACKOFF: Duration = Duration::from_millis(500);
    /// Default of [`HttpConfig::max_backoff`].
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
    /// Default of [`HttpConfig::max_retry_after`].
    pub const DEFAULT_MAX_RETRY_AFTER: Duration = Duration::from_secs(300);
    /// Default of [`HttpConfig::timeout`].
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

    /// The options for `region` with the API key `api_key` (the user of HTTP
    /// Basic auth; the password is empty), and every other option at its default.
    pub fn new(region: Region, api_key: impl Into<String>) -> HttpConfig {
        HttpConfig {
            region,
            api_key: ApiKey(api_key.into()),
            max_batch_bytes: MAX_BATCH_BYTES,
            max_attempts: HttpConfig::DEFAULT_MAX_ATTEMPTS,
            initial_backoff: HttpConfig::DEFAULT_INITIAL_BACKOFF,
            max_backoff: HttpConfig::DEFAULT_MAX_BACKOFF,
            max_retry_after: HttpConfig::DEFAULT_MAX_RETRY_AFTER,
            timeout: HttpConfig::DEFAULT_TIMEOUT,
        }
    }

    /// The US region ([`US_BASE_URL`]).
    pub fn us(api_key: impl Into<String>) -> HttpConfig {
        HttpConfig::new(Region::Us, api_key)
    }

    /// The EU region ([`EU_BASE_URL`]).
    pub fn eu(api_key: impl Into<String>) -> HttpConfig {
        HttpConfig::new(Region::Eu, api_key)
    }

    /// Any base URL; requests go to `{base_url}/batch`.
    pub fn custom(base_url: impl Into<String>, api_key: impl Into<String>) -> HttpConfig {
        HttpConfig::new(Region::Custom(base_url.into()), api_key)
    }

    /// Sets the region or base URL.
    pub fn with_region(mut self, region: Region) -> HttpConfig {
        self.region = region;
        self
    }

    /// Sets the largest request body, in bytes, `{"batch":[` and `]}` included.
    /// Default [`MAX_BATCH_BYTES`] (475,000); at least [`MIN_BATCH_BYTES`].
    pub fn with_max_batch_bytes(mut self, bytes: usize) -> HttpConfig {
        self.max_batch_bytes = bytes;
        self
    }

    /// Sets how many times a batch is sent before a passing failure fails the run
    /// (the first attempt included). Default 8; at least 1.
    pub fn with_max_attempts(mut self, attempts: u32) -> HttpConfig {
        self.max_attempts = attempts;
        self
    }

    /// Sets the backoff before the first retry; it doubles with each retry, and
    /// the actual wait is a random duration between zero and the backoff.
    /// Default 500 ms.
    pub fn with_initial_backoff(mut self, backoff: Duration) -> HttpConfig {
        self.initial_backoff = backoff;
        self
    }

    /// Sets the largest backoff. Default 30 s.
    pub fn with_max_backoff(mut self, backoff: Duration) -> HttpConfig {
        self.max_backoff = backoff;
        self
    }

    /// Sets the longest wait a `Retry-After` header can ask for; a longer one is
    /// cut to this. Default 300 s.
    pub fn with_max_retry_after(mut self, wait: Duration) -> HttpConfig {
        self.max_retry_after = wait;
        self
    }

    /// Sets how long one request may take, from connecting to the end of the
    /// answer; a request that takes longer is a passing failure, retried. The
    /// connection itself must be made within 10 s (or this timeout, if shorter).
    /// Default 60 s.
    pub fn with_timeout(mut self, timeout: Duration) -> HttpConfig {
        self.timeout = timeout;
        self
    }

    /// The region or base URL.
    pub fn region(&self) -> &Region {
        &self.region
    }

    /// The largest request body, in bytes.
    pub fn max_batch_bytes(&self) -> usize {
        self.max_batch_bytes
    }

    /// How many times a batch is sent before a passing failure fails the run.
    pub fn max_attempts(&self) -> u32 {
        self.max_attempts
    }

    /// The backoff before the first retry.
    pub fn initial_backoff(&self) -> Duration {
        self.initial_backoff
    }

    /// The largest backoff.
    pub fn max_backoff(&self) -> Duration {
        self.max_backoff
    }

    /// The longest wait a `Retry-After` header can ask for.
    pub fn max_retry_after(&self) -> Duration {
        self.max_retry_after
    }

    /// How long one request may take.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}

/// Why an [`HttpDestination`] cannot be made from an [`HttpConfig`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConfigError {
    /// The base URL is not an absolute `http` or `https` URL.
    #[error("invalid base URL {url:?}: {reason}")]
    InvalidBaseUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The API key is empty.
    #[error("the API key is empty")]
    EmptyApiKey,
    /// [`HttpConfig::max_batch_bytes`] leaves no room for a call of
    /// [`MAX_CALL_BYTES`].
    #[error("max_batch_bytes is {max_batch_bytes}, below the minimum of {minimum}")]
    BatchTooSmall {
        /// The value given.
        max_batch_bytes: usize,
        /// [`MIN_BATCH_BYTES`].
        minimum: usize,
    },
    /// [`HttpConfig::max_attempts`] is zero.
    #[error("max_attempts must be at least 1")]
    NoAttempts,
    /// The HTTP client could not be set up.
    #[error("cannot set up the HTTP client: {source}")]
    Client {
        /// The client's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

/// The HTTP ingestion API as a [`Destination`]: see the [module docs](self).
pub struct HttpDestination {
    name: String,
    url: reqwest::Url,
    client: reqwest::Client,
    /// The settings (limits, retries, the key).
    config: HttpConfig,
    /// `Basic base64("{api_key}:")`, marked sensitive.
    authorization: HeaderValue,
    /// The pending body: `{"batch":[` and the pending calls, comma-separated.
    body: Vec<u8>,
    /// The pending calls, in order, with where each sits in `body`.
    pending: Vec<Pending>,
    /// Where a call is serialised before it joins `body`.
    scratch: Vec<u8>,
    rng: SplitMix64,
}

impl fmt::Debug for HttpDestination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpDestination")
            .field("name", &self.name)
            .field("url", &self.url.as_str())
            .field("config", &self.config)
            .field("pending_calls", &self.pending.len())
            .field("pending_bytes", &self.body.len())
            .finish_non_exhaustive()
    }
}

/// A call in the pending batch.
#[derive(Debug)]
struct Pending {
    row_number: u64,
    message_id: Option<String>,
    /// The call's JSON text in the body.
    span: Range<usize>,
}

/// What the API made of a batch, once passing failures are over.
enum Answer {
    /// Delivered.
    Accepted,
    /// Refused as bad (400, 413): split, or reject a single call.
    Refused { status: u16, message: String },
}

/// One failed attempt that is worth retrying.
enum PassingFailure {
    Status { status: u16, message: String, retry_after: Option<Duration> },
    Transport(String),
}

impl HttpDestination {
    /// A destination named `name` (for messages) with the given options.
    ///
    /// Checks the options and sets up the HTTP client (installing rustls' `ring`
    /// provider as the process default if no TLS provider is installed yet); no
    /// request is made.
    pub fn new(name: impl Into<String>, config: HttpConfig) -> Result<HttpDestination, HttpConfigError> {
        let url = batch_url(config.region.base_url())?;
        if config.api_key.0.is_empty() {
            return Err(HttpConfigError::EmptyApiKey);
        }
        if config.max_batch_bytes < MIN_BATCH_BYTES {
            return Err(HttpConfigError::BatchTooSmall {
                max_batch_bytes: config.max_batch_bytes,
                minimum: MIN_BATCH_BYTES,
            });
        }
        if config.max_attempts == 0 {
            return Err(HttpConfigError::NoAttempts);
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{}:", config.api_key.0));
        let mut authorization = HeaderValue::from_str(&format!("Basic {encoded}"))
            .map_err(|e| HttpConfigError::Client { source: Box::new(e) })?;
        authorization.set_sensitive(true);

        install_crypto_provider();
        let client = reqwest::Client::builder()
            .timeout(config.timeout)
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("cdp-warehouse/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| HttpConfigError::Client { source: Box::new(e) })?;

        let mut body = Vec::with_capacity(config.max_batch_bytes.min(MAX_BATCH_BYTES));
        body.extend_from_slice(BATCH_OPEN);
        Ok(HttpDestination {
            name: name.into(),
            url,
            client,
            authorization,
            config,
            body,
            pending: Vec::new(),
            scratch: Vec::new(),
            rng: SplitMix64::from_clock(),
        })
    }

    /// The URL batches are posted to: `{base}/batch`.
    pub fn batch_url(&self) -> &str {
        self.url.as_str()
    }

    /// How many calls are waiting to be sent.
    pub fn pending_calls(&self) -> usize {
        self.pending.len()
    }

    /// Sends the pending batch, if any. The pending batch is emptied whatever
    /// happens: after an error its calls are not sent again.
    async fn flush(&mut self) -> Result<Vec<Rejection>, DestinationError> {
        if self.pending.is_empty() {
            return Ok(Vec::new());
        }
        self.body.extend_from_slice(BATCH_CLOSE);
        let capacity = self.body.capacity();
        let body = Bytes::from(std::mem::replace(&mut self.body, Vec::with_capacity(capacity)));
        self.body.extend_from_slice(BATCH_OPEN);
        let calls = std::mem::take(&mut self.pending);
        self.deliver(body, &calls).await
    }

    /// Delivers a batch, splitting it on 400 until the refused calls are alone.
    async fn deliver(&mut self, body: Bytes, calls: &[Pending]) -> Result<Vec<Rejection>, DestinationError> {
        let mut rejections = Vec::new();
        // Parts still to send, the next one last.
        let mut parts: Vec<Range<usize>> = Vec::new();
        parts.push(0..calls.len());
        while let Some(part) = parts.pop() {
            let (Some(first), Some(last)) =
                (calls.get(part.start), part.end.checked_sub(1).and_then(|i| calls.get(i)))
            else {
                continue;
            };
            let part_body = if part.len() == calls.len() {
                body.clone()
            } else {
                let inner = body.get(first.span.start..last.span.end).unwrap_or_default();
                let mut part_body = Vec::with_capacity(BATCH_OPEN.len() + inner.len() + BATCH_CLOSE.len());
                part_body.extend_from_slice(BATCH_OPEN);
                part_body.extend_from_slice(inner);
                part_body.extend_from_slice(BATCH_CLOSE);
                Bytes::from(part_body)
            };
            match self.post(part_body, part.len()).await? {
                Answer::Accepted => {
                    tracing::debug!(destination = %self.name, calls = part.len(), "batch delivered");
                }
                Answer::Refused { status, message } if part.len() == 1 => {
                    tracing::warn!(
                        destination = %self.name,
                        row = first.row_number,
                        message_id = first.message_id.as_deref().unwrap_or(""),
                        status,
                        message = %message,
                        "call refused"
                    );
                    rejections.push(Rejection {
                        row_number: first.row_number,
                        message_id: first.message_id.clone(),
                        status: Some(status),
                        message,
                    });
                }
                Answer::Refused { status, message } => {
                    let middle = part.start + part.len() / 2;
                    tracing::info!(
                        destination = %self.name,
                        calls = part.len(),
                        status,
                        message = %message,
                        "batch refused: splitting it in two"
                    );
                    parts.push(middle..part.end);
                    parts.push(part.start..middle);
                }
            }
        }
        Ok(rejections)
    }

    /// Posts one body, retrying passing failures.
    async fn post(&mut self, body: Bytes, calls: usize) -> Result<Answer, DestinationError> {
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .post(self.url.clone())
                .header(AUTHORIZATION, self.authorization.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .header("X-Strict-Mode", HeaderValue::from_static("1"))
                .body(body.clone())
                .send()
                .await;
            let failure = match sent {
                Ok(response) => {
                    let status = response.status().as_u16();
                    let retry_after = response
                        .headers()
                        .get(RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| parse_retry_after(v, SystemTime::now()));
                    let message = self.redact(read_message(response).await);
                    match status {
                        200..=299 => return Ok(Answer::Accepted),
                        400 | 413 => {
                            let message = if message.is_empty() { status_text(status) } else { message };
                            return Ok(Answer::Refused { status, message });
                        }
                        408 | 409 | 429 | 500..=599 => {
                            PassingFailure::Status { status, message, retry_after }
                        }
                        _ => {
                            return Err(DestinationError::Http {
                                destination: self.name.clone(),
                                status: Some(status),
                                message: format!(
                                    "{} from {}{}",
                                    status_text(status),
                                    self.url,
                                    with_colon(&message)
                                ),
                            });
                        }
                    }
                }
                Err(error) => PassingFailure::Transport(self.redact(error_chain(&error))),
            };
            let (status, retry_after, what) = match failure {
                PassingFailure::Status { status, message, retry_after } => {
                    (Some(status), retry_after, format!("{}{}", status_text(status), with_colon(&message)))
                }
                PassingFailure::Transport(message) => (None, None, message),
            };
            if attempt >= self.config.max_attempts {
                return Err(DestinationError::Http {
                    destination: self.name.clone(),
                    status,
                    message: format!("{} gave up after {attempt} attempts; the last: {what}", self.url),
                });
            }
            let wait = self.wait(attempt, retry_after);
            tracing::warn!(
                destination = %self.name,
                calls,
                attempt,
                status,
                retry_after_ms = retry_after.map(|d| d.as_millis() as u64),
                wait_ms = wait.as_millis() as u64,
                reason = %what,
                "batch not delivered: retrying"
            );
            tokio::time::sleep(wait).await;
        }
    }

    /// The wait before retry number `attempt` (1 for the first): full jitter over
    /// the exponential backoff, but at least what `Retry-After` asked for.
    fn wait(&mut self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1));
        let backoff = self.config.initial_backoff.saturating_mul(factor).min(self.config.max_backoff);
        let nanos = u64::try_from(backoff.as_nanos()).unwrap_or(u64::MAX);
        let jittered = Duration::from_nanos(self.rng.up_to(nanos));
        match retry_after {
            Some(asked) => asked.min(self.config.max_retry_after).max(jittered),
            None => jittered,
        }
    }

    /// `text` without the API key or its Basic credentials in it.
    fn redact(&self, text: String) -> String {
        let key = self.config.api_key.0.as_str();
        let credentials = self.authorization.to_str().unwrap_or("").trim_start_matches("Basic ");
        let mut text = text;
        for secret in [credentials, key] {
            if !secret.is_empty() && text.contains(secret) {
                text = text.replace(secret, "[redacted]");
            }
        }
        text
    }
}

#[async_trait::async_trait]
impl Destination for HttpDestination {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&mut self, delivery: Delivery) -> Result<Vec<Rejection>, DestinationError> {
        let Delivery { row_number, call } = delivery;
        self.scratch.clear();
        call.write_json(&mut self.scratch);
        let len = self.scratch.len();
        if len > MAX_CALL_BYTES {
            tracing::warn!(destination = %self.name, row = row_number, bytes = len, "call too large");
            return Ok(vec![Rejection {
                row_number,
                message_id: call.message_id,
                status: None,
                message: format!("the call is {len} bytes of JSON, over the limit of {MAX_CALL_BYTES}"),
            }]);
        }
        let mut rejections = Vec::new();
        if !self.pending.is_empty()
            && self.body.len() + 1 + len + BATCH_CLOSE.len() > self.config.max_batch_bytes
        {
            rejections = self.flush().await?;
        }
        if !self.pending.is_empty() {
            self.body.push(b',');
        }
        let start = self.body.len();
        self.body.extend_from_slice(&self.scratch);
        self.pending.push(Pending { row_number, message_id: call.message_id, span: start..self.body.len() });
        Ok(rejections)
    }

    async fn finish(&mut self) -> Result<Vec<Rejection>, DestinationError> {
        self.flush().await
    }
}

/// `{base}/batch`, checked.
fn batch_url(base: &str) -> Result<reqwest::Url, HttpConfigError> {
    let invalid =
        |reason: &str| HttpConfigError::InvalidBaseUrl { url: base.to_owned(), reason: reason.to_owned() };
    let mut url = reqwest::Url::parse(base.trim()).map_err(|e| invalid(&e.to_string()))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(invalid("the scheme must be http or https"));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(invalid("there is no host"));
    }
    url.path_segments_mut().map_err(|()| invalid("it cannot be a base"))?.pop_if_empty().push("batch");
    Ok(url)
}

/// Installs rustls' `ring` provider as the process default, unless one is
/// installed already; reqwest (built without a provider of its own) uses it.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Up to [`MAX_ANSWER_BYTES`] of an answer's body, as text, trimmed and cut to
/// [`MAX_MESSAGE_CHARS`] characters.
async fn read_message(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < MAX_ANSWER_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                let room = MAX_ANSWER_BYTES - bytes.len();
                bytes.extend_from_slice(chunk.get(..room).unwrap_or(&chunk));
            }
            Ok(None) | Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&bytes);
    let text = text.trim();
    match text.char_indices().nth(MAX_MESSAGE_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

/// `HTTP 429 Too Many Requests`.
fn status_text(status: u16) -> String {
    match reqwest::StatusCode::from_u16(status).ok().and_then(|s| s.canonical_reason()) {
        Some(reason) => format!("HTTP {status} {reason}"),
        None => format!("HTTP {status}"),
    }
}

/// `: message`, or nothing for an empty message.
fn with_colon(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(": {message}") }
}

/// An error with its sources, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(e) = source {
        let next = e.to_string();
        if !text.ends_with(&next) {
            text.push_str(": ");
            text.push_str(&next);
        }
        source = e.source();
    }
    text
}

/// A `Retry-After` value: whole seconds, or an HTTP date (IMF-fixdate, RFC 850 or
/// asctime format), as a wait from `now` (zero for a date in the past).
fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(Duration::from_secs(value.parse().unwrap_or(u64::MAX)));
    }
    let at = parse_http_date(value)?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

fn parse_http_date(value: &str) -> Option<SystemTime> {
    use chrono::{DateTime, NaiveDateTime};
    let utc = if let Ok(t) = DateTime::parse_from_rfc2822(value) {
        t.to_utc()
    } else {
        ["%A, %d-%b-%y %H:%M:%S GMT", "%a %b %e %H:%M:%S %Y"]
            .iter()
            .find_map(|format| NaiveDateTime::parse_from_str(value, format).ok())?
            .and_utc()
    };
    let seconds = utc.timestamp();
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// SplitMix64: a small, fast generator, plenty for spreading retries out.
#[derive(Debug)]
struct SplitMix64(u64);

impl SplitMix64 {
    fn from_clock() -> SplitMix64 {
        let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
        SplitMix64(nanos ^ (u64::from(std::process::id()) << 32))
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..=max`.
    fn up_to(&mut self, max: u64) -> u64 {
        match max.checked_add(1) {
            Some(bound) => self.next() % bound,
            None => self.next(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_770); // Sun, 06 Nov 1994 08:49:30 GMT
        assert_eq!(parse_retry_after("1", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::from_secs(u64::MAX)));
        for date in
            ["Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"]
        {
            assert_eq!(parse_retry_after(date, now), Some(Duration::from_secs(7)), "{date}");
        }
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:49:00 GMT", now), Some(Duration::ZERO));
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn batch_urls() {
        let url = |base: &str| batch_url(base).map(|u| u.to_string());
        assert_eq!(url(US_BASE_URL).unwrap(), "https://cdp.customer.io/v1/batch");
        assert_eq!(url(EU_BASE_URL).unwrap(), "https://cdp-eu.customer.io/v1/batch");
        assert_eq!(url("http://127.0.0.1:9/x/").unwrap(), "http://127.0.0.1:9/x/batch");
        assert_eq!(url("http://localhost:9").unwrap(), "http://localhost:9/batch");
        assert_eq!(url("https://h/v1?a=b").unwrap(), "https://h/v1/batch?a=b");
        for bad in ["ftp://h/v1", "not a url", "/v1", "mailto:x@y", ""] {
            assert!(matches!(batch_url(bad), Err(HttpConfigError::InvalidBaseUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn waits_grow_with_jitter_and_honour_retry_after() {
        let config = HttpConfig::custom("http://127.0.0.1:9", "k")
            .with_initial_backoff(Duration::from_millis(100))
            .with_max_backoff(Duration::from_millis(1000))
            .with_max_retry_after(Duration::from_secs(5));
        let mut destination = HttpDestination::new("t", config).unwrap();
        let mut seen_below_half = false;
        for _ in 0..200 {
            let first = destination.wait(1, None);
            assert!(first <= Duration::from_millis(100));
            seen_below_half |= first < Duration::from_millis(50);
            assert!(destination.wait(4, None) <= Duration::from_millis(800));
            assert!(destination.wait(30, None) <= Duration::from_millis(1000));
            assert!(destination.wait(u32::MAX, None) <= Duration::from_millis(1000));
            assert!(destination.wait(1, Some(Duration::from_secs(2))) == Duration::from_secs(2));
            assert!(destination.wait(1, Some(Duration::from_secs(3600))) == Duration::from_secs(5));
        }
        assert!(seen_below_half, "the wait is jittered");
    }

    #[test]
    fn split_mix_spreads() {
        let mut rng = SplitMix64(0);
        assert!((0..1000).all(|_| rng.up_to(10) <= 10));
        let _ = rng.up_to(u64::MAX);
        assert_eq!(rng.up_to(0), 0);
    }
}
