//! The bucket export writer as a destination.

use std::sync::Arc;

use cdp_bucket::{BucketWriter, SyncReport};
use cdp_calls::Call;
use tokio::sync::Mutex;

use crate::{Delivery, Destination, DestinationError, Rejection};

/// Calls handed to the writer at a time.
const BATCH: usize = 500;

/// Appends the calls of a run to a [`BucketWriter`] (in batches, through its
/// spool), and publishes them as one sync when the run finishes: each run is one
/// position, one file per call type.
///
/// The writer is shared: several syncs may deliver to the same bucket destination,
/// each run taking its turn at the writer.
#[derive(Debug)]
pub struct BucketDestination {
    name: String,
    writer: Arc<Mutex<BucketWriter>>,
    pending: Vec<Call>,
    published: Vec<SyncReport>,
}

impl BucketDestination {
    /// A destination writing through `writer`.
    pub fn new(name: impl Into<String>, writer: Arc<Mutex<BucketWriter>>) -> BucketDestination {
        BucketDestination {
            name: name.into(),
            writer,
            pending: Vec::with_capacity(BATCH),
            published: Vec::new(),
        }
    }

    /// The syncs published by this run so far.
    pub fn published(&self) -> &[SyncReport] {
        &self.published
    }

    async fn flush(&mut self) -> Result<(), DestinationError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let calls = std::mem::replace(&mut self.pending, Vec::with_capacity(BATCH));
        let appended = self.writer.lock().await.append(calls).await.map_err(|source| {
            DestinationError::Bucket { destination: self.name.clone(), source: Box::new(source) }
        })?;
        self.published.extend(appended.published);
        Ok(())
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
        let reports = self.writer.lock().await.sync_now().await.map_err(|source| {
            DestinationError::Bucket { destination: self.name.clone(), source: Box::new(source) }
        })?;
        self.published.extend(reports);
        Ok(Vec::new())
    }
}
