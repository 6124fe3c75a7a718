//! The diff engine of diff-based syncs (`cdp_sync::diff`): changes equal the set
//! difference of consecutive snapshots, failed runs leave the base, damaged
//! snapshots are reported, and memory does not grow with the number of keys.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use cdp_sync::diff::{
    Change, DiffBuilder, DiffError, DiffOptions, DiffRow, RejectReason, RejectedRow, SnapshotProblem,
};
use proptest::prelude::*;

/// The keys the property test draws from: byte order differs from length order and
/// from the order of their Unicode scalar values' case.
const KEYS: [&str; 10] = ["a", "ab", "b", "k1", "k10", "k2", "Z", "é", "\u{0}x", "zz"];

/// A row of a table as the property test builds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TestRow {
    key: Option<String>,
    content: String,
    /// A row that could not become a call: given to the engine with `keep`.
    error: bool,
}

fn ids_of(key: &str, content: &str) -> Vec<u8> {
    format!("ids:{key}:{content}").into_bytes()
}

fn payload_of(key: &str, content: &str, row: u64) -> Vec<u8> {
    format!("{key}={content}@{row}").into_bytes()
}

/// Pushes `rows` (row numbers from 1 in this order); returns the row errors.
fn push_rows(builder: &mut DiffBuilder, rows: &[TestRow]) -> Result<Vec<RejectedRow>, DiffError> {
    let mut refused = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let n = i as u64 + 1;
        let key = row.key.as_deref().map(str::as_bytes);
        if row.error {
            builder.keep(n, key)?;
            continue;
        }
        let text = row.key.as_deref().unwrap_or("");
        let pushed = builder.push(DiffRow {
            row: n,
            key,
            content: row.content.as_bytes(),
            ids: &ids_of(text, &row.content),
            payload: &payload_of(text, &row.content, n),
        })?;
        if let Err(rejected) = pushed {
            refused.push(rejected);
        }
    }
    Ok(refused)
}

/// Runs the engine over `rows` (row numbers from 1 in this order); returns the
/// pushes' row errors, the run's changes, and the run (not committed).
fn run_engine(
    path: &Path,
    options: DiffOptions,
    rows: &[TestRow],
) -> Result<(Vec<RejectedRow>, Vec<Change>, cdp_sync::diff::DiffRun), DiffError> {
    let mut builder = DiffBuilder::new(path, options)?;
    let refused = push_rows(&mut builder, rows)?;
    let mut run = builder.finish()?;
    let changes = (&mut run).collect::<Result<Vec<_>, _>>()?;
    Ok((refused, changes, run))
}

/// What the snapshot model holds per key: its content and ids.
type Model = BTreeMap<Vec<u8>, (String, Vec<u8>)>;

/// What a run over some rows must yield against a base, computed without the
/// engine.
#[derive(Debug)]
struct Expected {
    refused: Vec<RejectedRow>,
    changes: Vec<Change>,
    /// The snapshot the run leaves when committed.
    next: Model,
    unchanged: u64,
    kept: u64,
}

fn expected(base: &Model, rows: &[TestRow]) -> Expected {
    let mut refused = Vec::new();
    // Per key, its rows: (row number, content, is a row error).
    let mut by_key: BTreeMap<Vec<u8>, Vec<(u64, &str, bool)>> = BTreeMap::new();
    for (i, row) in rows.iter().enumerate() {
        let n = i as u64 + 1;
        match row.key.as_deref() {
            Some(key) if !key.is_empty() => {
                by_key.entry(key.as_bytes().to_vec()).or_default().push((n, &row.content, row.error))
            }
            _ if row.error => {} // the caller reports it; the engine has nothing to keep
            key => refused.push(RejectedRow {
                row: n,
                key: Vec::new(),
                reason: RejectReason::MissingKey,
                payload: payload_of(key.unwrap_or(""), &row.content, n),
            }),
        }
    }
    let mut keys: Vec<&Vec<u8>> = base.keys().chain(by_key.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut want = Expected { refused, changes: Vec::new(), next: Model::new(), unchanged: 0, kept: 0 };
    for key in keys {
        let text = String::from_utf8(key.clone()).unwrap();
        let changes = &mut want.changes;
        match (base.get(key), by_key.get(key).map(Vec::as_slice)) {
            (Some((_, ids)), None) => changes.push(Change::Deleted { key: key.clone(), ids: ids.clone() }),
            (old, Some([(_, _, true)])) => {
                // Its only row is a row error: the key stays as it was.
                if let Some(old) = old {
                    want.next.insert(key.clone(), old.clone());
                }
                want.kept += 1;
            }
            (old, Some([(row, content, false)])) => {
                want.next.insert(key.clone(), (content.to_string(), ids_of(&text, content)));
                let payload = payload_of(&text, content, *row);
                match old {
                    None => changes.push(Change::Added { key: key.clone(), payload }),
                    Some((old_content, _)) if old_content != content => {
                        changes.push(Change::Changed { key: key.clone(), payload })
                    }
                    Some(_) => want.unchanged += 1,
                }
            }
            (old, Some(dups)) => {
                // Every row of a duplicated key is an error (those the caller
                // reports are not reported again); the key keeps its entry.
                if let Some(old) = old {
                    want.next.insert(key.clone(), old.clone());
                }
                for (i, (row, content, error)) in dups.iter().enumerate() {
                    if *error {
                        continue;
                    }
                    let other_row = if i == 0 { dups[1].0 } else { dups[0].0 };
                    changes.push(Change::Rejected(RejectedRow {
                        row: *row,
                        key: key.clone(),
                        reason: RejectReason::DuplicateKey { other_row },
                        payload: payload_of(&text, content, *row),
                    }));
                }
            }
            (None, None) => unreachable!("a key from one of the two"),
        }
    }
    want
}

/// One edit of the test table.
#[derive(Debug, Clone)]
enum Edit {
    Upsert(usize, u8),
    Delete(usize),
}

/// One run: edits to the table, extra rows of this result only (duplicates of a
/// key, NULL and empty keys), rows that are row errors, the order the rows come in, the memory budget, and
/// whether the run commits (or how many changes it reads before failing).
#[derive(Debug, Clone)]
struct Step {
    edits: Vec<Edit>,
    duplicates: Vec<(usize, u8)>,
    keyless: Vec<(bool, u8)>,
    /// Keys whose row is a row error in this result (added when not in the table).
    errors: Vec<usize>,
    shuffle: u64,
    budget: usize,
    failure: Option<usize>,
}

/// The key numbered `k`: one of [`KEYS`], then `g10`, `g11`, … (so that `g100`
/// comes before `g11`).
fn key_of(k: usize) -> String {
    KEYS.get(k).map_or_else(|| format!("g{k}"), |key| key.to_string())
}

/// A step over `keys` keys, with at most `edits` edits.
fn step(keys: usize, edits: usize) -> impl Strategy<Value = Step> {
    let edit = prop_oneof![
        3 => (0..keys, 0u8..4).prop_map(|(k, v)| Edit::Upsert(k, v)),
        1 => (0..keys).prop_map(Edit::Delete),
    ];
    (
        prop::collection::vec(edit, 0..edits),
        prop::collection::vec((0..keys, 0u8..4), 0..3),
        prop::collection::vec((any::<bool>(), 0u8..4), 0..2),
        prop::collection::vec(0..keys, 0..3),
        any::<u64>(),
        prop_oneof![Just(1usize), Just(150), Just(600), Just(4096), Just(1 << 20)],
        prop::option::weighted(0.25, 0usize..6),
    )
        .prop_map(|(edits, duplicates, keyless, errors, shuffle, budget, failure)| Step {
            edits,
            duplicates,
            keyless,
            errors,
            shuffle,
            budget,
            failure,
        })
}

fn shuffle<T>(items: &mut [T], mut seed: u64) {
    for i in (1..items.len()).rev() {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let j = ((seed >> 33) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
}

/// Runs `steps` against the engine and the model: each run's changes are the set
/// difference of the last committed snapshot and the new table, in key order; a
/// run that fails (is not committed, read whole or not) leaves the base.
fn check_steps(steps: Vec<Step>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("sync.snapshot");
    let mut table: BTreeMap<usize, u8> = BTreeMap::new();
    let mut base = Model::new();
    for step in steps {
        for edit in &step.edits {
            match *edit {
                Edit::Upsert(k, v) => {
                    table.insert(k, v);
                }
                Edit::Delete(k) => {
                    table.remove(&k);
                }
            }
        }
        let row = |key: Option<String>, content: String| TestRow { key, content, error: false };
        let mut rows: Vec<TestRow> = table
            .iter()
            .map(|(&k, &v)| TestRow {
                error: step.errors.contains(&k),
                ..row(Some(key_of(k)), format!("v{v}"))
            })
            .collect();
        rows.extend(
            step.errors
                .iter()
                .filter(|k| !table.contains_key(k))
                .map(|&k| TestRow { error: true, ..row(Some(key_of(k)), "e".to_string()) }),
        );
        rows.extend(step.duplicates.iter().map(|&(k, v)| row(Some(key_of(k)), format!("d{v}"))));
        rows.extend(
            step.keyless.iter().map(|&(null, v)| TestRow {
                error: v == 3,
                ..row((!null).then(String::new), format!("n{v}"))
            }),
        );
        shuffle(&mut rows, step.shuffle);

        let want = expected(&base, &rows);
        let (want_refused, want_changes) = (&want.refused, &want.changes);
        let options = DiffOptions::new().with_memory_budget(step.budget);
        match step.failure {
            None => {
                let (refused, changes, run) = run_engine(&path, options, &rows).unwrap();
                prop_assert_eq!(&refused, want_refused);
                prop_assert_eq!(&changes, want_changes);
                let counts = run.counts();
                prop_assert_eq!(
                    counts.rejected as usize,
                    refused.len() + changes.iter().filter(|c| matches!(c, Change::Rejected(_))).count()
                );
                let added = changes.iter().filter(|c| matches!(c, Change::Added { .. })).count();
                let changed = changes.iter().filter(|c| matches!(c, Change::Changed { .. })).count();
                let deleted = changes.iter().filter(|c| matches!(c, Change::Deleted { .. })).count();
                prop_assert_eq!(
                    (counts.added as usize, counts.changed as usize, counts.deleted as usize),
                    (added, changed, deleted)
                );
                prop_assert_eq!((counts.unchanged, counts.kept), (want.unchanged, want.kept));
                run.commit().unwrap();
                base = want.next;
            }
            Some(read) => {
                // Reads some changes (perhaps all), then fails: nothing is committed.
                let mut builder = DiffBuilder::new(&path, options).unwrap();
                push_rows(&mut builder, &rows).unwrap();
                let mut run = builder.finish().unwrap();
                let got: Vec<Change> = (&mut run).take(read).map(Result::unwrap).collect();
                prop_assert_eq!(&got[..], &want_changes[..read.min(want_changes.len())]);
                drop(run);
                // The base is as it was: the same run again yields the same changes.
                let (_, again, run) = run_engine(&path, DiffOptions::new(), &rows).unwrap();
                prop_assert_eq!(&again, want_changes);
                drop(run);
            }
        }
        // Nothing but the snapshot is left in its directory.
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        prop_assert!(left.len() <= 1, "left behind: {:?}", left);
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Small key spaces: duplicates, deletes and re-inserts of the same keys often.
    #[test]
    fn changes_are_the_difference_of_consecutive_snapshots(steps in prop::collection::vec(step(KEYS.len(), 12), 1..8)) {
        check_steps(steps)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Hundreds of keys: with a tiny budget, more sorted runs than one merge takes.
    #[test]
    fn changes_are_the_difference_of_consecutive_snapshots_of_bigger_tables(steps in prop::collection::vec(step(400, 300), 1..4)) {
        check_steps(steps)?;
    }
}

#[test]
fn builder_and_run_can_move_to_a_blocking_thread() {
    fn send<T: Send + 'static>() {}
    send::<DiffBuilder>();
    send::<cdp_sync::diff::DiffRun>();
    send::<DiffError>();
}

fn row(key: &str, content: &str) -> TestRow {
    TestRow { key: Some(key.to_string()), content: content.to_string(), error: false }
}

#[test]
fn duplicate_keys_are_row_errors_and_keep_the_previous_entry() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let (_, _, run) = run_engine(&path, DiffOptions::new(), &[row("u1", "a"), row("u2", "b")]).unwrap();
    run.commit().unwrap();

    // u1 on two rows: both are errors, u1 is neither sent nor deleted.
    let rows = [row("u1", "changed"), row("u2", "b"), row("u1", "other"), row("u3", "c"), row("u3", "c")];
    let (refused, changes, run) = run_engine(&path, DiffOptions::new(), &rows).unwrap();
    assert!(refused.is_empty());
    let rejected: Vec<(u64, RejectReason)> = changes
        .iter()
        .filter_map(|c| match c {
            Change::Rejected(r) => Some((r.row, r.reason)),
            _ => None,
        })
        .collect();
    assert_eq!(
        rejected,
        [
            (1, RejectReason::DuplicateKey { other_row: 3 }),
            (3, RejectReason::DuplicateKey { other_row: 1 }),
            (4, RejectReason::DuplicateKey { other_row: 5 }),
            (5, RejectReason::DuplicateKey { other_row: 4 }),
        ]
    );
    assert_eq!(changes.len(), 4, "nothing sent, nothing deleted: {changes:?}");
    assert_eq!(run.counts().rejected, 4);
    assert_eq!(run.counts().unchanged, 1);
    run.commit().unwrap();

    // Fixed: u1 is compared with what was last delivered ("a"), u3 is new.
    let (_, changes, _) =
        run_engine(&path, DiffOptions::new(), &[row("u1", "a"), row("u2", "b"), row("u3", "c")]).unwrap();
    assert_eq!(changes, [Change::Added { key: b"u3".to_vec(), payload: payload_of("u3", "c", 3) }]);
}

/// Writes a snapshot of a few keys and returns its bytes.
fn small_snapshot(path: &Path) -> Vec<u8> {
    let rows: Vec<TestRow> = (0..5).map(|i| row(&format!("user-{i}"), &format!("content {i}"))).collect();
    let (_, _, run) = run_engine(path, DiffOptions::new(), &rows).unwrap();
    run.commit().unwrap();
    std::fs::read(path).unwrap()
}

fn open_problem(path: &Path) -> SnapshotProblem {
    match DiffBuilder::new(path, DiffOptions::new()) {
        Err(DiffError::Snapshot { path: at, problem }) => {
            assert_eq!(at, path);
            problem
        }
        Err(other) => panic!("not a snapshot error: {other}"),
        Ok(_) => panic!("a damaged snapshot was accepted"),
    }
}

#[test]
fn a_truncated_snapshot_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let bytes = small_snapshot(&path);
    for len in 0..bytes.len() {
        std::fs::write(&path, &bytes[..len]).unwrap();
        let problem = open_problem(&path);
        if len >= 8 {
            assert!(
                matches!(problem, SnapshotProblem::WrongLength { found, .. } if found == len as u64),
                "{len}: {problem:?}"
            );
        }
    }
    std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
    let message = DiffBuilder::new(&path, DiffOptions::new()).unwrap_err().to_string();
    assert!(message.contains(&path.display().to_string()), "{message}");
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn every_flipped_byte_of_a_snapshot_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let bytes = small_snapshot(&path);
    for i in 0..bytes.len() {
        for bit in [0x01, 0x80] {
            let mut damaged = bytes.clone();
            damaged[i] ^= bit;
            std::fs::write(&path, &damaged).unwrap();
            open_problem(&path);
        }
    }
    // Appended bytes, a foreign file, a later version.
    let mut longer = bytes.clone();
    longer.extend_from_slice(b"more");
    std::fs::write(&path, &longer).unwrap();
    assert!(matches!(open_problem(&path), SnapshotProblem::WrongLength { .. }));
    std::fs::write(&path, b"userId,email\n1,ada@example.com\n").unwrap();
    assert_eq!(open_problem(&path), SnapshotProblem::NotASnapshot);
    let mut later = bytes.clone();
    later[8] = 2;
    std::fs::write(&path, &later).unwrap();
    assert_eq!(open_problem(&path), SnapshotProblem::UnsupportedVersion(2));
    // The intact file still reads.
    std::fs::write(&path, &bytes).unwrap();
    let (_, changes, _) = run_engine(&path, DiffOptions::new(), &[]).unwrap();
    assert_eq!(changes.len(), 5);
}

/// A snapshot file with these keys in this order (hashes zero, no ids), with the
/// right lengths, count and checksum: as another program could write it.
fn snapshot_file(keys: &[Vec<u8>]) -> Vec<u8> {
    let mut body = Vec::new();
    for key in keys {
        body.extend_from_slice(&(key.len() as u32).to_le_bytes());
        body.extend_from_slice(key);
        body.extend_from_slice(&[0; 16]);
        body.extend_from_slice(&0u32.to_le_bytes());
    }
    let mut file = b"CDPDIFF\0".to_vec();
    file.extend_from_slice(&1u32.to_le_bytes());
    file.extend_from_slice(&0u32.to_le_bytes());
    file.extend_from_slice(&(keys.len() as u64).to_le_bytes());
    file.extend_from_slice(&(body.len() as u64).to_le_bytes());
    file.extend_from_slice(&xxhash_of(&body).to_le_bytes());
    file.extend_from_slice(&body);
    file
}

#[test]
fn a_snapshot_with_keys_out_of_order_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let keys = |keys: &[&str]| keys.iter().map(|k| k.as_bytes().to_vec()).collect::<Vec<_>>();
    std::fs::write(&path, snapshot_file(&keys(&["a", "b"]))).unwrap();
    assert_eq!(run_engine(&path, DiffOptions::new(), &[]).unwrap().1.len(), 2, "the format as documented");
    for (order, record) in [(&["b", "a"][..], 1), (&["a", "a"], 1), (&["", "a"], 0), (&["a", "c", "b"], 2)] {
        std::fs::write(&path, snapshot_file(&keys(order))).unwrap();
        assert_eq!(open_problem(&path), SnapshotProblem::OutOfOrder { record }, "{order:?}");
    }

    // Checked while the run reads it too: the file is rewritten in place (same
    // length, right checksum) after the builder checked it.
    let mut sorted: Vec<Vec<u8>> = (0..10_000).map(|i| format!("k{i:05}").into_bytes()).collect();
    std::fs::write(&path, snapshot_file(&sorted)).unwrap();
    let builder = DiffBuilder::new(&path, DiffOptions::new()).unwrap();
    sorted.swap(9_000, 9_001);
    {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.write_all(&snapshot_file(&sorted)).unwrap();
    }
    let mut run = builder.finish().unwrap();
    let error = run.find_map(Result::err).expect("an error");
    assert!(
        matches!(error, DiffError::Snapshot { problem: SnapshotProblem::OutOfOrder { record: 9_001 }, .. }),
        "{error}"
    );
    assert!(matches!(run.commit(), Err(DiffError::Failed { .. })));
}

fn xxhash_of(bytes: &[u8]) -> u64 {
    // The format's checksum is XXH3-64; compute it through a snapshot the engine
    // wrote would be circular, so use the reference implementation directly.
    xxhash_rust::xxh3::xxh3_64(bytes)
}

#[test]
fn a_snapshot_damaged_during_the_run_fails_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let rows: Vec<TestRow> = (0..20_000).map(|i| row(&format!("user-{i:05}"), "c")).collect();
    let (_, _, run) = run_engine(&path, DiffOptions::new(), &rows).unwrap();
    run.commit().unwrap();
    let builder = DiffBuilder::new(&path, DiffOptions::new()).unwrap(); // checked: intact
    // Another process writes into the file (the same file, not a new one) now.
    let mut bytes = std::fs::read(&path).unwrap();
    let at = bytes.len() - 10;
    bytes[at] ^= 0xff;
    {
        use std::io::{Seek, SeekFrom, Write};
        let mut file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
        file.seek(SeekFrom::Start(at as u64)).unwrap();
        file.write_all(&bytes[at..at + 1]).unwrap();
    }
    let mut run = builder.finish().unwrap();
    let results: Vec<_> = (&mut run).collect();
    let error = results.last().unwrap().as_ref().unwrap_err();
    assert!(
        matches!(error, DiffError::Snapshot { problem: SnapshotProblem::ChecksumMismatch, .. }),
        "{error}"
    );
    assert!(results[..results.len() - 1].iter().all(|r| matches!(r, Ok(Change::Deleted { .. }))));
    assert!(!run.is_complete());
    assert!(matches!(run.commit(), Err(DiffError::Failed { .. })));
    assert_eq!(std::fs::read(&path).unwrap(), bytes, "the snapshot is left as it is");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}

#[test]
fn a_failed_run_leaves_the_old_snapshot_byte_for_byte() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s");
    let bytes = small_snapshot(&path);
    let rows = [row("user-1", "new content"), row("user-9", "x")];
    let (_, changes, run) = run_engine(&path, DiffOptions::new().with_memory_budget(1), &rows).unwrap();
    assert_eq!(changes.len(), 6); // 1 changed, 1 added, 4 deleted
    drop(run);
    assert_eq!(std::fs::read(&path).unwrap(), bytes);
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

/// Child-process part of [`memory_does_not_grow_with_the_number_of_keys`]: runs
/// the engine twice over `CDP_DIFF_RSS_KEYS` keys (10,000 when not set) with a
/// 4 MiB budget, checks the counts, and prints them with the peak RSS.
#[test]
#[ignore = "run by memory_does_not_grow_with_the_number_of_keys in a child process"]
fn rss_child() {
    let keys: u64 =
        std::env::var("CDP_DIFF_RSS_KEYS").map_or(10_000, |n| n.parse().expect("CDP_DIFF_RSS_KEYS"));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("big.snapshot");
    let options = DiffOptions::new().with_memory_budget(4 << 20);
    // The keys in a scrambled order (a multiplicative permutation of 0..keys).
    let order = |i: u64| (i * 2_654_435_761) % keys;
    let run = |version: &dyn Fn(u64) -> Option<u64>| {
        let mut builder = DiffBuilder::new(&path, options.clone()).unwrap();
        let mut row = 0;
        for i in 0..keys + keys / 100 {
            let k = order(i % keys) + if i >= keys { keys } else { 0 };
            let Some(v) = version(k) else { continue };
            row += 1;
            let key = format!("{k:010}");
            let content = format!("{{\"userId\":\"{k}\",\"traits\":{{\"v\":{v}}}}}");
            builder
                .push(DiffRow {
                    row,
                    key: Some(key.as_bytes()),
                    content: content.as_bytes(),
                    // Small ids and payloads: the test needs little disk (about
                    // 250 MB at 2,000,000 keys).
                    ids: b"",
                    payload: &key.as_bytes()[6..],
                })
                .unwrap()
                .unwrap();
        }
        let mut run = builder.finish().unwrap();
        let mut payload_bytes = 0;
        for change in &mut run {
            if let Change::Added { payload, .. } | Change::Changed { payload, .. } = change.unwrap() {
                payload_bytes += payload.len();
            }
        }
        assert!(payload_bytes > 0 || keys == 0);
        let (counts, spilled) = (run.counts(), run.runs_spilled());
        run.commit().unwrap();
        (counts, spilled)
    };
    // First run: every key. Second: 1% changed, 1% deleted, 1% added.
    let (first, spilled) = run(&|k| (k < keys).then_some(0));
    let (second, _) = run(&|k| match k % 100 {
        _ if k >= keys => Some(1),
        1 => Some(1),
        2 => None,
        _ => Some(0),
    });
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let hwm = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .unwrap()
        .trim()
        .trim_end_matches(" kB")
        .to_string();
    assert_eq!(first.added, keys);
    assert_eq!((second.added, second.changed, second.deleted), (keys / 100, keys / 100, keys / 100));
    assert_eq!(second.unchanged, keys - 2 * (keys / 100));
    println!(
        "RESULT first_added={} spilled={} added={} changed={} deleted={} unchanged={} hwm_kb={hwm}",
        first.added, spilled, second.added, second.changed, second.deleted, second.unchanged
    );
}

fn rss_run(keys: u64) -> BTreeMap<String, u64> {
    let out = Command::new(std::env::current_exe().unwrap())
        .args(["rss_child", "--exact", "--ignored", "--nocapture", "--test-threads=1"])
        .env("CDP_DIFF_RSS_KEYS", keys.to_string())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "child failed: {stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let line = stdout
        .lines()
        .find_map(|l| l.split_once("RESULT ").map(|(_, r)| r))
        .unwrap_or_else(|| panic!("no result: {stdout}"));
    line.split_whitespace()
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.parse().unwrap())
        })
        .collect()
}

/// 200,000 and 2,000,000 keys with a 4 MiB budget, each in its own process: the
/// counts are right and the peak RSS grows by less than 16 MiB (it would grow by
/// hundreds of MiB if the keys were held in memory).
#[cfg(target_os = "linux")]
#[test]
fn memory_does_not_grow_with_the_number_of_keys() {
    let small = rss_run(200_000);
    let big = rss_run(2_000_000);
    for (keys, r) in [(200_000, &small), (2_000_000, &big)] {
        assert_eq!(r["first_added"], keys);
        assert!(r["spilled"] >= keys / 200_000, "the rows did not fit in the budget: {r:?}");
        assert_eq!((r["added"], r["changed"], r["deleted"]), (keys / 100, keys / 100, keys / 100), "{r:?}");
        assert_eq!(r["unchanged"], keys - 2 * keys / 100, "{r:?}");
    }
    eprintln!("peak RSS: 200k keys {} kB, 2M keys {} kB", small["hwm_kb"], big["hwm_kb"]);
    assert!(big["hwm_kb"] < small["hwm_kb"] + 16 * 1024, "peak RSS grew: {small:?} → {big:?}");
}
