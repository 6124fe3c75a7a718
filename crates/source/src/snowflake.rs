//! [`SnowflakeSource`]: queries Snowflake with snowflake-connector-rs (key-pair
//! authentication), and streams the rows result chunk by result chunk.

mod decode;
mod key;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use cdp_query::Dialect;
use cdp_rows::{Columns, Value};
use futures::Stream;
use snowflake_connector_rs::decode::{PlanBuildResult, RowDecodeResult};
use snowflake_connector_rs::{
    AuthConfig, Client, ClientConfig, ColumnType, EndpointConfig, ErrorKind, FromRow, KeyPairConfig,
    QueryCanceller, QueryConfig, ResultCursor, ResultTable, RowPlanContext, RowRef, Session, SessionConfig,
};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use self::decode::Kind;
pub use self::key::PKCS1_TO_PKCS8 as SNOWFLAKE_PKCS1_TO_PKCS8;
use crate::error::{BoxError, format_duration};
use crate::{DEFAULT_STATEMENT_TIMEOUT, RowStream, Source, SourceError, Values};

/// The longest statement timeout Snowflake accepts (`STATEMENT_TIMEOUT_IN_SECONDS`):
/// 7 days.
pub const MAX_SNOWFLAKE_STATEMENT_TIMEOUT: Duration = Duration::from_secs(604_800);
/// The first pause before retrying a login, a query submission or a result chunk;
/// each further retry waits twice as long.
pub const DEFAULT_SNOWFLAKE_RETRY_DELAY: Duration = Duration::from_secs(1);
/// How many times a login or a query submission is tried in all, when it fails in a
/// way that may pass (a network error, HTTP 5xx, 429 or 408).
pub const SNOWFLAKE_ATTEMPTS: u32 = 3;
/// Rows decoded ahead of the reader, at most (besides the result chunk being read and
/// the one being downloaded).
const CHANNEL_CAPACITY: usize = 1024;
/// How many times a result chunk that arrived unreadable is downloaded again.
const CHUNK_RETRIES: u32 = 2;
/// Snowflake's error code for a statement cancelled by `STATEMENT_TIMEOUT_IN_SECONDS`.
const STATEMENT_TIMEOUT_CODE: &str = "000630";

/// Options for a [`SnowflakeSource`]: the account and user, the session's role,
/// warehouse, database and schema, the private key, timeouts.
///
/// ```
/// use std::time::Duration;
/// use cdp_source::SnowflakeOptions;
///
/// let pem = std::fs::read_to_string("tests/data/snowflake-key-encrypted.p8")?;
/// let options = SnowflakeOptions::new("myorg-myaccount", "CDP_REVERSE_ETL")
///     .role("CDP_REVERSE_ETL")
///     .warehouse("CDP_WH")
///     .database("ANALYTICS")
///     .schema("PUBLIC")
///     .private_key_pem(pem) // from a file or an environment variable
///     .private_key_passphrase("correct-horse-battery") // from an environment variable
///     .statement_timeout(Duration::from_secs(300));
/// let debug = format!("{options:?}");
/// assert!(!debug.contains("ENCRYPTED") && !debug.contains("correct-horse"));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct SnowflakeOptions {
    account: String,
    user: String,
    role: Option<String>,
    warehouse: Option<String>,
    database: Option<String>,
    schema: Option<String>,
    private_key_pem: Option<String>,
    passphrase: Option<String>,
    statement_timeout: Duration,
    base_url: Option<String>,
    retry_delay: Duration,
}

impl SnowflakeOptions {
    /// The options for `user` in `account` (the account identifier, as in
    /// `https://<account>.snowflakecomputing.com`: `myorg-myaccount`, or a locator
    /// with its region, `xy12345.eu-west-1`). A private key is required
    /// ([`SnowflakeOptions::private_key_pem`]); everything else has a default: the
    /// user's default role, warehouse and namespace, a statement timeout of
    /// [`DEFAULT_STATEMENT_TIMEOUT`], the account's own URL.
    pub fn new(account: impl Into<String>, user: impl Into<String>) -> SnowflakeOptions {
        SnowflakeOptions {
            account: account.into(),
            user: user.into(),
            role: None,
            warehouse: None,
            database: None,
            schema: None,
            private_key_pem: None,
            passphrase: None,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            base_url: None,
            retry_delay: DEFAULT_SNOWFLAKE_RETRY_DELAY,
        }
    }

    /// The role the session uses (a role with `SELECT` only, as the guide
    /// recommends: Snowflake has no read-only transaction).
    pub fn role(mut self, role: impl Into<String>) -> SnowflakeOptions {
        self.role = Some(role.into());
        self
    }

    /// The virtual warehouse that runs the queries.
    pub fn warehouse(mut self, warehouse: impl Into<String>) -> SnowflakeOptions {
        self.warehouse = Some(warehouse.into());
        self
    }

    /// The session's current database.
    pub fn database(mut self, database: impl Into<String>) -> SnowflakeOptions {
        self.database = Some(database.into());
        self
    }

    /// The session's current schema.
    pub fn schema(mut self, schema: impl Into<String>) -> SnowflakeOptions {
        self.schema = Some(schema.into());
        self
    }

    /// The user's RSA private key as PKCS#8 PEM: `-----BEGIN PRIVATE KEY-----`, or
    /// `-----BEGIN ENCRYPTED PRIVATE KEY-----` with
    /// [`SnowflakeOptions::private_key_passphrase`]. A PKCS#1 key (`-----BEGIN RSA
    /// PRIVATE KEY-----`) is refused with the command that converts it
    /// ([`SNOWFLAKE_PKCS1_TO_PKCS8`]). Line breaks written as `\n` (one line, as in
    /// some environment variables) are read too. Never shown in `Debug`, `Display` or
    /// errors.
    pub fn private_key_pem(mut self, pem: impl Into<String>) -> SnowflakeOptions {
        self.private_key_pem = Some(pem.into());
        self
    }

    /// The passphrase of an encrypted private key. Never shown.
    pub fn private_key_passphrase(mut self, passphrase: impl Into<String>) -> SnowflakeOptions {
        self.passphrase = Some(passphrase.into());
        self
    }

    /// How long one query may run on Snowflake: the session's
    /// `STATEMENT_TIMEOUT_IN_SECONDS` (rounded up to whole seconds), after which
    /// Snowflake cancels it and the query fails with [`SourceError::Timeout`]. Zero
    /// means Snowflake's own limit. At most [`MAX_SNOWFLAKE_STATEMENT_TIMEOUT`].
    /// Reading the finished result is bounded apart: each result chunk must arrive
    /// within this time too (at least a minute).
    pub fn statement_timeout(mut self, timeout: Duration) -> SnowflakeOptions {
        self.statement_timeout = timeout;
        self
    }

    /// Another base URL for Snowflake's API than `https://<account>.snowflakecomputing.com`
    /// (a PrivateLink endpoint, a proxy, a test server): `http` or `https`, a host and
    /// a port, no path.
    pub fn base_url(mut self, url: impl Into<String>) -> SnowflakeOptions {
        self.base_url = Some(url.into());
        self
    }

    /// The first pause before a retry ([`DEFAULT_SNOWFLAKE_RETRY_DELAY`]); each
    /// further retry waits twice as long.
    pub fn retry_delay(mut self, delay: Duration) -> SnowflakeOptions {
        self.retry_delay = delay;
        self
    }
}

impl fmt::Debug for SnowflakeOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnowflakeOptions")
            .field("account", &self.account)
            .field("user", &self.user)
            .field("role", &self.role)
            .field("warehouse", &self.warehouse)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("private_key_pem", &self.private_key_pem.as_ref().map(|_| Redacted))
            .field("passphrase", &self.passphrase.as_ref().map(|_| Redacted))
            .field("statement_timeout", &self.statement_timeout)
            .field("base_url", &self.base_url)
            .field("retry_delay", &self.retry_delay)
            .finish()
    }
}

/// Stands in for a secret in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A Snowflake account as a reverse-ETL source, through snowflake-connector-rs.
///
/// The source logs in with key-pair authentication (a JWT signed with the user's RSA
/// key) when it first queries, and keeps the session for later queries; a session
/// that expired is replaced by a new login. Each [`Source::query`] submits the query,
/// waits for it to finish, then streams its rows: result chunks are downloaded one at
/// a time (the next one while the rows of the current one are read) and decoded from
/// Snowflake's JSON result format exactly (see the crate docs' table). Memory holds at
/// most two chunks and a bounded number of decoded rows, whatever the result's size.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cdp_source::{SnowflakeOptions, SnowflakeSource, Source};
///
/// let options = SnowflakeOptions::new("myorg-myaccount", "CDP_REVERSE_ETL")
///     .role("CDP_REVERSE_ETL")
///     .warehouse("CDP_WH")
///     .private_key_pem(std::env::var("SNOWFLAKE_PRIVATE_KEY")?);
/// let source = SnowflakeSource::new("warehouse", options)?;
/// println!("register this key: {}", source.fingerprint()); // SHA256:…
/// let mut rows = source.query("SELECT ID AS \"userId\", EMAIL AS \"email\" FROM USERS").await?;
/// while let Some(row) = rows.next().await {
///     let values = row?;
/// #   let _ = values;
/// }
/// # Ok(())
/// # }
/// ```
pub struct SnowflakeSource {
    context: ErrorContext,
    client: Client,
    session: tokio::sync::Mutex<Option<Arc<Session>>>,
    account: String,
    user: String,
    role: Option<String>,
    warehouse: Option<String>,
    database: Option<String>,
    schema: Option<String>,
    base_url: Option<url::Url>,
    fingerprint: String,
    retry_delay: Duration,
}

impl SnowflakeSource {
    /// A source called `name` (used in errors and logs) for the account and user of
    /// `options`. The private key is read and checked now; nothing connects yet.
    ///
    /// Fails with [`SourceError::Config`] for an empty name, account or user, a
    /// missing, unreadable, PKCS#1 or non-RSA key, a missing or wrong passphrase, a
    /// statement timeout over 7 days, or a malformed base URL. Errors about the key
    /// name the user and the account.
    pub fn new(name: impl Into<String>, options: SnowflakeOptions) -> Result<SnowflakeSource, SourceError> {
        let name: String = name.into();
        let config_error = |reason: String| SourceError::Config { source_name: name.clone(), reason };
        if name.is_empty() {
            return Err(config_error("a source needs a name".to_owned()));
        }
        let SnowflakeOptions {
            account,
            user,
            role,
            warehouse,
            database,
            schema,
            private_key_pem,
            passphrase,
            statement_timeout,
            base_url,
            retry_delay,
        } = options;
        if account.is_empty() || account.contains(|c: char| !(c.is_ascii_alphanumeric() || "-_.".contains(c)))
        {
            return Err(config_error(format!(
                "the account identifier {account:?} must be non-empty and use only letters, digits, `-`, `_` and `.` \
                 (like myorg-myaccount)"
            )));
        }
        if user.is_empty() {
            return Err(config_error("the user name is empty".to_owned()));
        }
        if statement_timeout > MAX_SNOWFLAKE_STATEMENT_TIMEOUT {
            return Err(config_error(format!(
                "the statement timeout of {} is over Snowflake's limit of 7 days",
                format_duration(statement_timeout)
            )));
        }
        let whose = format!("user `{user}` in account `{account}`");
        let pem =
            private_key_pem.ok_or_else(|| config_error(format!("no private key is given for {whose}")))?;
        let key = key::read(&pem, passphrase.as_deref().map(str::as_bytes))
            .map_err(|e| config_error(format!("the private key of {whose}: {e}")))?;
        drop((pem, passphrase));
        let base_url = match base_url {
            Some(text) => Some(
                url::Url::parse(&text)
                    .map_err(|e| config_error(format!("the base URL {text:?} is malformed: {e}")))?,
            ),
            None => None,
        };

        let timeout_secs = statement_timeout.as_nanos().div_ceil(1_000_000_000) as u64;
        // One statement per request, whatever the account's default: the query
        // checks allow one statement, and Snowflake enforces it too.
        let mut session = SessionConfig::new()
            .with_session_parameter("STATEMENT_TIMEOUT_IN_SECONDS", serde_json::Value::from(timeout_secs))
            .with_session_parameter("MULTI_STATEMENT_COUNT", serde_json::Value::from(1));
        for (value, set) in [
            (&role, SessionConfig::with_role as fn(SessionConfig, String) -> SessionConfig),
            (&warehouse, SessionConfig::with_warehouse),
            (&database, SessionConfig::with_database),
            (&schema, SessionConfig::with_schema),
        ] {
            if let Some(value) = value {
                session = set(session, value.clone());
            }
        }
        // The client's own deadline for an answer comes after Snowflake's.
        let statement_limit =
            if timeout_secs == 0 { MAX_SNOWFLAKE_STATEMENT_TIMEOUT } else { statement_timeout };
        let query = QueryConfig::new().with_query_response_timeout(statement_limit + Duration::from_secs(60));
        let mut config =
            ClientConfig::new(&user, &account, AuthConfig::key_pair(KeyPairConfig::from_pem(key.pem())))
                .with_session(session)
                .with_query(query);
        if let Some(url) = &base_url {
            config = config.with_endpoint(EndpointConfig::custom_base_url(url.clone()));
        }
        install_crypto_provider();
        let client =
            Client::new(config).map_err(|e| config_error(format!("the base URL: {}", with_causes(&e))))?;
        let fingerprint = key.fingerprint().to_owned();
        let target = format!("account `{account}` as user `{user}` (key {fingerprint})");
        Ok(SnowflakeSource {
            context: ErrorContext {
                name: name.into(),
                target,
                statement_timeout,
                chunk_timeout: if timeout_secs == 0 {
                    DEFAULT_STATEMENT_TIMEOUT
                } else {
                    statement_timeout.max(Duration::from_secs(60))
                },
            },
            client,
            session: tokio::sync::Mutex::new(None),
            account,
            user,
            role,
            warehouse,
            database,
            schema,
            base_url,
            fingerprint,
            retry_delay,
        })
    }

    /// The fingerprint of the configured key's public key, as Snowflake shows it in
    /// `DESC USER <user>` (`RSA_PUBLIC_KEY_FP`): `SHA256:` and the base64 of the
    /// SHA-256 of its DER `SubjectPublicKeyInfo`.
    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    /// What the source logs in to, as errors show it: ``account `A` as user `U` (key
    /// SHA256:…)``.
    pub fn target(&self) -> &str {
        &self.context.target
    }

    /// The statement timeout each query runs under (zero: Snowflake's own limit).
    pub fn statement_timeout(&self) -> Duration {
        self.context.statement_timeout
    }

    /// The current session, logging in when there is none.
    async fn session(&self) -> Result<Arc<Session>, SourceError> {
        let mut cached = self.session.lock().await;
        if let Some(session) = &*cached {
            return Ok(session.clone());
        }
        let mut attempt = 0;
        let session = loop {
            tracing::debug!(source = %self.context.name, target = %self.context.target, "logging in");
            match self.client.create_session().await {
                Ok(session) => break Arc::new(session),
                Err(e) if attempt + 1 < SNOWFLAKE_ATTEMPTS && is_transient(&e, true) => {
                    tracing::warn!(source = %self.context.name, attempt, error = %with_causes(&e), "login failed; retrying");
                    tokio::time::sleep(self.backoff(attempt)).await;
                    attempt += 1;
                }
                Err(e) if is_transient(&e, true) => {
                    return Err(gave_up(self.login_error(e), SNOWFLAKE_ATTEMPTS));
                }
                Err(e) => return Err(self.login_error(e)),
            }
        };
        *cached = Some(session.clone());
        Ok(session)
    }

    /// Forgets `session` (expired), unless another query replaced it already.
    async fn forget(&self, session: &Arc<Session>) {
        let mut cached = self.session.lock().await;
        if cached.as_ref().is_some_and(|c| Arc::ptr_eq(c, session)) {
            *cached = None;
        }
    }

    fn backoff(&self, attempt: u32) -> Duration {
        self.retry_delay.saturating_mul(1 << attempt.min(16))
    }

    /// Submits `sql` and waits for its result, logging in again once when the session
    /// expired (or its token is refused with HTTP 401), and retrying what may pass.
    async fn execute(&self, sql: &str) -> Result<ResultCursor, SourceError> {
        let mut attempt = 0;
        let mut logged_in_again = false;
        loop {
            let session = self.session().await?;
            let handle = session.query_handle(sql.to_owned()).map_err(|e| self.context.query_error(e, 0))?;
            let mut guard = CancelOnDrop(Some(handle.canceller()));
            let result = handle.execute().await;
            match result {
                Ok(cursor) => {
                    guard.disarm();
                    return Ok(cursor);
                }
                // Past the client's deadline the query may still run: the guard
                // cancels it on Snowflake.
                Err(e) if e.kind() == ErrorKind::Timeout => return Err(self.context.query_error(e, 0)),
                Err(e) => {
                    guard.disarm();
                    // Snowflake answers an expired session with code 390112; a token it
                    // no longer knows may come back as HTTP 401 (code 390104).
                    let session_gone = e.is_session_expired()
                        || e.kind() == ErrorKind::Network && e.to_string().starts_with("HTTP 401");
                    if session_gone && !logged_in_again {
                        tracing::info!(source = %self.context.name, "the session expired; logging in again");
                        self.forget(&session).await;
                        logged_in_again = true;
                    } else if attempt + 1 < SNOWFLAKE_ATTEMPTS && is_transient(&e, false) {
                        tracing::warn!(source = %self.context.name, attempt, error = %with_causes(&e), "query submission failed; retrying");
                        tokio::time::sleep(self.backoff(attempt)).await;
                        attempt += 1;
                    } else if is_transient(&e, false) {
                        return Err(gave_up(self.context.query_error(e, 0), SNOWFLAKE_ATTEMPTS));
                    } else {
                        return Err(self.context.query_error(e, 0));
                    }
                }
            }
        }
    }

    /// A login that failed for good.
    fn login_error(&self, e: snowflake_connector_rs::Error) -> SourceError {
        let user = &self.user;
        let check_key = format!(
            "Check that user `{user}` exists in account `{}` and that `DESC USER {user}` shows {} as \
             RSA_PUBLIC_KEY_FP or RSA_PUBLIC_KEY_2_FP (set it with ALTER USER {user} SET RSA_PUBLIC_KEY='<the \
             public key>')",
            self.account, self.fingerprint
        );
        let refused = e.kind() == ErrorKind::Network && e.to_string().starts_with("HTTP 4");
        let reason = match e.kind() {
            ErrorKind::Auth => format!(
                "Snowflake refused the login: {}. {check_key}",
                e.snowflake_message().unwrap_or("no reason given").trim_end_matches('.')
            ),
            ErrorKind::Network | ErrorKind::Timeout => format!(
                "cannot log in at {}: {}. {}",
                self.login_url(),
                with_causes(&e),
                if refused {
                    check_key
                } else if self.base_url.is_some() {
                    "Check the account identifier and the base URL".to_owned()
                } else {
                    "Check the account identifier".to_owned()
                }
            ),
            _ => format!("the login failed: {}", with_causes(&e)),
        };
        SourceError::Connect {
            source_name: self.context.name.to_string(),
            target: self.context.target.clone(),
            reason,
            source: Some(Box::new(e)),
        }
    }

    fn login_url(&self) -> String {
        match &self.base_url {
            Some(url) => url.to_string(),
            None => format!("https://{}.snowflakecomputing.com", self.account),
        }
    }
}

#[async_trait]
impl Source for SnowflakeSource {
    fn name(&self) -> &str {
        &self.context.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::Snowflake
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        let cursor = self.execute(sql).await?;
        let schema = cursor.schema();
        for (index, column) in schema.columns().iter().enumerate() {
            if let Err(hint) = kind_of(column.ty()) {
                return Err(SourceError::UnsupportedType {
                    source_name: self.context.name.to_string(),
                    column: column.name().to_owned(),
                    column_index: index,
                    type_name: type_name(column.ty()),
                    hint,
                });
            }
        }
        let columns = Columns::new(schema.columns().iter().map(|c| c.name()));
        let type_names = schema.columns().iter().map(|c| type_name(c.ty())).collect();
        tracing::debug!(source = %self.context.name, query_id = cursor.query_id(), columns = columns.len(), "query finished; reading its result");
        let (sender, receiver) = mpsc::channel(CHANNEL_CAPACITY);
        let reader = Reader {
            context: self.context.clone(),
            columns: columns.clone(),
            type_names,
            query_id: cursor.query_id().to_owned(),
            retry_delay: self.retry_delay,
            sender,
            rows_read: 0,
        };
        let task = tokio::spawn(reader.run(cursor));
        Ok(RowStream::new(self.context.name.clone(), columns, SnowflakeRows { receiver, task }))
    }

    /// Runs the query limited to no rows (Snowflake's REST API has no way to only
    /// describe a query) and returns its result's column names; no row is read. The
    /// limit is written as a preview writes it ([`cdp_query::RenderedQuery::preview`]:
    /// `LIMIT 0` after a plain query, else `SELECT * FROM (<sql>) AS cdp_preview LIMIT
    /// 0`), so the names are those `sql` gives.
    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let cursor = self.execute(&zero_rows(sql)).await?;
        Ok(cursor.schema().columns().iter().map(|c| c.name().to_owned()).collect())
    }
}

/// `sql` limited to no rows, the way a preview limits a query in Snowflake's dialect
/// (trailing comments and semicolons dropped). SQL that the preview cannot limit
/// (text with `{{`, which would read as a template, or SQL sqlparser does not parse)
/// is wrapped as it is, its trailing semicolons dropped and on lines of its own so
/// that a trailing `--` comment cannot swallow the parenthesis.
fn zero_rows(sql: &str) -> String {
    if !sql.contains("{{") {
        let limited = cdp_query::QueryTemplate::new(sql)
            .and_then(|template| template.render(&cdp_query::SyncVariables::first_run(0)))
            .and_then(|rendered| rendered.preview(Dialect::Snowflake, 0));
        if let Ok(limited) = limited {
            return limited;
        }
    }
    let mut core = sql.trim_end();
    while let Some(rest) = core.strip_suffix(';') {
        core = rest.trim_end();
    }
    format!("SELECT * FROM (\n{core}\n) LIMIT 0")
}

impl fmt::Debug for SnowflakeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SnowflakeSource")
            .field("name", &self.context.name)
            .field("account", &self.account)
            .field("user", &self.user)
            .field("role", &self.role)
            .field("warehouse", &self.warehouse)
            .field("database", &self.database)
            .field("schema", &self.schema)
            .field("base_url", &self.base_url.as_ref().map(url::Url::as_str))
            .field("fingerprint", &self.fingerprint)
            .field("private_key", &Redacted)
            .field("statement_timeout", &self.context.statement_timeout)
            .finish()
    }
}

impl fmt::Display for SnowflakeSource {
    /// ``Snowflake source `warehouse` (account `A` as user `U` (key SHA256:…))``.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Snowflake source `{}` ({})", self.context.name, self.context.target)
    }
}

/// Installs rustls' `ring` provider as the process default, unless one is installed
/// already. The connector's HTTP client (reqwest) then uses it, like every other
/// client of the workspace, rather than the aws-lc-rs provider its `rustls` feature
/// also compiles in.
fn install_crypto_provider() {
    if rustls::crypto::CryptoProvider::get_default().is_none() {
        // Losing a race to another thread installing one is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
    }
}

/// Whether a failed request may pass when tried again: a network error without an
/// answer, HTTP 5xx, 429 or 408; at login also a request that timed out. The
/// connector gives the status only in its message (`HTTP 503: …`).
fn is_transient(e: &snowflake_connector_rs::Error, login: bool) -> bool {
    match e.kind() {
        ErrorKind::Network => match e.to_string().strip_prefix("HTTP ") {
            Some(rest) => {
                let status: u16 = rest.split(':').next().and_then(|s| s.trim().parse().ok()).unwrap_or(0);
                status >= 500 || status == 429 || status == 408
            }
            None => true,
        },
        ErrorKind::Timeout => login,
        _ => false,
    }
}

/// Says that a failure that may pass was retried until the attempts ran out.
fn gave_up(error: SourceError, attempts: u32) -> SourceError {
    match error {
        SourceError::Connection { source_name, reason, rows_read, source } => SourceError::Connection {
            source_name,
            reason: format!("{reason} (gave up after {attempts} attempts)"),
            rows_read,
            source,
        },
        SourceError::Connect { source_name, target, reason, source } => SourceError::Connect {
            source_name,
            target,
            reason: format!("{reason} (gave up after {attempts} attempts)"),
            source,
        },
        other => other,
    }
}

/// An error's message followed by those of its causes.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        let message = c.to_string();
        if !text.ends_with(&message) {
            text.push_str(": ");
            text.push_str(&message);
        }
        cause = c.source();
    }
    text
}

/// Cancels a submitted query on Snowflake when dropped armed (the query future was
/// dropped, or the client's deadline passed).
struct CancelOnDrop(Option<QueryCanceller>);

impl CancelOnDrop {
    fn disarm(&mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        let Some(canceller) = self.0.take() else { return };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            if let Err(e) = canceller.cancel().await {
                tracing::debug!(error = %e, "cancelling the query failed");
            }
        });
    }
}

/// The source's name and settings, for building errors on either side of the stream.
#[derive(Debug, Clone)]
struct ErrorContext {
    name: Arc<str>,
    target: String,
    statement_timeout: Duration,
    chunk_timeout: Duration,
}

impl ErrorContext {
    /// Translates an error of a query (its submission, its execution, or reading its
    /// result) after `rows_read` rows.
    fn query_error(&self, e: snowflake_connector_rs::Error, rows_read: u64) -> SourceError {
        let source_name = self.name.to_string();
        let query_id = e.query_id().map(str::to_owned);
        let with_id = |text: String| match &query_id {
            Some(id) => format!("{text} (query id {id})"),
            None => text,
        };
        match e.kind() {
            ErrorKind::Server if e.snowflake_code() == Some(STATEMENT_TIMEOUT_CODE) => SourceError::Timeout {
                source_name,
                timeout: self.statement_timeout,
                rows_read,
                source: Some(Box::new(e)),
            },
            ErrorKind::Timeout => SourceError::Timeout {
                source_name,
                timeout: self.statement_timeout,
                rows_read,
                source: Some(Box::new(e)),
            },
            ErrorKind::Server | ErrorKind::Cancelled | ErrorKind::SessionExpired => {
                let code = e.snowflake_code().map(str::to_owned);
                let message = e.snowflake_message().unwrap_or("no message").to_owned();
                let reason = with_id(match &code {
                    Some(code) => format!("Snowflake error {code}: {message}"),
                    None => format!("Snowflake error: {message}"),
                });
                SourceError::Query {
                    source_name,
                    code,
                    reason,
                    rows_read,
                    query_id,
                    source: Some(Box::new(e)),
                }
            }
            ErrorKind::Network => SourceError::Connection {
                source_name,
                reason: with_id(with_causes(&e)),
                rows_read,
                source: Some(Box::new(e) as BoxError),
            },
            _ => SourceError::Query {
                source_name,
                code: None,
                reason: with_id(format!("unexpected answer from Snowflake: {}", with_causes(&e))),
                rows_read,
                query_id,
                source: Some(Box::new(e)),
            },
        }
    }
}

/// How each column is read, or the hint for a column that cannot be.
fn kind_of(ty: &ColumnType) -> Result<Kind, String> {
    Ok(match ty {
        ColumnType::Fixed { scale, .. } => Kind::Fixed { scale: scale.unwrap_or(0) },
        ColumnType::Real => Kind::Real,
        ColumnType::Text { .. } => Kind::Text,
        ColumnType::Boolean => Kind::Boolean,
        ColumnType::Date => Kind::Date,
        ColumnType::Time { .. } => Kind::Time,
        ColumnType::TimestampNtz { .. } => Kind::TimestampNtz,
        ColumnType::TimestampLtz { .. } => Kind::TimestampLtz,
        ColumnType::TimestampTz { scale, .. } => Kind::TimestampTz { scale: scale.unwrap_or(9) },
        ColumnType::Variant | ColumnType::Object | ColumnType::Array => Kind::Json,
        ColumnType::Binary { .. } => Kind::Binary,
        ColumnType::Vector => Kind::Vector,
        ColumnType::Unknown { snowflake_type } if &**snowflake_type == "decfloat" => Kind::DecFloat,
        ColumnType::Geography | ColumnType::Geometry => {
            return Err("convert it in the query: ST_ASGEOJSON(x) for GeoJSON, or ST_ASWKT(x)".to_owned());
        }
        _ => return Err("cast it in the query, e.g. `x::VARCHAR`".to_owned()),
    })
}

/// Snowflake's name for a column's type, as errors show it.
fn type_name(ty: &ColumnType) -> String {
    match ty {
        ColumnType::Fixed { precision, scale, .. } => match (precision, scale) {
            (Some(p), Some(s)) => format!("NUMBER({p},{s})"),
            _ => "NUMBER".to_owned(),
        },
        ColumnType::Real => "FLOAT".to_owned(),
        ColumnType::Text { .. } => "VARCHAR".to_owned(),
        other => other.as_str().to_ascii_uppercase(),
    }
}

/// One decoded row, or the column that could not be read and why.
struct DecodedRow(Result<Values, (usize, String)>);

impl FromRow for DecodedRow {
    type Plan = Vec<Kind>;

    fn build_plan(ctx: RowPlanContext<'_>) -> PlanBuildResult<Self::Plan> {
        // Unsupported types were refused before any row; text is never used.
        Ok(ctx.schema().columns().iter().map(|c| kind_of(c.ty()).unwrap_or(Kind::Text)).collect())
    }

    fn from_row_with_plan(row: RowRef<'_>, plan: &Self::Plan) -> RowDecodeResult<Self> {
        let mut values = Vec::with_capacity(plan.len());
        for (index, kind) in plan.iter().enumerate() {
            let value = match row.cell_at(index)?.raw() {
                None => Value::Null,
                Some(raw) => match decode::decode(*kind, raw) {
                    Ok(value) => value,
                    Err(reason) => return Ok(DecodedRow(Err((index, reason)))),
                },
            };
            values.push(value);
        }
        Ok(DecodedRow(Ok(values)))
    }
}

/// Downloads a query's result chunks and decodes their rows into the channel, in a
/// task of its own.
struct Reader {
    context: ErrorContext,
    columns: Columns,
    type_names: Vec<String>,
    query_id: String,
    retry_delay: Duration,
    sender: mpsc::Sender<Result<Values, SourceError>>,
    rows_read: u64,
}

/// Why a chunk could not be had.
enum ChunkError {
    Snowflake(snowflake_connector_rs::Error),
    Timeout,
}

impl Reader {
    async fn run(mut self, mut cursor: ResultCursor) {
        let mut chunk = 0_usize;
        let context = self.context.clone();
        let retry_delay = self.retry_delay;
        let mut current = fetch(&mut cursor, &context, retry_delay).await;
        loop {
            let table = match current {
                Ok(Some(table)) => table,
                Ok(None) => break,
                Err(e) => {
                    let error = self.chunk_error(e, chunk);
                    let _ = self.sender.send(Err(error)).await;
                    return;
                }
            };
            // The next chunk downloads while this one's rows are read.
            let (sent, next) =
                futures::future::join(self.send_rows(&table), fetch(&mut cursor, &context, retry_delay))
                    .await;
            if sent.is_err() {
                return; // the reader is gone
            }
            drop(table);
            chunk += 1;
            current = next;
        }
        tracing::debug!(source = %self.context.name, rows = self.rows_read, chunks = chunk, "result read");
    }

    /// Sends the rows of one chunk; `Err` when the stream was dropped.
    async fn send_rows(&mut self, table: &ResultTable) -> Result<(), ()> {
        let rows = match table.rows::<DecodedRow>() {
            Ok(rows) => rows,
            Err(e) => {
                let error = self.context.query_error(e, self.rows_read);
                let _ = self.sender.send(Err(error)).await;
                return Err(());
            }
        };
        for row in rows {
            self.rows_read += 1;
            let item = match row {
                Ok(DecodedRow(Ok(values))) => Ok(values),
                Ok(DecodedRow(Err((index, reason)))) => Err(self.value_error(index, reason)),
                Err(e) => Err(self.value_error(0, with_causes(&e))),
            };
            self.sender.send(item).await.map_err(|_| ())?;
        }
        Ok(())
    }

    fn value_error(&self, index: usize, reason: String) -> SourceError {
        SourceError::Value {
            source_name: self.context.name.to_string(),
            row: self.rows_read,
            column: self.columns.name(index).unwrap_or_default().to_owned(),
            column_index: index,
            type_name: self.type_names.get(index).cloned().unwrap_or_default(),
            reason,
        }
    }

    fn chunk_error(&self, e: ChunkError, chunk: usize) -> SourceError {
        match e {
            ChunkError::Snowflake(e) => match self.context.query_error(e, self.rows_read) {
                SourceError::Connection { source_name, reason, rows_read, source } => {
                    SourceError::Connection {
                        source_name,
                        reason: format!("result chunk {} could not be downloaded: {reason}", chunk + 1),
                        rows_read,
                        source,
                    }
                }
                other => other,
            },
            ChunkError::Timeout => SourceError::Timeout {
                source_name: self.context.name.to_string(),
                timeout: self.context.chunk_timeout,
                rows_read: self.rows_read,
                source: Some(
                    format!("result chunk {} of query {} did not arrive in time", chunk + 1, self.query_id)
                        .into(),
                ),
            },
        }
    }
}

/// The next result chunk, waiting at most the chunk timeout, and downloading again a
/// chunk that arrived unreadable or late (the connector itself retries network
/// errors and HTTP 5xx, 429 and 408 seven times with backoff).
async fn fetch(
    cursor: &mut ResultCursor,
    context: &ErrorContext,
    retry_delay: Duration,
) -> Result<Option<ResultTable>, ChunkError> {
    let mut attempt = 0;
    loop {
        // A dropped or failed `next_table` leaves the cursor on the same chunk.
        let error = match tokio::time::timeout(context.chunk_timeout, cursor.next_table()).await {
            Ok(Ok(table)) => return Ok(table),
            Ok(Err(e)) if e.kind() == ErrorKind::Protocol => ChunkError::Snowflake(e),
            Ok(Err(e)) => return Err(ChunkError::Snowflake(e)),
            Err(_) => ChunkError::Timeout,
        };
        if attempt >= CHUNK_RETRIES {
            return Err(error);
        }
        tracing::warn!(source = %context.name, attempt, "a result chunk could not be read; downloading it again");
        tokio::time::sleep(retry_delay.saturating_mul(1 << attempt)).await;
        attempt += 1;
    }
}

/// The rows of one Snowflake query, as the reader task decodes them.
struct SnowflakeRows {
    receiver: mpsc::Receiver<Result<Values, SourceError>>,
    task: JoinHandle<()>,
}

impl Drop for SnowflakeRows {
    /// Stops downloading when the stream is dropped before its end.
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Stream for SnowflakeRows {
    type Item = Result<Values, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.receiver.poll_recv(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = include_str!("../tests/data/snowflake-key.p8");
    const ENCRYPTED: &str = include_str!("../tests/data/snowflake-key-encrypted.p8");
    const PKCS1: &str = include_str!("../tests/data/snowflake-key-pkcs1.pem");
    const FINGERPRINT: &str = "SHA256:VJko0EMUB8hCv9GV4Shi3rvtPMfkVxu7DcCOkElxIho=";

    fn options() -> SnowflakeOptions {
        SnowflakeOptions::new("myorg-acct", "CDP").role("R").warehouse("W").database("D").schema("S")
    }

    #[test]
    fn sources_read_their_key_at_once() {
        let source = SnowflakeSource::new("sf", options().private_key_pem(KEY)).unwrap();
        assert_eq!(source.fingerprint(), FINGERPRINT);
        assert_eq!(source.target(), format!("account `myorg-acct` as user `CDP` (key {FINGERPRINT})"));
        assert_eq!(source.dialect(), Dialect::Snowflake);
        assert_eq!(source.statement_timeout(), DEFAULT_STATEMENT_TIMEOUT);
        let encrypted = options().private_key_pem(ENCRYPTED).private_key_passphrase("correct-horse-battery");
        assert_eq!(SnowflakeSource::new("sf", encrypted).unwrap().fingerprint(), FINGERPRINT);
    }

    #[test]
    fn configuration_errors_name_the_user_and_account() {
        let error = |options: SnowflakeOptions| SnowflakeSource::new("sf", options).unwrap_err().to_string();
        let pkcs1 = error(options().private_key_pem(PKCS1));
        assert!(
            pkcs1.starts_with(
                "source `sf`: invalid configuration: the private key of user `CDP` in account `myorg-acct`: "
            ),
            "{pkcs1}"
        );
        assert!(pkcs1.contains(SNOWFLAKE_PKCS1_TO_PKCS8), "{pkcs1}");
        let wrong = error(options().private_key_pem(ENCRYPTED).private_key_passphrase("not-the-passphrase"));
        assert!(
            wrong.contains("user `CDP` in account `myorg-acct`") && wrong.contains("passphrase"),
            "{wrong}"
        );
        assert!(error(options()).contains("no private key"));
        assert!(error(options().private_key_pem(ENCRYPTED)).contains("no passphrase"));
        assert!(error(SnowflakeOptions::new("a/b", "u").private_key_pem(KEY)).contains("account identifier"));
        assert!(error(SnowflakeOptions::new("a", "").private_key_pem(KEY)).contains("user name"));
        assert!(error(options().private_key_pem(KEY).base_url("not a url")).contains("base URL"));
        assert!(error(options().private_key_pem(KEY).base_url("ftp://host")).contains("base URL"));
        assert!(
            error(options().private_key_pem(KEY).statement_timeout(Duration::from_secs(604_801)))
                .contains("7 days")
        );
        assert!(SnowflakeSource::new("", options().private_key_pem(KEY)).is_err());
    }

    #[test]
    fn debug_and_display_never_show_the_key_or_passphrase() {
        let options = options().private_key_pem(ENCRYPTED).private_key_passphrase("correct-horse-battery");
        let source = SnowflakeSource::new("sf", options.clone()).unwrap();
        let key_line = |pem: &str| pem.lines().nth(1).unwrap()[..24].to_owned();
        let decrypted_line = key_line(KEY);
        for text in [format!("{options:?}"), format!("{source:?}"), source.to_string()] {
            assert!(!text.contains("correct-horse"), "{text}");
            assert!(!text.contains(&key_line(ENCRYPTED)) && !text.contains(&decrypted_line), "{text}");
            assert!(!text.contains("PRIVATE KEY"), "{text}");
        }
        assert!(format!("{source:?}").contains(FINGERPRINT));
    }

    #[test]
    fn a_query_is_limited_to_no_rows() {
        assert_eq!(zero_rows("SELECT 1 AS a ; -- done\n"), "SELECT 1 AS a\nLIMIT 0");
        assert_eq!(
            zero_rows("SELECT a FROM t LIMIT 5"),
            "SELECT * FROM (\nSELECT a FROM t LIMIT 5\n) AS cdp_preview\nLIMIT 0"
        );
        // What the preview cannot limit is wrapped as it is.
        assert_eq!(zero_rows("SELECT '{{x}}' AS a ;; \n"), "SELECT * FROM (\nSELECT '{{x}}' AS a\n) LIMIT 0");
        assert_eq!(zero_rows("SELEC 1 -- done"), "SELECT * FROM (\nSELEC 1 -- done\n) LIMIT 0");
    }

    #[test]
    fn statement_timeouts_round_up_to_seconds() {
        let source = SnowflakeSource::new(
            "sf",
            options().private_key_pem(KEY).statement_timeout(Duration::from_millis(1500)),
        )
        .unwrap();
        assert_eq!(source.context.chunk_timeout, Duration::from_secs(60));
        let unlimited =
            SnowflakeSource::new("sf", options().private_key_pem(KEY).statement_timeout(Duration::ZERO))
                .unwrap();
        assert_eq!(unlimited.context.chunk_timeout, DEFAULT_STATEMENT_TIMEOUT);
    }

    #[test]
    fn every_type_has_a_reading_or_a_hint() {
        assert_eq!(kind_of(&ColumnType::Real), Ok(Kind::Real));
        assert_eq!(kind_of(&ColumnType::Variant), Ok(Kind::Json));
        assert_eq!(kind_of(&ColumnType::Unknown { snowflake_type: "decfloat".into() }), Ok(Kind::DecFloat));
        assert!(kind_of(&ColumnType::Geography).unwrap_err().contains("ST_ASGEOJSON"));
        assert!(
            kind_of(&ColumnType::Unknown { snowflake_type: "interval".into() })
                .unwrap_err()
                .contains("VARCHAR")
        );
        assert_eq!(type_name(&ColumnType::Unknown { snowflake_type: "interval".into() }), "INTERVAL");
        assert_eq!(type_name(&ColumnType::Geography), "GEOGRAPHY");
    }
}
