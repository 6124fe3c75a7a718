//! [`PostgresSource`]: queries a PostgreSQL server with tokio-postgres, each in its own
//! connection and read-only transaction, and streams the rows.

mod decode;
mod numeric;

use std::borrow::Cow;
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use cdp_query::Dialect;
use cdp_rows::{Columns, Value};
use futures::Stream;
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls};

use self::decode::{Decoder, RawField};
use self::numeric::write_numeric;
use crate::error::BoxError;
use crate::stream::{RawRows, RowBatch, RowRef, RowsInPlace};
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, RowStream, Source, SourceError};

/// The `application_name` sent to the server unless the connection string sets one.
pub const APPLICATION_NAME: &str = "cdp-warehouse";

/// Options for a [`PostgresSource`]: the password, timeouts and TLS.
///
/// ```
/// use std::time::Duration;
/// use cdp_source::PostgresOptions;
///
/// let options = PostgresOptions::new()
///     .password("s3cret") // in practice from an environment variable
///     .statement_timeout(Duration::from_secs(300))
///     .connect_timeout(Duration::from_secs(10));
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct PostgresOptions {
    password: Option<String>,
    statement_timeout: Duration,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls: Option<crate::PostgresTls>,
    #[cfg(feature = "ssh")]
    ssh: Option<crate::tunnel::SshConfig>,
}

impl PostgresOptions {
    /// The defaults: no password (unless the connection string has one), a statement
    /// timeout of [`DEFAULT_STATEMENT_TIMEOUT`], a connect timeout of
    /// [`DEFAULT_CONNECT_TIMEOUT`], no TLS.
    pub fn new() -> PostgresOptions {
        PostgresOptions {
            password: None,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            #[cfg(feature = "tls")]
            tls: None,
            #[cfg(feature = "ssh")]
            ssh: None,
        }
    }

    /// The password to log in with, given apart from the connection string (read it
    /// from an environment variable, never from a configuration file). It replaces a
    /// password inside the connection string. It never appears in `Debug`, `Display`,
    /// errors or logs.
    pub fn password(mut self, password: impl Into<String>) -> PostgresOptions {
        self.password = Some(password.into());
        self
    }

    /// How long one query may run, including the time its rows take to be read (the
    /// server's `statement_timeout`, set for the query's transaction); then the server
    /// cancels it and the stream ends with [`SourceError::Timeout`]. Zero means no
    /// limit. At most `i32::MAX` milliseconds (24 days); under a millisecond counts as
    /// one.
    pub fn statement_timeout(mut self, timeout: Duration) -> PostgresOptions {
        self.statement_timeout = timeout;
        self
    }

    /// How long connecting and logging in may take, unless the connection string
    /// sets `connect_timeout`.
    pub fn connect_timeout(mut self, timeout: Duration) -> PostgresOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Connect with TLS (rustls). The connection string's `sslmode` decides what
    /// happens when the server does not offer TLS: `prefer` (the default) goes on
    /// without it, `require` fails; `disable` never uses TLS.
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls(mut self, tls: crate::PostgresTls) -> PostgresOptions {
        self.tls = Some(tls);
        self
    }

    /// Connect through an SSH tunnel: every query opens a [`crate::tunnel::Tunnel`]
    /// to the connection string's host and port *as the SSH server sees them*, and
    /// the connection goes through it (TLS, when set, still checks the database's
    /// own host name). The connection string must name exactly one host.
    #[cfg(feature = "ssh")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
    pub fn ssh_tunnel(mut self, ssh: crate::tunnel::SshConfig) -> PostgresOptions {
        self.ssh = Some(ssh);
        self
    }
}

impl Default for PostgresOptions {
    fn default() -> Self {
        PostgresOptions::new()
    }
}

impl fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("PostgresOptions");
        s.field("password", &self.password.as_ref().map(|_| Redacted))
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "tls")]
        s.field("tls", &self.tls.is_some());
        #[cfg(feature = "ssh")]
        s.field("ssh", &self.ssh);
        s.finish()
    }
}

/// Stands in for a password in `Debug` output.
struct Redacted;

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// A PostgreSQL database as a reverse-ETL source.
///
/// Every [`Source::query`] opens its own connection, starts a read-only transaction
/// (`BEGIN TRANSACTION READ ONLY`) with the statement timeout set for it (`SET LOCAL
/// statement_timeout`), prepares the query, and streams its rows in the binary wire
/// format; the connection closes when the stream ends or is dropped. Two queries never
/// share a connection or a transaction, so a source can serve several syncs at once.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cdp_source::{PostgresOptions, PostgresSource, Source};
///
/// let password = std::env::var("WAREHOUSE_PASSWORD")?;
/// let source = PostgresSource::new(
///     "warehouse",
///     "postgres://reverse_etl@db.internal:5432/analytics",
///     PostgresOptions::new().password(password),
/// )?;
/// let mut rows = source.query("SELECT id AS \"userId\", email FROM users").await?;
/// while let Some(row) = rows.next().await {
///     let values = row?;
///     // map the values into a call ...
/// #   let _ = values;
/// }
/// # Ok(())
/// # }
/// ```
pub struct PostgresSource {
    context: ErrorContext,
    config: tokio_postgres::Config,
    target: String,
    connect_timeout: Duration,
    begin: String,
    has_password: bool,
    #[cfg(feature = "tls")]
    tls: Option<crate::PostgresTls>,
    #[cfg(feature = "ssh")]
    ssh: Option<SshRoute>,
}

/// The SSH tunnel a source connects through, and the database as the SSH server sees
/// it.
#[cfg(feature = "ssh")]
#[derive(Debug, Clone)]
struct SshRoute {
    config: crate::tunnel::SshConfig,
    host: String,
    port: u16,
}

impl PostgresSource {
    /// A source called `name` (used in errors and logs) for the database that
    /// `connection` names: a URL (`postgres://user@host:5432/database?sslmode=prefer`)
    /// or `key=value` pairs (`host=localhost port=5432 user=etl dbname=analytics`), as
    /// libpq accepts them. Nothing connects yet.
    ///
    /// Fails with [`SourceError::Config`] for an empty name, a malformed connection
    /// string, a statement timeout over 24 days, or `sslmode=require` without TLS.
    pub fn new(
        name: impl Into<String>,
        connection: &str,
        options: PostgresOptions,
    ) -> Result<PostgresSource, SourceError> {
        let name: String = name.into();
        let config_error = |reason: String| SourceError::Config { source_name: name.clone(), reason };
        if name.is_empty() {
            return Err(config_error("a source needs a name".to_owned()));
        }
        let mut config: tokio_postgres::Config = connection
            .parse()
            .map_err(|e: tokio_postgres::Error| config_error(connection_string_problem(&with_causes(&e))))?;
        if let Some(password) = &options.password {
            config.password(password);
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        let connect_timeout = match config.get_connect_timeout() {
            Some(t) => *t,
            None => {
                config.connect_timeout(options.connect_timeout);
                options.connect_timeout
            }
        };
        let timeout_ms = statement_timeout_millis(options.statement_timeout).ok_or_else(|| {
            config_error(format!(
                "the statement timeout of {} is over the server's limit of {} milliseconds",
                crate::error::format_duration(options.statement_timeout),
                i32::MAX
            ))
        })?;
        #[cfg(feature = "tls")]
        let has_tls = options.tls.is_some();
        #[cfg(not(feature = "tls"))]
        let has_tls = false;
        if config.get_ssl_mode() == SslMode::Require && !has_tls {
            return Err(config_error(if cfg!(feature = "tls") {
                "sslmode=require needs TLS: set PostgresOptions::tls".to_owned()
            } else {
                "sslmode=require needs TLS, and cdp-source was built without its `tls` feature".to_owned()
            }));
        }
        let has_password = config.get_password().is_some();
        #[cfg(feature = "ssh")]
        let ssh = match options.ssh {
            Some(ssh) => Some(ssh_route(&name, &config, ssh)?),
            None => None,
        };
        #[allow(unused_mut)]
        let mut target = describe_target(&config);
        #[cfg(feature = "ssh")]
        if let Some(route) = &ssh {
            target.push_str(&format!(" via SSH {}", route.config));
        }
        Ok(PostgresSource {
            target,
            context: ErrorContext { name: name.into(), statement_timeout: options.statement_timeout },
            config,
            connect_timeout,
            begin: format!("BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = {timeout_ms}"),
            has_password,
            #[cfg(feature = "tls")]
            tls: options.tls,
            #[cfg(feature = "ssh")]
            ssh,
        })
    }

    /// What the source connects to, as errors show it: `host:port/database as user`.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The statement timeout each query runs under (zero: none).
    pub fn statement_timeout(&self) -> Duration {
        self.context.statement_timeout
    }

    /// Opens a connection and spawns its driver task.
    async fn connect(&self) -> Result<Connection, SourceError> {
        #[cfg(feature = "ssh")]
        if let Some(route) = &self.ssh {
            return self.connect_through(route).await;
        }
        let connect = async {
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.tls {
                let (client, connection) = self.config.connect(tls.connector()).await?;
                let task = self.spawn_connection(connection);
                return Ok(Connection::direct(client, task));
            }
            let (client, connection) = self.config.connect(NoTls).await?;
            let task = self.spawn_connection(connection);
            Ok::<_, tokio_postgres::Error>(Connection::direct(client, task))
        };
        tracing::debug!(source = %self.context.name, target = %self.target, "connecting");
        self.timed_connect(connect).await
    }

    /// Runs `connect` within the connect timeout, translating its errors.
    async fn timed_connect(
        &self,
        connect: impl std::future::Future<Output = Result<Connection, tokio_postgres::Error>>,
    ) -> Result<Connection, SourceError> {
        match tokio::time::timeout(self.connect_timeout + Duration::from_secs(1), connect).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(e)) => Err(self.connect_error(e)),
            Err(_) => Err(SourceError::Connect {
                source_name: self.context.name.to_string(),
                target: self.target.clone(),
                reason: format!(
                    "no answer within the connect timeout of {}",
                    crate::error::format_duration(self.connect_timeout)
                ),
                source: None,
            }),
        }
    }

    /// A failed connection attempt: a refused login ([`SourceError::Login`]) or
    /// another connection failure.
    fn connect_error(&self, e: tokio_postgres::Error) -> SourceError {
        let (source_name, target, reason) =
            (self.context.name.to_string(), self.target.clone(), describe(&e).1);
        if e.code().is_some_and(|code| code.code().starts_with("28")) {
            SourceError::Login { source_name, target, reason, source: Some(Box::new(e)) }
        } else {
            SourceError::Connect { source_name, target, reason, source: Some(Box::new(e)) }
        }
    }

    /// Opens an SSH tunnel, then a connection through it.
    #[cfg(feature = "ssh")]
    async fn connect_through(&self, route: &SshRoute) -> Result<Connection, SourceError> {
        tracing::debug!(source = %self.context.name, target = %self.target, "connecting through SSH");
        let tunnel = crate::tunnel::Tunnel::open(&route.config, &route.host, route.port)
            .await
            .map_err(|error| error.for_source(&*self.context.name))?;
        let tunnel = Arc::new(tunnel);
        let stream =
            tokio::net::TcpStream::connect(tunnel.local_addr()).await.map_err(|e| SourceError::Connect {
                source_name: self.context.name.to_string(),
                target: self.target.clone(),
                reason: format!("cannot connect to the SSH tunnel's local port {}: {e}", tunnel.local_addr()),
                source: Some(Box::new(e)),
            })?;
        let _ = stream.set_nodelay(true);
        #[cfg(feature = "tls")]
        if let Some(tls) = &self.tls {
            use tokio_postgres::tls::MakeTlsConnect;
            // TLS checks the database's own name, not the tunnel's local address (a
            // name rustls cannot use fails when the handshake starts).
            let Ok(tls) =
                MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(&mut tls.connector(), &route.host);
            let connect = async {
                let (client, connection) = self.config.connect_raw(stream, tls).await?;
                let task = self.spawn_connection(connection);
                Ok(Connection::tunnelled(client, task, tunnel.clone()))
            };
            return self.timed_connect(connect).await;
        }
        let connect = async {
            let (client, connection) = self.config.connect_raw(stream, NoTls).await?;
            let task = self.spawn_connection(connection);
            Ok(Connection::tunnelled(client, task, tunnel.clone()))
        };
        self.timed_connect(connect).await
    }

    /// Runs the connection's driver until the client is dropped.
    fn spawn_connection<F>(&self, connection: F) -> JoinHandle<()>
    where
        F: std::future::Future<Output = Result<(), tokio_postgres::Error>> + Send + 'static,
    {
        let name = self.context.name.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(source = %name, error = %e, "connection closed with an error");
            }
        })
    }

    /// Cancels the query running on `client`'s connection, in the background.
    fn canceller(&self, client: &Client) -> Canceller {
        Canceller {
            token: client.cancel_token(),
            #[cfg(feature = "tls")]
            tls: self.tls.clone(),
            #[cfg(feature = "ssh")]
            tunnel: None,
        }
    }
}

#[async_trait]
impl Source for PostgresSource {
    fn name(&self) -> &str {
        &self.context.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::PostgreSQL
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        let connection = self.connect().await?;
        #[cfg(feature = "ssh")]
        let tunnel = connection.tunnel.clone();
        let Connection { client, task, .. } = connection;
        let failed = |e: tokio_postgres::Error| {
            #[allow(unused_mut)]
            let mut error = self.context.error(e, 0);
            #[cfg(feature = "ssh")]
            crate::tunnel::note_tunnel(&mut error, tunnel.as_deref());
            error
        };
        client.batch_execute(&self.begin).await.map_err(failed)?;
        let statement = client.prepare(sql).await.map_err(failed)?;
        let mut decoders = Vec::with_capacity(statement.columns().len());
        let mut type_names = Vec::with_capacity(statement.columns().len());
        for (index, column) in statement.columns().iter().enumerate() {
            let decoder = Decoder::for_type(column.type_(), column.name()).map_err(|unsupported| {
                SourceError::UnsupportedType {
                    source_name: self.context.name.to_string(),
                    column: column.name().to_owned(),
                    column_index: index,
                    type_name: column.type_().name().to_owned(),
                    hint: unsupported.hint,
                }
            })?;
            decoders.push(decoder);
            type_names.push(column.type_().name().to_owned());
        }
        let columns = Columns::new(statement.columns().iter().map(|c| c.name()));
        let no_params = std::iter::empty::<&(dyn ToSql + Sync)>();
        let rows = client.query_raw(&statement, no_params).await.map_err(failed)?;
        tracing::debug!(source = %self.context.name, columns = columns.len(), "query started");
        #[allow(unused_mut)]
        let mut canceller = self.canceller(&client);
        #[cfg(feature = "ssh")]
        if let (Some(tunnel), Some(route)) = (&tunnel, &self.ssh) {
            canceller.tunnel = Some((tunnel.clone(), route.host.clone()));
        }
        let rows = PostgresRows {
            canceller: Some(canceller),
            #[cfg(feature = "ssh")]
            tunnel,
            client: Some(client),
            connection: Some(task),
            rows: Box::pin(rows),
            decoding: Arc::new(RowDecoding {
                decoders,
                type_names,
                columns: columns.clone(),
                source_name: self.context.name.clone(),
            }),
            context: self.context.clone(),
            rows_read: 0,
            done: false,
            values: Vec::new(),
            decimals: Decimals::default(),
        };
        Ok(RowStream::in_place(self.context.name.clone(), columns, rows))
    }

    /// Prepares `sql` in a read-only transaction on a connection of its own (the
    /// statement's description carries its columns) and closes the connection; the
    /// query never runs.
    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let connection = self.connect().await?;
        #[cfg(feature = "ssh")]
        let tunnel = connection.tunnel.clone();
        let Connection { client, task, .. } = connection;
        let failed = |e: tokio_postgres::Error| {
            #[allow(unused_mut)]
            let mut error = self.context.error(e, 0);
            #[cfg(feature = "ssh")]
            crate::tunnel::note_tunnel(&mut error, tunnel.as_deref());
            error
        };
        client.batch_execute(&self.begin).await.map_err(failed)?;
        let statement = client.prepare(sql).await.map_err(failed)?;
        let names = statement.columns().iter().map(|c| c.name().to_owned()).collect();
        // Closing the client ends the connection (and its transaction); its driver
        // task then finishes.
        drop(statement);
        drop(client);
        let _ = task.await;
        Ok(names)
    }
}

impl fmt::Debug for PostgresSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("PostgresSource");
        s.field("name", &self.context.name)
            .field("target", &self.target)
            .field("password", &self.has_password.then_some(Redacted))
            .field("statement_timeout", &self.context.statement_timeout)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "tls")]
        s.field("tls", &self.tls.is_some());
        s.finish()
    }
}

impl fmt::Display for PostgresSource {
    /// `PostgreSQL source "warehouse" (db.internal:5432/analytics as etl)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PostgreSQL source `{}` ({})", self.context.name, self.target)
    }
}

/// The source's name and settings, for building errors on either side of the stream.
#[derive(Debug, Clone)]
struct ErrorContext {
    name: Arc<str>,
    statement_timeout: Duration,
}

impl ErrorContext {
    /// Translates a driver error after `rows_read` rows.
    fn error(&self, e: tokio_postgres::Error, rows_read: u64) -> SourceError {
        let source_name = self.name.to_string();
        let (code, reason) = describe(&e);
        if e.code() == Some(&SqlState::QUERY_CANCELED)
            && e.as_db_error().is_some_and(|db| db.message().contains("statement timeout"))
        {
            return SourceError::Timeout {
                source_name,
                timeout: self.statement_timeout,
                rows_read,
                source: Some(Box::new(e)),
            };
        }
        let is_io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if code.is_none() && (e.is_closed() || is_io) {
            return SourceError::Connection { source_name, reason, rows_read, source: Some(Box::new(e)) };
        }
        SourceError::Query {
            source_name,
            code,
            reason,
            rows_read,
            query_id: None,
            source: Some(Box::new(e) as BoxError),
        }
    }
}

/// The SQLSTATE and a readable message: `ERROR 42P01: relation "x" does not exist (at
/// character 15)`, with the server's detail and hint; the driver's text for errors
/// that do not come from the server.
fn describe(e: &tokio_postgres::Error) -> (Option<String>, String) {
    let Some(db) = e.as_db_error() else {
        return (None, with_causes(e));
    };
    let code = db.code().code().to_owned();
    let mut reason = format!("{} {code}: {}", db.severity(), db.message());
    if let Some(tokio_postgres::error::ErrorPosition::Original(at)) = db.position() {
        reason.push_str(&format!(" (at character {at})"));
    }
    if let Some(detail) = db.detail() {
        reason.push_str(&format!("; DETAIL: {detail}"));
    }
    if let Some(hint) = db.hint() {
        reason.push_str(&format!("; HINT: {hint}"));
    }
    (Some(code), reason)
}

/// An error's message followed by those of its causes: `error connecting to server:
/// Connection refused (os error 111)`.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// What is wrong with a connection string, without quoting it (it may hold a
/// password): the driver's message when it only names an option, else a general one.
fn connection_string_problem(driver_message: &str) -> String {
    let message = driver_message.strip_prefix("invalid connection string: ").unwrap_or(driver_message);
    if message.starts_with("invalid value for option") || message.starts_with("unknown option") {
        format!("connection string: {message}")
    } else {
        "the connection string is malformed: expected a postgres:// URL or key=value pairs".to_owned()
    }
}

/// `host:port/database as user`, from the parsed configuration (never the password).
fn describe_target(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = if config.get_hosts().is_empty() {
        vec!["localhost".to_owned()]
    } else {
        config
            .get_hosts()
            .iter()
            .map(|host| match host {
                Host::Tcp(name) => name.clone(),
                #[cfg(unix)]
                Host::Unix(path) => path.display().to_string(),
            })
            .collect()
    };
    let hosts: Vec<String> = hosts
        .into_iter()
        .enumerate()
        .map(|(i, host)| {
            let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
            format!("{host}:{port}")
        })
        .collect();
    let user = config.get_user().unwrap_or("(default user)");
    let database = config.get_dbname().or(config.get_user()).unwrap_or("");
    format!("{}/{database} as {user}", hosts.join(","))
}

/// The database an SSH tunnel leads to: the connection string's one TCP host and its
/// port, as the SSH server sees them; the key is checked now.
#[cfg(feature = "ssh")]
fn ssh_route(
    name: &str,
    config: &tokio_postgres::Config,
    ssh: crate::tunnel::SshConfig,
) -> Result<SshRoute, SourceError> {
    let bad = |reason: String| SourceError::Config { source_name: name.to_owned(), reason };
    let host = match config.get_hosts() {
        [Host::Tcp(host)] => host.clone(),
        [] => "localhost".to_owned(),
        [_] => return Err(bad("an SSH tunnel needs a TCP host, not a Unix socket".to_owned())),
        _ => {
            return Err(bad(
                "an SSH tunnel leads to one host: the connection string names several".to_owned()
            ));
        }
    };
    let port = match config.get_ports() {
        [] => 5432,
        [port] => *port,
        _ => {
            return Err(bad(
                "an SSH tunnel leads to one port: the connection string names several".to_owned()
            ));
        }
    };
    ssh.key_fingerprint().map_err(|error| error.for_source(name))?;
    Ok(SshRoute { config: ssh, host, port })
}

/// The statement timeout in whole milliseconds, rounded up, if the server accepts it.
fn statement_timeout_millis(timeout: Duration) -> Option<i32> {
    let ms = timeout.as_nanos().div_ceil(1_000_000);
    i32::try_from(ms).ok()
}

/// An open connection: the client, and the task that drives its socket.
struct Connection {
    client: Client,
    task: JoinHandle<()>,
    /// The SSH tunnel the connection goes through, kept open as long as it is used.
    #[cfg(feature = "ssh")]
    tunnel: Option<Arc<crate::tunnel::Tunnel>>,
}

impl Connection {
    fn direct(client: Client, task: JoinHandle<()>) -> Connection {
        Connection {
            client,
            task,
            #[cfg(feature = "ssh")]
            tunnel: None,
        }
    }

    #[cfg(feature = "ssh")]
    fn tunnelled(client: Client, task: JoinHandle<()>, tunnel: Arc<crate::tunnel::Tunnel>) -> Connection {
        Connection { client, task, tunnel: Some(tunnel) }
    }
}

/// Cancels a running query (a cancel request on a connection of its own).
struct Canceller {
    token: tokio_postgres::CancelToken,
    #[cfg(feature = "tls")]
    tls: Option<crate::PostgresTls>,
    /// The SSH tunnel to send the request through (kept open until it is sent), and
    /// the database's host name for TLS.
    #[cfg(feature = "ssh")]
    tunnel: Option<(Arc<crate::tunnel::Tunnel>, String)>,
}

impl Canceller {
    /// Sends the cancel request from a task, when there is a runtime to run it.
    fn cancel(self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            #[cfg(feature = "ssh")]
            if let Some((tunnel, _host)) = &self.tunnel {
                let Ok(stream) = tokio::net::TcpStream::connect(tunnel.local_addr()).await else { return };
                #[cfg(feature = "tls")]
                if let Some(tls) = &self.tls {
                    use tokio_postgres::tls::MakeTlsConnect;
                    let Ok(tls) = MakeTlsConnect::<tokio::net::TcpStream>::make_tls_connect(
                        &mut tls.connector(),
                        _host,
                    );
                    let _ = self.token.cancel_query_raw(stream, tls).await;
                    return;
                }
                let _ = self.token.cancel_query_raw(stream, NoTls).await;
                return;
            }
            #[cfg(feature = "tls")]
            if let Some(tls) = &self.tls {
                let _ = self.token.cancel_query(tls.connector()).await;
                return;
            }
            let _ = self.token.cancel_query(NoTls).await;
        });
    }
}

/// The rows of one PostgreSQL query, decoded as they arrive.
struct PostgresRows {
    /// Keeps the connection open while rows are read; dropped at the end.
    client: Option<Client>,
    /// The connection's driver task: aborted (closing the socket) when the stream is
    /// dropped before its end.
    connection: Option<JoinHandle<()>>,
    /// Cancels the query when the stream is dropped before its end.
    canceller: Option<Canceller>,
    /// The SSH tunnel the connection goes through; closed at the end.
    #[cfg(feature = "ssh")]
    tunnel: Option<Arc<crate::tunnel::Tunnel>>,
    rows: Pin<Box<tokio_postgres::RowStream>>,
    /// How the rows decode, shared with the batches read ahead.
    decoding: Arc<RowDecoding>,
    context: ErrorContext,
    rows_read: u64,
    done: bool,
    /// The values of the row being lent, emptied between rows (kept for its
    /// allocation).
    values: Vec<Value<'static>>,
    /// The text of the row's `numeric` values, which its values borrow.
    decimals: Decimals,
}

/// The decimal text of one row's `numeric` columns, written into one buffer kept
/// from row to row (so that a decimal costs no allocation of its own); the row's
/// [`Value::Decimal`]s borrow it.
#[derive(Debug, Default)]
struct Decimals {
    /// The text of every numeric value of the row, one after the other.
    text: String,
    /// For each numeric column in column order: where its text is in `text`, or why
    /// its value is not a numeric (a NULL has an empty span).
    spans: Vec<Result<std::ops::Range<usize>, String>>,
}

/// How the rows of one result decode: a decoder per column, and what a row error
/// names.
struct RowDecoding {
    decoders: Vec<Decoder>,
    type_names: Vec<String>,
    columns: Columns,
    source_name: Arc<str>,
}

impl RowDecoding {
    /// Writes the decimal text of the `numeric` columns of `row` into `decimals`,
    /// for [`RowDecoding::decode`] to borrow.
    fn write_decimals(&self, row: &tokio_postgres::Row, decimals: &mut Decimals) {
        decimals.text.clear();
        decimals.spans.clear();
        for (index, decoder) in self.decoders.iter().enumerate() {
            if !matches!(decoder, Decoder::Numeric) {
                continue;
            }
            let start = decimals.text.len();
            let span = match row.try_get::<_, RawField<'_>>(index) {
                Ok(RawField(Some(raw))) => {
                    write_numeric(raw, &mut decimals.text).map(|()| start..decimals.text.len())
                }
                // NULL; a field that cannot be read is reported by `decode`.
                _ => Ok(start..start),
            };
            decimals.spans.push(span);
        }
    }

    /// Converts one row, the `row`th of the result, into `values` (borrowing the
    /// row's buffer, and `decimals`, which [`RowDecoding::write_decimals`] filled from
    /// the same row); the first value that cannot be converted is the row's error.
    fn decode<'r>(
        &self,
        row: &'r tokio_postgres::Row,
        row_number: u64,
        decimals: &'r Decimals,
        values: &mut Vec<Value<'r>>,
    ) -> Result<(), SourceError> {
        let mut spans = decimals.spans.iter();
        for (index, decoder) in self.decoders.iter().enumerate() {
            let raw = row.try_get::<_, RawField<'_>>(index).map_err(|e| e.to_string());
            let value = match decoder {
                Decoder::Numeric => raw.and_then(|raw| match (raw.0, spans.next()) {
                    (None, _) => Ok(Value::Null),
                    (Some(_), Some(Ok(span))) => {
                        Ok(Value::Decimal(Cow::Borrowed(&decimals.text[span.clone()])))
                    }
                    (Some(_), Some(Err(reason))) => Err(reason.clone()),
                    // Not written by write_decimals: decode it here.
                    (Some(raw), None) => decoder.decode(Some(raw)),
                }),
                _ => raw.and_then(|raw| decoder.decode(raw.0)),
            };
            match value {
                Ok(value) => values.push(value),
                Err(reason) => {
                    return Err(SourceError::Value {
                        source_name: self.source_name.to_string(),
                        row: row_number,
                        column: self.columns.name(index).unwrap_or_default().to_owned(),
                        column_index: index,
                        type_name: self.type_names.get(index).cloned().unwrap_or_default(),
                        reason,
                    });
                }
            }
        }
        Ok(())
    }
}

/// Rows of a PostgreSQL result read ahead, decoded where they are visited.
struct PostgresBatch {
    rows: Vec<tokio_postgres::Row>,
    /// The error that ended the query after these rows.
    fatal: Option<SourceError>,
    decoding: Arc<RowDecoding>,
}

impl RawRows for PostgresBatch {
    fn rows(&self) -> usize {
        self.rows.len()
    }

    fn ends_with_error(&self) -> bool {
        self.fatal.is_some()
    }

    fn visit(self: Box<Self>, first_row: u64, visit: &mut dyn FnMut(RowRef<'_, '_>)) {
        let mut kept: Vec<Value<'static>> = Vec::with_capacity(self.decoding.decoders.len());
        let mut decimals = Decimals::default();
        for (row, row_number) in self.rows.iter().zip(first_row + 1..) {
            self.decoding.write_decimals(row, &mut decimals);
            let mut values = reuse(std::mem::take(&mut kept));
            match self.decoding.decode(row, row_number, &decimals, &mut values) {
                Ok(()) => visit(Ok(&values)),
                Err(e) => visit(Err(e)),
            }
            kept = reuse(values);
        }
        if let Some(fatal) = self.fatal {
            visit(Err(fatal));
        }
    }
}

impl PostgresRows {
    /// The error that ends the query, from a driver error.
    fn fatal(&mut self, e: tokio_postgres::Error) -> SourceError {
        #[allow(unused_mut)]
        let mut error = self.context.error(e, self.rows_read);
        #[cfg(feature = "ssh")]
        crate::tunnel::note_tunnel(&mut error, self.tunnel.as_deref());
        self.finish();
        error
    }

    /// The query is over: close the connection normally.
    fn finish(&mut self) {
        self.done = true;
        self.client = None;
        self.connection = None;
        self.canceller = None;
        #[cfg(feature = "ssh")]
        {
            self.tunnel = None;
        }
    }
}

impl Drop for PostgresRows {
    /// Dropped before the end: without this the driver would read and discard every
    /// remaining row. Cancel the query on the server, and close the socket now.
    fn drop(&mut self) {
        if self.done {
            return;
        }
        if let Some(canceller) = self.canceller.take() {
            canceller.cancel();
        }
        if let Some(connection) = self.connection.take() {
            connection.abort();
        }
        tracing::debug!(source = %self.context.name, rows = self.rows_read, "query cancelled");
    }
}

impl RowsInPlace for PostgresRows {
    fn poll_row(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        visit: &mut dyn FnMut(RowRef<'_, '_>),
    ) -> Poll<Option<()>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match std::task::ready!(this.rows.as_mut().poll_next(cx)) {
            Some(Ok(row)) => {
                this.rows_read += 1;
                this.decoding.write_decimals(&row, &mut this.decimals);
                let mut values = reuse(std::mem::take(&mut this.values));
                match this.decoding.decode(&row, this.rows_read, &this.decimals, &mut values) {
                    Ok(()) => visit(Ok(&values)),
                    Err(e) => visit(Err(e)),
                }
                this.values = reuse(values);
                Poll::Ready(Some(()))
            }
            Some(Err(e)) => {
                visit(Err(this.fatal(e)));
                Poll::Ready(Some(()))
            }
            None => {
                tracing::debug!(source = %this.context.name, rows = this.rows_read, "query finished");
                this.finish();
                Poll::Ready(None)
            }
        }
    }

    fn poll_batch(mut self: Pin<&mut Self>, cx: &mut Context<'_>, max: usize) -> Poll<Option<RowBatch>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let mut rows = Vec::new();
        let mut fatal = None;
        while rows.len() < max {
            match this.rows.as_mut().poll_next(cx) {
                Poll::Pending if rows.is_empty() => return Poll::Pending,
                Poll::Pending => break,
                Poll::Ready(Some(Ok(row))) => {
                    this.rows_read += 1;
                    rows.push(row);
                }
                Poll::Ready(Some(Err(e))) => {
                    fatal = Some(this.fatal(e));
                    break;
                }
                Poll::Ready(None) => {
                    tracing::debug!(source = %this.context.name, rows = this.rows_read, "query finished");
                    this.finish();
                    break;
                }
            }
        }
        if rows.is_empty() && fatal.is_none() {
            return Poll::Ready(None);
        }
        Poll::Ready(Some(RowBatch::raw(PostgresBatch { rows, fatal, decoding: this.decoding.clone() })))
    }
}

/// An emptied vector of values, its allocation kept for values of another lifetime
/// (collecting from an empty iterator of a type of the same size reuses it).
fn reuse<'a>(mut values: Vec<Value<'_>>) -> Vec<Value<'a>> {
    values.clear();
    values.into_iter().map(|_| Value::Null).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_never_show_the_password() {
        let source = PostgresSource::new(
            "pg",
            "postgres://etl:url-secret@db.internal:6543/analytics",
            PostgresOptions::new().password("option-secret"),
        )
        .unwrap();
        assert_eq!(source.target(), "db.internal:6543/analytics as etl");
        for text in [format!("{source:?}"), source.to_string()] {
            assert!(!text.contains("secret"), "{text}");
        }
        let source = PostgresSource::new(
            "pg",
            "host=a,b port=1,2 user=etl password=kv-secret dbname=x",
            PostgresOptions::new(),
        )
        .unwrap();
        assert_eq!(source.target(), "a:1,b:2/x as etl");
        assert!(!format!("{source:?}").contains("kv-secret"));
        assert!(format!("{source:?}").contains("<redacted>"));
    }

    #[test]
    fn malformed_connection_strings_are_config_errors_without_the_string() {
        for connection in [
            "host=db password='unterminated-secret",
            "postgres://etl%FF:url-secret@db/x",
            "host=db port=notaport password=secret",
            "host=db sslmode=sometimes password=secret",
            "postgres://db/x?bogus=secret",
        ] {
            let error = PostgresSource::new("pg", connection, PostgresOptions::new()).unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, SourceError::Config { .. }), "{text}");
            assert!(text.starts_with("source `pg`: invalid configuration: "), "{text}");
            assert!(!text.contains("secret") || text.contains("unknown option `bogus`"), "{text}");
            assert!(!format!("{error:?}").contains("-secret"), "{error:?}");
        }
        let error = PostgresSource::new("pg", "host=db port=notaport", PostgresOptions::new()).unwrap_err();
        assert_eq!(
            error.to_string(),
            "source `pg`: invalid configuration: connection string: invalid value for option `port`"
        );
    }

    #[test]
    fn settings_are_checked() {
        let too_long = PostgresOptions::new().statement_timeout(Duration::from_secs(30 * 86_400));
        assert!(matches!(PostgresSource::new("pg", "host=db", too_long), Err(SourceError::Config { .. })));
        assert!(matches!(
            PostgresSource::new("", "host=db", PostgresOptions::new()),
            Err(SourceError::Config { .. })
        ));
        #[cfg(not(feature = "tls"))]
        assert!(
            PostgresSource::new("pg", "host=db sslmode=require", PostgresOptions::new())
                .unwrap_err()
                .to_string()
                .contains("`tls` feature")
        );
        assert_eq!(statement_timeout_millis(Duration::from_micros(1)), Some(1));
        assert_eq!(statement_timeout_millis(Duration::ZERO), Some(0));
        let source = PostgresSource::new("pg", "host=db", PostgresOptions::new()).unwrap();
        assert_eq!(source.statement_timeout(), DEFAULT_STATEMENT_TIMEOUT);
        assert_eq!(source.begin, "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = 600000");
    }
}
