//! Encoded rows waiting to be written, sorted by `received_at` in bounded memory.
//!
//! Each format encodes a call into its row bytes as soon as it is written (an NDJSON
//! line, a CSV record, or a compact binary row for Parquet), so the call itself is
//! not kept. Rows are appended to large chunks with a small index entry each. When
//! the buffered rows reach [`EncodeOptions::row_group_rows`] rows or
//! [`EncodeOptions::sort_buffer_bytes`] bytes, they are sorted and spilled to an
//! anonymous temporary file as one run; when the file is written, the runs are
//! merged. When everything fits in memory (the usual case) nothing touches the disk,
//! and rows that arrived in order are not even sorted. Ties keep their input order
//! (equal keys come out by run, then by position within the run): a stable sort.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};

use crate::{EncodeError, EncodeOptions};

/// Size of one chunk of row bytes.
const CHUNK_BYTES: usize = 4 << 20;
/// A new chunk is started when the current one has less room than this.
const CHUNK_SLACK: usize = 64 << 10;

/// Where one row's bytes are.
#[derive(Debug, Clone, Copy)]
struct RowRef {
    key: i64,
    chunk: u32,
    start: u32,
    len: u32,
}

/// A sorted run spilled to a temporary file: records of key (i64 LE), length
/// (u32 LE) and the row bytes.
#[derive(Debug)]
struct Run {
    file: File,
}

/// Encoded rows waiting to be written.
#[derive(Debug)]
pub(crate) struct SortedRows {
    chunks: Vec<Vec<u8>>,
    index: Vec<RowRef>,
    buffered_bytes: usize,
    /// Whether `index` is already in key order.
    in_order: bool,
    runs: Vec<Run>,
    rows: u64,
    /// Bytes of every row pushed so far, buffered or spilled.
    total_bytes: u64,
    options: EncodeOptions,
}

impl SortedRows {
    pub(crate) fn new(options: EncodeOptions) -> SortedRows {
        SortedRows {
            chunks: Vec::new(),
            index: Vec::new(),
            buffered_bytes: 0,
            in_order: true,
            runs: Vec::new(),
            rows: 0,
            total_bytes: 0,
            options,
        }
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    /// Bytes of every row pushed so far, buffered or spilled.
    pub(crate) fn total_bytes(&self) -> u64 {
        self.total_bytes
    }

    /// Appends one row with sort key `key`; `encode` writes its bytes.
    pub(crate) fn push(&mut self, key: i64, encode: impl FnOnce(&mut Vec<u8>)) -> Result<(), EncodeError> {
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
        if self.index.len() >= self.options.row_group_rows
            || self.buffered_bytes >= self.options.sort_buffer_bytes
        {
            self.spill()?;
        }
        Ok(())
    }

    fn row(&self, r: &RowRef) -> &[u8] {
        let start = r.start as usize;
        &self.chunks[r.chunk as usize][start..start + r.len as usize]
    }

    fn sort(&mut self) {
        if !self.in_order {
            self.index.sort_by_key(|r| r.key);
            self.in_order = true;
        }
    }

    /// Sorts the buffered rows and writes them out as a run.
    fn spill(&mut self) -> Result<(), EncodeError> {
        self.sort();
        let spill_err = |source| EncodeError::Spill { source };
        let file = match &self.options.spill_dir {
            Some(dir) => tempfile::tempfile_in(dir),
            None => tempfile::tempfile(),
        }
        .map_err(spill_err)?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        for r in &self.index {
            out.write_all(&r.key.to_le_bytes())
                .and_then(|()| out.write_all(&r.len.to_le_bytes()))
                .and_then(|()| out.write_all(self.row(r)))
                .map_err(spill_err)?;
        }
        let mut file = out.into_inner().map_err(|e| spill_err(e.into_error()))?;
        file.seek(SeekFrom::Start(0)).map_err(spill_err)?;
        self.runs.push(Run { file });
        self.chunks.clear();
        self.index.clear();
        self.buffered_bytes = 0;
        Ok(())
    }

    /// Hands every row to `sink` in key order.
    pub(crate) fn drain(
        mut self,
        mut sink: impl FnMut(&[u8]) -> Result<(), EncodeError>,
    ) -> Result<(), EncodeError> {
        if self.runs.is_empty() {
            self.sort();
            return self.index.iter().try_for_each(|r| sink(self.row(r)));
        }
        if !self.index.is_empty() {
            self.spill()?;
        }
        let mut readers: Vec<RunReader> = self
            .runs
            .into_iter()
            .map(|run| RunReader { input: BufReader::with_capacity(1 << 18, run.file), row: Vec::new() })
            .collect();
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

    /// Whether the rows are in memory, already in order and contiguous, so that the
    /// chunks can be written as they are.
    pub(crate) fn is_contiguous(&self) -> bool {
        self.runs.is_empty() && self.in_order
    }

    /// The chunks of row bytes, for [`SortedRows::is_contiguous`] rows, handed over.
    pub(crate) fn into_chunks(self) -> Vec<Vec<u8>> {
        self.chunks
    }

    /// The chunks of row bytes, for [`SortedRows::is_contiguous`] rows.
    pub(crate) fn chunks(&self) -> impl Iterator<Item = &[u8]> {
        self.chunks.iter().map(Vec::as_slice)
    }
}

/// Reads a spilled run back, one row at a time.
struct RunReader {
    input: BufReader<File>,
    row: Vec<u8>,
}

impl RunReader {
    /// Reads the next row into `self.row` and returns its key.
    fn next(&mut self) -> Result<Option<i64>, EncodeError> {
        let spill_err = |source| EncodeError::Spill { source };
        let mut head = [0u8; 12];
        match self.input.read_exact(&mut head) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(spill_err(e)),
        }
        let key = i64::from_le_bytes(head[..8].try_into().expect("8 bytes"));
        let len = u32::from_le_bytes(head[8..].try_into().expect("4 bytes")) as usize;
        self.row.resize(len, 0);
        self.input.read_exact(&mut self.row).map_err(spill_err)?;
        Ok(Some(key))
    }
}
