use catalyst_core::testing::{MemoryStore, conformance};

#[test]
fn memory_store_passes_the_store_conformance_suite() {
    futures::executor::block_on(conformance::all(&MemoryStore::new()));
}
