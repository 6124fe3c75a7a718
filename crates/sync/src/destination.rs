//! Where a sync's calls go: the [`Destination`] trait and what it reports.

use cdp_calls::Call;

/// One call to deliver, with the number of the row it was made from (so that a
/// call the destination refuses becomes a row error naming its row).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// 1-based number of the row in the query's result.
    pub row_number: u64,
    /// The call.
    pub call: Call,
}

/// A call the destination refused for good (not a passing failure: those are
/// retried, and fail the run when retries run out).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rejection {
    /// The row the call was made from.
    pub row_number: u64,
    /// The call's `messageId`.
    pub message_id: Option<String>,
    /// The HTTP status, when the destination speaks HTTP.
    pub status: Option<u16>,
    /// What the destination said.
    pub message: String,
}

/// Why a destination failed: the run fails, and `last_sync_time` stays where it
/// was, so the next run reads the same rows again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DestinationError {
    /// The HTTP API kept failing (transport errors, 429 or 5xx) until the retries
    /// ran out, or answered with an error that no retry can fix (401, 403, 404).
    #[error("{destination}: {message}")]
    Http {
        /// The destination's name.
        destination: String,
        /// The last status, if any answer came.
        status: Option<u16>,
        /// What went wrong.
        message: String,
    },
    /// Writing to the bucket failed.
    #[error("{destination}: {source}")]
    Bucket {
        /// The destination's name.
        destination: String,
        /// The writer's error.
        #[source]
        source: Box<cdp_bucket::BucketError>,
    },
    /// Writing NDJSON failed.
    #[error("{destination}: writing {path} failed: {source}")]
    Io {
        /// The destination's name.
        destination: String,
        /// The file (`-` for standard output).
        path: String,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
}

/// Where the calls of a run go.
///
/// The runner hands over calls in order with [`Destination::send_all`] (by default
/// [`Destination::send`] for each; a destination batches them as it likes) and calls [`Destination::finish`] at the
/// end of the run, which delivers whatever is still buffered. A run succeeds only if
/// both return `Ok`; calls refused for good come back as [`Rejection`]s and become
/// row errors without failing the run. When the run fails, the runner calls
/// [`Destination::abort`] instead of `finish`.
#[async_trait::async_trait]
pub trait Destination: Send {
    /// The destination's name (from the configuration), for messages.
    fn name(&self) -> &str;

    /// Takes one call; may deliver a batch on the way.
    async fn send(&mut self, delivery: Delivery) -> Result<Vec<Rejection>, DestinationError>;

    /// Takes the calls of `deliveries` in order (leaving `None` in their place), as
    /// [`Destination::send`] one after another does, and hands what each call's
    /// sending refused to `sent` once it is taken. Stops at the first error: the call
    /// that failed is not handed to `sent`, and the calls after it are not taken. The
    /// default sends them one at a time; a destination that needs no task per call
    /// (one that writes into a buffer) can take them in one go.
    async fn send_all(
        &mut self,
        deliveries: &mut [Option<Delivery>],
        sent: &mut (dyn FnMut(Vec<Rejection>) + Send),
    ) -> Result<(), DestinationError> {
        for delivery in deliveries.iter_mut().filter_map(Option::take) {
            sent(self.send(delivery).await?);
        }
        Ok(())
    }

    /// Delivers what is buffered; the run is over.
    async fn finish(&mut self) -> Result<Vec<Rejection>, DestinationError>;

    /// The run failed: what is buffered is dropped (the next run reads the same rows
    /// again), and a destination that can take back what it was given does (the
    /// bucket publishes nothing of a failed run). The default drops nothing more:
    /// what an HTTP API or a file already received stays.
    async fn abort(&mut self) {}
}
