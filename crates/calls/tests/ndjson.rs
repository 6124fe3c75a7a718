//! Behaviour tests for the NDJSON call reader (SPEC section 6): every bad line is
//! reported with its number and reason, and every good line still comes through.

use std::io::{self, BufRead, BufReader, Read};

use cdp_calls::ndjson::{CallReader, LineError, LineErrorKind, MAX_LINE_BYTES};
use cdp_calls::{Call, CallError, CallType, MAX_CALL_BYTES, SemanticEvent, Timestamp};

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

const NOW: &str = "2026-11-22T10:00:00Z";

/// Splits a reader's output into the good calls and the errors.
fn drain<R: BufRead>(reader: CallReader<R>) -> (Vec<Call>, Vec<LineError>) {
    let mut good = Vec::new();
    let mut bad = Vec::new();
    for item in reader {
        match item {
            Ok(call) => good.push(call),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

fn message_ids(calls: &[Call]) -> Vec<&str> {
    calls.iter().map(|c| c.message_id.as_deref().unwrap_or("<none>")).collect()
}

/// The 40 KiB line of the mixed stream.
fn big_line() -> String {
    format!(
        r#"{{"type":"track","messageId":"m-big","userId":"u-big","event":"Big","properties":{{"blob":"{}"}}}}"#,
        "x".repeat(40 * 1024)
    )
}

/// A stream with one of every kind of bad line between good ones.
fn mixed_stream() -> Vec<u8> {
    let mut s: Vec<u8> = Vec::new();
    let mut line = |text: &[u8], end: &[u8]| {
        s.extend_from_slice(text);
        s.extend_from_slice(end);
    };
    /* 1 */
    line(br#"{"type":"track","messageId":"m1","userId":"u1","event":"Signed Up"}"#, b"\n");
    /* 2 */
    line(b"", b"\n");
    /* 3 */
    line(br#"{"type":"track","userId":"u1","#, b"\n");
    /* 4 */
    line(br#"{"type":"identify","messageId":"m2","userId":"u2","traits":{"plan":"pro"}}"#, b"\r\n");
    /* 5 */
    line(big_line().as_bytes(), b"\n");
    /* 6 */
    line(br#"{"type":"track","messageId":"m-no-event","userId":"u3"}"#, b"\n");
    /* 7 */
    line(b"{\"type\":\"track\",\"userId\":\"\xff\xfe\",\"event\":\"E\"}", b"\n");
    /* 8 */
    line(b"   \t  ", b"\n");
    /* 9 */
    line(br#"[{"type":"track","userId":"u1","event":"E"}]"#, b"\n");
    /* 10 */
    line(br#"{"type":"identify","messageId":"m-bad","userId":true}"#, b"\n");
    /* 11 */
    line(br#"{"type":"alias","messageId":"m3","userId":"u4","previousId":"anon-4"}"#, b"\r\n");
    /* 12 */
    line(b"", b"\r\n");
    /* 13 */
    line(br#"{"type":"page","messageId":"m4","anonymousId":"a5","name":"Home","sentAt":"2026-11-22T09:00:00Z"}"#, b"\n");
    /* 14 */
    line(br#"{"type":"track","messageId":"m5","userId":"u6","event":"Device Deleted"}"#, b"\n");
    /* 15, no newline at the end */
    line(br#"{"type":"screen","messageId":"m6","userId":"u7","name":"Cart"}"#, b"");
    s
}

fn check_mixed<R: BufRead>(reader: CallReader<R>, label: &str) {
    let (good, bad) = drain(reader);
    assert_eq!(message_ids(&good), ["m1", "m2", "m3", "m4", "m6"], "{label}");

    let lines: Vec<u64> = bad.iter().map(|e| e.line).collect();
    assert_eq!(lines, [3, 5, 6, 7, 9, 10, 14], "{label}");

    // 3: cut off in the middle of the object, at the end of its 30 bytes.
    match &bad[0].kind {
        LineErrorKind::Call(CallError::InvalidJson { line, column, message }) => {
            assert_eq!((*line, *column), (1, 30), "{label}");
            assert!(message.contains("EOF"), "{label}: {message}");
        }
        other => panic!("{label}: line 3: {other:?}"),
    }
    // 5: 40 KiB as sent, plus the two timestamps the reader fills in (timestamp
    // falls back to receivedAt), in the canonical order after the objects.
    let big = big_line();
    let filled = format!(
        r#"{},"timestamp":"2026-11-22T10:00:00.000Z","receivedAt":"2026-11-22T10:00:00.000Z"}}"#,
        &big[..big.len() - 1]
    );
    match &bad[1].kind {
        LineErrorKind::Call(CallError::TooLarge { bytes, limit }) => {
            assert_eq!((*bytes, *limit), (filled.len(), MAX_CALL_BYTES), "{label}");
        }
        other => panic!("{label}: line 5: {other:?}"),
    }
    // 6: no event.
    assert!(
        matches!(
            &bad[2].kind,
            LineErrorKind::Call(CallError::MissingField { call_type: CallType::Track, field: "event" })
        ),
        "{label}: {:?}",
        bad[2]
    );
    // 7: the first bad byte follows the 26 bytes of `{"type":"track","userId":"`.
    assert!(matches!(bad[3].kind, LineErrorKind::InvalidUtf8 { byte: 27 }), "{label}: {:?}", bad[3]);
    // 9: an array where the call belongs.
    assert!(
        matches!(bad[4].kind, LineErrorKind::Call(CallError::NotAnObject { found: "array" })),
        "{label}: {:?}",
        bad[4]
    );
    // 10: a wrong-typed field.
    assert!(
        matches!(
            bad[5].kind,
            LineErrorKind::Call(CallError::InvalidField {
                field: "userId",
                expected: "a string or number",
                found: "boolean"
            })
        ),
        "{label}: {:?}",
        bad[5]
    );
    // 14: a semantic event without the device token.
    match &bad[6].kind {
        LineErrorKind::Call(CallError::SemanticEventField { event, event_name, field }) => {
            assert_eq!(*event, SemanticEvent::DeviceDeleted, "{label}");
            assert_eq!(event_name, "Device Deleted", "{label}");
            assert_eq!(*field, "context.device.token", "{label}");
        }
        other => panic!("{label}: line 14: {other:?}"),
    }
    assert_eq!(bad[2].to_string(), "line 6: track call is missing required field `event`");

    // Good calls were completed with the reader's "now" and kept what they had.
    let now = ts(NOW);
    for call in &good {
        assert_eq!(call.received_at, Some(now), "{label}");
    }
    let page = &good[3];
    assert_eq!(page.sent_at, Some(ts("2026-11-22T09:00:00Z")));
    assert_eq!(page.original_timestamp, None);
    assert_eq!(page.timestamp, Some(now), "no originalTimestamp: timestamp is receivedAt");
    assert_eq!(good[1].traits().unwrap().as_str(), r#"{"plan":"pro"}"#, "CR is not part of the call");
    assert_eq!(good[4].name(), Some("Cart"));
}

#[test]
fn a_mixed_stream_reports_each_bad_line_and_keeps_every_good_one() {
    let input = mixed_stream();
    let mut reader = CallReader::with_received_at(&input[..], ts(NOW));
    assert_eq!(reader.line(), 0);
    let first = reader.next().unwrap().unwrap();
    assert_eq!(first.message_id.as_deref(), Some("m1"));
    assert_eq!(reader.line(), 1);
    let rest: Vec<_> = reader.by_ref().collect();
    assert_eq!(rest.len(), 11, "4 more good calls and 7 errors");
    assert_eq!(reader.line(), 15, "blank lines are counted");
    assert!(reader.next().is_none(), "fused after the end");

    check_mixed(CallReader::with_received_at(&input[..], ts(NOW)), "slice");
}

#[test]
fn the_result_does_not_depend_on_how_the_input_is_buffered() {
    let input = mixed_stream();
    for capacity in [1, 2, 3, 7, 64, 4096, 65_536, 1 << 20] {
        let reader = BufReader::with_capacity(capacity, &input[..]);
        check_mixed(CallReader::with_received_at(reader, ts(NOW)), &format!("capacity {capacity}"));
    }
    // A reader that hands out a few bytes at a time.
    struct Trickle<'a>(&'a [u8], usize);
    impl Read for Trickle<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 += 1;
            let n = buf.len().min(self.0.len()).min(1 + self.1 % 5);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let reader = BufReader::with_capacity(16, Trickle(&input, 0));
    check_mixed(CallReader::with_received_at(reader, ts(NOW)), "trickle");
}

/// A track call line of exactly `len` bytes, padded with spaces before the `}`.
fn spaced_line(id: &str, len: usize) -> String {
    let head = format!(r#"{{"type":"track","messageId":"{id}","userId":"u","event":"E""#);
    format!("{head}{}}}", " ".repeat(len - head.len() - 1))
}

#[test]
fn a_line_over_one_mib_is_too_large_and_the_next_line_is_still_read() {
    let big = format!(
        r#"{{"type":"track","userId":"u","event":"E","properties":{{"p":"{}"}}}}"#,
        "y".repeat(MAX_LINE_BYTES)
    );
    assert!(big.len() > MAX_LINE_BYTES);
    let after = r#"{"type":"track","messageId":"after","userId":"u","event":"E"}"#;
    let input = format!("{big}\n{after}\n");
    for capacity in [None, Some(8192), Some(2 * MAX_LINE_BYTES)] {
        let items: Vec<_> = match capacity {
            None => CallReader::new(input.as_bytes()).collect(),
            Some(c) => CallReader::new(BufReader::with_capacity(c, input.as_bytes())).collect(),
        };
        assert_eq!(items.len(), 2, "{capacity:?}");
        match &items[0] {
            Err(LineError { line: 1, kind: LineErrorKind::Call(CallError::TooLarge { bytes, limit }) }) => {
                assert_eq!((*bytes, *limit), (big.len(), MAX_CALL_BYTES), "{capacity:?}");
            }
            other => panic!("{capacity:?}: {other:?}"),
        }
        assert_eq!(items[1].as_ref().unwrap().message_id.as_deref(), Some("after"), "{capacity:?}");
    }

    // Too long is too long, whatever the bytes: invalid UTF-8, last line, no newline.
    let mut input = vec![0xffu8; MAX_LINE_BYTES + 1];
    input.extend_from_slice(b"\n");
    input.extend_from_slice(after.as_bytes());
    input.extend_from_slice(b"\n");
    input.extend_from_slice(&[b'x'; MAX_LINE_BYTES + 5]);
    let items: Vec<_> = CallReader::new(BufReader::new(&input[..])).collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(
        items[0],
        Err(LineError { line: 1, kind: LineErrorKind::Call(CallError::TooLarge { bytes, .. }) })
            if bytes == MAX_LINE_BYTES + 1
    ));
    assert!(items[1].is_ok());
    assert!(matches!(
        items[2],
        Err(LineError { line: 3, kind: LineErrorKind::Call(CallError::TooLarge { bytes, .. }) })
            if bytes == MAX_LINE_BYTES + 5
    ));
}

#[test]
fn a_line_of_exactly_one_mib_is_measured_in_its_compact_form() {
    // One MiB of white space around a tiny call: the call is kept.
    let exact = spaced_line("ws", MAX_LINE_BYTES);
    let over = spaced_line("ws2", MAX_LINE_BYTES + 1);
    assert_eq!((exact.len(), over.len()), (MAX_LINE_BYTES, MAX_LINE_BYTES + 1));
    let input = format!("{exact}\n{over}\n");
    for capacity in [4096, 4 * MAX_LINE_BYTES] {
        let items: Vec<_> = CallReader::new(BufReader::with_capacity(capacity, input.as_bytes())).collect();
        assert_eq!(items.len(), 2);
        let call = items[0].as_ref().unwrap_or_else(|e| panic!("{capacity}: {e}"));
        assert_eq!(call.message_id.as_deref(), Some("ws"));
        assert!(matches!(
            items[1],
            Err(LineError { line: 2, kind: LineErrorKind::Call(CallError::TooLarge { bytes, .. }) })
                if bytes == MAX_LINE_BYTES + 1
        ));
    }
}

#[test]
fn a_stream_without_a_trailing_newline_gives_its_last_call() {
    let a = r#"{"type":"identify","messageId":"a","userId":"u1"}"#;
    let b = r#"{"type":"identify","messageId":"b","userId":"u2"}"#;
    for input in [format!("{a}\n{b}"), format!("{a}\r\n{b}\r"), format!("{a}\n\n{b}")] {
        for capacity in [1, 5, 8192] {
            let (good, bad) = drain(CallReader::new(BufReader::with_capacity(capacity, input.as_bytes())));
            assert_eq!(message_ids(&good), ["a", "b"], "{input:?} {capacity}");
            assert!(bad.is_empty(), "{bad:?}");
        }
    }
    let (good, bad) = drain(CallReader::new(b.as_bytes()));
    assert_eq!((message_ids(&good), bad.len()), (vec!["b"], 0));
    // A bad last line without a newline is reported with its number.
    let (good, bad) = drain(CallReader::new(format!("{a}\n{{\"type\":").as_bytes()));
    assert_eq!(message_ids(&good), ["a"]);
    assert_eq!(bad.len(), 1);
    assert_eq!(bad[0].line, 2);
}

#[test]
fn empty_and_blank_streams_give_nothing() {
    for input in ["", "\n", "\r\n", "\n\n  \n\t\r\n", " "] {
        let mut reader = CallReader::new(input.as_bytes());
        assert!(reader.next().is_none(), "{input:?}");
    }
}

#[test]
fn a_read_error_is_reported_on_the_next_line_and_ends_the_stream() {
    struct Failing<'a>(&'a [u8]);
    impl Read for Failing<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            if self.0.is_empty() {
                return Err(io::Error::other("disk on fire"));
            }
            let n = buf.len().min(self.0.len());
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let input = b"{\"type\":\"identify\",\"messageId\":\"ok\",\"userId\":\"u\"}\n\n{\"type\":\"ide";
    let mut reader = CallReader::new(BufReader::new(Failing(input)));
    assert_eq!(reader.next().unwrap().unwrap().message_id.as_deref(), Some("ok"));
    match reader.next() {
        Some(Err(LineError { line: 3, kind: LineErrorKind::Io(e) })) => {
            assert_eq!(e.to_string(), "disk on fire")
        }
        other => panic!("{other:?}"),
    }
    assert!(reader.next().is_none());

    // An interrupted read is retried, not reported.
    struct Interrupting<'a>(&'a [u8], bool);
    impl Read for Interrupting<'_> {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.1 = !self.1;
            if self.1 {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let n = buf.len().min(self.0.len()).min(4);
            buf[..n].copy_from_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            Ok(n)
        }
    }
    let input = b"{\"type\":\"identify\",\"messageId\":\"ok\",\"userId\":\"u\"}\n{\"type\":\"alias\",\"messageId\":\"ok2\",\"userId\":\"u\",\"previousId\":\"p\"}";
    let (good, bad) = drain(CallReader::new(BufReader::with_capacity(8, Interrupting(input, false))));
    assert_eq!(message_ids(&good), ["ok", "ok2"]);
    assert!(bad.is_empty(), "{bad:?}");
}

#[test]
fn the_reader_fills_missing_fields_unless_told_not_to() {
    let input = concat!(
        r#"{"type":"track","userId":"u1","event":"E","timestamp":"2026-11-22T09:00:00Z"}"#,
        "\n",
        r#"{"type":"track","messageId":"kept","userId":"u1","event":"E","timestamp":"2026-01-01T00:00:00Z","#,
        r#""originalTimestamp":"2026-01-02T00:00:00Z","sentAt":"2026-01-03T00:00:00Z","receivedAt":"2026-01-04T00:00:00Z"}"#,
        "\n",
        r#"{"type":"track","userId":"u1"}"#,
        "\n"
    );
    let now = ts(NOW);
    let items: Vec<_> = CallReader::with_received_at(input.as_bytes(), now).collect();
    let first = items[0].as_ref().unwrap();
    assert_eq!(first.received_at, Some(now));
    assert_eq!(first.original_timestamp, Some(ts("2026-11-22T09:00:00Z")));
    assert_eq!(first.timestamp, Some(ts("2026-11-22T09:00:00Z")));
    let id = first.message_id.as_deref().unwrap();
    assert_eq!(ulid::Ulid::from_string(id).unwrap().timestamp_ms(), now.as_millis() as u64);
    // Calls received earlier keep all four timestamps.
    let second = items[1].as_ref().unwrap();
    assert_eq!(second.message_id.as_deref(), Some("kept"));
    assert_eq!(
        [second.timestamp, second.original_timestamp, second.sent_at, second.received_at],
        ["2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z", "2026-01-03T00:00:00Z", "2026-01-04T00:00:00Z"]
            .map(|t| Some(ts(t)))
    );
    assert!(matches!(items[2], Err(LineError { line: 3, .. })));

    // Without filling: calls come through as read, and are still checked.
    let items: Vec<_> = CallReader::without_filling(input.as_bytes()).collect();
    let first = items[0].as_ref().unwrap();
    assert_eq!(
        (first.message_id.as_deref(), first.received_at, first.original_timestamp),
        (None, None, None)
    );
    assert_eq!(first.timestamp, Some(ts("2026-11-22T09:00:00Z")));
    assert_eq!(items[1].as_ref().unwrap(), &Call::parse_json(input.lines().nth(1).unwrap()).unwrap());
    assert!(matches!(
        items[2],
        Err(LineError {
            line: 3,
            kind: LineErrorKind::Call(CallError::MissingField { call_type: CallType::Track, field: "event" })
        })
    ));
}

#[test]
fn values_that_cannot_be_decoded_are_line_errors_not_panics() {
    let input = concat!(
        r#"{"type":"track","userId":"u1","event":"\ud800"}"#,
        "\n",
        r#"{"type":"group","userId":"u1","groupId":1e400}"#,
        "\n",
        r#"{"type":"identify","messageId":"fine","userId":"u1","traits":{"odd":"\udc00"}}"#,
        "\n"
    );
    let items: Vec<_> = CallReader::new(input.as_bytes()).collect();
    assert_eq!(items.len(), 3);
    assert!(matches!(
        items[0],
        Err(LineError { line: 1, kind: LineErrorKind::Call(CallError::InvalidField { field: "event", .. }) })
    ));
    assert!(matches!(
        items[1],
        Err(LineError {
            line: 2,
            kind: LineErrorKind::Call(CallError::InvalidField { field: "groupId", .. })
        })
    ));
    assert_eq!(items[2].as_ref().unwrap().message_id.as_deref(), Some("fine"));
}
