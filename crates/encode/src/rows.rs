//! Encoded rows on their way into a file, sorted by `received_at` in bounded memory.
//!
//! Each format encodes a call into its row bytes as soon as it is written (an NDJSON
//! line, a CSV record, or a compact binary row for Parquet), so the call itself is
//! not kept. Rows are appended to a buffer with a small index entry each.
//!
//! Calls nearly always arrive in `received_at` order. While they do, the buffer is
//! written through, a megabyte at a time, to the *stream*: an anonymous temporary
//! file that starts with the file's header, so that when the last row is in it, it
//! is the finished file, and memory holds no more than the buffer. Out-of-order rows
//! are gathered until [`EncodeOptions::row_group_rows`] rows or
//! [`EncodeOptions::sort_buffer_bytes`] bytes, sorted, and spilled as a *run*; the
//! stream and the runs are merged when the file is written. A file of less than a
//! megabyte never touches the disk. Ties keep their input order (the stream holds
//! the earliest rows, then come the runs in the order they were spilled, then the
//! buffer): a stable sort.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use bytes::Bytes;

use crate::{ChunkWriter, EncodeError, EncodeOptions, FileFormat};

/// Size of one chunk of row bytes.
const CHUNK_BYTES: usize = 4 << 20;
/// A new chunk is started when the current one has less room than this.
const CHUNK_SLACK: usize = 64 << 10;
/// Rows in order are written through to the stream once this many bytes are buffered.
const STREAM_BYTES: usize = 1 << 20;

/// Where one row's bytes are.
#[derive(Debug, Clone, Copy)]
struct RowRef {
    key: i64,
    chunk: u32,
    start: u32,
    len: u32,
}

/// Sorted rows on disk: the row bytes one after the other in `data` (after `skip`
/// bytes of header), and a record of key (i64 LE) and length (u32 LE) per row in
/// `index`.
#[derive(Debug)]
struct Run {
    data: BufWriter<File>,
    index: BufWriter<File>,
    skip: u64,
    last_key: i64,
}

impl Run {
    fn create(options: &EncodeOptions, header: &[u8]) -> Result<Run, EncodeError> {
        let mut data = BufWriter::with_capacity(256 << 10, temp_file(options)?);
        let index = BufWriter::with_capacity(64 << 10, temp_file(options)?);
        data.write_all(header).map_err(spill_err)?;
        Ok(Run { data, index, skip: header.len() as u64, last_key: i64::MIN })
    }

    /// Records a row whose bytes were written to `data`.
    fn push(&mut self, key: i64, len: u32) -> io::Result<()> {
        self.index.write_all(&key.to_le_bytes())?;
        self.index.write_all(&len.to_le_bytes())?;
        self.last_key = key;
        Ok(())
    }

    /// The data file, complete and positioned at its start.
    fn into_data(self) -> Result<File, EncodeError> {
        rewind(self.data)
    }

    fn into_reader(self) -> Result<RunReader, EncodeError> {
        let Run { data, index, skip, .. } = self;
        let mut data = data.into_inner().map_err(|e| spill_err(e.into_error()))?;
        let mut index = index.into_inner().map_err(|e| spill_err(e.into_error()))?;
        data.seek(SeekFrom::Start(skip)).map_err(spill_err)?;
        index.seek(SeekFrom::Start(0)).map_err(spill_err)?;
        Ok(RunReader {
            data: BufReader::with_capacity(1 << 18, data),
            index: BufReader::with_capacity(1 << 14, index),
            row: Vec::new(),
        })
    }
}

fn spill_err(source: io::Error) -> EncodeError {
    EncodeError::Spill { source }
}

/// An anonymous temporary file in [`EncodeOptions::spill_dir`].
pub(crate) fn temp_file(options: &EncodeOptions) -> Result<File, EncodeError> {
    temp_file_in(options.spill_dir.as_deref()).map_err(spill_err)
}

/// An anonymous temporary file in `dir`, or the system temporary directory.
pub(crate) fn temp_file_in(dir: Option<&std::path::Path>) -> io::Result<File> {
    match dir {
        Some(dir) => tempfile::tempfile_in(dir),
        None => tempfile::tempfile(),
    }
}

/// The file under a buffered writer, flushed and positioned at its start.
pub(crate) fn rewind(out: BufWriter<File>) -> Result<File, EncodeError> {
    let mut file = out.into_inner().map_err(|e| spill_err(e.into_error()))?;
    file.seek(SeekFrom::Start(0)).map_err(spill_err)?;
    Ok(file)
}

/// Reads a whole file (from its current position) into chunks.
pub(crate) fn read_chunks(mut file: File) -> Result<Vec<Bytes>, EncodeError> {
    let mut chunks = Vec::new();
    loop {
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        let n = (&mut file).take(CHUNK_BYTES as u64).read_to_end(&mut chunk).map_err(spill_err)?;
        if n == 0 {
            return Ok(chunks);
        }
        chunks.push(chunk.into());
    }
}

/// Encoded rows on their way into a file.
#[derive(Debug)]
pub(crate) struct SortedRows {
    /// What the file starts with (the CSV header).
    header: Vec<u8>,
    chunks: Vec<Vec<u8>>,
    index: Vec<RowRef>,
    buffered_bytes: usize,
    /// Whether `index` is already in key order.
    in_order: bool,
    /// Whether sorting moved rows, so that `index` is no longer in chunk order.
    reordered: bool,
    /// The earliest rows, in order, starting with the header.
    stream: Option<Run>,
    /// Sorted runs of later rows.
    runs: Vec<Run>,
    rows: u64,
    /// Bytes of every row pushed so far, buffered or written.
    total_bytes: u64,
    /// The buffer size at which rows in order go to the stream.
    stream_bytes: usize,
    /// A write to a temporary file failed: the rows are no longer whole.
    failed: bool,
    options: EncodeOptions,
}

impl SortedRows {
    pub(crate) fn new(options: EncodeOptions, header: Vec<u8>) -> SortedRows {
        SortedRows {
            header,
            chunks: Vec::new(),
            index: Vec::new(),
            buffered_bytes: 0,
            in_order: true,
            reordered: false,
            stream: None,
            runs: Vec::new(),
            rows: 0,
            total_bytes: 0,
            stream_bytes: STREAM_BYTES,
            failed: false,
            options,
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of every row pushed so far, buffered or written.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// The header's bytes.
    pub(crate) fn header_bytes(&self) -> u64 {
        self.header.len() as u64
    }

    /// Fails once a write to a temporary file has failed.
    fn check(&self) -> Result<(), EncodeError> {
        if self.failed {
            let broken = "an earlier write to a temporary file failed; the file cannot be finished";
            return Err(spill_err(io::Error::other(broken)));
        }
        Ok(())
    }

    /// Appends one row with sort key `key`; `encode` writes its bytes.
    pub(crate) fn push(&mut self, key: i64, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), EncodeError> {
        self.check()?;
        let needs_chunk = self.chunks.last().is_none_or(|c| c.capacity() - c.len() < CHUNK_SLACK);
        if needs_chunk {
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES));
        }
        let chunk_no = self.chunks.len() - 1;
        let chunk = &mut self.chunks[chunk_no];
        let start = chunk.len();
        encode(chunk);
        let len = chunk.len() - start;
        if let Some(last) = self.index.last() {
            self.in_order &= last.key <= key;
        }
        let narrow = |n: usize| u32::try_from(n).map_err(|_| EncodeError::RowTooLarge { bytes: n });
        self.index.push(RowRef { key, chunk: narrow(chunk_no)?, start: narrow(start)?, len: narrow(len)? });
        self.buffered_bytes += len;
        self.total_bytes += len as u64;
        self.rows += 1;
        let written = if self.index.len() >= self.options.row_group_rows
            || self.buffered_bytes >= self.options.sort_buffer_bytes
        {
            self.spill()
        } else if self.buffered_bytes >= self.stream_bytes && self.in_order && self.stream_takes_buffer() {
            self.write_buffer_to_stream()
        } else {
            Ok(())
        };
        self.failed = written.is_err();
        written
    }

    fn row(&self, r: &RowRef) -> &[u8] {
        let start = r.start as usize;
        &self.chunks[r.chunk as usize][start..start + r.len as usize]
    }

    fn sort(&mut self) {
        if !self.in_order {
            self.index.sort_by_key(|r| r.key);
            self.in_order = true;
            self.reordered = true;
        }
    }

    /// Whether the (sorted) buffer may go on the end of the stream: no run was
    /// spilled yet (the stream must hold only rows older than every run's) and the
    /// buffer starts at or after the stream's last key.
    fn stream_takes_buffer(&self) -> bool {
        let first = self.index.first().map_or(i64::MAX, |r| r.key);
        self.runs.is_empty() && self.stream.as_ref().is_none_or(|s| first >= s.last_key)
    }

    /// Empties the buffer, keeping one chunk's memory for the next rows.
    fn clear_buffer(&mut self) {
        self.chunks.truncate(1);
        if let Some(chunk) = self.chunks.first_mut() {
            chunk.clear();
        }
        self.index.clear();
        self.buffered_bytes = 0;
        self.in_order = true;
        self.reordered = false;
    }

    /// Writes the sorted buffer to `run`.
    fn write_buffer(&self, run: &mut Run) -> Result<(), EncodeError> {
        debug_assert!(self.in_order);
        let mut write = || -> io::Result<()> {
            if self.reordered {
                for r in &self.index {
                    run.data.write_all(self.row(r))?;
                }
            } else {
                // Rows never reordered lie in the chunks in their order: write them whole.
                for chunk in &self.chunks {
                    run.data.write_all(chunk)?;
                }
            }
            self.index.iter().try_for_each(|r| run.push(r.key, r.len))
        };
        write().map_err(spill_err)
    }

    fn write_buffer_to_stream(&mut self) -> Result<(), EncodeError> {
        let mut stream = match self.stream.take() {
            Some(stream) => stream,
            None => Run::create(&self.options, &self.header)?,
        };
        self.write_buffer(&mut stream)?;
        self.stream = Some(stream);
        self.clear_buffer();
        Ok(())
    }

    /// Sorts the buffered rows and writes them to the stream, or else as a run.
    fn spill(&mut self) -> Result<(), EncodeError> {
        self.sort();
        if self.stream_takes_buffer() {
            return self.write_buffer_to_stream();
        }
        let mut run = Run::create(&self.options, &[])?;
        self.write_buffer(&mut run)?;
        self.runs.push(run);
        self.clear_buffer();
        Ok(())
    }

    /// Puts the buffer on the end of the stream if the stream then is the whole
    /// file; true if it is.
    fn complete_stream(&mut self) -> Result<bool, EncodeError> {
        if self.stream.is_none() {
            return Ok(false);
        }
        self.sort();
        if !self.stream_takes_buffer() {
            return Ok(false);
        }
        if !self.index.is_empty() {
            self.write_buffer_to_stream()?;
        }
        Ok(true)
    }

    /// Writes the header and every row, in key order, into `out`.
    pub(crate) fn write_to<W: Write>(mut self, format: FileFormat, mut out: W) -> Result<W, EncodeError> {
        self.check()?;
        let fail = |e: io::Error| EncodeError::write(format, e);
        if self.complete_stream()? {
            let mut data = self.stream.take().expect("completed above").into_data()?;
            io::copy(&mut data, &mut out).map_err(fail)?;
            return Ok(out);
        }
        out.write_all(&self.header).map_err(fail)?;
        if self.stream.is_none() && self.runs.is_empty() && self.in_order && !self.reordered {
            for chunk in &self.chunks {
                out.write_all(chunk).map_err(fail)?;
            }
        } else {
            self.drain(|row| out.write_all(row).map_err(fail))?;
        }
        Ok(out)
    }

    /// The file in an anonymous temporary file in [`EncodeOptions::spill_dir`],
    /// positioned at its start: the stream itself when it holds every row.
    pub(crate) fn finish_to_file(mut self, format: FileFormat) -> Result<File, EncodeError> {
        self.check()?;
        if self.complete_stream()? {
            return self.stream.take().expect("completed above").into_data();
        }
        let file = temp_file(&self.options)?;
        rewind(self.write_to(format, BufWriter::with_capacity(1 << 20, file))?)
    }

    /// The file as chunks; rows held in memory in order are handed over uncopied.
    pub(crate) fn finish_to_chunks(mut self, format: FileFormat) -> Result<Vec<Bytes>, EncodeError> {
        self.check()?;
        if self.stream.is_none() && self.runs.is_empty() && self.in_order && !self.reordered {
            let mut out = ChunkWriter::default();
            out.push_chunk(std::mem::take(&mut self.header).into());
            for chunk in self.chunks {
                out.push_chunk(chunk.into());
            }
            return Ok(out.into_chunks());
        }
        if self.complete_stream()? {
            return read_chunks(self.stream.take().expect("completed above").into_data()?);
        }
        Ok(self.write_to(format, ChunkWriter::default())?.into_chunks())
    }

    /// Hands every row (not the header) to `sink` in key order.
    pub(crate) fn drain(
        mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        self.check()?;
        if self.stream.is_none() && self.runs.is_empty() {
            self.sort();
            return self.index.iter().try_for_each(|r| sink(self.row(r)));
        }
        if !self.index.is_empty() {
            self.spill()?;
        }
        let mut readers = Vec::with_capacity(self.runs.len() + 1);
        for run in self.stream.into_iter().chain(self.runs) {
            readers.push(run.into_reader()?);
        }
        // Ties come out by run: the stream first, then the runs in spill order.
        let mut heap = BinaryHeap::with_capacity(readers.len());
        for (i, reader) in readers.iter_mut().enumerate() {
            if let Some(key) = reader.next()? {
                heap.push(Reverse((key, i)));
            }
        }
        while let Some(Reverse((_, i))) = heap.pop() {
            sink(&readers[i].row)?;
            if let Some(key) = readers[i].next()? {
                heap.push(Reverse((key, i)));
            }
        }
        Ok(())
    }
}

/// Reads a run back, one row at a time.
struct RunReader {
    data: BufReader<File>,
    index: BufReader<File>,
    row: Vec<u8>,
}

impl RunReader {
    /// Reads the next row into `self.row` and returns its key.
    fn next(&mut self) -> Result<Option<i64>, EncodeError> {
        let mut head = [0u8; 12];
        match self.index.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(spill_err(e)),
        }
        let key = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        self.row.resize(len, 0);
        self.data.read_exact(&mut self.row).map_err(spill_err)?;
        Ok(Some(key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rows of `key:n;` text, so that every row's origin shows in the output.
    fn encode(rows: &mut SortedRows, input: &[(i64, u8)]) {
        for (n, (key, len)) in input.iter().enumerate() {
            let text = format!("{key}:{n}{};", "x".repeat(usize::from(*len)));
            rows.push(*key, |out| out.extend_from_slice(text.as_bytes())).unwrap();
        }
    }

    fn expected(header: &str, input: &[(i64, u8)]) -> String {
        let mut sorted: Vec<(usize, &(i64, u8))> = input.iter().enumerate().collect();
        sorted.sort_by_key(|(_, (key, _))| *key); // stable
        let rows: String = sorted
            .iter()
            .map(|(n, (key, len))| format!("{key}:{n}{};", "x".repeat(usize::from(*len))))
            .collect();
        format!("{header}{rows}")
    }

    fn sorted_rows(group: usize, buffer: usize, stream: usize) -> SortedRows {
        let options = EncodeOptions::default().with_row_group_rows(group).with_sort_buffer_bytes(buffer);
        let mut rows = SortedRows::new(options, b"h\n".to_vec());
        rows.stream_bytes = stream;
        rows
    }

    #[test]
    fn rows_in_order_end_up_in_the_stream_alone() {
        let mut rows = sorted_rows(1000, 1 << 20, 10);
        let input: Vec<(i64, u8)> = (0..100).map(|k| (k / 3, 4)).collect();
        encode(&mut rows, &input);
        assert!(rows.stream.is_some() && rows.runs.is_empty());
        assert!(rows.buffered_bytes < 10 + 20, "the buffer is written through");
        let mut file = rows.finish_to_file(FileFormat::Csv).unwrap();
        let mut text = String::new();
        file.read_to_string(&mut text).unwrap();
        assert_eq!(text, expected("h\n", &input));
    }

    #[test]
    fn a_late_row_turns_the_stream_into_the_first_run() {
        let mut rows = sorted_rows(4, 1 << 20, 10);
        let mut input: Vec<(i64, u8)> = (10..40).map(|k| (k, 3)).collect();
        input.extend([(5, 1), (10, 1), (39, 1), (45, 1), (0, 1), (39, 2), (50, 0)]);
        encode(&mut rows, &input);
        assert!(!rows.runs.is_empty());
        let bytes = rows.write_to(FileFormat::Json, Vec::new()).unwrap();
        assert_eq!(String::from_utf8(bytes).unwrap(), expected("h\n", &input));
    }

    #[test]
    fn after_a_failed_write_the_rows_are_refused() {
        let options = EncodeOptions::default().with_spill_dir("/nonexistent/cdp-spill");
        let mut rows = SortedRows::new(options, Vec::new());
        rows.stream_bytes = 4;
        let first = rows.push(1, |out| out.extend_from_slice(b"12345"));
        assert!(matches!(first, Err(EncodeError::Spill { .. })), "{first:?}");
        // The row that could not be written is not dropped silently: nothing more
        // is taken, and the file cannot be finished.
        assert!(rows.push(2, |out| out.push(b'x')).is_err());
        let err = rows.write_to(FileFormat::Json, Vec::new()).unwrap_err();
        assert!(err.to_string().contains("earlier write"), "{err}");
    }

    proptest! {
        #[test]
        fn every_way_out_gives_the_stably_sorted_rows(
            input in proptest::collection::vec((0i64..20, 0u8..12), 0..120),
            group in 1usize..30,
            buffer in 1usize..400,
            stream in 1usize..200,
            way in 0..3,
        ) {
            let mut rows = sorted_rows(group, buffer, stream);
            encode(&mut rows, &input);
            let bytes = match way {
                0 => rows.write_to(FileFormat::Csv, Vec::new()).unwrap(),
                1 => {
                    let mut text = Vec::new();
                    rows.finish_to_file(FileFormat::Csv).unwrap().read_to_end(&mut text).unwrap();
                    text
                }
                _ => rows.finish_to_chunks(FileFormat::Csv).unwrap().concat(),
            };
            prop_assert_eq!(String::from_utf8(bytes).unwrap(), expected("h\n", &input));
        }
    }
}
