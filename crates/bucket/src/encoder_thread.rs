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
    /// Calls to encode, at most how much they add to the file, and the queue
    /// places they hold.
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
        let progress = Arc::new(Progress::default());
        progress.encoded_bytes.store(encoder.encoded_bytes(), Ordering::Release);
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
            sent_estimate: 0,
            calls_sent: 0,
        })
    }

    /// Queues calls (all of this encoder's type) to be encoded; waits only while the
    /// queue is full. `estimate` is at most how much they add to the file's
    /// [`Encode::encoded_bytes`] ([`cdp_encode::row_bytes_bound`]).
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

    /// The calls sent to the thread.
    pub(crate) fn calls_sent(&self) -> u64 {
        self.calls_sent
    }

    /// How large the file would be at most, finished with every queued call: its
    /// [`Encode::encoded_bytes`] as of the last batch the thread encoded, plus the
    /// bounds of the batches it has not encoded yet.
    pub(crate) fn expected_bytes(&self) -> u64 {
        let encoded = self.progress.encoded_bytes.load(Ordering::Acquire);
        let queued = self.sent_estimate.saturating_sub(self.progress.estimate_done.load(Ordering::Acquire));
        encoded + queued
    }

    /// The file's [`Encode::encoded_bytes`] once every queued batch is encoded
    /// (waits for that).
    pub(crate) async fn settled_bytes(&mut self) -> Result<u64, EncodeError> {
        let (reply, size) = oneshot::channel();
        self.send(Message::Settle(reply)).await?;
        match size.await {
            Ok(bytes) => Ok(bytes),
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
        thread.write(vec![track("a"), track("b")], 1000).await.unwrap();
        thread.write(vec![track("c")], 500).await.unwrap();
        assert!(thread.expected_bytes() >= 1500);
        let settled = thread.settled_bytes().await.unwrap();
        assert!(settled > 0 && thread.expected_bytes() == settled, "{settled}");
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
        let error = thread.settled_bytes().await.unwrap_err();
        assert!(matches!(error, EncodeError::WrongCallType { .. }), "{error:?}");
        let error = thread.write(vec![track("after")], 0).await.unwrap_err();
        assert!(error.to_string().contains("stopped"), "{error}");
    }
}
