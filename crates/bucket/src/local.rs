//! Publishing into a local directory bucket straight from disk. An encoder writes
//! its file into an anonymous temporary file in the bucket's directory (rows that
//! come in order go there as they arrive), and the finished file is then linked
//! under its final name, which fails if the name is taken. Where the file cannot be
//! linked in place (not Linux, another file system, no `O_TMPFILE`), it is copied
//! into a temporary file beside its final name and hard-linked from there. No file
//! is ever held whole in memory, and a crash leaves nothing behind but, at most, a
//! named temporary file that the next start sweeps away.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cdp_calls::CallType;
use cdp_encode::{Encode, FileEncoder};

use crate::{BucketError, Position, Published};

/// A finished file waiting for its name, in an anonymous temporary file.
#[derive(Debug)]
pub(crate) struct Finished {
    file: File,
    bytes: u64,
}

impl Finished {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

/// A named temporary file, removed when dropped.
struct TempName(PathBuf);

impl Drop for TempName {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

/// Temporary names start with a dot and end with `.tmp`, so that they never parse
/// as object names and can be swept after a crash.
fn temp_name(name: &str) -> String {
    static NEXT: AtomicU64 = AtomicU64::new(0);
    format!(".{name}.{}-{}.tmp", std::process::id(), NEXT.fetch_add(1, Ordering::Relaxed))
}

fn local_err(path: &Path) -> impl FnOnce(io::Error) -> BucketError + '_ {
    move |source| BucketError::Local { path: path.to_owned(), source }
}

/// Finishes `encoder`'s file ([`Encode::finish_to_file`]: in the encoder's spill
/// directory, which the writer points at the bucket), synced when `fsync`.
pub(crate) fn finish(
    dir: &Path,
    call_type: CallType,
    encoder: FileEncoder,
    fsync: bool,
) -> Result<Finished, BucketError> {
    let file = encoder.finish_to_file().map_err(|source| BucketError::Encode { call_type, source })?;
    if fsync {
        file.sync_all().map_err(local_err(dir))?;
    }
    let bytes = file.metadata().map_err(local_err(dir))?.len();
    Ok(Finished { file, bytes })
}

/// Links an anonymous temporary file (`O_TMPFILE`) under `target`.
#[cfg(target_os = "linux")]
fn link_anonymous(file: &File, target: &Path) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let open_file = format!("/proc/self/fd/{}", file.as_raw_fd());
    let cwd = rustix::fs::CWD;
    rustix::fs::linkat(cwd, open_file.as_str(), cwd, target, rustix::fs::AtFlags::SYMLINK_FOLLOW)?;
    Ok(())
}

#[cfg(not(target_os = "linux"))]
fn link_anonymous(_file: &File, _target: &Path) -> io::Result<()> {
    Err(io::ErrorKind::Unsupported.into())
}

/// Gives the finished file its final name, unless the name is taken: then an
/// identical file there means it was published already, and a different one is a
/// conflict.
pub(crate) fn link_create(
    finished: &Finished,
    target: &Path,
    position: Position,
    object: &str,
    fsync: bool,
) -> Result<Published, BucketError> {
    let linked = match link_anonymous(&finished.file, target) {
        Err(e) if e.kind() != io::ErrorKind::AlreadyExists => link_copy(finished, target, fsync),
        linked => linked,
    };
    match linked {
        Ok(()) => {
            if fsync && let Some(dir) = target.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(local_err(dir))?;
            }
            Ok(Published::Created)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if same_bytes(&finished.file, target).map_err(local_err(target))? {
                Ok(Published::AlreadyPresent)
            } else {
                Err(BucketError::PositionConflict { object: object.to_owned(), position })
            }
        }
        Err(e) => Err(local_err(target)(e)),
    }
}

/// Copies the file into a named temporary file beside `target` and hard-links it
/// from there.
fn link_copy(finished: &Finished, target: &Path, fsync: bool) -> io::Result<()> {
    let dir = target.parent().unwrap_or(Path::new("."));
    let name = target.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let temp = TempName(dir.join(temp_name(name)));
    let mut out = BufWriter::with_capacity(1 << 20, File::create_new(&temp.0)?);
    let mut from = &finished.file;
    from.seek(SeekFrom::Start(0))?;
    io::copy(&mut from, &mut out)?;
    let out = out.into_inner().map_err(io::IntoInnerError::into_error)?;
    if fsync {
        out.sync_all()?;
    }
    fs::hard_link(&temp.0, target)
}

/// Whether `file` holds the same bytes as the file at `path`.
fn same_bytes(mut file: &File, path: &Path) -> io::Result<bool> {
    let mut other = File::open(path)?;
    if file.metadata()?.len() != other.metadata()?.len() {
        return Ok(false);
    }
    file.seek(SeekFrom::Start(0))?;
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = file.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        other.read_exact(&mut bb[..n])?;
        if ba[..n] != bb[..n] {
            return Ok(false);
        }
    }
}

/// Removes temporary files a crash left behind for objects of `prefix` (an
/// `<integration>.<action>.`).
pub(crate) fn sweep_temp_files(dir: &Path, prefix: &str) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    let start = format!(".{prefix}");
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.starts_with(&start) && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn finished(file: File) -> Finished {
        let bytes = file.metadata().unwrap().len();
        Finished { file, bytes }
    }

    /// An anonymous file in `dir` holding `text`, the way encoders leave them.
    fn anonymous(dir: &Path, text: &str) -> Finished {
        let mut file = tempfile::tempfile_in(dir).unwrap();
        file.write_all(text.as_bytes()).unwrap();
        finished(file)
    }

    /// A file that cannot be linked: it had a name, which is gone.
    fn unlinkable(dir: &Path, text: &str) -> Finished {
        let path = dir.join("gone");
        fs::write(&path, text).unwrap();
        let file = File::options().read(true).write(true).open(&path).unwrap();
        fs::remove_file(&path).unwrap();
        finished(file)
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().into_string().unwrap()).collect();
        names.sort();
        names
    }

    #[test]
    fn a_file_gets_its_name_linked_or_copied_and_never_replaces_one() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("a.b.1.track.csv");
        for (i, make) in [anonymous as fn(&Path, &str) -> Finished, unlinkable].into_iter().enumerate() {
            let _ = fs::remove_file(&target);
            let file = make(dir.path(), "rows\n");
            let created = link_create(&file, &target, Position::FIRST, "a.b.1.track.csv", i == 0).unwrap();
            assert_eq!(created, Published::Created);
            assert_eq!(fs::read_to_string(&target).unwrap(), "rows\n");
            assert_eq!(names(dir.path()), ["a.b.1.track.csv"], "no temporary file is left");
            #[cfg(target_os = "linux")]
            {
                use std::os::unix::fs::MetadataExt;
                let same = fs::metadata(&target).unwrap().ino() == file.file.metadata().unwrap().ino();
                assert_eq!(same, i == 0, "an anonymous file is linked in place, another one copied");
            }
            // The same bytes again: already there. Other bytes: a conflict, and the
            // file in the bucket is untouched.
            let again = link_create(&make(dir.path(), "rows\n"), &target, Position::FIRST, "x", false);
            assert_eq!(again.unwrap(), Published::AlreadyPresent);
            let other = link_create(&make(dir.path(), "other\n"), &target, Position::FIRST, "x", false);
            assert!(matches!(other, Err(BucketError::PositionConflict { .. })), "{other:?}");
            assert_eq!(fs::read_to_string(&target).unwrap(), "rows\n");
            assert_eq!(names(dir.path()), ["a.b.1.track.csv"]);
        }
    }
}
