//! A server's files, reachable only beneath its root. Every operation goes through a cap-std
//! directory handle of the root: paths are resolved component by component beneath it (openat2
//! `RESOLVE_BENEATH` where the kernel has it), so `..`, absolute symlinks and symlinks pointing
//! out are refused at the moment of use, with no check-then-use window.

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Permissions};
use catalyst_core::model::{FileEntry, FileKind};
use catalyst_core::{Error, ErrorKind, Result};

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

fn io_err(path: &str, e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::NotFound => Error::not_found(&format!("file {path}")),
        io::ErrorKind::AlreadyExists => Error::conflict(format!("{path} already exists")),
        // cap-std reports escapes (`..`, links pointing out) as permission errors.
        io::ErrorKind::PermissionDenied => {
            Error::new(ErrorKind::PermissionDenied, format!("{path} leads outside the server directory"))
        }
        io::ErrorKind::InvalidInput | io::ErrorKind::InvalidFilename => Error::invalid(format!("{path}: {e}")),
        _ => Error::internal(format!("file operation on {path} failed"), e),
    }
}

fn entry_of(name: String, meta: &cap_std::fs::Metadata) -> FileEntry {
    use cap_std::fs::MetadataExt;
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

/// Deepest directory nesting a walk (usage, search, copy, archives) follows.
const MAX_DEPTH: usize = 128;

/// Open flags for reading a file that may have been swapped for a FIFO: never block.
fn nonblocking() -> cap_std::fs::OpenOptions {
    use cap_std::fs::OpenOptionsExt;
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
    options
}

/// Open a regular file for reading beneath `dir`; anything else (a FIFO, a device, a
/// directory) is refused after the open, on the opened handle.
pub(crate) fn open_regular(dir: &Dir, rel: &Path) -> io::Result<cap_std::fs::File> {
    let file = dir.open_with(rel, &nonblocking())?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file"));
    }
    Ok(file)
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

fn copy_tree(src: &Dir, dst: &Dir, depth: usize) -> io::Result<u64> {
    if depth > MAX_DEPTH {
        return Err(io::Error::new(io::ErrorKind::InvalidInput, "the directory tree is too deep"));
    }
    let mut bytes = 0;
    for entry in src.entries()? {
        let entry = entry?;
        let meta = entry.metadata()?;
        let name = entry.file_name();
        if meta.is_symlink() {
            continue;
        } else if meta.is_dir() {
            dst.create_dir(&name)?;
            bytes += copy_tree(&src.open_dir(&name)?, &dst.open_dir(&name)?, depth + 1)?;
        } else if meta.is_file() {
            bytes += src.copy(&name, dst, &name)?;
        }
    }
    Ok(bytes)
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

impl Sandbox {
    /// The sandbox of the directory `root` (created if missing).
    pub fn open(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| Error::internal("cannot create the server directory", e))?;
        let root = Dir::open_ambient_dir(root, ambient_authority())
            .map_err(|e| Error::internal("cannot open the server directory", e))?;
        Ok(Self { root })
    }

    /// Entries of a directory, by name: at most `limit` from `offset`.
    pub fn list_page(&self, path: &str, offset: usize, limit: usize) -> Result<Vec<FileEntry>> {
        let mut all = self.list(path)?;
        Ok(all.drain(offset.min(all.len())..).take(limit).collect())
    }

    /// Entries of a directory, by name.
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

    /// A directory beneath the root (the root itself for `/` or ``).
    pub fn dir(&self, path: &str) -> Result<Dir> {
        let rel = relative(path)?;
        if rel.as_os_str().is_empty() { self.root.try_clone() } else { self.root.open_dir(&rel) }
            .map_err(|e| io_err(path, e))
    }

    /// One entry's metadata (a link is followed, only beneath the root).
    pub fn stat(&self, path: &str) -> Result<FileEntry> {
        let rel = relative(path)?;
        let meta = if rel.as_os_str().is_empty() { self.root.dir_metadata() } else { self.root.metadata(&rel) }
            .map_err(|e| io_err(path, e))?;
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

    /// Open a file with explicit access (SFTP's open flags). New files get mode 0644.
    pub fn open_file_with(&self, path: &str, access: Access) -> Result<cap_std::fs::File> {
        use cap_std::fs::OpenOptionsExt;
        let mut options = cap_std::fs::OpenOptions::new();
        options
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .read(access.read)
            .write(access.write || access.append)
            .append(access.append)
            .create(access.create && !access.exclusive)
            .create_new(access.exclusive)
            .truncate(access.truncate);
        let file = self.root.open_with(named(path)?, &options).map_err(|e| io_err(path, e))?;
        match file.metadata() {
            Ok(m) if m.is_file() => Ok(file),
            Ok(_) => Err(Error::invalid(format!("{path} is not a regular file"))),
            Err(e) => Err(io_err(path, e)),
        }
    }

    /// Create one directory; its parent must exist and it must not.
    pub fn create_dir(&self, path: &str) -> Result<()> {
        self.root.create_dir(named(path)?).map_err(|e| io_err(path, e))
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
    /// `truncate` the file ends after `data`. Returns the new size.
    pub fn write_at(&self, path: &str, offset: u64, data: &[u8], truncate: bool) -> Result<u64> {
        use std::io::{Seek, SeekFrom, Write};
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create(true);
        let mut file = self.root.open_with(named(path)?, &options).map_err(|e| io_err(path, e))?;
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
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).read(true).create_new(true);
        self.root.open_with(named(path)?, &options).map_err(|e| io_err(path, e))
    }

    /// Bytes in regular files at or below `path`.
    pub fn size_of(&self, path: &str) -> Result<u64> {
        let rel = named(path)?;
        let meta = self.root.symlink_metadata(&rel).map_err(|e| io_err(path, e))?;
        if !meta.is_dir() {
            return Ok(if meta.is_file() { meta.len() } else { 0 });
        }
        let mut total = 0;
        walk(&self.root.open_dir(&rel).map_err(|e| io_err(path, e))?, Path::new(""), &mut |_, m| {
            if m.is_file() {
                total += m.len();
            }
            Visit::Continue
        })
        .map_err(|e| io_err(path, e))?;
        Ok(total)
    }

    /// Give `path` and everything below it to `(uid, gid)`. Each entry is opened through the
    /// handle and changed by descriptor, so a link is never followed out.
    pub fn chown_tree(&self, path: &str, (uid, gid): (u32, u32)) -> Result<()> {
        use cap_std::fs::OpenOptionsExt;
        let rel = relative(path)?;
        let chown_one = |rel: &Path| -> io::Result<()> {
            let meta =
                if rel.as_os_str().is_empty() { self.root.dir_metadata()? } else { self.root.symlink_metadata(rel)? };
            if !(meta.is_file() || meta.is_dir()) {
                return Ok(());
            }
            let mut options = cap_std::fs::OpenOptions::new();
            // Non-blocking, so a file swapped for a FIFO meanwhile cannot hang the open.
            options.read(true).custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits());
            // The root handle itself is an O_PATH descriptor, which fchown refuses: open it anew.
            let target = if rel.as_os_str().is_empty() { Path::new(".") } else { rel };
            let handle = self.root.open_with(target, &options)?.into_std();
            nix::unistd::fchown(&handle, Some(nix::unistd::Uid::from_raw(uid)), Some(nix::unistd::Gid::from_raw(gid)))
                .map_err(io::Error::from)
        };
        chown_one(&rel).map_err(|e| io_err(path, e))?;
        if self.root.symlink_metadata(&rel).map(|m| m.is_dir()).unwrap_or(rel.as_os_str().is_empty()) {
            let mut failure = None;
            walk(&self.dir(path)?, &rel, &mut |entry, _| match chown_one(entry) {
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
        let mut options = cap_std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        self.root.open_with(named(path)?, &options).map(|_| ()).map_err(|e| io_err(path, e))
    }

    /// Copy a file or a directory tree (links are not copied); `to` must not exist.
    pub fn copy(&self, from: &str, to: &str) -> Result<u64> {
        let (src, dst) = (named(from)?, named(to)?);
        if self.root.symlink_metadata(&dst).is_ok() {
            return Err(Error::conflict(format!("{to} already exists")));
        }
        let meta = self.root.symlink_metadata(&src).map_err(|e| io_err(from, e))?;
        if meta.is_dir() {
            if dst.starts_with(&src) {
                return Err(Error::invalid("cannot copy a directory into itself"));
            }
            self.root.create_dir(&dst).map_err(|e| io_err(to, e))?;
            let (src_dir, dst_dir) = (
                self.root.open_dir(&src).map_err(|e| io_err(from, e))?,
                self.root.open_dir(&dst).map_err(|e| io_err(to, e))?,
            );
            copy_tree(&src_dir, &dst_dir, 0).map_err(|e| io_err(from, e))
        } else if meta.is_file() {
            self.root.copy(&src, &self.root, &dst).map_err(|e| io_err(from, e))
        } else {
            Err(Error::invalid(format!("{from} is a link: copy what it points to")))
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
        .map_err(|e| io_err(path, e))?;
        Ok(out)
    }

    /// Bytes in regular files below the root.
    pub fn usage(&self) -> Result<u64> {
        let mut total = 0u64;
        walk(&self.root, Path::new(""), &mut |_, meta| {
            if meta.is_file() {
                total += meta.len();
            }
            Visit::Continue
        })
        .map_err(|e| io_err("/", e))?;
        Ok(total)
    }

    /// A file's contents.
    pub fn read(&self, path: &str) -> Result<Vec<u8>> {
        self.root.read(named(path)?).map_err(|e| io_err(path, e))
    }

    /// Create or replace a file.
    pub fn write(&self, path: &str, data: &[u8]) -> Result<()> {
        self.root.write(named(path)?, data).map_err(|e| io_err(path, e))
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

    /// Change permission bits (setuid, setgid and sticky bits are never set).
    pub fn chmod(&self, path: &str, mode: u32) -> Result<()> {
        use cap_std::fs::PermissionsExt;
        self.root.set_permissions(named(path)?, Permissions::from_mode(mode & 0o777)).map_err(|e| io_err(path, e))
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{PermissionsExt, symlink};

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
}
