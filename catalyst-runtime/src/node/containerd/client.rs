//! A containerd connection bound to one namespace, and the mapping of gRPC errors.

use catalyst_core::{Error, ErrorKind};
use tonic::metadata::MetadataValue;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// A channel plus the namespace every request carries.
#[derive(Debug, Clone)]
pub struct Client {
    pub channel: Channel,
    namespace: MetadataValue<tonic::metadata::Ascii>,
}

impl Client {
    pub fn new(channel: Channel, namespace: &str) -> Result<Self, Error> {
        let namespace =
            namespace.parse().map_err(|_| Error::invalid(format!("bad containerd namespace {namespace:?}")))?;
        Ok(Self { channel, namespace })
    }

    /// A request in our namespace.
    pub fn req<T>(&self, message: T) -> Request<T> {
        let mut r = Request::new(message);
        r.metadata_mut().insert("containerd-namespace", self.namespace.clone());
        r
    }

    /// A request in our namespace whose new resources are held by `lease` (so the garbage
    /// collector leaves them alone until something references them).
    pub fn leased<T>(&self, message: T, lease: &str) -> Request<T> {
        let mut r = self.req(message);
        if let Ok(v) = lease.parse() {
            r.metadata_mut().insert("containerd-lease", v);
        }
        r
    }
}

/// Map a gRPC status onto the error taxonomy.
pub fn status_err(what: &str, s: Status) -> Error {
    let kind = match s.code() {
        Code::NotFound => ErrorKind::NotFound,
        Code::AlreadyExists | Code::FailedPrecondition | Code::Aborted => ErrorKind::Conflict,
        Code::Unavailable => ErrorKind::Unavailable,
        Code::DeadlineExceeded => ErrorKind::Timeout,
        Code::InvalidArgument => ErrorKind::InvalidInput,
        _ => ErrorKind::Internal,
    };
    Error::new(kind, format!("{what}: {}", s.message())).with_source(s)
}
