//! SSH tunnels to databases (the `ssh` feature): [`Tunnel`], [`SshConfig`], and new
//! Ed25519 keys ([`generate_key`]).
//!
//! A [`Tunnel`] logs in to an SSH server with a private key, checks the server's host
//! key against the `SHA256:` fingerprint it was given (there is no blind trust: a
//! fingerprint is required, and a server that shows another key is refused), listens
//! on `127.0.0.1` on a port of its own, and forwards every connection made to that
//! port through a `direct-tcpip` channel to the database's host and port *as the SSH
//! server sees them* (like `ssh -L`). The database driver then connects to
//! [`Tunnel::local_addr`]. Dropping the tunnel closes the listener, every forwarded
//! connection and the SSH session.
//!
//! ```no_run
//! use cdp_source::tunnel::{SshConfig, Tunnel};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let ssh = SshConfig::new(
//!     "bastion.example.com",
//!     "tunnel",
//!     "/etc/cdp/ssh/id_ed25519",
//!     "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4",
//! )?
//! .with_port(2222);
//! // The database as the SSH server sees it.
//! let tunnel = Tunnel::open(&ssh, "db.internal", 3306).await?;
//! let local = tunnel.local_addr(); // 127.0.0.1:<port>: point the driver here
//! # let _ = local;
//! # Ok(())
//! # }
//! ```
//!
//! # Keys and rotation
//! [`generate_key`] writes a new Ed25519 key pair: the private key in OpenSSH's format
//! (mode 0600, never printed) and the public key beside it (`PATH.pub`), and returns
//! the public key's `authorized_keys` line. Rotating a key is generating a new one,
//! adding its line to the SSH user's `authorized_keys`, pointing the configuration
//! at the new file, checking the connection (`reverse_etl check SOURCE`), and only
//! then removing the old line.
//!
//! # Failures
//! Each step fails with its own [`TunnelError`]: the SSH server cannot be reached
//! ([`TunnelError::Connect`]), it shows another host key ([`TunnelError::HostKey`],
//! naming both fingerprints), it refuses the key ([`TunnelError::Login`], naming the
//! key's fingerprint), it cannot reach the database ([`TunnelError::Forward`]), or the
//! key file cannot be used ([`TunnelError::Key`]). No error, log line or `Debug`
//! output holds the private key. The first forwarding channel is opened by
//! [`Tunnel::open`] itself (and kept for the first connection), so a database the SSH
//! server cannot reach is reported there.
//!
//! When the SSH session ends while a query runs (the server restarts, the network
//! drops; keepalives every 15 seconds notice a silent peer after three misses), every
//! forwarded connection is closed, so the database driver fails with a lost
//! connection. A tunnel is never reopened by itself: the next query opens a new one.
//!
//! # Decisions
//! - Keys: Ed25519 (what [`generate_key`] writes) and ECDSA private keys, unencrypted,
//!   in OpenSSH's format. RSA keys are not supported (russh is built without its
//!   `rsa` feature): generate an Ed25519 key. Host keys likewise: the server must
//!   have an Ed25519 or ECDSA host key (every OpenSSH since 6.5 has an Ed25519 one).
//! - The host key fingerprint is the SHA-256 one OpenSSH prints (`ssh-keygen -lf
//!   /etc/ssh/ssh_host_ed25519_key.pub` on the server, or `ssh-keyscan -t ed25519
//!   HOST | ssh-keygen -lf -`); a host certificate is checked by its certified key.
//! - The local port listens on `127.0.0.1` only, for as long as the tunnel lives; as
//!   with `ssh -L`, a local process could use it meanwhile, and would still need the
//!   database's own credentials.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use russh::client::{self, DisconnectReason, Handle};
use russh::keys::{HashAlg, PrivateKey, PrivateKeyWithHashAlg, PublicKeyOrCertificate};
use russh::{Channel, ChannelOpenFailure};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

use crate::SourceError;
use crate::error::BoxError;

/// The SSH port when none is set: 22.
pub const DEFAULT_SSH_PORT: u16 = 22;
/// How long reaching the SSH server, logging in and opening the first forwarding
/// channel may take, when nothing else is set: 30 seconds.
pub const DEFAULT_SSH_CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How often a quiet SSH session is probed (after three probes without an answer the
/// session is closed): 15 seconds.
pub const SSH_KEEPALIVE_INTERVAL: Duration = Duration::from_secs(15);

/// The first forwarding channel, opened by [`Tunnel::open`], is handed to the first
/// connection if it comes within this time; later, a fresh channel is opened.
const FIRST_CHANNEL_FRESH_FOR: Duration = Duration::from_secs(10);

/// Where and how to open an SSH tunnel: the SSH server, the user and private key to
/// log in with, and the server's host key fingerprint.
///
/// ```
/// use std::time::Duration;
/// use cdp_source::tunnel::SshConfig;
///
/// let ssh = SshConfig::new("bastion.example.com", "tunnel", "keys/id_ed25519",
///                          "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4")?
///     .with_port(2222)
///     .with_connect_timeout(Duration::from_secs(10));
/// assert_eq!(ssh.to_string(), "tunnel@bastion.example.com:2222");
///
/// // Only a SHA-256 fingerprint will do: no blind trust.
/// let error = SshConfig::new("bastion.example.com", "tunnel", "keys/id_ed25519", "").unwrap_err();
/// assert!(error.to_string().contains("`host_key`"), "{error}");
/// # Ok::<(), cdp_source::tunnel::TunnelError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SshConfig {
    host: String,
    port: u16,
    user: String,
    private_key_path: PathBuf,
    host_key: String,
    connect_timeout: Duration,
}

impl SshConfig {
    /// The SSH server `host` (port [`DEFAULT_SSH_PORT`]), logged in to as `user` with
    /// the private key in the file `private_key_path`, whose host key must have the
    /// fingerprint `host_key` (`SHA256:` and 43 base64 characters, as `ssh-keygen -l`
    /// prints it). Nothing is read or connected yet.
    ///
    /// Fails with [`TunnelError::Config`] for an empty host or user, or a fingerprint
    /// that is not a SHA-256 one.
    pub fn new(
        host: impl Into<String>,
        user: impl Into<String>,
        private_key_path: impl Into<PathBuf>,
        host_key: &str,
    ) -> Result<SshConfig, TunnelError> {
        let (host, user) = (host.into(), user.into());
        if host.is_empty() {
            return Err(TunnelError::Config { reason: "`host`: the SSH server is missing".to_owned() });
        }
        if user.is_empty() {
            return Err(TunnelError::Config { reason: "`user`: the SSH user is missing".to_owned() });
        }
        Ok(SshConfig {
            host,
            port: DEFAULT_SSH_PORT,
            user,
            private_key_path: private_key_path.into(),
            host_key: parse_fingerprint(host_key)?,
            connect_timeout: DEFAULT_SSH_CONNECT_TIMEOUT,
        })
    }

    /// The SSH server's port (22 unless set).
    pub fn with_port(mut self, port: u16) -> SshConfig {
        self.port = port;
        self
    }

    /// How long reaching the server, logging in and opening the first channel may
    /// take ([`DEFAULT_SSH_CONNECT_TIMEOUT`] unless set).
    pub fn with_connect_timeout(mut self, timeout: Duration) -> SshConfig {
        self.connect_timeout = timeout;
        self
    }

    /// The SSH server's host name or address.
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The SSH server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The user to log in as.
    pub fn user(&self) -> &str {
        &self.user
    }

    /// The private key's file.
    pub fn private_key_path(&self) -> &Path {
        &self.private_key_path
    }

    /// The expected host key fingerprint, `SHA256:…` (without base64 padding).
    pub fn host_key(&self) -> &str {
        &self.host_key
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// Reads the private key file and returns its public key's fingerprint
    /// (`SHA256:…`, what the server's `authorized_keys` holds; `ssh-keygen -lf
    /// KEY.pub` prints the same). Checks that the key can be used, before anything
    /// connects.
    pub fn key_fingerprint(&self) -> Result<String, TunnelError> {
        let key = load_key(&self.private_key_path)?;
        Ok(key.public_key().fingerprint(HashAlg::Sha256).to_string())
    }

    /// `host:port`.
    fn server(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for SshConfig {
    /// `user@host:port`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@{}", self.user, self.server())
    }
}

/// Why an SSH tunnel could not be opened, or a key not written. Never holds a private
/// key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TunnelError {
    /// The tunnel's settings are invalid (a fingerprint that is not `SHA256:…`, an
    /// empty host or user).
    #[error("invalid SSH tunnel settings: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },

    /// The private key file cannot be read or used (missing, encrypted, not an
    /// OpenSSH private key, an RSA key), or a new key cannot be written.
    #[error("SSH private key {}: {reason}", path.display())]
    Key {
        /// The key's file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },

    /// The SSH server could not be reached, or the SSH handshake failed (not an SSH
    /// server, no algorithm in common, the connection dropped, a timeout).
    #[error("cannot reach the SSH server {server}: {reason}")]
    Connect {
        /// `host:port`.
        server: String,
        /// Why.
        reason: String,
        /// The underlying error.
        #[source]
        source: Option<BoxError>,
    },

    /// The SSH server showed a host key with another fingerprint than the configured
    /// one: the connection was refused (a man in the middle, or a server whose key
    /// changed; check it on the server, then update `host_key`).
    #[error(
        "the SSH server {server} showed the host key {presented}, not the configured {expected}: refused \
         (if the server's key really changed, check it on the server and update `host_key`)"
    )]
    HostKey {
        /// `host:port`.
        server: String,
        /// The fingerprint of the key the server showed, `SHA256:…`.
        presented: String,
        /// The configured fingerprint.
        expected: String,
    },

    /// The SSH server refused the key for the user: its public key is not in the
    /// user's `authorized_keys` (or the user does not exist or may not log in).
    #[error(
        "the SSH server {server} refused the login as `{user}` with the key {key_fingerprint}: add the \
         public key (`{}.pub`) to that user's authorized_keys",
        key_path.display()
    )]
    Login {
        /// `host:port`.
        server: String,
        /// The user.
        user: String,
        /// The private key's file.
        key_path: PathBuf,
        /// The key's public fingerprint, `SHA256:…`.
        key_fingerprint: String,
    },

    /// The SSH server could not open a connection to the database (it cannot reach
    /// the host or port, or does not allow TCP forwarding).
    #[error("the SSH server {server} could not connect to {target}: {reason}")]
    Forward {
        /// `host:port` of the SSH server.
        server: String,
        /// `host:port` of the database, as the SSH server sees it.
        target: String,
        /// Why.
        reason: String,
    },
}

impl TunnelError {
    /// This error as the [`SourceError::Tunnel`] of the source called
    /// `source_name` (what a source that opens a [`Tunnel`] returns).
    pub fn for_source(self, source_name: impl Into<String>) -> SourceError {
        SourceError::Tunnel { source_name: source_name.into(), error: Box::new(self) }
    }
}

/// A fingerprint as configured, checked and without base64 padding.
fn parse_fingerprint(text: &str) -> Result<String, TunnelError> {
    let bad = |why: &str| TunnelError::Config {
        reason: format!(
            "`host_key`: {why}; give the SSH server's host key fingerprint as `SHA256:…` \
             (`ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub` on the server prints it)"
        ),
    };
    let text = text.trim();
    if text.is_empty() {
        return Err(bad("the fingerprint is missing (no host key is ever trusted blindly)"));
    }
    let Some(digest) = text.strip_prefix("SHA256:") else {
        return Err(bad(&format!("{text:?} is not a SHA256 fingerprint")));
    };
    let digest = digest.trim_end_matches('=');
    if digest.len() != 43 || !digest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/') {
        return Err(bad(&format!(
            "{text:?} is not a SHA256 fingerprint (43 base64 characters after `SHA256:`)"
        )));
    }
    Ok(format!("SHA256:{digest}"))
}

/// Reads an unencrypted private key in OpenSSH's format.
fn load_key(path: &Path) -> Result<PrivateKey, TunnelError> {
    let bad = |reason: String| TunnelError::Key { path: path.to_owned(), reason };
    let text = std::fs::read_to_string(path).map_err(|e| bad(format!("cannot read it: {e}")))?;
    match russh::keys::decode_secret_key(&text, None) {
        Ok(key) => Ok(key),
        Err(russh::keys::Error::KeyIsEncrypted) => {
            Err(bad("the key is encrypted with a passphrase; use a key without one".to_owned()))
        }
        Err(russh::keys::Error::UnsupportedKeyType { key_type_string, .. }) => Err(bad(format!(
            "keys of type {key_type_string} are not supported: use an Ed25519 key (`reverse_etl keygen PATH`)"
        ))),
        // The decoder's own message never quotes the key.
        Err(e) => Err(bad(format!("not a usable OpenSSH private key: {e}"))),
    }
}

/// The fingerprint of a host key or of a host certificate's key.
fn host_key_fingerprint(key: &PublicKeyOrCertificate) -> String {
    match key {
        PublicKeyOrCertificate::PublicKey { key, .. } => key.fingerprint(HashAlg::Sha256).to_string(),
        PublicKeyOrCertificate::Certificate(cert) => {
            russh::keys::PublicKey::from(cert.public_key().clone()).fingerprint(HashAlg::Sha256).to_string()
        }
    }
}

/// What the session tells the tunnel: the host key it saw, and why it ended.
#[derive(Debug, Default)]
struct SessionEvents {
    presented_host_key: Option<String>,
    ended: Option<String>,
}

/// The russh client handler: pins the host key, records the end of the session.
struct Client {
    expected: String,
    events: Arc<Mutex<SessionEvents>>,
}

impl client::Handler for Client {
    type Error = russh::Error;

    fn check_server_key(
        &mut self,
        server_public_key: &PublicKeyOrCertificate,
    ) -> impl Future<Output = Result<bool, Self::Error>> + Send {
        let presented = host_key_fingerprint(server_public_key);
        let matches = presented == self.expected;
        lock(&self.events).presented_host_key = Some(presented);
        async move { Ok(matches) }
    }

    fn disconnected(
        &mut self,
        reason: DisconnectReason<Self::Error>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send {
        let (text, result) = match reason {
            DisconnectReason::ReceivedDisconnect(info) => {
                (format!("the server disconnected: {}", info.message.trim()), Ok(()))
            }
            DisconnectReason::Error(e) => (e.to_string(), Err(e)),
        };
        lock(&self.events).ended = Some(text);
        async move { result }
    }
}

/// Says in the reason of a lost connection that it went through an SSH tunnel, and
/// whether the SSH session ended.
pub(crate) fn note_tunnel(error: &mut SourceError, tunnel: Option<&Tunnel>) {
    if let (Some(tunnel), SourceError::Connection { reason, .. }) = (tunnel, error) {
        reason.push_str(&format!(" (through the SSH tunnel via {}", tunnel.server()));
        if tunnel.is_closed() {
            reason.push_str("; the SSH session ended");
            if let Some(why) = tunnel.end_reason() {
                reason.push_str(&format!(": {why}"));
            }
        }
        reason.push(')');
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The parts of an open tunnel its tasks share.
struct Session {
    handle: Handle<Client>,
    events: Arc<Mutex<SessionEvents>>,
    target_host: String,
    target_port: u16,
    /// The channel [`Tunnel::open`] opened, for the first connection.
    first_channel: Mutex<Option<(Channel<client::Msg>, Instant)>>,
}

/// An open SSH tunnel: a listener on `127.0.0.1` whose connections are forwarded
/// through the SSH server to the database. Closed when dropped.
///
/// See the [module docs](self) for an example.
pub struct Tunnel {
    local_addr: SocketAddr,
    server: String,
    ssh: String,
    target: String,
    session: Arc<Session>,
    accept: JoinHandle<()>,
}

impl Tunnel {
    /// Connects to the SSH server, checks its host key, logs in with the private key,
    /// opens a first `direct-tcpip` channel to `target_host:target_port` (the
    /// database, as the SSH server sees it), and starts listening on
    /// `127.0.0.1:<free port>`. Must run inside a tokio runtime.
    ///
    /// Every step has [`SshConfig::connect_timeout`] and its own error (see
    /// [`TunnelError`]).
    pub async fn open(
        config: &SshConfig,
        target_host: &str,
        target_port: u16,
    ) -> Result<Tunnel, TunnelError> {
        let key = Arc::new(load_key(&config.private_key_path)?);
        let server = config.server();
        let target = if target_host.contains(':') {
            format!("[{target_host}]:{target_port}")
        } else {
            format!("{target_host}:{target_port}")
        };
        let timeout = config.connect_timeout;
        let timed_out = |what: &str| TunnelError::Connect {
            server: server.clone(),
            reason: format!(
                "{what} within the connect timeout of {}",
                crate::error::format_duration(timeout)
            ),
            source: None,
        };
        let connect_error = |reason: String, e: BoxError| TunnelError::Connect {
            server: server.clone(),
            reason,
            source: Some(e),
        };

        tracing::debug!(ssh = %config, target = %target, "opening an SSH tunnel");
        let socket = tokio::time::timeout(timeout, TcpStream::connect((config.host.as_str(), config.port)))
            .await
            .map_err(|_| timed_out("no answer"))?
            .map_err(|e| connect_error(e.to_string(), Box::new(e)))?;
        let _ = socket.set_nodelay(true);

        let events = Arc::new(Mutex::new(SessionEvents::default()));
        let handler = Client { expected: config.host_key.clone(), events: events.clone() };
        let ssh_config = Arc::new(client::Config {
            keepalive_interval: Some(SSH_KEEPALIVE_INTERVAL),
            keepalive_max: 3,
            nodelay: true,
            ..client::Config::default()
        });
        let handshake = tokio::time::timeout(timeout, client::connect_stream(ssh_config, socket, handler))
            .await
            .map_err(|_| timed_out("no SSH handshake"))?;
        let mut handle = match handshake {
            Ok(handle) => handle,
            Err(e) => {
                let presented = lock(&events).presented_host_key.clone();
                return Err(match presented {
                    Some(presented) if presented != config.host_key => {
                        TunnelError::HostKey { server, presented, expected: config.host_key.clone() }
                    }
                    _ => connect_error(format!("the SSH handshake failed: {e}"), Box::new(e)),
                });
            }
        };

        let login = PrivateKeyWithHashAlg::new(key.clone(), None);
        let auth = tokio::time::timeout(timeout, handle.authenticate_publickey(config.user.clone(), login))
            .await
            .map_err(|_| timed_out("no answer to the login"))?
            .map_err(|e| connect_error(format!("the SSH login failed: {e}"), Box::new(e)))?;
        if !auth.success() {
            return Err(TunnelError::Login {
                server,
                user: config.user.clone(),
                key_path: config.private_key_path.clone(),
                key_fingerprint: key.public_key().fingerprint(HashAlg::Sha256).to_string(),
            });
        }
        drop(key);

        let first = tokio::time::timeout(
            timeout,
            handle.channel_open_direct_tcpip(target_host, u32::from(target_port), "127.0.0.1", 0),
        )
        .await
        .map_err(|_| TunnelError::Forward {
            server: server.clone(),
            target: target.clone(),
            reason: format!(
                "no answer within the connect timeout of {}",
                crate::error::format_duration(timeout)
            ),
        })?
        .map_err(|e| TunnelError::Forward {
            server: server.clone(),
            target: target.clone(),
            reason: describe_channel_error(&e),
        })?;

        let listener = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(|e| connect_error(format!("cannot listen on 127.0.0.1: {e}"), Box::new(e)))?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| connect_error(format!("cannot listen on 127.0.0.1: {e}"), Box::new(e)))?;
        let session = Arc::new(Session {
            handle,
            events,
            target_host: target_host.to_owned(),
            target_port,
            first_channel: Mutex::new(Some((first, Instant::now()))),
        });
        let accept = tokio::spawn(accept_loop(listener, session.clone(), target.clone()));
        tracing::debug!(ssh = %config, target = %target, local = %local_addr, "SSH tunnel open");
        Ok(Tunnel { local_addr, server, ssh: config.to_string(), target, session, accept })
    }

    /// The local address to connect the database driver to: `127.0.0.1:<port>`.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The database's `host:port`, as the SSH server sees it.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The SSH server's `host:port`.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Whether the SSH session has ended (then every forwarded connection has been
    /// closed, and new ones are refused).
    pub fn is_closed(&self) -> bool {
        self.session.handle.is_closed() || self.accept.is_finished()
    }

    /// Why the SSH session ended, when it did and said why.
    pub fn end_reason(&self) -> Option<String> {
        lock(&self.session.events).ended.clone()
    }

    /// Closes the tunnel: stops listening, closes the forwarded connections and
    /// disconnects from the SSH server politely. Dropping the tunnel does the same
    /// without waiting.
    pub async fn close(self) {
        self.accept.abort();
        let _ = self.session.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        // Aborting the accept loop drops its listener and every forwarding task.
        self.accept.abort();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let session = self.session.clone();
            runtime.spawn(async move {
                let _ = session.handle.disconnect(russh::Disconnect::ByApplication, "", "en").await;
            });
        }
    }
}

impl fmt::Debug for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tunnel")
            .field("ssh", &self.ssh)
            .field("target", &self.target)
            .field("local_addr", &self.local_addr)
            .field("closed", &self.is_closed())
            .finish()
    }
}

/// Accepts local connections and forwards each through a channel of its own. Ends
/// (closing the forwarded connections) when the SSH session ends.
async fn accept_loop(listener: TcpListener, session: Arc<Session>, target: String) {
    let mut forwards = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            // Reap finished forwards; notice the end of the session.
            Some(_) = forwards.join_next(), if !forwards.is_empty() => continue,
            () = tokio::time::sleep(Duration::from_millis(500)), if session.handle.is_closed() => {
                break;
            }
        };
        if session.handle.is_closed() {
            break;
        }
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tracing::debug!(target = %target, error = %e, "SSH tunnel: accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let session = session.clone();
        let target = target.clone();
        forwards.spawn(async move {
            let first = lock(&session.first_channel).take();
            let channel = match first {
                Some((channel, opened)) if opened.elapsed() < FIRST_CHANNEL_FRESH_FOR => Ok(channel),
                _ => {
                    session
                        .handle
                        .channel_open_direct_tcpip(
                            session.target_host.as_str(),
                            u32::from(session.target_port),
                            peer.ip().to_string(),
                            u32::from(peer.port()),
                        )
                        .await
                }
            };
            match channel {
                Ok(channel) => forward(stream, channel).await,
                Err(e) => tracing::warn!(
                    target = %target,
                    error = %describe_channel_error(&e),
                    "SSH tunnel: the server could not open a connection to the database"
                ),
            }
        });
    }
    tracing::debug!(target = %target, "SSH tunnel: closed");
    // Dropping `forwards` aborts every forwarding task, closing its connection.
}

/// Copies bytes both ways until either side ends; then both are closed.
async fn forward(mut local: TcpStream, channel: Channel<client::Msg>) {
    let _ = local.set_nodelay(true);
    let mut remote = channel.into_stream();
    if let Err(e) = tokio::io::copy_bidirectional(&mut local, &mut remote).await {
        tracing::debug!(error = %e, "SSH tunnel: a forwarded connection ended with an error");
    }
}

/// A readable reason for a failed channel open.
fn describe_channel_error(e: &russh::Error) -> String {
    match e {
        russh::Error::ChannelOpenFailure(failure) => match failure {
            ChannelOpenFailure::AdministrativelyProhibited => {
                "the SSH server does not allow TCP forwarding (AllowTcpForwarding, PermitOpen)".to_owned()
            }
            ChannelOpenFailure::ConnectFailed => {
                "the connection failed (nothing listens there, or the host is unknown or unreachable from \
                 the SSH server)"
                    .to_owned()
            }
            ChannelOpenFailure::ResourceShortage => "the SSH server is out of resources".to_owned(),
            other => format!("the SSH server refused the channel ({other:?})"),
        },
        other => other.to_string(),
    }
}

/// A key pair written by [`generate_key`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct GeneratedKey {
    /// The private key's file (mode 0600).
    pub private_key_path: PathBuf,
    /// The public key's file: the private key's path with `.pub` added.
    pub public_key_path: PathBuf,
    /// The public key as one `authorized_keys` line: `ssh-ed25519 AAAA… comment`.
    pub authorized_keys_line: String,
    /// The public key's fingerprint, `SHA256:…` (what the SSH server logs).
    pub fingerprint: String,
}

/// The comment [`generate_key`] writes into new keys.
pub const KEY_COMMENT: &str = "cdp-warehouse";

/// Writes a new Ed25519 key pair: the private key to `path` in OpenSSH's format
/// (mode 0600, never printed or logged), the public key to `path.pub`. Neither file
/// may exist yet (a key in use is never overwritten: rotating is writing a new one).
///
/// ```
/// use cdp_source::tunnel::{SshConfig, generate_key};
///
/// let dir = tempfile::tempdir()?;
/// let key = generate_key(dir.path().join("id_ed25519"))?;
/// assert!(key.authorized_keys_line.starts_with("ssh-ed25519 AAAA"));
/// assert_eq!(std::fs::read_to_string(&key.public_key_path)?.trim_end(), key.authorized_keys_line);
/// # #[cfg(unix)] {
/// use std::os::unix::fs::PermissionsExt;
/// assert_eq!(std::fs::metadata(&key.private_key_path)?.permissions().mode() & 0o777, 0o600);
/// # }
///
/// // A tunnel configured with it logs in with that key.
/// let ssh = SshConfig::new("bastion", "tunnel", &key.private_key_path,
///                          "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4")?;
/// assert_eq!(ssh.key_fingerprint()?, key.fingerprint);
///
/// // Never over an existing key.
/// assert!(generate_key(&key.private_key_path).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn generate_key(path: impl AsRef<Path>) -> Result<GeneratedKey, TunnelError> {
    use russh::keys::ssh_key::LineEnding;
    use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
    use zeroize::Zeroize;

    let path = path.as_ref();
    let mut public_path = path.as_os_str().to_owned();
    public_path.push(".pub");
    let public_path = PathBuf::from(public_path);
    let bad = |path: &Path, reason: String| TunnelError::Key { path: path.to_owned(), reason };

    let mut seed = [0_u8; 32];
    getrandom::fill(&mut seed).map_err(|e| bad(path, format!("no randomness from the system: {e}")))?;
    let keypair = Ed25519Keypair::from_seed(&seed);
    seed.zeroize();
    let key = PrivateKey::new(KeypairData::Ed25519(keypair), KEY_COMMENT)
        .map_err(|e| bad(path, format!("cannot make the key: {e}")))?;
    let private_text =
        key.to_openssh(LineEnding::LF).map_err(|e| bad(path, format!("cannot encode the key: {e}")))?;
    let public_line = key
        .public_key()
        .to_openssh()
        .map_err(|e| bad(&public_path, format!("cannot encode the public key: {e}")))?;

    for existing in [path, public_path.as_path()] {
        if existing.exists() {
            return Err(bad(existing, "the file exists already; keys are never overwritten".to_owned()));
        }
    }
    write_new(path, private_text.as_bytes(), 0o600)
        .map_err(|e| bad(path, format!("cannot write it: {e}")))?;
    if let Err(e) = write_new(&public_path, format!("{public_line}\n").as_bytes(), 0o644) {
        let _ = std::fs::remove_file(path);
        return Err(bad(&public_path, format!("cannot write it: {e}")));
    }
    Ok(GeneratedKey {
        private_key_path: path.to_owned(),
        public_key_path: public_path,
        fingerprint: key.public_key().fingerprint(HashAlg::Sha256).to_string(),
        authorized_keys_line: public_line,
    })
}

/// Creates `path` (which must not exist) with `mode`, writes `bytes` and syncs.
fn write_new(path: &Path, bytes: &[u8], mode: u32) -> std::io::Result<()> {
    use std::io::Write;

    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
    #[cfg(not(unix))]
    let _ = mode;
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    const FP: &str = "SHA256:f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4";

    #[test]
    fn fingerprints_are_checked() {
        assert_eq!(parse_fingerprint(FP).unwrap(), FP);
        assert_eq!(parse_fingerprint(&format!(" {FP}= ")).unwrap(), FP);
        for bad in ["", "f/g2UYERH6NJ9y5me/bh1bgCODrd+XGCxAJSmCCk+P4", "MD5:12:34", "SHA256:short", "SHA256:"]
        {
            let error = parse_fingerprint(bad).unwrap_err().to_string();
            assert!(error.starts_with("invalid SSH tunnel settings: `host_key`: "), "{error}");
        }
    }

    #[test]
    fn settings_show_no_secret_and_read_naturally() {
        let ssh = SshConfig::new("bastion", "etl", "/keys/id", FP).unwrap();
        assert_eq!((ssh.port(), ssh.connect_timeout()), (22, DEFAULT_SSH_CONNECT_TIMEOUT));
        assert_eq!(ssh.to_string(), "etl@bastion:22");
        assert_eq!(ssh.clone().with_port(2200).to_string(), "etl@bastion:2200");
        let v6 = SshConfig::new("::1", "etl", "/keys/id", FP).unwrap();
        assert_eq!(v6.to_string(), "etl@[::1]:22");
        assert!(SshConfig::new("", "etl", "/k", FP).is_err());
        assert!(SshConfig::new("h", "", "/k", FP).is_err());
    }

    #[test]
    fn keys_are_generated_readable_and_never_overwritten() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("k");
        let key = generate_key(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("-----BEGIN OPENSSH PRIVATE KEY-----\n"), "OpenSSH format");
        assert!(
            key.authorized_keys_line.starts_with("ssh-ed25519 ")
                && key.authorized_keys_line.ends_with(" cdp-warehouse")
        );
        let loaded = load_key(&path).unwrap();
        assert_eq!(loaded.public_key().fingerprint(HashAlg::Sha256).to_string(), key.fingerprint);
        // Two keys differ.
        let other = generate_key(dir.path().join("k2")).unwrap();
        assert_ne!(other.fingerprint, key.fingerprint);
        let error = generate_key(&path).unwrap_err().to_string();
        assert!(error.contains("exists already"), "{error}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), text, "untouched");
        // Only the public file left over from elsewhere: refused too, nothing written.
        std::fs::write(dir.path().join("k3.pub"), "x").unwrap();
        assert!(generate_key(dir.path().join("k3")).is_err());
        assert!(!dir.path().join("k3").exists());
    }

    #[test]
    fn unusable_keys_say_why_without_their_content() {
        let dir = tempfile::tempdir().unwrap();
        let missing = load_key(&dir.path().join("nope")).unwrap_err().to_string();
        assert!(missing.contains("cannot read it"), "{missing}");
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "not-a-key-secret-material").unwrap();
        let error = load_key(&garbage).unwrap_err().to_string();
        assert!(
            error.contains("not a usable OpenSSH private key") && !error.contains("secret-material"),
            "{error}"
        );
    }
}
