//! The sort buffer's size changes how calls out of order are spilled and merged,
//! never the file: for every format, a small buffer (hundreds of runs, merged a
//! few dozen at a time, and merged again) gives the same bytes as the default one,
//! through every way of finishing, and the rows read back sorted and stable.

use std::io::Read;

use cdp_calls::{Call, CallType, JsonObject, Timestamp};
use cdp_encode::{Encode, EncodeOptions, FileEncoder, FileFormat};

/// Track calls whose `receivedAt` goes back in time every 1,000 calls (a file
/// repeated), with ties between the repeats, and a payload naming the call.
fn calls(n: u64) -> Vec<Call> {
    (0..n)
        .map(|i| {
            let key = i64::try_from(i % 1_000).unwrap() * 7 / 3 - i64::try_from(i / 1_000).unwrap();
            let received = Timestamp::from_micros(1_790_000_000_000_000 + key * 1_000).unwrap();
            let payload =
                JsonObject::from_json(&format!(r#"{{"i":{i},"pad":"{}"}}"#, "x".repeat((i % 97) as usize)))
                    .unwrap();
            Call::track(format!("u{}", i % 13), "Order Completed")
                .with_message_id(format!("m-{i}"))
                .with_payload(payload)
                .with_received_at(received)
        })
        .collect()
}

fn encode(format: FileFormat, options: &EncodeOptions, calls: &[Call], way: usize) -> Vec<u8> {
    let mut file = FileEncoder::new(format, CallType::Track, options.clone());
    for call in calls {
        file.write(call).unwrap();
    }
    match way {
        0 => file.finish_to_vec().unwrap(),
        1 => {
            let mut bytes = Vec::new();
            file.finish_to_file().unwrap().read_to_end(&mut bytes).unwrap();
            bytes
        }
        _ => file.finish_to_chunks().unwrap().concat(),
    }
}

#[test]
fn a_small_sort_buffer_with_many_runs_gives_the_same_bytes_in_every_format() {
    let calls = calls(6_000);
    let dir = tempfile::tempdir().unwrap();
    // About 120 bytes of row and index per call: a run per 17 calls or so, 350
    // runs, more than one merge reads at once.
    let small = EncodeOptions::default().with_sort_buffer_bytes(2_000).with_spill_dir(dir.path());
    for format in FileFormat::ALL {
        let expected = encode(format, &EncodeOptions::default(), &calls, 0);
        for way in 0..3 {
            let bytes = encode(format, &small, &calls, way);
            assert!(bytes == expected, "{format}, way {way}: the bytes differ from the default buffer's");
        }
        if format == FileFormat::Json {
            // Sorted by received_at, ties in input order: read back independently.
            let text = String::from_utf8(expected).unwrap();
            let rows: Vec<serde_json::Value> =
                text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
            let mut want: Vec<(String, u64)> = calls
                .iter()
                .enumerate()
                .map(|(i, c)| (c.received_at.unwrap().to_string(), i as u64))
                .collect();
            want.sort_by(|a, b| a.0.cmp(&b.0)); // stable
            let got: Vec<String> = rows.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
            let want: Vec<String> = want.iter().map(|(_, i)| format!("m-{i}")).collect();
            assert_eq!(got, want);
        }
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "spilled files are anonymous");
}
