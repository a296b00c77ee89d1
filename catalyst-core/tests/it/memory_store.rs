use catalyst_core::testing::{MemoryStore, conformance};

#[test]
fn memory_store_passes_the_store_conformance_suite() {
    futures::executor::block_on(conformance::all(&MemoryStore::new()));
}

#[test]
fn fake_runtime_passes_the_runtime_conformance_suite() {
    let target = conformance::RuntimeTarget {
        image: "any".into(),
        echo_command: vec!["echo".into()],
        workdir_source: "/nonexistent".into(),
    };
    futures::executor::block_on(conformance::container_runtime(
        &catalyst_core::testing::FakeRuntime::new(),
        &target,
        "fake",
    ));
}
