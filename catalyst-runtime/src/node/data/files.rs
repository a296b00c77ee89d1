//! File operations on one server's directory: each runs on a blocking thread against the
//! server's [`Sandbox`], with the server's disk limit enforced on every path that writes.

use std::path::PathBuf;

use catalyst_core::model::{ArchiveFormat, FileOp, FileReply};
use catalyst_core::{Error, Result};

use super::archive::{self, Ignore, Limited};
use super::sandbox::{Sandbox, relative};
use super::server_files::ServerFiles;

/// Largest chunk one `Read` returns.
pub const MAX_CHUNK: u32 = 1 << 20;
/// Most entries one search returns.
const SEARCH_LIMIT: usize = 500;

/// Run one file operation in the server's directory, in one of its turns.
pub(crate) async fn run(files: ServerFiles, op: FileOp) -> Result<FileReply> {
    // Bounded: a tenant can occupy at most its server's turns, all servers the node's.
    let turn = files.turn().await?;
    tokio::task::spawn_blocking(move || {
        let _turn = turn;
        let sandbox = Sandbox::open(files.root())?;
        apply(&sandbox, &files, op)
    })
    .await
    .map_err(|e| Error::internal("a file operation panicked", e))?
}

/// The paths `op` reads or changes must not be on the template's denylist (listing them is fine).
fn check_denylist(files: &ServerFiles, op: &FileOp) -> Result<()> {
    let paths: Vec<&String> = match op {
        FileOp::List { .. } | FileOp::Stat { .. } | FileOp::Search { .. } | FileOp::Usage => vec![],
        FileOp::Read { path, .. } | FileOp::Write { path, .. } | FileOp::Create { path, .. } => vec![path],
        FileOp::Chmod { path, .. } => vec![path],
        FileOp::Delete { paths } => paths.iter().collect(),
        FileOp::Rename { from, to } | FileOp::Copy { from, to } => vec![from, to],
        FileOp::Compress { paths, destination, .. } => paths.iter().chain([destination]).collect(),
        FileOp::Decompress { path, destination } => vec![path, destination],
    };
    paths.into_iter().try_for_each(|p| files.check_allowed(p))
}

fn apply(sb: &Sandbox, files: &ServerFiles, op: FileOp) -> Result<FileReply> {
    check_denylist(files, &op)?;
    let owner = files.owner();
    let give = |path: &str| owner.map_or(Ok(()), |o| sb.chown_tree(path, o));
    match op {
        FileOp::List { path, offset } => {
            let offset = usize::try_from(offset).unwrap_or(usize::MAX);
            Ok(FileReply::Entries { entries: sb.list_page(&path, offset, FileOp::LIST_PAGE)? })
        }
        FileOp::Stat { path } => Ok(FileReply::Entry { entry: sb.stat(&path)? }),
        FileOp::Read { path, offset, length } => {
            let (data, size) = sb.read_at(&path, offset, length.min(MAX_CHUNK) as usize)?;
            Ok(FileReply::Chunk { data, size })
        }
        FileOp::Write { path, offset, data, truncate } => {
            // Counted in allocated blocks, like the measured usage: the write may allocate up
            // to its length (even inside a sparse file's hole); the difference is settled after.
            let created = sb.symlink_metadata(&path).is_err();
            let before = sb.allocated(&path)?;
            let reserved = data.len() as u64;
            files.reserve(sb, reserved)?;
            let written = sb.write_at(&path, offset, &data, truncate);
            let after = sb.allocated(&path).unwrap_or(before);
            files.adjust(after as i64 - before as i64 - reserved as i64);
            written?;
            if created {
                give(&path)?;
            }
            Ok(FileReply::Entry { entry: sb.stat(&path)? })
        }
        FileOp::Create { path, directory } => {
            if directory {
                sb.mkdir_as(&path, owner)?;
            } else {
                sb.create_file(&path)?;
                give(&path)?;
            }
            Ok(FileReply::Entry { entry: sb.stat(&path)? })
        }
        FileOp::Delete { paths } => {
            if paths.is_empty() {
                return Err(Error::invalid("paths: name at least one"));
            }
            let outcome = paths.iter().try_for_each(|p| sb.remove(p));
            files.forget_usage();
            outcome.map(|()| FileReply::Done)
        }
        FileOp::Rename { from, to } => sb.rename(&from, &to).map(|()| FileReply::Done),
        FileOp::Copy { from, to } => {
            let _job = files.bulk_job()?;
            // Refused at once when what the source takes does not fit; the copy itself stops
            // at the room left (it writes only data, holes stay holes).
            let room = files.room(sb, sb.size_of(&from)?)?;
            let copied = sb.copy_as(&from, &to, room, owner);
            files.forget_usage();
            copied?;
            Ok(FileReply::Entry { entry: sb.stat(&to)? })
        }
        FileOp::Chmod { path, mode } => sb.chmod(&path, mode).map(|()| FileReply::Done),
        FileOp::Compress { paths, destination, format } => {
            if paths.is_empty() {
                return Err(Error::invalid("paths: name at least one"));
            }
            let _job = files.bulk_job()?;
            let room = files.room(sb, 0)?;
            let rels = paths.iter().map(|p| relative(p)).collect::<Result<Vec<PathBuf>>>()?;
            let file = sb.create_new(&destination)?;
            if let Err(e) = super::sandbox::give_fd(&file, owner) {
                let _ = sb.remove_file(&destination);
                return Err(super::sandbox::io_err(&destination, e));
            }
            let ignore = Ignore::none().and_path(relative(&destination)?);
            let packed = archive::pack(sb.root(), &rels, format, &ignore, Limited::new(file, room));
            files.forget_usage();
            if let Err(e) = packed {
                let _ = sb.remove_file(&destination);
                return Err(e);
            }
            Ok(FileReply::Entry { entry: sb.stat(&destination)? })
        }
        FileOp::Decompress { path, destination } => {
            let format = ArchiveFormat::from_name(&path)
                .ok_or_else(|| Error::invalid("path: not a .tar, .tar.gz, .tgz, .tar.zst or .zip archive"))?;
            let _job = files.bulk_job()?;
            let room = files.room(sb, 0)?;
            let input = sb.open_file(&path)?;
            // Everything the unpack creates belongs to the server's user, and a failed unpack
            // leaves nothing behind: entries are staged and moved in only when all are written,
            // and the destination's directories made for it are removed again.
            let created = if relative(&destination)?.as_os_str().is_empty() {
                Vec::new()
            } else {
                sb.mkdir_as(&destination, owner)?
            };
            let unpacked = sb.dir(&destination).and_then(|dest| archive::unpack_as(input, format, &dest, room, owner));
            files.forget_usage();
            if unpacked.is_err() {
                sb.remove_created(&created);
            }
            let done = unpacked?;
            Ok(FileReply::Extracted { entries: done.entries, bytes: done.bytes, skipped: done.skipped })
        }
        FileOp::Search { path, query } => {
            if query.trim().is_empty() || query.len() > 255 {
                return Err(Error::invalid("query: 1 to 255 characters"));
            }
            Ok(FileReply::Entries { entries: sb.search(&path, query.trim(), SEARCH_LIMIT)? })
        }
        FileOp::Usage => {
            files.forget_usage();
            Ok(FileReply::Usage { bytes: files.used(sb)? })
        }
    }
}
