//! Copies within a server's files: holes kept, the room left respected, links, FIFOs and
//! devices never copied, nothing left behind by a failure.

use std::io;
use std::path::Path;

use cap_std::fs::{Dir, MetadataExt, OpenOptions, Permissions, PermissionsExt};

use super::fd::{MAX_DEPTH, create_dir_as, create_exclusive, give_fd, open_dir_nofollow, open_file_at};

/// Which side of a copy an error is about.
#[derive(Debug, Clone, Copy)]
pub(super) enum Side {
    From,
    To,
}

/// A copy's error, with the side it is about.
pub(super) type CopyResult<T> = std::result::Result<T, (Side, io::Error)>;

pub(super) fn on<T>(side: Side, r: io::Result<T>) -> CopyResult<T> {
    r.map_err(|e| (side, e))
}

/// Copy one regular file into a new file, holes kept as holes (only the data extents are
/// written), the permission bits kept; `room` goes down by the bytes written and the copy fails
/// with `QuotaExceeded` before writing more than it. A failed copy leaves nothing behind.
pub(super) fn copy_file(
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
pub(super) fn copy_counted(from: &mut impl io::Read, to: &mut impl io::Write) -> CopyResult<u64> {
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

pub(super) fn copy_tree(
    src: &Dir,
    dst: &Dir,
    depth: usize,
    room: &mut u64,
    owner: Option<(u32, u32)>,
) -> CopyResult<u64> {
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
