//! The bucket export writer: customer-data calls into an object-store bucket, one
//! file per call type per sync window, never lost, never overwritten.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! use cdp_bucket::{Bucket, BucketWriter, Id, ManualClock, Published, WriterConfig};
//! use cdp_calls::Call;
//! use cdp_encode::FileFormat;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(async {
//! let dir = tempfile::tempdir()?;
//! let bucket = Bucket::from_url(dir.path().join("bucket").to_str().unwrap())?;
//! let config = WriterConfig::new(Id::new("2184")?, Id::new("13699")?, FileFormat::Json)
//!     .with_spool_dir(dir.path().join("spool"));
//! let clock = Arc::new(ManualClock::new("2026-11-22T10:03:00Z".parse()?));
//! let (mut writer, _recovery) = BucketWriter::open(bucket, config, clock.clone()).await?;
//!
//! // Calls go into the window [10:00, 10:10) ...
//! writer.append(vec![Call::track("u1", "Signed Up"), Call::identify("u1")]).await?;
//! assert_eq!(writer.tick().await?, []);
//!
//! // ... which is published once it has ended: one file per call type.
//! clock.advance(Duration::from_secs(7 * 60));
//! let syncs = writer.tick().await?;
//! assert_eq!(syncs[0].position.get(), 1);
//! let names: Vec<&str> = syncs[0].files.iter().map(|f| f.object.as_str()).collect();
//! assert_eq!(names, ["2184.13699.1.identify.json", "2184.13699.1.track.json"]);
//! assert!(syncs[0].files.iter().all(|f| f.published == Published::Created && f.rows == 1));
//! assert!(dir.path().join("bucket/2184.13699.1.track.json").is_file());
//!
//! // An empty window publishes nothing and uses no position.
//! clock.advance(Duration::from_secs(10 * 60));
//! assert_eq!(writer.tick().await?, []);
//! assert_eq!(writer.next_position().get(), 2);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # How it works
//! - **Names**: `<prefix><integration>.<action>.<position>.<type>.<ext>`
//!   ([`ObjectName`]); the prefix is the path part of the bucket URL ([`Bucket`]).
//! - **Windows**: a call belongs to the window open when [`BucketWriter::append`]
//!   took it; windows are `[start, start + interval)`, aligned to the epoch. When a
//!   window has ended (seen by `append` or [`BucketWriter::tick`]), its files are
//!   published together with the next position. Early syncs happen when a file
//!   would pass `max_file_bytes`, and at [`BucketWriter::shutdown`].
//! - **Spool**: every batch is one checksummed record in a local file before
//!   `append` returns ([`Durability`] says when it is `fsync`ed). A sync's
//!   position is recorded in the spool (a seal) before anything is published, and
//!   the file is deleted once every object is in the bucket.
//! - **Publishing**: each object is put with [`object_store::PutMode::Create`]:
//!   stores write it whole under a temporary name or upload it in one request, so
//!   a half-written file is never visible, and nothing is ever overwritten.
//! - **Recovery**: on [`BucketWriter::open`], torn spool tails are cut
//!   ([`SpoolRepair`]); sealed syncs are encoded again (encoding is deterministic,
//!   so the bytes are the same) and published, an object already there with
//!   identical bytes counting as published and one with other bytes stopping the
//!   writer with [`BucketError::PositionConflict`]; the open window resumes.
//!
//! # Decisions where the spec is silent
//! - Windows are aligned to multiples of the interval since the Unix epoch, so a
//!   10-minute interval gives windows starting at :00, :10, … UTC.
//! - `append` fills in what a call lacks (`receivedAt` from the writer's clock, a
//!   `messageId`, …; see `Call::fill_missing`) and refuses a batch with an invalid
//!   call whole.
//! - A file is synced early when adding a batch would take it past
//!   `max_file_bytes`, so files stay under the limit unless one batch alone is
//!   larger. (The size of a batch is known from its spool record.)
//! - Without a spool directory the open window lives only in its encoders (their
//!   buffers and anonymous temporary files), so a crash loses it: for converting
//!   input that is itself durable (the `export` example). The size check then
//!   happens after each batch, so a file can pass the limit by one batch.
//! - With an empty spool, the next position is one past the highest found by
//!   listing the bucket; otherwise the spool's record of the last position counts.
#![cfg_attr(docsrs, feature(doc_cfg))]

mod bucket;
mod clock;
mod encoder_thread;
mod error;
mod local;
mod name;
mod report;
mod spool;
#[cfg(any(feature = "s3", feature = "gcs", feature = "azure"))]
mod tls;
mod writer;
mod writer_thread;

pub use crate::bucket::Bucket;
pub use crate::clock::{Clock, ManualClock, SystemClock};
pub use crate::error::BucketError;
pub use crate::name::{Id, InvalidId, ObjectName, Position};
pub use crate::report::{FileReport, Published, SyncReport, Window};
pub use crate::spool::{Durability, SpoolRepair, SpoolUsage};
pub use crate::writer::{Appended, BucketWriter, Recovery, WriterConfig};
pub use crate::writer_thread::WriterThread;
