//! The data plane of a node: each server's files behind a [`Sandbox`](sandbox::Sandbox), the
//! disk use counted against its limit, file operations, archives, backups and restores, and
//! backup storage.
//!
//! Architecture invariant: no data-plane module imports the daemon. They work through a
//! [`ServerFiles`] handle the daemon builds after its checks, and report through its
//! [`EventSink`](super::events::EventSink); the daemon depends on them, never the reverse.

pub(crate) mod archive;
pub(crate) mod backup;
pub(crate) mod backup_target;
pub(crate) mod disk_usage;
pub(crate) mod files;
pub(crate) mod local_archives;
pub(crate) mod sandbox;
pub(crate) mod server_files;

use std::path::{Path, PathBuf};

use catalyst_core::id::ServerId;
pub(crate) use server_files::ServerFiles;

/// The directory of server `id` below a node's data directory.
pub(crate) fn server_dir(data_dir: &Path, id: ServerId) -> PathBuf {
    data_dir.join("servers").join(id.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Every `.rs` file below `dir`.
    fn sources(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read the source directory").flatten() {
            let path = entry.path();
            if path.is_dir() {
                sources(&path, out);
            } else if path.extension().is_some_and(|e| e == "rs") {
                out.push(path);
            }
        }
    }

    /// Architecture invariant: the data plane (everything in `node/data/`, the SFTP server and
    /// the event fan-out) works through `ServerFiles` and `EventSink`; it never names the
    /// daemon, so the daemon can change without touching it and no import circle comes back.
    #[test]
    fn no_data_plane_module_imports_the_daemon() {
        let node = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/node");
        let mut files = vec![node.join("data.rs"), node.join("sftp.rs"), node.join("events.rs")];
        sources(&node.join("data"), &mut files);
        assert!(files.len() > 10, "the data plane's files were not found: {files:?}");
        let forbidden = ["daemon::", "NodeDaemon", "super::daemon", "mod daemon"];
        let mut offences = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
            for (n, line) in text.lines().enumerate() {
                // This test names what it forbids.
                if line.contains("let forbidden") {
                    continue;
                }
                if let Some(word) = forbidden.iter().find(|w| line.contains(*w)) {
                    offences.push(format!("{}:{}: {word}", file.display(), n + 1));
                }
            }
        }
        assert!(offences.is_empty(), "no data-plane module imports the daemon, but:\n{}", offences.join("\n"));
    }
}
