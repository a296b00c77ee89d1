//! Opens and ownership changes by descriptor beneath a directory handle: never blocking on a
//! FIFO, never following a link the tenant planted, checked on the opened handle.

use std::io;
use std::path::Path;

use cap_std::fs::{Dir, MetadataExt, OpenOptions, OpenOptionsExt};
use nix::fcntl::OFlag;

/// The error of an opened handle that is not a regular file (a FIFO, a device, a directory).
pub(crate) fn not_regular() -> io::Error {
    io::Error::new(io::ErrorKind::InvalidInput, "not a regular file")
}

/// Bytes an entry takes on disk: its allocated blocks (a sparse file counts what it holds, not
/// its apparent size).
pub(crate) fn allocated(meta: &cap_std::fs::Metadata) -> u64 {
    meta.blocks().saturating_mul(512)
}

/// Deepest directory nesting a walk (usage, search, copy, archives) follows.
pub(crate) const MAX_DEPTH: usize = 128;

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
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(not_regular());
    }
    // A hard link the game made to a file it does not own is somebody else's file: never
    // served nor changed.
    if foreign_link(&meta, dir.dir_metadata()?.uid()) {
        return Err(io::Error::new(io::ErrorKind::PermissionDenied, "a hard link to a file the server does not own"));
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
/// How many links of each multiply-linked inode (by device and inode) a tree holds.
pub(crate) type LinksInside = std::collections::HashMap<(u64, u64), u64>;

/// Is `meta` a hard link to a file that is not the server's: several links, another owner than
/// the directory it was reached from (`dir_uid`)? The node's secrets are such files when the
/// game could link them in (where the kernel's protected_hardlinks is off).
pub(crate) fn foreign_link(meta: &cap_std::fs::Metadata, dir_uid: u32) -> bool {
    meta.is_file() && meta.nlink() > 1 && meta.uid() != dir_uid
}

/// Give `rel` beneath `dir` to `owner` by descriptor (no link followed, no FIFO opened). A
/// file with several links is only given away when all of them are in the tree being given
/// (`links`): a link to a file outside it would hand that file over.
pub(crate) fn give_at(dir: &Dir, rel: &Path, owner: Option<(u32, u32)>, links: Option<&LinksInside>) -> io::Result<()> {
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
    if meta.is_file() && meta.nlink() > 1 {
        let inside = links.and_then(|l| l.get(&(meta.dev(), meta.ino()))).copied().unwrap_or(0);
        if inside < meta.nlink() {
            return Ok(());
        }
    }
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
    if let Err(e) = give_at(dir, rel, owner, None) {
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
