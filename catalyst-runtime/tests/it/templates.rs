//! Templates as eggs shape them, through the control plane over the fake runtime: a server's
//! choice of image and startup command, variables hidden from customers, the file denylist,
//! and imports that succeed whole or change nothing.

use std::collections::BTreeMap;
use std::sync::Arc;

use catalyst_core::ErrorKind;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::{
    DonePattern, FileOp, ImageChoice, NewTemplate, Page, StartupCommand, StopAction, TemplateVariable, VariableRules,
};
use catalyst_core::testing::FakeRuntime;
use catalyst_runtime::control::{NewServer, ServerPatch};
use catalyst_runtime::testing::{TestWorld, new_server, wait_for_state};

fn template() -> NewTemplate {
    NewTemplate {
        name: "choices".into(),
        image: "img:21".into(),
        images: vec![
            ImageChoice { name: "Java 21".into(), image: "img:21".into() },
            ImageChoice { name: "Java 17".into(), image: "img:17".into() },
        ],
        startup: "./run".into(),
        startup_commands: vec![StartupCommand { name: "Fast".into(), command: "./run --fast".into() }],
        variables: vec![
            TemplateVariable { name: "MOTD".into(), default: Some("hi".into()), ..Default::default() },
            TemplateVariable {
                name: "LICENSE_KEY".into(),
                default: Some("s3cr3t".into()),
                user_viewable: false,
                user_editable: false,
                rules: VariableRules::parse("required|string"),
                ..Default::default()
            },
        ],
        stop: StopAction::Command("stop".into()),
        done_patterns: vec![DonePattern::Substring("Done".into())],
        file_denylist: vec!["secret.txt".into(), "*.jar".into()],
        ..Default::default()
    }
}

#[tokio::test]
async fn servers_choose_images_and_startups_and_customers_see_what_they_may() {
    let runtime = Arc::new(FakeRuntime::new());
    let w = TestWorld::sqlite().await.with_admin().with_owner().with_runtime(runtime.clone()).build().await;
    let (c, admin, owner) = (&w.catalyst, &w.admin, w.owner());
    let t = c.create_template(admin, template()).await.expect("template");
    let owner_id = owner.user_id().expect("user");
    let base = || new_server(owner_id, w.node(), t.id);

    let bad_image = NewServer { image: Some("evil:latest".into()), ..base() };
    assert_eq!(c.create_server(admin, bad_image).await.map(|_| ()).unwrap_err().kind(), ErrorKind::InvalidInput);
    let bad_startup = NewServer { startup_command: Some("Nope".into()), ..base() };
    assert_eq!(c.create_server(admin, bad_startup).await.map(|_| ()).unwrap_err().kind(), ErrorKind::InvalidInput);

    let input = NewServer { image: Some("img:17".into()), startup_command: Some("Fast".into()), ..base() };
    let s = c.create_server(admin, input).await.expect("server");
    wait_for_state(c, s.id, ServerState::Stopped).await;
    c.start_server(owner, s.id).await.expect("start");
    let spec = runtime.spec(&s.id.to_string()).expect("container");
    assert_eq!(spec.image, "img:17");
    assert!(spec.command.iter().any(|a| a.contains("./run --fast")), "{:?}", spec.command);
    assert_eq!(spec.env.get("LICENSE_KEY").map(String::as_str), Some("s3cr3t"), "the game gets hidden values");

    // Customers never see a variable the template hides, nor change one they may not.
    assert!(!c.get_server(owner, s.id).await.expect("get").variables.contains_key("LICENSE_KEY"));
    let listed = c.list_servers(owner, Page::default()).await.expect("list");
    assert!(listed.items.iter().all(|s| !s.variables.contains_key("LICENSE_KEY")));
    assert!(c.get_server(admin, s.id).await.expect("get").variables.contains_key("LICENSE_KEY"));
    let peek =
        ServerPatch { variables: Some(BTreeMap::from([("LICENSE_KEY".into(), "x".into())])), ..Default::default() };
    assert_eq!(c.update_server(owner, s.id, peek).await.map(|_| ()).unwrap_err().kind(), ErrorKind::PermissionDenied);
    let mine = ServerPatch { variables: Some(BTreeMap::from([("MOTD".into(), "hello".into())])), ..Default::default() };
    let patched = c.update_server(owner, s.id, mine).await.expect("editable");
    assert_eq!(patched.variables.get("MOTD").map(String::as_str), Some("hello"));
    assert!(!patched.variables.contains_key("LICENSE_KEY"));
    let switch = ServerPatch { image: Some("img:21".into()), ..Default::default() };
    assert_eq!(c.update_server(admin, s.id, switch).await.expect("switch").image.as_deref(), Some("img:21"));

    // The denylist: listed, never read, written, moved or removed through the file API.
    let write = |path: &str| FileOp::Write { path: path.into(), offset: 0, data: b"x".to_vec(), truncate: true };
    c.file_op(owner, s.id, write("ok.txt")).await.expect("allowed");
    for op in [
        write("secret.txt"),
        write("plugins/server.jar"),
        FileOp::Read { path: "secret.txt".into(), offset: 0, length: 10 },
        FileOp::Rename { from: "ok.txt".into(), to: "ok.jar".into() },
        FileOp::Delete { paths: vec!["ok.txt".into(), "secret.txt".into()] },
    ] {
        let e = c.file_op(owner, s.id, op.clone()).await.map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{op:?}: {e}");
    }
    assert!(
        w.dir.path().join("servers").join(s.id.to_string()).join("ok.txt").exists(),
        "a refused batch deletes nothing"
    );
}

#[tokio::test]
async fn a_refused_import_changes_nothing_and_a_reimport_updates() {
    let w = TestWorld::sqlite().await.with_admin().with_owner().build().await;
    let (c, admin) = (&w.catalyst, &w.admin);
    let egg = include_str!("../../../catalyst-core/tests/eggs/pterodactyl-egg-paper.json");
    let first = c.import_template(admin, egg.as_bytes()).await.expect("import");
    assert_eq!(first.name, "Paper");
    let again = c
        .import_template(admin, egg.replace("High performance Spigot fork", "Faster Spigot fork").as_bytes())
        .await
        .expect("again");
    assert_eq!(again.id, first.id, "the same egg updates its template");
    assert!(again.description.starts_with("Faster Spigot fork"), "{}", again.description);
    let before = c.list_templates(admin, Page::default()).await.expect("list").total;
    for bad in [
        egg.replace("nullable|string|max:20", "nullable|string|frobnicate"),
        egg.replace("\\\"server.properties\\\"", "\\\"../server.properties\\\""),
        egg[..egg.len() / 3].to_string(),
    ] {
        let e = c.import_template(admin, bad.as_bytes()).await.map(|_| ()).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput, "{e}");
    }
    assert_eq!(c.list_templates(admin, Page::default()).await.expect("list").total, before);
    assert_eq!(c.get_template(admin, first.id).await.expect("kept"), again, "a refused re-import leaves it as it was");
    let e = c.import_template(w.owner(), egg.as_bytes()).await.map(|_| ()).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
}
