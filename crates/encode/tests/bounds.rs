//! The size bounds a writer keeping files under a limit relies on: a file's
//! [`Encode::encoded_bytes`] is never less than the file it finishes into, and
//! writing a call grows it by at most [`row_bytes_bound`], for every format, any
//! text (quotes, control characters, non-ASCII, text that does not compress), calls
//! in or out of order, and row groups and pages of any size.

use cdp_calls::{Call, CallType, JsonObject, Timestamp};
use cdp_encode::{Compression, Encode, EncodeOptions, FileEncoder, FileFormat, row_bytes_bound};
use proptest::prelude::*;

/// Text that escapes, quotes and compresses badly: a pseudo-random mix of
/// quotes, backslashes, control characters, commas, ASCII and multi-byte letters.
fn noisy(seed: u64, len: usize) -> String {
    const PIECES: [&str; 12] = ["\"", "\\", "\n", "\u{1}", ",", "a", "Z", "é", "€", "𝄞", "\r", " "];
    let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            PIECES[(state % PIECES.len() as u64) as usize]
        })
        .collect()
}

fn call(call_type: CallType, i: u64, text_len: usize, key: i64) -> Call {
    let text = noisy(i, text_len);
    let payload = JsonObject::from_json(&serde_json::json!({ "text": text, "i": i }).to_string()).unwrap();
    let base = match call_type {
        CallType::Identify => Call::identify(noisy(i + 1, text_len / 4 + 1)),
        CallType::Track => Call::track(noisy(i + 2, 8), noisy(i + 3, text_len / 8 + 1)),
        CallType::Page => Call::page("u", noisy(i + 4, text_len / 8 + 1)),
        _ => Call::group("u", noisy(i + 5, 12)),
    };
    let received = Timestamp::from_micros(1_790_000_000_000_000 + key * 1_001).unwrap();
    base.with_message_id(format!("m-{i}")).with_payload(payload).with_received_at(received)
}

/// Writes `calls` one by one checking growth against the bound, and the finished
/// size against `encoded_bytes` at every `check`-th call (re-encoding the prefix).
fn check_bounds(
    format: FileFormat,
    call_type: CallType,
    options: &EncodeOptions,
    calls: &[Call],
    check: usize,
) {
    let what = format!("{format} {call_type} {options:?}");
    let mut file = FileEncoder::new(format, call_type, options.clone());
    let empty = file.encoded_bytes();
    let empty_file = FileEncoder::new(format, call_type, options.clone()).finish_to_vec().unwrap();
    assert!(empty_file.len() as u64 <= empty, "{what}: empty file {} > {empty}", empty_file.len());
    for (n, call) in calls.iter().enumerate() {
        let before = file.encoded_bytes();
        let bound = row_bytes_bound(format, options, call);
        file.write(call).unwrap();
        let after = file.encoded_bytes();
        assert!(
            after <= before + bound,
            "{what}: call {n} grew the size by {} > its bound {bound}",
            after - before
        );
        if (n + 1) % check == 0 || n + 1 == calls.len() {
            let mut prefix = FileEncoder::new(format, call_type, options.clone());
            for call in &calls[..=n] {
                prefix.write(call).unwrap();
            }
            let finished = prefix.finish_to_vec().unwrap().len() as u64;
            assert!(
                finished <= after,
                "{what}: {} calls finish into {finished} bytes > encoded_bytes {after}",
                n + 1
            );
            if format != FileFormat::Parquet {
                assert_eq!(finished, after, "{what}: text formats are exact");
            }
        }
    }
}

#[test]
fn bounds_hold_for_many_small_calls_in_order_and_not() {
    for format in FileFormat::ALL {
        for options in [
            EncodeOptions::default(),
            EncodeOptions::default().with_row_group_rows(50),
            EncodeOptions::default().with_compression(Compression::Zstd(3)).with_row_group_rows(1),
            EncodeOptions::default().with_compression(Compression::None),
        ] {
            for call_type in [CallType::Track, CallType::Identify] {
                let in_order: Vec<Call> =
                    (0..600).map(|i| call(call_type, i, (i % 37) as usize, i as i64)).collect();
                check_bounds(format, call_type, &options, &in_order, 150);
                let mut shuffled = in_order.clone();
                shuffled.reverse();
                check_bounds(format, call_type, &options, &shuffled, 300);
            }
        }
    }
}

#[test]
fn bounds_hold_for_large_calls_that_do_not_compress() {
    for format in FileFormat::ALL {
        for options in [EncodeOptions::default(), EncodeOptions::default().with_row_group_rows(3)] {
            let calls: Vec<Call> =
                (0..40).map(|i| call(CallType::Page, i, 20_000 + i as usize * 997, i as i64)).collect();
            check_bounds(format, CallType::Page, &options, &calls, 10);
        }
    }
}

#[test]
fn bounds_hold_past_many_row_groups_and_pages() {
    // 70,000 calls: pages end at 20,000 rows, row groups at 128k by default and
    // at 10,000 here.
    for options in [EncodeOptions::default(), EncodeOptions::default().with_row_group_rows(10_000)] {
        let calls: Vec<Call> = (0..70_000).map(|i| call(CallType::Track, i, 3, i as i64)).collect();
        check_bounds(FileFormat::Parquet, CallType::Track, &options, &calls, 35_000);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn bounds_hold_for_any_mix(
        specs in proptest::collection::vec((0u64..1_000, 0usize..3_000, -50i64..50), 1..120),
        groups in 1usize..200,
        format in proptest::sample::select(FileFormat::ALL.to_vec()),
    ) {
        let options = EncodeOptions::default().with_row_group_rows(groups);
        let calls: Vec<Call> =
            specs.iter().enumerate().map(|(n, &(seed, len, jitter))| call(CallType::Track, seed + n as u64 * 1_000, len, n as i64 + jitter)).collect();
        check_bounds(format, CallType::Track, &options, &calls, 40);
    }
}
