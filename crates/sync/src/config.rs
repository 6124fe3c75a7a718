//! The TOML configuration: sources, destinations and syncs.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use cdp_calls::{CallType, Timestamp};
use serde::Deserialize;

use crate::http::{EU_BASE_URL, US_BASE_URL};

/// Why a configuration cannot be used. Every variant names the key at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not valid TOML, or has a key of the wrong type or an unknown
    /// key (the message gives the key, line and column).
    #[error("{}: {message}", path.display())]
    Syntax {
        /// The file.
        path: PathBuf,
        /// The TOML parser's message.
        message: String,
    },
    /// A value is not acceptable.
    #[error("`{key}`: {reason}")]
    Invalid {
        /// The key, as a dotted path (`syncs[2].every`, `sources.app.password_env`).
        key: String,
        /// What is wrong.
        reason: String,
    },
    /// An environment variable the file names is not set.
    #[error("`{key}` names the environment variable {variable}, which is not set")]
    MissingSecret {
        /// The key naming it.
        key: String,
        /// The variable.
        variable: String,
    },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

/// Why a source of `kind` (`PostgreSQL`) cannot be used: cdp-sync was built without
/// its cargo `feature` (`postgres`).
pub(crate) fn not_built(kind: &str, feature: &str) -> String {
    format!(
        "{kind} sources need cdp-sync built with its `{feature}` feature \
         (cdp-warehouse's `{feature}` feature turns it on)"
    )
}

/// A whole configuration file.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Config {
    /// Where sync state and run history live.
    pub state_dir: PathBuf,
    /// The sources, by name.
    pub sources: BTreeMap<String, SourceConfig>,
    /// The destinations, by name.
    pub destinations: BTreeMap<String, DestinationConfig>,
    /// The syncs, in file order.
    pub syncs: Vec<SyncConfig>,
}

/// A database to read from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum SourceConfig {
    /// A PostgreSQL server.
    Postgres {
        /// The connection URL or key=value string, without a password.
        url: String,
        /// The password, from the environment variable the file names.
        password: Option<Secret>,
        /// How long one query may run.
        statement_timeout: Option<Duration>,
        /// A PEM file of the certificate authorities to trust: connect with TLS
        /// (the URL's `sslmode` says whether TLS is required).
        tls_ca_file: Option<PathBuf>,
        /// The SSH tunnel to connect through (`[sources.NAME.ssh]`; needs the `ssh`
        /// feature to open).
        ssh: Option<crate::ssh::SshTunnelConfig>,
    },
    /// A SQLite database file, opened read-only.
    Sqlite {
        /// The file.
        path: PathBuf,
    },
    /// A Snowflake account, with key-pair authentication (`kind = "snowflake"`; needs
    /// the `snowflake` feature to open).
    Snowflake {
        /// The account identifier (`myorg-myaccount`, or `xy12345.eu-west-1`).
        account: String,
        /// The user to log in as.
        user: String,
        /// The session's role (the user's default role when absent).
        role: Option<String>,
        /// The warehouse that runs the queries (the user's default when absent).
        warehouse: Option<String>,
        /// The session's database.
        database: Option<String>,
        /// The session's schema.
        schema: Option<String>,
        /// The user's private key as a PKCS#8 PEM file (`private_key_path`), read
        /// when the source opens; or else
        private_key_path: Option<PathBuf>,
        /// the PEM itself, from the environment variable `private_key_env` names.
        private_key: Option<Secret>,
        /// The key's passphrase, from the environment variable
        /// `private_key_passphrase_env` names, for an encrypted key.
        private_key_passphrase: Option<Secret>,
        /// How long one query may run (Snowflake's `STATEMENT_TIMEOUT_IN_SECONDS`).
        statement_timeout: Option<Duration>,
        /// Another base URL for Snowflake's API than the account's own.
        base_url: Option<String>,
    },
    /// A MySQL or MariaDB server (`kind = "mysql"`; needs the `mysql` feature to open).
    Mysql {
        /// The connection URL, `mysql://user@host:3306/database`, without a password.
        url: String,
        /// The password, from the environment variable the file names.
        password: Option<Secret>,
        /// How long one query may run (`max_statement_time` on MariaDB,
        /// `max_execution_time` on MySQL).
        statement_timeout: Option<Duration>,
        /// A PEM file of the certificate authorities to trust: connect with TLS, which
        /// the server must then offer.
        tls_ca_file: Option<PathBuf>,
        /// The SSH tunnel to connect through (`[sources.NAME.ssh]`; needs the `ssh`
        /// feature to open).
        ssh: Option<crate::ssh::SshTunnelConfig>,
    },
}

/// Where the calls go.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum DestinationConfig {
    /// The HTTP ingestion API.
    Http {
        /// The API's base URL (`https://cdp.customer.io/v1` for the US region).
        base_url: String,
        /// The API key, from the environment variable the file names.
        api_key: Secret,
    },
    /// The bucket export writer.
    Bucket {
        /// The bucket URL or directory.
        bucket: String,
        /// The file format.
        format: cdp_encode::FileFormat,
        /// The integration id of the object names.
        integration: cdp_bucket::Id,
        /// The action id of the object names.
        action: cdp_bucket::Id,
        /// The spool directory, if any.
        spool: Option<PathBuf>,
    },
    /// Newline-delimited JSON to a file (appended to) or standard output (`-`).
    Ndjson {
        /// The file, or `-`.
        path: PathBuf,
    },
}

/// A secret taken from the environment; never shown.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

/// One sync: a query run on a schedule, each row one call.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SyncConfig {
    /// Its name: `[A-Za-z0-9_-]`, unique; it names its state directory.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The type of every call it makes.
    pub call_type: CallType,
    /// The source's name.
    pub source: String,
    /// The destination's name.
    pub destination: String,
    /// The query template.
    pub query: String,
    /// How often it runs (at least a minute).
    pub every: Duration,
    /// When it first runs; `None` for as soon as the scheduler starts.
    pub start: Option<Timestamp>,
    /// Whether it runs at all (the state directory can override this).
    pub enabled: bool,
    /// Whether to lower-case result names that are not reserved fields
    /// (Snowflake's upper-cased names).
    pub lowercase_names: bool,
    /// How a run finds what to send: every row of the result (`mode = "cursor"`, the
    /// default: the query narrows itself with `{{last_sync_time}}`) or only the rows
    /// that changed since the last successful run (`mode = "diff"`).
    pub mode: SyncMode,
}

/// How a sync's run finds what to send (`mode` in the file).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum SyncMode {
    /// `mode = "cursor"` (the default): every row the query returns is sent; the query
    /// narrows itself with `{{last_sync_time}}`.
    #[default]
    Cursor,
    /// `mode = "diff"`: each run reads the whole result and sends only the rows whose
    /// primary key is new or whose call changed since the last successful run
    /// (see [`crate::diff`] and the crate docs' "Diff syncs").
    Diff {
        /// `primary_key`: the result column that identifies a row. A reserved field
        /// (`userId`, `groupId`, …) matches its column without regard to case, as the
        /// mapping does; any other name matches a result column exactly, or its
        /// lower-cased name when the sync has `lowercase_names = true`.
        primary_key: String,
        /// `on_delete`: what a key that disappeared does.
        on_delete: OnDelete,
    },
}

impl SyncMode {
    /// The primary key column of a diff sync; `None` for a cursor sync.
    pub fn primary_key(&self) -> Option<&str> {
        match self {
            SyncMode::Cursor => None,
            SyncMode::Diff { primary_key, .. } => Some(primary_key),
        }
    }

    /// Whether this is a diff sync.
    pub fn is_diff(&self) -> bool {
        matches!(self, SyncMode::Diff { .. })
    }
}

/// What a diff sync does with a key that disappeared from the result (`on_delete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum OnDelete {
    /// `on_delete = "ignore"` (the default): nothing is sent; the key leaves the
    /// snapshot, and is new again if it comes back.
    #[default]
    Ignore,
    /// `on_delete = "event"`: a semantic event with the key's last known ids:
    /// `User Deleted` for an identify sync, `Object Deleted` for a group sync (the
    /// only types that allow it).
    Event,
}

/// The shortest `every`.
pub const MIN_EVERY: Duration = Duration::from_secs(60);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    state_dir: Option<PathBuf>,
    #[serde(default)]
    sources: BTreeMap<String, RawSource>,
    #[serde(default)]
    destinations: BTreeMap<String, RawDestination>,
    #[serde(default)]
    syncs: Vec<RawSync>,
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawSource {
    Postgres {
        url: String,
        password_env: Option<String>,
        statement_timeout: Option<String>,
        tls_ca_file: Option<PathBuf>,
        ssh: Option<crate::ssh::RawSsh>,
    },
    Sqlite {
        path: PathBuf,
    },
    Snowflake {
        account: String,
        user: String,
        role: Option<String>,
        warehouse: Option<String>,
        database: Option<String>,
        schema: Option<String>,
        private_key_path: Option<PathBuf>,
        private_key_env: Option<String>,
        private_key_passphrase_env: Option<String>,
        statement_timeout: Option<String>,
        base_url: Option<String>,
    },
    Mysql {
        url: String,
        password_env: Option<String>,
        statement_timeout: Option<String>,
        tls_ca_file: Option<PathBuf>,
        ssh: Option<crate::ssh::RawSsh>,
    },
}

#[derive(Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
enum RawDestination {
    Http { region: Option<String>, base_url: Option<String>, api_key_env: String },
    Bucket { bucket: String, format: String, integration: String, action: String, spool: Option<PathBuf> },
    Ndjson { path: PathBuf },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSync {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(rename = "type")]
    call_type: String,
    source: String,
    destination: String,
    query: Option<String>,
    query_file: Option<PathBuf>,
    every: String,
    start: Option<String>,
    #[serde(default = "yes")]
    enabled: bool,
    #[serde(default)]
    lowercase_names: bool,
    mode: Option<String>,
    primary_key: Option<String>,
    on_delete: Option<String>,
}

fn yes() -> bool {
    true
}

impl Config {
    /// Reads a configuration file; relative paths in it are relative to its
    /// directory, and secrets come from the environment.
    pub fn load(path: impl AsRef<Path>) -> Result<Config, ConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ConfigError::Read { path: path.to_owned(), source })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Config::parse(&text, base, &|name| std::env::var(name).ok()).map_err(|e| match e {
            ConfigError::Syntax { message, .. } => ConfigError::Syntax { path: path.to_owned(), message },
            other => other,
        })
    }

    /// Parses configuration text; relative paths are taken from `base`, and
    /// `env` looks up environment variables.
    pub fn parse(
        text: &str,
        base: &Path,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Syntax {
            path: PathBuf::from("configuration"),
            message: e.to_string(),
        })?;
        let resolve = |p: PathBuf| if p.is_absolute() || p.as_os_str() == "-" { p } else { base.join(p) };
        let secret = |key: String, variable: &str| {
            env(variable)
                .filter(|v| !v.is_empty())
                .map(Secret)
                .ok_or(ConfigError::MissingSecret { key, variable: variable.to_owned() })
        };
        // `sources.NAME.FIELD = "VAR"`: the secret in VAR, when the field is given.
        let optional_secret = |name: &str, field: &str, variable: Option<String>| {
            variable.map(|var| secret(format!("sources.{name}.{field}"), &var)).transpose()
        };
        let optional_duration = |name: &str, field: &str, text: Option<String>| {
            text.map(|text| {
                parse_duration(&text).map_err(|reason| invalid(format!("sources.{name}.{field}"), reason))
            })
            .transpose()
        };

        let mut sources = BTreeMap::new();
        for (name, source) in raw.sources {
            check_name(&format!("sources.{name}"), &name)?;
            let config = match source {
                RawSource::Postgres { url, password_env, statement_timeout, tls_ca_file, ssh } => {
                    if !cfg!(feature = "postgres") {
                        return Err(invalid(
                            format!("sources.{name}.kind"),
                            not_built("PostgreSQL", "postgres"),
                        ));
                    }
                    if url_has_password(&url) {
                        return Err(invalid(
                            format!("sources.{name}.url"),
                            "the URL holds a password: give it through `password_env` instead",
                        ));
                    }
                    let password = optional_secret(&name, "password_env", password_env)?;
                    let statement_timeout = optional_duration(&name, "statement_timeout", statement_timeout)?;
                    SourceConfig::Postgres {
                        url,
                        password,
                        statement_timeout,
                        tls_ca_file: tls_ca_file.map(resolve),
                        ssh: ssh.map(|ssh| ssh.check(&name, resolve)).transpose()?,
                    }
                }
                RawSource::Sqlite { path } => {
                    if !cfg!(feature = "sqlite") {
                        return Err(invalid(format!("sources.{name}.kind"), not_built("SQLite", "sqlite")));
                    }
                    SourceConfig::Sqlite { path: resolve(path) }
                }
                RawSource::Snowflake {
                    account,
                    user,
                    role,
                    warehouse,
                    database,
                    schema,
                    private_key_path,
                    private_key_env,
                    private_key_passphrase_env,
                    statement_timeout,
                    base_url,
                } => {
                    let key = |field: &str| format!("sources.{name}.{field}");
                    if !cfg!(feature = "snowflake") {
                        return Err(invalid(key("kind"), not_built("Snowflake", "snowflake")));
                    }
                    let private_key = match (&private_key_path, private_key_env) {
                        (Some(_), None) => None,
                        (None, Some(var)) => Some(secret(key("private_key_env"), &var)?),
                        _ => {
                            return Err(invalid(
                                format!("sources.{name}"),
                                "give the private key with `private_key_path` or `private_key_env` (one of them)",
                            ));
                        }
                    };
                    let private_key_passphrase =
                        optional_secret(&name, "private_key_passphrase_env", private_key_passphrase_env)?;
                    let statement_timeout = optional_duration(&name, "statement_timeout", statement_timeout)?;
                    SourceConfig::Snowflake {
                        account,
                        user,
                        role,
                        warehouse,
                        database,
                        schema,
                        private_key_path: private_key_path.map(resolve),
                        private_key,
                        private_key_passphrase,
                        statement_timeout,
                        base_url,
                    }
                }
                RawSource::Mysql { url, password_env, statement_timeout, tls_ca_file, ssh } => {
                    let key = |field: &str| format!("sources.{name}.{field}");
                    if !cfg!(feature = "mysql") {
                        return Err(invalid(key("kind"), not_built("MySQL", "mysql")));
                    }
                    if url_has_password(&url) {
                        return Err(invalid(
                            key("url"),
                            "the URL holds a password: give it through `password_env` instead",
                        ));
                    }
                    let password = optional_secret(&name, "password_env", password_env)?;
                    let statement_timeout = optional_duration(&name, "statement_timeout", statement_timeout)?;
                    SourceConfig::Mysql {
                        url,
                        password,
                        statement_timeout,
                        tls_ca_file: tls_ca_file.map(resolve),
                        ssh: ssh.map(|ssh| ssh.check(&name, resolve)).transpose()?,
                    }
                }
            };
            sources.insert(name, config);
        }

        let mut destinations = BTreeMap::new();
        for (name, destination) in raw.destinations {
            check_name(&format!("destinations.{name}"), &name)?;
            let config = match destination {
                RawDestination::Http { region, base_url, api_key_env } => {
                    let base_url = match (region.as_deref(), base_url) {
                        (None, Some(url)) => url,
                        (Some("us") | None, None) => US_BASE_URL.to_owned(),
                        (Some("eu"), None) => EU_BASE_URL.to_owned(),
                        (Some(other), None) => {
                            return Err(invalid(
                                format!("destinations.{name}.region"),
                                format!("{other:?}: expected \"us\" or \"eu\" (or give `base_url`)"),
                            ));
                        }
                        (Some(_), Some(_)) => {
                            return Err(invalid(
                                format!("destinations.{name}"),
                                "give `region` or `base_url`, not both",
                            ));
                        }
                    };
                    let api_key = secret(format!("destinations.{name}.api_key_env"), &api_key_env)?;
                    DestinationConfig::Http { base_url, api_key }
                }
                RawDestination::Bucket { bucket, format, integration, action, spool } => {
                    let key = |field: &str| format!("destinations.{name}.{field}");
                    // A cloud store this build lacks (cdp-bucket's `s3`, `gcs`, `azure`).
                    cdp_bucket::Bucket::check_backend(&bucket)
                        .map_err(|e| invalid(key("bucket"), e.to_string()))?;
                    DestinationConfig::Bucket {
                        bucket: if bucket.contains("://") {
                            bucket
                        } else {
                            resolve(PathBuf::from(bucket)).to_string_lossy().into_owned()
                        },
                        format: format.parse().map_err(|e| invalid(key("format"), format!("{e}")))?,
                        integration: integration
                            .parse()
                            .map_err(|e| invalid(key("integration"), format!("{e}")))?,
                        action: action.parse().map_err(|e| invalid(key("action"), format!("{e}")))?,
                        spool: spool.map(resolve),
                    }
                }
                RawDestination::Ndjson { path } => DestinationConfig::Ndjson { path: resolve(path) },
            };
            destinations.insert(name, config);
        }

        let mut syncs: Vec<SyncConfig> = Vec::new();
        for (i, sync) in raw.syncs.into_iter().enumerate() {
            let key = |field: &str| format!("syncs[{i}].{field}");
            check_name(&key("name"), &sync.name)?;
            if syncs.iter().any(|s| s.name == sync.name) {
                return Err(invalid(key("name"), format!("another sync is called {:?}", sync.name)));
            }
            let call_type: CallType =
                sync.call_type.parse().map_err(|e| invalid(key("type"), format!("{e}")))?;
            if !sources.contains_key(&sync.source) {
                return Err(invalid(key("source"), format!("no source is called {:?}", sync.source)));
            }
            if !destinations.contains_key(&sync.destination) {
                return Err(invalid(
                    key("destination"),
                    format!("no destination is called {:?}", sync.destination),
                ));
            }
            let query = match (sync.query, sync.query_file) {
                (Some(query), None) => query,
                (None, Some(file)) => {
                    let file = resolve(file);
                    std::fs::read_to_string(&file).map_err(|e| {
                        invalid(key("query_file"), format!("cannot read {}: {e}", file.display()))
                    })?
                }
                _ => return Err(invalid(key("query"), "give `query` or `query_file` (one of them)")),
            };
            let every = parse_duration(&sync.every).map_err(|reason| invalid(key("every"), reason))?;
            if every < MIN_EVERY {
                return Err(invalid(key("every"), format!("{:?} is shorter than a minute", sync.every)));
            }
            let start = match sync.start.as_deref() {
                None | Some("now") => None,
                Some(text) => Some(text.parse::<Timestamp>().map_err(|e| {
                    invalid(key("start"), format!("{text:?} is not \"now\" or an RFC 3339 timestamp: {e}"))
                })?),
            };
            let mode = sync_mode(&sync.name, &key, call_type, sync.mode, sync.primary_key, sync.on_delete)?;
            syncs.push(SyncConfig {
                name: sync.name,
                description: sync.description,
                call_type,
                source: sync.source,
                destination: sync.destination,
                query,
                every,
                start,
                enabled: sync.enabled,
                lowercase_names: sync.lowercase_names,
                mode,
            });
        }
        Ok(Config {
            state_dir: resolve(raw.state_dir.unwrap_or_else(|| PathBuf::from("state"))),
            sources,
            destinations,
            syncs,
        })
    }

    /// The sync called `name`.
    pub fn sync(&self, name: &str) -> Option<&SyncConfig> {
        self.syncs.iter().find(|s| s.name == name)
    }
}

/// The `mode`, `primary_key` and `on_delete` of the sync `name`; `key` names a field
/// of it (`syncs[2].primary_key`).
fn sync_mode(
    name: &str,
    key: &dyn Fn(&str) -> String,
    call_type: CallType,
    mode: Option<String>,
    primary_key: Option<String>,
    on_delete: Option<String>,
) -> Result<SyncMode, ConfigError> {
    let diff_only = |field: &str| {
        invalid(key(field), format!("sync {name:?}: `{field}` is only for diff syncs (`mode = \"diff\"`)"))
    };
    match mode.as_deref() {
        None | Some("cursor") => {
            if primary_key.is_some() {
                return Err(diff_only("primary_key"));
            }
            if on_delete.is_some() {
                return Err(diff_only("on_delete"));
            }
            Ok(SyncMode::Cursor)
        }
        Some("diff") => {
            let primary_key = match primary_key {
                Some(column) if !column.trim().is_empty() => column,
                Some(_) => {
                    return Err(invalid(
                        key("primary_key"),
                        format!("sync {name:?}: the column name is empty"),
                    ));
                }
                None => {
                    return Err(invalid(
                        key("primary_key"),
                        format!(
                            "sync {name:?}: a diff sync needs `primary_key`, the column that identifies a row"
                        ),
                    ));
                }
            };
            let on_delete = match on_delete.as_deref() {
                None | Some("ignore") => OnDelete::Ignore,
                Some("event") => match call_type {
                    CallType::Identify | CallType::Group => OnDelete::Event,
                    other => {
                        return Err(invalid(
                            key("on_delete"),
                            format!(
                                "sync {name:?}: `on_delete = \"event\"` is for identify syncs (User Deleted) and \
                                 group syncs (Object Deleted), not {} syncs",
                                other.as_str()
                            ),
                        ));
                    }
                },
                Some(other) => {
                    return Err(invalid(
                        key("on_delete"),
                        format!("sync {name:?}: {other:?}: expected \"ignore\" or \"event\""),
                    ));
                }
            };
            Ok(SyncMode::Diff { primary_key, on_delete })
        }
        Some(other) => {
            Err(invalid(key("mode"), format!("sync {name:?}: {other:?}: expected \"cursor\" or \"diff\"")))
        }
    }
}

/// Names become directory names: `[A-Za-z0-9_-]`, not empty.
fn check_name(key: &str, name: &str) -> Result<(), ConfigError> {
    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Ok(())
    } else {
        Err(invalid(key, format!("{name:?} must be non-empty and use only A-Z, a-z, 0-9, _ and -")))
    }
}

fn url_has_password(url: &str) -> bool {
    match url.split_once("://") {
        Some((_, rest)) => {
            let authority = rest.split(['/', '?']).next().unwrap_or("");
            authority.rsplit_once('@').is_some_and(|(user_info, _)| user_info.contains(':'))
        }
        None => url.split_whitespace().any(|kv| kv.starts_with("password=")),
    }
}

/// Parses `90s`, `15m`, `1h`, `1d` (a number and a unit).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("{text:?} is not a duration like 30s, 15m, 1h or 1d");
    let text = text.trim();
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let n: u64 = text[..split].parse().map_err(|_| bad())?;
    let secs = match text[split..].trim() {
        "ms" => return Ok(Duration::from_millis(n)),
        "s" => n,
        "m" => n.checked_mul(60).ok_or_else(bad)?,
        "h" => n.checked_mul(3600).ok_or_else(bad)?,
        "d" => n.checked_mul(86_400).ok_or_else(bad)?,
        _ => return Err(bad()),
    };
    Ok(Duration::from_secs(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg_attr(not(all(feature = "postgres", feature = "sqlite")), allow(dead_code))]
    const GOOD: &str = r#"
        state_dir = "state"

        [sources.app]
        kind = "postgres"
        url = "postgres://cdp@127.0.0.1:5432/app"
        password_env = "APP_PW"
        statement_timeout = "5m"

        [sources.demo]
        kind = "sqlite"
        path = "demo.sqlite"

        [destinations.cio]
        kind = "http"
        region = "eu"
        api_key_env = "CIO_KEY"

        [destinations.lake]
        kind = "bucket"
        bucket = "bucket"
        format = "parquet"
        integration = "retl"
        action = "people"

        [destinations.out]
        kind = "ndjson"
        path = "-"

        [[syncs]]
        name = "people"
        description = "People"
        type = "identify"
        source = "app"
        destination = "cio"
        query = "SELECT id AS userId FROM people WHERE updated_at > to_timestamp({{last_sync_time}})"
        every = "15m"

        [[syncs]]
        name = "orders"
        type = "track"
        source = "demo"
        destination = "lake"
        query = "SELECT 1"
        every = "1h"
        start = "2026-12-01T00:00:00Z"
        enabled = false
    "#;

    fn env(name: &str) -> Option<String> {
        match name {
            "APP_PW" => Some("pw-secret".into()),
            "CIO_KEY" => Some("key-secret".into()),
            _ => None,
        }
    }

    fn parse(text: &str) -> Result<Config, ConfigError> {
        Config::parse(text, Path::new("/etc/cdp"), &env)
    }

    #[cfg(all(feature = "postgres", feature = "sqlite"))]
    #[test]
    fn a_full_configuration_reads() {
        let config = parse(GOOD).unwrap();
        assert_eq!(config.state_dir, Path::new("/etc/cdp/state"));
        match &config.sources["app"] {
            SourceConfig::Postgres { url, password, statement_timeout, tls_ca_file, ssh } => {
                assert_eq!(ssh, &None);
                assert_eq!(url, "postgres://cdp@127.0.0.1:5432/app");
                assert_eq!(password.as_ref().map(Secret::expose), Some("pw-secret"));
                assert_eq!(*statement_timeout, Some(Duration::from_secs(300)));
                assert_eq!(tls_ca_file, &None);
            }
            other => panic!("{other:?}"),
        }
        match &config.sources["demo"] {
            SourceConfig::Sqlite { path } => assert_eq!(path, Path::new("/etc/cdp/demo.sqlite")),
            other => panic!("{other:?}"),
        }
        match &config.destinations["cio"] {
            DestinationConfig::Http { base_url, api_key } => {
                assert_eq!((base_url.as_str(), api_key.expose()), (EU_BASE_URL, "key-secret"));
            }
            other => panic!("{other:?}"),
        }
        let people = config.sync("people").unwrap();
        assert_eq!(
            (people.call_type, people.every, people.start, people.enabled),
            (CallType::Identify, Duration::from_secs(900), None, true)
        );
        let orders = config.sync("orders").unwrap();
        assert_eq!((orders.start, orders.enabled), (Some("2026-12-01T00:00:00Z".parse().unwrap()), false));
        assert!(!format!("{config:?}").contains("secret"), "secrets never show");
    }

    fn error(text: &str) -> String {
        parse(text).unwrap_err().to_string()
    }

    #[cfg(all(feature = "postgres", feature = "sqlite"))]
    #[test]
    fn errors_name_the_key_at_fault() {
        let cases = [
            (GOOD.replace("every = \"15m\"", "every = \"30s\""), "syncs[0].every"),
            (GOOD.replace("every = \"15m\"", "every = \"often\""), "syncs[0].every"),
            (GOOD.replace("type = \"identify\"", "type = \"click\""), "syncs[0].type"),
            (GOOD.replace("source = \"app\"", "source = \"nope\""), "syncs[0].source"),
            (GOOD.replace("destination = \"cio\"", "destination = \"nope\""), "syncs[0].destination"),
            (GOOD.replace("name = \"orders\"", "name = \"people\""), "syncs[1].name"),
            (GOOD.replace("name = \"orders\"", "name = \"or ders\""), "syncs[1].name"),
            (GOOD.replace("region = \"eu\"", "region = \"mars\""), "destinations.cio.region"),
            (
                GOOD.replace("api_key_env = \"CIO_KEY\"", "api_key_env = \"UNSET\""),
                "destinations.cio.api_key_env",
            ),
            (
                GOOD.replace("password_env = \"APP_PW\"", "password_env = \"UNSET\""),
                "sources.app.password_env",
            ),
            (GOOD.replace("cdp@127.0.0.1", "cdp:hunter2@127.0.0.1"), "sources.app.url"),
            (GOOD.replace("format = \"parquet\"", "format = \"xml\""), "destinations.lake.format"),
            (GOOD.replace("action = \"people\"", "action = \"a.b\""), "destinations.lake.action"),
            (GOOD.replace("start = \"2026-12-01T00:00:00Z\"", "start = \"tomorrow\""), "syncs[1].start"),
            (GOOD.replace("query = \"SELECT 1\"", "query_file = \"missing.sql\""), "syncs[1].query_file"),
        ];
        for (text, key) in cases {
            let message = error(&text);
            assert!(message.contains(&format!("`{key}`")), "{key}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        // Unknown keys and wrong types: the TOML parser names the key and the line.
        let message = error(&GOOD.replace("enabled = false", "enabeld = false"));
        assert!(message.contains("enabeld") && message.contains("line"), "{message}");
        let message = error(&GOOD.replace("enabled = false", "enabled = \"no\""));
        assert!(message.contains("enabled"), "{message}");
    }

    #[cfg(all(not(feature = "snowflake"), feature = "postgres"))]
    #[test]
    fn snowflake_sources_need_the_feature() {
        let text = GOOD.replace(
            "[sources.demo]\n        kind = \"sqlite\"\n        path = \"demo.sqlite\"",
            "[sources.demo]\n        kind = \"snowflake\"\n        account = \"a\"\n        user = \"u\"\n        private_key_path = \"k.p8\"",
        );
        assert_ne!(text, GOOD);
        let message = error(&text);
        assert!(
            message.contains("`sources.demo.kind`") && message.contains("`snowflake` feature"),
            "{message}"
        );
    }

    const MYSQL: &str = r#"
        [sources.shop]
        kind = "mysql"
        url = "mysql://cdp@127.0.0.1:3306/shop"
        password_env = "APP_PW"
        statement_timeout = "90s"
        tls_ca_file = "ca.pem"

        [destinations.out]
        kind = "ndjson"
        path = "-"

        [[syncs]]
        name = "customers"
        type = "identify"
        source = "shop"
        destination = "out"
        query = "SELECT id AS userId FROM customers WHERE UNIX_TIMESTAMP(updated_at) > {{last_sync_time}}"
        every = "15m"
    "#;

    #[cfg(feature = "mysql")]
    #[test]
    fn mysql_sources_read() {
        let config = parse(MYSQL).unwrap();
        match &config.sources["shop"] {
            SourceConfig::Mysql { url, password, statement_timeout, tls_ca_file, ssh } => {
                assert_eq!(ssh, &None);
                assert_eq!(url, "mysql://cdp@127.0.0.1:3306/shop");
                assert_eq!(password.as_ref().map(Secret::expose), Some("pw-secret"));
                assert_eq!(*statement_timeout, Some(Duration::from_secs(90)));
                assert_eq!(tls_ca_file.as_deref(), Some(Path::new("/etc/cdp/ca.pem")));
            }
            other => panic!("{other:?}"),
        }
        assert!(!format!("{config:?}").contains("pw-secret"), "secrets never show");
        let bare = parse(
            &MYSQL
                .replace("password_env = \"APP_PW\"\n", "")
                .replace("statement_timeout = \"90s\"\n", "")
                .replace("tls_ca_file = \"ca.pem\"\n", ""),
        )
        .unwrap();
        assert!(matches!(
            &bare.sources["shop"],
            SourceConfig::Mysql { password: None, statement_timeout: None, tls_ca_file: None, .. }
        ));
        for (text, key) in [
            (MYSQL.replace("cdp@127.0.0.1", "cdp:hunter2@127.0.0.1"), "sources.shop.url"),
            (
                MYSQL.replace("password_env = \"APP_PW\"", "password_env = \"UNSET\""),
                "sources.shop.password_env",
            ),
            (
                MYSQL.replace("statement_timeout = \"90s\"", "statement_timeout = \"soon\""),
                "sources.shop.statement_timeout",
            ),
        ] {
            let message = error(&text);
            assert!(message.contains(&format!("`{key}`")), "{key}: {message}");
            assert!(!message.contains("hunter2"), "{message}");
        }
        let message = error(&MYSQL.replace("statement_timeout", "sslmode"));
        assert!(message.contains("sslmode"), "unknown keys are refused: {message}");
    }

    #[cfg(not(feature = "mysql"))]
    #[test]
    fn mysql_sources_need_the_feature() {
        let message = error(MYSQL);
        assert!(message.contains("`sources.shop.kind`") && message.contains("`mysql` feature"), "{message}");
    }

    /// Each source kind and cloud store reads when it is built in, and is refused
    /// when the configuration is read if it is not, at the key that names it, with
    /// the kind and the feature to turn on. Holds in every feature combination.
    #[test]
    fn kinds_not_built_in_are_refused_at_load() {
        let sources = [
            (
                "kind = \"postgres\"\nurl = \"postgres://cdp@db/app\"",
                "PostgreSQL",
                "postgres",
                cfg!(feature = "postgres"),
            ),
            ("kind = \"sqlite\"\npath = \"app.sqlite\"", "SQLite", "sqlite", cfg!(feature = "sqlite")),
            (
                "kind = \"snowflake\"\naccount = \"a\"\nuser = \"u\"\nprivate_key_path = \"k.p8\"",
                "Snowflake",
                "snowflake",
                cfg!(feature = "snowflake"),
            ),
            ("kind = \"mysql\"\nurl = \"mysql://cdp@db/shop\"", "MySQL", "mysql", cfg!(feature = "mysql")),
        ];
        for (source, kind, feature, built) in sources {
            match parse(&format!("[sources.warehouse]\n{source}\n")) {
                Ok(config) => {
                    assert!(built, "{kind} sources read only with `{feature}`");
                    assert_eq!(config.sources.len(), 1);
                }
                Err(error) => {
                    let message = error.to_string();
                    assert!(!built, "{kind}: {message}");
                    assert!(
                        message.contains("`sources.warehouse.kind`")
                            && message.contains(kind)
                            && message.contains(&format!("`{feature}` feature")),
                        "{message}"
                    );
                }
            }
        }
        for (url, scheme, feature, forwarded) in [
            ("s3://lake/exports", "s3", "s3", cfg!(feature = "s3")),
            ("gs://lake/exports", "gs", "gcs", cfg!(feature = "gcs")),
            ("az://lake/exports", "az", "azure", cfg!(feature = "azure")),
        ] {
            let text = format!(
                "[destinations.lake]\nkind = \"bucket\"\nbucket = \"{url}\"\nformat = \"json\"\n\
                 integration = \"retl\"\naction = \"people\"\n"
            );
            // cdp-sync's feature turns cdp-bucket's on; another crate of the build may too.
            let built = cdp_bucket::Bucket::check_backend(url).is_ok();
            assert!(built || !forwarded, "cdp-sync's `{feature}` turns on cdp-bucket's");
            match parse(&text) {
                Ok(_) => assert!(built, "{url} reads only with `{feature}`"),
                Err(error) => {
                    let message = error.to_string();
                    assert!(!built, "{url}: {message}");
                    assert!(
                        message.contains("`destinations.lake.bucket`")
                            && message.contains(&format!("`{scheme}://`"))
                            && message.contains(&format!("`{feature}` feature")),
                        "{message}"
                    );
                }
            }
        }
    }

    /// A sync of `call_type` with the diff settings `extra`, on an SQLite source.
    fn diff_sync(call_type: &str, extra: &str) -> Result<Config, ConfigError> {
        parse(&format!(
            r#"
            [sources.demo]
            kind = "sqlite"
            path = "demo.sqlite"
            [destinations.out]
            kind = "ndjson"
            path = "-"
            [[syncs]]
            name = "people"
            type = "{call_type}"
            source = "demo"
            destination = "out"
            query = "SELECT 1"
            every = "1h"
            {extra}
            "#
        ))
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn diff_syncs_read_and_cursor_is_the_default() {
        let mode = |call_type: &str, extra: &str| diff_sync(call_type, extra).unwrap().syncs[0].mode.clone();
        assert_eq!(mode("identify", ""), SyncMode::Cursor);
        assert_eq!(mode("identify", "mode = \"cursor\""), SyncMode::Cursor);
        assert_eq!(
            mode("identify", "mode = \"diff\"\nprimary_key = \"userId\""),
            SyncMode::Diff { primary_key: "userId".into(), on_delete: OnDelete::Ignore }
        );
        assert_eq!(
            mode("group", "mode = \"diff\"\nprimary_key = \"groupId\"\non_delete = \"event\""),
            SyncMode::Diff { primary_key: "groupId".into(), on_delete: OnDelete::Event }
        );
        assert_eq!(
            mode("track", "mode = \"diff\"\nprimary_key = \"order_id\"\non_delete = \"ignore\""),
            SyncMode::Diff { primary_key: "order_id".into(), on_delete: OnDelete::Ignore }
        );
        let diff = mode("identify", "mode = \"diff\"\nprimary_key = \"email\"");
        assert_eq!((diff.primary_key(), diff.is_diff()), (Some("email"), true));
        assert_eq!((SyncMode::Cursor.primary_key(), SyncMode::Cursor.is_diff()), (None, false));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn diff_settings_errors_name_the_sync_and_the_key() {
        let cases = [
            ("identify", "mode = \"diff\"", "syncs[0].primary_key", "needs `primary_key`"),
            ("identify", "mode = \"diff\"\nprimary_key = \" \"", "syncs[0].primary_key", "empty"),
            ("identify", "mode = \"snapshot\"", "syncs[0].mode", "\"cursor\" or \"diff\""),
            ("identify", "primary_key = \"userId\"", "syncs[0].primary_key", "only for diff syncs"),
            ("identify", "on_delete = \"event\"", "syncs[0].on_delete", "only for diff syncs"),
            (
                "identify",
                "mode = \"diff\"\nprimary_key = \"userId\"\non_delete = \"drop\"",
                "syncs[0].on_delete",
                "\"ignore\" or \"event\"",
            ),
            (
                "track",
                "mode = \"diff\"\nprimary_key = \"id\"\non_delete = \"event\"",
                "syncs[0].on_delete",
                "not track syncs",
            ),
            (
                "page",
                "mode = \"diff\"\nprimary_key = \"id\"\non_delete = \"event\"",
                "syncs[0].on_delete",
                "not page syncs",
            ),
        ];
        for (call_type, extra, key, reason) in cases {
            let message = diff_sync(call_type, extra).unwrap_err().to_string();
            assert!(
                message.contains(&format!("`{key}`"))
                    && message.contains("\"people\"")
                    && message.contains(reason),
                "{extra}: {message}"
            );
        }
        let message =
            diff_sync("identify", "mode = \"diff\"\nprimary_key = \"userId\"\non_delet = \"event\"")
                .unwrap_err()
                .to_string();
        assert!(
            message.contains("on_delet") && message.contains("line"),
            "unknown keys are refused: {message}"
        );
    }

    #[test]
    fn durations_read() {
        assert_eq!(parse_duration("90s"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("15m"), Ok(Duration::from_secs(900)));
        assert_eq!(parse_duration("2h"), Ok(Duration::from_secs(7200)));
        assert_eq!(parse_duration("1d"), Ok(Duration::from_secs(86_400)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        for bad in ["", "m", "15", "15 minutes", "-1m", "1.5h", "99999999999999999999d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords_in_urls_are_found() {
        assert!(url_has_password("postgres://u:p@h/db"));
        assert!(url_has_password("host=h user=u password=p"));
        assert!(!url_has_password("postgres://u@h/db"));
        assert!(!url_has_password("postgres://h/db?application_name=a:b"));
        assert!(!url_has_password("host=h user=u"));
    }
}
