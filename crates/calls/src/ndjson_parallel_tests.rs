//! The parallel reader gives exactly what the sequential one gives: the same calls,
//! the same errors on the same lines, whatever the blocks, threads and reads.

use std::io::{self, BufReader, Read};
use std::num::NonZeroUsize;

use proptest::prelude::*;

use super::{CallReader, Fill, LineError, MAX_LINE_BYTES, ParallelCallReader};
use crate::Timestamp;

/// What a reader gave, as comparable text: each call's JSON, each error's line and
/// rendering (its kind's `Debug` too, so that the error values match, not just
/// their messages).
fn render(item: Result<crate::Call, LineError>) -> String {
    match item {
        Ok(call) => call.to_json(),
        Err(e) => format!("{e} / {:?}", e.kind),
    }
}

fn now() -> Timestamp {
    Timestamp::parse_rfc3339("2026-11-30T12:00:00Z").unwrap()
}

fn sequential(input: &[u8]) -> Vec<String> {
    CallReader::with_received_at(input, now()).map(render).collect()
}

fn parallel<R: Read + Send + 'static>(input: R, threads: usize, block_bytes: usize) -> Vec<String> {
    let threads = NonZeroUsize::new(threads).unwrap();
    ParallelCallReader::start_with_blocks(input, Fill::Missing(now()), threads, block_bytes)
        .map(render)
        .collect()
}

/// A reader that hands out at most `most` bytes a read, and then fails after
/// `fail_after` bytes when that is set.
struct Trickle {
    bytes: Vec<u8>,
    at: usize,
    most: usize,
    fail_after: Option<usize>,
}

impl Read for Trickle {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let end = self.fail_after.unwrap_or(self.bytes.len()).min(self.bytes.len());
        if self.at == end && self.fail_after.is_some() {
            return Err(io::Error::other("disk on fire"));
        }
        let n = buf.len().min(end - self.at).min(self.most);
        buf[..n].copy_from_slice(&self.bytes[self.at..self.at + n]);
        self.at += n;
        Ok(n)
    }
}

/// One line of every kind the reader meets, by index.
fn line(kind: u8, i: usize) -> Vec<u8> {
    match kind % 12 {
        0 => format!(r#"{{"type":"track","messageId":"m{i}","userId":"u{i}","event":"Signed Up","properties":{{"n":{i}}}}}"#)
            .into_bytes(),
        1 => format!(r#"{{"type":"identify","messageId":"m{i}","anonymousId":"a{i}","traits":{{"plan":"pro"}}}}"#)
            .into_bytes(),
        2 => Vec::new(),
        3 => b"   \t ".to_vec(),
        4 => br#"{"type":"track","userId":"u1","#.to_vec(),
        5 => format!(r#"{{"type":"track","messageId":"m{i}","userId":"u{i}"}}"#).into_bytes(),
        6 => b"{\"type\":\"track\",\"userId\":\"\xff\xfe\",\"event\":\"E\"}".to_vec(),
        7 => br#"[1,2]"#.to_vec(),
        8 => format!(r#"{{"type":"page","messageId":"m{i}","userId":"u{i}","name":"Home"}}"#).into_bytes(),
        9 => format!(r#"{{"type":"alias","messageId":"m{i}","userId":"u{i}","previousId":"p"}}"#).into_bytes(),
        10 => format!(r#"{{"type":"track","messageId":"m{i}","userId":"u{i}","event":"E","properties":{{"s":"{}"}}}}"#, "x".repeat(i % 3000))
            .into_bytes(),
        _ => format!(r#"{{"type":"group","messageId":"m{i}","userId":"u{i}","groupId":"g","receivedAt":"2026-01-0{}T00:00:00Z"}}"#, 1 + i % 9)
            .into_bytes(),
    }
}

/// A stream of the given line kinds, each ended by `\n` or `\r\n`, the last one
/// perhaps without its end.
fn stream(kinds: &[(u8, bool)], last_ended: bool) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, &(kind, crlf)) in kinds.iter().enumerate() {
        out.extend_from_slice(&line(kind, i));
        if i + 1 < kinds.len() || last_ended {
            out.extend_from_slice(if crlf { b"\r\n" } else { b"\n" });
        }
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn parallel_reading_gives_what_sequential_reading_gives(
        kinds in prop::collection::vec((any::<u8>(), any::<bool>()), 0..300),
        last_ended in any::<bool>(),
        threads in 1usize..5,
        block_bytes in 1usize..6000,
        most in 1usize..9000,
    ) {
        let input = stream(&kinds, last_ended);
        let expected = sequential(&input);
        let got = parallel(Trickle { bytes: input, at: 0, most, fail_after: None }, threads, block_bytes);
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_read_error_ends_both_readers_on_the_same_line(
        kinds in prop::collection::vec((any::<u8>(), any::<bool>()), 1..100),
        fail_at in 0.0f64..1.0,
        threads in 1usize..4,
        block_bytes in 1usize..3000,
        most in 1usize..5000,
    ) {
        let input = stream(&kinds, true);
        let fail_after = (input.len() as f64 * fail_at) as usize;
        let trickle = |most| Trickle { bytes: input.clone(), at: 0, most, fail_after: Some(fail_after) };
        let expected: Vec<String> =
            CallReader::with_received_at(BufReader::with_capacity(64, trickle(most)), now()).map(render).collect();
        let got = parallel(trickle(most), threads, block_bytes);
        prop_assert_eq!(got.last().map(|e| e.contains("disk on fire")), Some(true));
        prop_assert_eq!(got, expected);
    }
}

#[test]
fn lines_longer_than_the_limit_are_reported_and_skipped_the_same_way() {
    let good = |i: usize| line(0, i);
    let spaced = |len: usize| {
        // A call padded with spaces to `len` bytes, valid JSON either way.
        let mut text = good(7);
        let close = text.pop().unwrap();
        text.resize(len - 1, b' ');
        text.push(close);
        text
    };
    let cases: Vec<Vec<u8>> = vec![
        // Over the limit in the middle, exactly at it, one over, and last without newline.
        [good(1), spaced(MAX_LINE_BYTES + 5000), good(2)].join(&b'\n'),
        [good(1), spaced(MAX_LINE_BYTES), good(2)].join(&b'\n'),
        [good(1), spaced(MAX_LINE_BYTES + 1), good(2)].join(&b'\n'),
        [good(1), spaced(3 * MAX_LINE_BYTES)].join(&b'\n'),
        [spaced(MAX_LINE_BYTES + 1), spaced(2 * MAX_LINE_BYTES), good(3), Vec::new()].join(&b'\n'),
    ];
    for (n, input) in cases.into_iter().enumerate() {
        let expected = sequential(&input);
        assert!(
            expected.iter().any(|e| e.contains("too large") || e.contains("TooLarge")) || n == 1,
            "case {n}: {expected:?}"
        );
        for (threads, block_bytes, most) in
            [(1, 1 << 20, 1 << 20), (2, 4096, 1000), (3, 300_000, 70_000), (2, 2 << 20, 3 << 20)]
        {
            let trickle = Trickle { bytes: input.clone(), at: 0, most, fail_after: None };
            assert_eq!(
                parallel(trickle, threads, block_bytes),
                expected,
                "case {n}, {threads} threads, blocks of {block_bytes}"
            );
        }
    }
}

#[test]
fn dropping_the_reader_early_stops_it() {
    // 200,000 lines, far more than it reads ahead: dropping after ten must not hang.
    let input: Vec<u8> = (0..200_000).flat_map(|i| [line(0, i), b"\n".to_vec()].concat()).collect();
    let mut reader =
        ParallelCallReader::with_received_at(io::Cursor::new(input), now(), NonZeroUsize::new(2).unwrap());
    assert_eq!(reader.threads(), 2);
    for _ in 0..10 {
        assert!(reader.next().unwrap().is_ok());
    }
    drop(reader);
}
