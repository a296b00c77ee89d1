//! [`crate::ports::BackupTarget`] conformance: what every backup target must do.

use bytes::Bytes;
use futures::channel::oneshot;
use futures::stream::{self, BoxStream, StreamExt};

use super::*;
use crate::ports::BackupTarget;

/// Bytes of the large object: more than two 8 MiB upload parts, not a multiple of anything.
const LARGE: usize = (17 << 20) + 123;

/// `data` as a stream of `size`-byte chunks.
fn chunked(data: &[u8], size: usize) -> BoxStream<'static, crate::Result<Bytes>> {
    let chunks: Vec<crate::Result<Bytes>> = data.chunks(size).map(|c| Ok(Bytes::copy_from_slice(c))).collect();
    stream::iter(chunks).boxed()
}

/// Everything stored under `key`.
async fn read_all(target: &dyn BackupTarget, key: &str) -> crate::Result<Vec<u8>> {
    let mut got = target.get(key).await?;
    let mut out = Vec::new();
    while let Some(chunk) = got.next().await {
        let chunk: Bytes = chunk?;
        out.extend_from_slice(&chunk);
    }
    Ok(out)
}

/// `first`, then — once the put asks for more, which means it holds `first` — a signal on
/// `reached`, a wait for `go`, and `rest` (or, when `rest` is `None`, an error cutting the put).
fn paused(
    first: Vec<u8>,
    rest: Option<Vec<u8>>,
    reached: oneshot::Sender<()>,
    go: oneshot::Receiver<()>,
) -> BoxStream<'static, crate::Result<Bytes>> {
    let tail = async move {
        let _ = reached.send(());
        let _ = go.await;
        rest.map(Bytes::from).ok_or_else(|| crate::Error::new(ErrorKind::Unavailable, "the producer failed"))
    };
    stream::once(async move { Ok(Bytes::from(first)) }).chain(stream::once(tail)).boxed()
}

/// Put `first` + `rest` under `key` with a pause in between, and return what `get` of the key
/// gave during the pause, and how the put ended.
async fn put_observed(
    target: &dyn BackupTarget,
    key: &str,
    first: Vec<u8>,
    rest: Option<Vec<u8>>,
) -> (crate::Result<Vec<u8>>, crate::Result<()>) {
    let (reached_tx, reached_rx) = oneshot::channel();
    let (go_tx, go_rx) = oneshot::channel();
    let put = target.put(key, paused(first, rest, reached_tx, go_rx));
    let observe = async {
        let _ = reached_rx.await;
        let seen = read_all(target, key).await;
        let _ = go_tx.send(());
        seen
    };
    futures::join!(observe, put)
}

/// [`crate::ports::BackupTarget`] conformance: the guarantees of the port's doc comment, on a
/// target that holds nothing below `prefix` (which keeps concurrent runs apart).
pub async fn backup_target(target: &dyn BackupTarget, prefix: &str) -> crate::Result<()> {
    let key = |name: &str| format!("{prefix}/{name}");

    // Missing keys.
    assert_eq!(kind(read_all(target, &key("missing.bin")).await), ErrorKind::NotFound, "get of a missing key");
    assert_eq!(kind(target.delete(&key("missing.bin")).await), ErrorKind::NotFound, "delete of a missing key");

    // Put, get back identical bytes.
    let one = noise(100_000, 1);
    target.put(&key("a/one.bin"), chunked(&one, 4096)).await.context("put")?;
    assert_eq!(read_all(target, &key("a/one.bin")).await.context("get")?, one, "get returns the stored bytes");

    // A key is invisible until its put completes.
    let (first, rest) = (noise(5000, 2), noise(7000, 3));
    let (seen, put) = put_observed(target, &key("b/two.bin"), first.clone(), Some(rest.clone())).await;
    assert_eq!(kind(seen), ErrorKind::NotFound, "an object is invisible while its put is under way");
    put.context("paused put")?;
    let whole = [first, rest].concat();
    assert_eq!(read_all(target, &key("b/two.bin")).await.context("get")?, whole, "a paused put stores everything");

    // An interrupted put leaves no object.
    let (seen, put) = put_observed(target, &key("c/cut.bin"), noise(3000, 4), None).await;
    assert_eq!(kind(seen), ErrorKind::NotFound, "an object is invisible while its put is under way");
    assert!(put.is_err(), "an error in the stream fails the put");
    assert_eq!(
        kind(read_all(target, &key("c/cut.bin")).await),
        ErrorKind::NotFound,
        "an interrupted put stores nothing"
    );

    // Overwrite: the old bytes stay until a replacing put completes, and through an interrupted one.
    let (seen, put) = put_observed(target, &key("a/one.bin"), noise(2000, 5), None).await;
    assert_eq!(seen.context("get during a replacing put")?, one, "the old object is kept during a put");
    assert!(put.is_err(), "an error in the stream fails the put");
    assert_eq!(
        read_all(target, &key("a/one.bin")).await.context("get")?,
        one,
        "an interrupted put keeps the old object"
    );
    let (first, rest) = (noise(1500, 6), noise(2500, 7));
    let (seen, put) = put_observed(target, &key("a/one.bin"), first.clone(), Some(rest.clone())).await;
    assert_eq!(seen.context("get during a replacing put")?, one, "the old object is kept during a put");
    put.context("replacing put")?;
    let replaced = [first, rest].concat();
    assert_eq!(read_all(target, &key("a/one.bin")).await.context("get")?, replaced, "a completed put replaces");

    // Delete.
    target.delete(&key("a/one.bin")).await.context("delete")?;
    assert_eq!(kind(read_all(target, &key("a/one.bin")).await), ErrorKind::NotFound, "a deleted object is gone");
    assert_eq!(kind(target.delete(&key("a/one.bin")).await), ErrorKind::NotFound, "a second delete");
    assert_eq!(read_all(target, &key("b/two.bin")).await.context("get")?, whole, "delete touches one key");

    // A large stream, uploaded in several parts.
    let large = noise(LARGE, 8);
    target.put(&key("large.bin"), chunked(&large, (1 << 20) + 7)).await.context("large put")?;
    let got = read_all(target, &key("large.bin")).await.context("large get")?;
    assert!(got.len() == large.len() && got == large, "a large object comes back intact ({} bytes)", got.len());

    target.delete(&key("large.bin")).await.context("cleanup")?;
    target.delete(&key("b/two.bin")).await.context("cleanup")?;
    Ok(())
}
