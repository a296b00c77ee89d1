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

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt, Permissions, PermissionsExt};
use catalyst_core::model::FileEntry;
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

mod copy;
mod errors;
mod fd;
mod listing;
#[cfg(test)]
mod tests;

use copy::*;
pub(crate) use errors::io_err;
pub(crate) use fd::*;
pub use listing::DirStream;
use listing::*;

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
    /// never blocks. Only as root (anyone else can only own files already): otherwise nothing
    /// is walked.
    pub fn chown_tree(&self, path: &str, owner: (u32, u32)) -> Result<()> {
        if !nix::unistd::geteuid().is_root() {
            return Ok(());
        }
        let rel = relative(path)?;
        let is_dir = self.root.symlink_metadata(&rel).map(|m| m.is_dir()).unwrap_or(rel.as_os_str().is_empty());
        // First count the links of each multiply-linked file the tree holds: only those whose
        // every link is inside are given away.
        let mut links = LinksInside::new();
        if is_dir {
            walk(&self.dir(path)?, &rel, &mut |_, meta| {
                if meta.is_file() && meta.nlink() > 1 {
                    *links.entry((meta.dev(), meta.ino())).or_default() += 1;
                }
                Visit::Continue
            })
            .map_err(|e| io_err(path, e))?;
        }
        give_at(&self.root, &rel, Some(owner), Some(&links)).map_err(|e| io_err(path, e))?;
        if is_dir {
            let mut failure = None;
            walk(&self.dir(path)?, &rel, &mut |entry, _| match give_at(&self.root, entry, Some(owner), Some(&links)) {
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
        if foreign_link(&meta, self.root.dir_metadata().map_err(|e| io_err(path, e))?.uid()) {
            return Err(Error::denied(format!("{path} is a hard link to a file the server does not own")));
        }
        handle.set_permissions(Permissions::from_mode(mode & 0o777)).map_err(|e| io_err(path, e))
    }
}
