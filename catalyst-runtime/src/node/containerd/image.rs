//! Images without the Go client: content writes, OCI layout import, and unpacking layers into
//! snapshots (prepare → diff apply → commit), all under a lease, with the garbage-collection
//! labels that keep content and snapshots alive once the image record points at them.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use catalyst_core::{Error, ErrorKind, Result};
use containerd_client::services::v1::content_client::ContentClient;
use containerd_client::services::v1::diff_client::DiffClient;
use containerd_client::services::v1::images_client::ImagesClient;
use containerd_client::services::v1::leases_client::LeasesClient;
use containerd_client::services::v1::snapshots::snapshots_client::SnapshotsClient;
use containerd_client::services::v1::snapshots::{
    CommitSnapshotRequest, PrepareSnapshotRequest, RemoveSnapshotRequest, StatSnapshotRequest,
};
use containerd_client::services::v1::{
    ApplyRequest, CreateImageRequest, CreateRequest, DeleteRequest, GetImageRequest, Image, Info, InfoRequest,
    ReadContentRequest, UpdateImageRequest, UpdateRequest, WriteAction, WriteContentRequest,
};
use containerd_client::types::Descriptor;
use futures::channel::mpsc;
use futures::{SinkExt, StreamExt};
use sha2::Digest;
use tonic::Code;

use super::client::{Client, status_err};
use super::spec::ImageDefaults;

pub const INDEX_TYPES: [&str; 2] =
    ["application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json"];
pub const MANIFEST_TYPES: [&str; 2] =
    ["application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json"];
const CHUNK: usize = 256 * 1024;

/// What a container needs from its image.
#[derive(Debug, Clone)]
pub struct Unpacked {
    /// Chain id of the top layer: the parent of the container's snapshot.
    pub chain_id: String,
    /// Defaults from the image config.
    pub defaults: ImageDefaults,
}

/// A lease that expires by itself if we crash.
pub async fn create_lease(c: &Client) -> Result<String> {
    let id = format!("catalyst-{}", uuid::Uuid::new_v4().simple());
    let mut labels = HashMap::new();
    let expire = chrono::Utc::now() + chrono::Duration::hours(1);
    labels.insert("containerd.io/gc.expire".to_string(), expire.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    LeasesClient::new(c.channel.clone())
        .create(c.req(CreateRequest { id: id.clone(), labels }))
        .await
        .map_err(|s| status_err("create lease", s))?;
    Ok(id)
}

pub async fn delete_lease(c: &Client, id: &str) {
    let _ = LeasesClient::new(c.channel.clone()).delete(c.req(DeleteRequest { id: id.to_string(), sync: false })).await;
}

async fn content_exists(c: &Client, digest: &str) -> Result<bool> {
    match ContentClient::new(c.channel.clone()).info(c.req(InfoRequest { digest: digest.to_string() })).await {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::NotFound => Ok(false),
        Err(s) => Err(status_err("content info", s)),
    }
}

/// Stream a blob into the content store; the store verifies `digest` on commit.
pub async fn write_blob(
    c: &Client,
    lease: &str,
    digest: &str,
    size: i64,
    mut chunks: mpsc::Receiver<Vec<u8>>,
) -> Result<()> {
    if content_exists(c, digest).await? {
        // Drain so the producer is not blocked forever.
        while chunks.next().await.is_some() {}
        return Ok(());
    }
    let (mut tx, rx) = mpsc::channel::<WriteContentRequest>(4);
    let reference = format!("catalyst-{}", uuid::Uuid::new_v4().simple());
    let expected = digest.to_string();
    let producer = tokio::spawn(async move {
        let mut offset = 0i64;
        while let Some(data) = chunks.next().await {
            let len = data.len() as i64;
            let msg = WriteContentRequest {
                action: WriteAction::Write as i32,
                r#ref: reference.clone(),
                total: size,
                expected: expected.clone(),
                offset,
                data,
                labels: HashMap::new(),
            };
            if tx.send(msg).await.is_err() {
                return offset;
            }
            offset += len;
        }
        let commit = WriteContentRequest {
            action: WriteAction::Commit as i32,
            r#ref: reference,
            total: size,
            expected,
            offset,
            data: vec![],
            labels: HashMap::new(),
        };
        let _ = tx.send(commit).await;
        offset
    });
    let result = async {
        let mut responses = ContentClient::new(c.channel.clone()).write(c.leased(rx, lease)).await?.into_inner();
        while responses.message().await?.is_some() {}
        Ok::<_, tonic::Status>(())
    }
    .await;
    let written = producer.await.map_err(|e| Error::internal("content writer task failed", e))?;
    match result {
        Ok(()) => {}
        Err(s) if s.code() == Code::AlreadyExists => {}
        Err(s) => return Err(status_err(&format!("write {digest}"), s)),
    }
    if written != size {
        return Err(Error::invalid(format!("blob {digest}: expected {size} bytes, got {written}")));
    }
    Ok(())
}

/// Read a (small) blob whole.
pub async fn read_blob(c: &Client, digest: &str) -> Result<Vec<u8>> {
    let mut stream = ContentClient::new(c.channel.clone())
        .read(c.req(ReadContentRequest { digest: digest.to_string(), offset: 0, size: 0 }))
        .await
        .map_err(|s| status_err(&format!("read {digest}"), s))?
        .into_inner();
    let mut out = Vec::new();
    while let Some(part) = stream.message().await.map_err(|s| status_err(&format!("read {digest}"), s))? {
        out.extend_from_slice(&part.data);
        if out.len() > 16 << 20 {
            return Err(Error::invalid(format!("{digest} is too large to be a manifest or config")));
        }
    }
    Ok(out)
}

async fn set_labels(c: &Client, digest: &str, labels: HashMap<String, String>) -> Result<()> {
    let paths = labels.keys().map(|k| format!("labels.{k}")).collect();
    ContentClient::new(c.channel.clone())
        .update(c.req(UpdateRequest {
            info: Some(Info { digest: digest.to_string(), size: 0, created_at: None, updated_at: None, labels }),
            update_mask: Some(prost_types::FieldMask { paths }),
        }))
        .await
        .map_err(|s| status_err("label content", s))?;
    Ok(())
}

fn json(bytes: &[u8], what: &str) -> Result<serde_json::Value> {
    serde_json::from_slice(bytes).map_err(|e| Error::invalid(format!("{what} is not valid JSON: {e}")))
}

fn descriptor(v: &serde_json::Value) -> Result<Descriptor> {
    Ok(Descriptor {
        media_type: v["mediaType"].as_str().unwrap_or_default().to_string(),
        digest: v["digest"].as_str().ok_or_else(|| Error::invalid("descriptor without digest"))?.to_string(),
        size: v["size"].as_i64().ok_or_else(|| Error::invalid("descriptor without size"))?,
        annotations: HashMap::new(),
    })
}

/// Walk from `target` to the linux/amd64 manifest, labelling parents for the GC on the way.
pub async fn resolve_manifest(c: &Client, target: &Descriptor) -> Result<serde_json::Value> {
    let mut current = target.clone();
    for _ in 0..4 {
        let body = json(&read_blob(c, &current.digest).await?, "manifest")?;
        let media = body["mediaType"].as_str().map(str::to_string).unwrap_or_else(|| current.media_type.clone());
        if INDEX_TYPES.contains(&media.as_str()) || body["manifests"].is_array() {
            let manifests = body["manifests"].as_array().cloned().unwrap_or_default();
            let mut labels = HashMap::new();
            for (i, m) in manifests.iter().enumerate() {
                labels.insert(
                    format!("containerd.io/gc.ref.content.m.{i}"),
                    m["digest"].as_str().unwrap_or_default().to_string(),
                );
            }
            set_labels(c, &current.digest, labels).await?;
            let chosen = manifests
                .iter()
                .find(|m| {
                    m["platform"]["os"] == "linux"
                        && m["platform"]["architecture"]
                            == std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64")
                })
                .or_else(|| manifests.first())
                .ok_or_else(|| Error::invalid("the image index lists no manifests"))?;
            current = descriptor(chosen)?;
            continue;
        }
        return Ok(body);
    }
    Err(Error::invalid("image indexes nest too deeply"))
}

fn chain_ids(diff_ids: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(diff_ids.len());
    for d in diff_ids {
        let next = match out.last() {
            None => d.clone(),
            Some(prev) => format!("sha256:{}", hex::encode(sha2::Sha256::digest(format!("{prev} {d}").as_bytes()))),
        };
        out.push(next);
    }
    out
}

async fn snapshot_exists(c: &Client, snapshotter: &str, key: &str) -> Result<bool> {
    let r = SnapshotsClient::new(c.channel.clone())
        .stat(c.req(StatSnapshotRequest { snapshotter: snapshotter.to_string(), key: key.to_string() }))
        .await;
    match r {
        Ok(_) => Ok(true),
        Err(s) if s.code() == Code::NotFound => Ok(false),
        Err(s) => Err(status_err("stat snapshot", s)),
    }
}

/// Make sure every layer of the image named `name` is unpacked; return what containers need.
pub async fn unpack(c: &Client, snapshotter: &str, name: &str) -> Result<Unpacked> {
    let image = ImagesClient::new(c.channel.clone())
        .get(c.req(GetImageRequest { name: name.to_string() }))
        .await
        .map_err(|s| status_err(&format!("image {name}"), s))?
        .into_inner()
        .image
        .ok_or_else(|| Error::not_found("image"))?;
    let target = image.target.ok_or_else(|| Error::invalid("the image has no target"))?;
    let manifest = resolve_manifest(c, &target).await?;
    let config_desc = descriptor(&manifest["config"])?;
    let layers: Vec<Descriptor> =
        manifest["layers"].as_array().cloned().unwrap_or_default().iter().map(descriptor).collect::<Result<_>>()?;
    let config = json(&read_blob(c, &config_desc.digest).await?, "image config")?;
    let diff_ids: Vec<String> = config["rootfs"]["diff_ids"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    if diff_ids.len() != layers.len() || layers.is_empty() {
        return Err(Error::invalid("the image config does not match its layers"));
    }
    let chains = chain_ids(&diff_ids);
    let mut labels = HashMap::new();
    labels.insert("containerd.io/gc.ref.content.config".to_string(), config_desc.digest.clone());
    for (i, l) in layers.iter().enumerate() {
        labels.insert(format!("containerd.io/gc.ref.content.l.{i}"), l.digest.clone());
    }
    set_labels(c, &resolve_manifest_digest(c, &target).await?, labels).await?;

    let top = chains.last().cloned().unwrap_or_default();
    if !snapshot_exists(c, snapshotter, &top).await? {
        let lease = create_lease(c).await?;
        let result = apply_layers(c, snapshotter, &lease, &layers, &chains).await;
        delete_lease(c, &lease).await;
        result?;
    }
    let mut snap_label = HashMap::new();
    snap_label.insert(format!("containerd.io/gc.ref.snapshot.{snapshotter}"), top.clone());
    set_labels(c, &config_desc.digest, snap_label).await?;
    let strings = |key: &str| -> Vec<String> {
        config["config"][key].as_array().into_iter().flatten().filter_map(|e| e.as_str().map(str::to_string)).collect()
    };
    let defaults = ImageDefaults { env: strings("Env"), entrypoint: strings("Entrypoint"), cmd: strings("Cmd") };
    Ok(Unpacked { chain_id: top, defaults })
}

/// The digest of the manifest `target` resolves to (itself, or the chosen entry of an index).
async fn resolve_manifest_digest(c: &Client, target: &Descriptor) -> Result<String> {
    if !INDEX_TYPES.contains(&target.media_type.as_str()) {
        return Ok(target.digest.clone());
    }
    let body = json(&read_blob(c, &target.digest).await?, "index")?;
    let first = body["manifests"].as_array().and_then(|m| {
        m.iter()
            .find(|m| {
                m["platform"]["os"] == "linux"
                    && m["platform"]["architecture"]
                        == std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64")
            })
            .or_else(|| m.first())
            .cloned()
    });
    Ok(first.map(|m| descriptor(&m)).transpose()?.map(|d| d.digest).unwrap_or_else(|| target.digest.clone()))
}

async fn apply_layers(
    c: &Client,
    snapshotter: &str,
    lease: &str,
    layers: &[Descriptor],
    chains: &[String],
) -> Result<()> {
    let mut snaps = SnapshotsClient::new(c.channel.clone());
    let mut parent = String::new();
    for (layer, chain) in layers.iter().zip(chains) {
        if snapshot_exists(c, snapshotter, chain).await? {
            parent = chain.clone();
            continue;
        }
        let key = format!("extract-{} {chain}", uuid::Uuid::new_v4().simple());
        let mounts = snaps
            .prepare(c.leased(
                PrepareSnapshotRequest {
                    snapshotter: snapshotter.into(),
                    key: key.clone(),
                    parent: parent.clone(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await
            .map_err(|s| status_err("prepare snapshot", s))?
            .into_inner()
            .mounts;
        let applied = DiffClient::new(c.channel.clone())
            .apply(c.leased(
                ApplyRequest { diff: Some(layer.clone()), mounts, payloads: HashMap::new(), sync_fs: false },
                lease,
            ))
            .await;
        if let Err(s) = applied {
            let _ =
                snaps.remove(c.req(RemoveSnapshotRequest { snapshotter: snapshotter.into(), key: key.clone() })).await;
            return Err(status_err("apply layer", s));
        }
        let committed = snaps
            .commit(c.leased(
                CommitSnapshotRequest {
                    snapshotter: snapshotter.into(),
                    name: chain.clone(),
                    key: key.clone(),
                    labels: HashMap::new(),
                },
                lease,
            ))
            .await;
        match committed {
            Ok(_) => {}
            Err(s) if s.code() == Code::AlreadyExists => {
                let _ = snaps.remove(c.req(RemoveSnapshotRequest { snapshotter: snapshotter.into(), key })).await;
            }
            Err(s) => return Err(status_err("commit snapshot", s)),
        }
        parent = chain.clone();
    }
    Ok(())
}

/// Create or point the image record `name` at `target`.
pub async fn put_image(c: &Client, name: &str, target: Descriptor) -> Result<()> {
    let image = Image {
        name: name.to_string(),
        labels: HashMap::new(),
        target: Some(target),
        created_at: None,
        updated_at: None,
    };
    let mut images = ImagesClient::new(c.channel.clone());
    match images.create(c.req(CreateImageRequest { image: Some(image.clone()), source_date_epoch: None })).await {
        Ok(_) => Ok(()),
        Err(s) if s.code() == Code::AlreadyExists => {
            images
                .update(c.req(UpdateImageRequest { image: Some(image), update_mask: None, source_date_epoch: None }))
                .await
                .map_err(|s| status_err("update image", s))?;
            Ok(())
        }
        Err(s) => Err(status_err("create image", s)),
    }
}

enum Entry {
    Blob { digest: String, size: i64, chunks: mpsc::Receiver<Vec<u8>> },
    Index(Vec<u8>),
}

/// Import an OCI image layout tar as image `name` (blobs stream straight from the tar into
/// the content store; nothing is held whole in memory but `index.json`).
pub async fn import_oci_layout(c: &Client, snapshotter: &str, path: &Path, name: &str) -> Result<Unpacked> {
    let file = std::fs::File::open(path)
        .map_err(|e| Error::new(ErrorKind::NotFound, format!("cannot open {}", path.display())).with_source(e))?;
    let (mut entries_tx, mut entries_rx) = mpsc::channel::<Entry>(1);
    let reader = tokio::task::spawn_blocking(move || -> Result<()> {
        let mut archive = tar::Archive::new(std::io::BufReader::new(file));
        for entry in archive.entries().map_err(|e| Error::invalid(format!("not a tar archive: {e}")))? {
            let mut entry = entry.map_err(|e| Error::invalid(format!("corrupt tar archive: {e}")))?;
            let path = entry
                .path()
                .map_err(|e| Error::invalid(format!("bad path in archive: {e}")))?
                .to_string_lossy()
                .trim_start_matches("./")
                .to_string();
            if path == "index.json" {
                let mut buf = Vec::new();
                entry
                    .by_ref()
                    .take(16 << 20)
                    .read_to_end(&mut buf)
                    .map_err(|e| Error::invalid(format!("read index.json: {e}")))?;
                futures::executor::block_on(entries_tx.send(Entry::Index(buf)))
                    .map_err(|_| Error::unavailable("import aborted"))?;
            } else if let Some(hex) = path.strip_prefix("blobs/sha256/") {
                if hex.len() != 64 || !hex.chars().all(|ch| ch.is_ascii_hexdigit()) {
                    continue;
                }
                let size = i64::try_from(entry.header().size().unwrap_or(0)).unwrap_or(i64::MAX);
                let (mut chunk_tx, chunks) = mpsc::channel(8);
                futures::executor::block_on(entries_tx.send(Entry::Blob {
                    digest: format!("sha256:{hex}"),
                    size,
                    chunks,
                }))
                .map_err(|_| Error::unavailable("import aborted"))?;
                loop {
                    let mut buf = vec![0u8; CHUNK];
                    let n = entry.read(&mut buf).map_err(|e| Error::invalid(format!("read {path}: {e}")))?;
                    if n == 0 {
                        break;
                    }
                    buf.truncate(n);
                    if futures::executor::block_on(chunk_tx.send(buf)).is_err() {
                        return Err(Error::unavailable("import aborted"));
                    }
                }
            }
        }
        Ok(())
    });
    let lease = create_lease(c).await?;
    let mut index = None;
    let mut failure = None;
    while let Some(entry) = entries_rx.next().await {
        match entry {
            Entry::Index(bytes) => index = Some(bytes),
            Entry::Blob { digest, size, chunks } => {
                if let Err(e) = write_blob(c, &lease, &digest, size, chunks).await {
                    failure = Some(e);
                    break;
                }
            }
        }
    }
    drop(entries_rx);
    let read = reader.await.map_err(|e| Error::internal("import reader failed", e))?;
    let outcome = async {
        if let Some(e) = failure {
            return Err(e);
        }
        read?;
        let index = json(&index.ok_or_else(|| Error::invalid("the archive has no index.json"))?, "index.json")?;
        let top = index["manifests"]
            .as_array()
            .and_then(|m| m.first())
            .ok_or_else(|| Error::invalid("index.json lists no manifests"))?;
        let target = descriptor(top)?;
        // Label the top-level descriptor chain before the image record makes it a GC root.
        resolve_manifest(c, &target).await?;
        put_image(c, name, target).await
    }
    .await;
    let unpacked = match outcome {
        Ok(()) => unpack(c, snapshotter, name).await,
        Err(e) => Err(e),
    };
    delete_lease(c, &lease).await;
    unpacked
}

/// Credentials and transport for one registry host.
#[derive(Clone, Default)]
pub struct RegistryConfig {
    /// `host[:port]` as it appears in image references.
    pub host: String,
    /// Basic-auth user name.
    pub username: Option<String>,
    /// Basic-auth password.
    pub password: Option<String>,
    /// Plain HTTP (for registries on a private network or loopback).
    pub insecure: bool,
}

impl std::fmt::Debug for RegistryConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RegistryConfig")
            .field("host", &self.host)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("insecure", &self.insecure)
            .finish()
    }
}

fn oci_err(what: &str, e: oci_client::errors::OciDistributionError) -> Error {
    use oci_client::errors::OciDistributionError as E;
    let kind = match &e {
        E::AuthenticationFailure(_) | E::UnauthorizedError { .. } => ErrorKind::Unauthenticated,
        E::ImageManifestNotFoundError(_) => ErrorKind::NotFound,
        E::ServerError { code, .. } if *code == 401 || *code == 403 => ErrorKind::Unauthenticated,
        E::ServerError { code, .. } if *code == 404 => ErrorKind::NotFound,
        E::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    oci_client::errors::OciErrorCode::Unauthorized | oci_client::errors::OciErrorCode::Denied
                )
            }) =>
        {
            ErrorKind::Unauthenticated
        }
        E::RegistryError { envelope, .. }
            if envelope.errors.iter().any(|x| {
                matches!(
                    x.code,
                    oci_client::errors::OciErrorCode::ManifestUnknown | oci_client::errors::OciErrorCode::NameUnknown
                )
            }) =>
        {
            ErrorKind::NotFound
        }
        E::RequestError(_) => ErrorKind::Unavailable,
        _ => ErrorKind::Internal,
    };
    let message = match kind {
        ErrorKind::Unauthenticated => format!("{what}: the registry refused the credentials"),
        _ => format!("{what}: {e}"),
    };
    Error::new(kind, message).with_source(e)
}

/// Pull `reference` from its registry into the content store as image `reference.whole()`,
/// then unpack it. Blobs stream from the registry into containerd; each is verified against its
/// digest on commit.
pub async fn pull(
    c: &Client,
    snapshotter: &str,
    reference: &oci_client::Reference,
    registry: Option<&RegistryConfig>,
) -> Result<Unpacked> {
    // rustls needs one process-wide crypto provider; ring keeps the build free of C toolchains.
    crate::install_tls_provider();
    let insecure = registry.is_some_and(|r| r.insecure);
    let protocol =
        if insecure { oci_client::client::ClientProtocol::Http } else { oci_client::client::ClientProtocol::Https };
    let client = oci_client::Client::new(oci_client::client::ClientConfig { protocol, ..Default::default() });
    let auth = match registry.and_then(|r| r.username.clone().zip(r.password.clone())) {
        Some((user, password)) => oci_client::secrets::RegistryAuth::Basic(user, password),
        None => oci_client::secrets::RegistryAuth::Anonymous,
    };
    let name = reference.whole();
    let accepted: Vec<&str> = INDEX_TYPES.iter().chain(MANIFEST_TYPES.iter()).copied().collect();
    let (top, top_digest) =
        client.pull_manifest_raw(reference, &auth, &accepted).await.map_err(|e| oci_err(&format!("pull {name}"), e))?;
    let top_json = json(&top, "manifest")?;
    let top_type = top_json["mediaType"].as_str().map(str::to_string).unwrap_or_else(|| {
        if top_json["manifests"].is_array() { INDEX_TYPES[0].to_string() } else { MANIFEST_TYPES[0].to_string() }
    });
    let lease = create_lease(c).await?;
    let result = async {
        write_bytes(c, &lease, &top, &top_digest).await?;
        let manifest = if INDEX_TYPES.contains(&top_type.as_str()) {
            let arch = std::env::consts::ARCH.replace("x86_64", "amd64").replace("aarch64", "arm64");
            let entries = top_json["manifests"].as_array().cloned().unwrap_or_default();
            let chosen = entries
                .iter()
                .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch.as_str())
                .or_else(|| entries.first())
                .ok_or_else(|| Error::invalid("the image index lists no manifests"))?;
            let d = descriptor(chosen)?;
            let (body, digest) = client
                .pull_manifest_raw(&reference.clone_with_digest(d.digest.clone()), &auth, &MANIFEST_TYPES)
                .await
                .map_err(|e| oci_err(&format!("pull {name}"), e))?;
            write_bytes(c, &lease, &body, &digest).await?;
            json(&body, "manifest")?
        } else {
            top_json.clone()
        };
        let mut blobs = vec![descriptor(&manifest["config"])?];
        for l in manifest["layers"].as_array().cloned().unwrap_or_default() {
            blobs.push(descriptor(&l)?);
        }
        for d in blobs {
            if content_exists(c, &d.digest).await? {
                continue;
            }
            let oci = oci_client::manifest::OciDescriptor {
                media_type: d.media_type.clone(),
                digest: d.digest.clone(),
                size: d.size,
                ..Default::default()
            };
            let mut stream = client
                .pull_blob_stream(reference, &oci)
                .await
                .map_err(|e| oci_err(&format!("pull {}", d.digest), e))?
                .stream;
            let (mut tx, rx) = mpsc::channel::<Vec<u8>>(8);
            let feed = tokio::spawn(async move {
                while let Some(chunk) = stream.next().await {
                    match chunk {
                        Ok(bytes) => {
                            if tx.send(bytes.to_vec()).await.is_err() {
                                return;
                            }
                        }
                        // A broken download ends early: write_blob sees the short size.
                        Err(_) => return,
                    }
                }
            });
            let written = write_blob(c, &lease, &d.digest, d.size, rx).await;
            let _ = feed.await;
            written?;
        }
        let target = Descriptor {
            media_type: top_type.clone(),
            digest: top_digest.clone(),
            size: top.len() as i64,
            annotations: HashMap::new(),
        };
        resolve_manifest(c, &target).await?;
        put_image(c, &name, target).await
    }
    .await;
    let unpacked = match result {
        Ok(()) => unpack(c, snapshotter, &name).await,
        Err(e) => Err(e),
    };
    delete_lease(c, &lease).await;
    unpacked
}

/// Write an in-memory blob whose digest is known.
async fn write_bytes(c: &Client, lease: &str, data: &[u8], digest: &str) -> Result<()> {
    let actual = format!("sha256:{}", hex::encode(sha2::Sha256::digest(data)));
    if actual != digest {
        return Err(Error::invalid(format!("the registry sent content for {digest} that hashes to {actual}")));
    }
    let (mut tx, rx) = mpsc::channel(4);
    let chunks: Vec<Vec<u8>> = data.chunks(CHUNK).map(<[u8]>::to_vec).collect();
    let feed = tokio::spawn(async move {
        for ch in chunks {
            if tx.send(ch).await.is_err() {
                break;
            }
        }
    });
    let r = write_blob(c, lease, digest, data.len() as i64, rx).await;
    let _ = feed.await;
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chain_ids_follow_the_spec() {
        let ids = chain_ids(&["sha256:a".into(), "sha256:b".into()]);
        assert_eq!(ids[0], "sha256:a");
        assert_eq!(ids[1], format!("sha256:{}", hex::encode(sha2::Sha256::digest(b"sha256:a sha256:b"))));
    }
}
