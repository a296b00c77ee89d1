//! Test images, built here from Debian's static busybox: no registry needed. Writes an OCI
//! image layout tar with one layer holding busybox, its applets, and the game script.

use std::path::{Path, PathBuf};

use sha2::Digest;

const APPLETS: &[&str] = &[
    "sh", "id", "mkdir", "cat", "ls", "echo", "sleep", "httpd", "nc", "env", "true", "false", "dd", "head", "sed",
    "printf", "touch",
];

fn sha(data: &[u8]) -> String {
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)))
}

fn header(path: &str, size: u64, mode: u32, kind: tar::EntryType) -> tar::Header {
    let mut h = tar::Header::new_gnu();
    h.set_path(path).expect("path");
    h.set_size(size);
    h.set_mode(mode);
    h.set_entry_type(kind);
    h.set_mtime(0);
    h.set_uid(0);
    h.set_gid(0);
    h
}

/// A file of an image: path, contents, mode.
pub type ImageFile<'a> = (&'a str, &'a [u8], u32);

fn layer(extra: &[ImageFile]) -> Vec<u8> {
    let busybox = std::fs::read("/bin/busybox").expect("Debian's busybox-static at /bin/busybox");
    let mut b = tar::Builder::new(Vec::new());
    for dir in [
        "bin",
        "etc",
        "usr",
        "usr/local",
        "usr/local/bin",
        "home",
        "home/container",
        "tmp",
        "proc",
        "sys",
        "dev",
        "mnt",
        "mnt/server",
    ] {
        let mut h = header(dir, 0, 0o755, tar::EntryType::Directory);
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("dir");
    }
    let mut h = header("bin/busybox", busybox.len() as u64, 0o755, tar::EntryType::Regular);
    h.set_cksum();
    b.append(&h, busybox.as_slice()).expect("busybox");
    for applet in APPLETS {
        let mut h = header(&format!("bin/{applet}"), 0, 0o777, tar::EntryType::Symlink);
        h.set_link_name("busybox").expect("link");
        h.set_cksum();
        b.append(&h, std::io::empty()).expect("applet");
    }
    let base: [ImageFile; 2] = [
        ("etc/passwd", b"root:x:0:0:root:/root:/bin/sh\ncontainer:x:1000:1000::/home/container:/bin/sh\n", 0o644),
        ("etc/group", b"root:x:0:\ncontainer:x:1000:\n", 0o644),
    ];
    for &(path, data, mode) in base.iter().chain(extra) {
        let mut h = header(path, data.len() as u64, mode, tar::EntryType::Regular);
        h.set_cksum();
        b.append(&h, data).expect("file");
    }
    b.into_inner().expect("layer tar")
}

/// The layer tar and config JSON of the game image.
pub fn game_layer_and_config(_dir: &Path, game: &str) -> (Vec<u8>, Vec<u8>) {
    let layer = layer(&[("usr/local/bin/game", game.as_bytes(), 0o755)]);
    let config = config(&sha(&layer), &[]);
    (layer, config)
}

fn config(layer_digest: &str, entrypoint: &[&str]) -> Vec<u8> {
    let mut image = serde_json::json!({"Env": ["PATH=/usr/local/bin:/bin"], "WorkingDir": "/home/container"});
    if !entrypoint.is_empty() {
        image["Entrypoint"] = serde_json::json!(entrypoint);
    }
    let config = serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": image,
        "rootfs": {"type": "layers", "diff_ids": [layer_digest]},
    });
    serde_json::to_vec(&config).expect("config")
}

/// Write `dir/game.oci.tar`, an OCI image layout whose index names it `name`.
pub fn build_game_image(dir: &Path, name: &str, game: &str) -> PathBuf {
    build_image(dir, name, &[("usr/local/bin/game", game.as_bytes(), 0o755)], &[])
}

/// Write `dir/game.oci.tar`: busybox, `files`, and `entrypoint` as the image's ENTRYPOINT.
pub fn build_image(dir: &Path, name: &str, files: &[ImageFile], entrypoint: &[&str]) -> PathBuf {
    let layer = layer(files);
    let layer_digest = sha(&layer);
    let config = config(&layer_digest, entrypoint);
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(&config), "size": config.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": layer_digest, "size": layer.len()}],
    });
    let manifest = serde_json::to_vec(&manifest).expect("manifest");
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": sha(&manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": name},
        }],
    });
    let index = serde_json::to_vec(&index).expect("index");
    let path = dir.join("game.oci.tar");
    let mut out = tar::Builder::new(std::fs::File::create(&path).expect("create layout"));
    let mut entries: Vec<(String, &[u8])> =
        vec![("oci-layout".into(), br#"{"imageLayoutVersion":"1.0.0"}"#), ("index.json".into(), &index)];
    for blob in [&config, &manifest, &layer] {
        entries.push((format!("blobs/sha256/{}", &sha(blob)[7..]), blob));
    }
    for (name, data) in entries {
        let mut h = header(&name, data.len() as u64, 0o644, tar::EntryType::Regular);
        h.set_cksum();
        out.append(&h, data).expect("append");
    }
    out.finish().expect("finish layout");
    path
}
