//! Memory bounds of the encoders (issue 17): Parquet row groups end at
//! [`EncodeOptions::row_group_bytes`], read back by the parquet crate's own reader
//! with the same rows; the size bounds a bucket writer relies on still hold with
//! small row groups; and [`Encode::release_buffers`] never changes a file.

use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_array::cast::AsArray;
use arrow_array::types::TimestampMicrosecondType;
use cdp_calls::{Call, CallType, JsonObject, Timestamp};
use cdp_encode::{Compression, Encode, EncodeOptions, FileEncoder, FileFormat, row_bytes_bound};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::file::reader::{FileReader, SerializedFileReader};

/// Text that compresses badly (a xorshift stream of letters and digits), so that
/// row groups are about as large as their rows.
fn noisy(seed: u64, len: usize) -> String {
    const LETTERS: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            LETTERS[(state % LETTERS.len() as u64) as usize] as char
        })
        .collect()
}

/// A track call with `len` bytes of properties, received at second `key`.
fn track(i: u64, len: usize, key: i64) -> Call {
    let properties =
        JsonObject::from_json(&serde_json::json!({ "text": noisy(i, len), "i": i }).to_string()).unwrap();
    let received = Timestamp::from_micros(1_790_000_000_000_000 + key * 1_000_000).unwrap();
    Call::track(format!("u{}", i % 7), "Order Completed")
        .with_message_id(format!("m-{i}"))
        .with_payload(properties)
        .with_received_at(received)
}

fn parquet(calls: &[Call], options: &EncodeOptions) -> bytes::Bytes {
    let mut file = FileEncoder::new(FileFormat::Parquet, CallType::Track, options.clone());
    for call in calls {
        file.write(call).unwrap();
    }
    file.finish_to_vec().unwrap().into()
}

/// Every row of a Parquet file, read by the parquet crate: (received_at, id,
/// properties).
fn rows(bytes: &bytes::Bytes) -> Vec<(i64, String, String)> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(bytes.clone()).unwrap().build().unwrap();
    let mut out = Vec::new();
    for batch in reader {
        let batch: RecordBatch = batch.unwrap();
        let column = |name: &str| batch.column(batch.schema().index_of(name).unwrap()).clone();
        let received = column("received_at");
        let received = received.as_primitive::<TimestampMicrosecondType>();
        let ids = column("id");
        let ids = ids.as_string::<i32>();
        let properties = column("properties");
        let properties = properties.as_string::<i32>();
        for i in 0..batch.num_rows() {
            out.push((received.value(i), ids.value(i).to_owned(), properties.value(i).to_owned()));
        }
    }
    out
}

/// The compressed size of each row group, from the file's metadata.
fn row_group_sizes(bytes: &bytes::Bytes) -> Vec<(i64, i64)> {
    let reader = SerializedFileReader::new(bytes.clone()).unwrap();
    reader.metadata().row_groups().iter().map(|g| (g.num_rows(), g.compressed_size())).collect()
}

#[test]
fn row_groups_end_at_row_group_bytes_and_keep_every_row() {
    // 600 calls of 1-3 KB that do not compress: about 1.2 MB of rows, in row groups
    // of at most 64 KiB and one row more.
    let limit = 64 * 1024;
    let in_order: Vec<Call> =
        (0..600).map(|i| track(i, 1_000 + (i as usize * 37) % 2_000, i as i64)).collect();
    let mut shuffled = in_order.clone();
    shuffled.reverse();
    shuffled.rotate_left(250);
    let largest_row = in_order
        .iter()
        .map(|c| row_bytes_bound(FileFormat::Parquet, &EncodeOptions::default(), c))
        .max()
        .unwrap();
    let unbounded = EncodeOptions::default().with_row_group_bytes(usize::MAX);
    let expected = rows(&parquet(&in_order, &unbounded));
    assert_eq!(row_group_sizes(&parquet(&in_order, &unbounded)).len(), 1);
    for compression in [Compression::Snappy, Compression::Zstd(3), Compression::None] {
        let options = EncodeOptions::default().with_compression(compression).with_row_group_bytes(limit);
        // In order the rows stream into the file; shuffled they are sorted first:
        // either way the same rows, in the same row groups.
        let streamed = parquet(&in_order, &options);
        let sorted = parquet(&shuffled, &options);
        assert_eq!(streamed, sorted, "{compression:?}: same calls, same bytes");
        assert_eq!(rows(&streamed), expected, "{compression:?}: every row, in order");
        let groups = row_group_sizes(&streamed);
        assert!(groups.len() >= 10, "{compression:?}: {groups:?}");
        assert_eq!(groups.iter().map(|(rows, _)| rows).sum::<i64>(), 600);
        for (rows, bytes) in &groups {
            // The limit, the last row (with the compression slack), and the page
            // headers of its 11 columns.
            let bound = limit as i64 + largest_row as i64 + 11 * 64;
            assert!(
                *bytes <= bound,
                "{compression:?}: a row group of {rows} rows is {bytes} bytes > {bound}"
            );
        }
    }
}

#[test]
fn row_group_rows_still_ends_row_groups_first_when_it_comes_first() {
    let calls: Vec<Call> = (0..250).map(|i| track(i, 100, i as i64)).collect();
    let options = EncodeOptions::default().with_row_group_rows(100).with_row_group_bytes(1 << 30);
    let groups = row_group_sizes(&parquet(&calls, &options));
    assert_eq!(groups.iter().map(|(rows, _)| *rows).collect::<Vec<_>>(), [100, 100, 50]);
}

#[test]
fn size_bounds_hold_with_small_row_groups() {
    // What a writer keeping files under a size limit relies on: `encoded_bytes`
    // never under the finished file, and each call growing it by at most its
    // `row_bytes_bound`, with row groups ended by size every few rows.
    for limit in [1, 3_000, 20_000] {
        for reversed in [false, true] {
            let options = EncodeOptions::default().with_row_group_bytes(limit);
            let mut calls: Vec<Call> =
                (0..300).map(|i| track(i, (i as usize * 53) % 1_500, i as i64)).collect();
            if reversed {
                calls.reverse();
            }
            let mut file = FileEncoder::new(FileFormat::Parquet, CallType::Track, options.clone());
            for (n, call) in calls.iter().enumerate() {
                let before = file.encoded_bytes();
                let bound = row_bytes_bound(FileFormat::Parquet, &options, call);
                file.write(call).unwrap();
                let after = file.encoded_bytes();
                assert!(
                    after <= before + bound,
                    "limit {limit}: call {n} grew the size by {} > {bound}",
                    after - before
                );
            }
            let estimate = file.encoded_bytes();
            let finished = file.finish_to_vec().unwrap().len() as u64;
            assert!(finished <= estimate, "limit {limit}: {finished} bytes > encoded_bytes {estimate}");
        }
    }
}

/// Calls of `call_type` with keys from `keys`.
fn calls(call_type: CallType, keys: &[i64]) -> Vec<Call> {
    keys.iter()
        .enumerate()
        .map(|(i, &key)| {
            let received = Timestamp::from_micros(1_790_000_000_000_000 + key * 1_000).unwrap();
            let base = match call_type {
                CallType::Identify => Call::identify(format!("u{i}")),
                _ => Call::track(format!("u{i}"), "Signed Up"),
            };
            let payload = JsonObject::from_json(
                &serde_json::json!({ "text": noisy(i as u64, 200 + i % 300) }).to_string(),
            )
            .unwrap();
            base.with_message_id(format!("m{i}")).with_payload(payload).with_received_at(received)
        })
        .collect()
}

#[test]
fn release_buffers_never_changes_the_file() {
    // 3,000 calls of about 400 bytes: in order, going back in time every 700 calls,
    // reversed; with a sort buffer that spills many runs, and with the default one
    // (which then holds them all in memory); released after every call, half-way
    // or not at all.
    let in_order: Vec<i64> = (0..3_000).collect();
    let repeats: Vec<i64> = (0..3_000).map(|i| i % 700).collect();
    let reversed: Vec<i64> = (0..3_000).rev().collect();
    let small = EncodeOptions::default().with_sort_buffer_bytes(64 * 1024).with_row_group_bytes(200_000);
    for format in FileFormat::ALL {
        for (what, keys) in [("in order", &in_order), ("repeats", &repeats), ("reversed", &reversed)] {
            for options in [EncodeOptions::default(), small.clone()] {
                let calls = calls(CallType::Track, keys);
                let encode = |release_every: Option<usize>, out: usize| -> Vec<u8> {
                    let mut file = FileEncoder::new(format, CallType::Track, options.clone());
                    for (n, call) in calls.iter().enumerate() {
                        file.write(call).unwrap();
                        if release_every.is_some_and(|every| (n + 1) % every == 0) {
                            file.release_buffers().unwrap();
                        }
                    }
                    file.release_buffers().unwrap();
                    match out {
                        0 => file.finish_to_vec().unwrap(),
                        1 => file.finish_to_chunks().unwrap().concat(),
                        _ => {
                            let mut bytes = Vec::new();
                            std::io::Read::read_to_end(&mut file.finish_to_file().unwrap(), &mut bytes)
                                .unwrap();
                            bytes
                        }
                    }
                };
                let mut plain = FileEncoder::new(format, CallType::Track, options.clone());
                for call in &calls {
                    plain.write(call).unwrap();
                }
                let expected = plain.finish_to_vec().unwrap();
                for out in 0..3 {
                    assert_eq!(
                        encode(None, out),
                        expected,
                        "{format} {what} {options:?}: released at the end"
                    );
                }
                // Calls written after a release: the text formats give the same
                // bytes; Parquet the same rows (a row group may end earlier).
                let released_often = encode(Some(1_000), 0);
                if format == FileFormat::Parquet {
                    let bytes = bytes::Bytes::from(released_often);
                    assert_eq!(rows(&bytes), rows(&bytes::Bytes::from(expected)), "{format} {what}");
                } else {
                    assert_eq!(
                        released_often, expected,
                        "{format} {what} {options:?}: released every 1,000 calls"
                    );
                }
            }
        }
    }
}

#[test]
fn a_small_file_released_stays_in_memory_and_is_whole() {
    let calls = calls(CallType::Identify, &[5, 3, 4, 1]);
    for format in FileFormat::ALL {
        let mut file = FileEncoder::new(format, CallType::Identify, EncodeOptions::default());
        let mut plain = FileEncoder::new(format, CallType::Identify, EncodeOptions::default());
        for call in &calls {
            file.write(call).unwrap();
            plain.write(call).unwrap();
        }
        file.release_buffers().unwrap();
        assert_eq!(file.rows(), 4);
        assert_eq!(file.finish_to_chunks().unwrap().concat(), plain.finish_to_vec().unwrap(), "{format}");
    }
}

/// The encoders' futures and values cross threads (a bucket writer releases and
/// finishes them on others).
#[test]
fn a_released_encoder_can_be_finished_on_another_thread() {
    let calls = Arc::new(calls(CallType::Track, &(0..500).rev().collect::<Vec<_>>()));
    let options = EncodeOptions::default().with_sort_buffer_bytes(16 * 1024);
    let mut file = FileEncoder::new(FileFormat::Json, CallType::Track, options.clone());
    for call in calls.iter() {
        file.write(call).unwrap();
    }
    let released = std::thread::spawn(move || {
        file.release_buffers().unwrap();
        file
    })
    .join()
    .unwrap();
    let bytes = std::thread::spawn(move || released.finish_to_vec().unwrap()).join().unwrap();
    let text = String::from_utf8(bytes).unwrap();
    let ids: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].clone()).collect();
    let expected: Vec<serde_json::Value> =
        (0..500).rev().map(|i| serde_json::json!(format!("m{i}"))).collect();
    assert_eq!(ids, expected);
}
