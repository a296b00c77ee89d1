//! A server's files as the file manager, SFTP and backups see them.

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct FileEntry {
    /// Name within its directory (for search results: the path from the server root).
    pub name: String,
    /// What it is.
    pub kind: FileKind,
    /// Size in bytes.
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
    /// Last modification, seconds since the epoch.
    pub modified: i64,
}

/// The kind of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FileKind {
    /// A regular file.
    File,
    /// A directory.
    Directory,
    /// A symbolic link (never followed out of the server directory).
    Symlink,
    /// A FIFO, socket or device: listed, never opened.
    Other,
}

/// Archive formats the file manager writes and reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ArchiveFormat {
    /// Uncompressed tar (read only for decompress; written too).
    Tar,
    /// tar + gzip.
    TarGz,
    /// tar + zstd.
    TarZst,
    /// zip (deflate).
    Zip,
}

impl ArchiveFormat {
    /// Guess the format from a file name's extension.
    pub fn from_name(name: &str) -> Option<Self> {
        let n = name.to_ascii_lowercase();
        if n.ends_with(".tar.gz") || n.ends_with(".tgz") {
            Some(Self::TarGz)
        } else if n.ends_with(".tar.zst") || n.ends_with(".tzst") {
            Some(Self::TarZst)
        } else if n.ends_with(".tar") {
            Some(Self::Tar)
        } else if n.ends_with(".zip") {
            Some(Self::Zip)
        } else {
            None
        }
    }
}

/// One file operation, relative to the server's directory. Paths are `/`-separated and never
/// trusted: the node resolves them beneath the server root.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "op")]
pub enum FileOp {
    /// Entries of a directory, by name: at most [`FileOp::LIST_PAGE`] from `offset`.
    List {
        /// Directory to list; empty or `/` is the server root.
        path: String,
        /// Entries to skip.
        #[serde(default)]
        offset: u64,
    },
    /// One entry's metadata.
    Stat {
        /// Entry to describe; empty or `/` is the server root.
        path: String,
    },
    /// Up to `length` bytes from `offset`.
    Read {
        /// File to read.
        path: String,
        /// Byte offset to read from; at or past the end reads nothing.
        offset: u64,
        /// At most this many bytes (the node caps it).
        length: u32,
    },
    /// Write `data` at `offset`; `offset == 0` with `truncate` replaces the file. A write past
    /// the end is refused (no holes), so an offset is also a resume point.
    Write {
        /// File to write; created if missing.
        path: String,
        /// Byte offset to write at; at most the current size.
        offset: u64,
        /// Bytes to write (base64 on the wire).
        #[serde(with = "crate::model::base64_bytes")]
        data: Vec<u8>,
        /// Cut the file at `offset + data.len()`.
        truncate: bool,
    },
    /// Create an empty file or a directory (with parents).
    Create {
        /// Path to create; a file must not exist yet, an existing directory is kept.
        path: String,
        /// A directory rather than a file.
        directory: bool,
    },
    /// Delete files, links or directories with their contents.
    Delete {
        /// Entries to delete (at least one); a directory goes with everything in it.
        paths: Vec<String>,
    },
    /// Move or rename.
    Rename {
        /// Existing entry to move.
        from: String,
        /// New path, in any directory of the server.
        to: String,
    },
    /// Copy a file or a directory tree.
    Copy {
        /// Existing file or directory to copy.
        from: String,
        /// To (must not exist).
        to: String,
    },
    /// Set permission bits (setuid, setgid and sticky are dropped).
    Chmod {
        /// File or directory (FIFOs and devices are refused).
        path: String,
        /// Permission bits as a number, e.g. `0o644` (420).
        mode: u32,
    },
    /// Pack entries of one directory into an archive.
    Compress {
        /// Paths to pack.
        paths: Vec<String>,
        /// Archive to write (must not exist).
        destination: String,
        /// Archive format to write.
        format: ArchiveFormat,
    },
    /// Unpack an archive into a directory, safely and within the disk limit.
    Decompress {
        /// Archive to unpack; its format is guessed from the extension.
        path: String,
        /// Target directory (created if missing).
        destination: String,
    },
    /// Entries whose name contains `query` (case-insensitive), below `path`.
    Search {
        /// Where to look.
        path: String,
        /// Name fragment.
        query: String,
    },
    /// Bytes used by the server directory.
    Usage,
}

impl FileOp {
    /// Most entries one listing returns (so an answer stays far below the link's frame size).
    pub const LIST_PAGE: usize = 2000;
}

/// A node's answer to a [`FileOp`].
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case", tag = "reply")]
pub enum FileReply {
    /// The operation succeeded and has nothing to return (delete, rename, chmod).
    Done,
    /// Entries (list, search).
    Entries {
        /// The entries found (a listing's page is in name order).
        entries: Vec<FileEntry>,
    },
    /// One entry (stat, create, write).
    Entry {
        /// The entry's metadata after the operation.
        entry: FileEntry,
    },
    /// Bytes read.
    Chunk {
        /// The bytes read, possibly fewer than asked (base64 on the wire).
        #[serde(with = "crate::model::base64_bytes")]
        data: Vec<u8>,
        /// Size of the whole file.
        size: u64,
    },
    /// What an extraction did.
    Extracted {
        /// Files and directories written.
        entries: u64,
        /// Bytes written.
        bytes: u64,
        /// Links, devices and other entries skipped.
        skipped: u64,
    },
    /// Bytes used.
    Usage {
        /// Disk space the server directory takes, in bytes.
        bytes: u64,
    },
}
