//! An egg, end to end on containerd: a PTDL_v2 egg written here is imported, installs with a
//! CRLF script, has one config file of each of the six kinds edited before start, starts in
//! entrypoint mode through an image whose entrypoint expands STARTUP as egg images do, reaches
//! running on its done string, answers a console command and stops on `^C` with the game
//! seeing SIGINT. A variable holding shell syntax arrives as text.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use catalyst_core::id::ServerId;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{Allocation, LogQuery, StartupMode, StopAction};
use catalyst_runtime::control::NewServer;
use catalyst_runtime::node::ContainerdRuntime;
use catalyst_runtime::testing::{TestWorld, new_server, wait_for_state};

const EGG_IMAGE: &str = "catalyst.test/egg:1";
const ENTRYPOINT: &str = include_str!("../fixtures/egg-entrypoint.sh");
const GAME: &str = include_str!("../fixtures/egg-game.sh");
/// Shell syntax a customer might type into a variable: it must reach the game as text.
const HOSTILE: &str = "x; touch pwned $(touch pwned2) `touch pwned3`";

fn egg() -> String {
    let files = serde_json::json!({
        "server.properties": {"parser": "properties", "find": {"server-port": "{{server.build.default.port}}", "motd": "{{server.build.env.MOTD}}"}},
        "config.yml": {"parser": "yaml", "find": {"listeners[0].host": "0.0.0.0:{{server.build.default.port}}", "servers.*.address": {"localhost": "{{config.docker.interface}}"}}},
        "config/game.json": {"parser": "json", "find": {"server.port": "{{server.allocations.default.port}}", "server.memory": "{{server.build.memory}}"}},
        "settings.ini": {"parser": "ini", "find": {"[/Script/Game.Settings].Port": "{{server.build.default.port}}"}},
        "config.xml": {"parser": "xml", "find": {"Config.Port": "{{server.build.default.port}}"}},
        "motd.txt": {"parser": "file", "find": {"motd=": "motd={{env.MOTD}}"}},
    });
    let install = "#!/bin/sh\r\ncd /mnt/server\r\nprintf 'server-port=1\\nmotd=old\\n' > server.properties\r\n\
                   printf 'listeners:\\n- host: 0.0.0.0:1\\nservers:\\n  lobby:\\n    address: localhost\\n' > config.yml\r\n\
                   printf 'motd=old\\nkeep=me\\n' > motd.txt\r\necho install-ok > installed.txt\r\n";
    serde_json::to_string_pretty(&serde_json::json!({
        "_comment": "written by the test",
        "meta": {"version": "PTDL_v2", "update_url": null},
        "exported_at": "2026-12-02T00:00:00+00:00",
        "name": "Egg Test",
        "author": "tests@example.test",
        "description": "",
        "features": ["eula"],
        "docker_images": {"Egg": EGG_IMAGE},
        "file_denylist": ["secret.txt"],
        "startup": "egg-game --motd \"{{MOTD}}\" --port {{SERVER_PORT}}",
        "config": {
            "files": files.to_string(),
            "startup": serde_json::json!({"done": ["never printed", "regex:^Server started on port \\d+$"]}).to_string(),
            "logs": "{}",
            "stop": "^C",
        },
        "scripts": {"installation": {"script": install, "container": EGG_IMAGE, "entrypoint": "sh"}},
        "variables": [{
            "name": "Message of the day", "description": "", "env_variable": "MOTD", "default_value": "hello",
            "user_viewable": true, "user_editable": true, "rules": "required|string|max:64", "field_type": "text",
        }],
    }))
    .expect("egg json")
}

async fn logs_contain(w: &TestWorld, id: ServerId, needle: &str) -> bool {
    let logs = w.catalyst.server_logs(&w.admin, id, &LogQuery { limit: Some(1000), ..Default::default() }).await;
    logs.expect("logs").iter().any(|l| l.line.contains(needle))
}

async fn wait_for_line(w: &TestWorld, id: ServerId, needle: &str) {
    for _ in 0..300 {
        if logs_contain(w, id, needle).await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let logs = w.catalyst.server_logs(&w.admin, id, &LogQuery { limit: Some(1000), ..Default::default() }).await;
    let lines: Vec<String> = logs.expect("logs").into_iter().map(|l| l.line).collect();
    panic!("never logged {needle:?}; the console said:\n{}", lines.join("\n"));
}

#[tokio::test]
async fn an_egg_runs_the_way_its_author_expects() {
    let Some(_) = crate::runtimes::containerd_flavor().await else { return };
    let runtime = ContainerdRuntime::connect(crate::runtimes::containerd_test_config()).await.expect("containerd");
    let dir = tempfile::tempdir().expect("tempdir");
    let files = [("entrypoint.sh", ENTRYPOINT.as_bytes(), 0o755), ("usr/local/bin/egg-game", GAME.as_bytes(), 0o755)];
    let layout = crate::images::build_image(dir.path(), EGG_IMAGE, &files, &["/bin/sh", "/entrypoint.sh"]);
    runtime.import_oci_layout(&layout, EGG_IMAGE).await.expect("import the egg image");
    let w = TestWorld::sqlite().await.with_admin().with_owner().with_runtime(Arc::new(runtime)).build().await;

    let t = w.catalyst.import_template(&w.admin, egg().as_bytes()).await.expect("import");
    assert_eq!(t.startup_mode, StartupMode::Entrypoint);
    assert_eq!(t.stop, StopAction::Signal("SIGINT".into()));
    let port = crate::runtimes::free_port();
    let owner = w.owner().user_id().expect("owner");
    let input = NewServer {
        variables: BTreeMap::from([("MOTD".to_string(), HOSTILE.to_string())]),
        allocations: vec![Allocation { ip: "127.0.0.1".into(), port, primary: true }],
        ..new_server(owner, w.node(), t.id)
    };
    let s = w.catalyst.create_server(&w.admin, input).await.expect("create");
    wait_for_state(&w.catalyst, s.id, ServerState::Stopped).await;
    let root = w.dir.path().join("servers").join(s.id.to_string());
    assert_eq!(
        std::fs::read_to_string(root.join("installed.txt")).ok().as_deref(),
        Some("install-ok\n"),
        "CRLF script ran"
    );

    w.catalyst.start_server(&w.admin, s.id).await.expect("start");
    wait_for_state(&w.catalyst, s.id, ServerState::Running).await;
    wait_for_line(&w, s.id, &format!("entrypoint: TZ=UTC memory=1024 ip=127.0.0.1 port={port} location=loc")).await;
    wait_for_line(&w, s.id, &format!("motd argument: [{HOSTILE}]")).await;
    wait_for_line(&w, s.id, &format!("MOTD environment: [{HOSTILE}]")).await;

    let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(read("server.properties"), format!("server-port={port}\nmotd={HOSTILE}\n"));
    assert_eq!(
        read("config.yml"),
        format!("listeners:\n- host: 0.0.0.0:{port}\nservers:\n  lobby:\n    address: 127.0.0.1\n")
    );
    assert_eq!(
        read("config/game.json"),
        format!("{{\n    \"server\": {{\n        \"memory\": 1024,\n        \"port\": {port}\n    }}\n}}\n")
    );
    assert_eq!(read("settings.ini"), format!("[/Script/Game.Settings]\nPort = {port}\n"));
    assert_eq!(
        read("config.xml"),
        format!("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<Config>\n  <Port>{port}</Port>\n</Config>\n")
    );
    assert_eq!(read("motd.txt"), format!("motd={HOSTILE}\nkeep=me\n"));

    w.catalyst.send_command(&w.admin, s.id, "hello egg").await.expect("command");
    wait_for_line(&w, s.id, "> hello egg").await;
    w.catalyst.stop_server(&w.admin, s.id).await.expect("stop");
    wait_for_state(&w.catalyst, s.id, ServerState::Stopped).await;
    wait_for_line(&w, s.id, "caught INT").await;
    assert!(!logs_contain(&w, s.id, "caught TERM").await);
    for planted in ["pwned", "pwned2", "pwned3"] {
        assert!(!root.join(planted).exists(), "{planted}: a value ran as shell syntax");
    }
    w.catalyst.delete_server(&w.admin, s.id).await.expect("delete");
}

/// A start that fails before the game runs (here: an image that cannot be pulled, no registry
/// reachable) says why and leaves the server stopped: no crash, no restarts.
#[tokio::test]
async fn a_start_that_never_ran_the_game_is_not_a_crash() {
    let Some(_) = crate::runtimes::containerd_flavor().await else { return };
    let runtime = ContainerdRuntime::connect(crate::runtimes::containerd_test_config()).await.expect("containerd");
    let w = TestWorld::sqlite().await.with_admin().with_owner().with_runtime(Arc::new(runtime)).build().await;
    let template = catalyst_core::model::NewTemplate {
        name: "missing image".into(),
        image: "registry.invalid/catalyst/missing:1".into(),
        startup: "./run".into(),
        ..Default::default()
    };
    let t = w.catalyst.create_template(&w.admin, template).await.expect("template");
    let owner = w.owner().user_id().expect("owner");
    let s = w.catalyst.create_server(&w.admin, new_server(owner, w.node(), t.id)).await.expect("create");
    wait_for_state(&w.catalyst, s.id, ServerState::Stopped).await;
    assert!(!logs_contain(&w, s.id, "cannot hand the files").await, "installing nothing succeeds");
    w.catalyst.start_server(&w.admin, s.id).await.expect("start is accepted");
    wait_for_line(&w, s.id, "failed to start:").await;
    wait_for_state(&w.catalyst, s.id, ServerState::Stopped).await;
    let after = w.catalyst.get_server(&w.admin, s.id).await.expect("server");
    assert_eq!(after.crash_count, 0, "not the game's crash");
    w.catalyst.delete_server(&w.admin, s.id).await.expect("delete");
}
