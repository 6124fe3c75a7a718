//! Helpers shared by the example binaries: argument checks and publishing a file
//! into a local directory without ever overwriting one.
//!
//! The bucket writer (`cdp-bucket`) replaces `publish_local` once it lands.
#![allow(dead_code, unreachable_pub)]

use std::fs::{self, File};
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

/// Checks an integration or action id: non-empty `[A-Za-z0-9_-]`.
pub fn check_id(what: &str, id: &str) -> Result<String, String> {
    if !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
        Ok(id.to_owned())
    } else {
        Err(format!("{what} id {id:?} must be non-empty and use only A-Z, a-z, 0-9, _ and -"))
    }
}

/// What happened to a published file.
pub enum Published {
    /// The file was created.
    Created(PathBuf, u64),
    /// A file with identical bytes was there already (an earlier run of the same
    /// input): nothing was written.
    AlreadyThere(PathBuf, u64),
}

/// Writes a file into `dir` under `name` with create-only semantics: the bytes go
/// to a temporary file first (synced to disk when `sync`), which is then linked to
/// its final name (never visible half-written, never replacing anything). If the name is taken by a
/// file with identical bytes, that is success; different bytes are an error.
pub fn publish_local(
    dir: &Path,
    name: &str,
    sync: bool,
    write: impl FnOnce(BufWriter<File>) -> Result<BufWriter<File>, Box<dyn std::error::Error>>,
) -> Result<Published, Box<dyn std::error::Error>> {
    fs::create_dir_all(dir)?;
    let target = dir.join(name);
    let tmp = dir.join(format!(".{name}.{}.tmp", std::process::id()));
    let result = (|| {
        let out = write(BufWriter::with_capacity(1 << 20, File::create(&tmp)?))?;
        let file = out.into_inner().map_err(|e| e.into_error())?;
        if sync {
            file.sync_all()?;
        }
        let size = file.metadata()?.len();
        match fs::hard_link(&tmp, &target) {
            Ok(()) => Ok(Published::Created(target.clone(), size)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                if same_bytes(&tmp, &target)? {
                    Ok(Published::AlreadyThere(target.clone(), size))
                } else {
                    Err(format!(
                        "{} already exists with different contents; refusing to overwrite it",
                        target.display()
                    )
                    .into())
                }
            }
            Err(e) => Err(e.into()),
        }
    })();
    let _ = fs::remove_file(&tmp);
    result
}

fn same_bytes(a: &Path, b: &Path) -> io::Result<bool> {
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

/// Flushes a writer, for the closures given to [`publish_local`].
pub fn flushed<W: Write>(mut w: W) -> io::Result<W> {
    w.flush()?;
    Ok(w)
}
