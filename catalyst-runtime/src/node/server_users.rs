//! Which uid each server runs as, and the permissions of a node's directories that keep a
//! server out of the node's own files and out of its neighbours'.
//!
//! On a runtime that shares the host's file system ([`Isolation::Uid`]) every server gets a
//! uid of its own from a range (kept in its state file across restarts), its directory is
//! `0700` and owned by that uid, and the node's directories are `0711` (traversable, not
//! listable) or `0700` (state, which holds other servers' variables). Containers
//! ([`Isolation::Namespaces`]) see only their own mount, so all of them may share one uid.

use std::collections::HashSet;
use std::ops::Range;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use catalyst_core::ports::Isolation;
use catalyst_core::{Error, Result};

/// The default range of per-server uids: far above the ones distributions hand out.
pub const DEFAULT_SERVER_UIDS: Range<u32> = 2_000_000..2_100_000;

/// The lowest uid of `range` no server in `taken` holds.
pub(super) fn allocate(range: &Range<u32>, taken: &HashSet<u32>) -> Result<u32> {
    range.clone().find(|uid| !taken.contains(uid)).ok_or_else(|| {
        let why = format!("every uid of {}..{} is taken: no room for another server", range.start, range.end);
        Error::quota_exceeded(why)
    })
}

/// What the operator should know about a runtime's isolation, for the node's start-up line.
pub fn describe(isolation: Isolation, allow_unconfined: bool) -> String {
    match isolation {
        Isolation::Namespaces => {
            "servers run in containers (own namespaces, no capabilities beyond a small set)".into()
        }
        Isolation::Uid => "servers run as plain processes, each as its own unprivileged uid without \
                           capabilities or new privileges; their directories are 0700"
            .into(),
        Isolation::None if allow_unconfined => "WARNING: servers run UNCONFINED as this process's own user and can \
                                                read everything it can (allowed by the operator: only for servers \
                                                you trust)"
            .into(),
        Isolation::None => "servers cannot be confined here (plain processes need root to run each server as \
                            its own uid, and util-linux's setpriv): they will not start unless the operator \
                            allows unconfined servers"
            .into(),
    }
}

/// The refusal a node gives when asked to run a server it cannot confine.
pub(super) fn unconfined_refusal() -> Error {
    Error::unavailable(
        "this node cannot confine servers (plain processes without root): they would run as the node's own user \
         and could read its secrets; run the node as root, use containerd, or allow unconfined servers \
         (--allow-unconfined) for servers you trust",
    )
}

/// Make the node's directories private: the data directory and `servers/` traversable by the
/// server uids but not listable, `state/` (other servers' definitions) root's alone.
pub(super) fn prepare_node_dirs(data_dir: &Path) -> std::io::Result<()> {
    for (dir, mode) in
        [(data_dir.to_path_buf(), 0o711), (data_dir.join("servers"), 0o711), (data_dir.join("state"), 0o700)]
    {
        std::fs::create_dir_all(&dir)?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// For binaries, at start: everything this process creates from now on is its own alone
/// (umask `077`: databases, secrets, keys), `data_dir` is traversable but not listable
/// (`0711`), and what is already in it becomes `0600`/`0700` — except the node's directory
/// (`node`), which [`prepare_node_dirs`] keeps traversable for the servers below it.
pub fn make_private(data_dir: &Path) -> std::io::Result<()> {
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o077));
    std::fs::set_permissions(data_dir, std::fs::Permissions::from_mode(0o711))?;
    for entry in std::fs::read_dir(data_dir)?.flatten() {
        let meta = entry.path().symlink_metadata()?;
        if entry.file_name() == "node" || meta.file_type().is_symlink() {
            continue;
        }
        let mode = if meta.is_dir() { 0o700 } else { 0o600 };
        std::fs::set_permissions(entry.path(), std::fs::Permissions::from_mode(mode))?;
    }
    Ok(())
}

/// Every ancestor of `dir` a server uid must traverse to reach its directory, that it cannot.
pub fn untraversable_ancestors(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut at = dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf());
    while let Some(parent) = at.parent().map(Path::to_path_buf) {
        if let Ok(meta) = std::fs::metadata(&parent)
            && meta.permissions().mode() & 0o001 == 0
        {
            out.push(parent.clone());
        }
        at = parent;
    }
    out
}

/// Create a server's directory (`0700`) and give it to `user`; a tree that belongs to someone
/// else (an older uid, files the node wrote as root) is handed over whole.
pub(super) fn prepare_server_dir(dir: &Path, user: Option<(u32, u32)>) -> std::io::Result<()> {
    use std::os::unix::fs::MetadataExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let Some((uid, gid)) = user else { return Ok(()) };
    if !nix::unistd::geteuid().is_root() {
        return Ok(());
    }
    let meta = std::fs::symlink_metadata(dir)?;
    if meta.uid() != uid || meta.gid() != gid {
        // Through a handle of its root: the tenant controls what is inside.
        super::data::sandbox::Sandbox::open(dir)
            .and_then(|s| s.chown_tree("", (uid, gid)))
            .map_err(|e| std::io::Error::other(e.message().to_string()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allocation_takes_the_lowest_free_uid_and_fails_when_full() {
        let range = 10..13;
        let taken: HashSet<u32> = [10, 12].into();
        assert_eq!(allocate(&range, &taken).ok(), Some(11));
        let full: HashSet<u32> = [10, 11, 12].into();
        assert_eq!(allocate(&range, &full).err().map(|e| e.kind()), Some(catalyst_core::ErrorKind::QuotaExceeded));
    }

    #[test]
    fn node_dirs_are_private() {
        let dir = tempfile::tempdir().expect("tempdir");
        prepare_node_dirs(dir.path()).expect("prepare");
        let mode = |p: &Path| std::fs::metadata(p).expect("meta").permissions().mode() & 0o777;
        assert_eq!(mode(dir.path()), 0o711);
        assert_eq!(mode(&dir.path().join("servers")), 0o711);
        assert_eq!(mode(&dir.path().join("state")), 0o700);
    }
}
