//! [`CheckStep`]: which step of reaching a source failed, for `reverse_etl check`.

use std::fmt;

use crate::SourceError;

/// The step at which reaching a source and running `SELECT 1` failed
/// ([`SourceError::check_step`]), in the order the steps happen.
///
/// ```
/// use cdp_source::{CheckStep, SqliteOptions, SqliteSource};
///
/// let error = SqliteSource::open("demo", "/no/such/file.db", SqliteOptions::new()).unwrap_err();
/// assert_eq!(error.check_step(), CheckStep::DatabaseConnection);
/// assert_eq!(CheckStep::DatabaseConnection.to_string(), "database connection");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CheckStep {
    /// The source's settings (a malformed connection string, an unusable SSH key
    /// file, a fingerprint that is not `SHA256:…`).
    Configuration,
    /// Reaching the SSH server (nothing answers, not an SSH server, a timeout).
    SshConnection,
    /// The SSH server's host key: it showed another fingerprint than the configured
    /// one.
    SshHostKey,
    /// Logging in to the SSH server: the key is not in the user's
    /// `authorized_keys`.
    SshLogin,
    /// The SSH server opening a connection to the database (unreachable from it, or
    /// TCP forwarding not allowed).
    SshForwarding,
    /// Reaching or opening the database (nothing answers, an unknown database).
    DatabaseConnection,
    /// Logging in to the database (a wrong password, an unknown user).
    DatabaseLogin,
    /// The database itself: the query failed, timed out, or the connection was lost
    /// while it ran.
    Database,
}

impl CheckStep {
    /// Whether the step is one of the SSH tunnel's.
    pub fn is_ssh(self) -> bool {
        matches!(
            self,
            CheckStep::SshConnection | CheckStep::SshHostKey | CheckStep::SshLogin | CheckStep::SshForwarding
        )
    }
}

impl fmt::Display for CheckStep {
    /// `SSH connection`, `SSH host key`, `SSH login`, `SSH forwarding`, `database
    /// connection`, `database login`, `database`, `configuration`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CheckStep::Configuration => "configuration",
            CheckStep::SshConnection => "SSH connection",
            CheckStep::SshHostKey => "SSH host key",
            CheckStep::SshLogin => "SSH login",
            CheckStep::SshForwarding => "SSH forwarding",
            CheckStep::DatabaseConnection => "database connection",
            CheckStep::DatabaseLogin => "database login",
            CheckStep::Database => "database",
        })
    }
}

impl SourceError {
    /// The step this error comes from when reaching the source: the SSH tunnel's
    /// steps, the database connection, its login, or the database itself (see
    /// [`CheckStep`]).
    pub fn check_step(&self) -> CheckStep {
        match self {
            SourceError::Config { .. } => CheckStep::Configuration,
            #[cfg(feature = "ssh")]
            SourceError::Tunnel { error, .. } => {
                use crate::tunnel::TunnelError;
                match **error {
                    TunnelError::Connect { .. } => CheckStep::SshConnection,
                    TunnelError::HostKey { .. } => CheckStep::SshHostKey,
                    TunnelError::Login { .. } => CheckStep::SshLogin,
                    TunnelError::Forward { .. } => CheckStep::SshForwarding,
                    _ => CheckStep::Configuration,
                }
            }
            SourceError::Connect { .. } => CheckStep::DatabaseConnection,
            SourceError::Login { .. } => CheckStep::DatabaseLogin,
            SourceError::Query { .. }
            | SourceError::Timeout { .. }
            | SourceError::UnsupportedType { .. }
            | SourceError::Value { .. }
            | SourceError::Connection { .. } => CheckStep::Database,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_map_to_their_step() {
        let login = SourceError::Login {
            source_name: "pg".into(),
            target: "db:5432/app as etl".into(),
            reason: "FATAL 28P01: password authentication failed for user \"etl\"".into(),
            source: None,
        };
        assert_eq!(login.check_step(), CheckStep::DatabaseLogin);
        assert_eq!(
            login.to_string(),
            "source `pg`: cannot connect to db:5432/app as etl: the database refused the login: FATAL 28P01: \
             password authentication failed for user \"etl\""
        );
        assert_eq!(SourceError::not_configured("x").check_step(), CheckStep::Configuration);
        let lost = SourceError::Connection {
            source_name: "pg".into(),
            reason: "closed".into(),
            rows_read: 3,
            source: None,
        };
        assert_eq!(lost.check_step(), CheckStep::Database);
        assert!(!CheckStep::Database.is_ssh() && CheckStep::SshLogin.is_ssh());
    }

    #[cfg(feature = "ssh")]
    #[test]
    fn tunnel_errors_map_to_ssh_steps() {
        use crate::tunnel::TunnelError;

        let cases = [
            (
                TunnelError::Connect { server: "b:22".into(), reason: "refused".into(), source: None },
                CheckStep::SshConnection,
            ),
            (
                TunnelError::HostKey {
                    server: "b:22".into(),
                    presented: "SHA256:a".into(),
                    expected: "SHA256:b".into(),
                },
                CheckStep::SshHostKey,
            ),
            (
                TunnelError::Login {
                    server: "b:22".into(),
                    user: "u".into(),
                    key_path: "k".into(),
                    key_fingerprint: "SHA256:c".into(),
                },
                CheckStep::SshLogin,
            ),
            (
                TunnelError::Forward { server: "b:22".into(), target: "db:5432".into(), reason: "no".into() },
                CheckStep::SshForwarding,
            ),
            (TunnelError::Key { path: "k".into(), reason: "missing".into() }, CheckStep::Configuration),
        ];
        for (error, step) in cases {
            let error = error.for_source("pg");
            assert_eq!(error.check_step(), step, "{error}");
            assert!(error.to_string().starts_with("source `pg`: SSH tunnel: "), "{error}");
        }
    }
}
