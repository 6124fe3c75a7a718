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

/// Bytes of calls queued for one encoder at most, counted as what they add to the
/// file at most ([`cdp_encode::row_bytes_bound`], about their size in memory): an
/// encoder that falls behind (a Parquet file's while another sync's files are
/// finished on the other core) holds this much, not [`QUEUED_CALLS`] calls (over
/// 100 MB of the benchmark's `track` calls; issue 17). A batch larger than this
/// waits for the queue to be empty.
const QUEUED_BYTES: u32 = 16 << 20;

/// Messages queued at most (a second bound, for batches of a call or two).
const QUEUED_MESSAGES: usize = 4096;

/// What the thread is sent.
#[derive(Debug)]
enum Message {
    /// Calls to encode, at most how much they add to the file, and the queue
    /// places and bytes they hold.
    Calls(Vec<Call>, u64, u32, u32),
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
    /// Bytes in the queue ([`QUEUED_BYTES`]).
    bytes: Arc<Semaphore>,
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
        let bytes = Arc::new(Semaphore::new(QUEUED_BYTES as usize));
        let freed_bytes = bytes.clone();
        let progress = Arc::new(Progress::default());
        progress.encoded_bytes.store(encoder.encoded_bytes(), Ordering::Release);
        let shared = progress.clone();
        let thread =
            std::thread::Builder::new().name(format!("cdp-encode-{call_type}")).spawn(move || {
                while let Some(message) = receiver.blocking_recv() {
                    match message {
                        Message::Calls(calls, estimate, held, held_bytes) => {
                            for call in &calls {
                                encoder.write(call)?;
                            }
                            shared.encoded_bytes.store(encoder.encoded_bytes(), Ordering::Release);
                            shared.estimate_done.fetch_add(estimate, Ordering::AcqRel);
                            shared.calls_done.fetch_add(calls.len() as u64, Ordering::AcqRel);
                            drop(calls);
                            freed.add_permits(held as usize);
                            freed_bytes.add_permits(held_bytes as usize);
                        }
                        Message::Settle(reply) => {
                            let _ = reply.send(encoder.encoded_bytes());
                        }
                    }
                }
                // No more calls: what the encoder holds in memory goes to its
                // temporary files, so that a file waiting to be finished holds none.
                encoder.release_buffers()?;
                Ok(encoder)
            })?;
        Ok(EncoderThread {
            call_type,
            format,
            messages: Some(sender),
            places,
            bytes,
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
        let held_bytes = u32::try_from(estimate).unwrap_or(u32::MAX).min(QUEUED_BYTES);
        for (semaphore, permits) in [(&self.places, held), (&self.bytes, held_bytes)] {
            match semaphore.acquire_many(permits).await {
                Ok(permits) => permits.forget(),
                Err(_) => return Err(stopped(self.format, "the encoder's queue is closed")),
            }
        }
        self.send(Message::Calls(calls, estimate, held, held_bytes)).await?;
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

    /// Takes no more calls: the thread encodes the queued ones, moves what the
    /// encoder holds in memory to its temporary files ([`Encode::release_buffers`])
    /// and ends; [`EncoderThread::into_encoder`] gives the encoder back. For a
    /// sealed sync's files, which may wait a while to be published.
    pub(crate) fn close(&mut self) {
        self.messages = None;
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
    use cdp_calls::Timestamp;
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
    async fn a_closed_thread_encodes_what_is_queued_releases_the_buffers_and_ends() {
        // Out of order, with a sort buffer of 4 KiB: runs are spilled, and the last
        // rows are in memory until the thread is closed.
        let options = EncodeOptions::default().with_sort_buffer_bytes(4096);
        let encoder = FileEncoder::new(FileFormat::Json, CallType::Track, options);
        let mut thread = EncoderThread::spawn(encoder, FileFormat::Json).unwrap();
        let ids: Vec<String> = (0..300).map(|i| format!("m{i:03}")).collect();
        let calls: Vec<Call> = ids
            .iter()
            .rev()
            .enumerate()
            .map(|(n, id)| {
                let at = Timestamp::from_micros(1_790_000_000_000_000 - n as i64).unwrap();
                track(id).with_received_at(at)
            })
            .collect();
        thread.write(calls, 0).await.unwrap();
        thread.close();
        // The thread ends on its own, without being asked for the encoder.
        let started = std::time::Instant::now();
        while !thread.thread.as_ref().unwrap().is_finished() {
            assert!(started.elapsed() < std::time::Duration::from_secs(30), "the closed thread did not end");
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        let error = thread.write(vec![track("late")], 0).await.unwrap_err();
        assert!(error.to_string().contains("stopped"), "{error}");
        let encoder = tokio::task::spawn_blocking(move || thread.into_encoder()).await.unwrap().unwrap();
        let text = String::from_utf8(encoder.finish(Vec::new()).unwrap()).unwrap();
        let got: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(got, ids);
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
