//! `ProcessRuntime`: servers as plain child processes in their directory, for hosts without
//! containerd and for development. Limits are applied through cgroups where the cgroup file
//! system is writable (v1 or v2); images are ignored. Children die with the agent: unlike
//! containers they are not re-attached after a restart.
//!
//! Confinement ([`Isolation::Uid`]) needs root and util-linux's `setpriv`: a child joins its
//! cgroup while still root (a root-owned cgroup takes no other writer), then `setpriv` drops
//! to the spec's `user` with no supplementary groups, an empty capability bounding set and
//! `no_new_privs` (setuid binaries cannot raise it again) before the server's command runs.
//! Without both, children run as the agent's own user ([`Isolation::None`]).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use catalyst_core::model::{Limits, LogStream};
use catalyst_core::ports::{
    ConsoleLine, ContainerInfo, ContainerRuntime, ContainerSpec, ContainerStats, ExitStatus, Isolation, Signal,
};
use catalyst_core::{Error, Result};
use futures::StreamExt;
use futures::stream::BoxStream;
use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWriteExt, BufReader};
use tokio::sync::{Mutex as AsyncMutex, broadcast, watch};

use super::cgroup::Cgroup;
use crate::sync::lock;

/// Entrypoint mode without images: do what egg images' entrypoints (pterodactyl/yolks) do with
/// `STARTUP` — turn `{{X}}` into `${X}` and let a shell run it, so values are expanded as
/// variables, never parsed as shell text.
fn entrypoint_emulation(spec: &ContainerSpec) -> Result<Vec<String>> {
    let startup = spec.env.get("STARTUP").filter(|s| !s.trim().is_empty()).ok_or_else(|| {
        Error::invalid("the command is empty (entrypoint mode needs a STARTUP, and processes have no image)")
    })?;
    let placeholder =
        regex::Regex::new(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}").map_err(|e| Error::internal("regex", e))?;
    Ok(vec!["/bin/sh".into(), "-c".into(), placeholder.replace_all(startup, "$${$1}").into_owned()])
}

/// Longest line kept from a process; the rest of the line is dropped.
const MAX_LINE: usize = 64 * 1024;

/// Child processes as containers.
#[derive(Debug, Clone)]
pub struct ProcessRuntime {
    procs: Arc<Mutex<HashMap<String, Arc<Proc>>>>,
    /// Cgroup parent (e.g. `catalyst`); `None` disables limits.
    cgroup_parent: Option<String>,
    /// `setpriv`, when this process is root and can confine its children.
    setpriv: Option<PathBuf>,
}

/// Where Debian and most distributions install util-linux's `setpriv`.
const SETPRIV: [&str; 2] = ["/usr/bin/setpriv", "/bin/setpriv"];

#[derive(Debug)]
struct Proc {
    spec: Mutex<ContainerSpec>,
    pid: Mutex<Option<i32>>,
    stdin: AsyncMutex<Option<tokio::process::ChildStdin>>,
    status: watch::Sender<Option<ExitStatus>>,
    output: broadcast::Sender<ConsoleLine>,
    cgroup: Option<Cgroup>,
    cpu_prev: Mutex<Option<(u64, Instant)>>,
}

impl ProcessRuntime {
    /// A runtime that applies limits in cgroups under `cgroup_parent` when it can.
    pub fn new(cgroup_parent: Option<String>) -> Self {
        let setpriv =
            nix::unistd::geteuid().is_root().then(|| SETPRIV.iter().map(PathBuf::from).find(|p| p.exists())).flatten();
        Self { procs: Arc::default(), cgroup_parent, setpriv }
    }

    /// `setpriv` arguments that drop to `user` for good, or nothing when unconfined.
    fn drop_to(&self, user: Option<(u32, u32)>) -> Vec<String> {
        match (&self.setpriv, user) {
            (Some(setpriv), Some((uid, gid))) => vec![
                setpriv.to_string_lossy().into_owned(),
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--clear-groups".into(),
                "--inh-caps=-all".into(),
                "--bounding-set=-all".into(),
                "--no-new-privs".into(),
                "--".into(),
            ],
            _ => Vec::new(),
        }
    }

    fn get(&self, id: &str) -> Result<Arc<Proc>> {
        lock(&self.procs).get(id).cloned().ok_or_else(|| Error::not_found("container"))
    }
}

fn host_dir(spec: &ContainerSpec) -> Result<PathBuf> {
    spec.mounts
        .iter()
        .find(|m| m.target == spec.workdir)
        .map(|m| PathBuf::from(&m.source))
        .ok_or_else(|| Error::invalid("the working directory must be a mounted host directory"))
}

/// The `PATH` of everything the runtime starts (a server may set its own).
const FIXED_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// The prefix the server's variables carry through the root part of a confined start.
const CARRIED: &str = "CATALYST_CARRIED_";

/// A server's environment: `HOME` (its directory, unless the spec sets one) and its spec's
/// variables. Names that are not shell identifiers, or that would collide with carried ones,
/// are left out (the control plane only sends `UPPER_SNAKE`).
fn server_env(spec: &ContainerSpec, dir: &std::path::Path) -> Vec<(String, String)> {
    let is_name = |k: &str| {
        k.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
            && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !k.starts_with(CARRIED)
    };
    let mut env = std::collections::BTreeMap::new();
    env.insert("HOME".to_string(), dir.to_string_lossy().into_owned());
    env.extend(spec.env.iter().filter(|(k, _)| is_name(k)).map(|(k, v)| (k.clone(), v.clone())));
    env.into_iter().collect()
}

/// Shell text that moves each carried variable back to its own name, then runs its arguments.
fn restore_env(env: &[(String, String)]) -> String {
    let mut script = String::new();
    for (k, _) in env {
        script.push_str(&format!("{k}=\"${{{CARRIED}{k}}}\"; export {k}; unset {CARRIED}{k}; "));
    }
    script.push_str("exec \"$@\"");
    script
}

fn pump<R: AsyncRead + Unpin + Send + 'static>(reader: R, stream: LogStream, tx: broadcast::Sender<ConsoleLine>) {
    tokio::spawn(async move {
        let mut reader = BufReader::new(reader);
        let mut buf = Vec::with_capacity(256);
        loop {
            buf.clear();
            match (&mut reader).take(MAX_LINE as u64).read_until(b'\n', &mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {
                    let complete = buf.last() == Some(&b'\n');
                    let line = String::from_utf8_lossy(buf.strip_suffix(b"\n").unwrap_or(&buf))
                        .trim_end_matches('\r')
                        .to_string();
                    let _ = tx.send(ConsoleLine { stream, line });
                    if !complete {
                        // Over-long line: skip to its end.
                        let mut rest = Vec::new();
                        if reader.read_until(b'\n', &mut rest).await.unwrap_or(0) == 0 {
                            return;
                        }
                    }
                }
            }
        }
    });
}

use tokio::io::AsyncReadExt as _;

#[async_trait]
impl ContainerRuntime for ProcessRuntime {
    fn name(&self) -> &'static str {
        "process"
    }

    fn isolation(&self) -> Isolation {
        if self.setpriv.is_some() { Isolation::Uid } else { Isolation::None }
    }

    async fn ensure_image(&self, _image: &str) -> Result<()> {
        Ok(())
    }

    async fn create(&self, spec: &ContainerSpec) -> Result<()> {
        let mut spec = spec.clone();
        if spec.command.is_empty() {
            spec.command = entrypoint_emulation(&spec)?;
        }
        let spec = &spec;
        host_dir(spec)?;
        let mut procs = lock(&self.procs);
        if procs.contains_key(&spec.id) {
            return Err(Error::conflict(format!("container {} exists", spec.id)));
        }
        let cgroup = self.cgroup_parent.as_ref().and_then(|parent| Cgroup::create(parent, &spec.id, &spec.limits).ok());
        procs.insert(
            spec.id.clone(),
            Arc::new(Proc {
                spec: Mutex::new(spec.clone()),
                pid: Mutex::new(None),
                stdin: AsyncMutex::new(None),
                status: watch::channel(None).0,
                output: broadcast::channel(4096).0,
                cgroup,
                cpu_prev: Mutex::new(None),
            }),
        );
        Ok(())
    }

    async fn start(&self, id: &str) -> Result<()> {
        let proc = self.get(id)?;
        if lock(&proc.pid).is_some() && proc.status.borrow().is_none() {
            return Err(Error::conflict("the process is already running"));
        }
        let spec = lock(&proc.spec).clone();
        let dir = host_dir(&spec)?;
        // Join the cgroup before exec, from the child itself, so no grandchild escapes it.
        let mut argv: Vec<String> = Vec::new();
        if let Some(cg) = &proc.cgroup {
            let joins: Vec<String> = cg.procs_files().iter().map(|f| format!("echo $$ > '{}'", f.display())).collect();
            argv.extend([
                "/bin/sh".into(),
                "-c".into(),
                format!("{} && exec \"$@\"", joins.join(" && ")),
                "catalyst-join".into(),
            ]);
        }
        let drop = self.drop_to(spec.user);
        let confined = !drop.is_empty();
        argv.extend(drop);
        let env = server_env(&spec, &dir);
        if confined {
            // Root runs only fixed programs in a fixed environment: the server's variables
            // (LD_LIBRARY_PATH=./lib and the like) would steer the dynamic loader of the root
            // `setpriv`. They travel under names nothing interprets and are restored by a shell
            // that already runs as the server's uid.
            argv.extend(["/bin/sh".into(), "-c".into(), restore_env(&env), "catalyst-env".into()]);
        }
        argv.extend(spec.command.iter().cloned());
        let mut cmd = tokio::process::Command::new(&argv[0]);
        cmd.args(&argv[1..]).current_dir(&dir).env_clear().env("PATH", FIXED_PATH);
        if confined {
            cmd.envs(env.iter().map(|(k, v)| (format!("{CARRIED}{k}"), v)));
        } else {
            cmd.envs(env.iter().map(|(k, v)| (k, v)));
        }
        cmd.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0).kill_on_drop(false);

        let mut child = cmd.spawn().map_err(|e| Error::internal(format!("cannot start {}", argv[0]), e))?;
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .ok_or_else(|| Error::internal("no pid", std::io::Error::other("child has no pid")))?;
        *lock(&proc.pid) = Some(pid);
        *proc.stdin.lock().await = child.stdin.take();
        if let Some(out) = child.stdout.take() {
            pump(out, LogStream::Stdout, proc.output.clone());
        }
        if let Some(err) = child.stderr.take() {
            pump(err, LogStream::Stderr, proc.output.clone());
        }
        proc.status.send_replace(None);
        let waiter = proc.clone();
        tokio::spawn(async move {
            let status = child.wait().await;
            let oom = waiter.cgroup.as_ref().is_some_and(Cgroup::oom_killed);
            let code = match status {
                Ok(s) => s.code(),
                Err(_) => None,
            };
            // Reap stragglers of the process group.
            let _ = nix::sys::signal::killpg(nix::unistd::Pid::from_raw(pid), nix::sys::signal::Signal::SIGKILL);
            *waiter.stdin.lock().await = None;
            waiter.status.send_replace(Some(ExitStatus { code, oom }));
        });
        Ok(())
    }

    async fn attach(&self, id: &str) -> Result<BoxStream<'static, ConsoleLine>> {
        let rx = self.get(id)?.output.subscribe();
        Ok(futures::stream::unfold(rx, |mut rx| async move {
            loop {
                match rx.recv().await {
                    Ok(line) => return Some((line, rx)),
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                }
            }
        })
        .boxed())
    }

    async fn write_stdin(&self, id: &str, data: &[u8]) -> Result<()> {
        let proc = self.get(id)?;
        let mut stdin = proc.stdin.lock().await;
        let pipe = stdin.as_mut().ok_or_else(|| Error::conflict("the process is not running"))?;
        pipe.write_all(data).await.map_err(|e| Error::conflict("the process closed its input").with_source(e))?;
        pipe.flush().await.map_err(|e| Error::conflict("the process closed its input").with_source(e))
    }

    async fn signal(&self, id: &str, signal: Signal) -> Result<()> {
        let proc = self.get(id)?;
        let pid = *lock(&proc.pid);
        let Some(pid) = pid.filter(|_| proc.status.borrow().is_none()) else {
            return Ok(());
        };
        let sig = nix::sys::signal::Signal::try_from(signal.number()).map_err(|e| Error::internal("bad signal", e))?;
        let target = nix::unistd::Pid::from_raw(pid);
        let sent = if signal == Signal::Kill {
            nix::sys::signal::killpg(target, sig)
        } else {
            nix::sys::signal::kill(target, sig)
        };
        match sent {
            Ok(()) | Err(nix::errno::Errno::ESRCH) => Ok(()),
            Err(e) => Err(Error::internal("cannot signal the process", e)),
        }
    }

    async fn wait(&self, id: &str) -> Result<ExitStatus> {
        let mut rx = self.get(id)?.status.subscribe();
        let status = rx.wait_for(Option::is_some).await.map_err(|_| Error::unavailable("the process vanished"))?;
        status.ok_or_else(|| Error::unavailable("the process vanished"))
    }

    async fn stats(&self, id: &str) -> Result<ContainerStats> {
        let proc = self.get(id)?;
        let limits = lock(&proc.spec).limits;
        let running = proc.status.borrow().is_none() && lock(&proc.pid).is_some();
        if !running {
            return Ok(ContainerStats { memory_limit_bytes: limits.memory_mb << 20, ..Default::default() });
        }
        let pid = lock(&proc.pid).unwrap_or(0);
        let (cpu_ns, mem) = match &proc.cgroup {
            Some(cg) => (cg.cpu_usage_ns().unwrap_or(0), cg.memory_usage().unwrap_or(0)),
            None => proc_usage(pid),
        };
        let now = Instant::now();
        let mut prev = lock(&proc.cpu_prev);
        let cpu_percent = match *prev {
            Some((ns, at)) if cpu_ns >= ns => {
                let wall = now.duration_since(at).as_nanos().max(1) as f64;
                (cpu_ns - ns) as f64 / wall * 100.0
            }
            _ => 0.0,
        };
        *prev = Some((cpu_ns, now));
        Ok(ContainerStats {
            cpu_percent,
            memory_bytes: mem,
            memory_limit_bytes: limits.memory_mb << 20,
            rx_bytes: 0,
            tx_bytes: 0,
        })
    }

    async fn update_limits(&self, id: &str, limits: &Limits) -> Result<()> {
        let proc = self.get(id)?;
        lock(&proc.spec).limits = *limits;
        if let Some(cg) = &proc.cgroup {
            cg.apply(limits)?;
        }
        Ok(())
    }

    async fn remove(&self, id: &str) -> Result<()> {
        let proc = self.get(id)?;
        let running = lock(&proc.pid).is_some() && proc.status.borrow().is_none();
        if running {
            return Err(Error::conflict("the process is running"));
        }
        lock(&self.procs).remove(id);
        if let Some(cg) = &proc.cgroup {
            cg.remove();
        }
        Ok(())
    }

    async fn list(&self) -> Result<Vec<ContainerInfo>> {
        let procs = lock(&self.procs);
        let mut out: Vec<ContainerInfo> = procs
            .iter()
            .map(|(id, p)| ContainerInfo {
                id: id.clone(),
                running: p.pid.lock().unwrap_or_else(|x| x.into_inner()).is_some() && p.status.borrow().is_none(),
            })
            .collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(out)
    }
}

/// CPU time (ns) and resident memory of one process, from /proc.
fn proc_usage(pid: i32) -> (u64, u64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name, which may contain spaces, start after the last ')'.
    let fields: Vec<&str> =
        stat.rsplit_once(')').map(|(_, rest)| rest.split_whitespace().collect()).unwrap_or_default();
    let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let tick_ns = 1_000_000_000 / 100; // USER_HZ is 100 on Linux
    let cpu = (ticks(11) + ticks(12)) * tick_ns;
    let statm = std::fs::read_to_string(format!("/proc/{pid}/statm")).unwrap_or_default();
    let rss_pages = statm.split_whitespace().nth(1).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    (cpu, rss_pages * 4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A spec with only an environment.
    fn bare(env: std::collections::BTreeMap<String, String>) -> ContainerSpec {
        ContainerSpec {
            id: "t".into(),
            image: String::new(),
            command: vec![],
            env,
            mounts: vec![],
            workdir: String::new(),
            limits: Limits::default(),
            allocations: vec![],
            network: catalyst_core::ports::NetworkMode::Host,
            tmpfs_mb: 0,
            read_only_rootfs: false,
            user: None,
        }
    }

    #[test]
    fn the_carried_environment_round_trips_through_a_shell() {
        let mut env = std::collections::BTreeMap::new();
        env.insert("HOME".to_string(), "/srv/mine".to_string());
        env.insert("MOTD".to_string(), "it's \"quoted\" $(not run) `nor this`".to_string());
        env.insert(format!("{CARRIED}MOTD"), "a collision".to_string());
        env.insert("BAD-NAME".to_string(), "x".to_string());
        let spec = bare(env);
        let env = server_env(&spec, std::path::Path::new("/srv/dir"));
        let names: Vec<&str> = env.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(names, ["HOME", "MOTD"], "one HOME (the spec's), no collisions, identifiers only");
        let out = std::process::Command::new("/bin/sh")
            .args([
                "-c",
                &restore_env(&env),
                "catalyst-env",
                "/bin/sh",
                "-c",
                "printf '%s|%s|%s' \"$HOME\" \"$MOTD\" \"${CATALYST_CARRIED_MOTD-unset}\"",
            ])
            .env_clear()
            .envs(env.iter().map(|(k, v)| (format!("{CARRIED}{k}"), v)))
            .output()
            .expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "/srv/mine|it's \"quoted\" $(not run) `nor this`|unset");
    }

    #[test]
    fn entrypoint_mode_expands_startup_like_an_egg_image() {
        let mut env = std::collections::BTreeMap::new();
        env.insert("STARTUP".to_string(), "printf '%s|%s' \"{{ MOTD }}\" {{PORT}}".to_string());
        env.insert("MOTD".to_string(), "x; echo pwned $(echo pwned)".to_string());
        env.insert("PORT".to_string(), "25565".to_string());
        let spec = bare(env.clone());
        let argv = entrypoint_emulation(&spec).expect("a STARTUP");
        assert_eq!(argv[2], "printf '%s|%s' \"${MOTD}\" ${PORT}");
        let out = std::process::Command::new(&argv[0]).args(&argv[1..]).env_clear().envs(&env).output().expect("sh");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "x; echo pwned $(echo pwned)|25565");
        env.remove("STARTUP");
        assert!(entrypoint_emulation(&ContainerSpec { env, ..spec }).is_err());
    }
}
