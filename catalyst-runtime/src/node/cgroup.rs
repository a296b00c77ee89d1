//! Cgroups (v1 or v2, detected): apply limits and read usage and OOM kills of one server's
//! group. Containerd creates the group for containers (we give it the path); the process
//! runtime creates it itself.

use std::path::{Path, PathBuf};

use catalyst_core::model::Limits;
use catalyst_core::{Error, Result};

const ROOT: &str = "/sys/fs/cgroup";
const V1_CONTROLLERS: [&str; 5] = ["memory", "cpu", "cpuacct", "pids", "blkio"];

/// One server's cgroup.
#[derive(Debug, Clone)]
pub struct Cgroup {
    v2: bool,
    /// `<parent>/<id>` relative to each hierarchy root.
    rel: PathBuf,
}

/// Is the unified (v2) hierarchy mounted at the root?
fn is_v2() -> bool {
    Path::new(ROOT).join("cgroup.controllers").exists()
}

fn write(path: &Path, value: &str) -> std::io::Result<()> {
    std::fs::write(path, value)
}

fn read_u64(path: &Path) -> Option<u64> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// A `key value` line from a flat-keyed file (memory.events, memory.oom_control, cpu.stat).
fn keyed(path: &Path, key: &str) -> Option<u64> {
    std::fs::read_to_string(path)
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix(key).and_then(|rest| rest.trim().parse().ok()))
}

impl Cgroup {
    /// The group `<parent>/<id>` (not created).
    pub fn open(parent: &str, id: &str) -> Self {
        Self { v2: is_v2(), rel: Path::new(parent.trim_start_matches('/')).join(id) }
    }

    /// The path containerd takes in `linux.cgroupsPath`.
    pub fn oci_path(&self) -> String {
        format!("/{}", self.rel.display())
    }

    fn dir(&self, controller: &str) -> PathBuf {
        if self.v2 { Path::new(ROOT).join(&self.rel) } else { Path::new(ROOT).join(controller).join(&self.rel) }
    }

    /// Create the group and apply `limits`; fails when cgroups are not writable.
    pub fn create(parent: &str, id: &str, limits: &Limits) -> Result<Self> {
        let cg = Self::open(parent, id);
        let dirs: Vec<PathBuf> =
            if cg.v2 { vec![cg.dir("")] } else { V1_CONTROLLERS.iter().map(|c| cg.dir(c)).collect() };
        for (d, controller) in dirs.iter().zip(V1_CONTROLLERS) {
            if cg.v2 || Path::new(ROOT).join(controller).exists() {
                std::fs::create_dir_all(d)
                    .map_err(|e| Error::internal(format!("cannot create cgroup {}", d.display()), e))?;
            }
        }
        cg.apply(limits)?;
        Ok(cg)
    }

    /// Every `cgroup.procs` file a process must join.
    pub fn procs_files(&self) -> Vec<PathBuf> {
        if self.v2 {
            vec![self.dir("").join("cgroup.procs")]
        } else {
            V1_CONTROLLERS.iter().map(|c| self.dir(c)).filter(|d| d.exists()).map(|d| d.join("cgroup.procs")).collect()
        }
    }

    /// Write limits. Memory and pids must take; CPU and IO weights are best effort (not every
    /// kernel has every knob).
    pub fn apply(&self, l: &Limits) -> Result<()> {
        let (mem, swap) = (l.memory_mb << 20, l.swap_mb << 20);
        // Memory 0 is unlimited: `max` on cgroup v2, -1 on v1.
        let limited = l.memory_mb > 0;
        let fail = |what: &str, e: std::io::Error| Error::internal(format!("cannot set {what}"), e);
        if self.v2 {
            let d = self.dir("");
            let (max, swap_max) =
                if limited { (mem.to_string(), swap.to_string()) } else { ("max".to_string(), "max".to_string()) };
            write(&d.join("memory.max"), &max).map_err(|e| fail("memory.max", e))?;
            let _ = write(&d.join("memory.swap.max"), &swap_max);
            write(&d.join("pids.max"), &l.pids.to_string()).map_err(|e| fail("pids.max", e))?;
            let cpu = if l.cpu_percent == 0 {
                "max 100000".to_string()
            } else {
                format!("{} 100000", u64::from(l.cpu_percent) * 1000)
            };
            let _ = write(&d.join("cpu.max"), &cpu);
            let _ = write(&d.join("io.weight"), &format!("default {}", u64::from(l.io_weight) * 10));
        } else {
            let m = self.dir("memory");
            // memsw must stay >= the memory limit: try both orders.
            let (limit, memsw) = if limited {
                (mem.to_string(), (mem + swap).to_string())
            } else {
                ("-1".to_string(), "-1".to_string())
            };
            if write(&m.join("memory.limit_in_bytes"), &limit).is_err() {
                let _ = write(&m.join("memory.memsw.limit_in_bytes"), &memsw);
                write(&m.join("memory.limit_in_bytes"), &limit).map_err(|e| fail("memory.limit_in_bytes", e))?;
            }
            let _ = write(&m.join("memory.memsw.limit_in_bytes"), &memsw);
            write(&self.dir("pids").join("pids.max"), &l.pids.to_string()).map_err(|e| fail("pids.max", e))?;
            let c = self.dir("cpu");
            let _ = write(&c.join("cpu.cfs_period_us"), "100000");
            let quota =
                if l.cpu_percent == 0 { "-1".to_string() } else { (u64::from(l.cpu_percent) * 1000).to_string() };
            let _ = write(&c.join("cpu.cfs_quota_us"), &quota);
            let _ = write(&self.dir("blkio").join("blkio.weight"), &l.io_weight.to_string());
        }
        Ok(())
    }

    /// The memory limit in force, in bytes.
    pub fn memory_limit(&self) -> Option<u64> {
        if self.v2 {
            read_u64(&self.dir("").join("memory.max"))
        } else {
            read_u64(&self.dir("memory").join("memory.limit_in_bytes"))
        }
    }

    /// The pids limit in force.
    pub fn pids_limit(&self) -> Option<u64> {
        read_u64(&self.dir("pids").join("pids.max"))
    }

    /// The CPU quota in µs per 100 ms period (`None`: unlimited or unknown).
    pub fn cpu_quota_us(&self) -> Option<u64> {
        if self.v2 {
            let s = std::fs::read_to_string(self.dir("").join("cpu.max")).ok()?;
            s.split_whitespace().next()?.parse().ok()
        } else {
            read_u64(&self.dir("cpu").join("cpu.cfs_quota_us"))
        }
    }

    /// Memory in use, bytes.
    pub fn memory_usage(&self) -> Option<u64> {
        if self.v2 {
            read_u64(&self.dir("").join("memory.current"))
        } else {
            read_u64(&self.dir("memory").join("memory.usage_in_bytes"))
        }
    }

    /// CPU time used, nanoseconds.
    pub fn cpu_usage_ns(&self) -> Option<u64> {
        if self.v2 {
            keyed(&self.dir("").join("cpu.stat"), "usage_usec").map(|us| us * 1000)
        } else {
            read_u64(&self.dir("cpuacct").join("cpuacct.usage"))
        }
    }

    /// Did the OOM killer kill something in this group?
    pub fn oom_killed(&self) -> bool {
        let n = if self.v2 {
            keyed(&self.dir("").join("memory.events"), "oom_kill")
        } else {
            keyed(&self.dir("memory").join("memory.oom_control"), "oom_kill")
        };
        n.unwrap_or(0) > 0
    }

    /// Remove the (empty) group; best effort.
    pub fn remove(&self) {
        if self.v2 {
            let _ = std::fs::remove_dir(self.dir(""));
        } else {
            for c in V1_CONTROLLERS {
                let _ = std::fs::remove_dir(self.dir(c));
            }
        }
    }
}
