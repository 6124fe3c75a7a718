//! [`MysqlSource`]: queries a MySQL or MariaDB server with mysql_async, each query in
//! its own connection and read-only transaction, and streams the rows of the binary
//! protocol.

mod decode;

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use cdp_query::Dialect;
use cdp_rows::Columns;
use futures::Stream;
use mysql_async::prelude::{Query as _, Queryable as _, WithParams as _};
use mysql_async::{BinaryProtocol, Conn, Opts, OptsBuilder, ResultSetStream, Row};

use self::decode::{Decoder, type_name};
use crate::error::{BoxError, format_duration};
use crate::{DEFAULT_CONNECT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT, RowStream, Source, SourceError, Values};

/// The longest statement timeout a [`MysqlSource`] accepts: MySQL's
/// `max_execution_time` limit of `u32::MAX` milliseconds (49 days, 17 hours).
pub const MAX_MYSQL_STATEMENT_TIMEOUT: Duration = Duration::from_millis(u32::MAX as u64);
/// The shortest `net_write_timeout` a query runs under: the server's own default, 60
/// seconds (it is raised to the statement timeout when that is longer).
pub const MIN_MYSQL_NET_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The longest `net_write_timeout` the servers accept: a year, used when the statement
/// timeout is zero (no limit).
const MAX_NET_WRITE_TIMEOUT_SECS: u64 = 31_536_000;

/// MariaDB's error for a statement over `max_statement_time` (`ER_STATEMENT_TIMEOUT`).
const MARIADB_STATEMENT_TIMEOUT: u16 = 1969;
/// MySQL's error for a statement over `max_execution_time` (`ER_QUERY_TIMEOUT`).
const MYSQL_QUERY_TIMEOUT: u16 = 3024;
/// The server's last words on a connection it ends: `ER_SERVER_SHUTDOWN` (MySQL and
/// MariaDB), `ER_CONNECTION_KILLED` (MariaDB, after `KILL CONNECTION`).
const CONNECTION_ENDED: [u16; 2] = [1053, 1927];

/// Options for a [`MysqlSource`]: the password, timeouts and TLS.
///
/// ```
/// use std::time::Duration;
/// use cdp_source::MysqlOptions;
///
/// let options = MysqlOptions::new()
///     .password("s3cret") // in practice from an environment variable
///     .statement_timeout(Duration::from_secs(300))
///     .connect_timeout(Duration::from_secs(10));
/// assert!(!format!("{options:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct MysqlOptions {
    password: Option<String>,
    statement_timeout: Duration,
    connect_timeout: Duration,
    #[cfg(feature = "tls")]
    tls_roots_pem: Option<Vec<u8>>,
    #[cfg(feature = "ssh")]
    ssh: Option<crate::tunnel::SshConfig>,
}

impl MysqlOptions {
    /// The defaults: no password (unless the URL has one), a statement timeout of
    /// [`DEFAULT_STATEMENT_TIMEOUT`], a connect timeout of [`DEFAULT_CONNECT_TIMEOUT`].
    pub fn new() -> MysqlOptions {
        MysqlOptions {
            password: None,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            #[cfg(feature = "tls")]
            tls_roots_pem: None,
            #[cfg(feature = "ssh")]
            ssh: None,
        }
    }

    /// The password to log in with, given apart from the URL (read it from an
    /// environment variable, never from a configuration file). It replaces a password
    /// inside the URL. It never appears in `Debug`, `Display`, errors or logs.
    pub fn password(mut self, password: impl Into<String>) -> MysqlOptions {
        self.password = Some(password.into());
        self
    }

    /// How long one query may run (`max_statement_time` on MariaDB, to the
    /// microsecond; `max_execution_time` on MySQL, in milliseconds rounded up); then
    /// the server stops it and the stream ends with [`SourceError::Timeout`]. Zero
    /// means no limit. At most [`MAX_MYSQL_STATEMENT_TIMEOUT`]. The session's
    /// `net_write_timeout` is set at least as long (see [`MysqlSource`]).
    pub fn statement_timeout(mut self, timeout: Duration) -> MysqlOptions {
        self.statement_timeout = timeout;
        self
    }

    /// How long connecting and logging in may take.
    pub fn connect_timeout(mut self, timeout: Duration) -> MysqlOptions {
        self.connect_timeout = timeout;
        self
    }

    /// Connect with TLS (rustls, its `ring` provider), trusting only the certificate
    /// authorities in `pem` (one or more PEM `CERTIFICATE` blocks, e.g. the cloud
    /// provider's bundle). TLS is then required: a server that does not offer it is
    /// refused, and its certificate must chain to one of these roots and name the
    /// URL's host. Read when the source is built.
    ///
    /// ```
    /// use cdp_source::{MysqlOptions, MysqlSource};
    ///
    /// let pem = include_bytes!("../tests/data/test-ca.pem");
    /// let options = MysqlOptions::new().tls_root_certificates_pem(pem.to_vec());
    /// let source = MysqlSource::new("shop", "mysql://etl@db.example.com/shop", options)?;
    /// assert!(format!("{source:?}").contains("tls: true"));
    /// # Ok::<(), cdp_source::SourceError>(())
    /// ```
    #[cfg(feature = "tls")]
    #[cfg_attr(docsrs, doc(cfg(feature = "tls")))]
    pub fn tls_root_certificates_pem(mut self, pem: impl Into<Vec<u8>>) -> MysqlOptions {
        self.tls_roots_pem = Some(pem.into());
        self
    }

    /// Connect through an SSH tunnel: every query opens a [`crate::tunnel::Tunnel`]
    /// to the URL's host and port *as the SSH server sees them*, and the connection
    /// (and the `KILL CONNECTION` that ends a cancelled query) goes through it. TLS,
    /// when set, still checks the database's own host name. The URL must name a TCP
    /// host, not a Unix socket (`?socket=`). The key file is read when the source is
    /// built.
    ///
    /// ```no_run
    /// use cdp_source::tunnel::SshConfig;
    /// use cdp_source::{MysqlOptions, MysqlSource};
    ///
    /// let fingerprint = "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4";
    /// let ssh = SshConfig::new("bastion.example.com", "tunnel", "/etc/cdp/ssh_key", fingerprint)?;
    /// let options = MysqlOptions::new().ssh_tunnel(ssh);
    /// let source = MysqlSource::new("shop", "mysql://etl@db.internal:3306/shop", options)?;
    /// assert!(source.target().ends_with("via SSH tunnel@bastion.example.com:22"));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    #[cfg(feature = "ssh")]
    #[cfg_attr(docsrs, doc(cfg(feature = "ssh")))]
    pub fn ssh_tunnel(mut self, ssh: crate::tunnel::SshConfig) -> MysqlOptions {
        self.ssh = Some(ssh);
        self
    }
}

impl Default for MysqlOptions {
    fn default() -> Self {
        MysqlOptions::new()
    }
}

impl fmt::Debug for MysqlOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("MysqlOptions");
        s.field("password", &self.password.as_ref().map(|_| Redacted))
            .field("statement_timeout", &self.statement_timeout)
            .field("connect_timeout", &self.connect_timeout);
        #[cfg(feature = "tls")]
        s.field("tls", &self.tls_roots_pem.is_some());
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

/// Which server a connection reached: the session settings differ.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    /// MariaDB: `max_statement_time`, in seconds.
    MariaDb,
    /// MySQL (and servers that speak like it): `max_execution_time`, in milliseconds.
    MySql,
}

impl Flavour {
    /// The flavour a server's version string (`SELECT @@version`) names:
    /// `10.11.19-MariaDB-0+deb12u1` is MariaDB, `8.4.3` MySQL.
    pub(crate) fn from_version(version: &str) -> Flavour {
        if version.to_ascii_lowercase().contains("mariadb") { Flavour::MariaDb } else { Flavour::MySql }
    }
}

/// The statements that prepare a session for one query, in one round trip: the time
/// zone, the statement timeout, the network write timeout, and read-only for the
/// session (so a statement that commits implicitly cannot write either) and for the
/// transaction the query runs in.
pub(crate) fn session_setup(flavour: Flavour, statement_timeout: Duration) -> String {
    let timeout = match flavour {
        Flavour::MariaDb => {
            let (secs, micros) = (statement_timeout.as_secs(), statement_timeout.subsec_micros());
            let micros =
                if !statement_timeout.subsec_nanos().is_multiple_of(1000) { micros + 1 } else { micros };
            match (secs, micros) {
                (secs, 0) => format!("max_statement_time = {secs}"),
                (secs, 1_000_000) => format!("max_statement_time = {}", secs + 1),
                (secs, micros) => format!("max_statement_time = {secs}.{micros:06}"),
            }
        }
        Flavour::MySql => {
            format!("max_execution_time = {}", statement_timeout.as_nanos().div_ceil(1_000_000))
        }
    };
    format!(
        "SET time_zone = '+00:00', {timeout}, net_write_timeout = {}; \
         SET SESSION TRANSACTION READ ONLY; START TRANSACTION READ ONLY",
        net_write_timeout_secs(statement_timeout)
    )
}

/// The session's `net_write_timeout`: at least the statement timeout (whole seconds,
/// rounded up) and at least [`MIN_MYSQL_NET_WRITE_TIMEOUT`]; a year when there is no
/// statement timeout.
fn net_write_timeout_secs(statement_timeout: Duration) -> u64 {
    if statement_timeout.is_zero() {
        return MAX_NET_WRITE_TIMEOUT_SECS;
    }
    let secs = statement_timeout.as_nanos().div_ceil(1_000_000_000);
    u64::try_from(secs)
        .unwrap_or(MAX_NET_WRITE_TIMEOUT_SECS)
        .clamp(MIN_MYSQL_NET_WRITE_TIMEOUT.as_secs(), MAX_NET_WRITE_TIMEOUT_SECS)
}

/// A MySQL or MariaDB database as a reverse-ETL source.
///
/// Every [`Source::query`] opens its own connection and prepares the session in one
/// round trip: `SET time_zone = '+00:00'` (so `TIMESTAMP` values read as UTC
/// instants), the statement timeout (`max_statement_time` on MariaDB,
/// `max_execution_time` on MySQL: the flavour comes from the server's version
/// string), a `net_write_timeout` at least as long as the statement timeout (so a
/// reader that pauses longer than the server's default 60 seconds still gets its
/// rows), `SET SESSION TRANSACTION READ ONLY` and `START TRANSACTION READ ONLY`. Then
/// it prepares the query and streams its rows in the binary protocol; the connection
/// closes when the stream ends or is dropped.
///
/// ```no_run
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// use cdp_source::{MysqlOptions, MysqlSource, Source};
///
/// let password = std::env::var("SHOP_DB_PASSWORD")?;
/// let source = MysqlSource::new(
///     "shop",
///     "mysql://reverse_etl@db.internal:3306/shop",
///     MysqlOptions::new().password(password),
/// )?;
/// let mut rows = source.query("SELECT id AS userId, email FROM customers").await?;
/// while let Some(row) = rows.next().await {
///     let values = row?;
///     // map the values into a call ...
/// #   let _ = values;
/// }
/// # Ok(())
/// # }
/// ```
pub struct MysqlSource {
    context: ErrorContext,
    opts: Opts,
    target: String,
    connect_timeout: Duration,
    has_password: bool,
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

/// An open connection, the options it was opened with (through the tunnel, if any:
/// the `KILL CONNECTION` of a cancelled query takes the same way), and its tunnel.
struct Connected {
    conn: Conn,
    flavour: Flavour,
    opts: Opts,
    #[cfg(feature = "ssh")]
    tunnel: Option<Arc<crate::tunnel::Tunnel>>,
}

impl MysqlSource {
    /// A source called `name` (used in errors and logs) for the database that the URL
    /// `connection` names: `mysql://user@host:3306/database` (`mariadb://` is read the
    /// same), with mysql_async's URL parameters (`?socket=/run/mysqld/mysqld.sock`,
    /// `?tcp_keepalive=10000`, …). The connection goes where the URL says:
    /// mysql_async's `prefer_socket` (which would switch a connection to
    /// `localhost` over to the server's Unix socket) is off. Nothing connects yet.
    ///
    /// Fails with [`SourceError::Config`] for an empty name, a malformed URL (never
    /// quoted: it may hold a password), or a statement timeout over
    /// [`MAX_MYSQL_STATEMENT_TIMEOUT`].
    pub fn new(
        name: impl Into<String>,
        connection: &str,
        options: MysqlOptions,
    ) -> Result<MysqlSource, SourceError> {
        let name: String = name.into();
        let config_error = |reason: String| SourceError::Config { source_name: name.clone(), reason };
        if name.is_empty() {
            return Err(config_error("a source needs a name".to_owned()));
        }
        let url = match connection.strip_prefix("mariadb://") {
            Some(rest) => format!("mysql://{rest}"),
            None => connection.to_owned(),
        };
        let opts = Opts::from_url(&url).map_err(|e| config_error(url_problem(&e)))?;
        let mut builder = OptsBuilder::from_opts(opts).prefer_socket(false);
        if let Some(password) = &options.password {
            builder = builder.pass(Some(password.clone()));
        }
        #[cfg(feature = "tls")]
        if let Some(pem) = options.tls_roots_pem {
            builder = builder.ssl_opts(tls_opts(pem).map_err(config_error)?);
        }
        #[allow(unused_mut)]
        let mut opts = Opts::from(builder);
        #[cfg(feature = "ssh")]
        let ssh = match options.ssh {
            Some(ssh) => {
                let route = ssh_route(&name, &opts, ssh)?;
                // TLS checks the database's own name, not the tunnel's local address.
                if let Some(tls) = opts.ssl_opts().cloned() {
                    let tls = tls.with_danger_tls_hostname_override(Some(route.host.clone()));
                    opts = OptsBuilder::from_opts(opts).ssl_opts(tls).into();
                }
                Some(route)
            }
            None => None,
        };
        if options.statement_timeout > MAX_MYSQL_STATEMENT_TIMEOUT {
            return Err(config_error(format!(
                "the statement timeout of {} is over MySQL's limit of {} milliseconds",
                format_duration(options.statement_timeout),
                u32::MAX
            )));
        }
        #[allow(unused_mut)]
        let mut target = describe_target(&opts);
        #[cfg(feature = "ssh")]
        if let Some(route) = &ssh {
            target.push_str(&format!(" via SSH {}", route.config));
        }
        Ok(MysqlSource {
            target,
            has_password: opts.pass().is_some(),
            opts,
            context: ErrorContext { name: name.into(), statement_timeout: options.statement_timeout },
            connect_timeout: options.connect_timeout,
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

    /// Opens a connection (through a new SSH tunnel, when the source has one), learns
    /// the server's flavour and prepares the session.
    async fn connect(&self) -> Result<Connected, SourceError> {
        tracing::debug!(source = %self.context.name, target = %self.target, "connecting");
        #[cfg(feature = "ssh")]
        let (opts, tunnel) = match &self.ssh {
            Some(route) => {
                let tunnel = crate::tunnel::Tunnel::open(&route.config, &route.host, route.port)
                    .await
                    .map_err(|error| error.for_source(&*self.context.name))?;
                let opts: Opts = OptsBuilder::from_opts(self.opts.clone())
                    .ip_or_hostname(tunnel.local_addr().ip().to_string())
                    .tcp_port(tunnel.local_addr().port())
                    .into();
                (opts, Some(Arc::new(tunnel)))
            }
            None => (self.opts.clone(), None),
        };
        #[cfg(not(feature = "ssh"))]
        let opts = self.opts.clone();
        let connect_error = |reason: String, source: Option<BoxError>| SourceError::Connect {
            source_name: self.context.name.to_string(),
            target: self.target.clone(),
            reason,
            source,
        };
        let connect = async {
            let mut conn = Conn::new(opts.clone()).await?;
            let version: Option<String> = conn.query_first("SELECT @@version").await?;
            Ok::<_, mysql_async::Error>((conn, version.unwrap_or_default()))
        };
        let (mut conn, version) = match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(Ok(connected)) => connected,
            Ok(Err(e)) if is_refused_login(&e) => {
                return Err(SourceError::Login {
                    source_name: self.context.name.to_string(),
                    target: self.target.clone(),
                    reason: describe(&e).1,
                    source: Some(Box::new(e)),
                });
            }
            Ok(Err(e)) => return Err(connect_error(describe(&e).1, Some(Box::new(e)))),
            Err(_) => {
                return Err(connect_error(
                    format!(
                        "no answer within the connect timeout of {}",
                        format_duration(self.connect_timeout)
                    ),
                    None,
                ));
            }
        };
        let flavour = Flavour::from_version(&version);
        let setup = session_setup(flavour, self.context.statement_timeout);
        conn.query_drop(setup).await.map_err(|e| self.context.error(e, 0))?;
        Ok(Connected {
            conn,
            flavour,
            opts,
            #[cfg(feature = "ssh")]
            tunnel,
        })
    }

    /// Which of a prepared query's columns are MariaDB `JSON` columns. MariaDB's `JSON`
    /// is `LONGTEXT` with the column check `json_valid(column)`, and its result
    /// metadata (without the extended metadata mysql_async does not ask for) says only
    /// `LONGTEXT`; so for text columns that come straight from a table column, the
    /// table's column checks are looked up in `information_schema.CHECK_CONSTRAINTS`.
    /// A lookup that fails (a server without that table or its `LEVEL` column) finds
    /// none: the columns stay text.
    async fn mariadb_json_columns(&self, conn: &mut Conn, columns: &[mysql_async::Column]) -> Vec<bool> {
        let mut json = vec![false; columns.len()];
        let candidates: Vec<usize> =
            (0..columns.len()).filter(|&i| decode::may_be_mariadb_json(&columns[i])).collect();
        let mut schemas: Vec<String> =
            candidates.iter().map(|&i| columns[i].schema_str().into_owned()).collect();
        schemas.sort();
        schemas.dedup();
        for schema in schemas {
            let checks: Result<Vec<(String, String)>, _> = conn
                .exec(
                    "SELECT TABLE_NAME, CONSTRAINT_NAME FROM information_schema.CHECK_CONSTRAINTS \
                     WHERE CONSTRAINT_SCHEMA = ? AND LEVEL = 'Column' \
                     AND CHECK_CLAUSE = CONCAT('json_valid(`', REPLACE(CONSTRAINT_NAME, '`', '``'), '`)')",
                    (schema.as_str(),),
                )
                .await;
            match checks {
                Ok(checks) => {
                    for &i in &candidates {
                        let column = &columns[i];
                        json[i] |= column.schema_str() == schema
                            && checks.iter().any(|(table, name)| {
                                *table == column.org_table_str() && *name == column.org_name_str()
                            });
                    }
                }
                Err(e) => {
                    tracing::debug!(source = %self.context.name, error = %e, "cannot look up MariaDB JSON columns");
                }
            }
        }
        json
    }
}

#[async_trait]
impl Source for MysqlSource {
    fn name(&self) -> &str {
        &self.context.name
    }

    fn dialect(&self) -> Dialect {
        Dialect::MySQL
    }

    async fn query(&self, sql: &str) -> Result<RowStream, SourceError> {
        let Connected {
            mut conn,
            flavour,
            opts,
            #[cfg(feature = "ssh")]
            tunnel,
        } = self.connect().await?;
        let killer = Killer {
            opts,
            connection_id: conn.id(),
            timeout: self.connect_timeout,
            #[cfg(feature = "ssh")]
            tunnel: tunnel.clone(),
        };
        let statement = conn.prep(sql).await.map_err(|e| self.context.error(e, 0))?;
        let json_columns = match flavour {
            Flavour::MariaDb => self.mariadb_json_columns(&mut conn, &statement.columns()).await,
            Flavour::MySql => Vec::new(),
        };
        let result = statement.with(()).run(conn).await.map_err(|e| self.context.error(e, 0))?;
        let Some(rows) = result.stream_and_drop::<Row>().await.map_err(|e| self.context.error(e, 0))? else {
            // A statement without a result set (`DO 1`): no columns, no rows.
            return Ok(RowStream::new(
                self.context.name.clone(),
                Columns::new(Vec::<String>::new()),
                futures::stream::empty(),
            ));
        };
        let mut decoders = Vec::with_capacity(rows.columns_ref().len());
        let mut type_names = Vec::with_capacity(rows.columns_ref().len());
        for (index, column) in rows.columns_ref().iter().enumerate() {
            match Decoder::for_column(column) {
                Ok(Decoder::Text) if json_columns.get(index) == Some(&true) => decoders.push(Decoder::Json),
                Ok(decoder) => decoders.push(decoder),
                Err(unsupported) => {
                    let error = SourceError::UnsupportedType {
                        source_name: self.context.name.to_string(),
                        column: column.name_str().into_owned(),
                        column_index: index,
                        type_name: type_name(column),
                        hint: unsupported.hint,
                    };
                    killer.kill();
                    return Err(error);
                }
            }
            type_names.push(type_name(column));
        }
        let columns = Columns::new(rows.columns_ref().iter().map(|c| c.name_str().into_owned()));
        tracing::debug!(source = %self.context.name, columns = columns.len(), "query started");
        let rows = MysqlRows {
            rows: Some(rows),
            killer: Some(killer),
            decoders,
            type_names,
            columns: columns.clone(),
            context: self.context.clone(),
            rows_read: 0,
            #[cfg(feature = "ssh")]
            tunnel,
        };
        Ok(RowStream::new(self.context.name.clone(), columns, rows))
    }

    /// Prepares `sql` (the binary protocol's `COM_STMT_PREPARE`, whose answer
    /// describes the result's columns) on a connection of its own, with the session a
    /// query gets, then disconnects; the statement never runs.
    async fn columns(&self, sql: &str) -> Result<Vec<String>, SourceError> {
        let Connected {
            mut conn,
            #[cfg(feature = "ssh")]
            tunnel,
            ..
        } = self.connect().await?;
        let statement = conn.prep(sql).await.map_err(|e| self.context.error(e, 0))?;
        let names = statement.columns().iter().map(|c| c.name_str().into_owned()).collect();
        if let Err(e) = conn.disconnect().await {
            tracing::debug!(source = %self.context.name, error = %e, "disconnecting after a prepare failed");
        }
        #[cfg(feature = "ssh")]
        drop(tunnel);
        Ok(names)
    }
}

impl fmt::Debug for MysqlSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("MysqlSource");
        s.field("name", &self.context.name)
            .field("target", &self.target)
            .field("password", &self.has_password.then_some(Redacted))
            .field("statement_timeout", &self.context.statement_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("tls", &self.opts.ssl_opts().is_some());
        #[cfg(feature = "ssh")]
        s.field("ssh", &self.ssh.as_ref().map(|route| &route.config));
        s.finish()
    }
}

impl fmt::Display for MysqlSource {
    /// `MySQL source "shop" (db.internal:3306/shop as etl)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MySQL source `{}` ({})", self.context.name, self.target)
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
    fn error(&self, e: mysql_async::Error, rows_read: u64) -> SourceError {
        let source_name = self.name.to_string();
        let (code, reason) = describe(&e);
        match &e {
            mysql_async::Error::Server(server)
                if server.code == MARIADB_STATEMENT_TIMEOUT || server.code == MYSQL_QUERY_TIMEOUT =>
            {
                SourceError::Timeout {
                    source_name,
                    timeout: self.statement_timeout,
                    rows_read,
                    source: Some(Box::new(e)),
                }
            }
            mysql_async::Error::Server(server) if CONNECTION_ENDED.contains(&server.code) => {
                SourceError::Connection { source_name, reason, rows_read, source: Some(Box::new(e)) }
            }
            mysql_async::Error::Server(_) => SourceError::Query {
                source_name,
                code,
                reason,
                rows_read,
                query_id: None,
                source: Some(Box::new(e)),
            },
            mysql_async::Error::Io(_)
            | mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
                SourceError::Connection { source_name, reason, rows_read, source: Some(Box::new(e)) }
            }
            _ => SourceError::Query {
                source_name,
                code,
                reason,
                rows_read,
                query_id: None,
                source: Some(Box::new(e)),
            },
        }
    }
}

/// Whether the server refused the login: SQLSTATE class `28` (`1045` access denied,
/// `1698` no password given), no access to the database (`1044`), an expired password
/// (`1862`), a locked account (MySQL's `3118`, MariaDB's `4151`).
fn is_refused_login(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Server(server) => {
            server.state.starts_with("28") || [1044, 1862, 3118, 4151].contains(&server.code)
        }
        _ => false,
    }
}

/// The server's error number and its message as the `mysql` client prints it
/// (`ERROR 1792 (25006): Cannot execute statement in a READ ONLY transaction`); the
/// driver's text for errors that do not come from the server.
fn describe(e: &mysql_async::Error) -> (Option<String>, String) {
    match e {
        mysql_async::Error::Server(server) => (Some(server.code.to_string()), server.to_string()),
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => {
            use std::io::ErrorKind;
            let closed = matches!(
                io.kind(),
                ErrorKind::UnexpectedEof
                    | ErrorKind::ConnectionReset
                    | ErrorKind::ConnectionAborted
                    | ErrorKind::BrokenPipe
            ) || io.to_string() == "bytes remaining on stream"; // (tokio-util's EOF inside a packet)
            (None, if closed { format!("the server closed the connection ({io})") } else { io.to_string() })
        }
        // (TLS errors, when another crate turns on mysql_async's TLS.)
        #[allow(unreachable_patterns)]
        mysql_async::Error::Io(io) => (None, io.to_string()),
        mysql_async::Error::Driver(driver) => (None, driver.to_string()),
        mysql_async::Error::Url(url) => (None, url_problem(url)),
        mysql_async::Error::Other(other) => (None, other.to_string()),
    }
}

/// What is wrong with a URL, without quoting it (it may hold a password).
fn url_problem(e: &mysql_async::UrlError) -> String {
    use mysql_async::UrlError;
    match e {
        UrlError::UnsupportedScheme { scheme } => {
            format!("the URL's scheme is `{scheme}`: expected mysql://user@host:3306/database")
        }
        UrlError::UnknownParameter { param } => format!("the URL has an unknown parameter `{param}`"),
        UrlError::InvalidParamValue { param, .. } => {
            format!("the URL's parameter `{param}` has an invalid value")
        }
        UrlError::FeatureRequired { param, .. } => {
            format!("the URL's parameter `{param}` needs a feature cdp-source is built without (TLS)")
        }
        _ => "the URL is malformed: expected mysql://user@host:3306/database".to_owned(),
    }
}

/// mysql_async's TLS settings for the roots in `pem`, which must hold at least one
/// readable certificate. mysql_async builds its rustls configuration with the process's
/// default crypto provider: `ring` is installed as that default when there is none yet
/// (another crate of the build may turn on rustls' `aws-lc-rs` too, and rustls then
/// cannot choose by itself).
#[cfg(feature = "tls")]
fn tls_opts(pem: Vec<u8>) -> Result<mysql_async::SslOpts, String> {
    use rustls::pki_types::CertificateDer;
    use rustls::pki_types::pem::PemObject;

    let mut certificates = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        certificate.map_err(|e| format!("cannot read the PEM certificates: {e}"))?;
        certificates += 1;
    }
    if certificates == 0 {
        return Err("the TLS roots' PEM text holds no certificate".to_owned());
    }
    let _ = rustls::crypto::ring::default_provider().install_default();
    Ok(mysql_async::SslOpts::default().with_root_certs(vec![pem.into()]).with_disable_built_in_roots(true))
}

/// The database an SSH tunnel leads to: the URL's TCP host and port, as the SSH
/// server sees them; the key is checked now.
#[cfg(feature = "ssh")]
fn ssh_route(name: &str, opts: &Opts, ssh: crate::tunnel::SshConfig) -> Result<SshRoute, SourceError> {
    if opts.socket().is_some() {
        return Err(SourceError::Config {
            source_name: name.to_owned(),
            reason: "an SSH tunnel needs a TCP host, not a Unix socket (the URL's `socket` parameter)"
                .to_owned(),
        });
    }
    ssh.key_fingerprint().map_err(|error| error.for_source(name))?;
    Ok(SshRoute { host: opts.ip_or_hostname().to_owned(), port: opts.tcp_port(), config: ssh })
}

/// `host:port/database as user`, from the parsed options (never the password).
fn describe_target(opts: &Opts) -> String {
    let host = match opts.socket() {
        Some(socket) => socket.to_owned(),
        None => format!("{}:{}", opts.ip_or_hostname(), opts.tcp_port()),
    };
    let user = opts.user().unwrap_or("(default user)");
    format!("{host}/{} as {user}", opts.db_name().unwrap_or(""))
}

/// Ends a query whose stream was dropped before its end. Dropping mysql_async's
/// connection mid-result would have it read and discard every remaining row before it
/// closes; instead, a second connection tells the server to end the first one
/// (`KILL CONNECTION`, which a user may do to its own connections).
struct Killer {
    opts: Opts,
    connection_id: u32,
    timeout: Duration,
    /// The SSH tunnel the kill goes through, kept open until it is sent.
    #[cfg(feature = "ssh")]
    tunnel: Option<Arc<crate::tunnel::Tunnel>>,
}

impl Killer {
    /// Sends the kill from a task, when there is a runtime to run it.
    fn kill(self) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else { return };
        runtime.spawn(async move {
            let kill = async {
                let mut conn = Conn::new(self.opts).await?;
                conn.query_drop(format!("KILL CONNECTION {}", self.connection_id)).await?;
                conn.disconnect().await
            };
            if let Ok(Err(e)) = tokio::time::timeout(self.timeout, kill).await {
                tracing::debug!(error = %e, "could not end a cancelled query's connection");
            }
            #[cfg(feature = "ssh")]
            drop(self.tunnel);
        });
    }
}

/// The rows of one query, decoded as they arrive.
struct MysqlRows {
    /// The driver's stream; it owns the connection, and is dropped at the end.
    rows: Option<ResultSetStream<'static, 'static, 'static, Row, BinaryProtocol>>,
    /// Ends the connection when the stream is dropped before its end.
    killer: Option<Killer>,
    decoders: Vec<Decoder>,
    type_names: Vec<String>,
    columns: Columns,
    context: ErrorContext,
    rows_read: u64,
    /// The SSH tunnel the connection goes through: dropped after the driver's stream
    /// (fields drop in order), and closed then unless the killer still holds it.
    #[cfg(feature = "ssh")]
    tunnel: Option<Arc<crate::tunnel::Tunnel>>,
}

impl MysqlRows {
    /// Converts one row; the first value that cannot be converted is the row's error.
    fn decode(&self, row: Row) -> Result<Values, SourceError> {
        let mut values = Vec::with_capacity(self.decoders.len());
        for (index, (decoder, wire)) in self.decoders.iter().zip(row.unwrap_raw()).enumerate() {
            // (`None` is a value taken out of the row, which nothing here does.)
            match decoder.decode(wire.unwrap_or(mysql_async::Value::NULL)) {
                Ok(value) => values.push(value),
                Err(reason) => {
                    return Err(SourceError::Value {
                        source_name: self.context.name.to_string(),
                        row: self.rows_read,
                        column: self.columns.name(index).unwrap_or_default().to_owned(),
                        column_index: index,
                        type_name: self.type_names.get(index).cloned().unwrap_or_default(),
                        reason,
                    });
                }
            }
        }
        Ok(values)
    }

    /// The query is over: close the connection normally.
    fn finish(&mut self) {
        self.rows = None;
        self.killer = None;
    }
}

impl Drop for MysqlRows {
    fn drop(&mut self) {
        if let Some(killer) = self.killer.take() {
            killer.kill();
            tracing::debug!(source = %self.context.name, rows = self.rows_read, "query cancelled");
        }
    }
}

impl Stream for MysqlRows {
    type Item = Result<Values, SourceError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        let Some(rows) = this.rows.as_mut() else { return Poll::Ready(None) };
        match std::task::ready!(Pin::new(rows).poll_next(cx)) {
            Some(Ok(row)) => {
                this.rows_read += 1;
                Poll::Ready(Some(this.decode(row)))
            }
            Some(Err(e)) => {
                #[allow(unused_mut)]
                let mut error = this.context.error(e, this.rows_read);
                #[cfg(feature = "ssh")]
                crate::tunnel::note_tunnel(&mut error, this.tunnel.as_deref());
                this.finish();
                Poll::Ready(Some(Err(error)))
            }
            None => {
                tracing::debug!(source = %this.context.name, rows = this.rows_read, "query finished");
                this.finish();
                Poll::Ready(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_flavour_comes_from_the_version_string() {
        for (version, flavour) in [
            ("10.11.19-MariaDB-0+deb12u1", Flavour::MariaDb),
            ("5.5.5-10.6.12-MariaDB-log", Flavour::MariaDb),
            ("11.4.2-MariaDB", Flavour::MariaDb),
            ("8.0.36", Flavour::MySql),
            ("8.4.3-commercial", Flavour::MySql),
            ("5.7.44-log", Flavour::MySql),
            ("", Flavour::MySql),
        ] {
            assert_eq!(Flavour::from_version(version), flavour, "{version}");
        }
    }

    #[test]
    fn sessions_get_utc_the_timeouts_and_read_only() {
        let ten_minutes = Duration::from_secs(600);
        assert_eq!(
            session_setup(Flavour::MariaDb, ten_minutes),
            "SET time_zone = '+00:00', max_statement_time = 600, net_write_timeout = 600; \
             SET SESSION TRANSACTION READ ONLY; START TRANSACTION READ ONLY"
        );
        assert_eq!(
            session_setup(Flavour::MySql, ten_minutes),
            "SET time_zone = '+00:00', max_execution_time = 600000, net_write_timeout = 600; \
             SET SESSION TRANSACTION READ ONLY; START TRANSACTION READ ONLY"
        );
        // Fractions: MariaDB to the microsecond, MySQL to the millisecond, rounded up;
        // the write timeout never under the server's default of 60 s.
        let short = Duration::from_micros(1_500_001);
        assert!(
            session_setup(Flavour::MariaDb, short)
                .contains("max_statement_time = 1.500001, net_write_timeout = 60;")
        );
        assert!(
            session_setup(Flavour::MySql, short)
                .contains("max_execution_time = 1501, net_write_timeout = 60;")
        );
        let almost = Duration::new(2, 999_999_001);
        assert!(session_setup(Flavour::MariaDb, almost).contains("max_statement_time = 3,"));
        // No limit: no statement timeout, and the longest write timeout the server takes.
        let none = session_setup(Flavour::MariaDb, Duration::ZERO);
        assert!(none.contains("max_statement_time = 0, net_write_timeout = 31536000;"), "{none}");
        assert!(session_setup(Flavour::MySql, Duration::ZERO).contains("max_execution_time = 0,"));
        assert_eq!(net_write_timeout_secs(Duration::from_secs(3601)), 3601);
        assert_eq!(net_write_timeout_secs(MAX_MYSQL_STATEMENT_TIMEOUT), 4_294_968);
    }

    #[test]
    fn targets_never_show_the_password() {
        let source = MysqlSource::new(
            "shop",
            "mysql://etl:url-secret@db.internal:3307/shop",
            MysqlOptions::new().password("option-secret"),
        )
        .unwrap();
        assert_eq!(source.target(), "db.internal:3307/shop as etl");
        for text in [format!("{source:?}"), source.to_string()] {
            assert!(!text.contains("secret"), "{text}");
        }
        assert!(format!("{source:?}").contains("<redacted>"));
        let source = MysqlSource::new("shop", "mariadb://etl@db/shop", MysqlOptions::new()).unwrap();
        assert_eq!(source.target(), "db:3306/shop as etl");
        assert!(format!("{source:?}").contains("password: None"));
        assert_eq!(source.statement_timeout(), DEFAULT_STATEMENT_TIMEOUT);
        assert_eq!(source.dialect(), Dialect::MySQL);
    }

    #[cfg(feature = "ssh")]
    #[test]
    fn a_tunnel_needs_a_tcp_host_and_a_readable_key() {
        let fingerprint = "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4";
        let dir = std::env::temp_dir().join(format!("cdp-mysql-ssh-{}", std::process::id()));
        let missing = dir.join("no-such-key");
        let ssh =
            crate::tunnel::SshConfig::new("bastion.example.com", "tunnel", &missing, fingerprint).unwrap();
        let options = MysqlOptions::new().ssh_tunnel(ssh.clone());
        let error = MysqlSource::new("shop", "mysql://etl@db/shop?socket=/run/mysqld/mysqld.sock", options)
            .unwrap_err();
        assert!(matches!(error, SourceError::Config { .. }), "{error}");
        assert!(error.to_string().contains("not a Unix socket"), "{error}");
        let error =
            MysqlSource::new("shop", "mysql://etl@db/shop", MysqlOptions::new().ssh_tunnel(ssh)).unwrap_err();
        assert_eq!(error.check_step(), crate::CheckStep::Configuration, "{error}");
        assert!(error.to_string().contains("no-such-key"), "{error}");
    }

    #[test]
    fn malformed_urls_and_settings_are_config_errors_without_the_url() {
        for (url, expected) in [
            ("postgres://etl:secret@db/x", "the URL's scheme is `postgres`"),
            ("mysql://etl:secret@db/x?bogus=1", "unknown parameter `bogus`"),
            (
                "mysql://etl:secret@db/x?tcp_keepalive=secret",
                "parameter `tcp_keepalive` has an invalid value",
            ),
            ("mysql://etl:secret@db:notaport/x", "the URL is malformed"),
            ("etl:secret@db", "the URL"),
        ] {
            let error = MysqlSource::new("shop", url, MysqlOptions::new()).unwrap_err();
            let text = error.to_string();
            assert!(matches!(error, SourceError::Config { .. }), "{text}");
            assert!(text.starts_with("source `shop`: invalid configuration: "), "{text}");
            assert!(text.contains(expected), "{url}: {text}");
            assert!(!text.contains("secret") && !format!("{error:?}").contains("secret"), "{text}");
        }
        let too_long = MysqlOptions::new().statement_timeout(Duration::from_secs(50 * 86_400));
        assert!(matches!(
            MysqlSource::new("shop", "mysql://db/x", too_long),
            Err(SourceError::Config { .. })
        ));
        assert!(matches!(
            MysqlSource::new("", "mysql://db/x", MysqlOptions::new()),
            Err(SourceError::Config { .. })
        ));
    }
}
