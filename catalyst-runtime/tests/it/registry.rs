//! Pulling from a real OCI registry (Debian's docker-registry on loopback), anonymously and with
//! basic auth; the pulled image then runs.

use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use catalyst_core::ErrorKind;
use catalyst_core::lifecycle::ServerState;
use catalyst_core::model::StopAction;
use catalyst_core::ports::ContainerRuntime;
use catalyst_core::protocol::NodeRequest;
use catalyst_runtime::node::{ContainerdRuntime, RegistryConfig};
use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;

use crate::runtimes::{Flavor, GAME, Harness, free_port};

/// A registry process on loopback, stopped on drop.
struct Registry {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn registry(auth: Option<(&str, &str)>) -> Option<Registry> {
    if Command::new("docker-registry").arg("--version").stdout(Stdio::null()).status().is_err() {
        crate::support::skip_unless_ci("registry pulls (Debian's docker-registry is not installed)");
        return None;
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mut config = format!(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: 127.0.0.1:{port}\n",
        dir.path().join("data").display()
    );
    if let Some((user, password)) = auth {
        let out = Command::new("htpasswd").args(["-Bbn", user, password]).output().expect("htpasswd (apache2-utils)");
        std::fs::write(dir.path().join("htpasswd"), &out.stdout).expect("write htpasswd");
        config.push_str(&format!(
            "auth:\n  htpasswd:\n    realm: catalyst\n    path: {}\n",
            dir.path().join("htpasswd").display()
        ));
    }
    std::fs::write(dir.path().join("config.yml"), config).expect("config");
    let child = Command::new("docker-registry")
        .args(["serve", &dir.path().join("config.yml").to_string_lossy()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start docker-registry");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "docker-registry did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Some(Registry { child, port, _dir: dir })
}

/// Push the game image (built here) with oci-client.
async fn push(reference: &str, auth: &RegistryAuth) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let dir = tempfile::tempdir().expect("tempdir");
    let (layer, config) = crate::images::game_layer_and_config(dir.path(), GAME);
    let client = oci_client::Client::new(ClientConfig { protocol: ClientProtocol::Http, ..Default::default() });
    let reference: oci_client::Reference = reference.parse().expect("reference");
    client
        .push(&reference, &[ImageLayer::oci_v1(layer, None)], Config::oci_v1(config, None), auth, None)
        .await
        .expect("push the test image");
}

fn flavor(runtime: ContainerdRuntime, image: &str) -> Flavor {
    Flavor {
        name: "containerd+registry",
        runtime: Arc::new(runtime),
        image: image.into(),
        startup: "exec /usr/local/bin/game".into(),
        install_image: image.into(),
        install_script: "echo installed".into(),
        cgroup_parent: Some("catalyst-test".into()),
        network: catalyst_core::ports::NetworkMode::Host,
    }
}

async fn connect(registries: Vec<RegistryConfig>) -> Option<ContainerdRuntime> {
    crate::runtimes::containerd_flavor().await?;
    let mut config = crate::runtimes::containerd_test_config();
    config.registries = registries;
    Some(ContainerdRuntime::connect(config).await.expect("containerd"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_anonymously_and_run() {
    let Some(reg) = registry(None).await else { return };
    let host = format!("127.0.0.1:{}", reg.port);
    let image = format!("{host}/catalyst/anon-{}:1", uuid::Uuid::new_v4().simple());
    push(&image, &RegistryAuth::Anonymous).await;
    let Some(runtime) =
        connect(vec![RegistryConfig { host: host.clone(), username: None, password: None, insecure: true }]).await
    else {
        return;
    };
    runtime.ensure_image(&image).await.expect("pull");
    let h = Harness::new(flavor(runtime, &image));
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    h.request(NodeRequest::Command { server_id: id, line: "pulled".into() }).await.expect("command");
    h.wait_line(id, "> pulled").await;
    h.request(NodeRequest::Stop { server_id: id }).await.expect("stop");
    h.wait_state(id, ServerState::Stopped).await;
    h.cleanup(id).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_with_basic_auth() {
    let Some(reg) = registry(Some(("catalyst", "s3cret-pass"))).await else { return };
    let host = format!("127.0.0.1:{}", reg.port);
    let image = format!("{host}/catalyst/auth-{}:1", uuid::Uuid::new_v4().simple());
    push(&image, &RegistryAuth::Basic("catalyst".into(), "s3cret-pass".into())).await;

    // Without credentials the registry refuses, and the error says so.
    let Some(anonymous) =
        connect(vec![RegistryConfig { host: host.clone(), username: None, password: None, insecure: true }]).await
    else {
        return;
    };
    let err = anonymous.ensure_image(&image).await.expect_err("refused");
    assert_eq!(err.kind(), ErrorKind::Unauthenticated, "{err}");
    let wrong = connect(vec![RegistryConfig {
        host: host.clone(),
        username: Some("catalyst".into()),
        password: Some("nope".into()),
        insecure: true,
    }])
    .await
    .expect("containerd");
    assert_eq!(wrong.ensure_image(&image).await.expect_err("refused").kind(), ErrorKind::Unauthenticated);

    let runtime = connect(vec![RegistryConfig {
        host: host.clone(),
        username: Some("catalyst".into()),
        password: Some("s3cret-pass".into()),
        insecure: true,
    }])
    .await
    .expect("containerd");
    runtime.ensure_image(&image).await.expect("pull with credentials");
    let h = Harness::new(flavor(runtime, &image));
    let id = h.running(h.spec(StopAction::Command("stop".into()))).await;
    h.cleanup(id).await;
}
