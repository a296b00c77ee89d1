//! The SFTP server of a node (russh + russh-sftp). The user name names the server (`<server
//! id>` or `<anything>.<server id>`); the password is a JWT or an API key, checked by an
//! [`SftpAuthority`] (the control plane in-process, or its REST API from an agent). A session
//! is chrooted to the server's directory through the same [`Sandbox`] as the file manager;
//! each operation needs `file.read`, `file.write` or `file.delete`; the grant is checked again
//! every few seconds and a revoked or suspended session is disconnected; every change is
//! reported as a `FileActivity` event, which the control plane audits.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Component, Path};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use catalyst_core::id::ServerId;
use catalyst_core::ports::{FileAccess, SftpAuthority};
use catalyst_core::protocol::NodeEvent;
use catalyst_core::{Error, ErrorKind, Result};
use russh::keys::PrivateKey;
use russh::server::{Auth, ChannelOpenHandle, Msg, Session};
use russh::{Channel, ChannelId};
use russh_sftp::protocol::{Attrs, Data, File, FileAttributes, Handle, Name, OpenFlags, Status, StatusCode, Version};
use tokio::net::TcpListener;

use super::data::ServerFiles;
use super::data::sandbox::{Access, DirStream, Sandbox, io_err};
use crate::sync::lock;

/// What the SFTP server needs from its node: which servers it has, and a handle on one's files.
#[async_trait]
pub(crate) trait FileHost: Send + Sync + 'static {
    /// Is `id` one of the node's servers?
    fn has_server(&self, id: ServerId) -> bool;
    /// The files of server `id` whatever its state (a session checks their lock per operation).
    async fn server_files(&self, id: ServerId) -> Result<ServerFiles>;
}

/// SFTP settings.
#[derive(Debug, Clone)]
pub struct SftpConfig {
    /// The host key (persist it: clients pin it).
    pub host_key: PrivateKey,
    /// How often an open session's grant is checked again.
    pub recheck_every: Duration,
}

impl SftpConfig {
    /// Settings with the host key at `path` (an OpenSSH ed25519 key, created when missing).
    pub fn with_host_key_file(path: &Path) -> Result<Self> {
        Ok(Self { host_key: host_key(path)?, recheck_every: Duration::from_secs(5) })
    }
}

/// Load the host key at `path`, or create an ed25519 key there (mode 0600).
pub fn host_key(path: &Path) -> Result<PrivateKey> {
    if path.exists() {
        return PrivateKey::read_openssh_file(path)
            .map_err(|e| Error::invalid(format!("SFTP host key {}: {e}", path.display())));
    }
    let seed: [u8; 32] = rand::random();
    let key = PrivateKey::from(russh::keys::ssh_key::private::Ed25519Keypair::from_seed(&seed));
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::internal("cannot create the host key directory", e))?;
    }
    key.write_openssh_file(path, russh::keys::ssh_key::LineEnding::LF)
        .map_err(|e| Error::internal("cannot write the SFTP host key", std::io::Error::other(e.to_string())))?;
    Ok(key)
}

/// Serve SFTP for the servers of `host` on `listener` until the task is dropped.
pub(crate) async fn serve(
    listener: TcpListener,
    host: Arc<dyn FileHost>,
    authority: Arc<dyn SftpAuthority>,
    config: SftpConfig,
) -> std::io::Result<()> {
    use russh::server::Server as _;
    let ssh = russh::server::Config {
        keys: vec![config.host_key.clone()],
        auth_rejection_time: Duration::from_millis(500),
        auth_rejection_time_initial: Some(Duration::ZERO),
        max_auth_attempts: 3,
        inactivity_timeout: Some(Duration::from_secs(30 * 60)),
        nodelay: true,
        window_size: 8 << 20,
        maximum_packet_size: 65535,
        ..Default::default()
    };
    let mut server = Server { host, authority, recheck: config.recheck_every };
    server.run_on_socket(Arc::new(ssh), &listener).await
}

#[derive(Clone)]
struct Server {
    host: Arc<dyn FileHost>,
    authority: Arc<dyn SftpAuthority>,
    recheck: Duration,
}

impl russh::server::Server for Server {
    type Handler = Connection;

    fn new_client(&mut self, peer: Option<SocketAddr>) -> Connection {
        Connection { server: self.clone(), peer, login: None, channels: HashMap::new() }
    }
}

struct Login {
    server: ServerId,
    credential: String,
    access: FileAccess,
}

struct Connection {
    server: Server,
    peer: Option<SocketAddr>,
    login: Option<Login>,
    channels: HashMap<ChannelId, Channel<Msg>>,
}

/// The server named by a login name: the whole name, or what follows its last `.`.
fn server_in(user: &str) -> Option<ServerId> {
    user.parse().ok().or_else(|| user.rsplit_once('.').and_then(|(_, id)| id.parse().ok()))
}

impl russh::server::Handler for Connection {
    type Error = russh::Error;

    async fn auth_password(&mut self, user: &str, password: &str) -> std::result::Result<Auth, Self::Error> {
        let Some(server) = server_in(user) else { return Ok(Auth::reject()) };
        if !self.server.host.has_server(server) {
            return Ok(Auth::reject());
        }
        match self.server.authority.file_access(server, password).await {
            Ok(access) if access.read || access.write => {
                self.login = Some(Login { server, credential: password.to_string(), access });
                Ok(Auth::Accept)
            }
            Ok(_) | Err(_) => {
                tracing::info!(peer = ?self.peer, %server, "SFTP login refused");
                Ok(Auth::reject())
            }
        }
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        _session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        if self.login.is_none() || self.channels.len() >= MAX_CHANNELS {
            reply.reject(russh::ChannelOpenFailure::ResourceShortage).await;
            return Ok(());
        }
        self.channels.insert(channel.id(), channel);
        reply.accept().await;
        Ok(())
    }

    async fn channel_eof(&mut self, channel: ChannelId, session: &mut Session) -> std::result::Result<(), Self::Error> {
        session.close(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut Session,
    ) -> std::result::Result<(), Self::Error> {
        let (Some(login), Some(ch)) = (self.login.as_ref(), self.channels.remove(&channel)) else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        if name != "sftp" {
            session.channel_failure(channel)?;
            return Ok(());
        }
        let Ok(files) = self.server.host.server_files(login.server).await else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        let root = files.root().to_path_buf();
        let Ok(Ok(sandbox)) = tokio::task::spawn_blocking(move || Sandbox::open(&root)).await else {
            session.channel_failure(channel)?;
            return Ok(());
        };
        session.channel_success(channel)?;
        let handler = Files {
            files,
            access: Arc::new(std::sync::Mutex::new(login.access)),
            sandbox: Arc::new(sandbox),
            handles: HashMap::new(),
            next: 0,
        };
        let access = Arc::downgrade(&handler.access);
        watch(self.server.clone(), login.server, login.credential.clone(), access, session.handle());
        russh_sftp::server::run(ch.into_stream(), handler).await;
        Ok(())
    }
}

/// Check the session's grant every few seconds; disconnect once it is gone. The watch ends
/// with the session (when its handler, the holder of `access`, is dropped).
fn watch(
    server: Server,
    id: ServerId,
    credential: String,
    access: std::sync::Weak<std::sync::Mutex<FileAccess>>,
    handle: russh::server::Handle,
) {
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(server.recheck).await;
            let Some(access) = access.upgrade() else { return };
            match server.authority.file_access(id, &credential).await {
                Ok(a) if a.read || a.write => *lock(&access) = a,
                // The control plane is busy or unreachable: keep the session, ask again later.
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::Unavailable | ErrorKind::RateLimited | ErrorKind::Timeout | ErrorKind::Internal
                    ) => {}
                _ => {
                    *lock(&access) = FileAccess { user_id: None, read: false, write: false, delete: false };
                    let _ =
                        handle.disconnect(russh::Disconnect::ByApplication, "access revoked".into(), "en".into()).await;
                    return;
                }
            }
        }
    });
}

/// Open files and directories per session.
const MAX_HANDLES: usize = 256;
/// Entries per `readdir` answer.
const READDIR_PAGE: usize = 100;
/// Session channels a connection may open.
const MAX_CHANNELS: usize = 8;

enum Open {
    File {
        file: Arc<std::fs::File>,
        path: String,
        written: u64,
    },
    /// A directory streamed a page per `readdir`: only the page is ever held.
    Dir {
        stream: Arc<std::sync::Mutex<DirStream>>,
        done: bool,
    },
}

struct Files {
    files: ServerFiles,
    access: Arc<std::sync::Mutex<FileAccess>>,
    sandbox: Arc<Sandbox>,
    handles: HashMap<String, Open>,
    next: u64,
}

fn status_of(e: &Error) -> StatusCode {
    match e.kind() {
        ErrorKind::NotFound => StatusCode::NoSuchFile,
        ErrorKind::PermissionDenied | ErrorKind::Unauthenticated => StatusCode::PermissionDenied,
        _ => StatusCode::Failure,
    }
}

fn ok(id: u32) -> Status {
    Status { id, status_code: StatusCode::Ok, error_message: "Ok".into(), language_tag: "en-US".into() }
}

/// A client's path, made relative to the chroot: `.` and `..` resolved lexically, never
/// above the root (the sandbox refuses escapes at use anyway).
fn clean(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in Path::new(path).components() {
        match c {
            Component::Normal(p) => parts.push(p.to_str().unwrap_or("")),
            Component::ParentDir => {
                parts.pop();
            }
            _ => {}
        }
    }
    format!("/{}", parts.join("/"))
}

/// The attributes of an entry as it is: its real type (directory, link, FIFO, socket, device
/// or file) in the permission word, owner and group included.
fn attrs_of(meta: &cap_std::fs::Metadata) -> FileAttributes {
    use cap_std::fs::MetadataExt;
    FileAttributes {
        size: Some(meta.len()),
        uid: Some(meta.uid()),
        user: None,
        gid: Some(meta.gid()),
        group: None,
        permissions: Some(meta.mode()),
        atime: Some(meta.atime().max(0) as u32),
        mtime: Some(meta.mtime().max(0) as u32),
    }
}

/// The `ls -l` line of an entry (clients print it as it is): the type letter of its real type.
fn longname(name: &str, meta: &cap_std::fs::Metadata) -> String {
    use cap_std::fs::MetadataExt;
    let mode = meta.mode();
    let kind = match mode & 0o170000 {
        0o040000 => 'd',
        0o120000 => 'l',
        0o010000 => 'p',
        0o140000 => 's',
        0o020000 => 'c',
        0o060000 => 'b',
        _ => '-',
    };
    let bit = |mask: u32, c: char| if mode & mask != 0 { c } else { '-' };
    let exec = |x: u32, special: u32, set: char, unset: char| match (mode & x != 0, mode & special != 0) {
        (true, true) => set,
        (false, true) => unset,
        (true, false) => 'x',
        (false, false) => '-',
    };
    let perms: String = [
        bit(0o400, 'r'),
        bit(0o200, 'w'),
        exec(0o100, 0o4000, 's', 'S'),
        bit(0o040, 'r'),
        bit(0o020, 'w'),
        exec(0o010, 0o2000, 's', 'S'),
        bit(0o004, 'r'),
        bit(0o002, 'w'),
        exec(0o001, 0o1000, 't', 'T'),
    ]
    .into_iter()
    .collect();
    let when = chrono::DateTime::from_timestamp(meta.mtime(), 0).unwrap_or_default().format("%b %d %Y %H:%M");
    format!("{kind}{perms} {} {} {} {} {when} {name}", meta.nlink(), meta.uid(), meta.gid(), meta.len())
}

impl Files {
    fn may(&self, what: fn(&FileAccess) -> bool) -> std::result::Result<(), StatusCode> {
        // A restore or transfer owns the files: nothing goes through meanwhile.
        if self.files.is_locked() {
            return Err(StatusCode::Failure);
        }
        if what(&lock(&self.access)) { Ok(()) } else { Err(StatusCode::PermissionDenied) }
    }

    /// The template's denylist protects `path` (a cleaned, `/`-rooted path) from SFTP too.
    fn allowed(&self, path: &str) -> std::result::Result<(), StatusCode> {
        self.files.check_allowed(path.trim_start_matches('/')).map_err(|e| status_of(&e))
    }

    /// Run blocking file work against the sandbox, in one of the server's turns (shared with
    /// the file manager, so sessions cannot occupy the node's blocking threads).
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&Sandbox) -> Result<T> + Send + 'static,
    ) -> std::result::Result<T, StatusCode> {
        let sandbox = self.sandbox.clone();
        let turn = self.files.turn().await.map_err(|e| status_of(&e))?;
        match tokio::task::spawn_blocking(move || {
            let _turn = turn;
            work(&sandbox)
        })
        .await
        {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(status_of(&e)),
            Err(_) => Err(StatusCode::Failure),
        }
    }

    fn report(&self, action: &str, path: &str, bytes: u64) {
        let user_id = lock(&self.access).user_id;
        self.files.emit(NodeEvent::FileActivity {
            server_id: self.files.id(),
            user_id,
            action: action.to_string(),
            path: path.to_string(),
            bytes,
        });
    }

    fn handle(&mut self, open: Open) -> std::result::Result<String, StatusCode> {
        if self.handles.len() >= MAX_HANDLES {
            return Err(StatusCode::Failure);
        }
        self.next += 1;
        let h = self.next.to_string();
        self.handles.insert(h.clone(), open);
        Ok(h)
    }
}

impl russh_sftp::server::Handler for Files {
    type Error = StatusCode;

    fn unimplemented(&self) -> Self::Error {
        StatusCode::OpUnsupported
    }

    async fn init(
        &mut self,
        _version: u32,
        _ext: HashMap<String, String>,
    ) -> std::result::Result<Version, Self::Error> {
        Ok(Version::new())
    }

    async fn realpath(&mut self, id: u32, path: String) -> std::result::Result<Name, Self::Error> {
        Ok(Name { id, files: vec![File::dummy(clean(&path))] })
    }

    async fn stat(&mut self, id: u32, path: String) -> std::result::Result<Attrs, Self::Error> {
        self.may(|a| a.read)?;
        let path = clean(&path);
        let meta = self.blocking(move |s| s.metadata(&path)).await?;
        Ok(Attrs { id, attrs: attrs_of(&meta) })
    }

    async fn lstat(&mut self, id: u32, path: String) -> std::result::Result<Attrs, Self::Error> {
        self.may(|a| a.read)?;
        let path = clean(&path);
        let meta = self.blocking(move |s| s.symlink_metadata(&path)).await?;
        Ok(Attrs { id, attrs: attrs_of(&meta) })
    }

    async fn fstat(&mut self, id: u32, handle: String) -> std::result::Result<Attrs, Self::Error> {
        let Some(Open::File { file, path, .. }) = self.handles.get(&handle) else { return Err(StatusCode::Failure) };
        let (file, path) = (file.clone(), path.clone());
        // The open file itself, not whatever its path names now.
        let meta =
            self.blocking(move |_| cap_std::fs::Metadata::from_file(&file).map_err(|e| io_err(&path, e))).await?;
        Ok(Attrs { id, attrs: attrs_of(&meta) })
    }

    async fn opendir(&mut self, id: u32, path: String) -> std::result::Result<Handle, Self::Error> {
        self.may(|a| a.read)?;
        let path = clean(&path);
        let stream = self.blocking(move |s| s.read_dir(&path)).await?;
        Ok(Handle {
            id,
            handle: self.handle(Open::Dir { stream: Arc::new(std::sync::Mutex::new(stream)), done: false })?,
        })
    }

    async fn readdir(&mut self, id: u32, handle: String) -> std::result::Result<Name, Self::Error> {
        let stream = match self.handles.get(&handle) {
            Some(Open::Dir { done: true, .. }) => return Err(StatusCode::Eof),
            Some(Open::Dir { stream, .. }) => stream.clone(),
            _ => return Err(StatusCode::Failure),
        };
        // A page per call: an answer stays well under the client's packet limit.
        let page = self.blocking(move |_| lock(&stream).next_page(READDIR_PAGE)).await?;
        if page.is_empty() {
            if let Some(Open::Dir { done, .. }) = self.handles.get_mut(&handle) {
                *done = true;
            }
            return Err(StatusCode::Eof);
        }
        let files = page
            .iter()
            .map(|(name, meta)| File { filename: name.clone(), longname: longname(name, meta), attrs: attrs_of(meta) })
            .collect();
        Ok(Name { id, files })
    }

    async fn open(
        &mut self,
        id: u32,
        filename: String,
        pflags: OpenFlags,
        _attrs: FileAttributes,
    ) -> std::result::Result<Handle, Self::Error> {
        let access = Access {
            read: pflags.contains(OpenFlags::READ),
            write: pflags.contains(OpenFlags::WRITE),
            append: pflags.contains(OpenFlags::APPEND),
            create: pflags.contains(OpenFlags::CREATE),
            truncate: pflags.contains(OpenFlags::TRUNCATE),
            exclusive: pflags.contains(OpenFlags::EXCLUDE),
        };
        if access.read {
            self.may(|a| a.read)?;
        }
        if access.write || access.append || access.create || access.truncate {
            self.may(|a| a.write)?;
        }
        let path = clean(&filename);
        self.allowed(&path)?;
        let owner = self.files.owner();
        let opened = path.clone();
        let file = self
            .blocking(move |s| {
                let file = s.open_file_with(&opened, access)?;
                if access.create
                    && let Some((uid, gid)) = owner
                {
                    let _ = nix::unistd::fchown(&file, Some(uid.into()), Some(gid.into()));
                }
                Ok(file.into_std())
            })
            .await?;
        Ok(Handle { id, handle: self.handle(Open::File { file: Arc::new(file), path, written: 0 })? })
    }

    async fn read(&mut self, id: u32, handle: String, offset: u64, len: u32) -> std::result::Result<Data, Self::Error> {
        self.may(|a| a.read)?;
        let Some(Open::File { file, path, .. }) = self.handles.get(&handle) else { return Err(StatusCode::Failure) };
        let (file, path) = (file.clone(), path.clone());
        let len = len.min(256 * 1024) as usize;
        let data = self
            .blocking(move |_| {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; len];
                let n = file.read_at(&mut buf, offset).map_err(|e| io_err(&path, e))?;
                buf.truncate(n);
                Ok(buf)
            })
            .await?;
        if data.is_empty() && len > 0 {
            return Err(StatusCode::Eof);
        }
        Ok(Data { id, data })
    }

    async fn write(
        &mut self,
        id: u32,
        handle: String,
        offset: u64,
        data: Vec<u8>,
    ) -> std::result::Result<Status, Self::Error> {
        self.may(|a| a.write)?;
        let Some(Open::File { file, written, path }) = self.handles.get_mut(&handle) else {
            return Err(StatusCode::Failure);
        };
        let (file, path) = (file.clone(), path.clone());
        *written += data.len() as u64;
        let files = self.files.clone();
        self.blocking(move |s| {
            use std::os::unix::fs::FileExt;
            files.reserve(s, data.len() as u64)?;
            file.write_all_at(&data, offset).map_err(|e| io_err(&path, e))
        })
        .await?;
        Ok(ok(id))
    }

    async fn close(&mut self, id: u32, handle: String) -> std::result::Result<Status, Self::Error> {
        if let Some(Open::File { path, written, .. }) = self.handles.remove(&handle)
            && written > 0
        {
            self.report("file.write", &path, written);
        }
        Ok(ok(id))
    }

    async fn remove(&mut self, id: u32, filename: String) -> std::result::Result<Status, Self::Error> {
        self.may(|a| a.delete)?;
        let path = clean(&filename);
        self.allowed(&path)?;
        let p = path.clone();
        self.blocking(move |s| s.remove_file(&p)).await?;
        self.files.forget_usage();
        self.report("file.delete", &path, 0);
        Ok(ok(id))
    }

    async fn mkdir(
        &mut self,
        id: u32,
        path: String,
        _attrs: FileAttributes,
    ) -> std::result::Result<Status, Self::Error> {
        self.may(|a| a.write)?;
        let path = clean(&path);
        self.allowed(&path)?;
        let (p, owner) = (path.clone(), self.files.owner());
        self.blocking(move |s| {
            s.create_dir(&p)?;
            owner.map_or(Ok(()), |o| s.chown_tree(&p, o))
        })
        .await?;
        self.report("file.create", &path, 0);
        Ok(ok(id))
    }

    async fn rmdir(&mut self, id: u32, path: String) -> std::result::Result<Status, Self::Error> {
        self.may(|a| a.delete)?;
        let path = clean(&path);
        self.allowed(&path)?;
        let p = path.clone();
        self.blocking(move |s| s.remove_dir(&p)).await?;
        self.report("file.delete", &path, 0);
        Ok(ok(id))
    }

    async fn rename(&mut self, id: u32, oldpath: String, newpath: String) -> std::result::Result<Status, Self::Error> {
        self.may(|a| a.write)?;
        let (from, to) = (clean(&oldpath), clean(&newpath));
        self.allowed(&from)?;
        self.allowed(&to)?;
        let (f, t) = (from.clone(), to.clone());
        self.blocking(move |s| s.rename(&f, &t)).await?;
        self.report("file.rename", &format!("{from} → {to}"), 0);
        Ok(ok(id))
    }

    async fn setstat(
        &mut self,
        id: u32,
        path: String,
        attrs: FileAttributes,
    ) -> std::result::Result<Status, Self::Error> {
        self.may(|a| a.write)?;
        let path = clean(&path);
        self.allowed(&path)?;
        let p = path.clone();
        self.blocking(move |s| {
            if let Some(mode) = attrs.permissions {
                s.chmod(&p, mode & 0o777)?;
            }
            if let Some(size) = attrs.size {
                let file = s.open_file_with(&p, Access { write: true, ..Default::default() })?;
                file.set_len(size).map_err(|e| io_err(&p, e))?;
            }
            Ok(())
        })
        .await?;
        self.report("file.chmod", &path, 0);
        Ok(ok(id))
    }

    async fn fsetstat(
        &mut self,
        id: u32,
        handle: String,
        attrs: FileAttributes,
    ) -> std::result::Result<Status, Self::Error> {
        let Some(Open::File { path, .. }) = self.handles.get(&handle) else { return Err(StatusCode::Failure) };
        let path = path.clone();
        self.setstat(id, path, attrs).await
    }

    async fn readlink(&mut self, id: u32, path: String) -> std::result::Result<Name, Self::Error> {
        self.may(|a| a.read)?;
        let path = clean(&path);
        let target = self.blocking(move |s| s.read_link(&path)).await?;
        Ok(Name { id, files: vec![File::dummy(target)] })
    }
}
