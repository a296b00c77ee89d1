//! The OCI runtime spec for a server container: limits, a small capability set,
//! no-new-privileges, an unprivileged user, masked kernel paths, a size-limited /tmp.

use catalyst_core::ports::{ContainerSpec, NetworkMode};
use serde_json::{Value, json};

/// Capabilities a game server may need (Docker's default set minus raw sockets, mknod,
/// chroot, audit and setfcap).
const CAPABILITIES: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_NET_BIND_SERVICE",
];

const MASKED: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
];

const READ_ONLY: &[&str] = &["/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"];

/// What the image's config contributes.
#[derive(Debug, Clone, Default)]
pub struct ImageDefaults {
    /// `KEY=value` environment of the image.
    pub env: Vec<String>,
    /// The image's ENTRYPOINT.
    pub entrypoint: Vec<String>,
    /// The image's CMD.
    pub cmd: Vec<String>,
}

/// What the container runs: the spec's command, or (when it is empty: entrypoint mode) the
/// image's own ENTRYPOINT and CMD, as Docker would.
pub fn argv(spec: &ContainerSpec, image: &ImageDefaults) -> catalyst_core::Result<Vec<String>> {
    if !spec.command.is_empty() {
        return Ok(spec.command.clone());
    }
    let argv: Vec<String> = image.entrypoint.iter().chain(&image.cmd).cloned().collect();
    if argv.is_empty() {
        return Err(catalyst_core::Error::invalid(format!(
            "image {} has neither ENTRYPOINT nor CMD, and the template runs in entrypoint mode",
            spec.image
        )));
    }
    Ok(argv)
}

/// Build the runtime spec JSON.
pub fn build(
    spec: &ContainerSpec,
    args: &[String],
    image: &ImageDefaults,
    cgroups_path: &str,
    netns: Option<&str>,
    swap_accounting: bool,
) -> Value {
    let (uid, gid) = spec.user.unwrap_or((0, 0));
    let mut env: Vec<String> = image.env.clone();
    if !env.iter().any(|e| e.starts_with("PATH=")) {
        env.push("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into());
    }
    for (k, v) in &spec.env {
        env.retain(|e| !e.starts_with(&format!("{k}=")));
        env.push(format!("{k}={v}"));
    }
    env.push("HOME=/home/container".into());
    let mut mounts = vec![
        json!({"destination": "/proc", "type": "proc", "source": "proc", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/dev", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]}),
        json!({"destination": "/dev/pts", "type": "devpts", "source": "devpts", "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]}),
        json!({"destination": "/dev/shm", "type": "tmpfs", "source": "shm", "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]}),
        json!({"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue", "options": ["nosuid", "noexec", "nodev"]}),
        json!({"destination": "/sys", "type": "sysfs", "source": "sysfs", "options": ["nosuid", "noexec", "nodev", "ro"]}),
        json!({"destination": "/tmp", "type": "tmpfs", "source": "tmpfs", "options": ["nosuid", "nodev", "mode=1777", format!("size={}m", spec.tmpfs_mb.max(1))]}),
    ];
    for m in &spec.mounts {
        let rw = if m.read_only { "ro" } else { "rw" };
        mounts.push(json!({"destination": m.target, "type": "bind", "source": m.source, "options": ["rbind", rw, "nosuid", "nodev"]}));
    }
    if std::path::Path::new("/etc/resolv.conf").exists() {
        mounts.push(json!({"destination": "/etc/resolv.conf", "type": "bind", "source": "/etc/resolv.conf", "options": ["rbind", "ro"]}));
    }
    let mut namespaces =
        vec![json!({"type": "pid"}), json!({"type": "ipc"}), json!({"type": "uts"}), json!({"type": "mount"})];
    match (spec.network, netns) {
        (NetworkMode::Bridge, Some(path)) => namespaces.push(json!({"type": "network", "path": path})),
        (NetworkMode::Bridge, None) => namespaces.push(json!({"type": "network"})),
        (NetworkMode::Host, _) => {}
    }
    let limits = &spec.limits;
    let memory = limits.memory_mb << 20;
    // No limit for 0 (unlimited); swap only bounds something on top of a limit.
    let mut memory_json = json!({});
    if memory > 0 {
        memory_json["limit"] = json!(memory);
        if swap_accounting {
            memory_json["swap"] = json!(memory + (limits.swap_mb << 20));
        }
    }
    let mut resources = json!({
        "devices": [
            {"allow": false, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 3, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 5, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 7, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 8, "access": "rwm"},
            {"allow": true, "type": "c", "major": 1, "minor": 9, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
            {"allow": true, "type": "c", "major": 5, "minor": 2, "access": "rwm"},
            {"allow": true, "type": "c", "major": 136, "access": "rwm"}
        ],
        "memory": memory_json,
        "pids": {"limit": limits.pids},
    });
    if limits.cpu_percent > 0 {
        resources["cpu"] = json!({"quota": u64::from(limits.cpu_percent) * 1000, "period": 100_000});
    }
    json!({
        "ociVersion": "1.0.2",
        "process": {
            "terminal": false,
            "user": {"uid": uid, "gid": gid},
            "args": args,
            "env": env,
            "cwd": spec.workdir,
            "capabilities": {"bounding": CAPABILITIES, "effective": CAPABILITIES, "permitted": CAPABILITIES},
            "noNewPrivileges": true,
        },
        "root": {"path": "rootfs", "readonly": spec.read_only_rootfs},
        "hostname": "catalyst",
        "mounts": mounts,
        "linux": {
            "resources": resources,
            "cgroupsPath": cgroups_path,
            "namespaces": namespaces,
            "maskedPaths": MASKED,
            "readonlyPaths": READ_ONLY,
        },
    })
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use catalyst_core::model::Limits;
    use catalyst_core::ports::Mount;

    use super::*;

    #[test]
    fn hardened_and_limited() {
        let mut env = BTreeMap::new();
        env.insert("SERVER_PORT".to_string(), "25565".to_string());
        let spec = ContainerSpec {
            id: "abc".into(),
            image: "img".into(),
            command: vec!["/bin/sh".into(), "-c".into(), "run".into()],
            env,
            mounts: vec![Mount { source: "/srv/abc".into(), target: "/home/container".into(), read_only: false }],
            workdir: "/home/container".into(),
            limits: Limits {
                memory_mb: 512,
                swap_mb: 128,
                cpu_percent: 150,
                disk_mb: 1,
                io_weight: 500,
                pids: 100,
                ..Limits::default()
            },
            allocations: vec![],
            network: NetworkMode::Host,
            tmpfs_mb: 50,
            read_only_rootfs: true,
            user: Some((1000, 1000)),
        };
        let image = ImageDefaults {
            env: vec!["PATH=/bin".into(), "SERVER_PORT=1".into()],
            entrypoint: vec!["/entrypoint.sh".into()],
            cmd: vec!["run".into()],
        };
        assert_eq!(argv(&spec, &image).ok(), Some(spec.command.clone()));
        let entrypoint_mode = ContainerSpec { command: vec![], ..spec.clone() };
        assert_eq!(argv(&entrypoint_mode, &image).ok(), Some(vec!["/entrypoint.sh".to_string(), "run".to_string()]));
        assert!(argv(&entrypoint_mode, &ImageDefaults::default()).is_err());
        let v = build(&spec, &spec.command, &image, "/catalyst/abc", None, true);
        assert_eq!(v["process"]["noNewPrivileges"], json!(true));
        assert_eq!(v["process"]["user"]["uid"], json!(1000));
        assert!(
            !v["process"]["capabilities"]["bounding"].as_array().is_some_and(|c| c.contains(&json!("CAP_SYS_ADMIN")))
        );
        assert_eq!(v["linux"]["resources"]["memory"]["limit"], json!(512u64 << 20));
        assert_eq!(v["linux"]["resources"]["memory"]["swap"], json!(640u64 << 20));
        let unlimited = ContainerSpec { limits: Limits { memory_mb: 0, ..spec.limits }, ..spec.clone() };
        let u = build(&unlimited, &unlimited.command, &image, "/catalyst/abc", None, true);
        assert_eq!(u["linux"]["resources"]["memory"], json!({}), "memory 0 is unlimited: no limit, no swap bound");
        assert_eq!(v["linux"]["resources"]["cpu"]["quota"], json!(150_000));
        assert_eq!(v["linux"]["resources"]["pids"]["limit"], json!(100));
        assert_eq!(v["root"]["readonly"], json!(true));
        let env = v["process"]["env"].as_array().cloned().unwrap_or_default();
        assert!(
            env.contains(&json!("SERVER_PORT=25565")) && !env.contains(&json!("SERVER_PORT=1")),
            "spec env wins: {env:?}"
        );
        assert!(v["mounts"].as_array().is_some_and(|m| {
            m.iter().any(|m| {
                m["destination"] == "/tmp" && m["options"].as_array().is_some_and(|o| o.contains(&json!("size=50m")))
            })
        }));
        assert!(
            v["linux"]["namespaces"].as_array().is_some_and(|n| !n.iter().any(|n| n["type"] == "network")),
            "host networking"
        );
    }
}
