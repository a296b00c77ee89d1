use catalyst_core::store::MemoryStore;
use catalyst_core::testing::conformance;

catalyst_core::store_conformance!(memory, || async { Some(MemoryStore::new()) });

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
