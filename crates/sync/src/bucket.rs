//! The bucket export writer as a destination.

use std::sync::Arc;

use cdp_bucket::{SyncReport, WriterThread};
use cdp_calls::Call;
use tokio::sync::{Mutex, OwnedMutexGuard};

use crate::{Delivery, Destination, DestinationError, Rejection};

/// Calls handed to the writer at a time.
const BATCH: usize = 500;

/// Appends the calls of a run to a bucket writer on a thread of its own
/// ([`WriterThread`]: in batches, through its spool), and publishes them as one sync when the run finishes: each run is one
/// position, one file per call type.
///
/// The writer is shared: several syncs may deliver to the same bucket destination.
/// A run holds the writer from its first call to its end, so that runs of
/// different syncs never mix in a position (a second run waits for the first to
/// finish). A run that fails publishes nothing: its calls are taken back
/// ([`cdp_bucket::BucketWriter::discard_open`]), also when the destination is dropped
/// unfinished, and the next run reads the same rows again. The one exception is a
/// run that fills a file past the writer's `max_file_bytes`: what it wrote up to
/// then was published as a position of its own.
#[derive(Debug)]
pub struct BucketDestination {
    name: String,
    writer: Arc<Mutex<WriterThread>>,
    /// The writer, held from the run's first call to its end.
    held: Option<OwnedMutexGuard<WriterThread>>,
    pending: Vec<Call>,
    published: Vec<SyncReport>,
}

impl BucketDestination {
    /// A destination writing through `writer`.
    pub fn new(name: impl Into<String>, writer: Arc<Mutex<WriterThread>>) -> BucketDestination {
        BucketDestination {
            name: name.into(),
            writer,
            held: None,
            pending: Vec::with_capacity(BATCH),
            published: Vec::new(),
        }
    }

    /// The syncs published by this run so far.
    pub fn published(&self) -> &[SyncReport] {
        &self.published
    }

    fn error(&self, source: cdp_bucket::BucketError) -> DestinationError {
        DestinationError::Bucket { destination: self.name.clone(), source: Box::new(source) }
    }

    /// The writer, waiting for a run of another sync to end first.
    async fn writer(&mut self) -> &mut WriterThread {
        if self.held.is_none() {
            self.held = Some(self.writer.clone().lock_owned().await);
        }
        self.held.as_mut().expect("held above")
    }

    async fn flush(&mut self) -> Result<(), DestinationError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let calls = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        let appended = self.writer().await.append(calls).await.map_err(|e| self.error(e))?;
        self.published.extend(appended.published);
        Ok(())
    }

    /// Takes back what this run appended, and lets the writer go. The discard is
    /// queued before the writer is let go, so the next run's calls come after it.
    fn discard(&mut self) {
        self.pending.clear();
        if let Some(writer) = self.held.take()
            && let Err(e) = writer.discard_open_later()
        {
            tracing::error!(destination = %self.name, error = %e, "the failed run's calls could not be taken back");
        }
    }
}

#[async_trait::async_trait]
impl Destination for BucketDestination {
    fn name(&self) -> &str {
        &self.name
    }

    async fn send(&mut self, delivery: Delivery) -> Result<Vec<Rejection>, DestinationError> {
        self.pending.push(delivery.call);
        if self.pending.len() >= BATCH {
            self.flush().await?;
        }
        Ok(Vec::new())
    }

    async fn finish(&mut self) -> Result<Vec<Rejection>, DestinationError> {
        self.flush().await?;
        let reports = self.writer().await.sync_now().await.map_err(|e| self.error(e))?;
        self.published.extend(reports);
        self.held = None;
        Ok(Vec::new())
    }

    async fn abort(&mut self) {
        self.discard();
    }
}

impl Drop for BucketDestination {
    fn drop(&mut self) {
        // Dropped mid-run (the run's task was cancelled): publish nothing of it.
        self.discard();
    }
}
