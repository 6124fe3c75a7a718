//! The rejected-calls file: every call dropped from a permissive request, with its
//! reason, one JSON object a line, rotated and capped in size.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use cdp_calls::Timestamp;
use serde::Serialize;
use serde_json::value::RawValue;

use crate::Rejected;

/// The file being written; rotated ones are `rejected.1.ndjson` (newest) to
/// `rejected.<keep>.ndjson` (oldest).
pub const REJECTED_FILE: &str = "rejected.ndjson";

/// Where dropped calls go and how much of them is kept.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RejectedConfig {
    /// The directory of the files; created when the first call is dropped.
    pub dir: PathBuf,
    /// A file is rotated before it would pass this size. Default: 16 MiB.
    pub file_bytes: u64,
    /// How many rotated files are kept beside the one being written; older ones
    /// are deleted (and the deletion logged). Default: 4, so at most 80 MiB.
    pub keep: usize,
}

impl RejectedConfig {
    /// Files in `dir`, with the default sizes.
    pub fn new(dir: impl Into<PathBuf>) -> RejectedConfig {
        RejectedConfig { dir: dir.into(), file_bytes: 16 * 1024 * 1024, keep: 4 }
    }

    /// The path of the file being written.
    pub fn current(&self) -> PathBuf {
        self.dir.join(REJECTED_FILE)
    }

    /// The path of the `n`th rotated file (1 is the newest).
    pub fn rotated(&self, n: usize) -> PathBuf {
        self.dir.join(format!("rejected.{n}.ndjson"))
    }
}

/// One line of the file.
#[derive(Serialize)]
struct Line<'a> {
    /// When the request arrived (the `receivedAt` its valid calls got).
    #[serde(rename = "receivedAt")]
    received_at: &'a str,
    route: &'a str,
    index: usize,
    #[serde(rename = "type")]
    call_type: Option<&'static str>,
    code: &'static str,
    reason: String,
    call: &'a RawValue,
}

/// The open file, appended to.
#[derive(Debug)]
pub(crate) struct RejectedLog {
    config: RejectedConfig,
    file: Option<(File, u64)>,
}

impl RejectedLog {
    pub(crate) fn new(config: RejectedConfig) -> RejectedLog {
        RejectedLog { config, file: None }
    }

    /// Appends a request's dropped calls (one write for the request).
    pub(crate) fn write(
        &mut self,
        received_at: Timestamp,
        route: &str,
        calls: &[Rejected],
    ) -> io::Result<()> {
        let received_at = received_at.to_string();
        let mut lines = Vec::with_capacity(calls.iter().map(|c| c.call.len() + 256).sum());
        for rejected in calls {
            let fallback;
            let call: &RawValue = match serde_json::from_str(&rejected.call) {
                Ok(raw) => raw,
                // Never happens (the call was read as JSON); keep it as a string.
                Err(_) => {
                    fallback = serde_json::value::to_raw_value(&rejected.call)?;
                    &fallback
                }
            };
            let line = Line {
                received_at: &received_at,
                route,
                index: rejected.index,
                call_type: rejected.call_type.map(|t| t.as_str()),
                code: rejected.error.code(),
                reason: rejected.error.to_string(),
                call,
            };
            serde_json::to_writer(&mut lines, &line)?;
            lines.push(b'\n');
        }
        let len = lines.len() as u64;
        if self.file.as_ref().is_some_and(|(_, size)| *size > 0 && size + len > self.config.file_bytes) {
            self.rotate()?;
        }
        let (file, size) = match &mut self.file {
            Some(open) => open,
            None => self.file.insert(self.open()?),
        };
        file.write_all(&lines)?;
        *size += len;
        Ok(())
    }

    fn open(&self) -> io::Result<(File, u64)> {
        fs::create_dir_all(&self.config.dir)?;
        let path = self.config.current();
        let file = OpenOptions::new().create(true).append(true).open(&path)?;
        let size = file.metadata()?.len();
        Ok((file, size))
    }

    /// Moves each file one number up, deleting the oldest.
    fn rotate(&mut self) -> io::Result<()> {
        self.file = None;
        let oldest = self.config.rotated(self.config.keep);
        match fs::metadata(&oldest) {
            Ok(meta) => {
                fs::remove_file(&oldest)?;
                tracing::warn!(file = %oldest.display(), bytes = meta.len(), "deleted the oldest rejected-calls file (cap reached)");
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
        for n in (1..self.config.keep).rev() {
            rename_if_there(&self.config.rotated(n), &self.config.rotated(n + 1))?;
        }
        if self.config.keep == 0 {
            fs::remove_file(self.config.current())
        } else {
            rename_if_there(&self.config.current(), &self.config.rotated(1))
        }
    }
}

fn rename_if_there(from: &Path, to: &Path) -> io::Result<()> {
    match fs::rename(from, to) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use cdp_calls::CallError;

    use super::*;

    fn rejected(index: usize, padding: usize) -> Rejected {
        Rejected {
            index,
            call_type: Some(cdp_calls::CallType::Track),
            error: CallError::MissingField { call_type: cdp_calls::CallType::Track, field: "event" },
            call: format!(r#"{{"type":"track","userId":"u","p":"{}"}}"#, "x".repeat(padding)),
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
    }

    #[test]
    fn lines_carry_the_call_its_reason_time_and_index() {
        let dir = tempfile::tempdir().unwrap();
        let config = RejectedConfig::new(dir.path().join("rejected"));
        let mut log = RejectedLog::new(config.clone());
        let at: Timestamp = "2026-11-30T10:00:00.123Z".parse().unwrap();
        log.write(at, "/v1/batch", &[rejected(2, 3)]).unwrap();
        let got = lines(&config.current());
        assert_eq!(
            got,
            [serde_json::json!({
                "receivedAt": "2026-11-30T10:00:00.123Z", "route": "/v1/batch", "index": 2, "type": "track",
                "code": "missing_field", "reason": "track call is missing required field `event`",
                "call": {"type": "track", "userId": "u", "p": "xxx"}
            })]
        );
    }

    #[test]
    fn files_rotate_before_passing_the_cap_and_the_oldest_go() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = RejectedConfig::new(dir.path());
        config.file_bytes = 1000;
        config.keep = 2;
        let mut log = RejectedLog::new(config.clone());
        let at: Timestamp = "2026-11-30T10:00:00Z".parse().unwrap();
        // Each line is about 400 bytes: two fit a file.
        for i in 0..9 {
            log.write(at, "/v1/track", &[rejected(i, 200)]).unwrap();
        }
        let index =
            |path: &Path| lines(path).iter().map(|l| l["index"].as_u64().unwrap()).collect::<Vec<_>>();
        assert_eq!(index(&config.current()), [8]);
        assert_eq!(index(&config.rotated(1)), [6, 7]);
        assert_eq!(index(&config.rotated(2)), [4, 5]);
        assert!(!config.rotated(3).exists());
        for path in [config.current(), config.rotated(1), config.rotated(2)] {
            assert!(fs::metadata(&path).unwrap().len() <= 1000, "{}", path.display());
        }
        // A new log goes on with the file that is there.
        drop(log);
        let mut log = RejectedLog::new(config.clone());
        log.write(at, "/v1/track", &[rejected(9, 200)]).unwrap();
        assert_eq!(index(&config.current()), [8, 9]);
    }
}
