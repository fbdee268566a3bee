//! Secrets a node makes for itself (signing keys, data keys, tokens), in files only their
//! owner may read: `dev` and `creditmesh pki keys` make them; `serve` only reads them (its
//! replicas must share one set, provisioned with their other secrets), see [`forbid_making`].
//! Replicas that share a directory may start at the same moment: a file appears whole or not
//! at all, and the first one made is the one all use.

use std::io::Write;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

static MAKING_FORBIDDEN: AtomicBool = AtomicBool::new(false);

/// From now on this process makes no secret: [`made_once`] fails, naming the file and how to
/// make it, where one is missing. A production node (`serve`) calls it at start, so that a
/// replica never mints a key of its own beside the one its peers share.
pub fn forbid_making() {
    MAKING_FORBIDDEN.store(true, Ordering::Relaxed);
}

/// The text of `path` (trimmed), or, when there is no such file, what `make` gives, written
/// there readable by the owner alone. The text is written under a name of its own and linked
/// into place, so that a replica starting at the same moment reads either nothing or the
/// whole file; when another links its file first, that one is read and returned.
pub fn made_once(
    path: &Path,
    make: impl FnOnce() -> std::io::Result<String>,
) -> std::io::Result<String> {
    match std::fs::read_to_string(path) {
        Ok(text) => return Ok(text.trim().to_owned()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    if MAKING_FORBIDDEN.load(Ordering::Relaxed) {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            format!(
                "{} is missing, and this node makes no keys of its own: make them once with \
                 `creditmesh pki keys --dir DIR` and give every replica the same files",
                path.display()
            ),
        ));
    }
    let text = make()?;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    static DRAFTS: AtomicU64 = AtomicU64::new(0);
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let draft = dir.join(format!(
        ".{name}.{}.{}",
        std::process::id(),
        DRAFTS.fetch_add(1, Ordering::Relaxed)
    ));
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let written = options
        .open(&draft)
        .and_then(|mut f| {
            f.write_all(text.as_bytes())?;
            f.sync_all()
        })
        .and_then(|()| std::fs::hard_link(&draft, path));
    let _ = std::fs::remove_file(&draft);
    match written {
        Ok(()) => Ok(text),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?.trim().to_owned())
        }
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replicas_starting_at_once_all_read_the_one_file_made_whole() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("keys").join("log.key");
            let start = std::sync::Arc::new(std::sync::Barrier::new(8));
            let read: Vec<String> = (0..8)
                .map(|i| {
                    let (path, start) = (path.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        made_once(&path, || Ok(format!("{i:0>64}"))).unwrap()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap())
                .collect();
            assert!(
                read.iter().all(|t| *t == read[0] && t.len() == 64),
                "{read:?}"
            );
            let names: Vec<_> = std::fs::read_dir(path.parent().unwrap())
                .unwrap()
                .map(|e| e.unwrap().file_name())
                .collect();
            assert_eq!(names, ["log.key"], "no drafts are left");
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = std::fs::metadata(&path).unwrap().permissions().mode();
                assert_eq!(mode & 0o777, 0o600);
            }
        }
    }
}
