//! Architecture invariant: the core does no I/O. It must not depend on an async runtime,
//! a database driver, an HTTP stack, an FFI layer, a container client or SSH.

const FORBIDDEN: &[&str] =
    &["tokio", "sqlx", "axum", "hyper", "pyo3", "napi", "containerd-client", "russh", "tonic", "reqwest"];

#[test]
fn core_depends_on_no_io_crate() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let out = std::process::Command::new(cargo)
        .args(["tree", "-p", "catalyst-core", "--features", "testing", "-e", "normal", "--prefix", "none", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    assert!(out.status.success(), "cargo tree failed: {}", String::from_utf8_lossy(&out.stderr));
    let tree = String::from_utf8_lossy(&out.stdout);
    let crates: Vec<&str> = tree.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(crates.contains(&"serde"), "cargo tree output looks wrong: {tree}");
    for bad in FORBIDDEN {
        assert!(!crates.contains(bad), "catalyst-core depends on {bad}:\n{tree}");
    }
}
