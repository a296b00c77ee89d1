//! Tenants stay apart on a node: a server on the process runtime runs as its own uid and can
//! read neither the node's files (state, secrets) nor another server's; a runtime that cannot
//! confine servers runs none unless the operator allowed it.

use std::os::unix::fs::PermissionsExt;
use std::sync::Arc;
use std::time::Duration;

use catalyst_core::clock::SystemClock;
use catalyst_core::id::NodeId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::StopAction;
use catalyst_core::ports::Isolation;
use catalyst_core::protocol::NodeRequest;
use catalyst_core::testing::{FakeRuntime, FakeRuntimeCall};
use catalyst_runtime::node::{DaemonConfig, NodeDaemon};

use crate::runtimes::{Harness, process_flavor};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn process_servers_cannot_read_the_node_or_each_other() {
    if !nix::unistd::geteuid().is_root() {
        crate::support::skip_unless_ci("process isolation (needs root to give each server its own uid)");
        return;
    }
    let flavor = process_flavor().await.expect("process flavor");
    assert_eq!(flavor.runtime.isolation(), Isolation::Uid, "root with setpriv confines processes");
    let h = Harness::new(flavor);
    let data = h.daemon_dir();
    // What an all-in-one keeps beside the node: a signing key, readable by root alone.
    let secret = data.join("jwt.secret");
    std::fs::write(&secret, "top secret").expect("secret");
    std::fs::set_permissions(&secret, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let a = h.running(h.spec(StopAction::Command("stop".into()))).await;
    let b = h.running(h.spec(StopAction::Command("stop".into()))).await;
    let b_dir = data.join("servers").join(b.to_string());
    let targets = [
        b_dir.join("game.sh"),
        b_dir.clone(),
        data.join("state"),
        data.join("state").join(format!("{b}.json")),
        secret.clone(),
        data.join("servers"),
    ];
    let list: Vec<String> = targets.iter().map(|p| p.display().to_string()).collect();
    h.request(NodeRequest::Command { server_id: a, line: format!("probe game.sh {}", list.join(" ")) })
        .await
        .expect("probe");
    // Its own files are readable (the probe works), everything else is not.
    h.wait_line(a, "readable game.sh").await;
    for target in &list {
        h.wait_line(a, &format!("denied {target}")).await;
    }
    assert_eq!(h.count_lines(a, |_, l| l.starts_with("readable /")), 0, "a server read what is not its own");

    // Each runs as its own unprivileged uid.
    for id in [a, b] {
        h.request(NodeRequest::Command { server_id: id, line: "whoami".into() }).await.expect("whoami");
    }
    let uid_of = |id: catalyst_core::id::ServerId| {
        use std::os::unix::fs::MetadataExt;
        std::fs::metadata(data.join("servers").join(id.to_string())).expect("server dir").uid()
    };
    let (ua, ub) = (uid_of(a), uid_of(b));
    assert!(ua != 0 && ub != 0 && ua != ub, "uids {ua} and {ub}");
    h.wait_line(a, &format!("uid={ua}")).await;
    h.wait_line(b, &format!("uid={ub}")).await;
    h.cleanup(a).await;
    h.cleanup(b).await;
}

async fn wait_not_starting(daemon: &NodeDaemon, id: catalyst_core::id::ServerId) -> ServerState {
    for _ in 0..500 {
        let state = daemon.state(id).await.expect("state");
        if state != ServerState::Starting {
            return state;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("the server never left starting");
}

#[tokio::test]
async fn an_unconfined_runtime_runs_nothing_unless_the_operator_allows_it() {
    for allow in [false, true] {
        let dir = tempfile::tempdir().expect("tempdir");
        let runtime = Arc::new(FakeRuntime::with_isolation(Isolation::None));
        let mut config = DaemonConfig::new(dir.path());
        config.allow_unconfined = allow;
        let daemon = NodeDaemon::new(NodeId::new(), runtime.clone(), Arc::new(SystemClock), config);
        let spec = catalyst_core::protocol::ServerSpec {
            server_id: catalyst_core::id::ServerId::new(),
            image: "img".into(),
            startup: "./run".into(),
            env: Default::default(),
            limits: Default::default(),
            allocations: vec![],
            stop: StopAction::Command("stop".into()),
            done_patterns: vec![],
            install: None,
            restart_policy: Default::default(),
            startup_mode: Default::default(),
            config_files: vec![],
            file_denylist: vec![],
        };
        let id = spec.server_id;
        daemon.handle(NodeRequest::Configure { spec: Box::new(spec) }).await.expect("configure");
        daemon.handle(NodeRequest::Start { server_id: id }).await.expect("start accepted");
        let state = wait_not_starting(&daemon, id).await;
        let created = runtime.calls().iter().any(|c| matches!(c, FakeRuntimeCall::Create(_)));
        assert_eq!(created, allow, "allow_unconfined = {allow}: state {state}");
    }
}

/// Hostile variable values through a real shell: each arrives as one argument of data, in
/// every quoting context of the startup line, and no command of theirs runs.
#[test]
fn variables_reach_the_shell_as_data() {
    use catalyst_core::render::{RenderContext, render_shell};
    let dir = tempfile::tempdir().expect("tempdir");
    let marker = dir.path().join("pwned");
    let m = marker.display();
    let values = [
        format!("x; touch {m}"),
        format!("$(touch {m})"),
        format!("`touch {m}`"),
        format!("a | touch {m}"),
        format!("a && touch {m} \" ' \\"),
        "*".to_string(),
        "  spaced  out  ".to_string(),
    ];
    for value in values {
        let ctx = RenderContext::new().with("V", value.clone());
        let templates = [
            "printf '%s\\n' {{V}}",
            "printf '%s\\n' \"<{{V}}>\"",
            "printf '%s\\n' \"<$(printf '%s' {{V}})>\"",
            "printf '%s\\n' \"<`printf '%s' {{V}}`>\"",
            "# it's a comment\nprintf '%s\\n' \"<{{V}}>\"",
        ];
        for template in templates {
            let line = render_shell(template, &ctx).expect("render");
            let out = std::process::Command::new("/bin/sh")
                .args(["-c", &line])
                .env("V", &value)
                .current_dir(dir.path())
                .output()
                .expect("sh");
            let printed = String::from_utf8_lossy(&out.stdout).trim_end_matches('\n').to_string();
            let want = if template.contains('<') { format!("<{value}>") } else { value.clone() };
            assert_eq!(printed, want, "{template} with {value:?} ran as {line:?}");
            assert!(!marker.exists(), "{value:?} ran a command through {template}");
        }
    }
}

/// A server's variables steer only its own processes: `LD_DEBUG` (like `LD_LIBRARY_PATH=./lib`
/// or `LD_PRELOAD`) never reaches the root `setpriv` that drops to the server's uid, whose
/// loader would otherwise report loading `libcap-ng`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_variables_never_reach_the_root_part_of_a_start() {
    if !nix::unistd::geteuid().is_root() {
        crate::support::skip_unless_ci("process isolation (needs root to give each server its own uid)");
        return;
    }
    let h = Harness::new(process_flavor().await.expect("process flavor"));
    let mut spec = h.spec(StopAction::Command("stop".into()));
    spec.env.insert("LD_DEBUG".into(), "libs".into());
    let port = spec.env["SERVER_PORT"].clone();
    let id = h.running(spec).await;
    // The variables arrived, under their own names, where the game runs.
    h.wait_line(id, &format!("booting on port {port}")).await;
    // The game's own loader saw LD_DEBUG. Its report comes on stderr after anything the root
    // part of the start would have printed there, so once it is in, so is all of that.
    h.wait_line(id, "find library=").await;
    assert_eq!(h.count_lines(id, |_, l| l.contains("libcap-ng")), 0, "the root setpriv saw the server's LD_DEBUG");
    assert_eq!(h.count_lines(id, |_, l| l.contains("CATALYST_CARRIED_")), 0);
    h.cleanup(id).await;
}
