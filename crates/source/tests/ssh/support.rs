//! The OpenSSH test server for the SSH tunnel tests, shared by cdp-source's and
//! cdp-sync's tests (`#[path]`-included): where it is (from the environment `bash
//! .ci/test` sets), authorizing and revoking keys, and servers of a test's own
//! (`start.sh` on another port) whose sessions a test can kill.
#![allow(dead_code, unreachable_pub)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use cdp_source::tunnel::{GeneratedKey, SshConfig, generate_key};

/// The variables `.ci/test` sets for these tests.
const VARIABLES: [&str; 4] =
    ["CDP_TEST_SSH_ADDR", "CDP_TEST_SSH_USER", "CDP_TEST_SSH_AUTHORIZED_KEYS", "CDP_TEST_SSH_HOST_KEY_FP"];

fn variable(name: &str) -> String {
    std::env::var(name).ok().filter(|v| !v.is_empty()).unwrap_or_else(|| {
        panic!(
            "{name} is not set: the SSH tunnel tests need the OpenSSH test server that `bash .ci/test` \
             starts (crates/source/tests/ssh/start.sh) and describes in {VARIABLES:?}; run them with \
             `bash .ci/test`"
        )
    })
}

/// An OpenSSH server for the tests: where it listens, the user, its authorized_keys
/// file and its host key's fingerprint.
#[derive(Debug, Clone)]
pub struct SshServer {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub authorized_keys: PathBuf,
    pub host_key: String,
}

/// The shared test server (`CDP_TEST_SSH_*`). Fails loudly without it.
pub fn server() -> SshServer {
    let addr = variable("CDP_TEST_SSH_ADDR");
    let (host, port) =
        addr.rsplit_once(':').unwrap_or_else(|| panic!("CDP_TEST_SSH_ADDR={addr}: not host:port"));
    SshServer {
        host: host.to_owned(),
        port: port.parse().unwrap_or_else(|_| panic!("CDP_TEST_SSH_ADDR={addr}: not host:port")),
        user: variable("CDP_TEST_SSH_USER"),
        authorized_keys: PathBuf::from(variable("CDP_TEST_SSH_AUTHORIZED_KEYS")),
        host_key: variable("CDP_TEST_SSH_HOST_KEY_FP"),
    }
}

/// Serializes changes to authorized_keys files within a test binary.
static AUTHORIZED_KEYS: Mutex<()> = Mutex::new(());

impl SshServer {
    /// A tunnel configuration for this server with the key at `key`.
    pub fn config(&self, key: &Path) -> SshConfig {
        SshConfig::new(&self.host, &self.user, key, &self.host_key)
            .unwrap()
            .with_port(self.port)
            .with_connect_timeout(Duration::from_secs(10))
    }

    /// Adds the key's public line to the server's authorized_keys.
    pub fn authorize(&self, key: &GeneratedKey) {
        self.rewrite(|lines| lines.push(key.authorized_keys_line.clone()));
    }

    /// Removes the key's line from the server's authorized_keys.
    pub fn revoke(&self, key: &GeneratedKey) {
        self.rewrite(|lines| lines.retain(|l| l.trim() != key.authorized_keys_line));
    }

    /// Rewrites authorized_keys through a temporary file renamed over it, so the
    /// server never reads half a file.
    fn rewrite(&self, change: impl FnOnce(&mut Vec<String>)) {
        let _guard = AUTHORIZED_KEYS.lock().unwrap_or_else(|p| p.into_inner());
        let text = std::fs::read_to_string(&self.authorized_keys).unwrap_or_default();
        let mut lines: Vec<String> =
            text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect();
        change(&mut lines);
        let mut temporary = self.authorized_keys.clone().into_os_string();
        temporary.push(format!(".{}.tmp", std::process::id()));
        let body: String = lines.iter().map(|l| format!("{l}\n")).collect();
        std::fs::write(&temporary, body).unwrap();
        std::fs::rename(&temporary, &self.authorized_keys).unwrap();
    }
}

/// A new Ed25519 key in `dir`, named `name`.
pub fn new_key(dir: &Path, name: &str) -> GeneratedKey {
    generate_key(dir.join(name)).unwrap()
}

/// A port nothing listens on (bound, then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `start.sh`, beside this file.
fn start_script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../source/tests/ssh/start.sh")
}

/// An OpenSSH server of the test's own (start.sh in a temporary directory, on a free
/// port), same user as the shared one, so a test can kill its sessions without
/// touching anyone else's. Stopped when dropped.
#[derive(Debug)]
pub struct OwnSshServer {
    dir: tempfile::TempDir,
    pub server: SshServer,
}

impl OwnSshServer {
    pub fn start() -> OwnSshServer {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        run_start_script(dir.path(), port);
        let output = Command::new("ssh-keygen")
            .args(["-l", "-E", "sha256", "-f"])
            .arg(dir.path().join("host_key.pub"))
            .output()
            .unwrap();
        assert!(output.status.success(), "ssh-keygen -l: {}", String::from_utf8_lossy(&output.stderr));
        let host_key =
            String::from_utf8(output.stdout).unwrap().split_whitespace().nth(1).unwrap().to_owned();
        let server = SshServer {
            host: "127.0.0.1".to_owned(),
            port,
            user: server().user,
            authorized_keys: dir.path().join("authorized_keys"),
            host_key,
        };
        OwnSshServer { dir, server }
    }

    /// The listening sshd's PID.
    pub fn pid(&self) -> u32 {
        std::fs::read_to_string(self.dir.path().join("sshd.pid")).unwrap().trim().parse().unwrap()
    }

    /// The sshd processes serving connections: every descendant of the listening one
    /// (the per-connection monitor and its unprivileged child).
    pub fn session_pids(&self) -> Vec<u32> {
        descendants(self.pid())
    }

    /// Kills every session's processes (SIGKILL): each client sees its connection
    /// drop. The server goes on listening. Returns how many were killed.
    pub fn kill_sessions(&self) -> usize {
        let pids = self.session_pids();
        for pid in &pids {
            let _ = Command::new("kill").args(["-KILL", &pid.to_string()]).status();
        }
        pids.len()
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("sshd.log")).unwrap_or_default()
    }
}

impl Drop for OwnSshServer {
    fn drop(&mut self) {
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("sshd.pid")) else { return };
        let Ok(pid) = pid.trim().parse::<u32>() else { return };
        let sessions = descendants(pid);
        let _ = Command::new("kill").args(["-TERM", &pid.to_string()]).status();
        for child in sessions {
            let _ = Command::new("kill").args(["-KILL", &child.to_string()]).status();
        }
    }
}

fn run_start_script(dir: &Path, port: u16) {
    let output = Command::new("bash").arg(start_script()).arg(dir).arg(port.to_string()).output().unwrap();
    assert!(
        output.status.success(),
        "start.sh {} {port} failed: {}{}",
        dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The PIDs of every descendant of `root`, from /proc.
fn descendants(root: u32) -> Vec<u32> {
    let mut parents: Vec<(u32, u32)> = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // pid (comm) state ppid …: the name may hold spaces and parentheses.
        let Some((_, after)) = stat.rsplit_once(')') else { continue };
        let Some(ppid) = after.split_whitespace().nth(1).and_then(|p| p.parse::<u32>().ok()) else {
            continue;
        };
        parents.push((pid, ppid));
    }
    let mut found = vec![root];
    let mut i = 0;
    while i < found.len() {
        let parent = found[i];
        found.extend(parents.iter().filter(|(_, ppid)| *ppid == parent).map(|(pid, _)| *pid));
        i += 1;
    }
    found.remove(0);
    found
}

/// Waits up to `limit` for `condition`.
pub fn wait_until(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    condition()
}
