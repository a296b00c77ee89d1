//! The node runtime suite: the daemon driving a real runtime through install, start, console,
//! stop (by command, by signal, by SIGKILL after the grace period), crash restarts, OOM,
//! floods, cgroup limits and ports. Runs on every runtime; container-only parts are marked.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use catalyst_core::clock::SystemClock;
use catalyst_core::id::{NodeId, ServerId};
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Allocation, DonePattern, InstallScript, Limits, LogStream, StopAction};
use catalyst_core::ports::ContainerRuntime;
use catalyst_core::protocol::{NodeEvent, NodeRequest, ServerSpec};
use catalyst_core::restart::{RestartMode, RestartPolicy};
use catalyst_runtime::node::{Cgroup, ConsoleConfig, DaemonConfig, NodeDaemon};
use futures::channel::mpsc;

pub const GAME: &str = include_str!("../fixtures/game.sh");

/// How a runtime runs the game script.
pub struct Flavor {
    pub name: &'static str,
    pub runtime: Arc<dyn ContainerRuntime>,
    pub image: String,
    pub startup: String,
    pub install_image: String,
    pub install_script: String,
    /// Does the runtime put servers in cgroups we can inspect (`<parent>/<id>`)?
    pub cgroup_parent: Option<String>,
    /// How containers reach the network.
    pub network: catalyst_core::ports::NetworkMode,
}

pub struct Harness {
    pub daemon: NodeDaemon,
    pub flavor: Flavor,
    events: tokio::sync::Mutex<mpsc::UnboundedReceiver<(NodeId, NodeEvent)>>,
    lines: std::sync::Mutex<Vec<(ServerId, LogStream, String)>>,
    reports: std::sync::Mutex<Vec<NodeEvent>>,
    path: std::path::PathBuf,
    _dir: Option<tempfile::TempDir>,
}

/// A port no other test of this process uses and nothing on the host listens on. (Asking the
/// kernel for an ephemeral port can hand two concurrent tests the same number.)
pub fn free_port() -> u16 {
    use std::sync::atomic::{AtomicU16, Ordering};
    static NEXT: AtomicU16 = AtomicU16::new(0);
    let _ =
        NEXT.compare_exchange(0, 20_000 + (std::process::id() % 2000) as u16 * 10, Ordering::SeqCst, Ordering::SeqCst);
    loop {
        let port = NEXT.fetch_add(1, Ordering::SeqCst);
        let free = std::net::TcpListener::bind(("0.0.0.0", port)).is_ok()
            && std::net::UdpSocket::bind(("0.0.0.0", port)).is_ok();
        if free {
            return port;
        }
    }
}

impl Harness {
    pub fn new(flavor: Flavor) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        Self::with_dir(flavor, dir)
    }

    pub fn with_dir(flavor: Flavor, dir: tempfile::TempDir) -> Self {
        let mut h = Self::at(flavor, dir.path());
        h._dir = Some(dir);
        h
    }

    /// A harness whose daemon keeps its state under `path` (which outlives it).
    pub fn at(flavor: Flavor, path: &std::path::Path) -> Self {
        let mut config = DaemonConfig::new(path);
        config.stop_grace = Duration::from_millis(500);
        config.console = ConsoleConfig { max_lines_per_window: 2000, ..ConsoleConfig::default() };
        config.network = flavor.network;
        let daemon = NodeDaemon::new(NodeId::new(), flavor.runtime.clone(), Arc::new(SystemClock), config);
        let events = daemon.subscribe();
        Self {
            daemon,
            flavor,
            events: tokio::sync::Mutex::new(events),
            lines: Default::default(),
            reports: Default::default(),
            path: path.to_path_buf(),
            _dir: None,
        }
    }

    pub fn spec(&self, stop: StopAction) -> ServerSpec {
        let port = free_port();
        let mut env = BTreeMap::new();
        env.insert("SERVER_PORT".to_string(), port.to_string());
        ServerSpec {
            server_id: ServerId::new(),
            image: self.flavor.image.clone(),
            startup: self.flavor.startup.clone(),
            env,
            limits: Limits {
                memory_mb: 64,
                swap_mb: 0,
                cpu_percent: 50,
                disk_mb: 1024,
                io_weight: 500,
                pids: 64,
                ..Limits::default()
            },
            allocations: vec![Allocation { ip: "127.0.0.1".into(), port, primary: true }],
            stop,
            done_patterns: vec![DonePattern::Regex("^Done \\(".into())],
            install: Some(InstallScript {
                image: self.flavor.install_image.clone(),
                entrypoint: "/bin/sh".into(),
                script: self.flavor.install_script.clone(),
            }),
            restart_policy: RestartPolicy {
                mode: RestartMode::OnFailure,
                max_restarts: 2,
                window_secs: 600,
                backoff_initial_ms: 50,
                backoff_max_ms: 200,
                restart_on_oom: false,
            },
            startup_mode: Default::default(),
            config_files: vec![],
            file_denylist: vec![],
        }
    }

    pub async fn request(&self, r: NodeRequest) -> catalyst_core::Result<()> {
        self.daemon.handle(r).await.map(|_| ())
    }

    pub async fn drain(&self) {
        let mut events = self.events.lock().await;
        while let Ok((_, e)) = events.try_recv() {
            match e {
                NodeEvent::Log { server_id, stream, line, .. } => {
                    self.lines.lock().unwrap_or_else(|p| p.into_inner()).push((server_id, stream, line));
                }
                e @ (NodeEvent::Stats(_) | NodeEvent::Health { .. }) => {
                    self.reports.lock().unwrap_or_else(|p| p.into_inner()).push(e)
                }
                _ => {}
            }
        }
    }

    pub async fn wait_state(&self, id: ServerId, want: ServerState) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.drain().await;
            let now = self.daemon.state(id).await.expect("state");
            if now == want {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "[{}] timed out waiting for {want}, still {now}; console: {:?}",
                self.flavor.name,
                self.tail(id)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn wait_line(&self, id: ServerId, want: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            self.drain().await;
            if self.lines.lock().unwrap_or_else(|p| p.into_inner()).iter().any(|(s, _, l)| *s == id && l.contains(want))
            {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "[{}] timed out waiting for {want:?}; console: {:?}",
                self.flavor.name,
                self.tail(id)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub fn count_lines(&self, id: ServerId, pred: impl Fn(&LogStream, &str) -> bool) -> usize {
        self.lines.lock().unwrap_or_else(|p| p.into_inner()).iter().filter(|(s, st, l)| *s == id && pred(st, l)).count()
    }

    fn tail(&self, id: ServerId) -> Vec<String> {
        let lines = self.lines.lock().unwrap_or_else(|p| p.into_inner());
        let mine: Vec<String> = lines.iter().filter(|(s, _, _)| *s == id).map(|(_, _, l)| l.clone()).collect();
        mine[mine.len().saturating_sub(15)..].to_vec()
    }

    /// Where the daemon keeps server directories and state.
    pub fn daemon_dir(&self) -> std::path::PathBuf {
        self.path.clone()
    }

    /// Configure, install, start and wait for the done pattern.
    pub async fn running(&self, spec: ServerSpec) -> ServerId {
        let id = spec.server_id;
        self.request(NodeRequest::Configure { spec: Box::new(spec) }).await.expect("configure");
        self.request(NodeRequest::Install { server_id: id }).await.expect("install");
        self.wait_state(id, ServerState::Stopped).await;
        self.request(NodeRequest::Start { server_id: id }).await.expect("start");
        self.wait_state(id, ServerState::Running).await;
        id
    }

    /// Kill and delete a server, and wait until the node has removed it.
    pub async fn cleanup(&self, id: ServerId) {
        let _ = self.request(NodeRequest::Kill { server_id: id }).await;
        let _ = self.request(NodeRequest::Delete { server_id: id }).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        while self.daemon.state(id).await.is_ok() {
            assert!(tokio::time::Instant::now() < deadline, "[{}] the server was never removed", self.flavor.name);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

pub async fn lifecycle_and_console(h: &Harness) {
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    h.wait_line(id, "booting on port").await;
    h.request(NodeRequest::Command { server_id: id, line: "hello world".into() }).await.expect("command");
    h.wait_line(id, "> hello world").await;
    h.request(NodeRequest::Stop { server_id: id }).await.expect("stop");
    h.wait_state(id, ServerState::Stopped).await;
    h.wait_line(id, "stopping").await;
    let err = h.request(NodeRequest::Command { server_id: id, line: "x".into() }).await.expect_err("not running");
    assert_eq!(err.kind(), catalyst_core::ErrorKind::InvalidTransition);
    // Start again from the same files.
    h.request(NodeRequest::Start { server_id: id }).await.expect("start again");
    h.wait_state(id, ServerState::Running).await;
    h.request(NodeRequest::Kill { server_id: id }).await.expect("kill");
    h.wait_state(id, ServerState::Stopped).await;
    h.cleanup(id).await;
}

pub async fn stop_by_signal_and_forced_kill(h: &Harness) {
    let id = h.running(h.spec(StopAction::Signal("SIGTERM".into()))).await;
    h.request(NodeRequest::Stop { server_id: id }).await.expect("stop");
    h.wait_state(id, ServerState::Stopped).await;
    h.wait_line(id, "caught TERM").await;
    h.cleanup(id).await;

    // A server that ignores SIGTERM is killed after the grace period.
    let mut spec = h.spec(StopAction::Signal("SIGTERM".into()));
    spec.env.insert("IGNORE_TERM".into(), "1".into());
    let id = h.running(spec).await;
    h.request(NodeRequest::Stop { server_id: id }).await.expect("stop");
    h.wait_state(id, ServerState::Stopped).await;
    h.wait_line(id, "did not stop in time").await;
    h.cleanup(id).await;
}

pub async fn crash_restart_backoff_give_up(h: &Harness) {
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    for attempt in 1..=2 {
        h.request(NodeRequest::Command { server_id: id, line: "crash".into() }).await.expect("crash");
        h.wait_line(id, &format!("(attempt {attempt})")).await;
        h.wait_state(id, ServerState::Running).await;
    }
    h.request(NodeRequest::Command { server_id: id, line: "crash".into() }).await.expect("crash");
    h.wait_line(id, "not restarting").await;
    h.wait_state(id, ServerState::Crashed).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(h.daemon.state(id).await.expect("state"), ServerState::Crashed, "stays crashed after giving up");
    // An operator resets the history; the policy restarts again.
    h.request(NodeRequest::ResetCrashes { server_id: id }).await.expect("reset");
    h.request(NodeRequest::Start { server_id: id }).await.expect("start");
    h.wait_state(id, ServerState::Running).await;
    h.request(NodeRequest::Command { server_id: id, line: "crash".into() }).await.expect("crash");
    h.wait_state(id, ServerState::Running).await;
    h.cleanup(id).await;
}

pub async fn oom_is_reported(h: &Harness) {
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    h.request(NodeRequest::Command { server_id: id, line: "oom".into() }).await.expect("oom");
    h.wait_state(id, ServerState::Crashed).await;
    h.wait_line(id, "not restarting: killed for running out of memory").await;
    h.cleanup(id).await;
}

pub async fn flood_is_throttled(h: &Harness) {
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    h.request(NodeRequest::Command { server_id: id, line: "flood".into() }).await.expect("flood");
    h.wait_line(id, "console output throttled").await;
    // The server stays responsive and the console keeps working after the flood (an echo sent
    // while the flood still fills the window may itself be dropped, so ask until one passes).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut n = 0;
    while h.count_lines(id, |_, l| l.starts_with("> after")) == 0 {
        assert!(tokio::time::Instant::now() < deadline, "the console never recovered from the flood");
        n += 1;
        h.request(NodeRequest::Command { server_id: id, line: format!("after {n}") }).await.expect("command");
        tokio::time::sleep(Duration::from_millis(200)).await;
        h.drain().await;
    }
    let flooded = h.count_lines(id, |_, l| l.starts_with("flood line"));
    assert!(flooded < 100_000, "the throttle dropped nothing ({flooded} lines)");
    assert!(flooded >= 2000, "the throttle dropped too much ({flooded} lines)");
    h.cleanup(id).await;
}

pub async fn cgroup_limits_are_applied(h: &Harness) {
    let Some(parent) = h.flavor.cgroup_parent.clone() else {
        crate::support::skip_unless_ci(&format!("{}: cgroup limits (cgroups are not writable here)", h.flavor.name));
        return;
    };
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    let cg = Cgroup::open(&parent, &id.to_string());
    assert_eq!(cg.memory_limit(), Some(64 << 20), "memory limit");
    assert_eq!(cg.pids_limit(), Some(64), "pids limit");
    assert_eq!(cg.cpu_quota_us(), Some(50_000), "cpu quota for 50%");
    let stats = h.flavor.runtime.stats(&id.to_string()).await.expect("stats");
    assert!(stats.memory_bytes > 0, "memory usage is read: {stats:?}");
    // Limits change in place.
    let bigger = Limits {
        memory_mb: 96,
        swap_mb: 0,
        cpu_percent: 100,
        disk_mb: 1024,
        io_weight: 500,
        pids: 80,
        ..Limits::default()
    };
    h.flavor.runtime.update_limits(&id.to_string(), &bigger).await.expect("update");
    assert_eq!(cg.memory_limit(), Some(96 << 20));
    assert_eq!(cg.pids_limit(), Some(80));
    h.cleanup(id).await;
}

pub async fn stats_and_health_are_reported(h: &Harness) {
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    std::fs::write(h.daemon_dir().join("servers").join(id.to_string()).join("blob"), vec![7u8; 100_000])
        .expect("write");
    let reporters = h.daemon.spawn_reporters(Duration::from_millis(100), Duration::from_millis(100));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        h.drain().await;
        let reports = h.reports.lock().unwrap_or_else(|p| p.into_inner()).clone();
        let stats = reports.iter().find_map(|r| match r {
            NodeEvent::Stats(m) if m.server_id == id && m.memory_bytes > 0 => Some(m.clone()),
            _ => None,
        });
        let health = reports.iter().find_map(|r| match r {
            NodeEvent::Health { memory_total_bytes, disk_total_bytes, .. } => {
                Some((*memory_total_bytes, *disk_total_bytes))
            }
            _ => None,
        });
        if let (Some(stats), Some((mem, disk))) = (stats, health) {
            assert!(stats.disk_bytes >= 100_000, "disk use of the server directory: {stats:?}");
            assert_eq!(stats.memory_limit_bytes, 64 << 20);
            assert!(mem > 0 && disk > 0, "node totals");
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stats or health report: {reports:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    reporters.abort();
    h.cleanup(id).await;
}

/// `GET /index.html` from the game's listener through 127.0.0.1, retrying until it answers.
async fn fetch_index(port: u16) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        match tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            Ok(mut s) => {
                s.write_all(b"GET /index.html HTTP/1.0\r\n\r\n").await.expect("write");
                let mut buf = String::new();
                s.read_to_string(&mut buf).await.expect("read");
                return buf;
            }
            Err(e) => {
                assert!(tokio::time::Instant::now() < deadline, "port {port} never answered: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Start a server and its `listen` web server; returns the server and its port.
async fn listening(h: &Harness) -> (ServerId, u16) {
    let spec = h.spec(StopAction::Command("stop".into()));
    let port = spec.allocations[0].port;
    let id = h.running(spec).await;
    h.request(NodeRequest::Command { server_id: id, line: "listen".into() }).await.expect("listen");
    h.wait_line(id, "listening").await;
    (id, port)
}

pub async fn port_is_reachable(h: &Harness) {
    let (id, port) = listening(h).await;
    let body = fetch_index(port).await;
    assert!(body.contains("pong"), "unexpected answer: {body}");
    h.cleanup(id).await;
}

pub async fn bridge_traffic_is_counted(h: &Harness) {
    let (id, port) = listening(h).await;
    fetch_index(port).await;
    let stats = h.flavor.runtime.stats(&id.to_string()).await.expect("stats");
    assert!(stats.rx_bytes > 0 && stats.tx_bytes > 0, "bridge traffic is counted: {stats:?}");
    h.cleanup(id).await;
}

/// Generate one test per scenario for a flavor.
#[macro_export]
macro_rules! runtime_suite {
    ($module:ident, $flavor:expr, [$($scenario:ident),* $(,)?]) => {
        mod $module {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $scenario() {
                    let Some(flavor) = $flavor.await else { return };
                    let h = $crate::runtimes::Harness::new(flavor);
                    $crate::runtimes::$scenario(&h).await;
                }
            )*
        }
    };
}

pub async fn process_flavor() -> Option<Flavor> {
    let parent = "catalyst-test".to_string();
    let writable = Cgroup::create(&parent, "probe", &Limits::default()).map(|cg| cg.remove()).is_ok();
    let script = format!("cat > game.sh <<'CATALYST_GAME'\n{GAME}CATALYST_GAME\necho installed");
    Some(Flavor {
        name: "process",
        runtime: Arc::new(catalyst_runtime::node::ProcessRuntime::new(writable.then(|| parent.clone()))),
        image: "unused".into(),
        startup: "exec /bin/sh ./game.sh".into(),
        install_image: "unused".into(),
        install_script: script,
        cgroup_parent: writable.then_some(parent),
        network: catalyst_core::ports::NetworkMode::Host,
    })
}

runtime_suite!(
    process,
    crate::runtimes::process_flavor(),
    [
        lifecycle_and_console,
        stop_by_signal_and_forced_kill,
        crash_restart_backoff_give_up,
        oom_is_reported,
        flood_is_throttled,
        cgroup_limits_are_applied,
        stats_and_health_are_reported,
        port_is_reachable,
    ]
);

pub const IMAGE: &str = "catalyst.test/game:1";
static IMPORTED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// The containerd settings of every test: a namespace and cgroup parent of their own.
pub fn containerd_test_config() -> catalyst_runtime::node::ContainerdConfig {
    let mut config =
        catalyst_runtime::node::ContainerdConfig::new(std::env::temp_dir().join("catalyst-containerd-test"));
    config.namespace = "catalyst-test".into();
    config.cgroup_parent = "catalyst-test".into();
    config.cni.state_dir = std::env::temp_dir().join("catalyst-containerd-test").join("cni");
    config
}

/// containerd, with the game image imported once per test process. Each test connects its own
/// client: a gRPC channel belongs to the tokio runtime that made it.
pub async fn containerd_flavor() -> Option<Flavor> {
    use catalyst_runtime::node::ContainerdRuntime;
    let socket = std::path::Path::new("/run/containerd/containerd.sock");
    if !socket.exists() {
        crate::support::skip_unless_ci("containerd suites (no socket at /run/containerd/containerd.sock)");
        return None;
    }
    let runtime = ContainerdRuntime::connect(containerd_test_config()).await.expect("connect containerd");
    IMPORTED
        .get_or_init(|| async {
            // Tests own their namespace: whatever an earlier, interrupted run left there goes.
            for c in runtime.list().await.expect("list") {
                let _ = runtime.signal(&c.id, catalyst_core::ports::Signal::Kill).await;
                if c.running {
                    let _ = tokio::time::timeout(Duration::from_secs(5), runtime.wait(&c.id)).await;
                }
                let _ = runtime.remove(&c.id).await;
            }
            let dir = tempfile::tempdir().expect("tempdir");
            let layout = crate::images::build_game_image(dir.path(), IMAGE, GAME);
            runtime.import_oci_layout(&layout, IMAGE).await.expect("import the test image");
        })
        .await;
    Some(Flavor {
        name: "containerd",
        runtime: Arc::new(runtime),
        image: IMAGE.into(),
        startup: "exec /usr/local/bin/game".into(),
        install_image: IMAGE.into(),
        install_script: "echo installed > /mnt/server/installed.txt && echo install done".into(),
        cgroup_parent: Some("catalyst-test".into()),
        network: catalyst_core::ports::NetworkMode::Host,
    })
}

/// containerd with each container in its own network namespace on a CNI bridge.
pub async fn containerd_bridge_flavor() -> Option<Flavor> {
    let mut flavor = containerd_flavor().await?;
    if !std::path::Path::new("/usr/lib/cni/bridge").exists() {
        crate::support::skip_unless_ci("bridge networking (Debian's containernetworking-plugins is not installed)");
        return None;
    }
    flavor.name = "containerd+bridge";
    flavor.network = catalyst_core::ports::NetworkMode::Bridge;
    Some(flavor)
}

runtime_suite!(
    containerd_bridge,
    crate::runtimes::containerd_bridge_flavor(),
    [lifecycle_and_console, port_is_reachable, bridge_traffic_is_counted]
);

pub async fn runs_unprivileged(h: &Harness) {
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    h.request(NodeRequest::Command { server_id: id, line: "whoami".into() }).await.expect("whoami");
    h.wait_line(id, "uid=1000").await;
    h.cleanup(id).await;
}

runtime_suite!(
    containerd,
    crate::runtimes::containerd_flavor(),
    [
        lifecycle_and_console,
        stop_by_signal_and_forced_kill,
        crash_restart_backoff_give_up,
        oom_is_reported,
        flood_is_throttled,
        cgroup_limits_are_applied,
        stats_and_health_are_reported,
        port_is_reachable,
        runs_unprivileged,
    ]
);

/// The agent dies (its tokio runtime is torn down); the container keeps running; a new agent
/// on the same state directory re-attaches: console and stop work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_reattach_after_agent_restart() {
    let Some(_probe) = containerd_flavor().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_path_buf();
    let first = path.clone();
    let id = std::thread::spawn(move || {
        let rt = tokio::runtime::Runtime::new().expect("runtime");
        rt.block_on(async move {
            let flavor = containerd_flavor().await.expect("containerd");
            let h = Harness::at(flavor, &first);
            let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
            h.request(NodeRequest::Command { server_id: id, line: "before restart".into() }).await.expect("command");
            h.wait_line(id, "> before restart").await;
            id
        })
        // The runtime drops here: every task of the first agent is gone.
    })
    .join()
    .expect("first agent");

    let flavor = containerd_flavor().await.expect("containerd");
    let running = flavor.runtime.list().await.expect("list");
    assert!(running.iter().any(|c| c.id == id.to_string() && c.running), "the container kept running: {running:?}");
    let h = Harness::at(flavor, &path);
    assert_eq!(h.daemon.recover().await.expect("recover"), 1);
    assert_eq!(h.daemon.state(id).await.expect("state"), ServerState::Running);
    h.wait_line(id, "re-attached").await;
    h.request(NodeRequest::Command { server_id: id, line: "after restart".into() }).await.expect("command");
    h.wait_line(id, "> after restart").await;
    h.request(NodeRequest::Stop { server_id: id }).await.expect("stop");
    h.wait_state(id, ServerState::Stopped).await;
    h.cleanup(id).await;
}

/// The ContainerRuntime port's conformance suite on both real runtimes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_runtime_passes_the_runtime_conformance_suite() {
    let dir = tempfile::tempdir().expect("tempdir");
    let rt = catalyst_runtime::node::ProcessRuntime::new(None);
    let target = catalyst_core::testing::conformance::RuntimeTarget {
        image: "unused".into(),
        echo_command: vec!["/bin/sh".into(), "-c".into(), catalyst_core::testing::conformance::ECHO_SCRIPT.into()],
        workdir_source: dir.path().to_string_lossy().into_owned(),
    };
    catalyst_core::testing::conformance::container_runtime(&rt, &target, "conf-process").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_runtime_passes_the_runtime_conformance_suite() {
    let Some(flavor) = containerd_flavor().await else { return };
    let dir = tempfile::tempdir().expect("tempdir");
    let target = catalyst_core::testing::conformance::RuntimeTarget {
        image: IMAGE.into(),
        echo_command: vec!["/bin/sh".into(), "-c".into(), catalyst_core::testing::conformance::ECHO_SCRIPT.into()],
        workdir_source: dir.path().to_string_lossy().into_owned(),
    };
    catalyst_core::testing::conformance::container_runtime(flavor.runtime.as_ref(), &target, "conf-containerd").await;
}
