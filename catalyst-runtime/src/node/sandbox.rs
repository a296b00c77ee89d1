//! A server's files, reachable only beneath its root. Every operation goes through a cap-std
//! directory handle of the root: paths are resolved component by component beneath it (openat2
//! `RESOLVE_BENEATH` where the kernel has it), so `..`, absolute symlinks and symlinks pointing
//! out are refused at the moment of use, with no check-then-use window.
//!
//! The tenant controls every byte below the root, FIFOs and devices included: every open here
//! is non-blocking (`O_NONBLOCK`, so a FIFO with no peer answers at once instead of pinning a
//! thread) and the opened handle is checked to be a regular file (`fstat` after the open, never
//! a check before it). Every file system error is mapped by [`io_err`] to a kind the caller can
//! act on, naming the path.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use catalyst_core::model::{FileEntry, FileKind};
use catalyst_core::{Error, ErrorKind, Result};
use nix::fcntl::OFlag;

/// How to open a file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Access {
    /// Read.
    pub read: bool,
    /// Write.
    pub write: bool,
    /// Append.
    pub append: bool,
    /// Create when missing.
    pub create: bool,
    /// Cut to zero length.
    pub truncate: bool,
    /// Fail when it exists.
    pub exclusive: bool,
}

/// The files of one server.
#[derive(Debug)]
pub struct Sandbox {
    root: Dir,
}

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

/// The error of an opened handle that is not a regular file (a FIFO, a device, a directory).
fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

fn entry_of(name: String, meta: &cap_std::fs::Metadata) -> FileEntry {
    let kind = if meta.is_symlink() {
        FileKind::Symlink
    } else if meta.is_dir() {
        FileKind::Directory
    } else if meta.is_file() {
        FileKind::File
    } else {
        FileKind::Other
    };
    FileEntry { name, kind, size: meta.len(), mode: meta.mode() & 0o7777, modified: meta.mtime() }
}

/// Bytes an entry takes on disk: its allocated blocks (a sparse file counts what it holds, not
/// its apparent size).
pub(crate) fn allocated(meta: &cap_std::fs::Metadata) -> u64 {
    meta.blocks().saturating_mul(512)
}

/// Deepest directory nesting a walk (usage, search, copy, archives) follows.
pub(crate) const MAX_DEPTH: usize = 128;

/// Names a deep listing page scans per pass over its directory: the most it holds at once.
const LIST_SCAN: usize = 65_536;

/// Open `rel` beneath `dir` with `options`, never blocking, and accept only a regular file,
/// checked on the opened handle. With `follow` false a link as the last component is refused
/// (`ELOOP`) rather than followed. `O_NONBLOCK` is cleared again on the regular file.
pub(crate) fn open_file_at(
    dir: &Dir,
    rel: &Path,
    options: &mut OpenOptions,
    follow: bool,
) -> io::Result<cap_std::fs::File> {
    use nix::fcntl::{FcntlArg, fcntl};
    let mut flags = OFlag::O_NONBLOCK;
    if !follow {
        flags |= OFlag::O_NOFOLLOW;
    }
    options.custom_flags(flags.bits());
    let file = dir.open_with(rel, options)?;
    if !file.metadata()?.is_file() {
        return Err(not_regular());
    }
    let now = OFlag::from_bits_truncate(fcntl(&file, FcntlArg::F_GETFL)?);
    fcntl(&file, FcntlArg::F_SETFL(now - OFlag::O_NONBLOCK))?;
    Ok(file)
}

/// Open a regular file for reading beneath `dir`; anything else (a FIFO, a device, a
/// directory) is refused after the open, on the opened handle.
pub(crate) fn open_regular(dir: &Dir, rel: &Path) -> io::Result<cap_std::fs::File> {
    open_file_at(dir, rel, OpenOptions::new().read(true), true)
}

/// Create a regular file that must not exist (`O_EXCL`: nothing already there is opened).
pub(crate) fn create_exclusive(dir: &Dir, rel: &Path) -> io::Result<cap_std::fs::File> {
    open_file_at(dir, rel, OpenOptions::new().read(true).write(true).create_new(true), false)
}

/// Give an opened file or directory to `owner` (only as root: anyone else can only give
/// files to themselves, and already does).
pub(crate) fn give_fd(fd: impl std::os::fd::AsFd, owner: Option<(u32, u32)>) -> io::Result<()> {
    if let Some((uid, gid)) = owner
        && nix::unistd::geteuid().is_root()
    {
        nix::unistd::fchown(fd, Some(nix::unistd::Uid::from_raw(uid)), Some(nix::unistd::Gid::from_raw(gid)))?;
    }
    Ok(())
}

/// Give the file or directory `rel` beneath `dir` (`""`: `dir` itself) to `owner`, by
/// descriptor: a link is never followed, a FIFO never blocks, anything else is left alone.
pub(crate) fn give_at(dir: &Dir, rel: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    if owner.is_none() {
        return Ok(());
    }
    // Devices are not even opened (an open may have effects); the handle is checked again.
    let seen = if rel.as_os_str().is_empty() { dir.dir_metadata()? } else { dir.symlink_metadata(rel)? };
    if !(seen.is_file() || seen.is_dir()) {
        return Ok(());
    }
    let mut options = OpenOptions::new();
    options.read(true).custom_flags((OFlag::O_NONBLOCK | OFlag::O_NOFOLLOW).bits());
    // A directory handle of cap-std is an O_PATH descriptor, which fchown refuses: open anew.
    let target = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
    let handle = dir.open_with(target, &options)?;
    let meta = handle.metadata()?;
    if meta.is_file() || meta.is_dir() { give_fd(&handle, owner) } else { Ok(()) }
}

/// Open the directory `rel` beneath `dir`, a link as its last component refused (`ELOOP`).
pub(crate) fn open_dir_nofollow(dir: &Dir, rel: &Path) -> io::Result<Dir> {
    let mut options = OpenOptions::new();
    options.read(true).custom_flags((OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_NONBLOCK).bits());
    Ok(Dir::from_std_file(dir.open_with(rel, &options)?.into_std()))
}

/// Create the directory `rel` beneath `dir` and give it to `owner`.
pub(crate) fn create_dir_as(dir: &Dir, rel: &Path, owner: Option<(u32, u32)>) -> io::Result<()> {
    dir.create_dir(rel)?;
    if let Err(e) = give_at(dir, rel, owner) {
        let _ = dir.remove_dir(rel);
        return Err(e);
    }
    Ok(())
}

/// What a walk does after visiting an entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Visit {
    /// Go on (into the entry if it is a directory).
    Continue,
    /// Go on, but not into this directory.
    SkipDir,
    /// End the walk.
    Stop,
}

/// Visit every entry below `dir` depth-first, never following links; `visit` gets the path
/// from the walk's base. Returns false when stopped.
pub(crate) fn walk(
    dir: &Dir,
    base: &Path,
    visit: &mut dyn FnMut(&Path, &cap_std::fs::Metadata) -> Visit,
) -> io::Result<bool> {
    // Each level holds a descriptor and a stack frame: a tree deeper than this is refused.
    if base.components().count() > MAX_DEPTH {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the directory tree is too deep"));
    }
    for entry in dir.entries()? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let rel = base.join(entry.file_name());
        match visit(&rel, &meta) {
            Visit::Stop => return Ok(false),
            Visit::SkipDir => continue,
            Visit::Continue => {}
        }
        if meta.is_dir() && !meta.is_symlink() && !walk(&dir.open_dir(entry.file_name())?, &rel, visit)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// Which side of a copy an error is about.
#[derive(Debug, Clone, Copy)]
enum Side {
    From,
    To,
}

/// A copy's error, with the side it is about.
type CopyResult<T> = std::result::Result<T, (Side, io::Error)>;

fn on<T>(side: Side, r: io::Result<T>) -> CopyResult<T> {
    r.map_err(|e| (side, e))
}

/// Copy one regular file into a new file, holes kept as holes (only the data extents are
/// written), the permission bits kept; `room` goes down by the bytes written and the copy fails
/// with `QuotaExceeded` before writing more than it. A failed copy leaves nothing behind.
fn copy_file(
    src: &Dir,
    from: &Path,
    dst: &Dir,
    to: &Path,
    room: &mut u64,
    owner: Option<(u32, u32)>,
) -> CopyResult<u64> {
    use std::io::{Read, Seek, SeekFrom};

    use nix::errno::Errno;
    use nix::unistd::{Whence, lseek};
    let mut input = on(Side::From, open_file_at(src, from, OpenOptions::new().read(true), false))?;
    let meta = on(Side::From, input.metadata())?;
    let len = meta.len();
    let mut output = on(Side::To, create_exclusive(dst, to))?;
    let mut copy = || -> CopyResult<u64> {
        on(Side::To, give_fd(&output, owner))?;
        let (mut at, mut written) = (0u64, 0u64);
        while at < len {
            let start = match lseek(&input, at as i64, Whence::SeekData) {
                Ok(start) => start as u64,
                Err(Errno::ENXIO) => break, // a hole up to the end
                Err(Errno::EINVAL | Errno::EOPNOTSUPP) => at,
                Err(e) => return Err((Side::From, e.into())),
            };
            let end = lseek(&input, start as i64, Whence::SeekHole).map_or(len, |end| (end as u64).min(len));
            if start >= end {
                break;
            }
            let n = end - start;
            if n > *room {
                let full = io::Error::new(io::ErrorKind::QuotaExceeded, "the server's disk limit was reached");
                return Err((Side::To, full));
            }
            on(Side::From, input.seek(SeekFrom::Start(start)))?;
            on(Side::To, output.seek(SeekFrom::Start(start)))?;
            let mut data = Read::by_ref(&mut input).take(n);
            let copied = copy_counted(&mut data, &mut output)?;
            *room -= copied;
            written += copied;
            if copied < n {
                break; // the source shrank meanwhile
            }
            at = end;
        }
        on(Side::To, output.set_len(len))?;
        on(Side::To, output.set_permissions(Permissions::from_mode(meta.mode() & 0o777)))?;
        Ok(written)
    };
    let copied = copy();
    if copied.is_err() {
        let _ = dst.remove_file(to);
    }
    copied
}

/// `io::copy`, telling a read error from a write error.
fn copy_counted(from: &mut impl io::Read, to: &mut impl io::Write) -> CopyResult<u64> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0;
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) => return Ok(total),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => return Err((Side::From, e)),
        };
        on(Side::To, to.write_all(&buf[..n]))?;
        total += n as u64;
    }
}

fn copy_tree(src: &Dir, dst: &Dir, depth: usize, room: &mut u64, owner: Option<(u32, u32)>) -> CopyResult<u64> {
    if depth > MAX_DEPTH {
        return Err((Side::From, io::Error::new(io::ErrorKind::InvalidInput, "the directory tree is too deep")));
    }
    let mut bytes = 0;
    for entry in on(Side::From, src.entries())? {
        let entry = on(Side::From, entry)?;
        let meta = on(Side::From, entry.metadata())?;
        let name = entry.file_name();
        if meta.is_symlink() {
            continue;
        } else if meta.is_dir() {
            let name = Path::new(&name);
            on(Side::To, create_dir_as(dst, name, owner))?;
            let (from, to) =
                (on(Side::From, open_dir_nofollow(src, name))?, on(Side::To, open_dir_nofollow(dst, name))?);
            bytes += copy_tree(&from, &to, depth + 1, room, owner)?;
        } else if meta.is_file() {
            bytes += copy_file(src, Path::new(&name), dst, Path::new(&name), room, owner)?;
        }
        // FIFOs, sockets and devices are not copied.
    }
    Ok(bytes)
}

/// The names ranked `offset..offset + limit` (in byte order) of a directory, holding at most
/// `scan + limit` names at once whatever its size. A page within the first `scan` names takes
/// one pass over the directory (keeping the `offset + limit` smallest names); a deeper one first
/// skips `scan` names per pass, each pass keeping the `scan` smallest names above the last one
/// skipped.
fn page_names(dir: &Dir, offset: usize, limit: usize, scan: usize) -> io::Result<Vec<OsString>> {
    page_names_holding(dir, offset, limit, scan).map(|(names, _)| names)
}

/// [`page_names`], and the most names it held at once.
fn page_names_holding(dir: &Dir, mut offset: usize, limit: usize, scan: usize) -> io::Result<(Vec<OsString>, usize)> {
    let mut above: Option<OsString> = None;
    let mut held = 0;
    loop {
        let skipping = offset >= scan;
        let keep = if skipping { scan } else { offset.saturating_add(limit) };
        if keep == 0 {
            return Ok((Vec::new(), held));
        }
        let mut heap: BinaryHeap<OsString> = BinaryHeap::with_capacity(keep.min(4096));
        for entry in dir.entries()? {
            let name = entry?.file_name();
            if above.as_ref().is_some_and(|a| name <= *a) {
                continue;
            }
            if heap.len() < keep {
                heap.push(name);
                held = held.max(heap.len());
            } else if let Some(mut largest) = heap.peek_mut()
                && name < *largest
            {
                *largest = name;
            }
        }
        if !skipping {
            return Ok((heap.into_sorted_vec().into_iter().skip(offset).take(limit).collect(), held));
        }
        if heap.len() < scan {
            return Ok((Vec::new(), held)); // fewer names than the offset
        }
        above = heap.peek().cloned();
        offset -= scan;
    }
}

/// A directory read a page at a time in its own order (SFTP's `readdir`): only the page is held.
pub struct DirStream {
    entries: cap_std::fs::ReadDir,
    path: String,
}

impl std::fmt::Debug for DirStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirStream").field("path", &self.path).finish_non_exhaustive()
    }
}

impl DirStream {
    /// Up to `n` more entries with their metadata (links described, not followed); empty at the end.
    pub fn next_page(&mut self, n: usize) -> Result<Vec<(String, cap_std::fs::Metadata)>> {
        let mut out = Vec::new();
        while out.len() < n {
            let Some(entry) = self.entries.next() else { break };
            let entry = entry.map_err(|e| io_err(&self.path, e))?;
            match entry.metadata() {
                Ok(meta) => out.push((entry.file_name().to_string_lossy().into_owned(), meta)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {} // removed meanwhile
                Err(e) => return Err(io_err(&self.path, e)),
            }
        }
        Ok(out)
    }
}

/// A path relative to the root: a leading `/` means the root; `..`, NUL and the root itself
/// (where a file is needed) are refused before the file system is touched.
pub(crate) fn relative(path: &str) -> Result<PathBuf> {
    if path.contains('\0') || path.len() > 4096 {
        return Err(Error::invalid("path: invalid"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(path.trim_start_matches('/')).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir | Component::RootDir | Component::Prefix(_) => {
                return Err(Error::new(
                    ErrorKind::PermissionDenied,
                    format!("{path} leads outside the server directory"),
                ));
            }
        }
    }
    Ok(out)
}

fn named(path: &str) -> Result<PathBuf> {
    let rel = relative(path)?;
    if rel.as_os_str().is_empty() {
        return Err(Error::invalid("path: names the server directory itself"));
    }
    Ok(rel)
}

/// Whether `name` is the hidden partial file of an upload (`.<name>.upload`).
pub(crate) fn is_partial_upload(name: &std::ffi::OsStr) -> bool {
    let name = name.as_encoded_bytes();
    name.len() > ".upload".len() + 1 && name.starts_with(b".") && name.ends_with(b".upload")
}

impl Sandbox {
    /// The sandbox of the directory `root` (created if missing).
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::internal("cannot create the server directory", e))?;
        let root = Dir::open_ambient_dir(root, ambient_authority())
            .map_err(|e| Error::internal("cannot open the server directory", e))?;
        Ok(Self { root })
    }

    /// Entries of a directory, by name: at most `limit` from `offset`. The directory is
    /// streamed: whatever its size, only about the page (and at most [`LIST_SCAN`] names for a
    /// deep page) is held.
    pub fn list_page(&self, path: &str, offset: usize, limit: usize) -> Result<Vec<FileEntry>> {
        self.list_page_scanning(path, offset, limit, LIST_SCAN)
    }

    fn list_page_scanning(&self, path: &str, offset: usize, limit: usize, scan: usize) -> Result<Vec<FileEntry>> {
        let dir = self.dir(path)?;
        let names = page_names(&dir, offset, limit, scan).map_err(|e| io_err(path, e))?;
        let mut out = Vec::with_capacity(names.len());
        for name in names {
            match dir.symlink_metadata(&name) {
                Ok(meta) => out.push(entry_of(name.to_string_lossy().into_owned(), &meta)),
                Err(e) if e.kind() == io::ErrorKind::NotFound => {} // removed meanwhile
                Err(e) => return Err(io_err(path, e)),
            }
        }
        Ok(out)
    }

    /// Entries of a directory, by name (all of them: small directories and tests only).
    pub fn list(&self, path: &str) -> Result<Vec<FileEntry>> {
        let dir = self.dir(path)?;
        let mut out = Vec::new();
        for entry in dir.entries().map_err(|e| io_err(path, e))? {
            let entry = entry.map_err(|e| io_err(path, e))?;
            let meta = entry.metadata().map_err(|e| io_err(path, e))?;
            out.push(entry_of(entry.file_name().to_string_lossy().into_owned(), &meta));
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A directory read a page at a time, unsorted.
    pub fn read_dir(&self, path: &str) -> Result<DirStream> {
        let entries = self.dir(path)?.entries().map_err(|e| io_err(path, e))?;
        Ok(DirStream { entries, path: path.to_string() })
    }

    /// A directory beneath the root (the root itself for `/` or ``).
    pub fn dir(&self, path: &str) -> Result<Dir> {
        let rel = relative(path)?;
        if rel.as_os_str().is_empty() { self.root.try_clone() } else { self.root.open_dir(&rel) }
            .map_err(|e| io_err(path, e))
    }

    /// One entry's metadata, a link followed (only beneath the root).
    pub fn metadata(&self, path: &str) -> Result<cap_std::fs::Metadata> {
        let rel = relative(path)?;
        if rel.as_os_str().is_empty() { self.root.dir_metadata() } else { self.root.metadata(&rel) }
            .map_err(|e| io_err(path, e))
    }

    /// One entry's metadata, a link described rather than followed.
    pub fn symlink_metadata(&self, path: &str) -> Result<cap_std::fs::Metadata> {
        let rel = relative(path)?;
        if rel.as_os_str().is_empty() { self.root.dir_metadata() } else { self.root.symlink_metadata(&rel) }
            .map_err(|e| io_err(path, e))
    }

    /// One entry's metadata (a link is followed, only beneath the root).
    pub fn stat(&self, path: &str) -> Result<FileEntry> {
        let meta = self.metadata(path)?;
        let rel = relative(path)?;
        let name = rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "/".into());
        Ok(entry_of(name, &meta))
    }

    /// One entry's metadata, a link described rather than followed.
    pub fn lstat(&self, path: &str) -> Result<FileEntry> {
        let rel = relative(path)?;
        if rel.as_os_str().is_empty() {
            return self.stat(path);
        }
        let meta = self.root.symlink_metadata(&rel).map_err(|e| io_err(path, e))?;
        Ok(entry_of(rel.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default(), &meta))
    }

    /// Bytes `path` takes on disk (its allocated blocks, not following a link; 0 when missing).
    pub fn allocated(&self, path: &str) -> Result<u64> {
        match self.root.symlink_metadata(named(path)?) {
            Ok(meta) => Ok(allocated(&meta)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(0),
            Err(e) => Err(io_err(path, e)),
        }
    }

    /// Open a file with explicit access (SFTP's open flags). New files get mode 0644. Only a
    /// regular file is opened (checked on the handle; a FIFO never blocks the open).
    pub fn open_file_with(&self, path: &str, access: Access) -> Result<cap_std::fs::File> {
        let mut options = OpenOptions::new();
        options
            .read(access.read)
            .write(access.write || access.append)
            .append(access.append)
            .create(access.create && !access.exclusive)
            .create_new(access.exclusive)
            .truncate(access.truncate);
        open_file_at(&self.root, &named(path)?, &mut options, true).map_err(|e| io_err(path, e))
    }

    /// Create one directory; its parent must exist and it must not.
    pub fn create_dir(&self, path: &str) -> Result<()> {
        self.root.create_dir(named(path)?).map_err(|e| io_err(path, e))
    }

    /// Create a directory and its missing parents, each given to `owner`; returns the ones
    /// created, outermost first (to remove them again when what follows fails). An existing
    /// directory (or a link to one beneath the root) is used as it is.
    pub fn mkdir_as(&self, path: &str, owner: Option<(u32, u32)>) -> Result<Vec<PathBuf>> {
        let rel = named(path)?;
        let mut created: Vec<PathBuf> = Vec::new();
        let mut at = PathBuf::new();
        for part in rel.components() {
            at.push(part);
            let made = match create_dir_as(&self.root, &at, owner) {
                Ok(()) => {
                    created.push(at.clone());
                    Ok(())
                }
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => match self.root.metadata(&at) {
                    Ok(m) if m.is_dir() => Ok(()),
                    Ok(_) => Err(Error::conflict(format!("{} exists and is not a directory", at.display()))),
                    Err(e) => Err(io_err(path, e)),
                },
                Err(e) => Err(io_err(path, e)),
            };
            if let Err(e) = made {
                self.remove_created(&created);
                return Err(e);
            }
        }
        Ok(created)
    }

    /// Remove directories [`Sandbox::mkdir_as`] created (innermost first; only while empty).
    pub fn remove_created(&self, created: &[PathBuf]) {
        for dir in created.iter().rev() {
            let _ = self.root.remove_dir(dir);
        }
    }

    /// Remove an empty directory.
    pub fn remove_dir(&self, path: &str) -> Result<()> {
        self.root.remove_dir(named(path)?).map_err(|e| io_err(path, e))
    }

    /// Remove a file or a link (never a directory).
    pub fn remove_file(&self, path: &str) -> Result<()> {
        self.root.remove_file(named(path)?).map_err(|e| io_err(path, e))
    }

    /// Where a link points (its text; following it stays confined).
    pub fn read_link(&self, path: &str) -> Result<String> {
        self.root
            .read_link_contents(named(path)?)
            .map(|p| p.to_string_lossy().into_owned())
            .map_err(|e| io_err(path, e))
    }

    /// Up to `length` bytes from `offset`, and the file's size.
    pub fn read_at(&self, path: &str, offset: u64, length: usize) -> Result<(Vec<u8>, u64)> {
        use std::io::{Read, Seek, SeekFrom};
        let mut file = open_regular(&self.root, &named(path)?).map_err(|e| io_err(path, e))?;
        let meta = file.metadata().map_err(|e| io_err(path, e))?;
        file.seek(SeekFrom::Start(offset)).map_err(|e| io_err(path, e))?;
        let mut data = Vec::with_capacity(length.min(meta.len().saturating_sub(offset) as usize));
        file.take(length as u64).read_to_end(&mut data).map_err(|e| io_err(path, e))?;
        Ok((data, meta.len()))
    }

    /// Write `data` at `offset` (creating the file); `offset` may not lie past the end. With
    /// `truncate` the file ends after `data`. Returns the new size. A link as the last
    /// component is refused, never written through.
    pub fn write_at(&self, path: &str, offset: u64, data: &[u8], truncate: bool) -> Result<u64> {
        use std::io::{Seek, SeekFrom, Write};
        let mut options = OpenOptions::new();
        options.write(true).create(true);
        let mut file = open_file_at(&self.root, &named(path)?, &mut options, false).map_err(|e| io_err(path, e))?;
        let size = file.metadata().map_err(|e| io_err(path, e))?.len();
        if offset > size {
            return Err(Error::conflict(format!("{path} has {size} bytes: cannot write at {offset}")));
        }
        file.seek(SeekFrom::Start(offset)).map_err(|e| io_err(path, e))?;
        file.write_all(data).map_err(|e| io_err(path, e))?;
        let end = offset + data.len() as u64;
        if truncate {
            file.set_len(end).map_err(|e| io_err(path, e))?;
            return Ok(end);
        }
        Ok(end.max(size))
    }

    /// The root's handle (archives walk beneath it).
    pub fn root(&self) -> &Dir {
        &self.root
    }

    /// Open a regular file for reading.
    pub fn open_file(&self, path: &str) -> Result<cap_std::fs::File> {
        open_regular(&self.root, &named(path)?).map_err(|e| io_err(path, e))
    }

    /// Create a file that must not exist, for writing.
    pub fn create_new(&self, path: &str) -> Result<cap_std::fs::File> {
        create_exclusive(&self.root, &named(path)?).map_err(|e| io_err(path, e))
    }

    /// Bytes allocated on disk at or below `path` (a link counts itself, not its target).
    pub fn size_of(&self, path: &str) -> Result<u64> {
        let rel = named(path)?;
        let meta = self.root.symlink_metadata(&rel).map_err(|e| io_err(path, e))?;
        if !meta.is_dir() || meta.is_symlink() {
            return Ok(allocated(&meta));
        }
        let mut total = allocated(&meta);
        walk(&self.root.open_dir(&rel).map_err(|e| io_err(path, e))?, Path::new(""), &mut |_, m| {
            total = total.saturating_add(allocated(m));
            Visit::Continue
        })
        .map_err(|e| io_err(path, e))?;
        Ok(total)
    }

    /// Give `path` and everything below it to `(uid, gid)`. Each entry is opened through the
    /// handle and changed by descriptor, so a link is never followed out (nor in) and a FIFO
    /// never blocks. Only as root (anyone else can only own files already).
    pub fn chown_tree(&self, path: &str, owner: (u32, u32)) -> Result<()> {
        let rel = relative(path)?;
        give_at(&self.root, &rel, Some(owner)).map_err(|e| io_err(path, e))?;
        if self.root.symlink_metadata(&rel).map(|m| m.is_dir()).unwrap_or(rel.as_os_str().is_empty()) {
            let mut failure = None;
            walk(&self.dir(path)?, &rel, &mut |entry, _| match give_at(&self.root, entry, Some(owner)) {
                Ok(()) => Visit::Continue,
                Err(e) => {
                    failure = Some(e);
                    Visit::Stop
                }
            })
            .map_err(|e| io_err(path, e))?;
            if let Some(e) = failure {
                return Err(io_err(path, e));
            }
        }
        Ok(())
    }

    /// Create an empty file; it must not exist.
    pub fn create_file(&self, path: &str) -> Result<()> {
        self.create_new(path).map(|_| ())
    }

    /// Copy a file or a directory tree (links are not copied); `to` must not exist.
    pub fn copy(&self, from: &str, to: &str) -> Result<u64> {
        self.copy_as(from, to, u64::MAX, None)
    }

    /// Copy a file or a directory tree (links, FIFOs and devices are not copied, holes stay
    /// holes), writing at most `room` bytes, everything created given to `owner`; `to` must not
    /// exist. A failed copy removes what it created. Returns the bytes written.
    pub fn copy_as(&self, from: &str, to: &str, room: u64, owner: Option<(u32, u32)>) -> Result<u64> {
        let (src, dst) = (named(from)?, named(to)?);
        if self.root.symlink_metadata(&dst).is_ok() {
            return Err(Error::conflict(format!("{to} already exists")));
        }
        let meta = self.root.symlink_metadata(&src).map_err(|e| io_err(from, e))?;
        let mut room = room;
        if meta.is_symlink() {
            Err(Error::invalid(format!("{from} is a link: copy what it points to")))
        } else if meta.is_dir() {
            if dst.starts_with(&src) {
                return Err(Error::invalid("cannot copy a directory into itself"));
            }
            create_dir_as(&self.root, &dst, owner).map_err(|e| io_err(to, e))?;
            let copied = on(Side::From, open_dir_nofollow(&self.root, &src))
                .and_then(|s| Ok((s, on(Side::To, open_dir_nofollow(&self.root, &dst))?)))
                .and_then(|(s, d)| copy_tree(&s, &d, 0, &mut room, owner));
            if copied.is_err() {
                let _ = self.root.remove_dir_all(&dst);
            }
            copied.map_err(|(side, e)| io_err(if matches!(side, Side::From) { from } else { to }, e))
        } else if meta.is_file() {
            copy_file(&self.root, &src, &self.root, &dst, &mut room, owner)
                .map_err(|(side, e)| io_err(if matches!(side, Side::From) { from } else { to }, e))
        } else {
            Err(Error::invalid(format!("{from} is not a regular file or a directory")))
        }
    }

    /// Entries below `path` whose name contains `query` (case-insensitive), as paths from the
    /// root; at most `limit`.
    pub fn search(&self, path: &str, query: &str, limit: usize) -> Result<Vec<FileEntry>> {
        let needle = query.to_lowercase();
        let base = relative(path)?;
        let mut out = Vec::new();
        walk(&self.dir(path)?, &base, &mut |rel, meta| {
            let name = rel.file_name().map(|n| n.to_string_lossy().to_lowercase()).unwrap_or_default();
            if name.contains(&needle) {
                out.push(entry_of(format!("/{}", rel.display()), meta));
            }
            if out.len() < limit { Visit::Continue } else { Visit::Stop }
        })
        .map_err(|e| io_err("/", e))?;
        Ok(out)
    }

    /// Bytes allocated on disk below the root (blocks, like `du`: a sparse file counts what it
    /// holds, not its apparent size).
    pub fn usage(&self) -> Result<u64> {
        self.usage_sweeping(None)
    }

    /// [`Sandbox::usage`], removing (and not counting) the partial files of uploads
    /// (`.<name>.upload`, regular files) not written to since `expired_before`.
    pub fn usage_sweeping(&self, expired_before: Option<std::time::SystemTime>) -> Result<u64> {
        /// Expired partials removed per measurement (the next one removes more).
        const MAX_SWEPT: usize = 1000;
        let mut total = 0u64;
        let mut expired = Vec::new();
        walk(&self.root, Path::new(""), &mut |rel, meta| {
            if let Some(before) = expired_before
                && meta.is_file()
                && expired.len() < MAX_SWEPT
                && rel.file_name().is_some_and(is_partial_upload)
                && meta.modified().is_ok_and(|m| m.into_std() < before)
            {
                expired.push(rel.to_path_buf());
                return Visit::Continue;
            }
            total = total.saturating_add(allocated(meta));
            Visit::Continue
        })
        .map_err(|e| io_err("/", e))?;
        for partial in expired {
            if let Err(e) = self.root.remove_file(&partial) {
                tracing::warn!(path = %partial.display(), error = %e, "an expired upload could not be removed");
            }
        }
        Ok(total)
    }

    /// A file's contents.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        use std::io::Read;
        let mut file = self.open_file(path)?;
        let mut data = Vec::new();
        file.read_to_end(&mut data).map_err(|e| io_err(path, e))?;
        Ok(data)
    }

    /// Create or replace a regular file.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        use std::io::Write;
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let mut file = open_file_at(&self.root, &named(path)?, &mut options, true).map_err(|e| io_err(path, e))?;
        file.write_all(data).map_err(|e| io_err(path, e))
    }

    /// Create a directory and its parents.
    pub fn mkdir(&self, path: &str) -> Result<()> {
        self.root.create_dir_all(named(path)?).map_err(|e| io_err(path, e))
    }

    /// Delete a file, a link (not what it points to), or a directory with its contents.
    pub fn remove(&self, path: &str) -> Result<()> {
        let rel = named(path)?;
        let meta = self.root.symlink_metadata(&rel).map_err(|e| io_err(path, e))?;
        if meta.is_dir() { self.root.remove_dir_all(&rel) } else { self.root.remove_file(&rel) }
            .map_err(|e| io_err(path, e))
    }

    /// Move or rename within the server directory.
    pub fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.root.rename(named(from)?, &self.root, named(to)?).map_err(|e| io_err(&format!("{from} → {to}"), e))
    }

    /// Change permission bits of a file or a directory (setuid, setgid and sticky bits are
    /// never set), by descriptor: the open never blocks, and FIFOs or devices are refused.
    pub fn chmod(&self, path: &str, mode: u32) -> Result<()> {
        let rel = named(path)?;
        let open = |write: bool| {
            let mut options = OpenOptions::new();
            options.read(!write).write(write).custom_flags(OFlag::O_NONBLOCK.bits());
            self.root.open_with(&rel, &options)
        };
        // Root may open anything for reading; anyone else may own a file they cannot read.
        let handle = match open(false) {
            Err(e) if e.raw_os_error() == Some(nix::errno::Errno::EACCES as i32) => open(true),
            other => other,
        }
        .map_err(|e| io_err(path, e))?;
        let meta = handle.metadata().map_err(|e| io_err(path, e))?;
        if !(meta.is_file() || meta.is_dir()) {
            return Err(Error::invalid(format!("{path} is not a regular file or a directory")));
        }
        handle.set_permissions(Permissions::from_mode(mode & 0o777)).map_err(|e| io_err(path, e))
    }
}
#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};

    use super::*;

    /// A server root beside an "outside" directory with a secret, and links pointing out.
    fn setup() -> (tempfile::TempDir, Sandbox, PathBuf) {
        let tmp = tempfile::tempdir().expect("tempdir");
        let root = tmp.path().join("root");
        let outside = tmp.path().join("outside");
        std::fs::create_dir_all(&root).expect("root");
        std::fs::create_dir_all(&outside).expect("outside");
        std::fs::write(outside.join("secret"), b"secret").expect("secret");
        std::fs::set_permissions(outside.join("secret"), std::fs::Permissions::from_mode(0o600)).expect("mode");
        symlink(outside.join("secret"), root.join("out")).expect("file link");
        symlink(&outside, root.join("outdir")).expect("dir link");
        symlink(outside.join("planted"), root.join("dangling")).expect("dangling link");
        symlink("../outside/secret", root.join("relative")).expect("relative link");
        let sandbox = Sandbox::open(&root).expect("sandbox");
        (tmp, sandbox, outside)
    }

    /// Refused as an escape (never "not found": the targets exist, outside).
    fn denied<T: std::fmt::Debug>(r: Result<T>) {
        match r {
            Ok(v) => panic!("expected a refusal, got {v:?}"),
            Err(e) => assert_eq!(e.kind(), ErrorKind::PermissionDenied, "expected a refusal, got {e}"),
        }
    }

    #[test]
    fn ordinary_operations_work_inside() {
        let (_tmp, s, _) = setup();
        s.mkdir("/world/region").expect("mkdir");
        s.write("world/level.dat", b"level").expect("write");
        assert_eq!(s.read("/world/level.dat").expect("read"), b"level");
        s.chmod("world/level.dat", 0o4755).expect("chmod");
        let listed = s.list("world").expect("list");
        assert_eq!(
            listed.iter().map(|e| (e.name.as_str(), e.kind)).collect::<Vec<_>>(),
            vec![("level.dat", FileKind::File), ("region", FileKind::Directory)]
        );
        assert_eq!(listed[0].mode, 0o755, "setuid never set");
        s.rename("world/level.dat", "world/region/level.dat").expect("rename");
        s.remove("world").expect("remove");
        assert_eq!(s.read("world/region/level.dat").expect_err("gone").kind(), ErrorKind::NotFound);
        let root = s.list("/").expect("root");
        assert!(root.iter().any(|e| e.name == "out" && e.kind == FileKind::Symlink));
    }

    #[test]
    fn escapes_are_refused_and_nothing_outside_changes() {
        let (_tmp, s, outside) = setup();
        denied(s.read("../outside/secret"));
        denied(s.read("world/../../outside/secret"));
        denied(s.read("out"));
        denied(s.read("relative"));
        denied(s.read("outdir/secret"));
        assert_eq!(s.read("/etc/passwd").expect_err("not the host's").kind(), ErrorKind::NotFound);
        denied(s.write("dangling", b"planted"));
        denied(s.write("outdir/planted", b"planted"));
        assert!(!outside.join("planted").exists(), "nothing was written outside");
        denied(s.remove("outdir/secret"));
        denied(s.chmod("out", 0o777));
        denied(s.chmod("outdir/secret", 0o777));
        s.write("inside.txt", b"x").expect("write");
        denied(s.rename("inside.txt", "outdir/moved"));
        denied(s.list("outdir"));
        denied(s.mkdir("outdir/new"));
        assert_eq!(std::fs::read(outside.join("secret")).expect("secret"), b"secret");
        let mode = std::fs::metadata(outside.join("secret")).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the outside file kept its mode");
        assert!(!outside.join("moved").exists() && !outside.join("new").exists());
        // Deleting the link removes the link, not its target.
        s.remove("outdir").expect("remove link");
        assert!(outside.join("secret").exists());
    }

    /// Run `f` on a thread; fail the test when it does not answer within 10 s (a hang).
    fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what} hung on a FIFO"))
    }

    #[test]
    fn fifos_are_refused_at_once_by_every_open() {
        let (tmp, s, _) = setup();
        let root = tmp.path().join("root");
        for name in ["pipe", ".up.bin.upload"] {
            nix::unistd::mkfifo(&root.join(name), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
        }
        let s = std::sync::Arc::new(s);
        let invalid = |what: &str, r: Result<()>| match r {
            Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
            Ok(()) => panic!("{what}: a FIFO was accepted"),
        };
        let t = s.clone();
        invalid("read", promptly("read", move || t.read("pipe").map(|_| ())));
        let t = s.clone();
        invalid("read_at", promptly("read_at", move || t.read_at("pipe", 0, 10).map(|_| ())));
        let t = s.clone();
        invalid("write_at", promptly("write_at", move || t.write_at(".up.bin.upload", 0, b"x", true).map(|_| ())));
        let t = s.clone();
        invalid("write", promptly("write", move || t.write("pipe", b"x")));
        let t = s.clone();
        invalid("copy", promptly("copy", move || t.copy("pipe", "copied").map(|_| ())));
        let t = s.clone();
        invalid("chmod", promptly("chmod", move || t.chmod("pipe", 0o600)));
        for access in [
            Access { read: true, ..Default::default() },
            Access { write: true, ..Default::default() },
            Access { write: true, create: true, truncate: true, ..Default::default() },
        ] {
            let t = s.clone();
            invalid("open", promptly("open", move || t.open_file_with("pipe", access).map(|_| ())));
        }
        // With a reader holding the FIFO open, a write open succeeds: the handle is refused.
        let _reader = {
            use std::os::unix::fs::OpenOptionsExt;
            std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
                .open(root.join(".up.bin.upload"))
                .expect("reader")
        };
        let t = s.clone();
        invalid(
            "write_at (reader)",
            promptly("write_at", move || t.write_at(".up.bin.upload", 0, b"x", true).map(|_| ())),
        );
        assert!(!root.join("copied").exists());
        assert!(std::fs::symlink_metadata(root.join("pipe")).expect("pipe").file_type().is_fifo());
    }

    #[test]
    fn usage_counts_allocated_blocks_and_expired_partials_are_swept() {
        let (tmp, s, _) = setup();
        let root = tmp.path().join("root");
        // A 1 GiB sparse file holds nothing.
        std::fs::File::create(root.join("sparse")).expect("sparse").set_len(1 << 30).expect("set_len");
        std::fs::write(root.join("data"), vec![1u8; 1 << 20]).expect("data");
        let used = s.usage().expect("usage");
        assert!((1 << 20..4 << 20).contains(&used), "counted {used} bytes");
        assert!(s.size_of("sparse").expect("size") < 1 << 20);
        // A copy of a sparse file stays sparse and fits in little room.
        s.copy_as("sparse", "sparse-copy", 1 << 20, None).expect("copy");
        assert_eq!(std::fs::metadata(root.join("sparse-copy")).expect("copy").len(), 1 << 30);
        assert!(s.size_of("sparse-copy").expect("size") < 1 << 20);
        // A copy that does not fit fails and leaves nothing.
        let e = s.copy_as("data", "data-copy", 1000, None).expect_err("no room");
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
        assert!(!root.join("data-copy").exists());

        // Partials of uploads: a fresh one counts; one untouched for longer than the TTL goes.
        std::fs::write(root.join(".fresh.upload"), vec![1u8; 1 << 20]).expect("fresh");
        let stale = std::fs::File::create(root.join(".stale.upload")).expect("stale");
        std::io::Write::write_all(&mut &stale, &vec![1u8; 1 << 20]).expect("write");
        let day = std::time::Duration::from_secs(25 * 3600);
        stale.set_modified(std::time::SystemTime::now() - day).expect("mtime");
        std::fs::write(root.join("not-a-partial.upload"), b"kept").expect("other");
        let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
        let swept = s.usage_sweeping(Some(cutoff)).expect("usage");
        assert!(!root.join(".stale.upload").exists(), "the expired partial is gone");
        assert!(root.join(".fresh.upload").exists() && root.join("not-a-partial.upload").exists());
        assert!((2 << 20..6 << 20).contains(&swept), "counted {swept} bytes");
    }

    #[test]
    fn listing_pages_hold_only_about_a_page() {
        let (tmp, s, _) = setup();
        let dir = tmp.path().join("root/many");
        std::fs::create_dir_all(&dir).expect("many");
        let n = 1000;
        for i in 0..n {
            std::fs::write(dir.join(format!("f{:04}", (i * 7919) % n)), b"").expect("file");
        }
        let all: Vec<String> = (0..n).map(|i| format!("f{i:04}")).collect();
        let handle = s.dir("many").expect("dir");
        for (offset, limit) in [(0, 10), (5, 50), (60, 100), (128, 64), (250, 100), (990, 100), (1000, 5), (5000, 5)] {
            let (names, held) = page_names_holding(&handle, offset, limit, 64).expect("page");
            let names: Vec<String> = names.iter().map(|n| n.to_string_lossy().into_owned()).collect();
            let want: Vec<String> = all.iter().skip(offset).take(limit).cloned().collect();
            assert_eq!(names, want, "offset {offset}, limit {limit}");
            assert!(held <= 64 + limit, "offset {offset}: held {held} names of {n}");
            let page = s.list_page_scanning("many", offset, limit, 64).expect("list");
            assert_eq!(page.iter().map(|e| e.name.clone()).collect::<Vec<_>>(), want);
        }
        assert_eq!(s.list_page("many", 0, 3).expect("page").len(), 3);
    }

    #[test]
    fn made_directories_belong_to_the_owner_and_errors_name_the_path() {
        use std::os::unix::fs::MetadataExt as _;
        let (tmp, s, _) = setup();
        let root = tmp.path().join("root");
        let created = s.mkdir_as("a/b/c", Some((4321, 4321))).expect("mkdir");
        assert_eq!(created.len(), 3);
        if nix::unistd::geteuid().is_root() {
            for dir in ["a", "a/b", "a/b/c"] {
                assert_eq!(std::fs::metadata(root.join(dir)).expect("dir").uid(), 4321, "{dir}");
            }
        }
        s.remove_created(&created);
        assert!(!root.join("a").exists());
        s.write("file", b"x").expect("file");
        symlink("loop", root.join("loop")).expect("loop");
        s.mkdir("adir").expect("adir");
        for (what, e, kind) in [
            ("under a file", s.read("file/x").expect_err("enotdir"), ErrorKind::InvalidInput),
            ("a loop", s.read("loop").expect_err("eloop"), ErrorKind::InvalidInput),
            ("a long name", s.write(&"n".repeat(300), b"x").expect_err("long"), ErrorKind::InvalidInput),
            ("a directory as a file", s.read("adir").expect_err("dir"), ErrorKind::InvalidInput),
        ] {
            assert_eq!(e.kind(), kind, "{what}: {e}");
        }
        s.mkdir("d1/x").expect("d1");
        s.mkdir("d2").expect("d2");
        let e = s.rename("d2", "d1").expect_err("not empty");
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        let e = s.rename("file", "d1").expect_err("onto a directory");
        assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
        assert!(e.message().contains("file"), "names the path: {e}");
    }
}
