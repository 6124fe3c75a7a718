//! The `export` example on several threads writes byte for byte the files it writes
//! on one (issue 17): for each format, on input whose `receivedAt` goes back and
//! forth and which holds bad lines of every kind (bad JSON, missing fields, invalid
//! UTF-8, a line over 1 MiB, blank lines, CRLF ends), the same file names, the same
//! bytes, the same bad lines reported on standard error, and the same exit status.
//!
//! The example is built and run by `common` (`cargo build --example export`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// A small deterministic generator (xorshift), so that the input is the same on
/// every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `calls` lines of every call type, complete (message id and `receivedAt`, so
/// that nothing is filled in from the clock), `receivedAt` out of order within
/// a day and back at every tenth of the input, with a bad line every so often.
fn input(calls: usize) -> Vec<u8> {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut out = Vec::new();
    for i in 0..calls {
        let day = 10 - (i * 10 / calls);
        let second = rng.below(86_400);
        let received = format!(
            "2026-11-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
            second / 3600,
            second / 60 % 60,
            second % 60,
            i % 1000
        );
        let user = rng.below(5000);
        let line = match rng.below(8) {
            0..=2 => format!(
                r#"{{"type":"track","messageId":"m{i}","userId":"u{user}","event":"Order Completed {}","properties":{{"total":{},"items":[1,2,{user}],"note":"a, \"quoted\"\nline"}},"context":{{"ip":"10.0.0.{}"}},"receivedAt":"{received}","timestamp":"{received}"}}"#,
                user % 7,
                rng.below(100_000),
                user % 250
            ),
            3 => format!(
                r#"{{"type":"identify","messageId":"m{i}","userId":"u{user}","traits":{{"email":"u{user}@example.com","plan":"pro"}},"receivedAt":"{received}","sentAt":"{received}"}}"#
            ),
            4 => format!(
                r#"{{"type":"page","messageId":"m{i}","anonymousId":"a{user}","name":"Home","properties":{{"path":"/"}},"receivedAt":"{received}"}}"#
            ),
            5 => format!(
                r#"{{"type":"screen","messageId":"m{i}","userId":"u{user}","name":"Cart","receivedAt":"{received}"}}"#
            ),
            6 => format!(
                r#"{{"type":"group","messageId":"m{i}","userId":"u{user}","groupId":"g{}","traits":{{"name":"Acme"}},"receivedAt":"{received}"}}"#,
                user % 40
            ),
            _ => format!(
                r#"{{"type":"alias","messageId":"m{i}","userId":"u{user}","previousId":"a{user}","receivedAt":"{received}"}}"#
            ),
        };
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(if i % 11 == 0 { b"\r\n" } else { b"\n" });
        match i % 997 {
            100 => out.extend_from_slice(b"{\"type\":\"track\",\"userId\":\"u1\",\n"),
            200 => out.extend_from_slice(format!("{{\"type\":\"track\",\"messageId\":\"x{i}\",\"userId\":\"u1\",\"receivedAt\":\"{received}\"}}\n").as_bytes()),
            300 => out.extend_from_slice(b"{\"type\":\"track\",\"userId\":\"\xff\",\"event\":\"E\"}\n"),
            400 => out.extend_from_slice(b"\n   \n"),
            500 => out.extend_from_slice(b"[1,2,3]\n"),
            _ => {}
        }
        if i == calls / 2 {
            out.extend_from_slice(
                format!("{{\"type\":\"track\",\"userId\":\"u1\",\"event\":\"{}\"}}\n", "x".repeat(1_100_000))
                    .as_bytes(),
            );
        }
    }
    out
}

/// Every file of a bucket directory, by name.
fn files(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| {
            let entry = entry.unwrap();
            (entry.file_name().into_string().unwrap(), std::fs::read(entry.path()).unwrap())
        })
        .collect()
}

/// Runs the export with `threads`, and returns its exit status, standard error, and
/// the files it wrote.
fn export(
    input: &Path,
    bucket: &Path,
    format: &str,
    threads: usize,
    extra: &[&str],
) -> (i32, String, BTreeMap<String, Vec<u8>>) {
    let output = Command::new(common::export())
        .args(["--format", format, "--bucket"])
        .arg(bucket)
        .args(["--threads", &threads.to_string(), "--no-fsync"])
        .args(extra)
        .arg(input)
        .output()
        .expect("running the export example");
    let stderr = String::from_utf8(output.stderr).unwrap();
    (output.status.code().expect("an exit status"), stderr, files(bucket))
}

#[test]
fn the_export_on_several_threads_writes_the_files_it_writes_on_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("calls.ndjson");
    std::fs::write(&path, input(24_000)).unwrap();
    for format in ["json", "csv", "parquet"] {
        // The default, and a size limit that splits the run into several syncs.
        for extra in [&[][..], &["--max-file-bytes", "1500000"][..]] {
            let one =
                export(&path, &dir.path().join(format!("{format}-1-{}", extra.len())), format, 1, extra);
            assert_eq!(one.0, 2, "{format} {extra:?}: bad lines make the status 2: {}", one.1);
            let reported = one.1.lines().filter(|l| l.starts_with("line ")).count();
            // Four bad lines in every 997 calls (24 times each), and the long one.
            assert_eq!(reported, 4 * 24 + 1, "{format} {extra:?}: {}", one.1);
            assert!(one.1.contains("line 102: "), "{format} {extra:?}: the first bad line: {}", one.1);
            let types: Vec<&str> = one.2.keys().map(|name| name.split('.').nth(3).unwrap()).collect();
            for t in ["track", "identify", "page", "screen", "group", "alias"] {
                assert!(types.contains(&t), "{format} {extra:?}: no {t} file in {:?}", one.2.keys());
            }
            if !extra.is_empty() {
                assert!(
                    one.2.keys().any(|name| name.contains(".2.")),
                    "{format}: the limit splits the run: {:?}",
                    one.2.keys()
                );
            }
            for threads in [2, 3, 8] {
                let many = export(
                    &path,
                    &dir.path().join(format!("{format}-{threads}-{}", extra.len())),
                    format,
                    threads,
                    extra,
                );
                assert_eq!(many.0, one.0, "{format} {extra:?}, {threads} threads: exit status");
                assert_eq!(many.1, one.1, "{format} {extra:?}, {threads} threads: the bad lines reported");
                assert_eq!(
                    many.2.keys().collect::<Vec<_>>(),
                    one.2.keys().collect::<Vec<_>>(),
                    "{format} {extra:?}, {threads} threads: file names"
                );
                for (name, bytes) in &one.2 {
                    assert!(many.2[name] == *bytes, "{format} {extra:?}, {threads} threads: {name} differs");
                }
            }
        }
    }
}
