//! A [`BucketWriter`] on a thread of its own, for callers on an async runtime.

use std::sync::Arc;

use cdp_calls::Call;
use tokio::sync::{mpsc, oneshot};

use crate::{Appended, Bucket, BucketError, BucketWriter, Clock, Recovery, SyncReport, WriterConfig};

/// What the thread is asked to do, and where the answer goes.
#[derive(Debug)]
enum Command {
    Append(Vec<Call>, oneshot::Sender<Result<Appended, BucketError>>),
    Tick(oneshot::Sender<Result<Vec<SyncReport>, BucketError>>),
    SyncNow(oneshot::Sender<Result<Vec<SyncReport>, BucketError>>),
    DiscardOpen(Option<oneshot::Sender<Result<u64, BucketError>>>),
    Shutdown(oneshot::Sender<Result<Vec<SyncReport>, BucketError>>),
}

/// Commands queued for the thread at most; a caller that gets further ahead waits.
const QUEUED_COMMANDS: usize = 16;

/// A [`BucketWriter`] running on a thread of its own (with a single-threaded tokio
/// runtime for the object store's puts), driven through a channel.
///
/// The writer is a synchronous core: [`BucketWriter::append`] writes (and, per the
/// durability, `fsync`s) its spool inline, and recovery replays spool files. On a
/// thread of its own that blocking I/O never holds up an async worker, while the
/// caller awaits each answer as before. Encoding stays on the files' own threads
/// and publishing on the writer's runtime. The collector runs its writer the same
/// way; reverse-ETL runs use this.
///
/// Commands run in the order they are sent. Dropping the handle ends the thread
/// without publishing (the calls stay in the spool for the next start) and waits
/// for it to end, so that the spool is free again once the handle is gone (after
/// the command in progress, if any); [`WriterThread::shutdown`] publishes first.
///
/// ```
/// use std::sync::Arc;
/// use cdp_bucket::{Bucket, Id, SystemClock, WriterConfig, WriterThread};
/// use cdp_calls::Call;
/// use cdp_encode::FileFormat;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let bucket = Bucket::local(dir.path().join("bucket"))?;
/// let config = WriterConfig::new(Id::new("web")?, Id::new("events")?, FileFormat::Json)
///     .with_spool_dir(dir.path().join("spool"));
/// let (writer, _recovery) = WriterThread::open(bucket, config, Arc::new(SystemClock)).await?;
/// writer.append(vec![Call::identify("u1").with_message_id("m1")]).await?;
/// let published = writer.shutdown().await?;
/// assert_eq!(published[0].files[0].object, "web.events.1.identify.json");
/// # Ok(())
/// # }
/// ```
#[derive(Debug)]
pub struct WriterThread {
    /// `None` once dropped.
    commands: Option<mpsc::Sender<Command>>,
    thread: Option<std::thread::JoinHandle<()>>,
    bucket: Bucket,
    config: WriterConfig,
}

impl Drop for WriterThread {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop; the writer (and its spool
        // lock) goes with it.
        self.commands = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl WriterThread {
    /// Opens a writer ([`BucketWriter::open`]: spool recovery, republishing) on a
    /// new thread, and returns the handle once it is open.
    pub async fn open(
        bucket: Bucket,
        config: WriterConfig,
        clock: Arc<dyn Clock>,
    ) -> Result<(WriterThread, Recovery), BucketError> {
        let (opened, open_answer) = oneshot::channel();
        let (commands, receiver) = mpsc::channel(QUEUED_COMMANDS);
        let (thread_bucket, thread_config) = (bucket.clone(), config.clone());
        let thread = std::thread::Builder::new()
            .name("cdp-writer".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => runtime,
                    Err(e) => {
                        let reason = format!("cannot start the writer thread's runtime: {e}");
                        let _ = opened.send(Err(BucketError::Stopped { reason }));
                        return;
                    }
                };
                runtime.block_on(async move {
                    match BucketWriter::open(thread_bucket, thread_config, clock).await {
                        Ok((writer, recovery)) => {
                            if opened.send(Ok(recovery)).is_ok() {
                                serve(writer, receiver).await;
                            }
                        }
                        Err(e) => {
                            let _ = opened.send(Err(e));
                        }
                    }
                });
            })
            .map_err(|e| BucketError::Stopped { reason: format!("cannot start the writer thread: {e}") })?;
        let recovery = open_answer.await.map_err(|_| gone())??;
        Ok((WriterThread { commands: Some(commands), thread: Some(thread), bucket, config }, recovery))
    }

    /// The bucket written to.
    pub fn bucket(&self) -> &Bucket {
        &self.bucket
    }

    /// The settings.
    pub fn config(&self) -> &WriterConfig {
        &self.config
    }

    /// [`BucketWriter::append`] on the writer's thread.
    pub async fn append(&self, calls: Vec<Call>) -> Result<Appended, BucketError> {
        self.ask(|reply| Command::Append(calls, reply)).await
    }

    /// [`BucketWriter::tick`] on the writer's thread.
    pub async fn tick(&self) -> Result<Vec<SyncReport>, BucketError> {
        self.ask(Command::Tick).await
    }

    /// [`BucketWriter::sync_now`] on the writer's thread.
    pub async fn sync_now(&self) -> Result<Vec<SyncReport>, BucketError> {
        self.ask(Command::SyncNow).await
    }

    /// [`BucketWriter::discard_open`] on the writer's thread.
    pub async fn discard_open(&self) -> Result<u64, BucketError> {
        self.ask(|reply| Command::DiscardOpen(Some(reply))).await
    }

    /// Queues [`BucketWriter::discard_open`] without waiting for it (for `Drop`
    /// implementations): commands sent after it find the open window empty. An
    /// error is logged. Fails only when the queue is full or the thread is gone.
    pub fn discard_open_later(&self) -> Result<(), BucketError> {
        let commands = self.commands.as_ref().ok_or_else(gone)?;
        commands.try_send(Command::DiscardOpen(None)).map_err(|e| BucketError::Stopped {
            reason: format!("cannot queue taking back the open window's calls: {e}"),
        })
    }

    /// [`BucketWriter::shutdown`] on the writer's thread, which then ends.
    pub async fn shutdown(self) -> Result<Vec<SyncReport>, BucketError> {
        self.ask(Command::Shutdown).await
    }

    async fn ask<T>(
        &self,
        command: impl FnOnce(oneshot::Sender<Result<T, BucketError>>) -> Command,
    ) -> Result<T, BucketError> {
        let (reply, answer) = oneshot::channel();
        let commands = self.commands.as_ref().ok_or_else(gone)?;
        commands.send(command(reply)).await.map_err(|_| gone())?;
        answer.await.map_err(|_| gone())?
    }
}

/// The thread ended (a panic, or after a shutdown).
fn gone() -> BucketError {
    BucketError::Stopped { reason: "the writer's thread has ended".into() }
}

/// Runs commands until the handle is dropped or a shutdown.
async fn serve(mut writer: BucketWriter, mut commands: mpsc::Receiver<Command>) {
    while let Some(command) = commands.recv().await {
        match command {
            Command::Append(calls, reply) => {
                let _ = reply.send(writer.append(calls).await);
            }
            Command::Tick(reply) => {
                let _ = reply.send(writer.tick().await);
            }
            Command::SyncNow(reply) => {
                let _ = reply.send(writer.sync_now().await);
            }
            Command::DiscardOpen(reply) => {
                let result = writer.discard_open();
                match reply {
                    Some(reply) => {
                        let _ = reply.send(result);
                    }
                    None => {
                        if let Err(e) = result {
                            tracing::error!(error = %e, "the open window's calls could not be taken back");
                        }
                    }
                }
            }
            Command::Shutdown(reply) => {
                let _ = reply.send(writer.shutdown().await);
                return;
            }
        }
    }
}
