//! A server's files, reachable only beneath its root. Every operation goes through a cap-std
//! directory handle of the root: paths are resolved component by component beneath it (openat2
//! `RESOLVE_BENEATH` where the kernel has it), so `..`, absolute symlinks and symlinks pointing
//! out are refused at the moment of use, with no check-then-use window.

use std::io;
use std::path::{Component, Path, PathBuf};

use cap_std::ambient_authority;
use cap_std::fs::{Dir, Permissions};
use catalyst_core::{Error, ErrorKind, Result};

/// One directory entry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FileEntry {
    /// Name within its directory.
    pub name: String,
    /// `file`, `directory` or `symlink`.
    pub kind: String,
    /// Size in bytes.
    pub size: u64,
    /// Unix permission bits.
    pub mode: u32,
    /// Last modification, seconds since the epoch.
    pub modified: i64,
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

/// A path relative to the root: a leading `/` means the root; `..`, NUL and the root itself
/// (where a file is needed) are refused before the file system is touched.
fn relative(path: &str) -> Result<PathBuf> {
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

    /// Entries of a directory, by name.
    pub fn list(&self, path: &str) -> Result<Vec<FileEntry>> {
        use cap_std::fs::MetadataExt;
        let rel = relative(path)?;
        let dir = if rel.as_os_str().is_empty() { self.root.try_clone() } else { self.root.open_dir(&rel) };
        let dir = dir.map_err(|e| io_err(path, e))?;
        let mut out = Vec::new();
        for entry in dir.entries().map_err(|e| io_err(path, e))? {
            let entry = entry.map_err(|e| io_err(path, e))?;
            let meta = entry.metadata().map_err(|e| io_err(path, e))?;
            let kind = if meta.is_symlink() {
                "symlink"
            } else if meta.is_dir() {
                "directory"
            } else {
                "file"
            };
            out.push(FileEntry {
                name: entry.file_name().to_string_lossy().into_owned(),
                kind: kind.into(),
                size: meta.len(),
                mode: meta.mode() & 0o7777,
                modified: meta.mtime(),
            });
        }
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
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
            listed.iter().map(|e| (e.name.as_str(), e.kind.as_str())).collect::<Vec<_>>(),
            vec![("level.dat", "file"), ("region", "directory")]
        );
        assert_eq!(listed[0].mode, 0o755, "setuid never set");
        s.rename("world/level.dat", "world/region/level.dat").expect("rename");
        s.remove("world").expect("remove");
        assert_eq!(s.read("world/region/level.dat").expect_err("gone").kind(), ErrorKind::NotFound);
        let root = s.list("/").expect("root");
        assert!(root.iter().any(|e| e.name == "out" && e.kind == "symlink"));
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
