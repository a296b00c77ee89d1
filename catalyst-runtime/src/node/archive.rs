//! Archives of server files: packing a tree beneath a directory handle, and unpacking into
//! one safely. Unpacking trusts nothing in the archive: absolute paths and `..` are refused,
//! links, hard links and devices are skipped, setuid/setgid/sticky bits are dropped, every
//! write goes through the handle (so a link already on disk cannot lead out), and the bytes
//! written are counted against a budget — a decompression bomb stops at the disk limit.

use std::io::{self, Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cap_std::fs::{Dir, OpenOptions, Permissions, PermissionsExt};
use catalyst_core::model::ArchiveFormat;
use catalyst_core::{Error, ErrorKind, Result};

use super::sandbox::{Visit, relative, walk};

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

fn archive_err(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::PermissionDenied => Error::new(ErrorKind::PermissionDenied, e.to_string()),
        io::ErrorKind::StorageFull | io::ErrorKind::QuotaExceeded => {
            Error::new(ErrorKind::QuotaExceeded, "the disk limit of the server was reached")
        }
        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof | io::ErrorKind::InvalidInput => {
            Error::invalid(format!("not a valid archive: {e}"))
        }
        _ => Error::internal("archive operation failed", e),
    }
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
            tar_into(root, paths, ignore, progress, gz)?.finish().map_err(archive_err)
        }
        ArchiveFormat::TarZst => {
            let mut zst = zstd::Encoder::new(out, 3).map_err(archive_err)?;
            // One worker: compression runs beside the reading, like `tar | zstd`.
            zst.multithread(1).map_err(archive_err)?;
            tar_into(root, paths, ignore, progress, zst)?.finish().map_err(archive_err)
        }
        ArchiveFormat::Zip => Err(Error::invalid("zip needs a seekable destination")),
    }
}

/// Every entry to pack, in order: the named paths and what lies below them.
fn each_entry(
    root: &Dir,
    paths: &[PathBuf],
    ignore: &Ignore,
    mut visit: impl FnMut(&Path, &cap_std::fs::Metadata) -> io::Result<()>,
) -> io::Result<()> {
    let mut failure = None;
    for path in paths {
        if path.as_os_str().is_empty() {
            walk(root, Path::new(""), &mut |rel, meta| {
                if ignore.matches(rel) {
                    return Visit::SkipDir;
                }
                match visit(rel, meta) {
                    Ok(()) => Visit::Continue,
                    Err(e) => {
                        failure = Some(e);
                        Visit::Stop
                    }
                }
            })?;
        } else {
            let meta = root.symlink_metadata(path)?;
            visit(path, &meta)?;
            if meta.is_dir() {
                walk(&root.open_dir(path)?, path, &mut |rel, meta| {
                    if ignore.matches(rel) {
                        return Visit::SkipDir;
                    }
                    match visit(rel, meta) {
                        Ok(()) => Visit::Continue,
                        Err(e) => {
                            failure = Some(e);
                            Visit::Stop
                        }
                    }
                })?;
            }
        }
        if let Some(e) = failure.take() {
            return Err(e);
        }
    }
    Ok(())
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
            let file = super::sandbox::open_regular(root, rel)?;
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
    })
    .map_err(archive_err)?;
    builder.into_inner().map_err(archive_err)
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
            zip.add_directory(name, options).map_err(io::Error::other)
        } else if meta.is_file() {
            zip.start_file(name, options).map_err(io::Error::other)?;
            io::copy(&mut super::sandbox::open_regular(root, rel)?, &mut zip).map(|_| ())
        } else {
            Ok(())
        }
    })
    .map_err(archive_err)?;
    zip.finish().map_err(|e| archive_err(io::Error::other(e)))
}

/// Unpack `input` into `dest`, writing at most `budget` bytes.
pub fn unpack<R: Read + Seek>(input: R, format: ArchiveFormat, dest: &Dir, budget: u64) -> Result<Unpacked> {
    match format {
        ArchiveFormat::Zip => unzip(input, dest, budget),
        _ => unpack_stream(input, format, dest, budget),
    }
}

/// Unpack a tar, tar.gz or tar.zst stream.
pub fn unpack_stream<R: Read>(input: R, format: ArchiveFormat, dest: &Dir, budget: u64) -> Result<Unpacked> {
    match format {
        ArchiveFormat::Tar => untar(input, dest, budget),
        ArchiveFormat::TarGz => untar(flate2::read::GzDecoder::new(input), dest, budget),
        ArchiveFormat::TarZst => untar(zstd::Decoder::new(input).map_err(archive_err)?, dest, budget),
        ArchiveFormat::Zip => Err(Error::invalid("zip needs a seekable source")),
    }
}

/// An entry's path made relative and checked; absolute paths and `..` are refused.
fn entry_path(raw: &Path) -> Result<PathBuf> {
    let text = raw.to_str().ok_or_else(|| Error::invalid("an archive entry's name is not UTF-8"))?;
    if text.starts_with('/') {
        return Err(Error::new(ErrorKind::PermissionDenied, format!("archive entry {text} is an absolute path")));
    }
    relative(text).map_err(|_| Error::new(ErrorKind::PermissionDenied, format!("archive entry {text} leads outside")))
}

/// What each written entry costs against the budget besides its bytes (an inode and a block),
/// so an archive of millions of empty files stops too.
const ENTRY_COST: u64 = 4096;

struct Writer<'a> {
    dest: &'a Dir,
    budget: u64,
    /// Bytes plus [`ENTRY_COST`] per entry: what the budget is checked against.
    charged: u64,
    done: Unpacked,
}

impl<'a> Writer<'a> {
    fn new(dest: &'a Dir, budget: u64) -> Self {
        Self { dest, budget, charged: 0, done: Unpacked::default() }
    }

    fn charge_entry(&mut self) -> Result<()> {
        self.charged = self.charged.saturating_add(ENTRY_COST);
        if self.charged > self.budget {
            return Err(Error::new(ErrorKind::QuotaExceeded, "extracting would exceed the disk limit of the server"));
        }
        Ok(())
    }

    fn directory(&mut self, path: &Path) -> Result<()> {
        if !path.as_os_str().is_empty() {
            self.charge_entry()?;
            self.dest.create_dir_all(path).map_err(archive_err)?;
            self.done.entries += 1;
        }
        Ok(())
    }

    fn file(&mut self, path: &Path, mode: u32, mut data: impl Read) -> Result<()> {
        if path.as_os_str().is_empty() {
            return Err(Error::invalid("an archive entry names the destination itself"));
        }
        self.charge_entry()?;
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            self.dest.create_dir_all(parent).map_err(archive_err)?;
        }
        let mut options = OpenOptions::new();
        options.write(true).create(true).truncate(true);
        let mut file = self.dest.open_with(path, &options).map_err(archive_err)?;
        // Never trust the declared size: count what arrives, one byte past the budget fails.
        let room = self.budget.saturating_sub(self.charged);
        let written = io::copy(&mut (&mut data).take(room.saturating_add(1)), &mut file).map_err(archive_err)?;
        self.done.bytes += written;
        self.charged = self.charged.saturating_add(written);
        if self.charged > self.budget {
            drop(file);
            let _ = self.dest.remove_file(path);
            return Err(Error::new(ErrorKind::QuotaExceeded, "extracting would exceed the disk limit of the server"));
        }
        file.set_permissions(Permissions::from_mode(mode & 0o777)).map_err(archive_err)?;
        self.done.entries += 1;
        Ok(())
    }
}

fn untar<R: Read>(input: R, dest: &Dir, budget: u64) -> Result<Unpacked> {
    let mut archive = tar::Archive::new(input);
    let mut w = Writer::new(dest, budget);
    for entry in archive.entries().map_err(archive_err)? {
        let entry = entry.map_err(archive_err)?;
        let path = entry_path(&entry.path().map_err(archive_err)?)?;
        let mode = entry.header().mode().unwrap_or(0o644);
        match entry.header().entry_type() {
            tar::EntryType::Directory => w.directory(&path)?,
            tar::EntryType::Regular | tar::EntryType::Continuous => w.file(&path, mode, entry)?,
            _ => w.done.skipped += 1,
        }
    }
    Ok(w.done)
}

fn unzip<R: Read + Seek>(input: R, dest: &Dir, budget: u64) -> Result<Unpacked> {
    let mut archive = zip::ZipArchive::new(input).map_err(|e| Error::invalid(format!("not a valid zip: {e}")))?;
    let mut w = Writer::new(dest, budget);
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
    Ok(w.done)
}

#[cfg(test)]
mod tests {
    use cap_std::ambient_authority;

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
}
