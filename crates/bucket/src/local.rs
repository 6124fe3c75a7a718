//! Publishing into a local directory bucket straight from disk: a file is encoded
//! into a temporary file beside its final name and then hard-linked to it, which
//! fails if the name is taken. No file is ever held whole in memory.

use std::fs::{self, File};
use std::io::{self, BufWriter, Read};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cdp_calls::CallType;
use cdp_encode::{Encode, FileEncoder};

use crate::{BucketError, Position, Published};

/// A finished file waiting under a temporary name; removed when dropped unless it
/// was published.
#[derive(Debug)]
pub(crate) struct TempFile {
    path: PathBuf,
    bytes: u64,
}

impl TempFile {
    pub(crate) fn bytes(&self) -> u64 {
        self.bytes
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.path);
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

/// Encodes `encoder`'s file into a temporary file in `dir`, synced when `fsync`.
pub(crate) fn finish_into_temp(
    dir: &Path,
    name: &str,
    call_type: CallType,
    encoder: FileEncoder,
    fsync: bool,
) -> Result<TempFile, BucketError> {
    let path = dir.join(temp_name(name));
    let file = File::create_new(&path).map_err(local_err(&path))?;
    let mut temp = TempFile { path, bytes: 0 };
    let out = encoder
        .finish(BufWriter::with_capacity(1 << 20, file))
        .map_err(|source| BucketError::Encode { call_type, source })?;
    let file = out.into_inner().map_err(|e| local_err(&temp.path)(e.into_error()))?;
    if fsync {
        file.sync_all().map_err(local_err(&temp.path))?;
    }
    temp.bytes = file.metadata().map_err(local_err(&temp.path))?.len();
    Ok(temp)
}

/// Gives the temporary file its final name too (a hard link), unless the name is
/// taken: then an identical file there means it was published already, and a
/// different one is a conflict. The temporary name goes when `temp` is dropped.
pub(crate) fn link_create(
    temp: &TempFile,
    target: &Path,
    position: Position,
    object: &str,
    fsync: bool,
) -> Result<Published, BucketError> {
    match fs::hard_link(&temp.path, target) {
        Ok(()) => {
            if fsync && let Some(dir) = target.parent() {
                File::open(dir).and_then(|d| d.sync_all()).map_err(local_err(dir))?;
            }
            Ok(Published::Created)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
            if same_file_bytes(&temp.path, target).map_err(local_err(target))? {
                Ok(Published::AlreadyPresent)
            } else {
                Err(BucketError::PositionConflict { object: object.to_owned(), position })
            }
        }
        Err(e) => Err(local_err(target)(e)),
    }
}

fn same_file_bytes(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    if fa.metadata()?.len() != fb.metadata()?.len() {
        return Ok(false);
    }
    let (mut ba, mut bb) = (vec![0u8; 1 << 16], vec![0u8; 1 << 16]);
    loop {
        let n = fa.read(&mut ba)?;
        if n == 0 {
            return Ok(true);
        }
        fb.read_exact(&mut bb[..n])?;
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
