//! A file's encoder on a thread of its own, so that encoding (a Parquet row group
//! compressed, rows sorted and spilled) never holds up the append that spooled the
//! calls, nor an async worker.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use cdp_calls::{Call, CallType};
use cdp_encode::{Encode, EncodeError, FileEncoder, FileFormat};
use tokio::sync::{Semaphore, mpsc, oneshot};

/// Calls queued for one encoder at most; a writer that gets further ahead waits
/// (back-pressure), so memory stays bounded. Counted in calls, not batches, so that
/// small batches queue behind a large one without waiting. A batch larger than this
/// waits for the queue to be empty.
const QUEUED_CALLS: u32 = 100_000;

/// Messages queued at most (a second bound, for batches of a call or two).
const QUEUED_MESSAGES: usize = 4096;

/// What the thread is sent.
#[derive(Debug)]
enum Message {
    /// Calls to encode, about how much they add to the file, and the queue places
    /// they hold.
    Calls(Vec<Call>, u64, u32),
    /// Asks for the file's size once every batch sent before is encoded.
    Settle(oneshot::Sender<u64>),
}

/// How far the thread got.
#[derive(Debug, Default)]
struct Progress {
    /// The encoder's [`Encode::encoded_bytes`] after the last batch it took.
    encoded_bytes: AtomicU64,
    /// The sum of the estimates of the batches it took.
    estimate_done: AtomicU64,
    /// The calls it encoded.
    calls_done: AtomicU64,
}

/// An encoder running on its own thread, fed batches of calls through a bounded
/// channel. [`EncoderThread::into_encoder`] waits for every batch to be encoded and
/// gives the encoder back, to be finished.
#[derive(Debug)]
pub(crate) struct EncoderThread {
    call_type: CallType,
    format: FileFormat,
    messages: Option<mpsc::Sender<Message>>,
    /// Places in the queue, one per call.
    places: Arc<Semaphore>,
    thread: Option<JoinHandle<Result<FileEncoder, EncodeError>>>,
    progress: Arc<Progress>,
    /// The encoder's size when the thread started.
    initial_bytes: u64,
    /// The sum of the estimates of the batches sent.
    sent_estimate: u64,
    /// The calls sent.
    calls_sent: u64,
}

impl EncoderThread {
    /// Moves `encoder` to a new thread.
    pub(crate) fn spawn(mut encoder: FileEncoder, format: FileFormat) -> std::io::Result<EncoderThread> {
        let call_type = encoder.call_type();
        let (sender, mut receiver) = mpsc::channel::<Message>(QUEUED_MESSAGES);
        let places = Arc::new(Semaphore::new(QUEUED_CALLS as usize));
        let freed = places.clone();
        let initial_bytes = encoder.encoded_bytes();
        let progress = Arc::new(Progress::default());
        progress.encoded_bytes.store(initial_bytes, Ordering::Release);
        let shared = progress.clone();
        let thread =
            std::thread::Builder::new().name(format!("cdp-encode-{call_type}")).spawn(move || {
                while let Some(message) = receiver.blocking_recv() {
                    match message {
                        Message::Calls(calls, estimate, held) => {
                            for call in &calls {
                                encoder.write(call)?;
                            }
                            shared.encoded_bytes.store(encoder.encoded_bytes(), Ordering::Release);
                            shared.estimate_done.fetch_add(estimate, Ordering::AcqRel);
                            shared.calls_done.fetch_add(calls.len() as u64, Ordering::AcqRel);
                            drop(calls);
                            freed.add_permits(held as usize);
                        }
                        Message::Settle(reply) => {
                            let _ = reply.send(encoder.encoded_bytes());
                        }
                    }
                }
                Ok(encoder)
            })?;
        Ok(EncoderThread {
            call_type,
            format,
            messages: Some(sender),
            places,
            thread: Some(thread),
            progress,
            initial_bytes,
            sent_estimate: 0,
            calls_sent: 0,
        })
    }

    /// Queues calls (all of this encoder's type) to be encoded; waits only while the
    /// queue is full. `estimate` is about how much they add to the file (their JSON).
    /// An error is the thread's, from an earlier batch: the encoder stopped there.
    pub(crate) async fn write(&mut self, calls: Vec<Call>, estimate: u64) -> Result<(), EncodeError> {
        let count = calls.len() as u64;
        let held = u32::try_from(calls.len()).unwrap_or(u32::MAX).min(QUEUED_CALLS);
        match self.places.acquire_many(held).await {
            Ok(places) => places.forget(),
            Err(_) => return Err(stopped(self.format, "the encoder's queue is closed")),
        }
        self.send(Message::Calls(calls, estimate, held)).await?;
        self.sent_estimate += estimate;
        self.calls_sent += count;
        Ok(())
    }

    /// Calls sent to the thread and not encoded yet.
    pub(crate) fn backlog(&self) -> u64 {
        self.calls_sent.saturating_sub(self.progress.calls_done.load(Ordering::Acquire))
    }

    /// How many file bytes a byte of estimate has made so far (at least 1; 2 before
    /// anything is known).
    fn ratio(&self) -> f64 {
        let done = self.progress.estimate_done.load(Ordering::Acquire);
        let grown = self.progress.encoded_bytes.load(Ordering::Acquire).saturating_sub(self.initial_bytes);
        if done == 0 { 2.0 } else { (grown as f64 / done as f64).max(1.0) }
    }

    /// About how large the file will be with the queued calls and `more` bytes of
    /// estimate encoded: its size as of the last batch the thread encoded (see
    /// [`Encode::encoded_bytes`]) plus the estimates not encoded yet, scaled by what
    /// estimates have turned into so far.
    pub(crate) fn expected_bytes(&self, more: u64) -> u64 {
        let encoded = self.progress.encoded_bytes.load(Ordering::Acquire);
        let queued = self.sent_estimate.saturating_sub(self.progress.estimate_done.load(Ordering::Acquire));
        encoded + ((queued + more) as f64 * self.ratio()).ceil() as u64
    }

    /// The file's size once every queued batch is encoded (waits for that), and
    /// what `more` bytes of estimate would add to it.
    pub(crate) async fn settled_bytes(&mut self, more: u64) -> Result<(u64, u64), EncodeError> {
        let (reply, size) = oneshot::channel();
        self.send(Message::Settle(reply)).await?;
        match size.await {
            Ok(bytes) => Ok((bytes, (more as f64 * self.ratio()).ceil() as u64)),
            Err(_) => Err(self.failure()),
        }
    }

    /// Waits for every queued batch to be encoded and returns the encoder. Blocks
    /// the calling thread: call it on tokio's blocking pool.
    pub(crate) fn into_encoder(mut self) -> Result<FileEncoder, EncodeError> {
        self.messages = None;
        self.join()
    }

    async fn send(&mut self, message: Message) -> Result<(), EncodeError> {
        let Some(sender) = self.messages.as_ref() else {
            return Err(stopped(self.format, "the encoder stopped after an error"));
        };
        if sender.send(message).await.is_ok() { Ok(()) } else { Err(self.failure()) }
    }

    /// The thread dropped its end: it returned with an error (or panicked).
    fn failure(&mut self) -> EncodeError {
        self.messages = None;
        match self.join() {
            Err(e) => e,
            Ok(_) => stopped(self.format, "the encoder thread ended early"),
        }
    }

    fn join(&mut self) -> Result<FileEncoder, EncodeError> {
        let thread =
            self.thread.take().ok_or_else(|| stopped(self.format, "the encoder was taken already"))?;
        match thread.join() {
            Ok(result) => result,
            Err(_) => Err(stopped(self.format, format!("the {} encoder thread panicked", self.call_type))),
        }
    }
}

fn stopped(format: FileFormat, message: impl Into<String>) -> EncodeError {
    EncodeError::Write { format, source: message.into().into() }
}

#[cfg(test)]
mod tests {
    use cdp_encode::EncodeOptions;

    use super::*;

    fn call(json: &str) -> Call {
        let mut call = Call::parse_json(json).unwrap();
        call.fill_missing("2026-11-30T10:00:00Z".parse().unwrap());
        call
    }

    fn track(id: &str) -> Call {
        call(&format!(r#"{{"type":"track","userId":"u","event":"E","messageId":"{id}"}}"#))
    }

    #[tokio::test]
    async fn batches_are_encoded_in_order_and_the_encoder_comes_back() {
        let encoder = FileEncoder::new(FileFormat::Json, CallType::Track, EncodeOptions::default());
        let mut thread = EncoderThread::spawn(encoder, FileFormat::Json).unwrap();
        thread.write(vec![track("a"), track("b")], 100).await.unwrap();
        thread.write(vec![track("c")], 50).await.unwrap();
        assert!(thread.expected_bytes(0) >= 150);
        let (settled, _) = thread.settled_bytes(0).await.unwrap();
        assert!(settled > 0 && thread.expected_bytes(0) == settled, "{settled}");
        let encoder = tokio::task::spawn_blocking(move || thread.into_encoder()).await.unwrap().unwrap();
        assert_eq!(encoder.rows(), 3);
        let text = String::from_utf8(encoder.finish(Vec::new()).unwrap()).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].to_string())
            .collect();
        assert_eq!(ids, [r#""a""#, r#""b""#, r#""c""#]);
    }

    #[tokio::test]
    async fn an_encoding_error_stops_the_thread_and_is_reported() {
        // A page call given to the track file's encoder is refused by the encoder.
        let encoder = FileEncoder::new(FileFormat::Json, CallType::Track, EncodeOptions::default());
        let mut thread = EncoderThread::spawn(encoder, FileFormat::Json).unwrap();
        thread.write(vec![call(r#"{"type":"page","userId":"u","name":"Home"}"#)], 0).await.unwrap();
        // Settling waits for the batch, and reports the thread's error.
        let error = thread.settled_bytes(0).await.unwrap_err();
        assert!(matches!(error, EncodeError::WrongCallType { .. }), "{error:?}");
        let error = thread.write(vec![track("after")], 0).await.unwrap_err();
        assert!(error.to_string().contains("stopped"), "{error}");
    }
}
