//! Node runtime figures, each against a baseline in the same run:
//! 1. create + start N containers through `ContainerdRuntime` vs raw `ctr run -d` of the same
//!    image (goal: at most 1.2× raw);
//! 2. console lines through the ring buffer to 100 live readers (goal: ≥ 100 000 lines/s,
//!    nothing lost);
//! 3. resident memory of this process with an idle daemon, then with 50 running servers (goal:
//!    ≤ 20 MB idle + 1 MB per server).
//!
//! Run: `cargo bench -p catalyst-runtime --bench node` (needs containerd and busybox-static).

#[path = "../tests/it/images.rs"]
#[allow(dead_code)] // shared with the tests, which use all of it
mod images;

use std::sync::Arc;
use std::time::{Duration, Instant};

use catalyst_core::clock::SystemClock;
use catalyst_core::id::{NodeId, ServerId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Allocation, Limits, LogStream, StopAction};
use catalyst_core::ports::{ContainerRuntime, ContainerSpec, Mount, NetworkMode, Signal};
use catalyst_core::protocol::{NodeRequest, ServerSpec};
use catalyst_runtime::node::{Console, ConsoleConfig, ContainerdConfig, ContainerdRuntime, DaemonConfig, NodeDaemon};

const IMAGE: &str = "catalyst.bench/game:1";
const GAME: &str = include_str!("../tests/fixtures/game.sh");

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find_map(|l| {
                l.strip_prefix("VmRSS:").and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            })
        })
        .unwrap_or(0)
}

fn spec(id: &str, dir: &std::path::Path) -> ContainerSpec {
    let source = dir.join(id);
    std::fs::create_dir_all(&source).expect("dir");
    ContainerSpec {
        id: id.into(),
        image: IMAGE.into(),
        command: vec!["/bin/sleep".into(), "60".into()],
        env: Default::default(),
        mounts: vec![Mount {
            source: source.to_string_lossy().into_owned(),
            target: "/home/container".into(),
            read_only: false,
        }],
        workdir: "/home/container".into(),
        limits: Limits::default(),
        allocations: vec![],
        network: NetworkMode::Host,
        tmpfs_mb: 100,
        read_only_rootfs: false,
        user: None,
    }
}

async fn create_start(rt: &ContainerdRuntime, n: usize, dir: &std::path::Path) -> Duration {
    let ids: Vec<String> = (0..n).map(|i| format!("bench-ours-{i}")).collect();
    let t = Instant::now();
    for id in &ids {
        rt.create(&spec(id, dir)).await.expect("create");
        rt.start(id).await.expect("start");
    }
    let took = t.elapsed();
    for id in &ids {
        rt.signal(id, Signal::Kill).await.expect("kill");
        rt.wait(id).await.expect("wait");
        rt.remove(id).await.expect("remove");
    }
    took
}

fn ctr_run(n: usize) -> Duration {
    let ids: Vec<String> = (0..n).map(|i| format!("bench-raw-{i}")).collect();
    let t = Instant::now();
    for id in &ids {
        let ok = std::process::Command::new("ctr")
            .args(["-n", "catalyst-bench", "run", "-d", IMAGE, id, "/bin/sleep", "60"])
            .stdout(std::process::Stdio::null())
            .status()
            .expect("ctr")
            .success();
        assert!(ok, "ctr run failed");
    }
    let took = t.elapsed();
    for id in &ids {
        let _ = std::process::Command::new("ctr")
            .args(["-n", "catalyst-bench", "task", "kill", "-s", "SIGKILL", id])
            .status();
        for _ in 0..50 {
            let deleted = std::process::Command::new("ctr")
                .args(["-n", "catalyst-bench", "task", "delete", id])
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|s| s.success());
            if deleted {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = std::process::Command::new("ctr").args(["-n", "catalyst-bench", "container", "delete", id]).status();
    }
    took
}

async fn console_fanout(readers: usize, lines: usize) -> (f64, u64) {
    let config = ConsoleConfig { max_lines_per_window: u32::MAX, history: 4096, ..ConsoleConfig::default() };
    let console = Arc::new(Console::new(config, 1));
    let consumed = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut handles = Vec::new();
    for _ in 0..readers {
        let mut reader = console.reader(None);
        let consumed = consumed.clone();
        handles.push(tokio::spawn(async move {
            let (mut got, mut lost) = (0u64, 0u64);
            while got + lost < lines as u64 {
                match reader.next().await {
                    Some(batch) => {
                        got += batch.entries.len() as u64;
                        lost += batch.missed;
                        consumed
                            .fetch_add(batch.entries.len() as u64 + batch.missed, std::sync::atomic::Ordering::Relaxed);
                    }
                    None => break,
                }
            }
            lost
        }));
    }
    // Push 1000 lines, then wait until every reader has them: the rate the fan-out sustains
    // with nothing lost (the ring holds 4096 lines, so no reader can fall off it).
    let t = Instant::now();
    let now = chrono::Utc::now();
    for i in 0..lines {
        let _ =
            console.push(LogStream::Stdout, format!("[12:00:00 INFO]: line {i} of the benchmark"), Instant::now(), now);
        if i % 1000 == 999 {
            let want = (i as u64 + 1) * readers as u64;
            while consumed.load(std::sync::atomic::Ordering::Relaxed) < want {
                tokio::task::yield_now().await;
            }
        }
    }
    let mut lost = 0;
    for h in handles {
        lost += h.await.unwrap_or(u64::MAX);
    }
    (lines as f64 / t.elapsed().as_secs_f64(), lost)
}

async fn daemon_memory(rt: Arc<ContainerdRuntime>, servers: usize, dir: &std::path::Path) -> (u64, u64) {
    let before = rss_kib();
    let daemon = NodeDaemon::new(NodeId::new(), rt.clone(), Arc::new(SystemClock), DaemonConfig::new(dir));
    let _events = daemon.subscribe();
    let idle = rss_kib();
    let mut ids = Vec::new();
    for i in 0..servers {
        let id = ServerId::new();
        let mut env = std::collections::BTreeMap::new();
        env.insert("SERVER_PORT".to_string(), (40_000 + i).to_string());
        let spec = ServerSpec {
            server_id: id,
            image: IMAGE.into(),
            startup: "exec /usr/local/bin/game".into(),
            env,
            limits: Limits { memory_mb: 64, ..Limits::default() },
            allocations: vec![Allocation { ip: "127.0.0.1".into(), port: 40_000 + i as u16, primary: true }],
            stop: StopAction::Command("stop".into()),
            done_patterns: vec![],
            install: None,
            restart_policy: Default::default(),
            startup_mode: Default::default(),
            config_files: vec![],
            file_denylist: vec![],
        };
        daemon.handle(NodeRequest::Configure { spec: Box::new(spec) }).await.expect("configure");
        daemon.handle(NodeRequest::Install { server_id: id }).await.expect("install");
        while daemon.state(id).await.expect("state") != ServerState::Stopped {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        daemon.handle(NodeRequest::Start { server_id: id }).await.expect("start");
        ids.push(id);
    }
    for id in &ids {
        while daemon.state(*id).await.expect("state") != ServerState::Running {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        daemon.handle(NodeRequest::Command { server_id: *id, line: "hello".into() }).await.expect("command");
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = rss_kib();
    for id in &ids {
        let _ = daemon.handle(NodeRequest::Kill { server_id: *id }).await;
    }
    for id in &ids {
        while daemon.state(*id).await.map(|s| s.has_process()).unwrap_or(false) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let _ = daemon.handle(NodeRequest::Delete { server_id: *id }).await;
    }
    let _ = before;
    (idle, loaded)
}

fn main() {
    let rt = tokio::runtime::Runtime::new().expect("tokio");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut config = ContainerdConfig::new(dir.path().join("state"));
        config.namespace = "catalyst-bench".into();
        config.cgroup_parent = "catalyst-bench".into();
        let runtime = ContainerdRuntime::connect(config).await.expect("containerd");
        let layout = images::build_game_image(dir.path(), IMAGE, GAME);
        runtime.import_oci_layout(&layout, IMAGE).await.expect("import");

        println!("\n== 1. create + start containers (same image, same namespace) ==");
        let n = 10;
        // Warm both paths once.
        create_start(&runtime, 2, dir.path()).await;
        ctr_run(2);
        let mut ratios = Vec::new();
        for round in 0..3 {
            let ours = create_start(&runtime, n, dir.path()).await;
            let raw = ctr_run(n);
            let ratio = ours.as_secs_f64() / raw.as_secs_f64();
            ratios.push(ratio);
            println!(
                "round {round}: ContainerdRuntime {:.1} ms/container, ctr run {:.1} ms/container, ratio {ratio:.2}x",
                ours.as_secs_f64() * 1000.0 / n as f64,
                raw.as_secs_f64() * 1000.0 / n as f64
            );
        }
        ratios.sort_by(f64::total_cmp);
        println!("median ratio: {:.2}x raw ctr (goal <= 1.2x)", ratios[1]);

        println!("\n== 2. console fan-out to 100 readers ==");
        let (rate, lost) = console_fanout(100, 200_000).await;
        println!("{rate:.0} lines/s to 100 readers, {lost} lost (goal >= 100000 lines/s, 0 lost)");

        println!("\n== 3. daemon resident memory ==");
        let (idle, loaded) = daemon_memory(Arc::new(runtime), 50, &dir.path().join("node")).await;
        println!(
            "idle {:.1} MB, with 50 running servers {:.1} MB: {:.2} MB per server (goal <= 20 MB idle + 1 MB per server)",
            idle as f64 / 1024.0,
            loaded as f64 / 1024.0,
            (loaded.saturating_sub(idle)) as f64 / 1024.0 / 50.0
        );
    });
}
