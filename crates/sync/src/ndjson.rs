//! Newline-delimited JSON destination: one call per line, to a file or standard
//! output.

use std::path::{Path, PathBuf};

use tokio::io::{AsyncWrite, AsyncWriteExt};

use crate::{Delivery, Destination, DestinationError, Rejection};

/// Writes each call as one line of compact JSON, to a file (appended to, and synced
/// to disk when the run finishes if it is a regular file) or to standard output.
///
/// ```
/// use cdp_calls::Call;
/// use cdp_sync::{Delivery, Destination, NdjsonDestination};
///
/// # tokio::runtime::Builder::new_current_thread().build()?.block_on(async {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("calls.ndjson");
/// let mut out = NdjsonDestination::open("file", &path).await?;
/// out.send(Delivery { row_number: 1, call: Call::identify("u1").with_message_id("m1") }).await?;
/// out.finish().await?;
/// assert_eq!(std::fs::read_to_string(&path)?, "{\"type\":\"identify\",\"messageId\":\"m1\",\"userId\":\"u1\"}\n");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # })?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct NdjsonDestination {
    name: String,
    path: PathBuf,
    out: Box<dyn AsyncWrite + Send + Unpin>,
    file: Option<tokio::fs::File>,
    /// Lines not yet written: each call is written here as JSON, and the buffer goes
    /// to `out` once it holds [`WRITE_AT_BYTES`].
    buffer: Vec<u8>,
}

/// The buffer's capacity: lines are gathered in memory and written together.
const BUFFER_BYTES: usize = 1 << 20;
/// The buffer is written once it holds this much, leaving room for the next line
/// (a longer one grows it).
const WRITE_AT_BYTES: usize = BUFFER_BYTES - (64 << 10);

impl std::fmt::Debug for NdjsonDestination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NdjsonDestination").field("name", &self.name).field("path", &self.path).finish()
    }
}

impl NdjsonDestination {
    /// Opens `path` for appending (created if absent), or standard output for `-`.
    pub async fn open(
        name: impl Into<String>,
        path: impl AsRef<Path>,
    ) -> Result<NdjsonDestination, DestinationError> {
        let name = name.into();
        let path = path.as_ref().to_owned();
        let (out, file): (Box<dyn AsyncWrite + Send + Unpin>, _) = if path.as_os_str() == "-" {
            (Box::new(tokio::io::stdout()), None)
        } else {
            let file = tokio::fs::OpenOptions::new().create(true).append(true).open(&path).await.map_err(
                |source| DestinationError::Io {
                    destination: name.clone(),
                    path: path.display().to_string(),
                    source,
                },
            )?;
            let io = |source| DestinationError::Io {
                destination: name.clone(),
                path: path.display().to_string(),
                source,
            };
            // Only regular files are synced (not /dev/null, a pipe, …).
            let regular = file.metadata().await.map_err(io)?.is_file();
            let sync_handle = if regular { Some(file.try_clone().await.map_err(io)?) } else { None };
            (Box::new(file), sync_handle)
        };
        Ok(NdjsonDestination { name, path, out, file, buffer: Vec::with_capacity(BUFFER_BYTES) })
    }

    /// Writes the gathered lines.
    async fn write_buffer(&mut self) -> Result<(), DestinationError> {
        let written = self.out.write_all(&self.buffer).await;
        self.buffer.clear();
        written.map_err(|e| self.io(e))
    }

    fn io(&self, source: std::io::Error) -> DestinationError {
        DestinationError::Io { destination: self.name.clone(), path: self.path.display().to_string(), source }
    }
}

#[async_trait::async_trait]
impl Destination for NdjsonDestination {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&mut self, delivery: Delivery) -> Result<Vec<Rejection>, DestinationError> {
        delivery.call.write_json(&mut self.buffer);
        self.buffer.push(b'\n');
        if self.buffer.len() >= WRITE_AT_BYTES {
            self.write_buffer().await?;
        }
        Ok(Vec::new())
    }

    /// Writes each call as [`NdjsonDestination::send`] does, without a task per call.
    async fn send_all(
        &mut self,
        deliveries: &mut [Option<Delivery>],
        sent: &mut (dyn FnMut(Vec<Rejection>) + Send),
    ) -> Result<(), DestinationError> {
        for slot in deliveries {
            let Some(delivery) = slot else { continue };
            delivery.call.write_json(&mut self.buffer);
            self.buffer.push(b'\n');
            // Dropped where it is, not moved out first.
            *slot = None;
            if self.buffer.len() >= WRITE_AT_BYTES {
                self.write_buffer().await?;
            }
            sent(Vec::new());
        }
        Ok(())
    }

    async fn finish(&mut self) -> Result<Vec<Rejection>, DestinationError> {
        self.write_buffer().await?;
        if let Err(e) = self.out.flush().await {
            return Err(self.io(e));
        }
        if let Some(file) = &self.file
            && let Err(e) = file.sync_data().await
        {
            return Err(self.io(e));
        }
        Ok(Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use cdp_calls::Call;

    use super::*;

    #[tokio::test]
    async fn calls_sent_together_are_the_lines_of_calls_sent_one_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let calls: Vec<Delivery> = (1..=20_000)
            .map(|n| Delivery {
                row_number: n,
                call: Call::identify(format!("user \"{n}\" {}", "x".repeat(60))).with_message_id("m"),
            })
            .collect();
        let one_at_a_time = dir.path().join("one.ndjson");
        let mut out = NdjsonDestination::open("one", &one_at_a_time).await.unwrap();
        for delivery in calls.clone() {
            assert!(out.send(delivery).await.unwrap().is_empty());
        }
        out.finish().await.unwrap();
        let together = dir.path().join("together.ndjson");
        let mut out = NdjsonDestination::open("together", &together).await.unwrap();
        let mut sent = 0;
        let mut count = |rejections: Vec<Rejection>| {
            assert!(rejections.is_empty());
            sent += 1;
        };
        // Two goes over ~2.5 MB: the buffer is written during each and in between.
        let mut deliveries: Vec<_> = calls.into_iter().map(Some).collect();
        let (first, rest) = deliveries.split_at_mut(7_000);
        out.send_all(first, &mut count).await.unwrap();
        out.send_all(rest, &mut count).await.unwrap();
        assert!(deliveries.iter().all(Option::is_none), "every call is taken");
        out.finish().await.unwrap();
        assert_eq!(sent, 20_000);
        let text = std::fs::read_to_string(&together).unwrap();
        assert_eq!(text.lines().count(), 20_000);
        assert_eq!(text, std::fs::read_to_string(&one_at_a_time).unwrap());
    }
}
