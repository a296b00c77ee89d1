//! The file manager over REST: streaming up and down, resumable uploads, archives, the disk
//! limit, and the security suite (traversal, links pointing out, tar and zip slip, a bomb).

use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::PathBuf;

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::api::{Api, error_code};

struct Files {
    api: Api,
    token: String,
    server: String,
}

impl Files {
    /// Alice's server (with `disk_mb`), stopped, on an in-process node.
    async fn new(disk_mb: u64) -> Self {
        let api = Api::new().await;
        let (node, template) = api.world().await;
        let (alice, token) = api.user("alice").await;
        let body = json!({"name": "files", "owner_id": alice, "node_id": node, "template_id": template,
            "allocations": [{"ip": "0.0.0.0", "port": 25565}], "limits": {"memory_mb": 512, "disk_mb": disk_mb}});
        let server = api.ok(Method::POST, "/api/servers", &api.admin, Some(body)).await;
        let server = server["id"].as_str().expect("id").to_string();
        api.wait_state(&server, &token, "stopped").await;
        std::fs::create_dir_all(api.dir.path().join("servers").join(&server)).expect("server directory");
        Self { api, token, server }
    }

    fn root(&self) -> PathBuf {
        self.api.dir.path().join("servers").join(&self.server)
    }

    fn outside(&self) -> PathBuf {
        let dir = self.api.dir.path().join("outside");
        std::fs::create_dir_all(&dir).expect("outside");
        dir
    }

    fn url(&self, route: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("/api/servers/{}/files{route}", self.server);
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&format!("{k}={}", urlencode(v)));
        }
        url
    }

    async fn json(
        &self,
        method: Method,
        route: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, Value) {
        let (status, v, _) = self.api.call(method, &self.url(route, query), Some(&self.token), body).await;
        (status, v)
    }

    async fn ok(&self, method: Method, route: &str, query: &[(&str, &str)], body: Option<Value>) -> Value {
        let (status, v) = self.json(method.clone(), route, query, body).await;
        assert!(status.is_success(), "{method} {route} {query:?}: {status} {v}");
        v
    }

    /// Raw request; returns status, headers and body bytes.
    async fn raw(
        &self,
        method: Method,
        route: &str,
        query: &[(&str, &str)],
        headers: &[(&str, String)],
        body: Body,
    ) -> (StatusCode, axum::http::HeaderMap, Vec<u8>) {
        let mut req = Request::builder()
            .method(method)
            .uri(self.url(route, query))
            .header("authorization", format!("Bearer {}", self.token));
        for (k, v) in headers {
            req = req.header(*k, v);
        }
        let res = self.api.router.clone().oneshot(req.body(body).expect("request")).await.expect("response");
        let (status, headers) = (res.status(), res.headers().clone());
        let bytes = axum::body::to_bytes(res.into_body(), 64 << 20).await.expect("body");
        (status, headers, bytes.to_vec())
    }

    async fn upload(&self, path: &str, data: Vec<u8>) -> StatusCode {
        self.raw(Method::POST, "/upload", &[("path", path)], &[], Body::from(data)).await.0
    }

    async fn download(&self, path: &str) -> (StatusCode, Vec<u8>) {
        let (status, _, body) = self.raw(Method::GET, "/download", &[("path", path)], &[], Body::empty()).await;
        (status, body)
    }

    /// Status and error code of a refused call.
    async fn refused(
        &self,
        method: Method,
        route: &str,
        query: &[(&str, &str)],
        body: Option<Value>,
    ) -> (StatusCode, String) {
        let (status, v) = self.json(method, route, query, body).await;
        assert!(!status.is_success(), "{route} {query:?} was allowed: {v}");
        (status, error_code(&v).to_string())
    }
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Pseudo-random bytes (incompressible enough to exercise the chunking).
use catalyst_core::testing::conformance::fixtures::noise as bytes;

const MIB: usize = 1 << 20;

#[tokio::test]
async fn files_stream_up_and_down_and_every_operation_works() {
    let f = Files::new(1024).await;
    let level = bytes(2 * MIB + 12345, 7);
    f.ok(Method::POST, "/create", &[], Some(json!({"path": "world/region", "directory": true}))).await;
    assert_eq!(f.upload("world/level.dat", level.clone()).await, StatusCode::CREATED);
    assert_eq!(std::fs::read(f.root().join("world/level.dat")).expect("on disk"), level);
    let (status, got) = f.download("/world/level.dat").await;
    assert_eq!((status, got.len()), (StatusCode::OK, level.len()));
    assert!(got == level, "downloaded bytes differ");

    let listed = f.ok(Method::GET, "", &[("path", "world")], None).await;
    let names: Vec<(&str, &str)> = listed
        .as_array()
        .expect("list")
        .iter()
        .map(|e| (e["name"].as_str().unwrap(), e["kind"].as_str().unwrap()))
        .collect();
    assert_eq!(names, vec![("level.dat", "file"), ("region", "directory")]);
    assert_eq!(listed[0]["size"], level.len() as u64);

    f.ok(Method::POST, "/copy", &[], Some(json!({"from": "world", "to": "world-copy"}))).await;
    assert_eq!(std::fs::read(f.root().join("world-copy/level.dat")).expect("copied"), level);
    f.ok(Method::POST, "/rename", &[], Some(json!({"from": "world-copy", "to": "old"}))).await;
    f.ok(Method::POST, "/chmod", &[], Some(json!({"path": "old/level.dat", "mode": "4755"}))).await;
    let old = f.ok(Method::GET, "", &[("path", "old")], None).await;
    assert_eq!(old[0]["mode"], 0o755, "setuid dropped: {old}");
    let found = f.ok(Method::GET, "/search", &[("query", "LEVEL")], None).await;
    let mut found: Vec<&str> = found.as_array().expect("found").iter().map(|e| e["name"].as_str().unwrap()).collect();
    found.sort();
    assert_eq!(found, vec!["/old/level.dat", "/world/level.dat"]);

    for archive in ["world.tar.gz", "world.tar.zst", "world.zip", "world.tar"] {
        let packed =
            f.ok(Method::POST, "/compress", &[], Some(json!({"paths": ["world"], "destination": archive}))).await;
        assert!(packed["size"].as_u64().expect("size") > 0, "{packed}");
        f.ok(Method::DELETE, "", &[("path", "world")], None).await;
        assert!(!f.root().join("world").exists());
        let out = f.ok(Method::POST, "/decompress", &[], Some(json!({"path": archive}))).await;
        assert_eq!(out["bytes"], level.len() as u64, "{archive}: {out}");
        assert!(std::fs::read(f.root().join("world/level.dat")).expect("restored") == level, "{archive} round trip");
        assert!(f.root().join("world/region").is_dir(), "{archive} keeps empty directories");
    }
    // An archive written inside the tree it packs does not contain itself.
    f.ok(Method::POST, "/compress", &[], Some(json!({"paths": ["/"], "destination": "all.tar"}))).await;
    let tar = std::fs::read(f.root().join("all.tar")).expect("all.tar");
    let names: Vec<String> = tar::Archive::new(&tar[..])
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").path().expect("path").display().to_string())
        .collect();
    assert!(names.contains(&"world/level.dat".to_string()) && !names.iter().any(|n| n == "all.tar"), "{names:?}");

    assert_eq!(f.json(Method::DELETE, "", &[("path", "old")], None).await.0, StatusCode::NO_CONTENT);
    let (status, code) = f.refused(Method::GET, "", &[("path", "old")], None).await;
    assert_eq!((status, code.as_str()), (StatusCode::NOT_FOUND, "not_found"));
    let (status, code) = f.refused(Method::POST, "/chmod", &[], Some(json!({"path": "world", "mode": "rwx"}))).await;
    assert_eq!((status, code.as_str()), (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input"));

    // Everything that changed files is in the audit log.
    let audit = f.api.ok(Method::GET, "/api/admin/audit-logs?action=file.&limit=100", &f.api.admin, None).await;
    let actions: Vec<&str> =
        audit["items"].as_array().expect("items").iter().map(|e| e["action"].as_str().unwrap()).collect();
    for action in [
        "file.upload",
        "file.download",
        "file.create",
        "file.copy",
        "file.rename",
        "file.chmod",
        "file.compress",
        "file.decompress",
        "file.delete",
    ] {
        assert!(actions.contains(&action), "{action} not audited: {actions:?}");
    }
}

#[tokio::test]
async fn an_interrupted_upload_resumes_where_it_broke() {
    let f = Files::new(1024).await;
    let data = bytes(3 * MIB + 777, 11);
    let cut = MIB + MIB / 2;
    let first: Vec<Result<Vec<u8>, std::io::Error>> = vec![
        Ok(data[..cut].to_vec()),
        Err(std::io::Error::new(std::io::ErrorKind::ConnectionReset, "client went away")),
    ];
    let (status, _, _) = f
        .raw(
            Method::POST,
            "/upload",
            &[("path", "big.bin")],
            &[("upload-length", data.len().to_string())],
            Body::from_stream(futures::stream::iter(first)),
        )
        .await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(!f.root().join("big.bin").exists(), "an incomplete upload is not put in place");

    let (status, headers, _) = f.raw(Method::HEAD, "/upload", &[("path", "big.bin")], &[], Body::empty()).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let offset: usize = headers["upload-offset"].to_str().expect("offset").parse().expect("number");
    assert_eq!(offset, cut);

    let wrong = [("upload-offset", "5".to_string()), ("upload-length", data.len().to_string())];
    let (status, _, _) =
        f.raw(Method::PATCH, "/upload", &[("path", "big.bin")], &wrong, Body::from(vec![0u8; 10])).await;
    assert_eq!(status, StatusCode::CONFLICT, "a wrong offset is refused");

    let resume = [("upload-offset", offset.to_string()), ("upload-length", data.len().to_string())];
    let (status, headers, _) =
        f.raw(Method::PATCH, "/upload", &[("path", "big.bin")], &resume, Body::from(data[offset..].to_vec())).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(headers["upload-offset"].to_str().expect("offset"), data.len().to_string());
    assert!(std::fs::read(f.root().join("big.bin")).expect("in place") == data, "resumed upload differs");
    assert!(!f.root().join(".big.bin.upload").exists(), "the partial file is gone");
}

#[tokio::test]
async fn the_disk_limit_holds_on_every_write_path() {
    let f = Files::new(16).await;
    assert_eq!(f.upload("a.bin", bytes(10 * MIB, 3)).await, StatusCode::CREATED);
    assert_eq!(f.upload("b.bin", bytes(10 * MIB, 4)).await, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, code) = f.refused(Method::POST, "/copy", &[], Some(json!({"from": "a.bin", "to": "c.bin"}))).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"));
    assert!(!f.root().join("c.bin").exists());

    // A decompression bomb: 64 MiB of zeros in a few kilobytes.
    std::fs::remove_file(f.root().join("a.bin")).expect("rm");
    let mut builder = tar::Builder::new(zstd::Encoder::new(Vec::new(), 19).expect("zstd"));
    let mut header = tar::Header::new_gnu();
    header.set_size(64 * MIB as u64);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append_data(&mut header, "zeros", std::io::repeat(0).take_exact(64 * MIB)).expect("append");
    let bomb = builder.into_inner().expect("tar").finish().expect("zstd");
    assert!(bomb.len() < 64 * 1024, "the bomb is small: {}", bomb.len());
    std::fs::write(f.root().join("bomb.tar.zst"), &bomb).expect("bomb");
    let (status, code) =
        f.refused(Method::POST, "/decompress", &[], Some(json!({"path": "bomb.tar.zst", "destination": "out"}))).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"));
    let used: u64 = walk_size(&f.root());
    assert!(used <= 16 * MIB as u64, "the bomb stopped at the limit: {used} bytes on disk");
}

trait TakeExact: std::io::Read + Sized {
    fn take_exact(self, n: usize) -> std::io::Take<Self> {
        self.take(n as u64)
    }
}
impl<R: std::io::Read> TakeExact for R {}

fn walk_size(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("dir")
        .map(|e| {
            let e = e.expect("entry");
            let m = e.metadata().expect("meta");
            if m.is_dir() { walk_size(&e.path()) } else { m.len() }
        })
        .sum()
}

/// A tar whose one entry has `name` written straight into the header (builders refuse `..`).
fn evil_tar(name: &str, data: &[u8]) -> Vec<u8> {
    let mut header = tar::Header::new_old();
    header.as_old_mut().name[..name.len()].copy_from_slice(name.as_bytes());
    header.set_size(data.len() as u64);
    header.set_mode(0o6755);
    header.set_entry_type(tar::EntryType::Regular);
    header.set_cksum();
    let mut out = header.as_bytes().to_vec();
    out.extend_from_slice(data);
    out.resize(out.len().div_ceil(512) * 512 + 1024, 0);
    out
}

#[tokio::test]
async fn escapes_are_refused_and_nothing_outside_changes() {
    let f = Files::new(1024).await;
    let (root, outside) = (f.root(), f.outside());
    std::fs::write(outside.join("secret"), b"secret").expect("secret");
    symlink(outside.join("secret"), root.join("out")).expect("file link");
    symlink(&outside, root.join("outdir")).expect("dir link");
    symlink(outside.join("planted"), root.join("dangling")).expect("dangling");
    std::fs::write(root.join("inside.txt"), b"inside").expect("inside");
    let denied = (StatusCode::FORBIDDEN, "permission_denied".to_string());

    // Traversal and reads through links.
    assert_eq!(f.refused(Method::GET, "", &[("path", "../")], None).await, denied);
    assert_eq!(f.refused(Method::GET, "", &[("path", "outdir")], None).await, denied);
    assert_eq!(f.download("../outside/secret").await.0, StatusCode::FORBIDDEN);
    assert_eq!(f.download("out").await.0, StatusCode::FORBIDDEN);
    assert_eq!(f.download("outdir/secret").await.0, StatusCode::FORBIDDEN);
    // Writes through a dangling link and a linked directory. An upload grows beside its target
    // and is renamed onto it, so it replaces a dangling link rather than writing through it.
    assert_eq!(f.upload("dangling", b"replaced".to_vec()).await, StatusCode::CREATED);
    assert!(std::fs::symlink_metadata(root.join("dangling")).expect("dangling").is_file());
    assert_eq!(f.upload("outdir/planted", b"planted".to_vec()).await, StatusCode::FORBIDDEN);
    // Delete, chmod and rename through links.
    assert_eq!(f.refused(Method::DELETE, "", &[("path", "outdir/secret")], None).await, denied);
    assert_eq!(f.refused(Method::POST, "/chmod", &[], Some(json!({"path": "out", "mode": "777"}))).await, denied);
    assert_eq!(
        f.refused(Method::POST, "/rename", &[], Some(json!({"from": "inside.txt", "to": "outdir/moved"}))).await,
        denied
    );
    assert_eq!(
        f.refused(Method::POST, "/copy", &[], Some(json!({"from": "inside.txt", "to": "../copied"}))).await,
        denied
    );
    // Packing a link stores the link, never what lies outside.
    f.ok(Method::POST, "/compress", &[], Some(json!({"paths": ["outdir", "out"], "destination": "o.tar"}))).await;
    let packed = std::fs::read(root.join("o.tar")).expect("o.tar");
    let kinds: Vec<tar::EntryType> = tar::Archive::new(&packed[..])
        .entries()
        .expect("entries")
        .map(|e| e.expect("entry").header().entry_type())
        .collect();
    assert_eq!(kinds, vec![tar::EntryType::Symlink, tar::EntryType::Symlink]);

    // Tar slip (relative and absolute), zip slip, and a link followed by a write through it.
    std::fs::write(root.join("slip.tar"), evil_tar("../evil", b"evil")).expect("slip.tar");
    std::fs::write(root.join("abs.tar"), evil_tar("/tmp/catalyst-evil", b"evil")).expect("abs.tar");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    zip.start_file("../evil.txt", zip::write::SimpleFileOptions::default()).expect("zip entry");
    zip.write_all(b"evil").expect("zip data");
    std::fs::write(root.join("slip.zip"), zip.finish().expect("zip").into_inner()).expect("slip.zip");
    let mut linked = tar::Builder::new(Vec::new());
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(tar::EntryType::Symlink);
    header.set_size(0);
    header.set_cksum();
    linked.append_link(&mut header, "escape", &outside).expect("link entry");
    let mut header = tar::Header::new_gnu();
    header.set_size(7);
    header.set_mode(0o6755);
    header.set_cksum();
    linked.append_data(&mut header, "escape/planted", &b"planted"[..]).expect("through the link");
    std::fs::write(root.join("linked.tar"), linked.into_inner().expect("tar")).expect("linked.tar");
    for archive in ["slip.tar", "abs.tar", "slip.zip"] {
        let (status, code) =
            f.refused(Method::POST, "/decompress", &[], Some(json!({"path": archive, "destination": "x"}))).await;
        assert_eq!((status, code), denied, "{archive}");
    }
    let out = f.ok(Method::POST, "/decompress", &[], Some(json!({"path": "linked.tar", "destination": "x"}))).await;
    assert_eq!(out["skipped"], 1, "the link was skipped: {out}");
    let planted = root.join("x/escape/planted");
    assert!(planted.is_file() && !std::fs::symlink_metadata(root.join("x/escape")).expect("x/escape").is_symlink());
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&planted).expect("planted").permissions().mode() & 0o7777, 0o755, "setuid dropped");

    // Nothing outside changed.
    assert_eq!(std::fs::read(outside.join("secret")).expect("secret"), b"secret");
    let mut names: Vec<String> = std::fs::read_dir(&outside)
        .expect("outside")
        .map(|e| e.expect("e").file_name().to_string_lossy().into())
        .collect();
    names.sort();
    assert_eq!(names, vec!["secret"], "nothing was planted outside");
    assert!(!f.api.dir.path().join("servers/evil").exists() && !f.api.dir.path().join("servers/evil.txt").exists());
    assert!(!std::path::Path::new("/tmp/catalyst-evil").exists());
    assert!(root.join("inside.txt").exists());

    // A suspended server's files are closed.
    f.api.ok(Method::POST, &format!("/api/servers/{}/suspend", f.server), &f.api.admin, None).await;
    f.api.wait_state(&f.server, &f.token, "suspended").await;
    let (status, _) = f.refused(Method::GET, "", &[], None).await;
    assert_eq!(status, StatusCode::CONFLICT);
}

#[tokio::test]
async fn browsers_upload_with_multipart_forms() {
    let f = Files::new(1024).await;
    f.ok(Method::POST, "/create", &[], Some(json!({"path": "config", "directory": true}))).await;
    let form = |name: &str| {
        format!(
            "--XyZ\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nignored\r\n\
             --XyZ\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: text/plain\r\n\r\nmotd=hello\r\n--XyZ--\r\n"
        )
    };
    let headers = [("content-type", "multipart/form-data; boundary=XyZ".to_string())];
    let (status, _, _) =
        f.raw(Method::POST, "/upload", &[("path", "config")], &headers, Body::from(form("server.properties"))).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(std::fs::read(f.root().join("config/server.properties")).expect("uploaded"), b"motd=hello");
    let (status, _, _) =
        f.raw(Method::POST, "/upload", &[("path", "config")], &headers, Body::from(form("../evil"))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a file name with a path is refused");
    assert!(!f.root().join("evil").exists());
}

#[tokio::test]
async fn listings_come_in_pages_and_fifos_are_never_opened() {
    let f = Files::new(1024).await;
    std::fs::create_dir_all(f.root().join("many")).expect("many");
    for i in 0..2500 {
        std::fs::write(f.root().join(format!("many/f{i:04}")), b"").expect("file");
    }
    let first = f.ok(Method::GET, "", &[("path", "many")], None).await;
    let rest = f.ok(Method::GET, "", &[("path", "many"), ("offset", "2000")], None).await;
    assert_eq!((first.as_array().expect("page").len(), rest.as_array().expect("page").len()), (2000, 500));
    assert_eq!(rest[0]["name"], "f2000");

    // A FIFO made by the game: listed as "other", refused at once instead of blocking a thread.
    nix::unistd::mkfifo(&f.root().join("pipe"), nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
    let listed = f.ok(Method::GET, "", &[], None).await;
    assert!(listed.as_array().expect("root").iter().any(|e| e["name"] == "pipe" && e["kind"] == "other"), "{listed}");
    let (status, _) =
        tokio::time::timeout(std::time::Duration::from_secs(10), f.download("pipe")).await.expect("no hang");
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        f.json(Method::POST, "/compress", &[], Some(json!({"paths": ["pipe", "many"], "destination": "p.tar"}))),
    )
    .await
    .expect("no hang");
    assert_eq!(status, StatusCode::CREATED, "special files are left out of archives");
}

/// A tar of regular files (and directories: names ending in `/`).
fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for (name, data) in entries {
        let mut header = tar::Header::new_gnu();
        if name.ends_with('/') {
            header.set_entry_type(tar::EntryType::Directory);
        }
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append_data(&mut header, name, *data).expect("entry");
    }
    builder.into_inner().expect("tar")
}

fn mkfifo(path: &std::path::Path) {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o644)).expect("mkfifo");
}

/// Fails the test when `fut` does not answer within 10 s (a request pinned on a FIFO).
async fn soon<T>(what: &str, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(std::time::Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("{what} hung"))
}

#[tokio::test]
async fn fifos_planted_by_the_game_fail_requests_at_once() {
    use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
    let f = Files::new(1024).await;
    let root = f.root();
    let invalid = (StatusCode::UNPROCESSABLE_ENTITY, "invalid_input".to_string());

    // Where an upload grows its partial file, with no reader and with one attached.
    mkfifo(&root.join(".up.bin.upload"));
    assert_eq!(soon("upload", f.upload("up.bin", b"data".to_vec())).await, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(!root.join("up.bin").exists());
    mkfifo(&root.join(".held.bin.upload"));
    let _reader = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(root.join(".held.bin.upload"))
        .expect("reader");
    assert_eq!(soon("upload", f.upload("held.bin", b"data".to_vec())).await, StatusCode::UNPROCESSABLE_ENTITY);

    // Where an archive entry unpacks: refused before anything is written.
    mkfifo(&root.join("pipe"));
    std::fs::write(root.join("a.tar"), tar_of(&[("other.txt", b"other"), ("pipe", b"evil")])).expect("a.tar");
    let body = json!({"path": "a.tar"});
    assert_eq!(soon("decompress", f.refused(Method::POST, "/decompress", &[], Some(body))).await, invalid);
    assert!(!root.join("other.txt").exists(), "a refused unpack writes nothing");
    assert!(std::fs::symlink_metadata(root.join("pipe")).expect("pipe").file_type().is_fifo());

    // As a file to read, copy, unpack or chmod.
    assert_eq!(soon("download", f.download("pipe")).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let body = json!({"from": "pipe", "to": "copied"});
    assert_eq!(soon("copy", f.refused(Method::POST, "/copy", &[], Some(body))).await, invalid);
    mkfifo(&root.join("pipe.tar"));
    let body = json!({"path": "pipe.tar", "destination": "x"});
    assert_eq!(soon("decompress", f.refused(Method::POST, "/decompress", &[], Some(body))).await, invalid);
    assert!(!root.join("x").exists(), "the destination made for a refused unpack is removed");
    let body = json!({"path": "pipe", "mode": "600"});
    assert_eq!(soon("chmod", f.refused(Method::POST, "/chmod", &[], Some(body))).await, invalid);
    // A directory holding a FIFO copies without it.
    std::fs::create_dir_all(root.join("dir")).expect("dir");
    mkfifo(&root.join("dir/pipe"));
    std::fs::write(root.join("dir/file"), b"file").expect("file");
    soon("copy", f.ok(Method::POST, "/copy", &[], Some(json!({"from": "dir", "to": "dir2"})))).await;
    assert!(root.join("dir2/file").is_file() && !root.join("dir2/pipe").exists());
}

#[tokio::test]
async fn ordinary_mistakes_are_client_errors_that_name_the_path() {
    let f = Files::new(1024).await;
    let root = f.root();
    std::fs::write(root.join("file.txt"), b"x").expect("file");
    std::fs::create_dir_all(root.join("full")).expect("full");
    std::fs::write(root.join("full/inner.txt"), b"inner").expect("inner");
    std::fs::create_dir_all(root.join("empty")).expect("empty");
    std::fs::create_dir_all(root.join("d/sub")).expect("d");
    symlink("loop", root.join("loop")).expect("loop");
    symlink("file.txt", root.join("link")).expect("link");
    std::fs::write(root.join("onlink.tar"), tar_of(&[("link", b"through")])).expect("onlink");
    std::fs::write(root.join("ondir.tar"), tar_of(&[("empty", b"onto a dir")])).expect("ondir");
    let long = "n".repeat(300);

    let (invalid, conflict, missing) = ("invalid_input", "conflict", "not_found");
    // (what, method, route, query, body, error code, a path the message names)
    type Case<'a> = (&'a str, Method, &'a str, Vec<(&'a str, &'a str)>, Option<Value>, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        ("a path under a file", Method::GET, "", vec![("path", "file.txt/x")], None, invalid, "file.txt/x"),
        ("a download under a file", Method::GET, "/download", vec![("path", "file.txt/x")], None, invalid, "file.txt"),
        (
            "a directory under a file",
            Method::POST,
            "/create",
            vec![],
            Some(json!({"path": "file.txt/sub", "directory": true})),
            conflict,
            "file.txt",
        ),
        ("a link loop", Method::GET, "", vec![("path", "loop")], None, invalid, "loop"),
        ("a download of a link loop", Method::GET, "/download", vec![("path", "loop")], None, invalid, "loop"),
        (
            "compressing a missing path",
            Method::POST,
            "/compress",
            vec![],
            Some(json!({"paths": ["missing"], "destination": "m.tar"})),
            missing,
            "missing",
        ),
        (
            "a directory onto a non-empty one",
            Method::POST,
            "/rename",
            vec![],
            Some(json!({"from": "d", "to": "full"})),
            conflict,
            "full",
        ),
        (
            "a file onto a directory",
            Method::POST,
            "/rename",
            vec![],
            Some(json!({"from": "file.txt", "to": "empty"})),
            conflict,
            "empty",
        ),
        (
            "a directory onto a file",
            Method::POST,
            "/rename",
            vec![],
            Some(json!({"from": "empty", "to": "file.txt"})),
            invalid,
            "file.txt",
        ),
        (
            "a directory into itself",
            Method::POST,
            "/rename",
            vec![],
            Some(json!({"from": "d", "to": "d/sub/d"})),
            invalid,
            "d/sub/d",
        ),
        ("an upload onto a directory", Method::POST, "/upload", vec![("path", "empty")], None, conflict, "empty"),
        (
            "unpacking onto a link",
            Method::POST,
            "/decompress",
            vec![],
            Some(json!({"path": "onlink.tar"})),
            conflict,
            "link",
        ),
        (
            "unpacking onto a directory",
            Method::POST,
            "/decompress",
            vec![],
            Some(json!({"path": "ondir.tar"})),
            conflict,
            "empty",
        ),
        ("a name too long", Method::POST, "/create", vec![], Some(json!({"path": long})), invalid, "too long"),
        (
            "a copy into a missing directory",
            Method::POST,
            "/copy",
            vec![],
            Some(json!({"from": "file.txt", "to": "nowhere/x"})),
            missing,
            "nowhere",
        ),
        (
            "a file that exists",
            Method::POST,
            "/create",
            vec![],
            Some(json!({"path": "file.txt"})),
            conflict,
            "file.txt",
        ),
        ("deleting a missing path", Method::DELETE, "", vec![("path", "missing")], None, missing, "missing"),
    ];
    for (what, method, route, query, body, code, names) in cases {
        let (status, v) = f.json(method, route, &query, body).await;
        assert!(status.is_client_error(), "{what}: {status} {v}");
        assert_eq!(error_code(&v), code, "{what}: {v}");
        let message = v["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(names), "{what}: the message names {names:?}: {v}");
    }
    assert_eq!(std::fs::read(root.join("file.txt")).expect("file"), b"x", "nothing was written through the link");
    assert!(!root.join("m.tar").exists(), "a failed compress leaves no archive");
    assert!(root.join("full/inner.txt").exists() && root.join("d/sub").is_dir());
}

#[tokio::test]
async fn failures_leave_no_debris_and_what_the_node_makes_belongs_to_the_server() {
    use std::os::unix::fs::MetadataExt;
    let f = Files::new(16).await;
    let root = f.root();
    // An upload stopped by the disk limit removes its partial file, which would else hold the room.
    let big = bytes(20 * MIB, 5);
    let (status, _, _) = f
        .raw(
            Method::POST,
            "/upload",
            &[("path", "big.bin")],
            &[("upload-length", big.len().to_string())],
            Body::from(big),
        )
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    assert!(!root.join(".big.bin.upload").exists(), "the partial upload is gone");
    assert_eq!(f.upload("fits.bin", bytes(10 * MIB, 6)).await, StatusCode::CREATED, "its room is free again");
    std::fs::remove_file(root.join("fits.bin")).expect("rm");

    // A failed unpack removes what it made, the destination's directories included.
    let bomb = zstd::encode_all(&tar_of(&[("a/", b""), ("a/zeros", &vec![0u8; 20 * MIB])])[..], 3).expect("zstd");
    std::fs::write(root.join("bomb.tar.zst"), bomb).expect("bomb");
    let body = json!({"path": "bomb.tar.zst", "destination": "out/deep"});
    let (status, code) = f.refused(Method::POST, "/decompress", &[], Some(body)).await;
    assert_eq!((status, code.as_str()), (StatusCode::PAYLOAD_TOO_LARGE, "quota_exceeded"));
    let left: Vec<String> =
        std::fs::read_dir(&root).expect("root").map(|e| e.expect("e").file_name().to_string_lossy().into()).collect();
    assert_eq!(left, vec!["bomb.tar.zst"], "nothing is left of the failed unpack");

    // Everything the node creates belongs to the server's user (1000 by default).
    if !nix::unistd::geteuid().is_root() {
        eprintln!("!!! SKIPPED: ownership checks (not root)");
        return;
    }
    std::fs::write(root.join("ok.tar"), tar_of(&[("w/", b""), ("w/r/", b""), ("w/r/f.dat", b"f"), ("top.txt", b"t")]))
        .expect("ok.tar");
    f.ok(Method::POST, "/decompress", &[], Some(json!({"path": "ok.tar", "destination": "x/y"}))).await;
    f.ok(Method::POST, "/create", &[], Some(json!({"path": "p/q", "directory": true}))).await;
    f.ok(Method::POST, "/copy", &[], Some(json!({"from": "x", "to": "x2"}))).await;
    f.ok(Method::POST, "/compress", &[], Some(json!({"paths": ["x"], "destination": "x.tar"}))).await;
    assert_eq!(f.upload("up.txt", b"up".to_vec()).await, StatusCode::CREATED);
    for made in [
        "x",
        "x/y",
        "x/y/w",
        "x/y/w/r",
        "x/y/w/r/f.dat",
        "x/y/top.txt",
        "p",
        "p/q",
        "x2/y/w/r/f.dat",
        "x.tar",
        "up.txt",
    ] {
        assert_eq!(std::fs::symlink_metadata(root.join(made)).expect(made).uid(), 1000, "{made} belongs to the server");
    }
}

#[tokio::test]
async fn sparse_files_count_what_they_hold() {
    let f = Files::new(16).await;
    // The game made a 1 GiB file that holds nothing: 10 MiB still fit under a 16 MiB limit.
    std::fs::File::create(f.root().join("sparse.img")).expect("sparse").set_len(1 << 30).expect("set_len");
    assert_eq!(f.upload("a.bin", bytes(10 * MIB, 3)).await, StatusCode::CREATED);
    let listed = f.ok(Method::GET, "", &[], None).await;
    let sparse = listed.as_array().expect("list").iter().find(|e| e["name"] == "sparse.img").cloned();
    assert_eq!(sparse.expect("listed")["size"], 1u64 << 30, "listings show the apparent size");
    // Copying it keeps it sparse, so it fits too.
    f.ok(Method::POST, "/copy", &[], Some(json!({"from": "sparse.img", "to": "copy.img"}))).await;
}
