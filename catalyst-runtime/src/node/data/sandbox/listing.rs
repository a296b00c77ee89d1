//! Directory listings that hold about a page, whatever the directory's size.

use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::io;

use cap_std::fs::{Dir, MetadataExt};
use catalyst_core::Result;
use catalyst_core::model::{FileEntry, FileKind};

use super::errors::io_err;

/// Names a deep listing page scans per pass over its directory: the most it holds at once.
pub(super) const LIST_SCAN: usize = 65_536;

pub(super) fn entry_of(name: String, meta: &cap_std::fs::Metadata) -> FileEntry {
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

/// The names ranked `offset..offset + limit` (in byte order) of a directory, holding at most
/// `scan + limit` names at once whatever its size. A page within the first `scan` names takes
/// one pass over the directory (keeping the `offset + limit` smallest names); a deeper one first
/// skips `scan` names per pass, each pass keeping the `scan` smallest names above the last one
/// skipped.
pub(super) fn page_names(dir: &Dir, offset: usize, limit: usize, scan: usize) -> io::Result<Vec<OsString>> {
    page_names_holding(dir, offset, limit, scan).map(|(names, _)| names)
}

/// [`page_names`], and the most names it held at once.
pub(super) fn page_names_holding(
    dir: &Dir,
    mut offset: usize,
    limit: usize,
    scan: usize,
) -> io::Result<(Vec<OsString>, usize)> {
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
    pub(super) entries: cap_std::fs::ReadDir,
    pub(super) path: String,
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
