//! File system errors as API errors: what a tenant's input or files cause is a 4xx kind naming
//! the path.

use std::io;

use catalyst_core::{Error, ErrorKind};

/// A file system error about `path` as an API error. Everything a tenant's input or files can
/// cause (missing paths, a file where a directory is expected, link loops, a full disk, a FIFO
/// where a file is expected…) is a 4xx kind naming the path; only what no input explains (I/O
/// errors, running out of memory) is `internal`.
pub(crate) fn io_err(path: &str, e: io::Error) -> Error {
    use nix::errno::Errno;
    if let Some(code) = e.raw_os_error() {
        let (kind, message) = match Errno::from_raw(code) {
            Errno::ENOENT => return Error::not_found(&format!("file {path}")),
            Errno::EEXIST => (ErrorKind::Conflict, format!("{path} already exists")),
            Errno::ENOTEMPTY => (ErrorKind::Conflict, format!("{path}: the directory is not empty")),
            Errno::EISDIR => (ErrorKind::Conflict, format!("{path} is a directory")),
            Errno::ENOTDIR => (ErrorKind::InvalidInput, format!("{path}: a part of the path is not a directory")),
            Errno::ELOOP => (ErrorKind::InvalidInput, format!("{path}: a link is in the way, or links lead in a loop")),
            Errno::ENAMETOOLONG => (ErrorKind::InvalidInput, format!("{path}: a name is too long")),
            Errno::EINVAL => {
                (ErrorKind::InvalidInput, format!("{path}: not possible (e.g. a directory moved into itself)"))
            }
            Errno::EXDEV => (ErrorKind::Conflict, format!("{path}: cannot move across file systems")),
            Errno::EFBIG => (ErrorKind::QuotaExceeded, format!("{path}: the file would be too large")),
            Errno::ENOSPC | Errno::EDQUOT => {
                (ErrorKind::QuotaExceeded, format!("{path}: no space is left on the server's disk"))
            }
            Errno::EROFS => (ErrorKind::Conflict, format!("{path} is on a read-only file system")),
            Errno::EMLINK => (ErrorKind::Conflict, format!("{path}: too many links or entries")),
            Errno::EBUSY | Errno::ETXTBSY => (ErrorKind::Conflict, format!("{path} is in use")),
            // A FIFO without a peer (ENXIO), a device without a driver, a descriptor that would
            // block: none of them is a regular file.
            Errno::ENXIO | Errno::ENODEV | Errno::EAGAIN | Errno::ESPIPE => {
                (ErrorKind::InvalidInput, format!("{path} is not a regular file"))
            }
            Errno::EACCES | Errno::EPERM => (ErrorKind::PermissionDenied, format!("{path}: permission denied")),
            Errno::EOVERFLOW | Errno::ERANGE => (ErrorKind::InvalidInput, format!("{path}: a value is out of range")),
            Errno::EILSEQ => (ErrorKind::InvalidInput, format!("{path}: the name is not valid")),
            Errno::EOPNOTSUPP => (ErrorKind::InvalidInput, format!("{path}: the file system does not support this")),
            Errno::EMFILE | Errno::ENFILE => {
                (ErrorKind::Unavailable, format!("{path}: the node has too many open files; try again"))
            }
            _ => return Error::internal(format!("file operation on {path} failed"), e),
        };
        return Error::new(kind, message).with_source(e);
    }
    let (kind, message) = match e.kind() {
        io::ErrorKind::NotFound => return Error::not_found(&format!("file {path}")),
        io::ErrorKind::AlreadyExists => (ErrorKind::Conflict, format!("{path} already exists")),
        // cap-std reports escapes (`..`, links pointing out) as permission errors.
        io::ErrorKind::PermissionDenied => {
            (ErrorKind::PermissionDenied, format!("{path} leads outside the server directory"))
        }
        io::ErrorKind::IsADirectory => (ErrorKind::Conflict, format!("{path} is a directory")),
        io::ErrorKind::DirectoryNotEmpty => (ErrorKind::Conflict, format!("{path}: the directory is not empty")),
        io::ErrorKind::NotADirectory => {
            (ErrorKind::InvalidInput, format!("{path}: a part of the path is not a directory"))
        }
        io::ErrorKind::QuotaExceeded | io::ErrorKind::StorageFull | io::ErrorKind::FileTooLarge => {
            (ErrorKind::QuotaExceeded, format!("{path}: the server's disk limit leaves no room ({e})"))
        }
        io::ErrorKind::InvalidInput
        | io::ErrorKind::InvalidFilename
        | io::ErrorKind::InvalidData
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::Unsupported => (ErrorKind::InvalidInput, format!("{path}: {e}")),
        _ => return Error::internal(format!("file operation on {path} failed"), e),
    };
    Error::new(kind, message)
}
