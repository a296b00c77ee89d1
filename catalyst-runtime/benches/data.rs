//! Data-plane figures, each against a baseline in the same run:
//! 1. backup throughput (the node's whole backup path: tar + zstd -3 + SHA-256 into local
//!    storage) vs `tar -c | zstd -3` of the same tree (goal: at least 0.9×);
//! 2. SFTP put and get of a large file through our server vs OpenSSH's sftp-server, both
//!    driven by the OpenSSH `sftp` client (goal: at least 0.7×).
//!
//! Run: `cargo bench -p catalyst-runtime --bench data` (as root: the baseline sshd needs a
//! password account). `CATALYST_BENCH_SFTP_MIB` sets the SFTP file size (default 1024).

#[path = "../tests/it/sshd.rs"]
#[allow(dead_code)] // shared with the tests, which use all of it
mod sshd;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use catalyst_core::clock::SystemClock;
use catalyst_core::id::{BackupId, ServerId};
use catalyst_core::model::{BackupStorage, Limits, StopAction};
use catalyst_core::ports::{FileAccess, SftpAuthority};
use catalyst_core::protocol::{NodeEvent, NodeRequest, ServerSpec};
use catalyst_core::testing::FakeRuntime;
use catalyst_runtime::node::{DaemonConfig, NodeDaemon, SftpConfig, serve_sftp};
use futures::StreamExt;

const MIB: usize = 1 << 20;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn sh(cmd: &str) {
    let ok = std::process::Command::new("sh").arg("-c").arg(cmd).status().expect("sh").success();
    assert!(ok, "{cmd}");
}

/// Game-server-like data: a world of semi-compressible region files and many small configs.
fn make_tree(root: &Path) -> u64 {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let mut total = 0;
    std::fs::create_dir_all(root.join("world/region")).expect("dirs");
    for i in 0..48 {
        // Runs of repeated bytes with noise, like chunk data: compresses about 3:1.
        let mut data = Vec::with_capacity(2 * MIB);
        while data.len() < 2 * MIB {
            let r = next();
            let run = (r % 24) as usize + 1;
            data.extend(std::iter::repeat_n((r >> 8) as u8 & 0x3f, run));
            data.extend_from_slice(&r.to_le_bytes()[..2]);
        }
        data.truncate(2 * MIB);
        total += data.len() as u64;
        std::fs::write(root.join(format!("world/region/r.{i}.mca")), data).expect("region");
    }
    for i in 0..2000 {
        let dir = root.join(format!("plugins/p{}", i % 40));
        std::fs::create_dir_all(&dir).expect("plugins");
        let text: String = (0..200).map(|j| format!("key{j}={}\n", next() % 1000)).collect();
        total += text.len() as u64;
        std::fs::write(dir.join(format!("config{i}.yml")), text).expect("config");
    }
    total
}

fn spec(id: ServerId) -> ServerSpec {
    ServerSpec {
        server_id: id,
        image: "img".into(),
        startup: "./run".into(),
        env: Default::default(),
        limits: Limits { disk_mb: 1 << 20, ..Limits::default() },
        allocations: vec![],
        stop: StopAction::Command("stop".into()),
        done_patterns: vec![],
        install: None,
        restart_policy: Default::default(),
        startup_mode: Default::default(),
        config_files: vec![],
        file_denylist: vec![],
    }
}

async fn backup_bench(daemon: &NodeDaemon, id: ServerId, root: &Path, scratch: &Path) {
    let bytes = make_tree(root) as f64;
    let out = scratch.join("baseline.tar.zst");
    let baseline = || {
        let _ = std::fs::remove_file(&out);
        let t = Instant::now();
        sh(&format!("tar -cf - -C {} . | zstd -3 -q -o {}", root.display(), out.display()));
        t.elapsed().as_secs_f64()
    };
    baseline(); // warm the page cache for both
    let mut events = daemon.subscribe();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut sizes = (0, 0);
    for _ in 0..3 {
        theirs.push(bytes / baseline() / 1e6);
        sizes.1 = std::fs::metadata(&out).expect("baseline out").len();
        let backup = BackupId::new();
        let storage = BackupStorage::Local { directory: "bench-backups".into() };
        let t = Instant::now();
        daemon.handle(NodeRequest::Backup { server_id: id, backup_id: backup, storage }).await.expect("backup");
        loop {
            let (_, event) = events.next().await.expect("events");
            if let NodeEvent::BackupDone { backup_id, result, .. } = event
                && backup_id == backup
            {
                sizes.0 = result.expect("backup").size_bytes;
                break;
            }
        }
        ours.push(bytes / t.elapsed().as_secs_f64() / 1e6);
    }
    let (ours, theirs) = (median(ours), median(theirs));
    println!("backup of {:.0} MB ({} files):", bytes / 1e6, 2048);
    println!("  tar -c | zstd -3   {theirs:8.1} MB/s  ({:.1} MB stored)", sizes.1 as f64 / 1e6);
    println!("  catalyst backup    {ours:8.1} MB/s  ({:.1} MB stored, SHA-256 included)", sizes.0 as f64 / 1e6);
    println!("  ratio              {:.2}x  (goal >= 0.9x)", ours / theirs);
}

/// Accepts one password for every server (the data path is what is measured).
#[derive(Debug)]
struct Fixed;

#[async_trait]
impl SftpAuthority for Fixed {
    async fn file_access(&self, _: ServerId, credential: &str) -> catalyst_core::Result<FileAccess> {
        if credential != sshd::SFTP_PASSWORD {
            return Err(catalyst_core::Error::unauthenticated("wrong password"));
        }
        Ok(FileAccess { user_id: None, read: true, write: true, delete: true })
    }
}

/// Seconds for one `sftp` batch command.
fn sftp(port: u16, user: &str, dir: &Path, command: &str) -> f64 {
    let batch = dir.join("batch");
    std::fs::write(&batch, format!("{command}\n")).expect("batch");
    let t = Instant::now();
    let out = std::process::Command::new("sshpass")
        .arg("-e")
        .arg("sftp")
        .args(["-o", "BatchMode=no", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"])
        .args(["-o", "LogLevel=ERROR", "-P", &port.to_string(), "-b"])
        .arg(&batch)
        .arg(format!("{user}@127.0.0.1"))
        .env("SSHPASS", sshd::SFTP_PASSWORD)
        .current_dir(dir)
        .output()
        .expect("sftp");
    assert!(out.status.success(), "{command}: {}", String::from_utf8_lossy(&out.stderr));
    t.elapsed().as_secs_f64()
}

async fn sftp_bench(daemon: &NodeDaemon, id: ServerId, root: &Path, scratch: &Path) {
    let Some(openssh) = sshd::sshd() else { return };
    let mib: usize = std::env::var("CATALYST_BENCH_SFTP_MIB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let local = scratch.join("big.bin");
    sh(&format!("head -c {}M /dev/urandom > {}", mib, local.display()));
    let keys = tempfile::tempdir().expect("keys");
    let config = SftpConfig::with_host_key_file(&keys.path().join("host")).expect("host key");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let ours = listener.local_addr().expect("addr").port();
    tokio::spawn(serve_sftp(listener, daemon.clone(), Arc::new(Fixed), config));
    let remote_dir = format!("/home/{}/bench-{}", sshd::SFTP_USER, uuid::Uuid::new_v4().simple());
    std::fs::create_dir_all(&remote_dir).expect("remote dir");
    sh(&format!("chown {} {remote_dir}", sshd::SFTP_USER));
    let bytes = (mib * MIB) as f64;
    let user = format!("bench.{id}");
    let (dir, scratch_s) = (remote_dir.as_str(), scratch);
    let mut rows = Vec::new();
    for (what, theirs_cmd, ours_cmd) in [
        ("put", format!("put big.bin {dir}/big.bin"), "put big.bin big.bin".to_string()),
        ("get", format!("get {dir}/big.bin back.bin"), "get big.bin back.bin".to_string()),
    ] {
        let (mut t, mut o) = (Vec::new(), Vec::new());
        for _ in 0..2 {
            t.push(bytes / sftp(openssh.port, sshd::SFTP_USER, scratch_s, &theirs_cmd) / 1e6);
            o.push(bytes / sftp(ours, &user, scratch_s, &ours_cmd) / 1e6);
        }
        rows.push((what, median(o), median(t)));
    }
    assert_eq!(
        std::fs::metadata(root.join("big.bin")).expect("uploaded").len(),
        (mib * MIB) as u64,
        "the upload arrived whole"
    );
    println!("SFTP of {mib} MiB with OpenSSH's sftp client:");
    for (what, o, t) in rows {
        println!(
            "  {what}: OpenSSH sftp-server {t:7.1} MB/s, catalyst {o:7.1} MB/s, ratio {:.2}x  (goal >= 0.7x)",
            o / t
        );
    }
    let _ = std::fs::remove_dir_all(&remote_dir);
}

#[tokio::main]
async fn main() {
    let data = tempfile::tempdir().expect("data");
    let scratch = tempfile::tempdir().expect("scratch");
    let daemon = NodeDaemon::new(
        catalyst_core::id::NodeId::new(),
        Arc::new(FakeRuntime::new()),
        Arc::new(SystemClock),
        DaemonConfig { server_user: None, ..DaemonConfig::new(data.path()) },
    );
    let id = ServerId::new();
    daemon.handle(NodeRequest::Configure { spec: Box::new(spec(id)) }).await.expect("configure");
    let root = data.path().join("servers").join(id.to_string());
    backup_bench(&daemon, id, &root, scratch.path()).await;
    sftp_bench(&daemon, id, &root, scratch.path()).await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}
