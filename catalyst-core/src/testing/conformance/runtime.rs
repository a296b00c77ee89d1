//! [`crate::ports::ContainerRuntime`] conformance: what every container runtime must do.

use super::*;

/// What a [`crate::ports::ContainerRuntime`] conformance run needs from its caller.
#[derive(Debug, Clone)]
pub struct RuntimeTarget {
    /// Image to run (ignored by runtimes without images).
    pub image: String,
    /// A command that prints `ready`, then echoes each stdin line as `> line` until stdin
    /// closes or it reads `stop` (exit 0) or `crash` (exit 3).
    pub echo_command: Vec<String>,
    /// A host directory to mount as the working directory.
    pub workdir_source: String,
}

/// The shell program every real runtime can run for [`container_runtime`].
pub const ECHO_SCRIPT: &str =
    "echo ready; while IFS= read -r l; do case \"$l\" in stop) exit 0;; crash) exit 3;; *) echo \"> $l\";; esac; done";

fn runtime_spec(target: &RuntimeTarget, id: &str) -> crate::ports::ContainerSpec {
    crate::ports::ContainerSpec {
        id: id.to_string(),
        image: target.image.clone(),
        command: target.echo_command.clone(),
        env: BTreeMap::new(),
        mounts: vec![crate::ports::Mount {
            source: target.workdir_source.clone(),
            target: "/home/container".into(),
            read_only: false,
        }],
        workdir: "/home/container".into(),
        limits: Limits::default(),
        allocations: vec![],
        network: crate::ports::NetworkMode::Host,
        tmpfs_mb: 16,
        read_only_rootfs: false,
        user: None,
    }
}

async fn next_line(out: &mut futures::stream::BoxStream<'static, crate::ports::ConsoleLine>, want: &str) {
    use futures::StreamExt;
    for _ in 0..50 {
        match out.next().await {
            Some(l) if l.line.contains(want) => return,
            Some(_) => continue,
            None => panic!("output ended before {want:?}"),
        }
    }
    panic!("{want:?} never appeared");
}

/// [`crate::ports::ContainerRuntime`] conformance: the guarantees of the port's doc comment.
/// `id_prefix` keeps concurrent runs apart.
pub async fn container_runtime(rt: &dyn crate::ports::ContainerRuntime, target: &RuntimeTarget, id_prefix: &str) {
    use crate::ports::Signal;
    let a = format!("{id_prefix}-a");
    let b = format!("{id_prefix}-b");
    rt.ensure_image(&target.image).await.expect("ensure image");
    assert_eq!(
        kind(rt.remove(&format!("{id_prefix}-missing")).await),
        ErrorKind::NotFound,
        "remove of a missing container"
    );

    // Attach before start sees the first line; stdin reaches the process; a requested exit
    // is reported to a wait started before it and to one started after it.
    rt.create(&runtime_spec(target, &a)).await.expect("create");
    assert_eq!(kind(rt.create(&runtime_spec(target, &a)).await), ErrorKind::Conflict, "duplicate id");
    let mut out = rt.attach(&a).await.expect("attach");
    rt.start(&a).await.expect("start");
    next_line(&mut out, "ready").await;
    assert!(rt.list().await.expect("list").iter().any(|c| c.id == a && c.running), "listed as running");
    rt.write_stdin(&a, b"hello\n").await.expect("stdin");
    next_line(&mut out, "> hello").await;
    assert_eq!(kind(rt.remove(&a).await), ErrorKind::Conflict, "a running container is not removed");
    rt.write_stdin(&a, b"crash\n").await.expect("stdin");
    let first = rt.wait(&a).await.expect("wait");
    assert_eq!(first, crate::ports::ExitStatus { code: Some(3), oom: false }, "exit code");
    assert_eq!(rt.wait(&a).await.expect("wait again"), first, "wait after the exit gives the same status");
    assert!(rt.list().await.expect("list").iter().any(|c| c.id == a && !c.running), "listed as stopped");
    rt.remove(&a).await.expect("remove");
    assert!(!rt.list().await.expect("list").iter().any(|c| c.id == a), "removed");

    // SIGKILL ends it whatever it does.
    rt.create(&runtime_spec(target, &b)).await.expect("create");
    let mut out = rt.attach(&b).await.expect("attach");
    rt.start(&b).await.expect("start");
    next_line(&mut out, "ready").await;
    let stats = rt.stats(&b).await.expect("stats");
    assert!(
        stats.memory_limit_bytes == 0 || stats.memory_limit_bytes == Limits::default().memory_mb << 20,
        "limit: {stats:?}"
    );
    rt.signal(&b, Signal::Kill).await.expect("kill");
    let status = rt.wait(&b).await.expect("wait");
    assert_ne!(status.code, Some(0), "killed, not a clean exit: {status:?}");
    rt.signal(&b, Signal::Kill).await.expect("killing a dead container is fine");
    rt.remove(&b).await.expect("remove");
}
