//! The sandbox against hostile trees: escapes, FIFOs, sparse files, huge directories, owners.

use std::os::unix::fs::{FileTypeExt, PermissionsExt, symlink};

use catalyst_core::model::FileKind;

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
        listed.iter().map(|e| (e.name.as_str(), e.kind)).collect::<Vec<_>>(),
        vec![("level.dat", FileKind::File), ("region", FileKind::Directory)]
    );
    assert_eq!(listed[0].mode, 0o755, "setuid never set");
    s.rename("world/level.dat", "world/region/level.dat").expect("rename");
    s.remove("world").expect("remove");
    assert_eq!(s.read("world/region/level.dat").expect_err("gone").kind(), ErrorKind::NotFound);
    let root = s.list("/").expect("root");
    assert!(root.iter().any(|e| e.name == "out" && e.kind == FileKind::Symlink));
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

/// Run `f` on a thread; fail the test when it does not answer within 10 s (a hang).
fn promptly<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(std::time::Duration::from_secs(10)).unwrap_or_else(|_| panic!("{what} hung on a FIFO"))
}

#[test]
fn fifos_are_refused_at_once_by_every_open() {
    let (tmp, s, _) = setup();
    let root = tmp.path().join("root");
    for name in ["pipe", ".up.bin.upload"] {
        nix::unistd::mkfifo(&root.join(name), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    }
    let s = std::sync::Arc::new(s);
    let invalid = |what: &str, r: Result<()>| match r {
        Err(e) => assert_eq!(e.kind(), ErrorKind::InvalidInput, "{what}: {e}"),
        Ok(()) => panic!("{what}: a FIFO was accepted"),
    };
    let t = s.clone();
    invalid("read", promptly("read", move || t.read("pipe").map(|_| ())));
    let t = s.clone();
    invalid("read_at", promptly("read_at", move || t.read_at("pipe", 0, 10).map(|_| ())));
    let t = s.clone();
    invalid("write_at", promptly("write_at", move || t.write_at(".up.bin.upload", 0, b"x", true).map(|_| ())));
    let t = s.clone();
    invalid("write", promptly("write", move || t.write("pipe", b"x")));
    let t = s.clone();
    invalid("copy", promptly("copy", move || t.copy("pipe", "copied").map(|_| ())));
    let t = s.clone();
    invalid("chmod", promptly("chmod", move || t.chmod("pipe", 0o600)));
    for access in [
        Access { read: true, ..Default::default() },
        Access { write: true, ..Default::default() },
        Access { write: true, create: true, truncate: true, ..Default::default() },
    ] {
        let t = s.clone();
        invalid("open", promptly("open", move || t.open_file_with("pipe", access).map(|_| ())));
    }
    // With a reader holding the FIFO open, a write open succeeds: the handle is refused.
    let _reader = {
        use std::os::unix::fs::OpenOptionsExt;
        std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
            .open(root.join(".up.bin.upload"))
            .expect("reader")
    };
    let t = s.clone();
    invalid("write_at (reader)", promptly("write_at", move || t.write_at(".up.bin.upload", 0, b"x", true).map(|_| ())));
    assert!(!root.join("copied").exists());
    assert!(std::fs::symlink_metadata(root.join("pipe")).expect("pipe").file_type().is_fifo());
}

#[test]
fn usage_counts_allocated_blocks_and_expired_partials_are_swept() {
    let (tmp, s, _) = setup();
    let root = tmp.path().join("root");
    // A 1 GiB sparse file holds nothing.
    std::fs::File::create(root.join("sparse")).expect("sparse").set_len(1 << 30).expect("set_len");
    std::fs::write(root.join("data"), vec![1u8; 1 << 20]).expect("data");
    let used = s.usage().expect("usage");
    assert!((1 << 20..4 << 20).contains(&used), "counted {used} bytes");
    assert!(s.size_of("sparse").expect("size") < 1 << 20);
    // A copy of a sparse file stays sparse and fits in little room.
    s.copy_as("sparse", "sparse-copy", 1 << 20, None).expect("copy");
    assert_eq!(std::fs::metadata(root.join("sparse-copy")).expect("copy").len(), 1 << 30);
    assert!(s.size_of("sparse-copy").expect("size") < 1 << 20);
    // A copy that does not fit fails and leaves nothing.
    let e = s.copy_as("data", "data-copy", 1000, None).expect_err("no room");
    assert_eq!(e.kind(), ErrorKind::QuotaExceeded, "{e}");
    assert!(!root.join("data-copy").exists());

    // Partials of uploads: a fresh one counts; one untouched for longer than the TTL goes.
    std::fs::write(root.join(".fresh.upload"), vec![1u8; 1 << 20]).expect("fresh");
    let stale = std::fs::File::create(root.join(".stale.upload")).expect("stale");
    std::io::Write::write_all(&mut &stale, &vec![1u8; 1 << 20]).expect("write");
    let day = std::time::Duration::from_secs(25 * 3600);
    stale.set_modified(std::time::SystemTime::now() - day).expect("mtime");
    std::fs::write(root.join("not-a-partial.upload"), b"kept").expect("other");
    let cutoff = std::time::SystemTime::now() - std::time::Duration::from_secs(24 * 3600);
    let swept = s.usage_sweeping(Some(cutoff)).expect("usage");
    assert!(!root.join(".stale.upload").exists(), "the expired partial is gone");
    assert!(root.join(".fresh.upload").exists() && root.join("not-a-partial.upload").exists());
    assert!((2 << 20..6 << 20).contains(&swept), "counted {swept} bytes");
}

#[test]
fn listing_pages_hold_only_about_a_page() {
    let (tmp, s, _) = setup();
    let dir = tmp.path().join("root/many");
    std::fs::create_dir_all(&dir).expect("many");
    let n = 1000;
    for i in 0..n {
        std::fs::write(dir.join(format!("f{:04}", (i * 7919) % n)), b"").expect("file");
    }
    let all: Vec<String> = (0..n).map(|i| format!("f{i:04}")).collect();
    let handle = s.dir("many").expect("dir");
    for (offset, limit) in [(0, 10), (5, 50), (60, 100), (128, 64), (250, 100), (990, 100), (1000, 5), (5000, 5)] {
        let (names, held) = page_names_holding(&handle, offset, limit, 64).expect("page");
        let names: Vec<String> = names.iter().map(|n| n.to_string_lossy().into_owned()).collect();
        let want: Vec<String> = all.iter().skip(offset).take(limit).cloned().collect();
        assert_eq!(names, want, "offset {offset}, limit {limit}");
        assert!(held <= 64 + limit, "offset {offset}: held {held} names of {n}");
        let page = s.list_page_scanning("many", offset, limit, 64).expect("list");
        assert_eq!(page.iter().map(|e| e.name.clone()).collect::<Vec<_>>(), want);
    }
    assert_eq!(s.list_page("many", 0, 3).expect("page").len(), 3);
}

#[test]
fn made_directories_belong_to_the_owner_and_errors_name_the_path() {
    use std::os::unix::fs::MetadataExt as _;
    let (tmp, s, _) = setup();
    let root = tmp.path().join("root");
    let created = s.mkdir_as("a/b/c", Some((4321, 4321))).expect("mkdir");
    assert_eq!(created.len(), 3);
    if nix::unistd::geteuid().is_root() {
        for dir in ["a", "a/b", "a/b/c"] {
            assert_eq!(std::fs::metadata(root.join(dir)).expect("dir").uid(), 4321, "{dir}");
        }
    }
    s.remove_created(&created);
    assert!(!root.join("a").exists());
    s.write("file", b"x").expect("file");
    symlink("loop", root.join("loop")).expect("loop");
    s.mkdir("adir").expect("adir");
    for (what, e, kind) in [
        ("under a file", s.read("file/x").expect_err("enotdir"), ErrorKind::InvalidInput),
        ("a loop", s.read("loop").expect_err("eloop"), ErrorKind::InvalidInput),
        ("a long name", s.write(&"n".repeat(300), b"x").expect_err("long"), ErrorKind::InvalidInput),
        ("a directory as a file", s.read("adir").expect_err("dir"), ErrorKind::InvalidInput),
    ] {
        assert_eq!(e.kind(), kind, "{what}: {e}");
    }
    s.mkdir("d1/x").expect("d1");
    s.mkdir("d2").expect("d2");
    let e = s.rename("d2", "d1").expect_err("not empty");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    let e = s.rename("file", "d1").expect_err("onto a directory");
    assert_eq!(e.kind(), ErrorKind::Conflict, "{e}");
    assert!(e.message().contains("file"), "names the path: {e}");
}

/// A hard link the game made to a file it does not own (the node's secret, where the kernel's
/// protected_hardlinks is off) is refused on every open; links among its own files are fine.
#[test]
fn hard_links_to_files_the_server_does_not_own_are_refused() {
    if !nix::unistd::geteuid().is_root() {
        return; // chown needs root; CI runs this as root
    }
    let (tmp, _, outside) = setup();
    let root = tmp.path().join("root");
    let server = Some(12_345);
    std::os::unix::fs::chown(&root, server, server).expect("give the root away");
    std::fs::hard_link(outside.join("secret"), root.join("stolen")).expect("link the secret in");
    std::fs::write(root.join("mine"), b"mine").expect("mine");
    std::os::unix::fs::chown(root.join("mine"), server, server).expect("own it");
    std::fs::hard_link(root.join("mine"), root.join("also-mine")).expect("own link");
    let sandbox = Sandbox::open(&root).expect("sandbox");
    denied(sandbox.read("stolen"));
    denied(sandbox.write_at("stolen", 0, b"x", false));
    denied(sandbox.copy("stolen", "copy"));
    denied(sandbox.chmod("stolen", 0o666));
    assert_eq!(std::fs::read(outside.join("secret")).expect("secret"), b"secret", "untouched");
    assert_eq!(sandbox.read("also-mine").expect("own hard link"), b"mine");

    // Giving the tree away (after an install, a restore) hands over links whose every link is
    // inside, and never the one that leads out.
    std::fs::write(root.join("installed"), b"i").expect("installed");
    std::fs::hard_link(root.join("installed"), root.join("installed-too")).expect("link inside");
    sandbox.chown_tree("", (12_345, 12_345)).expect("chown");
    use std::os::unix::fs::MetadataExt as _;
    let meta = |p: &Path| std::fs::metadata(p).expect("meta");
    assert_eq!(meta(&outside.join("secret")).uid(), 0, "the secret stays root's");
    assert_eq!(meta(&outside.join("secret")).mode() & 0o777, 0o600);
    assert_eq!(meta(&root.join("installed-too")).uid(), 12_345, "links inside the tree are given");
}
