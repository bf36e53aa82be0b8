//! Files of the machine imgaudit runs on (layouts, archives, root filesystems), opened so
//! that a hostile path cannot block the process.
//!
//! Opening a FIFO for reading waits for a writer, forever if none comes, and reading a
//! character device may never end (`/dev/zero`). Every file imgaudit reads from the host is
//! therefore checked to be a regular file before it is opened, opened with `O_NONBLOCK` (so
//! that a FIFO swapped in after the check opens at once instead of blocking), and checked
//! again on the open descriptor. `O_NONBLOCK` has no effect on regular files
//! (open(2): "Note that this flag has no effect for regular files and block devices").

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// What a non-regular file is, for messages.
fn kind(ft: std::fs::FileType) -> &'static str {
    if ft.is_dir() {
        "a directory"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_socket() {
        "a socket"
    } else if ft.is_char_device() {
        "a character device"
    } else if ft.is_block_device() {
        "a block device"
    } else {
        "not a regular file"
    }
}

fn not_regular(ft: std::fs::FileType) -> io::Error {
    let what = kind(ft);
    let msg = if what.starts_with("a ") {
        format!("{what}, not a regular file")
    } else {
        what.to_string()
    };
    io::Error::new(io::ErrorKind::InvalidInput, msg)
}

/// Opens a regular file for reading (symlinks followed); anything else is an
/// `InvalidInput` error that says what the path is, without opening it.
pub(crate) fn open_regular(path: &Path) -> io::Result<File> {
    open(path, true)
}

/// Like [`open_regular`], but a symlink is an error (`ELOOP`) too: for walking a root
/// filesystem, whose symlinks point into the image, not into the host.
pub(crate) fn open_regular_nofollow(path: &Path) -> io::Result<File> {
    open(path, false)
}

fn open(path: &Path, follow: bool) -> io::Result<File> {
    let md = if follow {
        std::fs::metadata(path)?
    } else {
        std::fs::symlink_metadata(path)?
    };
    if !md.is_file() {
        return Err(not_regular(md.file_type()));
    }
    let flags = libc::O_NONBLOCK | if follow { 0 } else { libc::O_NOFOLLOW };
    let f = OpenOptions::new()
        .read(true)
        .custom_flags(flags)
        .open(path)?;
    let md = f.metadata()?;
    if !md.is_file() {
        return Err(not_regular(md.file_type()));
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;
    use std::process::Command;

    #[test]
    fn fifos_sockets_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("blob-is-fifo");
        // A real FIFO from mkfifo(1): opening it for reading would wait for a writer forever.
        let ok = Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(ok.success());
        let sock = dir.path().join("blob-is-socket");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        for (p, want) in [
            (fifo.as_path(), "a FIFO, not a regular file"),
            (sock.as_path(), "a socket, not a regular file"),
            (
                Path::new("/dev/zero"),
                "a character device, not a regular file",
            ),
            (dir.path(), "a directory, not a regular file"),
        ] {
            let e = open_regular(p).unwrap_err();
            assert_eq!(e.to_string(), want, "{}", p.display());
            assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        }
        let link = dir.path().join("link-to-fifo");
        std::os::unix::fs::symlink(&fifo, &link).unwrap();
        assert!(open_regular(&link).is_err());
        let f = dir.path().join("f");
        std::fs::write(&f, b"data").unwrap();
        let to_file = dir.path().join("link-to-file");
        std::os::unix::fs::symlink(&f, &to_file).unwrap();
        assert!(open_regular(&to_file).is_ok());
        assert!(open_regular_nofollow(&to_file).is_err());
        let mut s = String::new();
        open_regular(&f).unwrap().read_to_string(&mut s).unwrap();
        assert_eq!(s, "data");
    }
}
