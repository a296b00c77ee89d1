//! An OpenSSH sshd on loopback with a password account (an SFTP backup target in the tests, the
//! baseline in the SFTP benchmark).

use std::path::Path;
use std::time::Duration;

/// An OpenSSH sshd on loopback with a password account, as an SFTP backup target.
pub struct Sshd {
    child: std::process::Child,
    pub port: u16,
    pub fingerprint: String,
    _dir: tempfile::TempDir,
}

impl Drop for Sshd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub const SFTP_USER: &str = "catalyst-backup";
pub const SFTP_PASSWORD: &str = "backup-password-123";

fn run(cmd: &str) -> bool {
    std::process::Command::new("sh").arg("-c").arg(cmd).status().map(|s| s.success()).unwrap_or(false)
}

pub fn sshd() -> Option<Sshd> {
    let root = nix::unistd::Uid::effective().is_root();
    if !Path::new("/usr/sbin/sshd").exists() || !root {
        assert!(std::env::var("CI").is_err(), "sshd (as root) is needed for the SFTP backup test in CI");
        eprintln!("!!! SKIPPED: SFTP backups (needs Debian's openssh-server and root)");
        return None;
    }
    assert!(
        run(&format!("id {SFTP_USER} >/dev/null 2>&1 || useradd -m {SFTP_USER}"))
            && run(&format!("echo '{SFTP_USER}:{SFTP_PASSWORD}' | chpasswd"))
            && run("mkdir -p /run/sshd"),
        "could not prepare the SFTP account"
    );
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("host");
    assert!(run(&format!("ssh-keygen -q -t ed25519 -N '' -f {}", key.display())), "ssh-keygen");
    let out = std::process::Command::new("ssh-keygen")
        .args(["-lf"])
        .arg(key.with_extension("pub"))
        .args(["-E", "sha256"])
        .output()
        .expect("fingerprint");
    let fingerprint = String::from_utf8_lossy(&out.stdout).split_whitespace().nth(1).expect("fingerprint").to_string();
    let port = std::net::TcpListener::bind("127.0.0.1:0").expect("port").local_addr().expect("addr").port();
    let config = dir.path().join("sshd_config");
    std::fs::write(
        &config,
        format!(
            "Port {port}\nListenAddress 127.0.0.1\nHostKey {}\nPidFile {}\nPasswordAuthentication yes\n\
             KbdInteractiveAuthentication no\nUsePAM no\nStrictModes no\nAllowUsers {SFTP_USER}\nSubsystem sftp internal-sftp\n",
            key.display(),
            dir.path().join("pid").display()
        ),
    )
    .expect("config");
    let child = std::process::Command::new("/usr/sbin/sshd")
        .arg("-D")
        .arg("-e")
        .arg("-f")
        .arg(&config)
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("sshd");
    let sshd = Sshd { child, port, fingerprint, _dir: dir };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Some(sshd);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("sshd did not start");
}
