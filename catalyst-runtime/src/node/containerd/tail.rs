//! Follow a container's log file: the shim appends stdout and stderr to it (no back-pressure
//! on the game, and it survives agent restarts); we read lines as inotify reports writes, and
//! truncate the file once we have read all of a large one.

use std::io::SeekFrom;
use std::path::PathBuf;
use std::time::Duration;

use catalyst_core::model::LogStream;
use catalyst_core::ports::ConsoleLine;
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio::sync::{mpsc, watch};

const MAX_LINE: usize = 64 * 1024;
const TRUNCATE_AT: u64 = 8 << 20;

/// Lines of `path` from byte `start`, until `exited` turns true and the file is drained, or
/// the reader goes away. (The caller fixes `start` before returning, so nothing written after
/// the attach is missed.)
pub fn follow(path: PathBuf, start: u64, mut exited: watch::Receiver<bool>) -> BoxStream<'static, ConsoleLine> {
    let (tx, rx) = mpsc::channel::<ConsoleLine>(1024);
    tokio::spawn(async move {
        let Ok(mut file) = tokio::fs::OpenOptions::new().read(true).write(true).open(&path).await else { return };
        let mut pos = file.seek(SeekFrom::Start(start)).await.unwrap_or(0);
        let mut events = inotify::Inotify::init().ok().and_then(|i| {
            i.watches().add(&path, inotify::WatchMask::MODIFY).ok()?;
            i.into_event_stream([0u8; 1024]).ok()
        });
        let mut partial: Vec<u8> = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut gone = false;
        loop {
            let n = match file.read(&mut buf).await {
                Ok(n) => n,
                Err(_) => return,
            };
            if n > 0 {
                pos += n as u64;
                partial.extend_from_slice(&buf[..n]);
                let mut start = 0;
                while let Some(i) = partial[start..].iter().position(|b| *b == b'\n') {
                    let line = String::from_utf8_lossy(&partial[start..start + i]).trim_end_matches('\r').to_string();
                    if tx.send(ConsoleLine { stream: LogStream::Stdout, line }).await.is_err() {
                        return;
                    }
                    start += i + 1;
                }
                partial.drain(..start);
                if partial.len() > MAX_LINE {
                    let line = String::from_utf8_lossy(&partial).to_string();
                    partial.clear();
                    if tx.send(ConsoleLine { stream: LogStream::Stdout, line }).await.is_err() {
                        return;
                    }
                }
                continue;
            }
            // At the end: done if the task is gone, else shrink a large file and wait for writes.
            if gone || *exited.borrow() {
                // The shim may still be copying the last output when the exit is reported:
                // read on while the file keeps growing, and stop once it has been quiet.
                if settle(&mut events, &file, pos).await {
                    continue;
                }
                if !partial.is_empty() {
                    let line = String::from_utf8_lossy(&partial).to_string();
                    let _ = tx.send(ConsoleLine { stream: LogStream::Stdout, line }).await;
                }
                return;
            }
            if pos >= TRUNCATE_AT && file.set_len(0).await.is_ok() {
                pos = file.seek(SeekFrom::Start(0)).await.unwrap_or(0);
            }
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(pos);
            if len < pos {
                // Someone else truncated it: start over.
                pos = file.seek(SeekFrom::Start(0)).await.unwrap_or(0);
                continue;
            }
            let wake = async {
                match events.as_mut() {
                    Some(ev) => {
                        let _ = tokio::time::timeout(Duration::from_millis(500), ev.next()).await;
                    }
                    None => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            };
            tokio::select! {
                () = wake => {}
                changed = exited.changed() => gone = changed.is_err(),
            }
        }
    });
    futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|l| (l, rx)) }).boxed()
}

/// How long a log stays quiet after the exit before it counts as complete.
const QUIET: Duration = Duration::from_millis(200);

/// After the exit: did the file grow past `pos` within [`QUIET`]?
async fn settle(events: &mut Option<inotify::EventStream<[u8; 1024]>>, file: &tokio::fs::File, pos: u64) -> bool {
    let grew = || async { file.metadata().await.map(|m| m.len() > pos).unwrap_or(false) };
    if grew().await {
        return true;
    }
    match events.as_mut() {
        Some(ev) => {
            let _ = tokio::time::timeout(QUIET, ev.next()).await;
        }
        None => tokio::time::sleep(QUIET).await,
    }
    grew().await
}
