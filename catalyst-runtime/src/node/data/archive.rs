//! Archives of server files: packing a tree beneath a directory handle, and unpacking into
//! one safely. Unpacking trusts nothing in the archive: absolute paths and `..` are refused,
//! links, hard links and devices are skipped, setuid/setgid/sticky bits are dropped, every
//! write goes through the handle (so a link already on disk cannot lead out), and the bytes
//! written are counted against a budget — a decompression bomb stops at the disk limit.

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::{Dir, Permissions, PermissionsExt};
use catalyst_core::model::ArchiveFormat;
use catalyst_core::{Error, Result};

use super::sandbox::{
    MAX_DEPTH, Visit, create_dir_as, create_exclusive, give_fd, io_err, open_dir_nofollow, relative, walk,
};

/// What an unpack did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Unpacked {
    /// Files and directories written.
    pub entries: u64,
    /// Bytes written.
    pub bytes: u64,
    /// Links, devices and other entries skipped.
    pub skipped: u64,
}

/// Names to leave out of a pack (gitignore-like globs, matched against the path from the root,
/// and exact paths).
#[derive(Debug, Clone)]
pub struct Ignore {
    globs: globset::GlobSet,
    paths: Vec<PathBuf>,
}

impl Ignore {
    /// Leave nothing out.
    pub fn none() -> Self {
        Self { globs: globset::GlobSet::empty(), paths: Vec::new() }
    }

    /// Also leave out this exact path (an archive being written into the tree it packs).
    pub fn and_path(mut self, path: PathBuf) -> Self {
        self.paths.push(path);
        self
    }

    /// One pattern per line; `#` comments and blank lines ignored. A pattern without `/` matches
    /// at any depth; a leading `/` anchors it at the root; a trailing `/` is dropped.
    pub fn parse(text: &str) -> Result<Self> {
        let mut set = globset::GlobSetBuilder::new();
        for line in text.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
            let pattern = line.trim_end_matches('/');
            let pattern = match pattern.strip_prefix('/') {
                Some(anchored) => anchored.to_string(),
                None if !pattern.contains('/') => format!("**/{pattern}"),
                None => pattern.to_string(),
            };
            let glob = globset::GlobBuilder::new(&pattern)
                .literal_separator(true)
                .build()
                .map_err(|e| Error::invalid(format!("ignore pattern {line}: {e}")))?;
            set.add(glob);
        }
        let globs = set.build().map_err(|e| Error::invalid(format!("ignore patterns: {e}")))?;
        Ok(Self { globs, paths: Vec::new() })
    }

    fn matches(&self, path: &Path) -> bool {
        self.paths.iter().any(|p| p == path) || self.globs.is_match(path)
    }
}

/// An archive's error about `what` (an entry's path, or "the archive" for its bytes): the
/// bytes of a bad archive are `invalid_input`, file system errors are mapped as everywhere else
/// ([`io_err`]), naming the entry.
fn archive_err(what: &str, e: io::Error) -> Error {
    if e.raw_os_error().is_none() {
        match e.kind() {
            io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof => {
                return Error::invalid(format!("not a valid archive: {e}"));
            }
            io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
                return Error::quota_exceeded("the disk limit of the server was reached");
            }
            _ => {}
        }
    }
    io_err(what, e)
}

/// A writer that fails once more than `budget` bytes went through it.
#[derive(Debug)]
pub struct Limited<W> {
    inner: W,
    left: u64,
}

impl<W> Limited<W> {
    /// Allow `budget` bytes into `inner`.
    pub fn new(inner: W, budget: u64) -> Self {
        Self { inner, left: budget }
    }

    /// The writer.
    pub fn into_inner(self) -> W {
        self.inner
    }
}

impl<W: Write> Write for Limited<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if buf.len() as u64 > self.left {
            return Err(io::Error::new(io::ErrorKind::QuotaExceeded, "disk limit"));
        }
        let n = self.inner.write(buf)?;
        self.left -= n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<W: Seek> Seek for Limited<W> {
    fn seek(&mut self, pos: io::SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Pack `paths` (relative to `root`, recursing into directories, links stored as links) into
/// `out`. Returns the writer (after the archive's trailer).
pub fn pack<W: Write + Seek>(
    root: &Dir,
    paths: &[PathBuf],
    format: ArchiveFormat,
    ignore: &Ignore,
    out: W,
) -> Result<W> {
    match format {
        ArchiveFormat::Zip => pack_zip(root, paths, ignore, out),
        _ => pack_stream(root, paths, format, ignore, None, out),
    }
}

/// Pack as tar, tar.gz or tar.zst into any writer (backups stream into non-seekable sinks).
/// `progress` counts the bytes of the files read so far.
pub fn pack_stream<W: Write>(
    root: &Dir,
    paths: &[PathBuf],
    format: ArchiveFormat,
    ignore: &Ignore,
    progress: Option<&AtomicU64>,
    out: W,
) -> Result<W> {
    match format {
        ArchiveFormat::Tar => tar_into(root, paths, ignore, progress, out),
        ArchiveFormat::TarGz => {
            let gz = flate2::write::GzEncoder::new(out, flate2::Compression::fast());
            tar_into(root, paths, ignore, progress, gz)?
                .finish()
                .map_err(|e| archive_err("the archive being written", e))
        }
        ArchiveFormat::TarZst => {
            let writing = |e| archive_err("the archive being written", e);
            let mut zst = zstd::Encoder::new(out, 3).map_err(writing)?;
            // One worker: compression runs beside the reading, like `tar | zstd`.
            zst.multithread(1).map_err(writing)?;
            tar_into(root, paths, ignore, progress, zst)?.finish().map_err(writing)
        }
        ArchiveFormat::Zip => Err(Error::invalid("zip needs a seekable destination")),
    }
}

/// Every entry to pack, in order: the named paths and what lies below them. Errors name the
/// entry they are about.
fn each_entry(
    root: &Dir,
    paths: &[PathBuf],
    ignore: &Ignore,
    mut visit: impl FnMut(&Path, &cap_std::fs::Metadata) -> io::Result<()>,
) -> Result<()> {
    let mut failure: Option<Error> = None;
    for path in paths {
        let named = if path.as_os_str().is_empty() { "/".to_string() } else { path.display().to_string() };
        let below = if path.as_os_str().is_empty() {
            None
        } else {
            let meta = root.symlink_metadata(path).map_err(|e| archive_err(&named, e))?;
            visit(path, &meta).map_err(|e| archive_err(&named, e))?;
            if !meta.is_dir() {
                continue;
            }
            Some(open_dir_nofollow(root, path).map_err(|e| archive_err(&named, e))?)
        };
        let (start, base) = match &below {
            None => (root, Path::new("")),
            Some(dir) => (dir, path.as_path()),
        };
        walk(start, base, &mut |rel, meta| {
            if ignore.matches(rel) {
                return Visit::SkipDir;
            }
            match visit(rel, meta) {
                Ok(()) => Visit::Continue,
                Err(e) => {
                    failure = Some(archive_err(&rel.display().to_string(), e));
                    Visit::Stop
                }
            }
        })
        .map_err(|e| archive_err(&named, e))?;
        if let Some(e) = failure.take() {
            return Err(e);
        }
    }
    Ok(())
}

/// A file to pack, opened without blocking; `None` when it is no longer a regular file (it was
/// swapped for a FIFO or a device since it was listed: left out, like those).
fn open_to_pack(root: &Dir, rel: &Path) -> io::Result<Option<cap_std::fs::File>> {
    match super::sandbox::open_regular(root, rel) {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.raw_os_error().is_none() && e.kind() == io::ErrorKind::InvalidInput => Ok(None),
        Err(e) if e.raw_os_error() == Some(nix::errno::Errno::ENXIO as i32) => Ok(None),
        Err(e) => Err(e),
    }
}

/// A zip error as the I/O error it carries, if it is one (so a full disk stays a full disk).
fn zip_io(e: zip::result::ZipError) -> io::Error {
    match e {
        zip::result::ZipError::Io(e) => e,
        other => io::Error::other(other),
    }
}

fn tar_into<W: Write>(
    root: &Dir,
    paths: &[PathBuf],
    ignore: &Ignore,
    progress: Option<&AtomicU64>,
    out: W,
) -> Result<W> {
    use cap_std::fs::MetadataExt;
    let mut builder = tar::Builder::new(out);
    each_entry(root, paths, ignore, |rel, meta| {
        let mut header = tar::Header::new_gnu();
        header.set_mode(meta.mode() & 0o777);
        header.set_mtime(meta.mtime().max(0) as u64);
        if meta.is_symlink() {
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            let target = root.read_link_contents(rel)?;
            builder.append_link(&mut header, rel, target)
        } else if meta.is_dir() {
            header.set_entry_type(tar::EntryType::Directory);
            header.set_size(0);
            builder.append_data(&mut header, rel, io::empty())
        } else if meta.is_file() {
            let Some(file) = open_to_pack(root, rel)? else { return Ok(()) };
            // The size comes from the open file: a file growing meanwhile is cut at that size.
            let size = file.metadata()?.len();
            header.set_entry_type(tar::EntryType::Regular);
            header.set_size(size);
            builder.append_data(&mut header, rel, file.take(size))?;
            if let Some(p) = progress {
                p.fetch_add(size, Ordering::Relaxed);
            }
            Ok(())
        } else {
            Ok(()) // sockets, fifos, devices: nothing to keep
        }
    })?;
    builder.into_inner().map_err(|e| archive_err("the archive being written", e))
}

fn pack_zip<W: Write + Seek>(root: &Dir, paths: &[PathBuf], ignore: &Ignore, out: W) -> Result<W> {
    use cap_std::fs::MetadataExt;
    let mut zip = zip::ZipWriter::new(out);
    each_entry(root, paths, ignore, |rel, meta| {
        let name = rel.to_string_lossy();
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated)
            .unix_permissions(meta.mode() & 0o777)
            .large_file(meta.len() >= u32::MAX as u64);
        if meta.is_dir() && !meta.is_symlink() {
            zip.add_directory(name, options).map_err(zip_io)
        } else if meta.is_file() {
            let Some(mut file) = open_to_pack(root, rel)? else { return Ok(()) };
            zip.start_file(name, options).map_err(zip_io)?;
            io::copy(&mut file, &mut zip).map(|_| ())
        } else {
            Ok(())
        }
    })?;
    zip.finish().map_err(|e| archive_err("the archive being written", zip_io(e)))
}

/// Unpack `input` into `dest`, writing at most `budget` bytes.
pub fn unpack<R: Read + Seek>(input: R, format: ArchiveFormat, dest: &Dir, budget: u64) -> Result<Unpacked> {
    unpack_as(input, format, dest, budget, None)
}

/// Unpack `input` into `dest`, writing at most `budget` bytes, everything created given to
/// `owner`. The entries are first written into a hidden staging directory inside `dest`, then
/// checked against what `dest` holds (a directory, a link, a FIFO or a device where a file goes
/// is refused; a regular file is replaced) and moved in: a failed unpack (a bad archive, the
/// disk limit, something in the way) changes nothing in `dest`.
pub fn unpack_as<R: Read + Seek>(
    input: R,
    format: ArchiveFormat,
    dest: &Dir,
    budget: u64,
    owner: Option<(u32, u32)>,
) -> Result<Unpacked> {
    match format {
        ArchiveFormat::Zip => staged(dest, budget, owner, |w| unzip(input, w)),
        _ => unpack_stream_as(input, format, dest, budget, owner),
    }
}

/// Unpack a tar, tar.gz or tar.zst stream.
pub fn unpack_stream<R: Read>(input: R, format: ArchiveFormat, dest: &Dir, budget: u64) -> Result<Unpacked> {
    unpack_stream_as(input, format, dest, budget, None)
}

/// Unpack a tar, tar.gz or tar.zst stream as [`unpack_as`] does.
pub fn unpack_stream_as<R: Read>(
    input: R,
    format: ArchiveFormat,
    dest: &Dir,
    budget: u64,
    owner: Option<(u32, u32)>,
) -> Result<Unpacked> {
    match format {
        ArchiveFormat::Tar => staged(dest, budget, owner, |w| untar(input, w)),
        ArchiveFormat::TarGz => staged(dest, budget, owner, |w| untar(flate2::read::GzDecoder::new(input), w)),
        ArchiveFormat::TarZst => {
            let decoder = zstd::Decoder::new(input).map_err(|e| archive_err("the archive", e))?;
            staged(dest, budget, owner, |w| untar(decoder, w))
        }
        ArchiveFormat::Zip => Err(Error::invalid("zip needs a seekable source")),
    }
}

/// An entry's path made relative and checked; absolute paths and `..` are refused.
fn entry_path(raw: &Path) -> Result<PathBuf> {
    let text = raw.to_str().ok_or_else(|| Error::invalid("an archive entry's name is not UTF-8"))?;
    if text.starts_with('/') {
        return Err(Error::denied(format!("archive entry {text} is an absolute path")));
    }
    relative(text).map_err(|_| Error::denied(format!("archive entry {text} leads outside")))
}

/// What each written entry costs against the budget besides its bytes (an inode and a block),
/// so an archive of millions of empty files stops too.
const ENTRY_COST: u64 = 4096;

/// Run `extract` into a fresh staging directory inside `dest`, then move what it wrote into
/// `dest`. The staging directory is removed in every case (after a crash it stays behind,
/// hidden and owned by `owner`, for the tenant to delete).
fn staged(
    dest: &Dir,
    budget: u64,
    owner: Option<(u32, u32)>,
    extract: impl FnOnce(&mut Writer<'_>) -> Result<()>,
) -> Result<Unpacked> {
    let name = PathBuf::from(format!(".catalyst-unpack-{:016x}", rand::random::<u64>()));
    create_dir_as(dest, &name, owner).map_err(|e| archive_err("the staging directory", e))?;
    let outcome = (|| {
        let staging = open_dir_nofollow(dest, &name).map_err(|e| archive_err("the staging directory", e))?;
        let mut w = Writer { dest: &staging, owner, budget, charged: 0, done: Unpacked::default() };
        extract(&mut w)?;
        let done = w.done;
        check_in(&staging, dest)?;
        move_in(&staging, dest, Path::new(""))?;
        Ok(done)
    })();
    if let Err(e) = dest.remove_dir_all(&name) {
        tracing::warn!(staging = %name.display(), error = %e, "an unpack's staging directory could not be removed");
    }
    outcome
}

/// Why the staged entry `rel` (a directory when `dir`) cannot replace what `dest` holds there
/// (`None`: nothing is there, or a directory meets a directory, or a file a regular file).
fn in_the_way(rel: &Path, dir: bool, there: &cap_std::fs::Metadata) -> Option<Error> {
    let at = rel.display();
    if there.is_symlink() {
        Some(Error::conflict(format!("{at}: a link is in the way of the archive's entry")))
    } else if dir {
        (!there.is_dir()).then(|| Error::conflict(format!("{at}: a file is in the way of the archive's directory")))
    } else if there.is_dir() {
        Some(Error::conflict(format!("{at} is a directory: the archive's file cannot replace it")))
    } else if !there.is_file() {
        Some(Error::invalid(format!("{at} is not a regular file: the archive's file cannot replace it")))
    } else {
        None
    }
}

/// Refuse the unpack before anything moves when something in `dest` is in the way.
fn check_in(staging: &Dir, dest: &Dir) -> Result<()> {
    let mut failure = None;
    walk(staging, Path::new(""), &mut |rel, staged| match dest.symlink_metadata(rel) {
        // Nothing there: the whole staged subtree moves in at once.
        Err(e) if e.kind() == io::ErrorKind::NotFound => Visit::SkipDir,
        Err(e) => {
            failure = Some(archive_err(&rel.display().to_string(), e));
            Visit::Stop
        }
        Ok(there) => match in_the_way(rel, staged.is_dir(), &there) {
            None => Visit::Continue,
            Some(e) => {
                failure = Some(e);
                Visit::Stop
            }
        },
    })
    .map_err(|e| archive_err("the staging directory", e))?;
    failure.map_or(Ok(()), Err)
}

/// Move the staged entries into `dest`: a missing entry moves with everything below it, a
/// directory that exists is merged into, a regular file replaced (never written through).
fn move_in(staging: &Dir, dest: &Dir, base: &Path) -> Result<()> {
    if base.components().count() > MAX_DEPTH {
        return Err(Error::invalid("the archive's directory tree is too deep"));
    }
    let at = |name: &std::ffi::OsStr| base.join(name).display().to_string();
    for entry in staging.entries().map_err(|e| archive_err("the staging directory", e))? {
        let entry = entry.map_err(|e| archive_err("the staging directory", e))?;
        let name = entry.file_name();
        let staged = entry.metadata().map_err(|e| archive_err(&at(&name), e))?;
        match dest.symlink_metadata(&name) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(archive_err(&at(&name), e)),
            Ok(there) => {
                if let Some(e) = in_the_way(&base.join(&name), staged.is_dir(), &there) {
                    return Err(e);
                }
                if staged.is_dir() {
                    let (from, to) = (
                        open_dir_nofollow(staging, Path::new(&name)).map_err(|e| archive_err(&at(&name), e))?,
                        open_dir_nofollow(dest, Path::new(&name)).map_err(|e| archive_err(&at(&name), e))?,
                    );
                    move_in(&from, &to, &base.join(&name))?;
                    continue;
                }
            }
        }
        staging.rename(&name, dest, &name).map_err(|e| archive_err(&at(&name), e))?;
    }
    Ok(())
}

struct Writer<'a> {
    /// The staging directory.
    dest: &'a Dir,
    owner: Option<(u32, u32)>,
    budget: u64,
    /// Bytes plus [`ENTRY_COST`] per entry: what the budget is checked against.
    charged: u64,
    done: Unpacked,
}

impl Writer<'_> {
    fn charge_entry(&mut self) -> Result<()> {
        self.charged = self.charged.saturating_add(ENTRY_COST);
        if self.charged > self.budget {
            return Err(Error::quota_exceeded("extracting would exceed the disk limit of the server"));
        }
        Ok(())
    }

    /// Each missing directory of `path` created and given to the owner.
    fn directories(&mut self, path: &Path) -> Result<()> {
        let mut at = PathBuf::new();
        for part in path.components() {
            at.push(part);
            match create_dir_as(self.dest, &at, self.owner) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                    let meta =
                        self.dest.symlink_metadata(&at).map_err(|e| archive_err(&at.display().to_string(), e))?;
                    if !meta.is_dir() {
                        return Err(Error::conflict(format!(
                            "archive entry {}: a file of the archive is in the way of a directory",
                            at.display()
                        )));
                    }
                }
                Err(e) => return Err(archive_err(&at.display().to_string(), e)),
            }
        }
        Ok(())
    }

    fn directory(&mut self, path: &Path) -> Result<()> {
        if !path.as_os_str().is_empty() {
            self.charge_entry()?;
            self.directories(path)?;
            self.done.entries += 1;
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, mode: u32, mut data: impl Read) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(Error::invalid("an archive entry names the destination itself"));
        }
        let at = path.display().to_string();
        self.charge_entry()?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.directories(parent)?;
        }
        // The same name twice in an archive: the later entry wins.
        match self.dest.symlink_metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(Error::conflict(format!("archive entry {at}: a directory of the archive is in the way")));
            }
            Ok(_) => self.dest.remove_file(path).map_err(|e| archive_err(&at, e))?,
            Err(_) => {}
        }
        let mut file = create_exclusive(self.dest, path).map_err(|e| archive_err(&at, e))?;
        give_fd(&file, self.owner).map_err(|e| archive_err(&at, e))?;
        // Never trust the declared size: count what arrives, one byte past the budget fails.
        let room = self.budget.saturating_sub(self.charged);
        let written = io::copy(&mut (&mut data).take(room.saturating_add(1)), &mut file).map_err(|e| {
            if e.raw_os_error().is_none() { archive_err("the archive", e) } else { archive_err(&at, e) }
        })?;
        self.done.bytes += written;
        self.charged = self.charged.saturating_add(written);
        if self.charged > self.budget {
            return Err(Error::quota_exceeded("extracting would exceed the disk limit of the server"));
        }
        file.set_permissions(Permissions::from_mode(mode & 0o777)).map_err(|e| archive_err(&at, e))?;
        self.done.entries += 1;
        Ok(())
    }
}

fn untar<R: Read>(input: R, w: &mut Writer<'_>) -> Result<()> {
    let mut archive = tar::Archive::new(input);
    for entry in archive.entries().map_err(|e| archive_err("the archive", e))? {
        let entry = entry.map_err(|e| archive_err("the archive", e))?;
        let path = entry_path(&entry.path().map_err(|e| archive_err("the archive", e))?)?;
        let mode = entry.header().mode().unwrap_or(0o644);
        match entry.header().entry_type() {
            tar::EntryType::Directory => w.directory(&path)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => w.file(&path, mode, entry)?,
            _ => w.done.skipped += 1,
        }
    }
    Ok(())
}

fn unzip<R: Read + Seek>(input: R, w: &mut Writer<'_>) -> Result<()> {
    let mut archive = zip::ZipArchive::new(input).map_err(|e| Error::invalid(format!("not a valid zip: {e}")))?;
    for i in 0..archive.len() {
        let file = archive.by_index(i).map_err(|e| Error::invalid(format!("not a valid zip: {e}")))?;
        let name = file.name().map_err(|e| Error::invalid(format!("not a valid zip: {e}")))?.into_owned();
        let path = entry_path(Path::new(&name))?;
        let mode = file.unix_mode().unwrap_or(0o644);
        if file.is_symlink() {
            w.done.skipped += 1;
        } else if file.is_dir() {
            w.directory(&path)?;
        } else if file.is_file() {
            w.file(&path, mode, file)?;
        } else {
            w.done.skipped += 1;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use cap_std::ambient_authority;

    use catalyst_core::ErrorKind;

    use super::*;

    #[test]
    fn every_format_round_trips_and_ignores_what_it_is_told() {
        let tmp = tempfile::tempdir().expect("tmp");
        let src = tmp.path().join("src");
        std::fs::create_dir_all(src.join("world/region")).expect("dirs");
        std::fs::create_dir_all(src.join("logs")).expect("logs");
        std::fs::write(src.join("world/level.dat"), vec![7u8; 100_000]).expect("level");
        std::fs::write(src.join("logs/latest.log"), b"log").expect("log");
        std::fs::write(src.join("server.properties"), b"motd=hi").expect("props");
        let root = Dir::open_ambient_dir(&src, ambient_authority()).expect("root");
        let ignore = Ignore::parse("# logs are noise\nlogs/\n*.tmp\n").expect("ignore");
        for format in [ArchiveFormat::Tar, ArchiveFormat::TarGz, ArchiveFormat::TarZst, ArchiveFormat::Zip] {
            let packed = pack(&root, &[PathBuf::new()], format, &ignore, io::Cursor::new(Vec::new())).expect("pack");
            let out = tmp.path().join(format!("{format:?}"));
            std::fs::create_dir_all(&out).expect("out");
            let dest = Dir::open_ambient_dir(&out, ambient_authority()).expect("dest");
            let done = unpack(io::Cursor::new(packed.into_inner()), format, &dest, u64::MAX).expect("unpack");
            assert_eq!(done.bytes, 100_007, "{format:?}: {done:?}");
            assert_eq!(std::fs::read(out.join("world/level.dat")).expect("level").len(), 100_000, "{format:?}");
            assert!(out.join("world/region").is_dir(), "{format:?}");
            assert!(!out.join("logs").exists(), "{format:?}: ignored");
        }
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut builder = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut header = tar::Header::new_gnu();
            header.set_size(data.len() as u64);
            header.set_mode(0o644);
            header.set_cksum();
            builder.append_data(&mut header, name, *data).expect("entry");
        }
        builder.into_inner().expect("tar")
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> =
            std::fs::read_dir(dir).expect("dir").map(|e| e.expect("e").file_name().to_string_lossy().into()).collect();
        names.sort();
        names
    }

    #[test]
    fn nothing_in_the_way_is_written_through_and_a_failed_unpack_changes_nothing() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().expect("tmp");
        let out = tmp.path().join("out");
        std::fs::create_dir_all(out.join("dir")).expect("dir");
        std::fs::write(out.join("target"), b"target").expect("target");
        std::os::unix::fs::symlink("target", out.join("link")).expect("link");
        nix::unistd::mkfifo(&out.join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
        let dest = Dir::open_ambient_dir(&out, ambient_authority()).expect("dest");
        let before = names(&out);
        for (entry, kind) in [
            ("pipe", ErrorKind::InvalidInput),
            ("link", ErrorKind::Conflict),
            ("dir", ErrorKind::Conflict),
            ("target/under-a-file", ErrorKind::Conflict),
        ] {
            let tar = tar_of(&[("new/a.txt", b"a"), ("fresh.txt", b"b"), (entry, b"evil")]);
            let (tx, rx) = std::sync::mpsc::channel();
            let dest = dest.try_clone().expect("clone");
            std::thread::spawn(move || {
                let _ = tx.send(unpack(io::Cursor::new(tar), ArchiveFormat::Tar, &dest, u64::MAX));
            });
            let done = rx.recv_timeout(std::time::Duration::from_secs(10)).expect("the unpack hung");
            let e = done.expect_err(entry);
            assert_eq!(e.kind(), kind, "{entry}: {e}");
            assert_eq!(names(&out), before, "{entry}: nothing changed, no staging left");
        }
        assert_eq!(std::fs::read(out.join("target")).expect("target"), b"target", "not written through the link");
        // Over the limit: nothing either.
        let big = vec![0u8; 100_000];
        let e =
            unpack(io::Cursor::new(tar_of(&[("x/y/z", &big)])), ArchiveFormat::Tar, &dest, 50_000).expect_err("quota");
        assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
        assert_eq!(names(&out), before);

        // A good archive: a regular file replaced, directories merged, later duplicates win,
        // everything created given to the owner.
        std::fs::write(out.join("dir/old.txt"), b"old").expect("old");
        let tar = tar_of(&[("dir/new.txt", b"new"), ("target", b"replaced"), ("twice", b"1"), ("twice", b"2")]);
        let done =
            unpack_as(io::Cursor::new(tar), ArchiveFormat::Tar, &dest, u64::MAX, Some((4321, 4321))).expect("unpack");
        assert_eq!(done.entries, 4);
        assert_eq!(std::fs::read(out.join("dir/old.txt")).expect("old"), b"old");
        assert_eq!(std::fs::read(out.join("dir/new.txt")).expect("new"), b"new");
        assert_eq!(std::fs::read(out.join("target")).expect("target"), b"replaced");
        assert_eq!(std::fs::read(out.join("twice")).expect("twice"), b"2");
        assert!(!names(&out).iter().any(|n| n.starts_with(".catalyst-unpack")), "{:?}", names(&out));
        if nix::unistd::geteuid().is_root() {
            for file in ["dir/new.txt", "target", "twice"] {
                assert_eq!(std::fs::metadata(out.join(file)).expect("file").uid(), 4321, "{file}");
            }
        }
    }
}
